//! What one Kafka message becomes: a version of a row, or the reason it is skipped. Pure: no
//! I/O, no clock, so every rule here is tested without a broker.
//!
//! | Kafka message | Nacre |
//! | --- | --- |
//! | key | the partition key (required) |
//! | header `nacre-sort-key` | the sort key (optional, raw bytes) |
//! | payload | the value; a null payload is a tombstone |
//! | message timestamp | `ts` (milliseconds, logical 0), unless header `nacre-ts` overrides it |
//! | header `nacre-ttl` | the TTL in milliseconds (optional): it expires at `ts + ttl` |
//! | (topic, partition, offset) | the origin: `Stream`, `stream_id << 16 | partition`, `offset` |
//!
//! `nacre-ts` and `nacre-ttl` are decimal ASCII. A repeated header counts by its last value.

use nacre_storage::{Entry, Key, Origin, OriginKind, Payload, TableId, Ts, Version, VersionId};

/// Header naming the sort key.
pub const SORT_KEY_HEADER: &str = "nacre-sort-key";
/// Header overriding the message timestamp, decimal milliseconds since the Unix epoch.
pub const TS_HEADER: &str = "nacre-ts";
/// Header giving a TTL, decimal milliseconds.
pub const TTL_HEADER: &str = "nacre-ttl";

/// A Kafka message as the consumer handed it over, borrowed.
#[derive(Debug, Clone, Default)]
pub struct RawMessage<'a> {
    /// The Kafka partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The payload; `None` is Kafka's null (a tombstone).
    pub payload: Option<&'a [u8]>,
    /// The message timestamp, milliseconds, if the message has one.
    pub timestamp_ms: Option<i64>,
    /// Headers in order.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

/// What the mapping needs to know besides the message.
#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    /// The table written to.
    pub table: TableId,
    /// The topic's stream id.
    pub stream_id: u16,
    /// Longest partition key, bytes.
    pub max_partition_key_bytes: usize,
    /// Longest sort key, bytes.
    pub max_sort_key_bytes: usize,
    /// Largest value, bytes.
    pub max_value_bytes: usize,
    /// The latest `ts` accepted, milliseconds (now plus the clock skew bound).
    pub max_ts_ms: u64,
}

/// Why a message is skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    /// No key, or an empty one.
    #[error("the message has no key (the key is the partition key)")]
    NoKey,
    /// A key or value over the limit.
    #[error("the {what} is {size} bytes, over the limit of {max}")]
    TooLarge {
        /// "key", "sort key" or "value".
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A header that does not parse.
    #[error("header {name} is {why}")]
    BadHeader {
        /// The header.
        name: &'static str,
        /// What is wrong.
        why: &'static str,
    },
    /// No timestamp at all (neither the message's nor `nacre-ts`).
    #[error("the message has no timestamp and no nacre-ts header")]
    NoTimestamp,
    /// A timestamp past the clock skew bound.
    #[error("ts {ts_ms} ms is beyond the clock skew bound ({max_ms} ms)")]
    TooFarInFuture {
        /// The message's ts.
        ts_ms: u64,
        /// The latest accepted.
        max_ms: u64,
    },
    /// A Kafka partition number an origin cannot hold (over 65,535).
    #[error("Kafka partition {0} is beyond the 65,535 an origin can name")]
    PartitionOutOfRange(i32),
    /// The store refused it when it was applied.
    #[error("refused: {0}")]
    Refused(String),
}

/// The last value of header `name`.
fn header<'a>(m: &RawMessage<'a>, name: &str) -> Option<Option<&'a [u8]>> {
    m.headers.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// A decimal header's number, if the header is present.
fn decimal(m: &RawMessage<'_>, name: &'static str) -> Result<Option<u64>, Skip> {
    let Some(value) = header(m, name) else { return Ok(None) };
    let bad = |why| Skip::BadHeader { name, why };
    let text = std::str::from_utf8(value.ok_or(bad("null"))?).map_err(|_| bad("not UTF-8"))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("not a decimal number of milliseconds"));
    }
    text.parse().map(Some).map_err(|_| bad("too large"))
}

/// The source position key of (stream, Kafka partition) in a partition's manifest.
pub fn position_key(stream_id: u16, kafka_partition: i32) -> Vec<u8> {
    format!("kafka/{stream_id}/{kafka_partition}").into_bytes()
}

/// Maps `m` to the version it writes, or says why it is skipped.
pub fn to_entry(m: &RawMessage<'_>, mapping: &Mapping) -> Result<Entry, Skip> {
    let partition_key = m.key.filter(|k| !k.is_empty()).ok_or(Skip::NoKey)?;
    let check =
        |what, size: usize, max: usize| if size > max { Err(Skip::TooLarge { what, size, max }) } else { Ok(()) };
    check("key", partition_key.len(), mapping.max_partition_key_bytes)?;
    let sort_key = match header(m, SORT_KEY_HEADER) {
        None => &[][..],
        Some(None) => return Err(Skip::BadHeader { name: SORT_KEY_HEADER, why: "null" }),
        Some(Some(sk)) => sk,
    };
    check("sort key", sort_key.len(), mapping.max_sort_key_bytes)?;
    let ts_ms = match decimal(m, TS_HEADER)? {
        Some(ms) => ms,
        None => m.timestamp_ms.and_then(|t| u64::try_from(t).ok()).ok_or(Skip::NoTimestamp)?,
    };
    if ts_ms > mapping.max_ts_ms {
        return Err(Skip::TooFarInFuture { ts_ms, max_ms: mapping.max_ts_ms });
    }
    let ttl_ms = decimal(m, TTL_HEADER)?;
    if ttl_ms == Some(0) {
        return Err(Skip::BadHeader { name: TTL_HEADER, why: "zero (a TTL is at least 1 ms)" });
    }
    let payload = match m.payload {
        None => Payload::Tombstone,
        Some(value) => {
            check("value", value.len(), mapping.max_value_bytes)?;
            Payload::Value { value: value.to_vec(), expires_at_ms: ttl_ms.map(|ttl| ts_ms.saturating_add(ttl)) }
        }
    };
    let kafka_partition = u16::try_from(m.partition).map_err(|_| Skip::PartitionOutOfRange(m.partition))?;
    let origin = Origin {
        kind: OriginKind::Stream,
        source_id: nacre_wire::stream_source_id(mapping.stream_id, kafka_partition),
        seq: u64::try_from(m.offset).unwrap_or(0),
    };
    Ok(Entry {
        key: Key::new(mapping.table, partition_key, sort_key),
        version: Version { id: VersionId { ts: Ts::from_millis(ts_ms), origin }, payload },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: u64 = 1_800_000_000_000;

    fn mapping() -> Mapping {
        Mapping {
            table: TableId(3),
            stream_id: 7,
            max_partition_key_bytes: 8,
            max_sort_key_bytes: 4,
            max_value_bytes: 5,
            max_ts_ms: NOW_MS + 60_000,
        }
    }

    fn message<'a>(
        key: &'a [u8],
        payload: Option<&'a [u8]>,
        headers: Vec<(&'a str, Option<&'a [u8]>)>,
    ) -> RawMessage<'a> {
        RawMessage { partition: 2, offset: 41, key: Some(key), payload, timestamp_ms: Some(1_000), headers }
    }

    #[test]
    fn key_payload_timestamp_and_offset_make_a_stream_version() {
        let e = to_entry(&message(b"user", Some(b"v"), vec![]), &mapping()).expect("maps");
        assert_eq!(e.key, Key::new(TableId(3), &b"user"[..], &b""[..]));
        assert_eq!(e.version.id.ts, Ts::from_millis(1_000));
        assert_eq!(e.version.id.origin, Origin { kind: OriginKind::Stream, source_id: (7 << 16) | 2, seq: 41 });
        assert_eq!(e.version.payload, Payload::Value { value: b"v".to_vec(), expires_at_ms: None });
    }

    #[test]
    fn headers_give_the_sort_key_ts_and_ttl_and_a_null_payload_is_a_tombstone() {
        let headers = vec![
            (SORT_KEY_HEADER, Some(&b"sk"[..])),
            (TS_HEADER, Some(&b"5000"[..])),
            (TTL_HEADER, Some(&b"250"[..])),
            ("unrelated", None),
        ];
        let e = to_entry(&message(b"k", Some(b"v"), headers.clone()), &mapping()).expect("maps");
        assert_eq!(e.key.sort_key, b"sk");
        assert_eq!(e.version.id.ts, Ts::from_millis(5_000));
        assert_eq!(e.version.payload, Payload::Value { value: b"v".to_vec(), expires_at_ms: Some(5_250) });
        let tombstone = to_entry(&message(b"k", None, headers), &mapping()).expect("maps");
        assert_eq!(tombstone.version.payload, Payload::Tombstone);
        let repeated = vec![(TS_HEADER, Some(&b"1"[..])), (TS_HEADER, Some(&b"2"[..]))];
        assert_eq!(
            to_entry(&message(b"k", None, repeated), &mapping()).expect("maps").version.id.ts,
            Ts::from_millis(2)
        );
    }

    #[test]
    fn every_bad_message_is_skipped_with_its_reason() {
        let m = mapping();
        let no_key = RawMessage { key: None, ..message(b"", Some(b"v"), vec![]) };
        assert_eq!(to_entry(&no_key, &m), Err(Skip::NoKey));
        assert_eq!(to_entry(&message(b"", Some(b"v"), vec![]), &m), Err(Skip::NoKey));
        assert_eq!(
            to_entry(&message(b"123456789", Some(b"v"), vec![]), &m),
            Err(Skip::TooLarge { what: "key", size: 9, max: 8 })
        );
        assert_eq!(
            to_entry(&message(b"k", Some(b"123456"), vec![]), &m),
            Err(Skip::TooLarge { what: "value", size: 6, max: 5 })
        );
        assert_eq!(
            to_entry(&message(b"k", Some(b"v"), vec![(SORT_KEY_HEADER, Some(&b"12345"[..]))]), &m),
            Err(Skip::TooLarge { what: "sort key", size: 5, max: 4 })
        );
        for (name, value) in [
            (TS_HEADER, Some(&b"12a"[..])),
            (TS_HEADER, Some(&b""[..])),
            (TS_HEADER, Some(&b"-5"[..])),
            (TS_HEADER, None),
            (TTL_HEADER, Some(&b"0"[..])),
            (TTL_HEADER, Some(&b"99999999999999999999999"[..])),
            (SORT_KEY_HEADER, None),
        ] {
            let got = to_entry(&message(b"k", Some(b"v"), vec![(name, value)]), &m);
            assert!(matches!(got, Err(Skip::BadHeader { name: n, .. }) if n == name), "{name}={value:?}: {got:?}");
        }
        let future = (m.max_ts_ms + 1).to_string();
        assert_eq!(
            to_entry(&message(b"k", Some(b"v"), vec![(TS_HEADER, Some(future.as_bytes()))]), &m),
            Err(Skip::TooFarInFuture { ts_ms: m.max_ts_ms + 1, max_ms: m.max_ts_ms })
        );
        let untimed = RawMessage { timestamp_ms: None, ..message(b"k", Some(b"v"), vec![]) };
        assert_eq!(to_entry(&untimed, &m), Err(Skip::NoTimestamp));
        let far_partition = RawMessage { partition: 70_000, ..message(b"k", Some(b"v"), vec![]) };
        assert_eq!(to_entry(&far_partition, &m), Err(Skip::PartitionOutOfRange(70_000)));
    }

    #[test]
    fn positions_name_the_stream_and_partition() {
        assert_eq!(position_key(7, 2), b"kafka/7/2");
    }
}
