//! The planner: `plan(snapshot, heat, policy) -> Option<Task>`, a pure function in the manner
//! of lsm-tree's `CompactionStrategy::choose`. Strategies are tried in order of what they
//! protect: first dead runs (only garbage: dropped tables, versions under a collectable
//! watermark; removed unread), then read cost and space
//! (merge everything once newer runs outweigh the oldest), then the run count, then a lone run's
//! superseded versions.

use super::heat::HeatRates;
use super::policy::Policy;
use super::snapshot::{Run, Snapshot};
use super::strategy::{dead_runs, run_count, size_ratio, space_pressure};
use crate::ids::SegmentId;
use crate::segment::info::SegmentKind;

/// Why a task was planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Runs holding only garbage (dropped tables, versions under a collectable watermark):
    /// removed whole, unread.
    DeadRuns,
    /// The newer runs outweigh the oldest by the size ratio: everything merges.
    SizeRatio,
    /// More runs than the partition's heat allows: the newest merge.
    RunCount,
    /// One run is mostly superseded: it is rewritten alone.
    SpacePressure,
}

impl Reason {
    /// A name for logs and stats.
    pub fn name(self) -> &'static str {
        match self {
            Reason::DeadRuns => "dead_runs",
            Reason::SizeRatio => "size_ratio",
            Reason::RunCount => "run_count",
            Reason::SpacePressure => "space_pressure",
        }
    }
}

/// One merge to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The runs to merge.
    pub inputs: Vec<SegmentId>,
    /// Why.
    pub reason: Reason,
    /// Their bytes.
    pub input_bytes: u64,
    /// Higher runs first: heat times read amplification, plus space amplification.
    pub priority: f64,
}

/// The runs a plan may choose, newest first: every run but a bulk run that no newer run
/// overlaps. Such a run (a fresh load) stays as it is: a 10 GiB load is not rewritten because
/// it arrived, only once newer writes land on its keys.
pub fn candidates(snapshot: &Snapshot) -> Vec<&Run> {
    snapshot
        .runs
        .iter()
        .filter(|run| {
            run.kind != SegmentKind::Bulk
                || snapshot
                    .runs
                    .iter()
                    .any(|other| other.id != run.id && other.max_ts > run.max_ts && other.overlaps(run))
        })
        .collect()
}

/// The next task for a partition, if it needs one.
pub fn plan(snapshot: &Snapshot, heat: HeatRates, policy: &Policy) -> Option<Task> {
    let candidates = candidates(snapshot);
    let thresholds = policy.thresholds(heat);
    let (inputs, reason) = dead_runs::choose(snapshot)
        .map(|ids| (ids, Reason::DeadRuns))
        .or_else(|| size_ratio::choose(&candidates, &thresholds).map(|ids| (ids, Reason::SizeRatio)))
        .or_else(|| run_count::choose(&candidates, &thresholds).map(|ids| (ids, Reason::RunCount)))
        .or_else(|| {
            space_pressure::choose(&candidates, policy, snapshot.max_versions).map(|ids| (ids, Reason::SpacePressure))
        })?;
    let input_bytes = snapshot.runs.iter().filter(|r| inputs.contains(&r.id)).map(|r| r.size_bytes).sum();
    let debt = snapshot.debt();
    let priority =
        (0.1 + thresholds.hotness) * debt.read_amplification as f64 + (debt.space_amplification - 1.0).max(0.0);
    Some(Task { inputs, reason, input_bytes, priority })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TableId, Ts};
    use crate::record::Key;

    fn key(k: &str) -> Key {
        Key::new(TableId(1), k.as_bytes().to_vec(), Vec::new())
    }

    /// A run of `size` bytes holding `keys` keys (one version each) over the whole key range,
    /// its versions stamped `ts`.
    fn run(id: u64, kind: SegmentKind, size: u64, keys: u64, ts: u64) -> Run {
        Run {
            id: SegmentId(id),
            kind,
            size_bytes: size,
            entry_count: keys,
            key_count: keys,
            tombstone_count: 0,
            min_ts: Ts(ts),
            max_ts: Ts(ts),
            min_key: key("a"),
            max_key: key("z"),
        }
    }

    fn snapshot(mut runs: Vec<Run>) -> Snapshot {
        runs.sort_by_key(|r| std::cmp::Reverse(r.max_ts));
        Snapshot { runs, max_versions: 1, ..Snapshot::default() }
    }

    /// `n` flush runs of equal size over the same keys, the newest stamped highest.
    fn flushes(n: u64, size: u64) -> Vec<Run> {
        (1..=n).map(|i| run(i, SegmentKind::Flush, size, 1_000, 100 + i)).collect()
    }

    fn hot(policy: &Policy) -> HeatRates {
        HeatRates { write_ops: policy.hot_ops_per_sec * 2.0, ..HeatRates::default() }
    }

    /// A base run much larger than the flushes on top of it, so the size ratio does not fire.
    fn base_and_flushes(n: u64) -> Snapshot {
        let mut runs = flushes(n, 1 << 20);
        runs.push(run(100, SegmentKind::Compaction, 1 << 40, 1_000_000, 50));
        snapshot(runs)
    }

    #[test]
    fn a_hot_partition_merges_at_a_few_runs_where_a_cold_one_waits() {
        let policy = Policy::default();
        let s = base_and_flushes(policy.hot_max_runs as u64);
        let task = plan(&s, hot(&policy), &policy).expect("a hot partition merges past its most runs");
        assert_eq!(task.reason, Reason::RunCount);
        let flushes: Vec<SegmentId> = (1..=policy.hot_max_runs as u64).rev().map(SegmentId).collect();
        assert_eq!(task.inputs, flushes, "the like-sized flushes, not the far bigger base");
        assert_eq!(plan(&s, HeatRates::default(), &policy), None, "a cold partition tolerates them");
    }

    #[test]
    fn a_cold_partition_merges_rarely_and_in_big_batches() {
        let policy = Policy::default();
        let over = base_and_flushes(policy.cold_max_runs as u64);
        let task = plan(&over, HeatRates::default(), &policy).expect("over the cold limit");
        assert_eq!(task.reason, Reason::RunCount);
        assert_eq!(task.inputs.len(), policy.cold_max_runs, "every like-sized flush: more than the cold merge width");
        assert!(task.inputs.len() >= policy.cold_merge_width);
        assert_eq!(task.inputs[0], SegmentId(policy.cold_max_runs as u64), "newest first");
        assert_eq!(plan(&base_and_flushes(policy.cold_max_runs as u64 - 1), HeatRates::default(), &policy), None);
    }

    #[test]
    fn thresholds_move_with_heat() {
        let policy = Policy::default();
        let at = |fraction: f64| {
            policy.thresholds(HeatRates { read_ops: policy.hot_ops_per_sec * fraction, ..HeatRates::default() })
        };
        let (cold, warm, hot) = (at(0.0), at(0.5), at(1.0));
        assert_eq!((cold.max_runs, hot.max_runs), (policy.cold_max_runs, policy.hot_max_runs));
        assert!(cold.max_runs > warm.max_runs && warm.max_runs > hot.max_runs, "{cold:?} {warm:?} {hot:?}");
        assert!(cold.size_ratio > warm.size_ratio && warm.size_ratio > hot.size_ratio);
        assert!(cold.merge_width > warm.merge_width && warm.merge_width >= hot.merge_width);
        // A warm partition merges where a cold one waits and a hot one merged long ago.
        let runs = base_and_flushes(warm.max_runs as u64);
        let warm_rates = HeatRates { read_ops: policy.hot_ops_per_sec * 0.5, ..HeatRates::default() };
        assert!(plan(&runs, warm_rates, &policy).is_some());
        assert_eq!(plan(&runs, HeatRates::default(), &policy), None);
    }

    #[test]
    fn newer_runs_outweighing_the_oldest_merge_everything() {
        let policy = Policy::default();
        // Three flushes of 1 MiB on a 1 MiB base: 3x the base, over the hot ratio (2), under
        // the cold one (4).
        let s = snapshot(flushes(4, 1 << 20));
        let task = plan(&s, hot(&policy), &policy).expect("hot: newer runs are 3x the oldest");
        assert_eq!(task.reason, Reason::SizeRatio);
        assert_eq!(task.inputs.len(), 4, "everything");
        assert_eq!(task.input_bytes, 4 << 20);
        assert_eq!(plan(&s, HeatRates::default(), &policy), None, "cold: 3x is under the ratio of 4");
        let piled = snapshot(flushes(6, 1 << 20));
        assert_eq!(plan(&piled, HeatRates::default(), &policy).map(|t| t.reason), Some(Reason::SizeRatio));
    }

    #[test]
    fn over_the_run_limit_the_smallest_window_of_like_runs_merges_not_the_newest() {
        let policy = Policy::default();
        // Newest first: two fresh flushes, a merged run, then three flushes, on a base too big
        // for the size ratio. Merging the newest pair would rewrite the merged run; the two older
        // flushes are the cheapest pair.
        let mut runs = vec![
            run(7, SegmentKind::Flush, 1 << 20, 1_000, 107),
            run(6, SegmentKind::Flush, 1 << 20, 1_000, 106),
            run(5, SegmentKind::Compaction, 8 << 20, 1_000, 105),
            run(4, SegmentKind::Flush, 1 << 20, 1_000, 104),
            run(3, SegmentKind::Flush, 1 << 20, 1_000, 103),
            run(2, SegmentKind::Flush, 2 << 20, 1_000, 102),
        ];
        runs.push(run(1, SegmentKind::Compaction, 1 << 40, 1_000_000, 50));
        let s = snapshot(runs);
        let thresholds = policy.thresholds(hot(&policy));
        assert_eq!(s.runs.len(), thresholds.max_runs + 2, "two over the hot limit: a merge of three");
        let task = plan(&s, hot(&policy), &policy).expect("over the hot limit");
        assert_eq!(task.reason, Reason::RunCount);
        assert_eq!(task.inputs, vec![SegmentId(4), SegmentId(3), SegmentId(2)], "{task:?}");
        // Equal windows: the newest.
        let task = plan(&base_and_flushes(thresholds.max_runs as u64 + 1), hot(&policy), &policy).expect("over");
        assert_eq!(task.inputs[0], SegmentId(thresholds.max_runs as u64 + 1));
    }

    #[test]
    fn a_base_not_much_bigger_than_the_merge_joins_it_and_a_big_one_stays_out() {
        let policy = Policy::default();
        let thresholds = policy.thresholds(hot(&policy));
        // Enough 1 MiB flushes to be one over the hot limit, on a base of `base` MiB.
        let on_base = |base: u64| {
            let mut runs = flushes(thresholds.max_runs as u64, 1 << 20);
            runs.push(run(100, SegmentKind::Compaction, base << 20, 1_000, 50));
            snapshot(runs)
        };
        let flush_bytes = thresholds.max_runs as f64;
        let joins = (policy.merge_extend_ratio * flush_bytes).floor() as u64;
        assert!(flush_bytes < thresholds.size_ratio * joins as f64, "the size ratio must not fire first");
        let task = plan(&on_base(joins), hot(&policy), &policy).expect("over the hot limit");
        assert_eq!(task.reason, Reason::RunCount);
        assert!(task.inputs.contains(&SegmentId(100)), "a base within the extend ratio merges too: {task:?}");
        assert_eq!(task.inputs.len(), thresholds.max_runs + 1);
        let task = plan(&on_base(joins + 1), hot(&policy), &policy).expect("over the hot limit");
        assert!(!task.inputs.contains(&SegmentId(100)), "a base past the extend ratio stays out: {task:?}");
        assert_eq!(task.inputs.len(), thresholds.max_runs);
        // With no extension, only enough runs to get under the limit merge.
        let narrow = Policy { merge_extend_ratio: 0.0, ..policy };
        let task = plan(&on_base(joins), hot(&narrow), &narrow).expect("over the hot limit");
        assert_eq!(task.inputs.len(), narrow.hot_merge_width);
    }

    #[test]
    fn a_fresh_bulk_run_that_nothing_newer_overlaps_is_left_alone() {
        let policy = Policy::default();
        let bulk = run(50, SegmentKind::Bulk, 10 << 30, 100_000_000, 500);
        // Older flushes under it: they merge among themselves; the load is not rewritten.
        let mut runs = flushes(3, 1 << 20);
        runs.push(bulk.clone());
        let s = snapshot(runs);
        let task = plan(&s, hot(&policy), &policy).expect("the flushes merge");
        assert!(!task.inputs.contains(&bulk.id), "{task:?}");
        assert_eq!(plan(&snapshot(vec![bulk.clone()]), hot(&policy), &policy), None);
        // Newer writes on its keys: now it is a candidate like any run.
        let newer = run(9, SegmentKind::Flush, 25 << 30, 1_000, 900);
        let task = plan(&snapshot(vec![bulk.clone(), newer]), hot(&policy), &policy).expect("newer data on the load");
        assert!(task.inputs.contains(&bulk.id), "{task:?}");
        // Newer writes elsewhere in the key space do not make it one.
        let mut elsewhere = run(9, SegmentKind::Flush, 8 << 30, 1_000, 900);
        (elsewhere.min_key, elsewhere.max_key) = (key("zz"), key("zzz"));
        let s = snapshot(vec![bulk.clone(), elsewhere]);
        assert_eq!(candidates(&s).len(), 1, "only the flush");
    }

    #[test]
    fn a_mostly_superseded_run_is_rewritten_alone_under_space_pressure() {
        let policy = Policy::default();
        let mut stale = run(1, SegmentKind::Compaction, 64 << 20, 1_000, 100);
        stale.entry_count = 10_000;
        let fresh = run(2, SegmentKind::Flush, 1 << 20, 10_000, 200);
        let s = Snapshot { runs: vec![fresh.clone(), stale.clone()], max_versions: 3, ..Snapshot::default() };
        let task = plan(&s, HeatRates::default(), &policy).expect("70% of the run is superseded");
        assert_eq!((task.reason, task.inputs.clone()), (Reason::SpacePressure, vec![stale.id]));
        assert!(s.debt().space_amplification > 1.0);
        // Under the fraction, or too small to matter: nothing.
        stale.entry_count = 4_000;
        assert_eq!(
            plan(
                &Snapshot { runs: vec![fresh.clone(), stale.clone()], max_versions: 3, ..Snapshot::default() },
                HeatRates::default(),
                &policy
            ),
            None
        );
        stale.entry_count = 10_000;
        stale.size_bytes = policy.space_pressure_min_bytes - 1;
        assert_eq!(
            plan(
                &Snapshot { runs: vec![fresh, stale], max_versions: 3, ..Snapshot::default() },
                HeatRates::default(),
                &policy
            ),
            None
        );
    }

    #[test]
    fn hotter_and_more_indebted_partitions_come_first() {
        let policy = Policy::default();
        let s = base_and_flushes(13);
        let cold = plan(&s, HeatRates::default(), &policy).expect("over the cold limit");
        let hot = plan(&s, hot(&policy), &policy).expect("over the hot limit");
        assert!(hot.priority > cold.priority, "{hot:?} {cold:?}");
    }

    #[test]
    fn debt_counts_runs_overlap_and_repeated_keys() {
        let s = snapshot(flushes(4, 1 << 20));
        let debt = s.debt();
        assert_eq!((debt.runs, debt.read_amplification), (4, 4));
        // 4,000 versions of 1,000 keys, one version kept: 4x.
        assert!((debt.space_amplification - 4.0).abs() < 1e-9, "{debt:?}");
        assert_eq!(debt.reclaimable_bytes, 3 << 20);
        let mut apart = flushes(2, 1 << 20);
        (apart[1].min_key, apart[1].max_key) = (key("zz"), key("zzz"));
        let debt = snapshot(apart).debt();
        assert_eq!(debt.read_amplification, 1, "disjoint runs: one run per read");
        assert!((debt.space_amplification - 1.0).abs() < 1e-9, "{debt:?}");
        assert_eq!(Snapshot::default().debt().space_amplification, 1.0);
    }

    /// `run` over table `table` alone.
    fn of_table(mut r: Run, table: u32) -> Run {
        r.min_key = Key::new(TableId(table), b"a".to_vec(), Vec::new());
        r.max_key = Key::new(TableId(table), b"z".to_vec(), Vec::new());
        r
    }

    #[test]
    fn runs_of_dropped_tables_alone_are_removed_first_whatever_their_kind_or_heat() {
        let policy = Policy::default();
        // A fresh bulk load of table 2, a flush spanning tables 1 and 2, and a compaction output
        // of tables 2 and 3: only the first holds nothing but table 2.
        let load = of_table(run(1, SegmentKind::Bulk, 10 << 30, 1_000_000, 300), 2);
        let mut mixed = of_table(run(2, SegmentKind::Flush, 1 << 20, 1_000, 200), 1);
        mixed.max_key = Key::new(TableId(2), b"z".to_vec(), Vec::new());
        let mut spans = of_table(run(3, SegmentKind::Compaction, 1 << 20, 1_000, 100), 2);
        spans.max_key = Key::new(TableId(3), b"a".to_vec(), Vec::new());
        let mut s = snapshot(vec![load.clone(), mixed.clone(), spans.clone()]);
        assert_eq!(plan(&s, HeatRates::default(), &policy), None, "nothing to do while table 2 lives");
        let before = s.debt();

        s.garbage.dropped_tables = [TableId(2)].into();
        let task = plan(&s, HeatRates::default(), &policy).expect("a cold partition still sheds a dropped table");
        assert_eq!((task.reason, task.inputs.clone()), (Reason::DeadRuns, vec![load.id]));
        let debt = s.debt();
        assert!(debt.reclaimable_bytes >= load.size_bytes, "the whole load is reclaimable: {debt:?}");
        assert!(before.reclaimable_bytes < load.size_bytes / 100, "before the drop, only overlaps: {before:?}");
        assert!(debt.space_amplification > 100.0, "a million dead versions beside 2,000 live: {debt:?}");

        // Tables 2 and 3 dropped: the run spanning them goes too; table 1's does not.
        s.garbage.dropped_tables = [TableId(2), TableId(3)].into();
        let task = plan(&s, hot(&policy), &policy).expect("two dead runs");
        assert_eq!(task.inputs, vec![load.id, spans.id]);
        // A gap in the range (table 2 live) keeps a run spanning 1..3 out.
        let mut wide = of_table(run(4, SegmentKind::Flush, 1 << 20, 1_000, 50), 1);
        wide.max_key = Key::new(TableId(3), b"z".to_vec(), Vec::new());
        let garbage =
            crate::compaction::Garbage { dropped_tables: [TableId(1), TableId(3)].into(), ..Default::default() };
        let s = Snapshot { runs: vec![wide], max_versions: 1, garbage };
        assert_eq!(plan(&s, HeatRates::default(), &policy), None);
        assert_eq!(s.debt().reclaimable_bytes, 0, "no per-table counts: a mixed run counts as live");
    }

    #[test]
    fn a_partition_of_nothing_but_dropped_tables_owes_all_its_bytes() {
        let mut s = snapshot(vec![of_table(run(1, SegmentKind::Flush, 1 << 20, 1_000, 100), 7)]);
        s.garbage.dropped_tables = [TableId(7)].into();
        let debt = s.debt();
        assert_eq!(debt.reclaimable_bytes, 1 << 20);
        assert!(debt.space_amplification.is_finite() && debt.space_amplification >= 1_000.0, "{debt:?}");
    }
}
