//! Bulk links, one partition's side. The daemon runs the two-phase commit across partitions:
//!
//! 1. **Prepare** ([`Engine::prepare_bulk_segment`]): the validated file gets an id here and a
//!    name in the partition's directory (a hard link, or a copy across filesystems), and both
//!    the file and the directory entry are made durable. It is not yet part of the partition: a
//!    crash now leaves an orphan that recovery deletes.
//! 2. **Commit** ([`Engine::commit_bulk_load`]): one manifest edit, through the same commit path
//!    flushes use, adds the segment, records it as the load's and adds a replace load's
//!    watermark. Reads skip both while the load is hidden (see [`crate::bulk::visibility`]):
//!    the daemon shows the load once its load-level commit record is durable.
//!
//! Rollback ([`Engine::unlink_bulk_load`]) is one edit that removes the load's own segments,
//! its watermark and its link. No data byte is rewritten either way. A compaction that merges
//! a load's segment lists its output as the load's too, since it holds the load's versions:
//! after a rollback, reads skip those versions by their origin, and a later compaction drops
//! them.

use super::Engine;
use crate::error::{Error, Result};
use crate::ids::{SegmentId, TableId};
use crate::io::{Disk, DiskFile, OpenMode};
use crate::manifest::{ManifestEdit, ManifestState};
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::version::Watermark;
use std::collections::BTreeMap;
use std::path::Path;

/// Bytes copied per write when a bulk file cannot be hard-linked.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// Where a load's versions live in a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadSegments {
    /// The segments its link added, still as linked.
    pub own: Vec<SegmentId>,
    /// Compaction outputs holding some of its versions among others.
    pub merged: Vec<SegmentId>,
}

impl LoadSegments {
    /// `load`'s segments in `state`, split by kind; `None` if the partition does not list it.
    pub(super) fn of(state: &ManifestState, load: u32) -> Option<LoadSegments> {
        let (own, merged) = state.loads.get(&load)?.iter().partition(|id| is_own(state, id));
        Some(LoadSegments { own, merged })
    }
}

/// True if `id` is a segment a link added (kind bulk), not a compaction output holding some of a
/// load's versions.
pub(super) fn is_own(state: &ManifestState, id: &SegmentId) -> bool {
    state.segments.get(id).is_some_and(|s| s.kind == SegmentKind::Bulk)
}

/// A bulk file prepared in a partition: named, durable, not yet committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedSegment {
    /// Its summary under the id this partition gave it.
    pub info: SegmentInfo,
    /// True if it was copied because a hard link was impossible (another filesystem).
    pub copied: bool,
}

impl<D: Disk> Engine<D> {
    /// Phase one of a link: names the validated bulk file `source` (summary `info`, as written)
    /// in this partition and makes it durable.
    pub async fn prepare_bulk_segment(&self, source: &Path, info: &SegmentInfo) -> Result<PreparedSegment> {
        self.check_poisoned()?;
        if info.kind != SegmentKind::Bulk {
            return Err(Error::InvalidArgument("only bulk segments are linked"));
        }
        let id = self.allocate_segment_id();
        let path = self.segment_path(id);
        let copied = match self.disk.hard_link(source, &path).await {
            Ok(()) => false,
            Err(e) if e.source.raw_os_error() == Some(libc::EXDEV) => {
                self.copy_file(source, &path, info.size_bytes).await?;
                true
            }
            Err(e) => return Err(e.into()),
        };
        let synced = async {
            let file = self.disk.open(&path, OpenMode::Existing).await?;
            let synced = file.sync().await;
            file.close().await?;
            synced?;
            self.disk.sync_dir(&self.dir).await
        }
        .await;
        if let Err(e) = synced {
            let _ = self.disk.remove(&path).await;
            return Err(e.into());
        }
        Ok(PreparedSegment { info: SegmentInfo { id, ..info.clone() }, copied })
    }

    async fn copy_file(&self, source: &Path, to: &Path, len: u64) -> Result<()> {
        let from = self.disk.open(source, OpenMode::Existing).await?;
        let result = async {
            let out = self.disk.open(to, OpenMode::CreateNew).await?;
            let copied = async {
                out.preallocate(len).await?;
                let mut offset = 0u64;
                while offset < len {
                    let n = COPY_CHUNK_BYTES.min(usize::try_from(len - offset).unwrap_or(COPY_CHUNK_BYTES));
                    let buf = from.read_at(offset, crate::io::align_up(n)).await?;
                    out.write_at(offset, buf).await?;
                    offset += n as u64;
                }
                out.truncate(len).await
            }
            .await;
            out.close().await?;
            copied
        }
        .await;
        from.close().await?;
        if result.is_err() {
            let _ = self.disk.remove(to).await;
        }
        Ok(result?)
    }

    /// Removes a prepared segment that will not be committed.
    pub async fn discard_prepared(&self, prepared: &PreparedSegment) -> Result<()> {
        self.disk.remove(&self.segment_path(prepared.info.id)).await?;
        Ok(self.disk.sync_dir(&self.dir).await?)
    }

    /// Phase two of a link, in this partition: one manifest edit adds the prepared segment (if
    /// the load has records here), records the load, and adds its watermark (a replace load's).
    pub async fn commit_bulk_load(
        &self,
        load: u32,
        prepared: Option<&PreparedSegment>,
        watermark: Option<(TableId, Watermark)>,
    ) -> Result<()> {
        self.check_poisoned()?;
        if let Some((table, mark)) = watermark {
            self.table(table)?;
            if mark.bulk_load() != Some(load) {
                return Err(Error::InvalidArgument("a load's watermark carries the load's own origin"));
            }
        }
        let _guard = self.maintenance.lock().await;
        let reader = match prepared {
            Some(p) => Some(self.open_segment(&p.info).await?),
            None => None,
        };
        let ids: Vec<SegmentId> = prepared.iter().map(|p| p.info.id).collect();
        self.commit_edit(ManifestEdit {
            added: prepared.iter().map(|p| p.info.clone()).collect(),
            watermarks_added: watermark.into_iter().collect(),
            loads_linked: vec![(load, ids)],
            ..Default::default()
        })
        .await?;
        self.install_segments(reader.into_iter().collect(), &[]);
        Ok(())
    }

    /// Withdraws `load` from this partition: one manifest edit removes its own segments (those
    /// the link added), its watermarks and, unless merged segments still hold some of its
    /// versions, its link; then the files go. Versions in merged segments stay until a
    /// compaction drops them ([`crate::CompactionOptions::drop_rolled_back`]); reads skip them
    /// while the load is hidden. Returns false if there was nothing to withdraw.
    pub async fn unlink_bulk_load(&self, load: u32) -> Result<bool> {
        self.check_poisoned()?;
        let _guard = self.maintenance.lock().await;
        let (own, merged, marks) = {
            let manifest = self.manifest.lock().await;
            let state = manifest.state();
            let Some(LoadSegments { own, merged }) = LoadSegments::of(state, load) else { return Ok(false) };
            let marks: Vec<(TableId, Watermark)> = state
                .watermarks
                .iter()
                .flat_map(|(t, ms)| ms.iter().map(move |m| (*t, *m)))
                .filter(|(_, m)| m.bulk_load() == Some(load))
                .collect();
            (own, merged, marks)
        };
        if own.is_empty() && marks.is_empty() && !merged.is_empty() {
            return Ok(false);
        }
        self.commit_edit(ManifestEdit {
            removed: own.clone(),
            watermarks_removed: marks,
            loads_unlinked: if merged.is_empty() { vec![load] } else { Vec::new() },
            ..Default::default()
        })
        .await?;
        self.install_segments(Vec::new(), &own);
        for id in &own {
            // Best effort: a file left here is an orphan the next recovery deletes.
            let _ = self.disk.remove(&self.segment_path(*id)).await;
        }
        let _ = self.disk.sync_dir(&self.dir).await;
        Ok(true)
    }

    /// Segments of `load` here: its own (as linked) and the merged ones that hold some of its
    /// versions among others.
    pub async fn load_segments(&self, load: u32) -> LoadSegments {
        LoadSegments::of(self.manifest.lock().await.state(), load).unwrap_or_default()
    }

    /// The bulk loads linked here, each with the live segments that hold its versions: its own,
    /// and merged ones (a replace load with no record here has none).
    pub async fn linked_loads(&self) -> BTreeMap<u32, Vec<SegmentId>> {
        self.manifest.lock().await.state().loads.clone()
    }
}
