//! Merge everything once the newer runs outweigh the oldest by the size ratio (RocksDB's
//! universal compaction's size-amplification trigger). With the ratio low, as for a hot
//! partition, this keeps one run plus a little (leveled-like); with it high, newer runs pile up
//! and merge rarely (tiered-like).

use crate::compaction::policy::Thresholds;
use crate::compaction::snapshot::Run;
use crate::ids::SegmentId;

/// All candidates, if the newer ones add up to `size_ratio` of the oldest.
pub fn choose(candidates: &[&Run], thresholds: &Thresholds) -> Option<Vec<SegmentId>> {
    let (oldest, newer) = candidates.split_last()?;
    if newer.is_empty() {
        return None;
    }
    let newer_bytes: u64 = newer.iter().map(|r| r.size_bytes).sum();
    (newer_bytes as f64 >= thresholds.size_ratio * oldest.size_bytes as f64)
        .then(|| candidates.iter().map(|r| r.id).collect())
}
