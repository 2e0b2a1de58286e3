//! Merge the newest runs once there are more than the partition's heat allows: at least enough
//! to get back under the limit, and never fewer than the merge width (big batches for a cold
//! partition, so each version is rewritten rarely).

use crate::compaction::policy::Thresholds;
use crate::compaction::snapshot::Run;
use crate::ids::SegmentId;

/// The newest runs to merge, if the candidates are over `max_runs`.
pub fn choose(candidates: &[&Run], thresholds: &Thresholds) -> Option<Vec<SegmentId>> {
    if candidates.len() <= thresholds.max_runs || candidates.len() < 2 {
        return None;
    }
    let width = (candidates.len() - thresholds.max_runs + 1).max(thresholds.merge_width).min(candidates.len());
    Some(candidates[..width].iter().map(|r| r.id).collect())
}
