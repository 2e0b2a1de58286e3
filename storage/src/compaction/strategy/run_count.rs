//! Merge runs once there are more than the partition's heat allows: at least enough to get back
//! under the limit, and never fewer than the merge width (big batches for a cold partition, so
//! each version is rewritten rarely). Of the windows of that many runs adjacent in age, the one
//! with the fewest bytes merges: runs of like size merge with each other (as in size-tiered
//! compaction), so a small flush is not merged again and again into a growing run above it.
//! The window then takes in older runs one at a time while the next is at most the merge
//! extend ratio times its bytes so far (as universal compaction's size ratio does): a base
//! not much bigger than the flushes above it merges with them now rather than after they have
//! been merged among themselves, once or more, first.

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
    let start = (0..=candidates.len() - width)
        .min_by_key(|&start| bytes(&candidates[start..start + width]))
        .expect("width is at most the candidates");
    let mut end = start + width;
    let mut merged = bytes(&candidates[start..end]);
    while let Some(older) = candidates.get(end)
        && older.size_bytes as f64 <= thresholds.merge_extend_ratio * merged as f64
    {
        merged += older.size_bytes;
        end += 1;
    }
    Some(candidates[start..end].iter().map(|r| r.id).collect())
}
