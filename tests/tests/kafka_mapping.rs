//! How Kafka messages become rows, end to end: a real broker, the real `nacred` with one source
//! of two topics, one fed by the Rust producer (librdkafka) and one by kcat, an independent
//! producer. Checked for each message shape of the contract:
//!
//! - the key is the partition key, header `nacre-sort-key` the sort key (raw bytes), the payload
//!   the value; an empty payload is an empty value, a NULL payload a tombstone (a key written
//!   then tombstoned reads as not found, and its history shows both versions);
//! - the timestamp is the message's (sent explicitly, or stamped by kcat and read back), unless
//!   header `nacre-ts` overrides it; `nacre-ttl` sets `expires_at_ms = ts + ttl`;
//! - an older message arriving later does not win;
//! - each version's origin names its stream (`source list`), Kafka partition and offset, as the
//!   producer's delivery reports and kcat's reader say, through the client and through
//!   `nacre versions --json` (which spells out topic, Kafka partition and offset).
//!
//! The test waits for ingestion on a condition: the daemon's `kafka_next_offset` reaching the
//! topics' end offsets after the producers finished.

use nacre_tests::kafka::{
    self, Broker, Delivered, Producer, Record, SORT_KEY_HEADER, SourceConfig, TS_HEADER, TTL_HEADER, active_source,
    end_offsets, expected_version, kcat, message_key, nacre, newest_first, now_ms, start_with_table_and_sources,
    visible,
};
use nacre_tests::server::Server;
use nacre_wire::{Client, Get, Key, OriginKind, Payload, TableSettings, VersionEntry, Versions};
use serde_json::Value;
use std::collections::BTreeMap;

const TABLE: &str = "events";
const SOURCE: &str = "events";
const RUST_TOPIC: &str = "rust";
const KCAT_TOPIC: &str = "kcat";
const TOPIC_PARTITIONS: usize = 3;
const BASE_CONFIG: &str = "partitions = 8\n";
const DAY_MS: u64 = 86_400_000;

/// The Rust producer's messages: every shape of the contract, on explicit partitions.
fn rust_records(now: u64) -> Vec<Record> {
    let ms = |ago: u64| i64::try_from(now - ago).expect("a timestamp");
    let record = |key: &[u8], value: &[u8]| Record::new(RUST_TOPIC, key, value);
    vec![
        record(b"plain", b"v-plain").timestamp_ms(ms(9_000)).partition(0),
        record(b"sorted", b"v-a").header(SORT_KEY_HEADER, "a").timestamp_ms(ms(8_000)).partition(1),
        record(b"sorted", b"v-b").header(SORT_KEY_HEADER, "b").timestamp_ms(ms(8_000)).partition(2),
        record(b"empty", b"").timestamp_ms(ms(7_000)).partition(0),
        record(b"gone", b"alive").timestamp_ms(ms(6_000)).partition(1),
        Record::tombstone(RUST_TOPIC, "gone").timestamp_ms(ms(5_000)).partition(1),
        // The header's timestamp wins over the message's.
        record(b"ts-header", b"v-ts").header(TS_HEADER, "1600000000123").timestamp_ms(ms(4_000)).partition(2),
        record(b"ttl", b"v-ttl").header(TTL_HEADER, DAY_MS.to_string()).timestamp_ms(ms(3_000)).partition(0),
        record(b"ttl-ts", b"v-ttl-ts")
            .header(TS_HEADER, (now - 2_500).to_string())
            .header(TTL_HEADER, "3600000")
            .timestamp_ms(ms(2_000))
            .partition(1),
        // Raw bytes in key, sort key and value.
        record(&[0xff, 0x00, 0x01], &[0x00, 0xfe]).header(SORT_KEY_HEADER, [0x80, 0x00]).timestamp_ms(ms(1_500)),
        // Newer first, then older: the older arrives later and must not win.
        record(b"late", b"new").timestamp_ms(ms(1_000)).partition(2),
        record(b"late", b"old").timestamp_ms(ms(1_200)).partition(2),
    ]
}

/// One kcat run: its stdin lines (`key:value`, `key:` for NULL) and headers.
struct KcatRun {
    lines: &'static str,
    headers: Vec<(&'static str, String)>,
}

fn kcat_runs() -> Vec<KcatRun> {
    vec![
        KcatRun { lines: "k1:hello\nk2:world\nk1:\n", headers: vec![(SORT_KEY_HEADER, "ksk".to_owned())] },
        KcatRun { lines: "kts:stamped\n", headers: vec![(TS_HEADER, "1650000000000".to_owned())] },
        KcatRun { lines: "kttl:lives\n", headers: vec![(TTL_HEADER, DAY_MS.to_string())] },
    ]
}

/// Produces the kcat runs and reads the topic back with kcat: each message as a [`Record`] and
/// where it landed (partition, offset, timestamp, as kcat's reader prints them).
fn produce_with_kcat(bootstrap: &str) -> Vec<(Record, Delivered)> {
    let mut sent = Vec::new();
    for run in kcat_runs() {
        let mut args = vec!["-P", "-b", bootstrap, "-t", KCAT_TOPIC, "-K:", "-Z"];
        let headers: Vec<String> = run.headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
        for header in &headers {
            args.extend(["-H", header.as_str()]);
        }
        let out = kcat(&args, run.lines.as_bytes());
        assert!(out.status.success(), "kcat -P: {}", String::from_utf8_lossy(&out.stderr));
        for line in run.lines.lines() {
            let (key, value) = line.split_once(':').expect("key:value");
            let record =
                if value.is_empty() { Record::tombstone(KCAT_TOPIC, key) } else { Record::new(KCAT_TOPIC, key, value) };
            let record = run.headers.iter().fold(record, |r, (k, v)| r.header(k, v.as_str()));
            sent.push(record);
        }
    }
    // kcat's reader: partition, offset, timestamp, payload length (-1 for NULL), key. One
    // key's messages keep their order within its partition, so the n-th read of a key is its
    // n-th send.
    let args = ["-C", "-b", bootstrap, "-t", KCAT_TOPIC, "-e", "-q", "-f", "%p %o %T %S %k\\n"];
    let out = kcat(&args, b"");
    assert!(out.status.success(), "kcat -C: {}", String::from_utf8_lossy(&out.stderr));
    let mut read: BTreeMap<String, Vec<(i32, i64, i64, i64)>> = BTreeMap::new();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in stdout.lines() {
        let fields: Vec<&str> = line.splitn(5, ' ').collect();
        let [p, o, t, len, key] = fields[..] else { panic!("kcat printed {line:?}") };
        let number = |s: &str| -> i64 { s.parse().unwrap_or_else(|_| panic!("kcat printed {line:?}")) };
        let partition = i32::try_from(number(p)).expect("a partition");
        read.entry(key.to_owned()).or_default().push((partition, number(o), number(t), number(len)));
    }
    for positions in read.values_mut() {
        positions.sort_by_key(|&(_, offset, _, _)| offset);
    }
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    sent.into_iter()
        .map(|record| {
            let key = String::from_utf8(record.key.clone().expect("a key")).expect("UTF-8");
            let n = taken.entry(key.clone()).or_default();
            let &(partition, offset, ts, len) =
                read.get(&key).and_then(|p| p.get(*n)).unwrap_or_else(|| panic!("kcat did not read back {key} #{n}"));
            *n += 1;
            let expected_len = record.payload.as_ref().map_or(-1, |v| i64::try_from(v.len()).expect("small"));
            assert_eq!(len, expected_len, "payload length of {key} #{n} as kcat read it");
            (record, Delivered { topic: KCAT_TOPIC.to_owned(), partition, offset, timestamp_ms: Some(ts) })
        })
        .collect()
}

/// The expected history of every key, greatest first.
fn expected_histories(
    sent: &[(Record, Delivered)],
    stream_ids: &BTreeMap<String, u32>,
) -> BTreeMap<Key, Vec<VersionEntry>> {
    let mut histories: BTreeMap<Key, Vec<VersionEntry>> = BTreeMap::new();
    for (record, delivered) in sent {
        let version = expected_version(record, delivered, stream_ids[&delivered.topic]);
        histories.entry(message_key(record)).or_default().push(version);
    }
    for history in histories.values_mut() {
        newest_first(history);
    }
    histories
}

/// Checks every key's history and visible row against the model; returns the mismatches.
async fn compare(client: &Client, expected: &BTreeMap<Key, Vec<VersionEntry>>) -> Vec<String> {
    let now = now_ms();
    let mut wrong = Vec::new();
    for (key, history) in expected {
        let got = client.versions(Versions::new(TABLE, key.clone())).await.expect("versions");
        if got.versions != *history {
            wrong.push(format!("{key:?}: history {:#?}, expected {history:#?}", got.versions));
        }
        let row = client.get(Get::new(TABLE, key.clone())).await.expect("get");
        if row != visible(history, now) {
            wrong.push(format!("{key:?}: read {row:?}, expected {:?}", visible(history, now)));
        }
    }
    wrong
}

/// The JSON lines of `nacre versions TABLE PK -s SK --json`.
fn cli_versions(server: &Server, pk: &str, sk: &str) -> Vec<Value> {
    let out = nacre(server, &["versions", TABLE, pk, "--sort-key", sk, "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nacre versions {pk}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect()
}

/// `nacre versions --json` names each version's topic, Kafka partition and offset, besides
/// kind, source_id and seq.
fn check_cli_origins(server: &Server, pk: &str, sk: &str, expected: &[(&Record, &Delivered, VersionEntry)]) {
    let lines = cli_versions(server, pk, sk);
    let got: Vec<Value> = lines.iter().map(|l| l["origin"].clone()).collect();
    let want: Vec<Value> = expected
        .iter()
        .map(|(_, d, v)| {
            serde_json::json!({
                "kind": "stream",
                "source_id": v.version.origin.source_id,
                "seq": v.version.origin.seq,
                "topic": d.topic,
                "kafka_partition": d.partition,
                "offset": d.offset,
            })
        })
        .collect();
    assert_eq!(got, want, "origins of {pk}/{sk}: {lines:#?}");
    let tombstones: Vec<bool> = lines.iter().map(|l| l["tombstone"].as_bool().expect("a bool")).collect();
    let want_tombstones: Vec<bool> = expected.iter().map(|(r, _, _)| r.payload.is_none()).collect();
    assert_eq!(tombstones, want_tombstones, "tombstones of {pk}/{sk}");
}

#[test]
fn messages_from_librdkafka_and_kcat_become_rows_with_their_keys_times_and_origins() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    for topic in [RUST_TOPIC, KCAT_TOPIC] {
        broker.create_topic(topic, TOPIC_PARTITIONS);
    }
    let settings = TableSettings { max_versions: 1_000, ..TableSettings::default() };
    let source = SourceConfig::new(SOURCE, TABLE, &[RUST_TOPIC, KCAT_TOPIC], &bootstrap);
    let server = start_with_table_and_sources(BASE_CONFIG, TABLE, settings, &[source]);
    let runtime = nacre_tests::runtime();

    // The configured source is listed as configured, each topic with its own stream id.
    let listed = active_source(&server, SOURCE);
    assert_eq!((listed.table.as_str(), listed.brokers.as_str()), (TABLE, bootstrap.as_str()), "{listed:?}");
    let topics: Vec<&str> = listed.topics.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(topics, [RUST_TOPIC, KCAT_TOPIC], "{listed:?}");
    assert_eq!(listed.dead_letter_topic, None);
    assert_eq!(listed.settings.get("fetch.wait.max.ms").map(String::as_str), Some("50"), "{listed:?}");
    let stream_ids: BTreeMap<String, u32> = listed.topics.iter().cloned().collect();
    assert_ne!(stream_ids[RUST_TOPIC], stream_ids[KCAT_TOPIC], "each topic has its own stream id");

    let records = rust_records(now_ms());
    let delivered = Producer::new(&bootstrap).send_all(&records);
    let mut sent: Vec<(Record, Delivered)> = records.into_iter().zip(delivered).collect();
    sent.extend(produce_with_kcat(&bootstrap));
    for topic in [RUST_TOPIC, KCAT_TOPIC] {
        kafka::wait_caught_up(&runtime, &server, SOURCE, topic, &end_offsets(&bootstrap, topic));
    }

    let expected = expected_histories(&sent, &stream_ids);
    let client = runtime.block_on(server.client());
    let wrong = runtime.block_on(compare(&client, &expected));
    assert!(wrong.is_empty(), "{} mismatches:\n{}", wrong.len(), wrong.join("\n"));

    // Spot checks that state the contract plainly (the model above agrees with them).
    let read = |pk: &str, sk: &str| runtime.block_on(client.get(Get::new(TABLE, Key::new(pk, sk)))).expect("get");
    assert_eq!(read("empty", "").map(|r| r.value), Some(Vec::new()), "an empty payload is an empty value");
    assert_eq!(read("gone", ""), None, "a NULL payload is a tombstone");
    assert_eq!(read("k1", "ksk"), None, "kcat's -Z NULL is a tombstone");
    assert_eq!(read("sorted", ""), None, "only the headers' sort keys were written");
    assert_eq!(read("late", "").map(|r| r.value), Some(b"new".to_vec()), "the older message arrived later");
    let stamped = read("ts-header", "").expect("written");
    assert_eq!(stamped.version.ts.millis(), 1_600_000_000_123);
    assert_eq!(read("kts", "").expect("written").version.ts.millis(), 1_650_000_000_000);
    let ttl = read("ttl", "").expect("written");
    assert_eq!(ttl.expires_at_ms, Some(ttl.version.ts.millis() + DAY_MS));
    assert_eq!(ttl.version.origin.kind, OriginKind::Stream);
    let gone = runtime.block_on(client.versions(Versions::new(TABLE, Key::new("gone", "")))).expect("versions");
    let payloads: Vec<&Payload> = gone.versions.iter().map(|v| &v.payload).collect();
    assert_eq!(payloads, [&Payload::Tombstone, &Payload::Value { value: b"alive".to_vec(), expires_at_ms: None }]);

    // The CLI spells out topic, Kafka partition and offset.
    for (pk, sk) in [("plain", ""), ("gone", ""), ("k1", "ksk"), ("kttl", "")] {
        let key = Key::new(pk, sk);
        let mut of_key: Vec<(&Record, &Delivered, VersionEntry)> = sent
            .iter()
            .filter(|(record, _)| message_key(record) == key)
            .map(|(record, d)| (record, d, expected_version(record, d, stream_ids[&d.topic])))
            .collect();
        of_key.sort_by_key(|(_, _, v)| std::cmp::Reverse(kafka::rank(&v.version)));
        check_cli_origins(&server, pk, sk, &of_key);
    }
}
