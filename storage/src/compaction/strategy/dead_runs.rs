//! Remove every dead run (one holding nothing but garbage by table and identity alone: dropped
//! tables, and versions under a collectable watermark, [`crate::compaction::Garbage`]), whatever
//! its kind, size or heat. The executor removes such runs without reading them, so the task costs
//! one manifest edit. A bulk load of a dropped table goes too: with its table gone there is
//! nothing to roll back into view.

use crate::compaction::snapshot::Snapshot;
use crate::ids::SegmentId;

/// Every dead run of the snapshot, if there is one.
pub fn choose(snapshot: &Snapshot) -> Option<Vec<SegmentId>> {
    if snapshot.garbage.is_empty() {
        return None;
    }
    let dead: Vec<SegmentId> = snapshot.runs.iter().filter(|r| r.is_dead(&snapshot.garbage)).map(|r| r.id).collect();
    (!dead.is_empty()).then_some(dead)
}
