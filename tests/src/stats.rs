//! The daemon's statistics as tests read them. Statistic names may carry labels, Prometheus
//! style (`requests_total{kind="get",outcome="ok"}`, split by [`nacre_wire::LabelledName`]):
//! [`stat_sum`] adds up the statistics of one base name whose labels include the given ones,
//! over every shard and partition; [`per_shard`] reads a shard-level statistic by shard.

use nacre_wire::{LabelledName, Stat};
use std::collections::BTreeMap;

/// The sum, over every shard and partition, of the statistics named `base` whose labels
/// include `labels`.
pub fn stat_sum(stats: &[Stat], base: &str, labels: &[(&str, &str)]) -> u64 {
    stats
        .iter()
        .filter(|s| LabelledName::parse(&s.name).is_some_and(|n| n.matches(base, labels)))
        .map(|s| s.value)
        .sum()
}

/// Each shard's own (not per-partition) statistic `name`, by shard.
pub fn per_shard(stats: &[Stat], name: &str) -> BTreeMap<u32, u64> {
    stats.iter().filter(|s| s.name == name && s.partition.is_none()).filter_map(|s| Some((s.shard?, s.value))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(name: &str, shard: u32, partition: Option<u32>, value: u64) -> Stat {
        Stat { name: name.to_owned(), shard: Some(shard), partition, value }
    }

    #[test]
    fn sums_select_by_label_and_per_shard_skips_partitions() {
        let stats = vec![
            stat(r#"kafka_applied_total{source="s"}"#, 0, None, 5),
            stat(r#"kafka_applied_total{source="s"}"#, 1, None, 7),
            stat(r#"kafka_applied_total{source="other"}"#, 1, None, 100),
            stat("memtable_bytes", 0, None, 30),
            stat("memtable_bytes", 0, Some(2), 30),
        ];
        assert_eq!(stat_sum(&stats, "kafka_applied_total", &[("source", "s")]), 12);
        assert_eq!(stat_sum(&stats, "kafka_applied_total", &[]), 112);
        assert_eq!(per_shard(&stats, "memtable_bytes"), BTreeMap::from([(0, 30)]));
    }
}
