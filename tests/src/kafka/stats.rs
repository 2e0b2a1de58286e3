//! The daemon's Kafka statistics as tests read them, and the wait every Kafka test uses.
//!
//! Kafka statistics carry labels inside their names, Prometheus style:
//! `kafka_next_offset{source="events",topic="events",kafka_partition="3"}`. [`next_offsets`]
//! gathers `kafka_next_offset` by Kafka partition; `crate::stats` sums the others.
//!
//! [`wait_caught_up`] is how a test knows the daemon applied everything it produced, without
//! depending on timing: after the producer flushed, the test reads the topic's end offsets,
//! and the daemon has applied every message once its next offset equals the end offset on
//! every partition.

use crate::server::Server;
use nacre_wire::{LabelledName, Stat};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Longest [`wait_caught_up`] waits.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// How often [`wait_caught_up`] reads the statistics.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// `kafka_next_offset` of `source` for `topic`, by Kafka partition: one value per statistic
/// that reports the partition (the consuming shard's, and any stale one).
pub fn next_offsets(stats: &[Stat], source: &str, topic: &str) -> BTreeMap<i32, Vec<u64>> {
    let mut out: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for stat in stats {
        let Some(name) = LabelledName::parse(&stat.name) else { continue };
        if !name.matches("kafka_next_offset", &[("source", source), ("topic", topic)]) {
            continue;
        }
        let partition = name.labels.get("kafka_partition").and_then(|p| p.parse().ok());
        let partition = partition.unwrap_or_else(|| panic!("kafka_next_offset without a partition: {}", stat.name));
        out.entry(partition).or_default().push(stat.value);
    }
    out
}

/// The partitions of a topic not yet applied up to `end`: (partition, next offsets reported,
/// end offset). A partition counts as applied when its furthest report equals its end offset
/// (only the consuming shard reports a partition, so a lower report can only be a stale one,
/// such as a removed source's that stays put), or when it is empty (end offset 0) and no shard
/// reports it yet.
fn behind(next: &BTreeMap<i32, Vec<u64>>, end: &[i64]) -> Vec<(i32, Vec<u64>, i64)> {
    let mut out = Vec::new();
    for (p, &end_offset) in end.iter().enumerate() {
        let partition = i32::try_from(p).expect("few partitions");
        let reported = next.get(&partition).cloned().unwrap_or_default();
        let want = u64::try_from(end_offset).expect("offsets are not negative");
        let done = reported.iter().max().map_or(want == 0, |&furthest| furthest == want);
        if !done {
            out.push((partition, reported, end_offset));
        }
    }
    out
}

/// Waits until `server` reports, for every partition of `topic`, a `kafka_next_offset` of
/// `source` equal to that partition's offset in `end` (the topic's end offsets, read after the
/// producer flushed), polling its statistics every 50 ms, at most [`CATCH_UP_TIMEOUT`].
///
/// Must not be called inside a runtime: it blocks on `runtime`.
///
/// # Panics
///
/// If the daemon does not catch up in time or stops answering (with its log's tail).
pub fn wait_caught_up(runtime: &tokio::runtime::Runtime, server: &Server, source: &str, topic: &str, end: &[i64]) {
    let started = Instant::now();
    runtime.block_on(async {
        let client = server.client().await;
        let deadline = started + CATCH_UP_TIMEOUT;
        loop {
            let stats = client.stats().await.unwrap_or_else(|e| panic!("reading stats: {e}\n{}", server.log_tail()));
            let behind = behind(&next_offsets(&stats, source, topic), end);
            if behind.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "source {source} did not apply topic {topic} up to its end offsets {end:?} within \
                 {CATCH_UP_TIMEOUT:?}; behind (partition, next offsets reported, end offset): {behind:?}\n{}",
                server.log_tail()
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    });
    eprintln!("source {source} applied topic {topic} up to {end:?} in {:.1?}", started.elapsed());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(name: &str, shard: u32, value: u64) -> Stat {
        Stat { name: name.to_owned(), shard: Some(shard), partition: None, value }
    }

    #[test]
    fn offsets_select_by_label() {
        let stats = vec![
            stat(r#"kafka_applied_total{source="s"}"#, 0, 5),
            stat(r#"kafka_next_offset{source="s",topic="t",kafka_partition="0"}"#, 0, 10),
            stat(r#"kafka_next_offset{source="s",topic="t",kafka_partition="1"}"#, 1, 4),
            stat(r#"kafka_next_offset{source="s",topic="u",kafka_partition="0"}"#, 1, 99),
        ];
        let next = next_offsets(&stats, "s", "t");
        assert_eq!(next, BTreeMap::from([(0, vec![10]), (1, vec![4])]));
        assert_eq!(behind(&next, &[10, 4]), vec![]);
        assert_eq!(behind(&next, &[10, 5]), vec![(1, vec![4], 5)]);
        assert_eq!(behind(&next, &[10, 4, 0]), vec![], "an empty partition needs no report");
        assert_eq!(behind(&next, &[10, 4, 1]), vec![(2, vec![], 1)]);
        let stale = BTreeMap::from([(0, vec![3, 10])]);
        assert_eq!(behind(&stale, &[10]), vec![], "a stale lower report is ignored");
        assert_eq!(behind(&stale, &[11]), vec![(0, vec![3, 10], 11)]);
    }
}
