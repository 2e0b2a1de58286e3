//! The engine: one partition's versioned LSM tree. It composes the memtable, the shared WAL,
//! segments, the block cache and the manifest, and owns the order of their steps (the write
//! path, flush, compaction, recovery). It knows nothing of cores, sockets or Kafka, and is
//! `!Send`: it lives on the executor that made it.
//!
//! Methods take `&self` so tasks on one executor can share an `Rc<Engine>`: a flush runs while
//! writes go to a fresh memtable and reads see the frozen one. No `RefCell` borrow is ever held
//! across an `.await`.

mod compaction;
mod explain;
mod flush;
mod keys;
mod link;
mod memory_tally;
mod open;
mod read;
mod scan;
mod stream;
mod watermark;
mod write;

pub use compaction::{
    CompactionOptions, CompactionOutcome, MaintenanceCounters, PACE_STEP_BYTES, Pacer, READ_AHEAD_BYTES, Unpaced,
};
pub use explain::{Candidate, Explanation, Found, Location, NotFoundReason, RuleStep, Standing, Verdict, explain};
pub use keys::{KeysPage, KeysRequest};
pub use link::{LoadSegments, PreparedSegment};
pub use memory_tally::MemoryTally;
pub use read::{KeyHistory, ReadAt, Row};
pub use scan::{ScanPage, ScanRequest, ScanRow};
pub use stream::StreamAck;
pub use write::WriteAck;

use crate::block_cache::BlockCache;
use crate::bulk::LoadVisibility;
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::ids::{Lsn, PartitionId, SegmentId, TableId, Ts};
use crate::io::{DirLock, Disk};
use crate::manifest::Manifest;
use crate::memtable::Memtable;
use crate::options::{EngineOptions, TableSettings};
use crate::segment::reader::SegmentReader;
use crate::version::{TieRule, Watermark};
use crate::wal::Wal;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A memtable frozen for flushing: read-only, still visible to reads.
#[derive(Debug)]
struct Frozen {
    table: Rc<Memtable>,
    /// Every WAL record of this partition at or below this is in this or an older memtable.
    covers: Lsn,
    /// The oldest WAL record applied to it, if any came through the WAL.
    oldest: Option<Lsn>,
    /// Source positions noted while it was active; its flush commits them (see `stream.rs`).
    offsets: BTreeMap<Vec<u8>, u64>,
}

/// The in-memory side of the partition.
#[derive(Debug, Default)]
struct Memtables {
    active: Memtable,
    /// Oldest first.
    frozen: Vec<Rc<Frozen>>,
    /// Records appended to the WAL but not yet applied (waiting for durability).
    inflight: BTreeSet<Lsn>,
    /// The greatest LSN appended for this partition.
    last_lsn: Lsn,
    /// The oldest WAL record applied to the active memtable, if any.
    active_oldest: Option<Lsn>,
    /// Source positions noted since the active memtable was frozen last (see `stream.rs`).
    active_offsets: BTreeMap<Vec<u8>, u64>,
    /// When the first streamed version went into the active memtable (engine clock, ms), if
    /// one did: the oldest version a source must still be able to replay.
    active_streamed_since_ms: Option<u64>,
}

impl Memtables {
    /// The oldest WAL record the memtables still need (frozen, active or waiting to be applied).
    fn oldest_need(&self) -> Option<Lsn> {
        self.frozen.iter().map(|f| f.oldest).chain([self.inflight.first().copied(), self.active_oldest]).flatten().min()
    }
}

/// Segment readers, as a read visits them.
/// The live segments as one read sees them: shared, so taking them is a reference count, and
/// replaced whole when a flush, link or compaction changes them.
type Segments<D> = Rc<Vec<Rc<SegmentReader<<D as Disk>::File>>>>;

/// One partition's storage engine.
pub struct Engine<D: Disk> {
    disk: D,
    dir: PathBuf,
    partition: PartitionId,
    wal: Rc<Wal<D>>,
    clock: Rc<dyn Clock>,
    options: EngineOptions,
    tables: RefCell<HashMap<TableId, TableSettings>>,
    /// Tables dropped: compaction purges their versions (rule 5 of the GC contract).
    dropped_tables: RefCell<BTreeSet<TableId>>,
    mem: RefCell<Memtables>,
    /// Where this engine's memtable bytes are summed with other engines', and how many it has
    /// added there (`memory_tally.rs`).
    memory_tally: RefCell<MemoryTally>,
    counted_memory: Cell<usize>,
    /// Live segments, by descending `max_ts` (then id), the order point reads visit them in.
    segments: RefCell<Segments<D>>,
    watermarks: RefCell<BTreeMap<TableId, Vec<Watermark>>>,
    /// The bulk load each live bulk segment belongs to, from the manifest.
    segment_loads: RefCell<BTreeMap<SegmentId, u32>>,
    /// Which bulk loads reads must not see (shared with every partition of the process).
    visibility: RefCell<LoadVisibility>,
    /// This engine's copy of the hidden set and the visibility epoch it was taken at: a read
    /// takes the shared set's lock only after a change.
    hidden: RefCell<(u64, Rc<BTreeSet<u32>>)>,
    manifest: async_lock::Mutex<Manifest<D>>,
    /// Serialises flushes, links and compaction commits: each changes the segment list in
    /// several steps.
    maintenance: async_lock::Mutex<()>,
    /// Serialises compactions, which hold `maintenance` only to commit.
    compacting: async_lock::Mutex<()>,
    cache: RefCell<BlockCache>,
    /// Decaying write and read rates, for the compaction planner.
    heat: RefCell<crate::compaction::Heat>,
    /// Flush and compaction volumes.
    counters: Cell<MaintenanceCounters>,
    next_segment_id: Cell<u64>,
    poisoned: Cell<Option<&'static str>>,
    _lock: DirLock,
}

impl<D: Disk> std::fmt::Debug for Engine<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("dir", &self.dir).field("partition", &self.partition).finish()
    }
}

/// Counters and sizes for observability.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Bytes held by the active memtable.
    pub memtable_bytes: usize,
    /// Entries in the active memtable.
    pub memtable_entries: usize,
    /// Frozen memtables waiting for flush.
    pub frozen_memtables: usize,
    /// Live segments.
    pub segment_count: usize,
    /// Bytes of live segments.
    pub segment_bytes: u64,
    /// Entries in live segments.
    pub segment_entries: u64,
    /// Block cache payload bytes.
    pub cache_bytes: usize,
    /// Block cache hits.
    pub cache_hits: u64,
    /// Block cache misses.
    pub cache_misses: u64,
}

impl<D: Disk> Engine<D> {
    /// Tells the engine about a table (or its new settings). Writes and reads of a table the
    /// engine was not told about fail with [`Error::UnknownTable`].
    pub fn define_table(&self, table: TableId, settings: TableSettings) {
        self.tables.borrow_mut().insert(table, settings);
    }

    /// Tells the engine that `table` was dropped for good (its id is never used again): reads
    /// and writes of it fail with [`Error::UnknownTable`] from now, and compaction purges every
    /// version of it that a merge meets. A run holding nothing else is removed without being
    /// read. Told again after every restart, since the engine does not persist it.
    pub fn drop_table(&self, table: TableId) {
        self.tables.borrow_mut().remove(&table);
        self.dropped_tables.borrow_mut().insert(table);
    }

    fn table(&self, table: TableId) -> Result<TableSettings> {
        self.tables.borrow().get(&table).copied().ok_or(Error::UnknownTable(table))
    }

    /// The partition this engine serves.
    pub fn partition(&self) -> PartitionId {
        self.partition
    }

    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// True once the active memtable has reached its flush size.
    pub fn needs_flush(&self) -> bool {
        self.memtable_bytes() >= self.options.memtable_flush_bytes
    }

    /// Memory of the active memtable (what the flush size and the shard's budgets count), in
    /// constant time: [`Engine::stats`] also sums the segments.
    pub fn memtable_bytes(&self) -> usize {
        self.mem.borrow().active.memory_bytes()
    }

    /// Memory of every memtable this engine holds: the active one and those frozen for a flush
    /// still under way (what a memory ceiling must count: a frozen memtable is freed only when
    /// its flush ends).
    pub fn memtables_held_bytes(&self) -> usize {
        let mem = self.mem.borrow();
        mem.active.memory_bytes() + mem.frozen.iter().map(|f| f.table.memory_bytes()).sum::<usize>()
    }

    /// Ids of the live segments, by descending `max_ts`.
    pub fn segment_ids(&self) -> Vec<SegmentId> {
        self.segments.borrow().iter().map(|s| s.info().id).collect()
    }

    /// The source offsets recorded by the last edits.
    pub async fn source_offsets(&self) -> BTreeMap<Vec<u8>, u64> {
        self.manifest.lock().await.state().source_offsets.clone()
    }

    /// The partition's heat now, by the engine's clock.
    pub fn heat(&self) -> crate::compaction::HeatRates {
        self.heat.borrow().rates(self.clock.now_ms())
    }

    /// Sizes and counters.
    pub fn stats(&self) -> EngineStats {
        let mem = self.mem.borrow();
        let segments = self.segments.borrow();
        let cache = self.cache.borrow();
        let (cache_hits, cache_misses) = cache.hit_miss();
        EngineStats {
            memtable_bytes: mem.active.memory_bytes(),
            memtable_entries: mem.active.len(),
            frozen_memtables: mem.frozen.len(),
            segment_count: segments.len(),
            segment_bytes: segments.iter().map(|s| s.info().size_bytes).sum(),
            segment_entries: segments.iter().map(|s| s.info().entry_count).sum(),
            cache_bytes: cache.used_bytes(),
            cache_hits,
            cache_misses,
        }
    }

    /// `Err(Poisoned)` once an earlier write-path failure poisoned the engine.
    pub fn check_poisoned(&self) -> Result<()> {
        // A WAL that failed a write poisons every engine it serves: their memtables may hold
        // async writes whose batch never became durable, and a flush must not make them
        // durable behind the failure's back.
        match self.poisoned.get().or_else(|| self.wal.poisoned()) {
            Some(op) => Err(Error::Poisoned { op }),
            None => Ok(()),
        }
    }

    /// Records that `op` failed in a way that leaves durable state unknown. Never undone.
    fn poison(&self, op: &'static str) {
        if self.poisoned.get().is_none() {
            self.poisoned.set(Some(op));
        }
    }

    /// Shares the process's set of hidden bulk loads with this partition.
    pub fn set_load_visibility(&self, visibility: LoadVisibility) {
        *self.visibility.borrow_mut() = visibility;
        // Another set's epochs say nothing of this copy.
        self.hidden.borrow_mut().0 = u64::MAX;
    }

    /// What a read of `table` may see, decided once: the live segments minus those of hidden
    /// bulk loads, the watermark in force at `bound` under `rule` among the table's watermarks
    /// that belong to no hidden load, and the hidden set itself, since a merged segment may
    /// still hold a rolled-back load's versions among others (see [`ReadView::withdrawn`]).
    fn read_view(&self, table: TableId, rule: TieRule, bound: Ts) -> ReadView<D> {
        let hidden = self.hidden_loads();
        let segments = self.segments.borrow();
        let marks = self.watermarks.borrow();
        let marks = marks.get(&table).into_iter().flatten();
        if hidden.is_empty() {
            return ReadView {
                segments: segments.clone(),
                watermark: read::effective_watermark(marks, rule, bound),
                hidden,
            };
        }
        let loads = self.segment_loads.borrow();
        let visible = Rc::new(
            segments.iter().filter(|s| loads.get(&s.info().id).is_none_or(|l| !hidden.contains(l))).cloned().collect(),
        );
        let marks = marks.filter(|w| w.bulk_load().is_none_or(|load| !hidden.contains(&load)));
        ReadView { segments: visible, watermark: read::effective_watermark(marks, rule, bound), hidden }
    }

    /// The bulk loads reads must not see now, from this engine's copy unless the shared set
    /// changed since it was taken.
    fn hidden_loads(&self) -> Rc<BTreeSet<u32>> {
        let visibility = self.visibility.borrow();
        let epoch = visibility.epoch();
        let mut copy = self.hidden.borrow_mut();
        if copy.0 != epoch {
            *copy = (epoch, Rc::new(BTreeSet::clone(&visibility.snapshot())));
        }
        copy.1.clone()
    }

    fn segment_path(&self, id: SegmentId) -> PathBuf {
        self.dir.join(id.file_name())
    }

    fn allocate_segment_id(&self) -> SegmentId {
        let id = self.next_segment_id.get();
        self.next_segment_id.set(id + 1);
        SegmentId(id)
    }

    fn install_segments(&self, added: Vec<Rc<SegmentReader<D::File>>>, removed: &[SegmentId]) {
        let mut segments = self.segments.borrow_mut();
        let mut next: Vec<_> = segments.iter().filter(|s| !removed.contains(&s.info().id)).cloned().collect();
        next.extend(added);
        next.sort_by(|a, b| b.info().max_ts.cmp(&a.info().max_ts).then(b.info().id.cmp(&a.info().id)));
        *segments = Rc::new(next);
        let mut cache = self.cache.borrow_mut();
        for id in removed {
            cache.evict_segment(*id);
        }
    }

    /// Reports to the WAL the oldest record this partition still needs.
    fn report_wal_needs(&self) {
        let oldest = self.mem.borrow().oldest_need();
        self.wal.set_needed(self.partition, oldest);
    }
}

/// What one read consults, decided once: see [`Engine::read_view`].
struct ReadView<D: Disk> {
    segments: Segments<D>,
    watermark: Option<Watermark>,
    hidden: Rc<BTreeSet<u32>>,
}

impl<D: Disk> ReadView<D> {
    /// True if `id` belongs to a hidden bulk load. A load's own segments are left out of the
    /// view whole; this catches its versions where a compaction merged them with others.
    fn withdrawn(&self, id: &crate::version::VersionId) -> bool {
        withdrawn(&self.hidden, id)
    }
}

/// True if `id` is a version of a bulk load in `hidden`.
fn withdrawn(hidden: &BTreeSet<u32>, id: &crate::version::VersionId) -> bool {
    id.origin.kind == crate::version::OriginKind::Bulk && hidden.contains(&id.origin.source_id)
}
