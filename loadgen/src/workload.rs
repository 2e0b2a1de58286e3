//! What a run does: an operation mix (YCSB's core workloads A to F, or plain get/put), and the
//! generator that draws each next operation and its record. Pure apart from the insert counter
//! the sessions of a run share.

use crate::distribution::{Chooser, Kind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One operation of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Read one record.
    Read,
    /// Overwrite one existing record.
    Update,
    /// Write a new record after the existing ones.
    Insert,
    /// Read a short range of records, starting at one.
    Scan,
    /// Read one record, then write it back (YCSB's READ-MODIFY-WRITE); timed as one operation.
    ReadModifyWrite,
}

impl Op {
    /// Every operation, in report order.
    pub const ALL: [Op; 5] = [Op::Read, Op::Update, Op::Insert, Op::Scan, Op::ReadModifyWrite];

    /// The name reports use.
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Update => "update",
            Op::Insert => "insert",
            Op::Scan => "scan",
            Op::ReadModifyWrite => "rmw",
        }
    }

    /// Its position in [`Op::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The proportions of each operation (summing to 1) and the request distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Proportion of each operation, indexed by [`Op::index`].
    pub proportions: [f64; 5],
    /// How records are chosen.
    pub distribution: Kind,
}

impl Mix {
    /// YCSB's core workload `letter` (a to f), as its `workloads/workload<letter>` files define it.
    pub fn ycsb(letter: char) -> Option<Mix> {
        let (read, update, insert, scan, rmw, distribution) = match letter {
            // Update heavy: a session store recording recent actions.
            'a' => (0.5, 0.5, 0.0, 0.0, 0.0, Kind::Zipfian),
            // Read mostly: photo tagging.
            'b' => (0.95, 0.05, 0.0, 0.0, 0.0, Kind::Zipfian),
            // Read only: a user profile cache.
            'c' => (1.0, 0.0, 0.0, 0.0, 0.0, Kind::Zipfian),
            // Read latest: status updates.
            'd' => (0.95, 0.0, 0.05, 0.0, 0.0, Kind::Latest),
            // Short ranges: threaded conversations.
            'e' => (0.0, 0.0, 0.05, 0.95, 0.0, Kind::Zipfian),
            // Read-modify-write: a user database.
            'f' => (0.5, 0.0, 0.0, 0.0, 0.5, Kind::Zipfian),
            _ => return None,
        };
        Some(Mix { proportions: [read, update, insert, scan, rmw], distribution })
    }

    /// Reads a fraction `read_ratio` of the time and updates otherwise.
    pub fn reads_and_updates(read_ratio: f64, distribution: Kind) -> Mix {
        Mix { proportions: [read_ratio, 1.0 - read_ratio, 0.0, 0.0, 0.0], distribution }
    }

    /// The proportion of `op`.
    pub fn share(&self, op: Op) -> f64 {
        self.proportions[op.index()]
    }

    /// The operation a uniform draw `u` in `[0, 1)` picks.
    fn pick(&self, u: f64) -> Op {
        let mut below = 0.0;
        for op in Op::ALL {
            below += self.share(op);
            if u < below {
                return op;
            }
        }
        // Rounding left `u` just above the sum: the last operation with a share.
        Op::ALL.into_iter().rev().find(|op| self.share(*op) > 0.0).unwrap_or(Op::Read)
    }
}

/// One drawn operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// What to do.
    pub op: Op,
    /// The record it starts at (for an insert, the new record).
    pub record: u64,
    /// For a scan, how many records it reads; 0 otherwise.
    pub scan_length: u32,
}

/// The records that exist: those loaded, then every insert a run's sessions make, numbered on.
#[derive(Debug)]
pub struct Inserts {
    next: AtomicU64,
}

impl Inserts {
    /// With records `0..loaded` in place.
    pub fn after(loaded: u64) -> Arc<Inserts> {
        Arc::new(Inserts { next: AtomicU64::new(loaded) })
    }

    /// The number of records that exist or are being inserted.
    pub fn existing(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    fn take(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Draws a session's operations.
#[derive(Debug, Clone)]
pub struct Generator {
    mix: Mix,
    chooser: Chooser,
    inserts: Arc<Inserts>,
    max_scan_length: u32,
    rng: fastrand::Rng,
}

impl Generator {
    /// A generator for `mix` over `chooser`'s records, numbering inserts from `inserts`, scans
    /// reading 1 to `max_scan_length` records (uniformly, as YCSB's default), seeded by `seed`.
    pub fn new(mix: Mix, chooser: Chooser, inserts: Arc<Inserts>, max_scan_length: u32, seed: u64) -> Generator {
        Generator {
            mix,
            chooser,
            inserts,
            max_scan_length: max_scan_length.max(1),
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next operation.
    pub fn next_operation(&mut self) -> Operation {
        let op = self.mix.pick(self.rng.f64());
        match op {
            Op::Insert => Operation { op, record: self.inserts.take(), scan_length: 0 },
            _ => {
                let record = self.chooser.next(self.inserts.existing(), &mut self.rng);
                let scan_length = if op == Op::Scan { self.rng.u32(1..=self.max_scan_length) } else { 0 };
                Operation { op, record, scan_length }
            }
        }
    }

    /// The random number generator, for the values a session writes.
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::DEFAULT_THETA;

    #[test]
    fn every_ycsb_workload_sums_to_one() {
        for letter in 'a'..='f' {
            let mix = Mix::ycsb(letter).expect("a core workload");
            let sum: f64 = mix.proportions.iter().sum();
            assert!((sum - 1.0).abs() < 1e-12, "workload {letter}: {sum}");
        }
        assert!(Mix::ycsb('g').is_none());
    }

    #[test]
    fn draws_follow_the_mix() {
        let seed = fastrand::u64(..);
        println!("seed {seed}");
        let mix = Mix::ycsb('d').expect("workload d");
        let inserts = Inserts::after(1_000);
        let mut generator =
            Generator::new(mix, Chooser::new(mix.distribution, 1_000, DEFAULT_THETA), Arc::clone(&inserts), 100, seed);
        let mut counts = [0_u64; 5];
        let mut last_insert = 999;
        for _ in 0..100_000 {
            let operation = generator.next_operation();
            counts[operation.op.index()] += 1;
            if operation.op == Op::Insert {
                assert_eq!(operation.record, last_insert + 1, "inserts number on");
                last_insert = operation.record;
            } else {
                assert!(operation.record < inserts.existing());
            }
        }
        let inserted = counts[Op::Insert.index()] as f64 / 100_000.0;
        assert!((inserted - 0.05).abs() < 0.005, "{counts:?}");
        assert_eq!(counts[Op::Update.index()] + counts[Op::Scan.index()] + counts[Op::ReadModifyWrite.index()], 0);
        assert_eq!(inserts.existing(), last_insert + 1);
    }

    #[test]
    fn scans_read_one_to_the_maximum() {
        let mix = Mix::ycsb('e').expect("workload e");
        let mut generator =
            Generator::new(mix, Chooser::new(mix.distribution, 100, DEFAULT_THETA), Inserts::after(100), 10, 7);
        let lengths: Vec<u32> = (0..10_000)
            .map(|_| generator.next_operation())
            .filter(|o| o.op == Op::Scan)
            .map(|o| o.scan_length)
            .collect();
        assert_eq!(lengths.iter().min(), Some(&1));
        assert_eq!(lengths.iter().max(), Some(&10));
    }

    #[test]
    fn a_draw_at_the_top_of_the_range_picks_the_last_operation_with_a_share() {
        let mix = Mix::reads_and_updates(1.0, Kind::Uniform);
        assert_eq!(mix.pick(0.999_999), Op::Read);
        assert_eq!(mix.pick(1.0), Op::Read);
        assert_eq!(Mix::reads_and_updates(0.0, Kind::Uniform).pick(0.0), Op::Update);
    }
}
