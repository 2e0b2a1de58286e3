//! Replay after a crash is bounded in time: a home partition whose memtable has held a streamed
//! version longer than `kafka.max_replay_ms` is flushed at the next checkpoint, which commits its
//! Kafka positions with the versions. The memtable budget here is far above what the test
//! writes, so nothing else would flush: without the bound every message would stay only in
//! memory, and a SIGKILL would make the restart replay all of them.
//!
//! 4,000 messages on an aligned topic (each key on its store partition) are ingested; the test
//! waits (a condition, not a sleep) until every partition's memtable is empty, SIGKILLs nacred,
//! restarts it, waits until it has caught up again, and requires that it replayed nothing
//! (`kafka_replayed_total` is 0) and that every key reads its last value.

use nacre_tests::kafka::{
    self, Broker, Producer, Record, SourceConfig, end_offsets, now_ms, start_with_table_and_sources,
};
use nacre_wire::{Get, Key, Stat, TableSettings, Ts, partition_of};
use std::time::{Duration, Instant};

const TABLE: &str = "replayed";
const SOURCE: &str = "replayed";
const TOPIC: &str = "replayed";
const STORE_PARTITIONS: u32 = 8;
const MESSAGES: usize = 4_000;
const KEYS: usize = 500;
const BASE_CONFIG: &str = "partitions = 8\n\
    [memory]\n\
    memtable_budget_bytes = 67108864\n\
    memtable_ceiling_bytes = 134217728\n\
    [kafka]\n\
    checkpoint_interval_ms = 100\n\
    max_replay_ms = 500\n";
/// Longest the memtables may take to empty: the bound is half a second, this is generous.
const FLUSHED_TIMEOUT: Duration = Duration::from_secs(60);

fn key(j: usize) -> Key {
    Key::new(format!("key:{j}"), "")
}

fn memtable_bytes(stats: &[Stat]) -> u64 {
    stats.iter().filter(|s| s.name == "memtable_bytes" && s.partition.is_some()).map(|s| s.value).sum()
}

#[test]
fn a_partition_that_keeps_streamed_data_in_memory_is_flushed_within_the_replay_bound() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic(TOPIC, STORE_PARTITIONS as usize);
    let ts_base = now_ms() - 3_600_000;
    let mut last = vec![None; KEYS];
    let records: Vec<Record> = (0..MESSAGES)
        .map(|i| {
            let j = i % KEYS;
            let k = key(j);
            let value = format!("value {i}").into_bytes();
            let ts = ts_base + i as u64;
            last[j] = Some((value.clone(), ts));
            let partition = i32::try_from(partition_of(&k.partition_key, STORE_PARTITIONS)).expect("small");
            Record::new(TOPIC, k.partition_key, value).timestamp_ms(ts as i64).partition(partition)
        })
        .collect();
    Producer::new(&bootstrap).send_all(&records);
    let end = end_offsets(&bootstrap, TOPIC);

    let source = SourceConfig::new(SOURCE, TABLE, &[TOPIC], &bootstrap);
    let mut server = start_with_table_and_sources(BASE_CONFIG, TABLE, TableSettings::default(), &[source]);
    let runtime = nacre_tests::runtime();
    kafka::wait_caught_up(&runtime, &server, SOURCE, TOPIC, &end);
    let flushes = runtime.block_on(async {
        let client = server.client().await;
        let deadline = Instant::now() + FLUSHED_TIMEOUT;
        loop {
            let stats = client.stats().await.expect("stats");
            if memtable_bytes(&stats) == 0 {
                break nacre_tests::stats::stat_sum(&stats, "kafka_replay_bound_flushes_total", &[]);
            }
            assert!(
                Instant::now() < deadline,
                "memtables still hold {} bytes of streamed versions after {FLUSHED_TIMEOUT:?}\n{}",
                memtable_bytes(&stats),
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert!(flushes > 0, "the replay bound flushed the partitions");

    server.sigkill();
    server.restart();
    kafka::wait_caught_up(&runtime, &server, SOURCE, TOPIC, &end);
    runtime.block_on(async {
        let client = server.client().await;
        let stats = client.stats().await.expect("stats");
        let replayed = nacre_tests::stats::stat_sum(&stats, "kafka_replayed_total", &[]);
        assert_eq!(replayed, 0, "everything was durable with its position before the kill");
        for (j, want) in last.iter().enumerate() {
            let row = client.get(Get::new(TABLE, key(j))).await.expect("get");
            let want = want.as_ref().map(|(value, ts)| (value.clone(), Ts::from_millis(*ts)));
            assert_eq!(row.map(|r| (r.value, r.version.ts)), want, "{:?}", key(j));
        }
    });
}
