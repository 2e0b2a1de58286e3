//! The compaction executor: merges a chosen set of segments into one, preserving every kept
//! version's identity and origin, and dropping only what [`CompactionOptions`] allows. Which
//! segments to merge, and when, is the planner's business (a later issue); here the caller
//! chooses. The new segment and the removal of the inputs commit in one manifest edit, so a
//! crash leaves either the inputs or the output live, never both or neither.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::SegmentId;
use crate::io::Disk;
use crate::manifest::ManifestEdit;
use crate::options::TableSettings;
use crate::record::{Entry, EntryRef};
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::segment::reader::SegmentReader;
use crate::version::{Payload, Version};
use std::collections::HashMap;
use std::rc::Rc;

/// What a compaction may drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionOptions {
    /// Drop versions beyond each table's `max_versions`, and superseded versions older than its
    /// `version_retention`. As-of reads of the past lose them.
    pub enforce_retention: bool,
    /// Turn values whose `expires_at` has passed into tombstones (same identity), freeing their
    /// bytes while still hiding older versions.
    pub expire_values: bool,
}

/// What a compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// The segment written, if anything was kept.
    pub output: Option<SegmentInfo>,
    /// Versions read.
    pub versions_in: u64,
    /// Versions written.
    pub versions_out: u64,
}

/// Reads one segment's entries block by block, bypassing the cache.
struct Cursor<F: crate::io::DiskFile> {
    reader: Rc<SegmentReader<F>>,
    next_block: usize,
    entries: std::collections::VecDeque<Entry>,
}

impl<F: crate::io::DiskFile> Cursor<F> {
    async fn peek(&mut self) -> Result<Option<&Entry>> {
        while self.entries.is_empty() && self.next_block < self.reader.block_count() {
            let payload = self.reader.block(self.next_block, None).await?;
            let decoded = self.reader.decode_block(self.next_block, &payload)?;
            self.entries.extend(decoded.into_iter().map(EntryRef::to_owned));
            self.next_block += 1;
        }
        Ok(self.entries.front())
    }
}

impl<D: Disk> Engine<D> {
    /// Merges `ids` into one segment.
    pub async fn compact(&self, ids: &[SegmentId], options: CompactionOptions) -> Result<CompactionOutcome> {
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
        let _guard = self.maintenance.lock().await;
        let hidden = self.visibility.borrow().snapshot();
        if ids.iter().any(|id| self.segment_loads.borrow().get(id).is_some_and(|l| hidden.contains(l))) {
            // Its versions must stay apart until the load commits or is rolled back.
            return Err(Error::InvalidArgument(
                "a segment of a bulk load being linked or rolled back cannot be compacted",
            ));
        }
        let inputs: Vec<Rc<SegmentReader<D::File>>> = {
            let live = self.segments.borrow();
            ids.iter()
                .map(|id| live.iter().find(|s| s.info().id == *id).cloned().ok_or(Error::UnknownSegment(*id)))
                .collect::<Result<_>>()?
        };
        let (kept, versions_in) = self.merge(inputs, options).await?;
        let versions_out = kept.len() as u64;
        let output = if kept.is_empty() {
            None
        } else {
            Some(self.write_segment(kept.iter().map(Entry::as_ref), SegmentKind::Compaction).await?)
        };
        let reader = match &output {
            Some(info) => Some(self.open_segment(info).await?),
            None => None,
        };
        self.commit_edit(ManifestEdit {
            added: output.iter().cloned().collect(),
            removed: ids.to_vec(),
            ..Default::default()
        })
        .await?;
        self.install_segments(reader.into_iter().collect(), ids);
        for id in ids {
            // Best effort: a file left here is an orphan the next recovery deletes.
            let _ = self.disk.remove(&self.segment_path(*id)).await;
        }
        let _ = self.disk.sync_dir(&self.dir).await;
        Ok(CompactionOutcome { output, versions_in, versions_out })
    }

    /// Merges the inputs in storage order and applies the drop rules per key. Holds the kept
    /// entries in memory: bounded by the inputs' size, which the caller chooses.
    async fn merge(
        &self,
        inputs: Vec<Rc<SegmentReader<D::File>>>,
        options: CompactionOptions,
    ) -> Result<(Vec<Entry>, u64)> {
        let mut cursors: Vec<Cursor<D::File>> =
            inputs.into_iter().map(|reader| Cursor { reader, next_block: 0, entries: Default::default() }).collect();
        let tables = self.tables.borrow().clone();
        let now_ms = self.clock.now_ms();
        let mut kept = Vec::new();
        let mut group: Vec<Entry> = Vec::new();
        let mut versions_in = 0;
        loop {
            for c in cursors.iter_mut() {
                c.peek().await?;
            }
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
            versions_in += 1;
            if group.first().is_some_and(|g| g.key != e.key) {
                kept.extend(apply_rules(std::mem::take(&mut group), &tables, options, now_ms)?);
            }
            // Storage order puts the winning payload of a shared identity first: drop the rest.
            if group.last().is_none_or(|g| g.version.id != e.version.id) {
                group.push(e);
            }
        }
        kept.extend(apply_rules(group, &tables, options, now_ms)?);
        Ok((kept, versions_in))
    }
}

/// Applies the drop rules to one key's versions (in storage order) and returns them in storage
/// order.
fn apply_rules(
    mut group: Vec<Entry>,
    tables: &HashMap<crate::ids::TableId, TableSettings>,
    options: CompactionOptions,
    now_ms: u64,
) -> Result<Vec<Entry>> {
    let Some(first) = group.first() else { return Ok(group) };
    let settings = *tables.get(&first.key.table).ok_or(Error::UnknownTable(first.key.table))?;
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
