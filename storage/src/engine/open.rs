//! `create` makes a new partition; `open` recovers an existing one: lock the directory, replay
//! the manifest, delete files no edit committed (orphans of a crash mid-flush or mid-compaction),
//! open and verify every live segment, then re-apply this partition's WAL records past the
//! position the manifest covers. Re-applying is idempotent, so replaying a record already in a
//! segment changes nothing.

use super::{Engine, Memtables};
use crate::block_cache::BlockCache;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ids::{PartitionId, SegmentId};
use crate::io::{DirLock, Disk};
use crate::manifest::{self, Manifest};
use crate::options::EngineOptions;
use crate::wal::{RecoveredWal, Wal, lock_dir};
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

impl<D: Disk> Engine<D> {
    /// Creates a new, empty partition in `dir`, writing through the shared `wal`.
    pub async fn create(
        disk: D,
        dir: &Path,
        partition: PartitionId,
        wal: Rc<Wal<D>>,
        options: EngineOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        disk.create_dir_all(dir).await?;
        let lock = lock_dir(&disk, dir).await?;
        if disk.exists(&dir.join(manifest::CURRENT)).await? {
            return Err(Error::AlreadyExists { path: dir.to_path_buf() });
        }
        let manifest = Manifest::create(disk.clone(), dir, options.manifest_snapshot_edits).await?;
        Ok(Self::assemble(disk, dir, partition, wal, options, clock, manifest, lock, 1))
    }

    /// Recovers the partition in `dir`. `recovered` is what [`Wal::recover`] handed back; this
    /// partition takes its own records from it.
    pub async fn open(
        disk: D,
        dir: &Path,
        partition: PartitionId,
        wal: Rc<Wal<D>>,
        recovered: &RecoveredWal,
        options: EngineOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        let lock = lock_dir(&disk, dir).await?;
        if !disk.exists(&dir.join(manifest::CURRENT)).await? {
            return Err(Error::NoPartition { path: dir.to_path_buf() });
        }
        let (manifest, _torn) = Manifest::recover(disk.clone(), dir, options.manifest_snapshot_edits).await?;
        let state = manifest.state().clone();
        // New records must sort past what the segments already cover, or the next recovery
        // would skip them (see `Wal::advance_past`).
        wal.advance_past(state.wal_position);
        let mut max_id = state.max_segment_id().map_or(0, |s| s.0);
        for name in disk.list(dir).await? {
            if let Some(id) = SegmentId::parse_file_name(&name) {
                max_id = max_id.max(id.0);
                if !state.segments.contains_key(&id) {
                    disk.remove(&dir.join(&name)).await?;
                }
            }
        }
        disk.sync_dir(dir).await?;
        let mut readers = Vec::new();
        let engine = Self::assemble(disk, dir, partition, wal, options, clock, manifest, lock, max_id + 1);
        for info in state.segments.values() {
            readers.push(engine.open_segment(info).await?);
        }
        engine.install_segments(readers, &[]);
        engine.mirror_manifest(&state);
        if let Some(records) = recovered.records.get(&partition) {
            for record in records.iter().filter(|r| r.lsn > state.wal_position) {
                engine.mem.borrow_mut().last_lsn = record.lsn;
                engine.apply(record.lsn, &record.entries);
            }
        }
        engine.report_wal_needs();
        Ok(engine)
    }

    #[expect(clippy::too_many_arguments, reason = "one private constructor shared by create and open")]
    fn assemble(
        disk: D,
        dir: &Path,
        partition: PartitionId,
        wal: Rc<Wal<D>>,
        options: EngineOptions,
        clock: Rc<dyn Clock>,
        manifest: Manifest<D>,
        lock: DirLock,
        next_segment_id: u64,
    ) -> Self {
        Engine {
            disk,
            dir: dir.to_path_buf(),
            partition,
            wal,
            clock,
            cache: RefCell::new(BlockCache::new(options.block_cache_bytes)),
            heat: RefCell::new(crate::compaction::Heat::new(options.heat_half_life_ms)),
            counters: Cell::new(Default::default()),
            options,
            tables: RefCell::new(Default::default()),
            dropped_tables: RefCell::new(Default::default()),
            mem: RefCell::new(Memtables::default()),
            memory_tally: RefCell::default(),
            counted_memory: Cell::new(0),
            segments: RefCell::new(Rc::new(Vec::new())),
            hidden: RefCell::new((u64::MAX, Rc::new(std::collections::BTreeSet::new()))),
            watermarks: RefCell::new(Default::default()),
            segment_loads: RefCell::new(Default::default()),
            visibility: RefCell::new(Default::default()),
            manifest: async_lock::Mutex::new(manifest),
            maintenance: async_lock::Mutex::new(()),
            compacting: async_lock::Mutex::new(()),
            next_segment_id: Cell::new(next_segment_id),
            poisoned: Cell::new(None),
            _lock: lock,
        }
    }
}
