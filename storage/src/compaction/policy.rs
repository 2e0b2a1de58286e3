//! The planner's policy: thresholds for a cold and for a hot partition, and the heat at which a
//! partition counts as hot. Between the two, every threshold moves with heat.

use super::heat::HeatRates;

/// How eagerly partitions are compacted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// Operations per second (reads and writes) at which a partition is fully hot. Default 1,000.
    pub hot_ops_per_sec: f64,
    /// Most runs a fully hot partition keeps before merging. Default 5 (leveled-like: RocksDB's
    /// leveled compaction keeps up to four level-0 runs above its base level).
    pub hot_max_runs: usize,
    /// Most runs a cold partition keeps before merging. Default 12 (tiered-like).
    pub cold_max_runs: usize,
    /// Fewest runs a merge of a fully hot partition takes. Default 2.
    pub hot_merge_width: usize,
    /// Fewest runs a merge of a cold partition takes: cold ones merge rarely, in big batches.
    /// Default 6.
    pub cold_merge_width: usize,
    /// A hot partition merges everything once its newer runs add up to this fraction of its
    /// oldest (largest) run. Default 2.0 (RocksDB's universal compaction's default most space
    /// amplification).
    pub hot_size_ratio: f64,
    /// The same for a cold partition. Default 4.0.
    pub cold_size_ratio: f64,
    /// A run-count merge takes in the next older run too while that run is at most this many
    /// times the merge's bytes so far. Merging a run with one not much bigger than itself costs
    /// little more, and spares a second rewrite of the same versions later: under overwrites a
    /// hot partition's flushes merge straight into its base, as RocksDB's level 0 merges into
    /// level 1, instead of into a pile of their own that is merged again. A large base (a bulk
    /// load, a cold partition's big run) is still left out. Default 2.0.
    pub merge_extend_ratio: f64,
    /// A run is rewritten on its own once this fraction of its versions is reclaimable.
    /// Default 0.5.
    pub space_pressure: f64,
    /// Runs smaller than this are never rewritten on their own for space. Default 1 MiB.
    pub space_pressure_min_bytes: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            hot_ops_per_sec: 1_000.0,
            hot_max_runs: 5,
            cold_max_runs: 12,
            hot_merge_width: 2,
            cold_merge_width: 6,
            hot_size_ratio: 2.0,
            cold_size_ratio: 4.0,
            merge_extend_ratio: 2.0,
            space_pressure: 0.5,
            space_pressure_min_bytes: 1 << 20,
        }
    }
}

/// The policy's thresholds at one heat.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// 0.0 for a cold partition, 1.0 for a fully hot one.
    pub hotness: f64,
    /// Most runs kept before a merge.
    pub max_runs: usize,
    /// Fewest runs a run-count merge takes.
    pub merge_width: usize,
    /// Newer runs over the oldest at which everything merges.
    pub size_ratio: f64,
    /// How much bigger than a merge's bytes the next older run may be and still join it.
    pub merge_extend_ratio: f64,
}

impl Policy {
    /// The thresholds for a partition of heat `rates`.
    pub fn thresholds(&self, rates: HeatRates) -> Thresholds {
        let hotness = (rates.ops() / self.hot_ops_per_sec.max(f64::MIN_POSITIVE)).clamp(0.0, 1.0);
        let between = |cold: usize, hot: usize| {
            let moved = cold as f64 + (hot as f64 - cold as f64) * hotness;
            (moved.round() as usize).max(1)
        };
        Thresholds {
            hotness,
            max_runs: between(self.cold_max_runs, self.hot_max_runs),
            merge_width: between(self.cold_merge_width, self.hot_merge_width).max(2),
            size_ratio: self.cold_size_ratio + (self.hot_size_ratio - self.cold_size_ratio) * hotness,
            merge_extend_ratio: self.merge_extend_ratio,
        }
    }
}
