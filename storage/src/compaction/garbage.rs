//! What is garbage by a version's table and identity alone, whatever else the key holds: every
//! version of a dropped table (rule 5 of the GC contract in ARCHITECTURE.md), and every version a
//! table's watermark hides once that watermark may be collected (rule 6: its load is neither
//! hidden nor kept apart for a rollback, and its point is older than the tombstone grace
//! period). A run whose key range and timestamps fall wholly inside such garbage is dead: it can
//! be removed without being read.

use crate::ids::{TableId, Ts};
use crate::record::Key;
use crate::version::{TieRule, VersionId, Watermark};
use std::collections::{BTreeMap, BTreeSet};

/// Tables and watermarks whose versions compaction drops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Garbage {
    /// Tables dropped: all their versions are garbage.
    pub dropped_tables: BTreeSet<TableId>,
    /// Per table, the greatest collectable watermark: the versions it hides are garbage.
    pub watermarks: BTreeMap<TableId, Watermark>,
}

impl Garbage {
    /// True if nothing is garbage this way.
    pub fn is_empty(&self) -> bool {
        self.dropped_tables.is_empty() && self.watermarks.is_empty()
    }

    /// True if version `id` of a key of `table` is garbage, `rule` being the table's tie rule.
    pub fn holds(&self, table: TableId, id: &VersionId, rule: TieRule) -> bool {
        self.dropped_tables.contains(&table) || self.watermarks.get(&table).is_some_and(|w| w.hides(id, rule))
    }

    /// True if every version a run may hold (keys from `min` to `max`, keys ordering by table
    /// first; timestamps at most `max_ts`) is garbage: each table in the range is dropped, or
    /// has a collectable watermark above `max_ts`.
    pub fn covers_run(&self, min: &Key, max: &Key, max_ts: Ts) -> bool {
        if min.table > max.table {
            return false;
        }
        let tables = u64::from(max.table.0 - min.table.0) + 1;
        if tables > (self.dropped_tables.len() + self.watermarks.len()) as u64 {
            return false;
        }
        (min.table.0..=max.table.0)
            .map(TableId)
            .all(|t| self.dropped_tables.contains(&t) || self.watermarks.get(&t).is_some_and(|w| w.point.ts > max_ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::{Origin, OriginKind};

    fn key(table: u32) -> Key {
        Key::new(TableId(table), b"k".to_vec(), Vec::new())
    }

    fn mark(ts: u64, load: u32) -> Watermark {
        Watermark {
            point: VersionId { ts: Ts(ts), origin: Origin { kind: OriginKind::Bulk, source_id: load, seq: 0 } },
        }
    }

    #[test]
    fn a_run_is_dead_only_if_every_table_of_its_range_is_dropped_or_watermarked_above_it() {
        let g = Garbage { dropped_tables: [TableId(2)].into(), watermarks: [(TableId(3), mark(100, 7))].into() };
        assert!(g.covers_run(&key(2), &key(2), Ts(u64::MAX)), "a dropped table, any ts");
        assert!(g.covers_run(&key(2), &key(3), Ts(99)), "dropped, and under the watermark");
        assert!(!g.covers_run(&key(2), &key(3), Ts(100)), "ts 100 may rank above the mark's point");
        assert!(!g.covers_run(&key(1), &key(2), Ts(1)), "table 1 lives");
        assert!(!g.covers_run(&key(3), &key(4), Ts(1)), "table 4 lives");
        assert!(!Garbage::default().covers_run(&key(1), &key(1), Ts(1)));

        let rule = TieRule::default();
        let at = |ts: u64, kind: OriginKind, source_id: u32| VersionId {
            ts: Ts(ts),
            origin: Origin { kind, source_id, seq: 1 },
        };
        assert!(g.holds(TableId(3), &at(99, OriginKind::Direct, 0), rule));
        assert!(g.holds(TableId(3), &at(100, OriginKind::Bulk, 6), rule), "an older load at the same ts");
        assert!(!g.holds(TableId(3), &at(100, OriginKind::Bulk, 7), rule), "the load's own versions");
        assert!(!g.holds(TableId(3), &at(100, OriginKind::Direct, 0), rule), "a direct write ranks above on a tie");
        assert!(!g.holds(TableId(1), &at(1, OriginKind::Direct, 0), rule));
    }
}
