//! A backlog far larger than memory is ingested within the memtable ceiling: ~60 MiB of
//! messages (60,000 values of 1 KiB over 5,000 keys) wait in Kafka before `nacred` starts with
//! a 1 MiB memtable budget and a 4 MiB ceiling per shard. The daemon must pause its Kafka
//! partitions at the ceiling and resume them after a flush, instead of buffering the backlog in
//! memory. Once it caught up:
//!
//! - every shard's `memtable_peak_bytes` is at most the ceiling plus 2 MiB (see `SLACK_BYTES`);
//! - the shards paused their partitions at least once (`kafka_paused_total` > 0), and a shard
//!   that paused reports a peak of at least the ceiling (it pauses only there);
//! - every key holds the last value produced for it (timestamps rise with each message).

use nacre_tests::kafka::{
    self, Broker, Producer, Record, SourceConfig, end_offsets, now_ms, start_with_table_and_sources,
};
use nacre_tests::stats::per_shard;
use nacre_wire::{Get, Key, TableSettings, Ts, partition_of};

const TABLE: &str = "backlog";
const SOURCE: &str = "backlog";
const TOPIC: &str = "backlog";
const STORE_PARTITIONS: u32 = 8;
const MESSAGES: usize = 60_000;
const VALUE_BYTES: usize = 1_024;
const KEYS: usize = 5_000;
/// Messages per flush of the producer, so its memory stays small.
const PRODUCE_BATCH: usize = 5_000;
const BUDGET_BYTES: u64 = 1 << 20;
const CEILING_BYTES: u64 = 4 << 20;
/// What a shard's memtables may hold beyond the ceiling. The daemon pauses a shard's Kafka
/// partitions when its memtables reach the ceiling and resumes them after a flush, so past the
/// ceiling come only the rounds already under way when it was reached: this shard's own and one
/// forwarded from the other shard, each at most `kafka.poll_batch_bytes` (256 KiB here) of keys
/// and values. In memtable bytes, which count per-entry overhead and the arena's allocated
/// chunks, that is at most about twice as much, plus one arena chunk: 2 MiB covers it. A peak
/// above ceiling + 2 MiB means the pause did not hold back what Kafka kept delivering (the 60 MiB
/// backlog would otherwise sit in memory).
const SLACK_BYTES: u64 = 2 << 20;
const BASE_CONFIG: &str = "partitions = 8\n\
    [memory]\n\
    memtable_budget_bytes = 1048576\n\
    memtable_ceiling_bytes = 4194304\n\
    [kafka]\n\
    poll_batch_bytes = 262144\n";

fn key(j: usize) -> Key {
    Key::new(format!("key:{j}"), "")
}

/// Produces the backlog; returns each key's last value and timestamp.
fn produce(bootstrap: &str, rng: &mut fastrand::Rng) -> Vec<Option<(Vec<u8>, u64)>> {
    let ts_base = now_ms() - 3_600_000;
    let mut last = vec![None; KEYS];
    let mut producer = Producer::new(bootstrap);
    for start in (0..MESSAGES).step_by(PRODUCE_BATCH) {
        let mut records = Vec::with_capacity(PRODUCE_BATCH);
        for i in start..(start + PRODUCE_BATCH).min(MESSAGES) {
            let j = rng.usize(..KEYS);
            let key = key(j);
            let mut value = format!("{i}:").into_bytes();
            value.extend((value.len()..VALUE_BYTES).map(|_| rng.alphanumeric() as u8));
            // Strictly rising timestamps: the last message of a key is its newest.
            let ts = ts_base + i as u64;
            last[j] = Some((value.clone(), ts));
            let partition = partition_of(&key.partition_key, STORE_PARTITIONS);
            let record = Record::new(TOPIC, key.partition_key, value)
                .timestamp_ms(i64::try_from(ts).expect("a timestamp"))
                .partition(i32::try_from(partition).expect("small"));
            records.push(record);
        }
        producer.send_all(&records);
    }
    last
}

#[test]
fn a_backlog_larger_than_memory_is_ingested_under_the_memtable_ceiling() {
    let seed = nacre_tests::seed::seed("a_backlog_larger_than_memory_is_ingested_under_the_memtable_ceiling");
    let mut rng = fastrand::Rng::with_seed(seed);
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic(TOPIC, STORE_PARTITIONS as usize);
    let last = produce(&bootstrap, &mut rng);
    let end = end_offsets(&bootstrap, TOPIC);
    assert_eq!(end.iter().sum::<i64>(), MESSAGES as i64);

    let source = SourceConfig::new(SOURCE, TABLE, &[TOPIC], &bootstrap);
    let server = start_with_table_and_sources(BASE_CONFIG, TABLE, TableSettings::default(), &[source]);
    let runtime = nacre_tests::runtime();
    kafka::wait_caught_up(&runtime, &server, SOURCE, TOPIC, &end);

    let client = runtime.block_on(server.client());
    let stats = runtime.block_on(client.stats()).expect("stats");
    let peaks = per_shard(&stats, "memtable_peak_bytes");
    let paused = per_shard(&stats, "kafka_paused_total");
    eprintln!(
        "memtable peaks by shard {peaks:?}, pauses by shard {paused:?} (budget {BUDGET_BYTES}, ceiling {CEILING_BYTES})"
    );
    assert_eq!(peaks.len(), server.cores(), "every shard reports memtable_peak_bytes: {peaks:?}");
    for (shard, peak) in &peaks {
        assert!(
            *peak <= CEILING_BYTES + SLACK_BYTES,
            "shard {shard} held {peak} memtable bytes, over the ceiling {CEILING_BYTES} + {SLACK_BYTES}"
        );
        // A shard pauses only when its memtables reach the ceiling, so one that paused held
        // at least that much: a lower peak means the gauge missed the shard's real peak.
        if paused.get(shard).is_some_and(|p| *p > 0) {
            assert!(*peak >= CEILING_BYTES, "shard {shard} paused at the ceiling yet reports a peak of {peak}");
        }
    }
    assert!(paused.values().sum::<u64>() > 0, "a backlog of {MESSAGES} KiB never paused a partition");

    let mut wrong = Vec::new();
    runtime.block_on(async {
        for (j, want) in last.iter().enumerate() {
            let row = client.get(Get::new(TABLE, key(j))).await.expect("get");
            let got = row.map(|r| (r.value, r.version.ts));
            let want = want.as_ref().map(|(value, ts)| (value.clone(), Ts::from_millis(*ts)));
            if got != want {
                let brief = |v: &Option<(Vec<u8>, Ts)>| {
                    v.as_ref()
                        .map(|(value, ts)| (String::from_utf8_lossy(&value[..16.min(value.len())]).into_owned(), *ts))
                };
                wrong.push(format!("{:?}: read {:?}, expected {:?}", key(j), brief(&got), brief(&want)));
            }
        }
    });
    assert!(wrong.is_empty(), "{} keys wrong, first:\n{}", wrong.len(), wrong[..wrong.len().min(10)].join("\n"));
}
