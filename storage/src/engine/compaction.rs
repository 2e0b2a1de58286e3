//! The compaction executor: merges a chosen set of segments into one, preserving every kept
//! version's identity and origin, and dropping only what [`CompactionOptions`] allows (the
//! garbage-collection contract in ARCHITECTURE.md). Which segments to merge, and when, is the
//! planner's business ([`crate::compaction::plan`]); here the caller chooses.
//!
//! The merge streams: it holds one read-ahead of blocks per input and one key's versions at a time,
//! and writes the output as it goes, so inputs larger than memory compact. The new segment and
//! the removal of the inputs commit in one manifest edit, so a crash leaves either the inputs or
//! the output live, never both or neither; the inputs' files go only after the edit is durable.

use super::Engine;
use super::flush::NewSegment;
use crate::compaction::{Garbage, Run, Snapshot};
use crate::error::{Error, Result};
use crate::ids::{SegmentId, TableId};
use crate::io::Disk;
use crate::manifest::ManifestEdit;
use crate::options::TableSettings;
use crate::record::{Entry, EntryRef, Key};
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::segment::reader::SegmentReader;
use crate::version::{OriginKind, Payload, Version};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

/// What a compaction may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionOptions {
    /// Drop versions beyond each table's `max_versions`, and superseded versions older than its
    /// `version_retention`. As-of reads of the past lose them.
    pub enforce_retention: bool,
    /// Turn values whose `expires_at` has passed into tombstones (same identity), freeing their
    /// bytes while still hiding older versions.
    pub expire_values: bool,
    /// Drop a key whose greatest version is a tombstone older than the engine's
    /// `tombstone_grace_ms`, whole (with the versions it hides), when the merge is bottommost
    /// (no live segment outside it holds the key's range) and no memtable holds the key. A
    /// write or load arriving later with a `ts` older than the dropped tombstone is then
    /// visible, as it would have been without the delete: the grace period is the bound on
    /// how late such a write may come, and on how long a deleted key's history is kept.
    pub reclaim_tombstones: bool,
    /// Drop the versions of bulk loads hidden when the merge starts: rolled back, for the daemon
    /// never shows a rolled-back load again. (A load being linked is hidden too, but its
    /// segments are never merged while it is, so none of its versions is an input.)
    pub drop_rolled_back: bool,
    /// Drop every version of a table the engine was told is dropped
    /// ([`Engine::drop_table`]); inputs holding nothing else are removed without being read.
    pub purge_dropped_tables: bool,
    /// Drop every version a table's watermark hides, once the watermark may be collected: its
    /// bulk load is neither hidden nor kept apart (linking, pinned by a rollback, or inside its
    /// rollback window), and its point is older than the engine's `tombstone_grace_ms`. The
    /// watermark itself stays, so whatever it hides elsewhere (or later) stays hidden; only
    /// as-of reads before its point lose what it hid, as they do a reclaimed tombstone's key.
    pub collect_watermarked: bool,
}

impl CompactionOptions {
    /// Everything the garbage-collection contract allows: what the daemon's compactions use.
    pub fn collect_garbage() -> CompactionOptions {
        CompactionOptions {
            enforce_retention: true,
            expire_values: true,
            reclaim_tombstones: true,
            drop_rolled_back: true,
            purge_dropped_tables: true,
            collect_watermarked: true,
        }
    }
}

/// Spreads a compaction's I/O over time, as the daemon's per-shard I/O budget does: the merge
/// calls [`Pacer::pace`] each time its bytes read and written grow by [`PACE_STEP_BYTES`], and
/// goes on once the future it returns completes. So a merge runs at the budget's rate
/// throughout, instead of at the disk's full speed followed by a pause, which would queue its
/// writes ahead of foreground reads at the device.
pub trait Pacer {
    /// `bytes`: bytes the merge has read and written so far.
    fn pace(&self, bytes: u64) -> Pin<Box<dyn Future<Output = ()> + '_>>;
}

/// A pacer that never waits: the merge runs as fast as the disk lets it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpaced;

impl Pacer for Unpaced {
    fn pace(&self, _bytes: u64) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        Box::pin(std::future::ready(()))
    }
}

/// Bytes of merge I/O between two calls of the pacer.
pub const PACE_STEP_BYTES: u64 = 256 << 10;

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// The segment written, if anything was kept.
    pub output: Option<SegmentInfo>,
    /// Versions read.
    pub versions_in: u64,
    /// Versions written.
    pub versions_out: u64,
    /// Bytes of the input segments.
    pub bytes_in: u64,
    /// Bytes of the output segment.
    pub bytes_out: u64,
    /// Keys dropped whole because a reclaimed tombstone was all that was left of them.
    pub tombstones_reclaimed: u64,
    /// Versions purged because their table was dropped or a collectable watermark hid them.
    pub garbage_versions: u64,
    /// True if no live segment outside the inputs held any of their key range.
    pub bottommost: bool,
    /// The most bytes of decoded input and pending output the merge held at once: one read-ahead
    /// ([`READ_AHEAD_BYTES`]) per input and one key's versions, however large the inputs.
    pub peak_buffered_bytes: u64,
}

/// Flush and compaction volumes, for write amplification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MaintenanceCounters {
    /// Bytes of segments written by flushes.
    pub flush_bytes: u64,
    /// Segments written by flushes.
    pub flushes: u64,
    /// Bytes of segments written by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of segments compactions read.
    pub compaction_bytes_read: u64,
    /// Compactions committed.
    pub compactions: u64,
    /// Bytes compactions removed from disk (inputs minus output).
    pub reclaimed_bytes: u64,
    /// Versions compactions dropped as garbage by table and identity alone (dropped tables,
    /// collectable watermarks; GC rules 5 and 6).
    pub garbage_versions: u64,
}

impl MaintenanceCounters {
    /// Segment bytes written per byte flushed: (flushed + compacted) / flushed, 1.0 before the
    /// first flush. The WAL's bytes are not counted (a stream's writes have none).
    pub fn write_amplification(&self) -> f64 {
        if self.flush_bytes == 0 {
            return 1.0;
        }
        (self.flush_bytes + self.compaction_bytes_written) as f64 / self.flush_bytes as f64
    }
}

/// Reads one segment's entries block by block, bypassing the cache.
struct Cursor<F: crate::io::DiskFile> {
    reader: Rc<SegmentReader<F>>,
    next_block: usize,
    entries: VecDeque<Entry>,
    /// Payload bytes of the block `entries` came from.
    buffered_bytes: u64,
    /// Payload bytes read so far.
    read_bytes: u64,
}

/// Bytes of blocks a cursor reads at once: large sequential reads, so a merge in a low-share
/// task queue is not one scheduling round per 4 KiB block.
pub const READ_AHEAD_BYTES: usize = 128 << 10;

impl<F: crate::io::DiskFile> Cursor<F> {
    async fn peek(&mut self) -> Result<Option<&Entry>> {
        while self.entries.is_empty() && self.next_block < self.reader.block_count() {
            let payloads = self.reader.blocks_from(self.next_block, READ_AHEAD_BYTES).await?;
            self.buffered_bytes = 0;
            for payload in &payloads {
                let decoded = self.reader.decode_block(self.next_block, payload)?;
                self.entries.extend(decoded.into_iter().map(EntryRef::to_owned));
                self.buffered_bytes += payload.len() as u64;
                self.read_bytes += payload.len() as u64;
                self.next_block += 1;
            }
        }
        if self.entries.is_empty() {
            self.buffered_bytes = 0;
        }
        Ok(self.entries.front())
    }
}

/// What the drop rules need, fixed when the merge starts.
pub(super) struct Rules {
    tables: HashMap<TableId, TableSettings>,
    options: CompactionOptions,
    now_ms: u64,
    /// Tombstones older than this (ms) may be reclaimed, if the merge is bottommost.
    reclaim_before_ms: Option<u64>,
    /// Bulk loads whose versions the merge drops (rolled back).
    rolled_back: Arc<BTreeSet<u32>>,
    /// Versions the merge drops by table and identity alone.
    garbage: Garbage,
}

impl<D: Disk> Engine<D> {
    /// The planner's view of this partition: its live runs, newest first, without those of bulk
    /// loads reads do not see (they must stay apart until the load commits or is rolled back)
    /// or that a rollback has pinned.
    pub fn compaction_snapshot(&self) -> Snapshot {
        let kept_apart = self.visibility.borrow().kept_apart();
        let loads = self.segment_loads.borrow();
        let runs = self
            .segments
            .borrow()
            .iter()
            .filter(|s| loads.get(&s.info().id).is_none_or(|l| !kept_apart.contains(l)))
            .map(|s| Run::of(s.info()))
            .collect();
        let max_versions = self.tables.borrow().values().map(|t| t.max_versions).max().unwrap_or(1);
        let grace_before_ms = self.grace_before_ms(self.clock.now_ms());
        let garbage = self.garbage(CompactionOptions::collect_garbage(), &kept_apart, grace_before_ms);
        Snapshot { runs, max_versions, garbage }
    }

    /// Tombstones, and watermarks, older than this (ms) are past `tombstone_grace_ms` at `now_ms`.
    fn grace_before_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.options.tombstone_grace_ms)
    }

    /// What `options` let a merge drop by table and identity alone: dropped tables, and each
    /// table's greatest collectable watermark (its load not in `kept_apart`, its point before
    /// `grace_before_ms`).
    fn garbage(&self, options: CompactionOptions, kept_apart: &BTreeSet<u32>, grace_before_ms: u64) -> Garbage {
        let mut garbage = Garbage::default();
        if options.purge_dropped_tables {
            garbage.dropped_tables = self.dropped_tables.borrow().clone();
        }
        if options.collect_watermarked {
            let tables = self.tables.borrow();
            for (table, marks) in self.watermarks.borrow().iter() {
                let Some(settings) = tables.get(table) else { continue };
                let collectable = marks.iter().filter(|w| {
                    w.bulk_load().is_none_or(|load| !kept_apart.contains(&load))
                        && w.point.ts.millis() < grace_before_ms
                });
                if let Some(mark) =
                    super::read::effective_watermark(collectable, settings.tie_rule, crate::ids::Ts::MAX)
                {
                    garbage.watermarks.insert(*table, mark);
                }
            }
        }
        garbage
    }

    /// Flush and compaction volumes since the engine opened.
    pub fn maintenance_counters(&self) -> MaintenanceCounters {
        self.counters.get()
    }

    /// Merges `ids` into one segment, as fast as the disk lets it.
    pub async fn compact(&self, ids: &[SegmentId], options: CompactionOptions) -> Result<CompactionOutcome> {
        self.compact_paced(ids, options, &Unpaced).await
    }

    /// Merges `ids` into one segment, its reads and writes spread over time by `pacer`.
    pub async fn compact_paced(
        &self,
        ids: &[SegmentId],
        options: CompactionOptions,
        pacer: &dyn Pacer,
    ) -> Result<CompactionOutcome> {
        self.check_poisoned()?;
        if ids.is_empty() {
            return Err(Error::InvalidArgument("compaction needs at least one segment"));
        }
        // Checked before any work: a segment named twice would be merged twice and removed
        // twice, and the manifest would refuse the edit only after the output was written, a
        // failure that poisons the engine.
        if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
            return Err(Error::InvalidArgument("compaction names a segment more than once"));
        }
        // One compaction at a time; flushes (and links) go on while it merges, and only its
        // commit takes the maintenance lock.
        let _running = self.compacting.lock().await;
        self.check_inputs(ids)?;
        let (inputs, bottommost) = {
            let live = self.segments.borrow();
            let inputs: Vec<Rc<SegmentReader<D::File>>> = ids
                .iter()
                .map(|id| live.iter().find(|s| s.info().id == *id).cloned().ok_or(Error::UnknownSegment(*id)))
                .collect::<Result<_>>()?;
            let min = inputs.iter().map(|s| &s.info().min_key).min().expect("at least one input").clone();
            let max = inputs.iter().map(|s| &s.info().max_key).max().expect("at least one input").clone();
            // Hidden loads' segments are live too: what they hold may show once they commit.
            let bottommost = live
                .iter()
                .filter(|s| !ids.contains(&s.info().id))
                .all(|s| s.info().max_key < min || s.info().min_key > max);
            (inputs, bottommost)
        };
        let bytes_in: u64 = inputs.iter().map(|s| s.info().size_bytes).sum();
        let now_ms = self.clock.now_ms();
        let grace_before_ms = self.grace_before_ms(now_ms);
        let rules = Rules {
            tables: self.tables.borrow().clone(),
            options,
            now_ms,
            reclaim_before_ms: (options.reclaim_tombstones && bottommost).then_some(grace_before_ms),
            rolled_back: if options.drop_rolled_back { self.visibility.borrow().snapshot() } else { Arc::default() },
            garbage: self.garbage(options, &self.visibility.borrow().kept_apart(), grace_before_ms),
        };
        // Blocks of an output that fits the cache go into it, as a flush's do, so reads do not
        // all miss once it replaces its inputs; a larger one would only evict everything else.
        // The output, not the inputs: a merge of overwrites sheds most of what it reads.
        let keep_blocks = if self.options.cache_on_write { self.options.block_cache_bytes } else { 0 };
        let mut merge = Merge {
            output: None,
            versions_in: 0,
            versions_out: 0,
            tombstones_reclaimed: 0,
            garbage_versions: 0,
            peak: 0,
            loads: BTreeSet::new(),
        };
        let dead = inputs.iter().all(|s| {
            let info = s.info();
            rules.garbage.covers_run(&info.min_key, &info.max_key, info.max_ts)
        });
        if dead {
            // Nothing in them can be kept: they go with the edit, unread.
            let versions: u64 = inputs.iter().map(|s| s.info().entry_count).sum();
            merge.versions_in = versions;
            merge.garbage_versions = versions;
        } else if let Err(e) = self.merge(inputs, &rules, keep_blocks, pacer, &mut merge).await {
            if let Some(segment) = merge.output.take() {
                return Err(self.abandon_segment(segment, e).await);
            }
            return Err(e);
        }
        let output = match merge.output.take() {
            Some(segment) => Some(self.end_segment(segment).await?),
            None => None,
        };
        let reader = match &output {
            Some(info) => Some(self.open_segment(info).await?),
            None => None,
        };
        let _guard = self.maintenance.lock().await;
        if let Err(e) = self.check_inputs(ids) {
            // A rollback took an input away (or hid it) while the merge ran: the output is
            // dropped, nothing changes.
            if let Some(info) = &output {
                self.cache.borrow_mut().evict_segment(info.id);
                let _ = self.disk.remove(&self.segment_path(info.id)).await;
            }
            return Err(e);
        }
        // The output holds versions of these loads: it is listed as theirs, so a rollback
        // knows where they now live (and recovery, that the load still has data here).
        let loads_linked = match &output {
            Some(info) => merge.loads.iter().map(|l| (*l, vec![info.id])).collect(),
            None => Vec::new(),
        };
        self.commit_edit(ManifestEdit {
            added: output.iter().cloned().collect(),
            removed: ids.to_vec(),
            loads_linked,
            ..Default::default()
        })
        .await?;
        self.install_segments(reader.into_iter().collect(), ids);
        for id in ids {
            // Best effort: a file left here is an orphan the next recovery deletes.
            let _ = self.disk.remove(&self.segment_path(*id)).await;
        }
        let _ = self.disk.sync_dir(&self.dir).await;
        let bytes_out = output.as_ref().map_or(0, |o| o.size_bytes);
        let mut counters = self.counters.get();
        counters.compactions += 1;
        counters.compaction_bytes_read += bytes_in;
        counters.compaction_bytes_written += bytes_out;
        counters.reclaimed_bytes += bytes_in.saturating_sub(bytes_out);
        counters.garbage_versions += merge.garbage_versions;
        self.counters.set(counters);
        Ok(CompactionOutcome {
            output,
            versions_in: merge.versions_in,
            versions_out: merge.versions_out,
            bytes_in,
            bytes_out,
            tombstones_reclaimed: merge.tombstones_reclaimed,
            garbage_versions: merge.garbage_versions,
            bottommost,
            peak_buffered_bytes: merge.peak,
        })
    }

    /// Refuses inputs that are not all live, or that belong to a bulk load reads do not see (its
    /// versions must stay apart until the load commits or is rolled back) or that a rollback
    /// has pinned.
    fn check_inputs(&self, ids: &[SegmentId]) -> Result<()> {
        let hidden = self.visibility.borrow().kept_apart();
        if ids.iter().any(|id| self.segment_loads.borrow().get(id).is_some_and(|l| hidden.contains(l))) {
            return Err(Error::InvalidArgument(
                "a segment of a bulk load being linked or rolled back cannot be compacted",
            ));
        }
        let live = self.segments.borrow();
        match ids.iter().find(|id| !live.iter().any(|s| s.info().id == **id)) {
            Some(id) => Err(Error::UnknownSegment(*id)),
            None => Ok(()),
        }
    }

    /// Merges the inputs in storage order, applies the drop rules per key, and writes what is
    /// kept to `merge.output` (created at the first kept version).
    async fn merge(
        &self,
        inputs: Vec<Rc<SegmentReader<D::File>>>,
        rules: &Rules,
        keep_blocks: usize,
        pacer: &dyn Pacer,
        merge: &mut Merge<D::File>,
    ) -> Result<()> {
        let mut cursors: Vec<Cursor<D::File>> = inputs
            .into_iter()
            .map(|reader| Cursor { reader, next_block: 0, entries: VecDeque::new(), buffered_bytes: 0, read_bytes: 0 })
            .collect();
        let mut group: Vec<Entry> = Vec::new();
        let mut group_bytes = 0u64;
        let mut paced_at = 0u64;
        loop {
            let moved = cursors.iter().map(|c| c.read_bytes).sum::<u64>()
                + merge.output.as_ref().map_or(0, |o| o.writer.bytes_written());
            if moved >= paced_at + PACE_STEP_BYTES {
                pacer.pace(moved).await;
                paced_at = moved;
            }
            for c in cursors.iter_mut() {
                c.peek().await?;
            }
            let buffered = cursors.iter().map(|c| c.buffered_bytes).sum::<u64>() + group_bytes;
            merge.peak = merge.peak.max(buffered);
            let mut min: Option<usize> = None;
            for (i, c) in cursors.iter().enumerate() {
                let Some(e) = c.entries.front() else { continue };
                let better = min.is_none_or(|m| {
                    e.as_ref().storage_cmp(&cursors[m].entries.front().expect("peeked").as_ref()).is_lt()
                });
                if better {
                    min = Some(i);
                }
            }
            let Some(m) = min else { break };
            let e = cursors[m].entries.pop_front().expect("peeked");
            merge.versions_in += 1;
            if rules.is_garbage(&e) {
                merge.garbage_versions += 1;
                continue;
            }
            if super::withdrawn(&rules.rolled_back, &e.version.id) {
                continue;
            }
            if group.first().is_some_and(|g| g.key != e.key) {
                self.write_group(std::mem::take(&mut group), rules, keep_blocks, merge).await?;
                group_bytes = 0;
            }
            // Storage order puts the winning payload of a shared identity first: drop the rest.
            if group.last().is_none_or(|g| g.version.id != e.version.id) {
                group_bytes += crate::codec::entry_encoded_len(&e.as_ref()) as u64;
                group.push(e);
            }
        }
        self.write_group(group, rules, keep_blocks, merge).await
    }

    async fn write_group(
        &self,
        group: Vec<Entry>,
        rules: &Rules,
        keep_blocks: usize,
        merge: &mut Merge<D::File>,
    ) -> Result<()> {
        let Some(first) = group.first() else { return Ok(()) };
        let key = first.key.clone();
        let kept = apply_rules(group, rules)?;
        if rules.reclaimable(&kept) && !self.memtables_hold(&key) {
            merge.tombstones_reclaimed += 1;
            return Ok(());
        }
        for e in &kept {
            if merge.output.is_none() {
                merge.output = Some(self.begin_segment(SegmentKind::Compaction, keep_blocks).await?);
            }
            let output = merge.output.as_mut().expect("just made");
            output.writer.add(e.as_ref()).await?;
            merge.versions_out += 1;
            if e.version.id.origin.kind == OriginKind::Bulk {
                merge.loads.insert(e.version.id.origin.source_id);
            }
        }
        Ok(())
    }

    /// True if the active or a frozen memtable holds any version of `key`.
    fn memtables_hold(&self, key: &Key) -> bool {
        let mem = self.mem.borrow();
        !mem.active.versions_of(key.as_ref()).is_empty()
            || mem.frozen.iter().any(|f| !f.table.versions_of(key.as_ref()).is_empty())
    }
}

impl Rules {
    /// Rule 1 alone (versions past `max_versions` or version retention), for a flush.
    pub(super) fn retention_only(tables: HashMap<TableId, TableSettings>, now_ms: u64) -> Rules {
        Rules {
            tables,
            options: CompactionOptions { enforce_retention: true, ..CompactionOptions::default() },
            now_ms,
            reclaim_before_ms: None,
            rolled_back: Arc::default(),
            garbage: Garbage::default(),
        }
    }

    /// True if `e` is garbage by its table and identity alone (its table dropped, or hidden by
    /// a collectable watermark).
    fn is_garbage(&self, e: &Entry) -> bool {
        if self.garbage.is_empty() {
            return false;
        }
        let rule = self.tables.get(&e.key.table).map_or(crate::version::TieRule::default(), |t| t.tie_rule);
        self.garbage.holds(e.key.table, &e.version.id, rule)
    }

    /// True if the rules know `table`'s settings.
    pub(super) fn knows(&self, table: TableId) -> bool {
        self.tables.contains_key(&table)
    }

    /// True if the key's greatest version is a tombstone (or an expired value turned into one)
    /// older than the grace period, in a bottommost merge: the key goes whole, with what the
    /// tombstone hides.
    fn reclaimable(&self, kept: &[Entry]) -> bool {
        let (Some(before), Some(first)) = (self.reclaim_before_ms, kept.first()) else { return false };
        let Some(settings) = self.tables.get(&first.key.table) else { return false };
        let top = kept.iter().max_by(|a, b| a.version.rule_cmp(&b.version, settings.tie_rule)).expect("not empty");
        top.version.payload == Payload::Tombstone && top.version.id.ts.millis() < before
    }
}

/// A merge in progress.
struct Merge<F: crate::io::DiskFile> {
    output: Option<NewSegment<F>>,
    versions_in: u64,
    versions_out: u64,
    tombstones_reclaimed: u64,
    garbage_versions: u64,
    peak: u64,
    /// The bulk loads whose versions the output holds.
    loads: BTreeSet<u32>,
}

/// Applies the drop rules to one key's versions (in storage order) and returns them in storage
/// order.
pub(super) fn apply_rules(mut group: Vec<Entry>, rules: &Rules) -> Result<Vec<Entry>> {
    let Some(first) = group.first() else { return Ok(group) };
    let settings = *rules.tables.get(&first.key.table).ok_or(Error::UnknownTable(first.key.table))?;
    let (options, now_ms) = (rules.options, rules.now_ms);
    if options.expire_values {
        for e in &mut group {
            if let Payload::Value { expires_at_ms: Some(at), .. } = e.version.payload
                && at <= now_ms
            {
                e.version.payload = Payload::Tombstone;
            }
        }
    }
    if options.enforce_retention {
        let rule = settings.tie_rule;
        let mut ranked: Vec<Version> = group.iter().map(|e| e.version.clone()).collect();
        ranked.sort_by(|a, b| b.rule_cmp(a, rule));
        let mut keep = Vec::with_capacity(ranked.len());
        for (i, v) in ranked.iter().enumerate() {
            let within_count = i < settings.max_versions.max(1) as usize;
            let within_time = i == 0
                || settings
                    .version_retention_ms
                    .is_none_or(|r| ranked[i - 1].id.ts.millis().saturating_add(r) > now_ms);
            if within_count && within_time {
                keep.push(v.id);
            }
        }
        group.retain(|e| keep.contains(&e.version.id));
    }
    Ok(group)
}
