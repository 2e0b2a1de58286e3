//! The model of Kafka ingestion the tests check the daemon against: which key and version a
//! good message becomes, how versions order, and which one a read sees. It is the contract
//! written once, independently of the daemon's code:
//!
//! - the Kafka key is the partition key; header `nacre-sort-key` is the sort key (absent:
//!   empty); the payload is the value, and a NULL payload is a tombstone;
//! - the timestamp is the message's, in milliseconds (logical 0), unless header `nacre-ts`
//!   (decimal milliseconds) overrides it; header `nacre-ttl` (decimal milliseconds) makes the
//!   value expire at `ts + ttl`;
//! - the origin is `Stream`, `source_id = (stream_id << 16) | kafka_partition`, `seq = offset`;
//! - versions of one key order by (ts, origin kind under the table's tie rule, source_id, seq),
//!   greatest first; a read sees the greatest unless it is a tombstone or expired.

use super::producer::{Delivered, Record};
use super::source::stream_source_id;
use nacre_wire::{Key, Origin, OriginKind, Payload, Row, TableSettings, Ts, VersionEntry, VersionId};

/// The header holding the sort key (raw bytes).
pub const SORT_KEY_HEADER: &str = "nacre-sort-key";
/// The header overriding the timestamp (decimal milliseconds).
pub const TS_HEADER: &str = "nacre-ts";
/// The header giving a time to live (decimal milliseconds).
pub const TTL_HEADER: &str = "nacre-ttl";

/// The key a message writes.
///
/// # Panics
///
/// If the message has no key.
pub fn message_key(record: &Record) -> Key {
    let partition_key = record.key.clone().expect("a good message has a key");
    Key::new(partition_key, record.header_value(SORT_KEY_HEADER).unwrap_or_default())
}

fn decimal(record: &Record, header: &str) -> Option<u64> {
    let text = record.header_value(header)?;
    let parsed = std::str::from_utf8(text).ok().and_then(|t| t.parse().ok());
    Some(parsed.unwrap_or_else(|| panic!("header {header} of a good message is not decimal: {text:?}")))
}

/// The version a good message becomes, given where it landed and its topic's stream id.
///
/// # Panics
///
/// If the message is not a good one (no key, a header that is not decimal) or the delivery
/// report carries no timestamp.
pub fn expected_version(record: &Record, delivered: &Delivered, stream_id: u32) -> VersionEntry {
    let message_ts = delivered.timestamp_ms.and_then(|ms| u64::try_from(ms).ok());
    let ts_ms = decimal(record, TS_HEADER).or(message_ts).expect("a message timestamp");
    let payload = match &record.payload {
        None => Payload::Tombstone,
        Some(value) => {
            Payload::Value { value: value.clone(), expires_at_ms: decimal(record, TTL_HEADER).map(|ttl| ts_ms + ttl) }
        }
    };
    let origin = Origin {
        kind: OriginKind::Stream,
        source_id: stream_source_id(stream_id, delivered.partition),
        seq: u64::try_from(delivered.offset).expect("offsets are not negative"),
    };
    VersionEntry { version: VersionId { ts: Ts::from_millis(ts_ms), origin }, payload }
}

/// Where a version ranks under the default tie rule: greater is newer.
pub fn rank(version: &VersionId) -> (Ts, usize, u32, u64) {
    let rule = TableSettings::DEFAULT_TIE_RULE;
    let kind = rule.iter().position(|k| *k == version.origin.kind).expect("the rule names every kind");
    (version.ts, rule.len() - kind, version.origin.source_id, version.origin.seq)
}

/// Sorts versions greatest first, as a key's history lists them.
pub fn newest_first(versions: &mut [VersionEntry]) {
    versions.sort_by_key(|v| std::cmp::Reverse(rank(&v.version)));
}

/// What a read sees of a history sorted greatest first, at `now_ms`.
pub fn visible(history: &[VersionEntry], now_ms: u64) -> Option<Row> {
    let newest = history.first()?;
    match &newest.payload {
        Payload::Tombstone => None,
        Payload::Value { expires_at_ms: Some(at), .. } if *at <= now_ms => None,
        Payload::Value { value, expires_at_ms } => {
            Some(Row { value: value.clone(), version: newest.version, expires_at_ms: *expires_at_ms })
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    u64::try_from(since.as_millis()).expect("ms fit in u64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(partition: i32, offset: i64, ts: i64) -> Delivered {
        Delivered { topic: "t".to_owned(), partition, offset, timestamp_ms: Some(ts) }
    }

    #[test]
    fn messages_map_to_keys_and_versions() {
        let plain = Record::new("t", "pk", "v");
        let v = expected_version(&plain, &delivered(3, 9, 1_000), 2);
        assert_eq!(message_key(&plain), Key::new("pk", ""));
        assert_eq!(v.version.ts, Ts::from_millis(1_000));
        assert_eq!(v.version.origin, Origin { kind: OriginKind::Stream, source_id: (2 << 16) | 3, seq: 9 });
        assert_eq!(v.payload, Payload::Value { value: b"v".to_vec(), expires_at_ms: None });

        let headed =
            Record::new("t", "pk", "v").header(SORT_KEY_HEADER, "sk").header(TS_HEADER, "500").header(TTL_HEADER, "20");
        let v = expected_version(&headed, &delivered(0, 0, 1_000), 1);
        assert_eq!(message_key(&headed), Key::new("pk", "sk"));
        assert_eq!(v.version.ts, Ts::from_millis(500));
        assert_eq!(v.payload, Payload::Value { value: b"v".to_vec(), expires_at_ms: Some(520) });

        let gone = expected_version(&Record::tombstone("t", "pk"), &delivered(0, 1, 1_000), 1);
        assert_eq!(gone.payload, Payload::Tombstone);
    }

    #[test]
    fn newest_wins_by_ts_then_source_then_offset_and_tombstones_hide() {
        let at = |ts: i64, partition: i32, offset: i64, tombstone: bool| {
            let record = if tombstone { Record::tombstone("t", "k") } else { Record::new("t", "k", format!("{ts}")) };
            expected_version(&record, &delivered(partition, offset, ts), 1)
        };
        let mut history = vec![at(10, 0, 5, false), at(20, 0, 1, false), at(20, 1, 0, false), at(20, 1, 3, false)];
        newest_first(&mut history);
        let order: Vec<(u64, u32, u64)> = history
            .iter()
            .map(|v| (v.version.ts.millis(), v.version.origin.source_id & 0xffff, v.version.origin.seq))
            .collect();
        assert_eq!(order, [(20, 1, 3), (20, 1, 0), (20, 0, 1), (10, 0, 5)]);
        assert_eq!(visible(&history, 0).map(|r| r.version), Some(history[0].version));
        history.insert(0, at(30, 0, 9, true));
        assert_eq!(visible(&history, 0), None);
        assert_eq!(visible(&[], 0), None);
    }
}
