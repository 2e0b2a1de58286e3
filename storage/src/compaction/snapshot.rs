//! What the planner sees of a partition: its runs (segments) as their metadata describes them,
//! with no I/O. The engine takes one with [`crate::Engine::compaction_snapshot`]; tests make
//! them by hand.

use crate::compaction::Garbage;
use crate::ids::{SegmentId, Ts};
use crate::record::Key;
use crate::segment::info::{SegmentInfo, SegmentKind};

/// One run, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The segment.
    pub id: SegmentId,
    /// Which path wrote it.
    pub kind: SegmentKind,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Versions held.
    pub entry_count: u64,
    /// Distinct keys held.
    pub key_count: u64,
    /// Tombstones among the versions.
    pub tombstone_count: u64,
    /// Smallest `ts` held.
    pub min_ts: Ts,
    /// Greatest `ts` held.
    pub max_ts: Ts,
    /// Smallest key held.
    pub min_key: Key,
    /// Greatest key held.
    pub max_key: Key,
}

impl Run {
    /// The planner's view of a segment.
    pub fn of(info: &SegmentInfo) -> Run {
        Run {
            id: info.id,
            kind: info.kind,
            size_bytes: info.size_bytes,
            entry_count: info.entry_count,
            key_count: info.key_count,
            tombstone_count: info.tombstone_count,
            min_ts: info.min_ts,
            max_ts: info.max_ts,
            min_key: info.min_key.clone(),
            max_key: info.max_key.clone(),
        }
    }

    /// True if the two runs' key ranges share a key.
    pub fn overlaps(&self, other: &Run) -> bool {
        self.min_key <= other.max_key && other.min_key <= self.max_key
    }

    /// True if everything the run holds is `garbage`, known from its key range and timestamps.
    pub fn is_dead(&self, garbage: &Garbage) -> bool {
        garbage.covers_run(&self.min_key, &self.max_key, self.max_ts)
    }

    /// Versions this run holds beyond `max_versions` per key: what a rewrite of it alone is sure
    /// to shed (retention by time only ever drops more).
    pub fn superseded_entries(&self, max_versions: u32) -> u64 {
        let kept_per_key = u64::from(max_versions.max(1));
        self.entry_count.saturating_sub(self.key_count.saturating_mul(kept_per_key))
    }
}

/// A partition at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Runs the planner may choose, newest (greatest `max_ts`) first. Segments of bulk loads that
    /// reads do not see yet (or any more) are left out: they must stay apart.
    pub runs: Vec<Run>,
    /// The most versions of a key any of the partition's tables keeps.
    pub max_versions: u32,
    /// What is garbage by table and identity alone: dropped tables, collectable watermarks.
    pub garbage: Garbage,
}

/// A partition's compaction debt, estimated from metadata alone.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Debt {
    /// Runs.
    pub runs: usize,
    /// Runs a point read may have to consult for one key (after blooms): the most runs whose key
    /// ranges share any one run's range.
    pub read_amplification: usize,
    /// Estimated versions on disk over versions the GC contract keeps (1.0 is no debt). Counts
    /// superseded versions within runs and keys repeated across overlapping runs.
    pub space_amplification: f64,
    /// Estimated bytes a full compaction would reclaim.
    pub reclaimable_bytes: u64,
}

impl Snapshot {
    /// The debt this snapshot carries. A dead run (only garbage, [`Run::is_dead`]) counts whole
    /// as reclaimable; one holding such garbage beside live versions counts as live (segment
    /// metadata has no per-table counts), until a merge purges it.
    pub fn debt(&self) -> Debt {
        let runs = self.runs.len();
        let read_amplification =
            self.runs.iter().map(|r| self.runs.iter().filter(|o| o.overlaps(r)).count()).max().unwrap_or(0);
        let entries: u64 = self.runs.iter().map(|r| r.entry_count).sum();
        let bytes: u64 = self.runs.iter().map(|r| r.size_bytes).sum();
        if entries == 0 {
            return Debt { runs, read_amplification, space_amplification: 1.0, reclaimable_bytes: 0 };
        }
        let (dead, live): (Vec<&Run>, Vec<&Run>) = self.runs.iter().partition(|r| r.is_dead(&self.garbage));
        let dead_entries: u64 = dead.iter().map(|r| r.entry_count).sum();
        let dead_bytes: u64 = dead.iter().map(|r| r.size_bytes).sum();
        let live_entries = entries - dead_entries;
        let live_reclaimable = if live_entries == 0 { 0 } else { self.live_reclaimable(&live, live_entries) };
        let live_bytes = bytes - dead_bytes;
        let reclaimable = dead_entries + live_reclaimable;
        // Counted as one kept version when all is garbage, so the ratio stays finite.
        let kept = (entries - reclaimable).max(1);
        Debt {
            runs,
            read_amplification,
            space_amplification: entries as f64 / kept as f64,
            reclaimable_bytes: dead_bytes
                + if live_entries == 0 {
                    0
                } else {
                    (live_bytes as f64 * live_reclaimable as f64 / live_entries as f64) as u64
                },
        }
    }

    /// Versions of `live` runs (holding `entries` versions) a full compaction would shed: the
    /// superseded within runs, tombstones, and keys repeated across overlapping runs.
    fn live_reclaimable(&self, live: &[&Run], entries: u64) -> u64 {
        let overlapping = live.iter().any(|r| live.iter().any(|o| o.id != r.id && o.overlaps(r)));
        // Keys repeated across runs: at most every key of every run but the one holding most.
        let keys: u64 = live.iter().map(|r| r.key_count).sum();
        let widest = live.iter().map(|r| r.key_count).max().unwrap_or(0);
        let cross_run_repeats = if overlapping { keys - widest } else { 0 };
        // Tombstones count as reclaimable: a bottommost merge drops those past their grace.
        let within_runs: u64 = live.iter().map(|r| r.superseded_entries(self.max_versions) + r.tombstone_count).sum();
        let kept_versions = u64::from(self.max_versions.max(1));
        (within_runs + cross_run_repeats.saturating_sub(widest * (kept_versions - 1))).min(entries.saturating_sub(1))
    }
}
