//! The memtable's rows in key order, kept as a few sorted runs rather than a tree.
//!
//! An insert appends its new row to `unsorted`; every 1,024 rows, those are sorted into a run, and
//! the newest two runs are merged while the older is no bigger than the newer, as a binary counter
//! carries, up to runs of 65,536 rows: each row is moved at most seven times, no insert waits on
//! a merge longer than about a millisecond, and a 64 MiB memtable (400,000 rows of 116 bytes)
//! has about a dozen runs. Each entry carries the first eight bytes of its partition key, so
//! comparisons seldom leave the run for the arena. No reader sorts more than the unsorted tail
//! (sorting a 64 MiB memtable at its flush held the shard for 170 ms); readers (scans, the flush)
//! walk the runs and the sorted tail at once.

use super::KeyParts;
use super::arena::{Addr, Arena};
use super::records;
use crate::ids::TableId;
use std::cmp::Ordering;
use std::ops::{Bound, Range};

/// Rows sorted into a run at a time.
const RUN_ROWS: usize = 1024;

/// The largest run a merge makes: the longest a merge holds up the insert that carries it (about
/// a millisecond), where merging on up to a whole 64 MiB memtable's 400,000 rows took 21.
const MAX_RUN_ROWS: usize = 64 * RUN_ROWS;

/// A row's place in the order: compared by table and key prefix first, by the whole key on a tie.
#[derive(Debug, Clone, Copy)]
pub(super) struct SortKey {
    prefix: u64,
    table: TableId,
    row: Addr,
}

/// The first eight bytes of `partition_key`, zero-padded: ordered as the keys are, or tied.
fn prefix(partition_key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = partition_key.len().min(8);
    bytes[..n].copy_from_slice(&partition_key[..n]);
    u64::from_be_bytes(bytes)
}

impl SortKey {
    pub(super) fn new(row: Addr, key: KeyParts<'_>) -> Self {
        SortKey { prefix: prefix(key.1), table: key.0, row }
    }

    pub(super) fn row(&self) -> Addr {
        self.row
    }

    fn cmp_in(&self, other: &SortKey, arena: &Arena) -> Ordering {
        (self.table, self.prefix)
            .cmp(&(other.table, other.prefix))
            .then_with(|| records::row(arena, self.row).parts().cmp(&records::row(arena, other.row).parts()))
    }

    fn cmp_to(&self, (probe, key): &(SortKey, KeyParts<'_>), arena: &Arena) -> Ordering {
        (self.table, self.prefix)
            .cmp(&(probe.table, probe.prefix))
            .then_with(|| records::row(arena, self.row).parts().cmp(key))
    }
}

/// Row entries in key order, in runs.
#[derive(Default)]
pub(super) struct Order {
    /// Sorted runs, oldest (and largest) first.
    runs: Vec<Vec<SortKey>>,
    /// Rows not yet in a run, in insertion order: fewer than `RUN_ROWS`.
    unsorted: Vec<SortKey>,
}

impl Order {
    /// Notes a new row.
    pub(super) fn push(&mut self, key: SortKey, arena: &Arena) {
        self.unsorted.push(key);
        if self.unsorted.len() < RUN_ROWS {
            return;
        }
        let mut run = std::mem::replace(&mut self.unsorted, Vec::with_capacity(RUN_ROWS));
        run.sort_unstable_by(|a, b| a.cmp_in(b, arena));
        self.runs.push(run);
        while let [.., older, newer] = &self.runs[..]
            && older.len() <= newer.len()
            && older.len() + newer.len() <= MAX_RUN_ROWS
        {
            let merged: Vec<SortKey> = Walk::new(vec![&older[..], &newer[..]], Vec::new(), false).collect_all(arena);
            self.runs.truncate(self.runs.len() - 2);
            self.runs.push(merged);
        }
    }

    /// Bytes held, by capacity.
    pub(super) fn memory_bytes(&self) -> usize {
        (self.runs.iter().map(Vec::capacity).sum::<usize>() + self.unsorted.capacity()) * size_of::<SortKey>()
    }

    /// The rows from `lo` to `hi`, ready to walk in key order or reversed.
    pub(super) fn range<'s, 'k>(
        &'s self,
        lo: Bound<KeyParts<'k>>,
        hi: Bound<KeyParts<'k>>,
        reverse: bool,
        arena: &Arena,
    ) -> Walk<'s> {
        let mut tail = self.unsorted.clone();
        tail.sort_unstable_by(|a, b| a.cmp_in(b, arena));
        let probe = |key: KeyParts<'k>| (SortKey::new(Addr::MIN, key), key);
        let (lo, hi) = (lo.map(probe), hi.map(probe));
        let within = |list: &[SortKey]| -> Range<usize> {
            let start = match &lo {
                Bound::Included(p) => list.partition_point(|k| k.cmp_to(p, arena).is_lt()),
                Bound::Excluded(p) => list.partition_point(|k| k.cmp_to(p, arena).is_le()),
                Bound::Unbounded => 0,
            };
            let end = match &hi {
                Bound::Included(p) => list.partition_point(|k| k.cmp_to(p, arena).is_le()),
                Bound::Excluded(p) => list.partition_point(|k| k.cmp_to(p, arena).is_lt()),
                Bound::Unbounded => list.len(),
            };
            start..end.max(start)
        };
        let kept = within(&tail);
        tail.truncate(kept.end);
        tail.drain(..kept.start);
        Walk::new(self.runs.iter().map(|run| &run[within(run)]).collect(), tail, reverse)
    }
}

/// Sorted lists walked as one, forwards or backwards: the runs borrowed, the tail owned.
pub(super) struct Walk<'s> {
    runs: Vec<&'s [SortKey]>,
    tail: Vec<SortKey>,
    tail_left: Range<usize>,
    reverse: bool,
}

impl<'s> Walk<'s> {
    fn new(runs: Vec<&'s [SortKey]>, tail: Vec<SortKey>, reverse: bool) -> Self {
        let tail_left = 0..tail.len();
        Walk { runs, tail, tail_left, reverse }
    }

    /// The next row, or none when every list is walked.
    pub(super) fn next(&mut self, arena: &Arena) -> Option<SortKey> {
        let reverse = self.reverse;
        let head = |list: &[SortKey]| if reverse { list.last().copied() } else { list.first().copied() };
        // Which list holds the next row: a run's index, or `runs.len()` for the tail.
        let mut best: Option<(usize, SortKey)> = None;
        let tail = &self.tail[self.tail_left.clone()];
        for (i, list) in self.runs.iter().map(|r| &r[..]).chain([tail]).enumerate() {
            let Some(candidate) = head(list) else { continue };
            let better = best.is_none_or(|(_, b)| {
                let ord = candidate.cmp_in(&b, arena);
                if reverse { ord.is_gt() } else { ord.is_lt() }
            });
            if better {
                best = Some((i, candidate));
            }
        }
        let (i, key) = best?;
        match self.runs.get_mut(i) {
            Some(run) if reverse => *run = &run[..run.len() - 1],
            Some(run) => *run = &run[1..],
            None if reverse => self.tail_left.end -= 1,
            None => self.tail_left.start += 1,
        }
        Some(key)
    }

    fn collect_all(mut self, arena: &Arena) -> Vec<SortKey> {
        let len = self.runs.iter().map(|r| r.len()).sum::<usize>() + self.tail_left.len();
        let mut out = Vec::with_capacity(len);
        while let Some(key) = self.next(arena) {
            out.push(key);
        }
        out
    }
}
