//! Merge runs once there are more than the partition's heat allows: at least enough to get back
//! under the limit, and never fewer than the merge width (big batches for a cold partition, so
//! each version is rewritten rarely). Of the windows of that many runs adjacent in age, the one
//! with the fewest bytes merges: runs of like size merge with each other (as in size-tiered
//! compaction), so a small flush is not merged again and again into a growing run above it.

use crate::compaction::policy::Thresholds;
use crate::compaction::snapshot::Run;
use crate::ids::SegmentId;

/// The runs to merge, if the candidates (newest first) are over `max_runs`.
pub fn choose(candidates: &[&Run], thresholds: &Thresholds) -> Option<Vec<SegmentId>> {
    if candidates.len() <= thresholds.max_runs || candidates.len() < 2 {
        return None;
    }
    let width = (candidates.len() - thresholds.max_runs + 1).max(thresholds.merge_width).min(candidates.len());
    let bytes = |window: &[&Run]| window.iter().map(|r| r.size_bytes).sum::<u64>();
    // `min_by_key` keeps the first of equals: the newest window.
    let window = candidates.windows(width).min_by_key(|w| bytes(w)).expect("width is at most the candidates");
    Some(window.iter().map(|r| r.id).collect())
}
