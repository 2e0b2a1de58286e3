//! The manifest: one partition's durable list of segments, the WAL position they cover, source
//! offsets and table watermarks, kept as a log of edits (see [`crate::log`]) plus a snapshot.
//!
//! Every change to what a partition holds on disk (a flush, a compaction, later a bulk link)
//! commits by one [`ManifestEdit`]: appended, fdatasynced, then applied in memory. `CURRENT`
//! names the live manifest file. Recovery replays the live file and then starts a new one whose
//! first edit is a snapshot of the state, so a manifest never grows without bound and a
//! recovered file is never appended to. The manifest does not open segments.

use crate::codec::{Decoder, Encoder};
use crate::error::{Error, Result};
use crate::ids::{Lsn, SegmentId, TableId, Ts};
use crate::io::{ALIGN, Disk, DiskFile, OpenMode};
use crate::log::{self, LogHeader, LogKind, LogRead, LogWriter};
use crate::segment::block::{self, BlockKind};
use crate::segment::info::SegmentInfo;
use crate::version::{Origin, OriginKind, VersionId, Watermark};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One atomic change to a partition's durable state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestEdit {
    /// Segments that become part of the partition.
    pub added: Vec<SegmentInfo>,
    /// Segments that stop being part of it.
    pub removed: Vec<SegmentId>,
    /// If set, every WAL record of this partition at or below it is in the segments.
    pub wal_position: Option<Lsn>,
    /// Source offsets to record (opaque keys, e.g. a Kafka topic-partition), replacing old ones.
    pub source_offsets: Vec<(Vec<u8>, u64)>,
    /// Table watermarks to add.
    pub watermarks_added: Vec<(TableId, Watermark)>,
    /// Table watermarks to remove.
    pub watermarks_removed: Vec<(TableId, Watermark)>,
    /// Bulk loads linked into the partition, each with its segments (live, or added by this
    /// edit). A load may list no segment: a replace load with no record here still links its
    /// watermark.
    pub loads_linked: Vec<(u32, Vec<SegmentId>)>,
    /// Bulk loads the partition forgets (rolled back or aborted); their segments are removed
    /// by the same edit.
    pub loads_unlinked: Vec<u32>,
}

/// A partition's durable state: the fold of every edit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Live segments by id.
    pub segments: BTreeMap<SegmentId, SegmentInfo>,
    /// WAL records at or below this are in segments.
    pub wal_position: Lsn,
    /// Source offsets.
    pub source_offsets: BTreeMap<Vec<u8>, u64>,
    /// Watermarks per table.
    pub watermarks: BTreeMap<TableId, Vec<Watermark>>,
    /// Linked bulk loads and which of their segments are still live (compaction removes them).
    pub loads: BTreeMap<u32, Vec<SegmentId>>,
}

/// Why an edit does not fold into a manifest state: it contradicts what the state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EditConflict {
    /// It removes a segment that is not live.
    RemovesMissing {
        /// The segment.
        segment: SegmentId,
    },
    /// It adds a segment that is already live.
    AddsLive {
        /// The segment.
        segment: SegmentId,
    },
    /// It links a load to a segment that is not live.
    LinksMissing {
        /// The load.
        load: u32,
        /// The segment.
        segment: SegmentId,
    },
}

impl EditConflict {
    /// The reason an [`Error::Corrupt`] carries for it.
    pub fn reason(&self) -> &'static str {
        match self {
            EditConflict::RemovesMissing { .. } => "edit removes a segment that is not live",
            EditConflict::AddsLive { .. } => "edit adds a segment that is already live",
            EditConflict::LinksMissing { .. } => "edit links a load segment that is not live",
        }
    }
}

impl ManifestState {
    /// Applies an edit, checking it makes sense against the state.
    pub fn apply(&mut self, edit: &ManifestEdit) -> std::result::Result<(), EditConflict> {
        for id in &edit.removed {
            if self.segments.remove(id).is_none() {
                return Err(EditConflict::RemovesMissing { segment: *id });
            }
        }
        for info in &edit.added {
            if self.segments.insert(info.id, info.clone()).is_some() {
                return Err(EditConflict::AddsLive { segment: info.id });
            }
        }
        if let Some(p) = edit.wal_position {
            self.wal_position = self.wal_position.max(p);
        }
        for (k, v) in &edit.source_offsets {
            self.source_offsets.insert(k.clone(), *v);
        }
        for (t, w) in &edit.watermarks_added {
            let marks = self.watermarks.entry(*t).or_default();
            if !marks.contains(w) {
                marks.push(*w);
            }
        }
        for (t, w) in &edit.watermarks_removed {
            if let Some(marks) = self.watermarks.get_mut(t) {
                marks.retain(|m| m != w);
            }
        }
        self.watermarks.retain(|_, m| !m.is_empty());
        for segments in self.loads.values_mut() {
            segments.retain(|id| !edit.removed.contains(id));
        }
        for (load, segments) in &edit.loads_linked {
            if let Some(id) = segments.iter().find(|id| !self.segments.contains_key(id)) {
                return Err(EditConflict::LinksMissing { load: *load, segment: *id });
            }
            let live = self.loads.entry(*load).or_default();
            live.extend(segments.iter().copied());
            live.sort_unstable();
            live.dedup();
        }
        for load in &edit.loads_unlinked {
            self.loads.remove(load);
        }
        Ok(())
    }

    /// The state as one edit, for a snapshot.
    pub fn snapshot(&self) -> ManifestEdit {
        ManifestEdit {
            added: self.segments.values().cloned().collect(),
            removed: Vec::new(),
            wal_position: Some(self.wal_position),
            source_offsets: self.source_offsets.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            watermarks_added: self.watermarks.iter().flat_map(|(t, ms)| ms.iter().map(|m| (*t, *m))).collect(),
            watermarks_removed: Vec::new(),
            loads_linked: self.loads.iter().map(|(l, s)| (*l, s.clone())).collect(),
            loads_unlinked: Vec::new(),
        }
    }

    /// Greatest segment id ever listed.
    pub fn max_segment_id(&self) -> Option<SegmentId> {
        self.segments.keys().next_back().copied()
    }
}

impl ManifestEdit {
    /// Encodes the edit (FORMAT.md, "Manifest edit").
    pub fn encode(&self, enc: &mut Encoder) {
        enc.u32(self.added.len() as u32);
        for s in &self.added {
            s.encode(enc);
        }
        enc.u32(self.removed.len() as u32);
        for id in &self.removed {
            enc.u64(id.0);
        }
        match self.wal_position {
            Some(p) => {
                enc.u8(1);
                enc.u64(p.0);
            }
            None => enc.u8(0),
        }
        enc.u32(self.source_offsets.len() as u32);
        for (k, v) in &self.source_offsets {
            enc.bytes32(k);
            enc.u64(*v);
        }
        for list in [&self.watermarks_added, &self.watermarks_removed] {
            enc.u32(list.len() as u32);
            for (t, w) in list {
                enc.u32(t.0);
                enc.u64(w.point.ts.0);
                enc.u8(w.point.origin.kind.code());
                enc.u32(w.point.origin.source_id);
                enc.u64(w.point.origin.seq);
            }
        }
        // The bulk section is optional, so edits without one encode as they did before it.
        if !self.loads_linked.is_empty() || !self.loads_unlinked.is_empty() {
            enc.u32(self.loads_linked.len() as u32);
            for (load, segments) in &self.loads_linked {
                enc.u32(*load);
                enc.u32(segments.len() as u32);
                for id in segments {
                    enc.u64(id.0);
                }
            }
            enc.u32(self.loads_unlinked.len() as u32);
            for load in &self.loads_unlinked {
                enc.u32(*load);
            }
        }
    }

    /// Decodes what [`ManifestEdit::encode`] wrote.
    pub fn decode(dec: &mut Decoder<'_>) -> std::result::Result<ManifestEdit, crate::codec::DecodeError> {
        let mut edit = ManifestEdit::default();
        for _ in 0..dec.count(60)? {
            edit.added.push(SegmentInfo::decode(dec)?);
        }
        for _ in 0..dec.count(8)? {
            edit.removed.push(SegmentId(dec.u64()?));
        }
        edit.wal_position = match dec.u8()? {
            0 => None,
            1 => Some(Lsn(dec.u64()?)),
            _ => return Err(dec.error("bad wal position tag")),
        };
        for _ in 0..dec.count(12)? {
            let k = dec.bytes32()?.to_vec();
            edit.source_offsets.push((k, dec.u64()?));
        }
        for removed in [false, true] {
            for _ in 0..dec.count(25)? {
                let t = TableId(dec.u32()?);
                let ts = Ts(dec.u64()?);
                let kind = OriginKind::from_code(dec.u8()?).ok_or(dec.error("unknown origin kind"))?;
                let point = VersionId { ts, origin: Origin { kind, source_id: dec.u32()?, seq: dec.u64()? } };
                let list = if removed { &mut edit.watermarks_removed } else { &mut edit.watermarks_added };
                list.push((t, Watermark { point }));
            }
        }
        if dec.remaining() > 0 {
            for _ in 0..dec.count(8)? {
                let load = dec.u32()?;
                let segments =
                    (0..dec.count(8)?).map(|_| dec.u64().map(SegmentId)).collect::<std::result::Result<_, _>>()?;
                edit.loads_linked.push((load, segments));
            }
            for _ in 0..dec.count(4)? {
                edit.loads_unlinked.push(dec.u32()?);
            }
        }
        dec.finish()?;
        Ok(edit)
    }
}

/// The live manifest of one partition.
pub struct Manifest<D: Disk> {
    disk: D,
    dir: PathBuf,
    writer: LogWriter<D::File>,
    state: ManifestState,
    edits_since_snapshot: usize,
    snapshot_every: usize,
}

/// Name of the pointer file.
pub const CURRENT: &str = "CURRENT";

fn manifest_name(number: u64) -> String {
    format!("MANIFEST-{number:06}")
}

/// Parses a manifest file name.
pub fn parse_manifest_name(name: &str) -> Option<u64> {
    name.strip_prefix("MANIFEST-").filter(|d| d.len() == 6).and_then(|d| d.parse().ok())
}

impl<D: Disk> Manifest<D> {
    /// Creates the first manifest of a new partition.
    pub async fn create(disk: D, dir: &Path, snapshot_every: usize) -> Result<Self> {
        Self::start(disk, dir, 1, ManifestState::default(), snapshot_every).await
    }

    /// Recovers the manifest `CURRENT` names, then starts a new file holding its snapshot.
    pub async fn recover(disk: D, dir: &Path, snapshot_every: usize) -> Result<(Self, bool)> {
        let current = dir.join(CURRENT);
        let file = disk.open(&current, OpenMode::Existing).await?;
        let buf = file.read_at(0, ALIGN).await;
        file.close().await?;
        let buf = buf?;
        let payload = block::unseal(buf.as_slice(), BlockKind::Current, &current, 0)?;
        let number = Decoder::new(payload).u64().map_err(|e| Error::Corrupt {
            file: current.clone(),
            offset: 0,
            reason: e.reason,
        })?;
        let path = dir.join(manifest_name(number));
        let file = disk.open(&path, OpenMode::Existing).await?;
        let read = log::read_log(&file, &path, LogKind::Manifest).await;
        file.close().await?;
        let LogRead::Log(log) = read? else {
            return Err(Error::Corrupt { file: path, offset: 0, reason: "CURRENT names a manifest with no header" });
        };
        if log.batches.is_empty() {
            return Err(Error::Corrupt { file: path, offset: 0, reason: "manifest lost its snapshot" });
        }
        let mut state = ManifestState::default();
        for (_, payload) in &log.batches {
            let corrupt = |reason| Error::Corrupt { file: path.clone(), offset: 0, reason };
            let edit = ManifestEdit::decode(&mut Decoder::new(payload)).map_err(|e| corrupt(e.reason))?;
            state.apply(&edit).map_err(|c| corrupt(c.reason()))?;
        }
        let manifest = Self::start(disk, dir, number + 1, state, snapshot_every).await?;
        Ok((manifest, log.torn_tail))
    }

    async fn start(disk: D, dir: &Path, number: u64, state: ManifestState, snapshot_every: usize) -> Result<Self> {
        let path = dir.join(manifest_name(number));
        if disk.exists(&path).await? {
            // Left by a crash before CURRENT pointed at it: never live, safe to replace.
            disk.remove(&path).await?;
        }
        let file = disk.open(&path, OpenMode::CreateNew).await?;
        let header = LogHeader {
            format_version: log::FORMAT_VERSION,
            kind: LogKind::Manifest,
            file_number: number,
            salt: fastrand::u64(..),
            first_seq: 1,
        };
        let mut writer = LogWriter::create(file, &path, header, 1 << 20).await?;
        let mut enc = Encoder::default();
        state.snapshot().encode(&mut enc);
        writer.append(&enc.bytes).await?;
        disk.sync_dir(dir).await?;
        Self::point_current_at(&disk, dir, number).await?;
        for name in disk.list(dir).await? {
            if parse_manifest_name(&name).is_some_and(|n| n != number) {
                disk.remove(&dir.join(name)).await?;
            }
        }
        disk.sync_dir(dir).await?;
        Ok(Manifest { disk, dir: dir.to_path_buf(), writer, state, edits_since_snapshot: 0, snapshot_every })
    }

    async fn point_current_at(disk: &D, dir: &Path, number: u64) -> Result<()> {
        let tmp = dir.join("CURRENT.tmp");
        if disk.exists(&tmp).await? {
            disk.remove(&tmp).await?;
        }
        let file = disk.open(&tmp, OpenMode::CreateNew).await?;
        let mut enc = Encoder::default();
        enc.u64(number);
        file.write_at(0, block::seal(BlockKind::Current, &enc.bytes)).await?;
        file.sync().await?;
        file.close().await?;
        disk.rename(&tmp, &dir.join(CURRENT)).await?;
        disk.sync_dir(dir).await?;
        Ok(())
    }

    /// The state all committed edits add up to.
    pub fn state(&self) -> &ManifestState {
        &self.state
    }

    /// Makes `edit` durable, then applies it. On an I/O error the caller must poison: whether
    /// the edit is durable is unknown.
    pub async fn commit(&mut self, edit: &ManifestEdit) -> Result<()> {
        let mut next = self.state.clone();
        next.apply(edit).map_err(|c| Error::Corrupt {
            file: self.writer.path().to_path_buf(),
            offset: 0,
            reason: c.reason(),
        })?;
        let mut enc = Encoder::default();
        edit.encode(&mut enc);
        self.writer.append(&enc.bytes).await?;
        self.state = next;
        self.edits_since_snapshot += 1;
        if self.edits_since_snapshot >= self.snapshot_every {
            let number = self.writer.header().file_number + 1;
            let fresh =
                Self::start(self.disk.clone(), &self.dir, number, self.state.clone(), self.snapshot_every).await?;
            let old = std::mem::replace(self, fresh);
            old.writer.close().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_edit_round_trips() {
        let point = VersionId { ts: Ts(4), origin: Origin { kind: OriginKind::Bulk, source_id: 2, seq: 0 } };
        let edit = ManifestEdit {
            added: vec![],
            removed: vec![SegmentId(3)],
            wal_position: Some(Lsn(17)),
            source_offsets: vec![(b"topic/0".to_vec(), 99)],
            watermarks_added: vec![(TableId(1), Watermark { point })],
            watermarks_removed: vec![(TableId(2), Watermark { point })],
            loads_linked: vec![],
            loads_unlinked: vec![],
        };
        let mut enc = Encoder::default();
        edit.encode(&mut enc);
        let plain_len = enc.bytes.len();
        assert_eq!(ManifestEdit::decode(&mut Decoder::new(&enc.bytes)).expect("decodes"), edit);
        let bulk = ManifestEdit { loads_linked: vec![(9, vec![SegmentId(4)])], loads_unlinked: vec![8], ..edit };
        let mut enc = Encoder::default();
        bulk.encode(&mut enc);
        assert!(enc.bytes.len() > plain_len, "the bulk section follows the old layout");
        assert_eq!(ManifestEdit::decode(&mut Decoder::new(&enc.bytes)).expect("decodes"), bulk);
    }

    #[test]
    fn a_load_keeps_only_its_live_segments_and_is_forgotten_when_unlinked() {
        let info = |id| SegmentInfo {
            id: SegmentId(id),
            kind: crate::segment::info::SegmentKind::Bulk,
            size_bytes: 16384,
            entry_count: 1,
            tombstone_count: 0,
            key_count: 1,
            min_ts: Ts(1),
            max_ts: Ts(1),
            min_key: crate::record::Key::new(TableId(1), b"a".to_vec(), b"".to_vec()),
            max_key: crate::record::Key::new(TableId(1), b"a".to_vec(), b"".to_vec()),
        };
        let mut s = ManifestState::default();
        let link =
            ManifestEdit { added: vec![info(1)], loads_linked: vec![(5, vec![SegmentId(1)])], ..Default::default() };
        s.apply(&link).expect("links");
        let again = ManifestEdit { added: vec![info(1)], ..Default::default() };
        assert_eq!(s.clone().apply(&again), Err(EditConflict::AddsLive { segment: SegmentId(1) }));
        assert_eq!(s.loads[&5], vec![SegmentId(1)]);
        let dangling = ManifestEdit { loads_linked: vec![(6, vec![SegmentId(2)])], ..Default::default() };
        assert_eq!(
            s.clone().apply(&dangling),
            Err(EditConflict::LinksMissing { load: 6, segment: SegmentId(2) }),
            "a load cannot name a segment that is not live"
        );
        s.apply(&ManifestEdit { removed: vec![SegmentId(1)], ..Default::default() }).expect("compacted away");
        assert_eq!(s.loads[&5], Vec::<SegmentId>::new());
        s.apply(&ManifestEdit { loads_unlinked: vec![5], ..Default::default() }).expect("unlinks");
        assert!(s.loads.is_empty());
    }

    #[test]
    fn applying_an_edit_that_removes_a_missing_segment_fails() {
        let mut s = ManifestState::default();
        let edit = ManifestEdit { removed: vec![SegmentId(1)], ..Default::default() };
        assert_eq!(s.apply(&edit), Err(EditConflict::RemovesMissing { segment: SegmentId(1) }));
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_edit_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = ManifestEdit::decode(&mut Decoder::new(&bytes));
        }
    }
}
