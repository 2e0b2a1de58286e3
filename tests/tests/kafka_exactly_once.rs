//! Exactly-once ingestion under SIGKILL: two sources feed one table while the daemon is killed
//! at random moments, and at the end every key's history holds exactly the versions the topics
//! imply (nothing missing, nothing doubled) and reads see the greatest.
//!
//! - The store has 8 partitions. Topic `aligned` has 8 Kafka partitions, and the producer puts
//!   each key on `partition_of(key, 8)` (the fast path: a Kafka partition maps to one store
//!   partition). Topic `misaligned` has 12, filled by librdkafka's default partitioner (every
//!   Kafka partition holds keys of many store partitions, on both shards).
//! - 150,000 messages per topic over 2,000 keys (1,250 partition keys, some with sort keys), so
//!   each key is overwritten ~150 times; timestamps are random and not monotonic, so an older
//!   value often arrives later and must not win; ~5 % are tombstones, ~5 % carry a TTL (a day:
//!   it never expires during the test), and ~5 % reuse the other topic's last timestamp for the
//!   same key, so equal timestamps are decided by origin.
//! - Memtables are small (1 MiB budget, 4 MiB ceiling per shard), so flushes, which commit the
//!   sources' positions, happen all through ingestion.
//! - The producer works on its own thread, one burst per round; each round the daemon is
//!   SIGKILLed after a random pause (some rounds kill it again during recovery) and restarted.
//!   The pauses only spread the kills: the check holds wherever a kill lands.
//!
//! The model is built from the producer's delivery reports (every message's partition and
//! offset) and the stream ids `source list` gives. The wait for ingestion is the condition
//! `kafka_next_offset == end offset` on every partition, never a sleep.

use futures_util::{StreamExt, stream};
use nacre_tests::kafka::{
    self, Broker, Delivered, Producer, Record, SORT_KEY_HEADER, SourceConfig, TTL_HEADER, active_source, end_offsets,
    expected_version, message_key, newest_first, now_ms, restart_with_sources, visible,
};
use nacre_tests::server::{Server, ServerOptions};
use nacre_tests::stats::stat_sum;
use nacre_wire::{Client, Get, Key, TableSettings, VersionEntry, Versions, partition_of};
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TABLE: &str = "events";
const ALIGNED: &str = "aligned";
const MISALIGNED: &str = "misaligned";
const STORE_PARTITIONS: u32 = 8;
const MISALIGNED_PARTITIONS: usize = 12;
const MESSAGES_PER_TOPIC: usize = 150_000;
/// Kill rounds; the producer sends one burst per round.
const ROUNDS: usize = 12;
const PARTITION_KEYS: usize = 1_250;
/// Keys `PARTITION_KEYS..KEYS` are sort keys under the first `SORTED_PARTITION_KEYS` partition
/// keys (which also have the empty sort key).
const KEYS: usize = 2_000;
const SORTED_PARTITION_KEYS: usize = 250;
const TOMBSTONE_PERCENT: u8 = 5;
const TTL_PERCENT: u8 = 5;
const SAME_TS_PERCENT: u8 = 5;
const TTL_MS: u64 = 86_400_000;
/// Timestamps are drawn from this window, which ends an hour in the past: narrow enough that
/// equal timestamps also happen by chance.
const TS_WINDOW_MS: u64 = 20_000;
const BASE_CONFIG: &str = "partitions = 8\n\
    [memory]\n\
    memtable_budget_bytes = 1048576\n\
    memtable_ceiling_bytes = 4194304\n";
/// Requests the check keeps in flight.
const READ_CONCURRENCY: usize = 64;

/// Key `j` of the key space.
fn key(j: usize) -> Key {
    if j < PARTITION_KEYS {
        Key::new(format!("user:{j}"), "")
    } else {
        let n = j - PARTITION_KEYS;
        Key::new(format!("user:{}", n % SORTED_PARTITION_KEYS), format!("item:{}", n / SORTED_PARTITION_KEYS))
    }
}

/// The records of one burst, both topics interleaved. `last_ts[j]` holds key `j`'s last
/// timestamp on each topic, so some messages can reuse the other topic's.
fn burst(rng: &mut fastrand::Rng, round: usize, ts_base: u64, last_ts: &mut [[Option<u64>; 2]]) -> Vec<Record> {
    let per_topic = MESSAGES_PER_TOPIC / ROUNDS;
    let mut records = Vec::with_capacity(2 * per_topic);
    for i in 0..2 * per_topic {
        let side = i % 2;
        let topic = [ALIGNED, MISALIGNED][side];
        let j = rng.usize(..KEYS);
        let key = key(j);
        let ts = match last_ts[j][1 - side] {
            Some(other) if rng.u8(..100) < SAME_TS_PERCENT => other,
            _ => ts_base + rng.u64(..TS_WINDOW_MS),
        };
        last_ts[j][side] = Some(ts);
        let mut record = if rng.u8(..100) < TOMBSTONE_PERCENT {
            Record::tombstone(topic, key.partition_key.clone())
        } else {
            let filler: String = (0..rng.usize(8..120)).map(|_| rng.alphanumeric()).collect();
            Record::new(topic, key.partition_key.clone(), format!("{topic}/{round}/{i}/{filler}"))
        };
        record = record.timestamp_ms(i64::try_from(ts).expect("a timestamp"));
        if !key.sort_key.is_empty() {
            record = record.header(SORT_KEY_HEADER, key.sort_key.clone());
        }
        if record.payload.is_some() && rng.u8(..100) < TTL_PERCENT {
            record = record.header(TTL_HEADER, TTL_MS.to_string());
        }
        if side == 0 {
            let partition = partition_of(&key.partition_key, STORE_PARTITIONS);
            record = record.partition(i32::try_from(partition).expect("small"));
        }
        records.push(record);
    }
    records
}

/// The producer thread: one burst each time the test says go; every record with where it
/// landed, when the test hangs up.
fn produce(bootstrap: String, seed: u64, go: mpsc::Receiver<usize>) -> Vec<(Record, Delivered)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let ts_base = now_ms() - 3_600_000;
    let mut last_ts = vec![[None; 2]; KEYS];
    let mut producer = Producer::new(&bootstrap);
    let mut sent = Vec::new();
    while let Ok(round) = go.recv() {
        let records = burst(&mut rng, round, ts_base, &mut last_ts);
        let delivered = producer.send_all(&records);
        sent.extend(records.into_iter().zip(delivered));
    }
    sent
}

/// Every key's expected history, greatest first.
fn model(sent: &[(Record, Delivered)], stream_ids: &HashMap<String, u32>) -> HashMap<Key, Vec<VersionEntry>> {
    let mut histories: HashMap<Key, Vec<VersionEntry>> = HashMap::new();
    for (record, delivered) in sent {
        let version = expected_version(record, delivered, stream_ids[&delivered.topic]);
        histories.entry(message_key(record)).or_default().push(version);
    }
    for history in histories.values_mut() {
        newest_first(history);
    }
    histories
}

/// What differs between a key's history and its model: versions missing, versions extra (a
/// doubled message shows as extra), or the same versions in another order.
fn history_diff(got: &[VersionEntry], want: &[VersionEntry]) -> Option<String> {
    if got == want {
        return None;
    }
    let mut extra: Vec<&VersionEntry> = got.iter().collect();
    let mut missing = Vec::new();
    for v in want {
        match extra.iter().position(|g| *g == v) {
            Some(i) => {
                extra.swap_remove(i);
            }
            None => missing.push(v),
        }
    }
    Some(if missing.is_empty() && extra.is_empty() {
        format!("the right {} versions in the wrong order", got.len())
    } else {
        format!(
            "{} versions, {} expected; missing {}, extra {}; first missing {:?}, first extra {:?}",
            got.len(),
            want.len(),
            missing.len(),
            extra.len(),
            missing.first(),
            extra.first()
        )
    })
}

/// Checks every key against the model: its whole history and its visible row.
async fn check(client: &Client, expected: &HashMap<Key, Vec<VersionEntry>>) -> Vec<String> {
    let now = now_ms();
    let keys: Vec<Key> = (0..KEYS).map(key).collect();
    let results: Vec<Vec<String>> = stream::iter(keys)
        .map(|key| async move {
            let want = expected.get(&key).map_or(&[][..], Vec::as_slice);
            let mut wrong = Vec::new();
            let history = client.versions(Versions::new(TABLE, key.clone())).await;
            let history = history.unwrap_or_else(|e| panic!("versions of {key:?}: {e}"));
            if let Some(diff) = history_diff(&history.versions, want) {
                wrong.push(format!("{key:?}: {diff}"));
            }
            let row = client.get(Get::new(TABLE, key.clone())).await.unwrap_or_else(|e| panic!("get {key:?}: {e}"));
            let visible = visible(want, now);
            if row != visible {
                wrong.push(format!("{key:?}: read {row:?}, the model's winner {visible:?}"));
            }
            wrong
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().flatten().collect()
}

#[test]
fn two_sources_apply_every_message_exactly_once_across_sigkills() {
    let seed = nacre_tests::seed::seed("two_sources_apply_every_message_exactly_once_across_sigkills");
    let mut rng = fastrand::Rng::with_seed(seed);
    let started = Instant::now();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic(ALIGNED, STORE_PARTITIONS as usize);
    broker.create_topic(MISALIGNED, MISALIGNED_PARTITIONS);

    let options = ServerOptions { cores: 2, config: Some(BASE_CONFIG.to_owned()), ..ServerOptions::default() };
    let mut server = Server::start_with(options);
    let runtime = nacre_tests::runtime();
    let settings = TableSettings { max_versions: 100_000, ..TableSettings::default() };
    runtime.block_on(async { server.client().await.create_table(TABLE, settings).await.expect("create_table") });
    let sources = [
        SourceConfig::new(ALIGNED, TABLE, &[ALIGNED], &bootstrap),
        SourceConfig::new(MISALIGNED, TABLE, &[MISALIGNED], &bootstrap),
    ];
    restart_with_sources(&mut server, BASE_CONFIG, &sources);
    let stream_ids: HashMap<String, u32> =
        [ALIGNED, MISALIGNED].iter().map(|s| ((*s).to_owned(), active_source(&server, s).stream_id(s))).collect();
    assert_ne!(stream_ids[ALIGNED], stream_ids[MISALIGNED], "two sources, two stream ids");

    let (go, rounds) = mpsc::channel();
    let producer = {
        let (bootstrap, seed) = (bootstrap.clone(), rng.u64(..));
        std::thread::spawn(move || produce(bootstrap, seed, rounds))
    };
    let mut recovery_kills = 0;
    for round in 0..ROUNDS {
        go.send(round).expect("the producer thread is running");
        std::thread::sleep(Duration::from_millis(rng.u64(20..1_000)));
        server.sigkill();
        if rng.u8(..4) == 0 {
            // Again during recovery (or just after): recovery must survive that too.
            server.spawn();
            std::thread::sleep(Duration::from_millis(rng.u64(..150)));
            server.sigkill();
            recovery_kills += 1;
        }
        server.restart();
    }
    drop(go);
    let sent = producer.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
    let produced = started.elapsed();

    for topic in [ALIGNED, MISALIGNED] {
        let end = end_offsets(&bootstrap, topic);
        let count = sent.iter().filter(|(r, _)| r.topic == topic).count();
        assert_eq!(end.iter().sum::<i64>(), i64::try_from(count).expect("count"), "{topic} holds what was delivered");
        kafka::wait_caught_up(&runtime, &server, topic, topic, &end);
    }

    let expected = model(&sent, &stream_ids);
    let client = runtime.block_on(server.client());
    let wrong = runtime.block_on(check(&client, &expected));
    let stats = runtime.block_on(client.stats()).expect("stats");
    let since_start = |name: &str| -> Vec<u64> {
        [ALIGNED, MISALIGNED].iter().map(|s| stat_sum(&stats, name, &[("source", s)])).collect()
    };
    let (applied, replayed) = (since_start("kafka_applied_total"), since_start("kafka_replayed_total"));
    eprintln!(
        "{} messages, {ROUNDS} kills under ingestion and {recovery_kills} during recovery; produced and \
         killed in {produced:.1?}, all in {:.1?}; since the last start (aligned, misaligned): applied \
         {applied:?}, of which replayed into their home partition {replayed:?}",
        sent.len(),
        started.elapsed()
    );
    assert!(
        wrong.is_empty(),
        "{} mismatches (SEED={seed}); first:\n{}\n{}",
        wrong.len(),
        wrong[..wrong.len().min(8)].join("\n"),
        server.log_tail()
    );
}
