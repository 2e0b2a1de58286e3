//! Rewrite one run on its own once enough of it is superseded: versions beyond the tables'
//! `max_versions`, which a rewrite is sure to shed. This reclaims space in a cold partition that
//! no merge would visit soon. Bulk runs are left to merges: a bulk run rewritten can no longer be
//! rolled back.

use crate::compaction::policy::Policy;
use crate::compaction::snapshot::Run;
use crate::ids::SegmentId;
use crate::segment::info::SegmentKind;

/// The run with the most superseded bytes, if that is over the policy's fraction of it.
pub fn choose(candidates: &[&Run], policy: &Policy, max_versions: u32) -> Option<Vec<SegmentId>> {
    candidates
        .iter()
        .filter(|r| r.kind != SegmentKind::Bulk && r.size_bytes >= policy.space_pressure_min_bytes && r.entry_count > 0)
        .map(|r| (r, r.superseded_entries(max_versions) as f64 / r.entry_count as f64))
        .filter(|(_, fraction)| *fraction >= policy.space_pressure)
        .max_by(|a, b| {
            let bytes = |(r, f): &(&&Run, f64)| r.size_bytes as f64 * f;
            bytes(a).total_cmp(&bytes(b))
        })
        .map(|(r, _)| vec![r.id])
}
