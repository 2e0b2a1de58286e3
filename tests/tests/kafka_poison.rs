//! Bad messages never stop ingestion: a stream with poison messages of every kind the contract
//! names mixed among good ones, into a source with a dead-letter topic. Afterwards:
//!
//! - every good message landed, including the ones right at the limits (a 1,024-byte key, a
//!   value of exactly `max_value_bytes`) and each partition's last message, which follows all
//!   the poison;
//! - no poison message landed;
//! - `kafka_skipped_total` and `kafka_dead_lettered_total` equal the number of poison messages,
//!   and `kafka_applied_total` the number of good ones;
//! - the dead-letter topic holds exactly the poison messages (keys and payloads, as sent);
//! - the daemon still runs and serves reads and writes.
//!
//! The poison: no key, an empty key, a key over `max_partition_key_bytes` (1,024), a value over
//! `max_value_bytes` (set to 1,000), `nacre-ts` or `nacre-ttl` that is not a decimal number, and
//! `nacre-ts` beyond `max_clock_skew_ms` (60 s) in the future, including `u64::MAX`.

use nacre_tests::kafka::{
    self, Broker, Producer, Record, SORT_KEY_HEADER, SourceConfig, TS_HEADER, TTL_HEADER, active_source, end_offsets,
    expected_version, message_key, now_ms, read_topic, start_with_table_and_sources,
};
use nacre_tests::stats::stat_sum;
use nacre_wire::{Get, Key, Put, TableSettings};
use std::time::{Duration, Instant};

const TABLE: &str = "events";
const SOURCE: &str = "events";
const TOPIC: &str = "events";
const DEAD_LETTERS: &str = "events-dlq";
const PARTITIONS: usize = 3;
const GOOD: usize = 300;
const MAX_VALUE_BYTES: usize = 1_000;
const MAX_KEY_BYTES: usize = 1_024;
const BASE_CONFIG: &str = "partitions = 8\n[limits]\nmax_value_bytes = 1000\n";
/// Longest the dead-letter copies may take to appear once the source caught up.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(60);

/// A key of exactly `len` bytes starting with `prefix`.
fn long_key(prefix: &str, len: usize) -> Vec<u8> {
    let mut key = prefix.as_bytes().to_vec();
    key.resize(len, b'k');
    key
}

/// The poison messages, each with a distinct payload so the dead-letter topic can be matched.
fn poison(now: u64) -> Vec<Record> {
    let future = (now + 600_000).to_string();
    let mut big = b"poison-big-value:".to_vec();
    big.resize(MAX_VALUE_BYTES + 1, b'v');
    let mut out = Vec::new();
    for n in 0..3 {
        let bad_number = ["abc", "5ms", "0x10"][n];
        out.extend([
            Record::keyless(TOPIC, format!("poison-no-key-{n}")),
            Record::new(TOPIC, Vec::new(), format!("poison-empty-key-{n}")),
            Record::new(
                TOPIC,
                long_key(&format!("poison-long-key-{n}-"), MAX_KEY_BYTES + 1),
                format!("poison-long-key-{n}"),
            ),
            Record::new(TOPIC, format!("poison-big-value-{n}"), big.clone()),
            Record::new(TOPIC, format!("poison-bad-ts-{n}"), format!("poison-bad-ts-{n}"))
                .header(TS_HEADER, bad_number),
            Record::new(TOPIC, format!("poison-bad-ttl-{n}"), format!("poison-bad-ttl-{n}"))
                .header(TTL_HEADER, bad_number),
            Record::new(TOPIC, format!("poison-future-{n}"), format!("poison-future-{n}"))
                .header(TS_HEADER, future.as_str()),
        ]);
    }
    out.push(Record::new(TOPIC, "poison-future-max", "poison-future-max").header(TS_HEADER, u64::MAX.to_string()));
    out
}

/// The good messages: plain, sorted, with valid headers, and at the limits.
fn good(now: u64) -> Vec<Record> {
    let mut out: Vec<Record> = (0..GOOD)
        .map(|i| {
            let record = Record::new(TOPIC, format!("good-{i}"), format!("value-{i}"));
            match i % 4 {
                0 => record.header(SORT_KEY_HEADER, format!("sk-{i}")),
                1 => record.header(TS_HEADER, (now - 1_000 - i as u64).to_string()),
                2 => record.header(TTL_HEADER, "86400000"),
                _ => record,
            }
        })
        .collect();
    out.push(Record::new(TOPIC, long_key("good-longest-key-", MAX_KEY_BYTES), "at the key limit"));
    let mut largest = b"good-largest-value:".to_vec();
    largest.resize(MAX_VALUE_BYTES, b'v');
    out.push(Record::new(TOPIC, "good-largest-value", largest));
    out
}

/// A message's key and payload, either of which may be absent (NULL).
type KeyAndPayload = (Option<Vec<u8>>, Option<Vec<u8>>);

/// Dead-letter entries as short text, for a readable failure.
fn shown(messages: &[KeyAndPayload]) -> Vec<String> {
    let text = |bytes: &Option<Vec<u8>>| match bytes {
        None => "NULL".to_owned(),
        Some(b) => {
            let s = String::from_utf8_lossy(b);
            if s.chars().count() > 40 {
                format!("{}... ({} bytes)", s.chars().take(40).collect::<String>(), b.len())
            } else {
                s.into_owned()
            }
        }
    };
    messages.iter().map(|(k, p)| format!("{} -> {}", text(k), text(p))).collect()
}

#[test]
fn poison_messages_are_skipped_and_dead_lettered_while_every_good_message_lands() {
    let seed = nacre_tests::seed::seed("poison_messages_are_skipped_and_dead_lettered_while_every_good_message_lands");
    let mut rng = fastrand::Rng::with_seed(seed);
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic(TOPIC, PARTITIONS);
    broker.create_topic(DEAD_LETTERS, 1);
    let source = SourceConfig::new(SOURCE, TABLE, &[TOPIC], &bootstrap).dead_letter_topic(DEAD_LETTERS);
    let mut server = start_with_table_and_sources(BASE_CONFIG, TABLE, TableSettings::default(), &[source]);
    let runtime = nacre_tests::runtime();
    let listed = active_source(&server, SOURCE);
    assert_eq!(listed.dead_letter_topic.as_deref(), Some(DEAD_LETTERS), "{listed:?}");
    let stream_id = listed.stream_id(TOPIC);

    // Poison mixed at random among the good messages, round robin over the partitions, then
    // one good message per partition after everything.
    let now = now_ms();
    let poison = poison(now);
    let good = good(now).into_iter().map(|r| (true, r));
    let mut records: Vec<(bool, Record)> = good.chain(poison.iter().map(|r| (false, r.clone()))).collect();
    rng.shuffle(&mut records);
    for p in 0..PARTITIONS {
        records
            .push((true, Record::new(TOPIC, format!("good-tail-{p}"), format!("after the poison of partition {p}"))));
    }
    let records: Vec<(bool, Record)> = records
        .into_iter()
        .enumerate()
        .map(|(i, (is_good, r))| (is_good, r.partition(i32::try_from(i % PARTITIONS).expect("small"))))
        .collect();
    let all: Vec<Record> = records.iter().map(|(_, r)| r.clone()).collect();
    let delivered = Producer::new(&bootstrap).send_all(&all);
    kafka::wait_caught_up(&runtime, &server, SOURCE, TOPIC, &end_offsets(&bootstrap, TOPIC));

    // Every good message landed as the model says; no poison one did.
    let client = runtime.block_on(server.client());
    let mut wrong = Vec::new();
    for ((is_good, record), d) in records.iter().zip(&delivered) {
        if *is_good {
            let want = expected_version(record, d, stream_id);
            let row = runtime.block_on(client.get(Get::new(TABLE, message_key(record)))).expect("get");
            let got = row.map(|r| (r.version, r.value, r.expires_at_ms));
            let want = match want.payload {
                nacre_wire::Payload::Value { value, expires_at_ms } => Some((want.version, value, expires_at_ms)),
                nacre_wire::Payload::Tombstone => None,
            };
            if got != want {
                wrong.push(format!("good {:?}: read {got:?}, expected {want:?}", message_key(record)));
            }
        } else if let Some(key) = record.key.as_ref().filter(|k| !k.is_empty() && k.len() <= MAX_KEY_BYTES) {
            let row = runtime.block_on(client.get(Get::new(TABLE, Key::new(key.clone(), "")))).expect("get");
            if row.is_some() {
                wrong.push(format!("poison {:?} landed: {row:?}", String::from_utf8_lossy(key)));
            }
        }
    }
    assert!(wrong.is_empty(), "{} wrong:\n{}", wrong.len(), wrong.join("\n"));

    // The counters say the same.
    let stats = runtime.block_on(client.stats()).expect("stats");
    let count = |name: &str| stat_sum(&stats, name, &[("source", SOURCE)]);
    let good_count = records.iter().filter(|(g, _)| *g).count() as u64;
    assert_eq!(count("kafka_skipped_total"), poison.len() as u64, "skipped");
    assert_eq!(count("kafka_dead_lettered_total"), poison.len() as u64, "dead-lettered");
    assert_eq!(count("kafka_applied_total"), good_count, "applied");

    // The dead-letter topic holds exactly the poison messages.
    let deadline = Instant::now() + DEAD_LETTER_TIMEOUT;
    let mut dead = read_topic(&bootstrap, DEAD_LETTERS);
    while dead.len() < poison.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        dead = read_topic(&bootstrap, DEAD_LETTERS);
    }
    let mut got: Vec<KeyAndPayload> = dead.into_iter().map(|c| (c.key, c.payload)).collect();
    let mut want: Vec<KeyAndPayload> = poison.iter().map(|r| (r.key.clone(), r.payload.clone())).collect();
    got.sort();
    want.sort();
    assert_eq!(shown(&got), shown(&want), "the dead-letter topic's keys and payloads");
    assert_eq!(got, want, "the dead-letter topic's keys and payloads, byte for byte");

    // Still running and serving.
    assert!(server.is_running(), "nacred exited\n{}", server.log_tail());
    runtime.block_on(async {
        let key = Key::new("after-poison", "");
        client.put(Put::new(TABLE, key.clone(), "still serving")).await.expect("put");
        let row = client.get(Get::new(TABLE, key)).await.expect("get");
        assert_eq!(row.map(|r| r.value), Some(b"still serving".to_vec()));
    });
}
