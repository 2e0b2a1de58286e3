//! The Kafka harness itself, against a real broker and without `nacred`: what the Kafka
//! ingestion tests build their models on must hold first. The producer's delivery reports name
//! exactly where each message landed (read back with librdkafka and with kcat), keys, NULL and
//! empty payloads, headers and timestamps arrive as sent, end offsets count what was produced,
//! and kcat's `-K: -Z` turns an empty value into a NULL payload.

use nacre_tests::kafka::{Broker, Producer, Record, end_offsets, kcat, read_topic};

const TOPIC: &str = "harness";
const PARTITIONS: usize = 3;

/// Messages of every shape the ingestion tests send: explicit and default partitions, NULL and
/// empty payloads, no key, headers, explicit timestamps.
fn records() -> Vec<Record> {
    let mut records = Vec::new();
    for i in 0..30_i64 {
        let key = format!("key-{i}");
        let record = match i % 5 {
            0 => Record::tombstone(TOPIC, key),
            1 => Record::new(TOPIC, key, Vec::new()),
            2 => Record::keyless(TOPIC, format!("keyless-{i}")),
            _ => Record::new(TOPIC, key, format!("value-{i}")).header("nacre-sort-key", format!("sk-{i}")),
        };
        let record = record.timestamp_ms(1_700_000_000_000 + i * 7).header("nacre-ts", i.to_string());
        records.push(if i % 2 == 0 { record.partition(i32::try_from(i % 3).expect("small")) } else { record });
    }
    records
}

#[test]
fn deliveries_name_where_each_message_landed_as_read_back_by_librdkafka_and_kcat() {
    let broker = Broker::start();
    broker.create_topic(TOPIC, PARTITIONS);
    let bootstrap = broker.bootstrap();
    let records = records();
    let mut producer = Producer::new(&bootstrap);
    let delivered = producer.send_all(&records);
    assert_eq!(delivered.len(), records.len());

    // End offsets count each partition's messages; offsets are dense from 0.
    let mut per_partition = vec![Vec::new(); PARTITIONS];
    for (record, d) in records.iter().zip(&delivered) {
        assert_eq!(d.topic, TOPIC);
        if let Some(p) = record.partition {
            assert_eq!(d.partition, p, "{record:?}");
        }
        assert_eq!(d.timestamp_ms, record.timestamp_ms, "{record:?}");
        per_partition[usize::try_from(d.partition).expect("a partition")].push(d.offset);
    }
    for offsets in &mut per_partition {
        offsets.sort_unstable();
        let dense: Vec<i64> = (0..i64::try_from(offsets.len()).expect("few")).collect();
        assert_eq!(*offsets, dense);
    }
    let ends: Vec<i64> = per_partition.iter().map(|o| i64::try_from(o.len()).expect("few")).collect();
    assert_eq!(end_offsets(&bootstrap, TOPIC), ends);

    // librdkafka reads back exactly what was sent, where the delivery reports said.
    let consumed = read_topic(&bootstrap, TOPIC);
    assert_eq!(consumed.len(), records.len());
    for (record, d) in records.iter().zip(&delivered) {
        let found = consumed.iter().find(|c| (c.partition, c.offset) == (d.partition, d.offset));
        let c = found.unwrap_or_else(|| panic!("{d:?} was not read back"));
        assert_eq!((&c.key, &c.payload, c.timestamp_ms), (&record.key, &record.payload, record.timestamp_ms));
        let headers: Vec<(String, Vec<u8>)> =
            c.headers.iter().map(|(k, v)| (k.clone(), v.clone().expect("a header value"))).collect();
        assert_eq!(headers, record.headers);
    }

    // kcat reads the same positions and keys.
    let out = kcat(&["-C", "-b", &bootstrap, "-t", TOPIC, "-e", "-q", "-f", "%p %o %k\\n"], b"");
    assert!(out.status.success(), "kcat -C: {}", String::from_utf8_lossy(&out.stderr));
    let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    let mut expected: Vec<String> = records
        .iter()
        .zip(&delivered)
        .map(|(r, d)| {
            let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned();
            format!("{} {} {key}", d.partition, d.offset)
        })
        .collect();
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);

    // kcat's producer: `-K:` splits key from value, `-Z` sends an empty value as NULL.
    let before = end_offsets(&bootstrap, TOPIC)[1];
    let args = ["-P", "-b", &bootstrap, "-t", TOPIC, "-p", "1", "-K:", "-Z", "-H", "h=v"];
    let out = kcat(&args, b"a:one\nb:\n");
    assert!(out.status.success(), "kcat -P: {}", String::from_utf8_lossy(&out.stderr));
    let tail: Vec<_> =
        read_topic(&bootstrap, TOPIC).into_iter().filter(|c| c.partition == 1 && c.offset >= before).collect();
    let shapes: Vec<_> = tail.iter().map(|c| (c.key.clone(), c.payload.clone(), c.headers.clone())).collect();
    let header = vec![("h".to_owned(), Some(b"v".to_vec()))];
    assert_eq!(
        shapes,
        vec![(Some(b"a".to_vec()), Some(b"one".to_vec()), header.clone()), (Some(b"b".to_vec()), None, header)]
    );
}
