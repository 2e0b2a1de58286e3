//! Remove every run that holds nothing but dropped tables' versions, whatever its kind, size or
//! age: all of it is garbage (rule 5 of the GC contract), and the executor removes such runs
//! without reading them, so the task costs one manifest edit. A bulk load of a dropped table goes
//! too: with its table gone there is nothing to roll back into view.

use crate::compaction::snapshot::Snapshot;
use crate::ids::SegmentId;

/// Every run of the snapshot made only of dropped tables, if there is one.
pub fn choose(snapshot: &Snapshot) -> Option<Vec<SegmentId>> {
    if snapshot.dropped_tables.is_empty() {
        return None;
    }
    let dead: Vec<SegmentId> =
        snapshot.runs.iter().filter(|r| r.only_dropped_tables(&snapshot.dropped_tables)).map(|r| r.id).collect();
    (!dead.is_empty()).then_some(dead)
}
