//! Flush: freeze the active memtable, write each frozen memtable (oldest first) as a segment,
//! and commit it with a manifest edit that also records the WAL position it covers. Steps, in
//! sync order: segment written and fdatasynced; directory synced; manifest edit appended and
//! fdatasynced; only then is the segment installed and the frozen memtable dropped. A crash
//! before the edit leaves an orphan file that recovery deletes; after it, the WAL replay skips
//! what the segment covers. The same edit commits the source positions (Kafka offsets) noted
//! while the memtable was active, so a position is durable exactly when the versions it covers
//! are.

use super::compaction::{Rules, apply_rules};
use super::{Engine, Frozen};
use crate::error::Result;
use crate::ids::Lsn;
use crate::io::Disk;
use crate::manifest::ManifestEdit;
use crate::record::{Entry, EntryRef};
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::segment::reader::SegmentReader;
use crate::segment::writer::{SegmentLayout, SegmentWriter};
use std::path::PathBuf;
use std::rc::Rc;

/// A segment file being written.
pub(super) struct NewSegment<F: crate::io::DiskFile> {
    id: crate::ids::SegmentId,
    path: PathBuf,
    /// Entries go here, in storage order.
    pub(super) writer: SegmentWriter<F>,
}

impl<D: Disk> Engine<D> {
    /// Freezes the active memtable and flushes every frozen memtable. Returns the segments
    /// written (none if there was nothing to flush).
    pub async fn flush(&self) -> Result<Vec<SegmentInfo>> {
        self.check_poisoned()?;
        let _guard = self.maintenance.lock().await;
        self.freeze();
        let mut written = Vec::new();
        loop {
            let Some(frozen) = self.mem.borrow().frozen.first().cloned() else { break };
            let edit_extra = ManifestEdit {
                wal_position: Some(frozen.covers),
                source_offsets: frozen.offsets.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                ..Default::default()
            };
            let info = if frozen.table.is_empty() {
                self.commit_edit(edit_extra).await?;
                None
            } else {
                let info = if self.options.retain_on_flush {
                    self.write_retained(&frozen.table).await?
                } else {
                    self.write_segment(frozen.table.iter(), SegmentKind::Flush).await?
                };
                let reader = self.open_segment(&info).await?;
                self.commit_edit(ManifestEdit { added: vec![info.clone()], ..edit_extra }).await?;
                self.install_segments(vec![reader], &[]);
                Some(info)
            };
            self.mem.borrow_mut().frozen.remove(0);
            self.recount_memory();
            self.report_wal_needs();
            written.extend(info);
        }
        // Best effort: a WAL file left behind here is retired by the next rotation or flush.
        let _ = self.wal.retire_unneeded().await;
        Ok(written)
    }

    /// Moves the active memtable to the frozen list, if it holds anything.
    fn freeze(&self) {
        let mut mem = self.mem.borrow_mut();
        if mem.active.is_empty() && mem.active_oldest.is_none() && mem.active_offsets.is_empty() {
            return;
        }
        // Records still waiting for durability will be applied to the next memtable, so this
        // one covers only what precedes the oldest of them.
        let covers = match mem.inflight.first() {
            Some(oldest) => Lsn(oldest.0 - 1),
            None => mem.last_lsn,
        };
        let table = Rc::new(std::mem::take(&mut mem.active));
        let oldest = mem.active_oldest.take();
        let offsets = std::mem::take(&mut mem.active_offsets);
        mem.active_streamed_since_ms = None;
        mem.frozen.push(Rc::new(Frozen { table, covers, oldest, offsets }));
        drop(mem);
        // The new active memtable holds nothing yet, but a tally must not rest on that.
        self.recount_memory();
    }

    /// Writes `entries` (in storage order) as a new segment file and makes it durable, directory
    /// entry included. On failure the partial file is removed and the engine poisoned if the
    /// failure left durable state unknown.
    pub(super) async fn write_segment<'a>(
        &self,
        entries: impl Iterator<Item = EntryRef<'a>>,
        kind: SegmentKind,
    ) -> Result<SegmentInfo> {
        let mut segment = self.begin_segment(kind, self.flush_keeps_blocks()).await?;
        for e in entries {
            if let Err(e) = segment.writer.add(e).await {
                return Err(self.abandon_segment(segment, e).await);
            }
        }
        let info = self.end_segment(segment).await?;
        if kind == SegmentKind::Flush {
            self.count_flush(&info);
        }
        Ok(info)
    }

    /// Writes `table` as a flush segment without the versions it pushes past their table's
    /// `max_versions` or version retention ([`crate::EngineOptions::retain_on_flush`]): each
    /// key's versions are ranked among themselves, so only versions superseded within this
    /// memtable go.
    async fn write_retained(&self, table: &crate::memtable::Memtable) -> Result<SegmentInfo> {
        let rules = Rules::retention_only(self.tables.borrow().clone(), self.clock.now_ms());
        let mut segment = self.begin_segment(SegmentKind::Flush, self.flush_keeps_blocks()).await?;
        let mut group: Vec<Entry> = Vec::new();
        let mut entries = table.iter().map(EntryRef::to_owned).peekable();
        while let Some(e) = entries.next() {
            let last_of_key = entries.peek().is_none_or(|next| next.key != e.key);
            group.push(e);
            if !last_of_key {
                continue;
            }
            let group = std::mem::take(&mut group);
            // A table dropped since its writes landed has no settings here: kept whole.
            let known = group.first().is_some_and(|g| rules.knows(g.key.table));
            let kept = match if known { apply_rules(group, &rules) } else { Ok(group) } {
                Ok(kept) => kept,
                Err(e) => return Err(self.abandon_segment(segment, e).await),
            };
            for e in &kept {
                if let Err(err) = segment.writer.add(e.as_ref()).await {
                    return Err(self.abandon_segment(segment, err).await);
                }
            }
        }
        let info = self.end_segment(segment).await?;
        self.count_flush(&info);
        Ok(info)
    }

    /// Adds a flush's segment to the maintenance counters.
    fn count_flush(&self, info: &SegmentInfo) {
        let mut counters = self.counters.get();
        counters.flushes += 1;
        counters.flush_bytes += info.size_bytes;
        self.counters.set(counters);
    }

    /// What a flush keeps of its blocks for the cache: all of them (a memtable's worth), unless
    /// the engine caches nothing on write.
    fn flush_keeps_blocks(&self) -> usize {
        if self.options.cache_on_write { usize::MAX } else { 0 }
    }

    /// Starts a new segment file; entries go to its `writer`, then [`Engine::end_segment`] or
    /// [`Engine::abandon_segment`].
    /// Its data blocks go into the cache when they add up to at most `keep_blocks_bytes`.
    pub(super) async fn begin_segment(
        &self,
        kind: SegmentKind,
        keep_blocks_bytes: usize,
    ) -> Result<NewSegment<D::File>> {
        let id = self.allocate_segment_id();
        let path = self.segment_path(id);
        let layout = SegmentLayout {
            block_target_bytes: self.options.block_target_bytes,
            bloom_bits_per_key: self.options.bloom_bits_per_key,
            preallocate_bytes: self.options.segment_preallocate_bytes,
            keep_blocks_bytes,
        };
        match SegmentWriter::create(&self.disk, &path, id, kind, layout).await {
            Ok(writer) => Ok(NewSegment { id, path, writer }),
            Err(e) => Err(self.fail_segment(&path, e).await),
        }
    }

    /// Finishes `segment`, makes it and its directory entry durable, and puts its kept blocks
    /// in the cache.
    pub(super) async fn end_segment(&self, segment: NewSegment<D::File>) -> Result<SegmentInfo> {
        let NewSegment { id, path, writer } = segment;
        let result = async {
            let finished = writer.finish().await?;
            self.disk.sync_dir(&self.dir).await?;
            Ok(finished)
        }
        .await;
        match result {
            Ok(finished) => {
                let mut cache = self.cache.borrow_mut();
                for (n, payload) in finished.blocks.into_iter().enumerate() {
                    cache.insert(id, u32::try_from(n).expect("under 4G blocks"), payload);
                }
                Ok(finished.info)
            }
            Err(e) => Err(self.fail_segment(&path, e).await),
        }
    }

    /// Gives up on `segment` after `error`: see [`Engine::fail_segment`].
    pub(super) async fn abandon_segment(
        &self,
        segment: NewSegment<D::File>,
        error: crate::error::Error,
    ) -> crate::error::Error {
        let NewSegment { path, writer, .. } = segment;
        drop(writer);
        self.fail_segment(&path, error).await
    }

    /// Removes a segment file that failed, and poisons the engine if the failure left durable
    /// state unknown. Returns the error.
    async fn fail_segment(&self, path: &std::path::Path, error: crate::error::Error) -> crate::error::Error {
        if matches!(error, crate::error::Error::Io { .. }) {
            // A failed write or sync: never retried, as the kernel may have dropped the dirty
            // pages it could not write.
            self.poison("segment write");
        }
        // Best effort: an orphan left here is deleted by the next recovery.
        let _ = self.disk.remove(path).await;
        error
    }

    pub(super) async fn open_segment(&self, info: &SegmentInfo) -> Result<Rc<SegmentReader<D::File>>> {
        let path = self.segment_path(info.id);
        let file = self.disk.open(&path, crate::io::OpenMode::Existing).await?;
        Ok(Rc::new(SegmentReader::open(file, &path, info).await?))
    }

    /// Commits one manifest edit and applies its watermarks. Any failure poisons: whether the
    /// edit is durable is unknown.
    pub(super) async fn commit_edit(&self, edit: ManifestEdit) -> Result<()> {
        self.check_poisoned()?;
        let mut manifest = self.manifest.lock().await;
        if let Err(e) = manifest.commit(&edit).await {
            self.poison("manifest commit");
            return Err(e);
        }
        self.mirror_manifest(manifest.state());
        Ok(())
    }

    /// Copies what reads consult directly from the manifest's state: watermarks, and which
    /// bulk load each of the loads' own segments belongs to. (A load also lists the merged
    /// segments that hold its versions among others; those are never left out whole.)
    pub(super) fn mirror_manifest(&self, state: &crate::manifest::ManifestState) {
        *self.watermarks.borrow_mut() = state.watermarks.clone();
        *self.segment_loads.borrow_mut() = state
            .loads
            .iter()
            .flat_map(|(load, ids)| ids.iter().filter(|id| super::link::is_own(state, id)).map(move |id| (*id, *load)))
            .collect();
    }
}
