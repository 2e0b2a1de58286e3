//! What one Redis key becomes in Nacre, and whether to write it: the pure part of the import.
//! A key read from Redis (a [`Snapshot`]) becomes rows (a string: one row with an empty sort
//! key; a hash: one row per field), and each row is compared with what Nacre holds. No I/O here:
//! the callers read Redis and Nacre and hand the results in.

use nacre_wire::{Key, KeyHistory, Payload, Row, Ts};

/// Two exact expiry instants (`PEXPIRETIME`) this close are the same expiry.
pub const EXACT_EXPIRY_TOLERANCE_MS: u64 = 2;

/// Two expiries, one of them estimated from `TIME` and `PTTL` (Redis before 7.0), this close
/// are the same expiry: the estimate is early by however long Redis's clock reads for the two
/// commands were apart, a few milliseconds under load.
pub const ESTIMATED_EXPIRY_TOLERANCE_MS: u64 = 250;

/// How a snapshot's expiry was learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// From `PEXPIRETIME`: Redis's own instant.
    Exact,
    /// From `TIME` plus `PTTL`.
    Estimated,
}

impl Expiry {
    /// How far apart two expiries may be and still be the same.
    pub fn tolerance_ms(self) -> u64 {
        match self {
            Expiry::Exact => EXACT_EXPIRY_TOLERANCE_MS,
            Expiry::Estimated => ESTIMATED_EXPIRY_TOLERANCE_MS,
        }
    }
}

/// A hash field and its value.
pub type Field = (Vec<u8>, Vec<u8>);

/// What a Redis key held when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceValue {
    /// A string.
    Str(Vec<u8>),
    /// A hash: its fields and values.
    Hash(Vec<Field>),
    /// A type that is not imported (list, set, zset, stream, ...), by Redis's name for it.
    Other(String),
    /// No such key (deleted or expired since it was listed).
    Gone,
}

/// One Redis key as read in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The key's name.
    pub key: Vec<u8>,
    /// Redis's clock when it was read: the version timestamp its rows are written at.
    pub observed: Ts,
    /// When it expires, Unix milliseconds; `None` never.
    pub expires_at_ms: Option<u64>,
    /// Whether `expires_at_ms` is Redis's own or an estimate.
    pub expiry: Expiry,
    /// What it held.
    pub value: SourceValue,
}

/// One row an imported key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    /// The row's key: the Redis key and, for a hash, the field.
    pub key: Key,
    /// The value.
    pub value: Vec<u8>,
    /// When it expires, Unix milliseconds.
    pub expires_at_ms: Option<u64>,
    /// Whether that expiry is exact or estimated.
    pub expiry: Expiry,
}

/// Why a key's rows cannot be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A hash field with an empty name: the empty sort key is the string row's.
    #[error("hash field with an empty name (not supported)")]
    EmptyField,
}

/// What to do with one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write it at the observed time; the ordering rule decides against what Nacre has.
    Copy,
    /// Nacre's visible row already holds this value and expiry.
    Unchanged,
    /// Nacre retains a version holding exactly this value but shows something else: it has
    /// moved on since this value was imported, and is newer.
    NacreNewer,
}

impl Snapshot {
    /// The rows this key holds in Nacre: none for a key that is gone or of another type.
    pub fn rows(&self) -> Result<Vec<SourceRow>, RowError> {
        let row = |sort_key: &[u8], value: &[u8]| SourceRow {
            key: Key::new(self.key.clone(), sort_key),
            value: value.to_vec(),
            expires_at_ms: self.expires_at_ms,
            expiry: self.expiry,
        };
        match &self.value {
            SourceValue::Str(value) => Ok(vec![row(b"", value)]),
            SourceValue::Hash(fields) => {
                if fields.iter().any(|(field, _)| field.is_empty()) {
                    return Err(RowError::EmptyField);
                }
                Ok(fields.iter().map(|(field, value)| row(field, value)).collect())
            }
            SourceValue::Other(_) | SourceValue::Gone => Ok(Vec::new()),
        }
    }

    /// The `ttl_ms` of a put at `observed` that expires when this key does: `None` for no
    /// expiry, and at least 1 (a key read while alive is written alive).
    pub fn ttl_ms(&self) -> Option<u64> {
        self.expires_at_ms.map(|at| at.saturating_sub(self.observed.millis()).max(1))
    }
}

/// True if Nacre's expiry `held` is `row`'s, within the tolerance of how `row`'s was learned.
pub fn same_expiry(row: &SourceRow, held: Option<u64>) -> bool {
    match (row.expires_at_ms, held) {
        (None, None) => true,
        (Some(a), Some(b)) => a.abs_diff(b) <= row.expiry.tolerance_ms(),
        _ => false,
    }
}

/// True if Nacre's visible `current` row already holds `row`.
pub fn is_unchanged(row: &SourceRow, current: Option<&Row>) -> bool {
    current.is_some_and(|c| c.value == row.value && same_expiry(row, c.expires_at_ms))
}

/// True if Nacre's visible row was written at or after `observed`: a write at `observed`
/// cannot win against it (an equal timestamp is counted as Nacre's: the tie rule may rank it
/// higher), so it is not sent.
pub fn is_newer_than(current: Option<&Row>, observed: Ts) -> bool {
    current.is_some_and(|c| c.version.ts >= observed)
}

/// The decision for `row` observed at `observed`, given Nacre's visible row and, when
/// `current` differs, the key's retained versions (`None` when they were not read).
pub fn decide(row: &SourceRow, observed: Ts, current: Option<&Row>, history: Option<&KeyHistory>) -> Decision {
    if is_unchanged(row, current) {
        return Decision::Unchanged;
    }
    if is_newer_than(current, observed) {
        return Decision::NacreNewer;
    }
    let held_before = history.is_some_and(|h| {
        h.versions.iter().any(|v| match &v.payload {
            Payload::Value { value, expires_at_ms } => *value == row.value && same_expiry(row, *expires_at_ms),
            Payload::Tombstone => false,
        })
    });
    if held_before { Decision::NacreNewer } else { Decision::Copy }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::{Origin, OriginKind, VersionEntry, VersionId};

    /// Later than every version the tests build.
    const LATER: Ts = Ts(1_000_000 << 16);

    fn version(ms: u64) -> VersionId {
        VersionId { ts: Ts::from_millis(ms), origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: ms } }
    }

    fn row(value: &str, expires_at_ms: Option<u64>) -> SourceRow {
        SourceRow { key: Key::new("k", ""), value: value.into(), expires_at_ms, expiry: Expiry::Exact }
    }

    fn current(value: &str, expires_at_ms: Option<u64>) -> Row {
        Row { value: value.into(), version: version(10), expires_at_ms }
    }

    /// A version's millisecond and its value and expiry (`None`: a tombstone).
    type Entry<'a> = (u64, Option<(&'a str, Option<u64>)>);

    fn history(entries: &[Entry<'_>]) -> KeyHistory {
        let versions = entries
            .iter()
            .map(|(ms, payload)| VersionEntry {
                version: version(*ms),
                payload: match payload {
                    Some((value, expires_at_ms)) => {
                        Payload::Value { value: value.as_bytes().to_vec(), expires_at_ms: *expires_at_ms }
                    }
                    None => Payload::Tombstone,
                },
            })
            .collect();
        KeyHistory { versions, watermark: None }
    }

    #[test]
    fn a_string_is_one_row_and_a_hash_one_per_field() {
        let mut snapshot = Snapshot {
            key: b"user:1".to_vec(),
            observed: Ts::from_millis(1_000),
            expires_at_ms: Some(61_000),
            expiry: Expiry::Exact,
            value: SourceValue::Str(b"v".to_vec()),
        };
        assert_eq!(
            snapshot.rows(),
            Ok(vec![SourceRow {
                key: Key::new("user:1", ""),
                value: b"v".to_vec(),
                expires_at_ms: Some(61_000),
                expiry: Expiry::Exact
            }])
        );
        assert_eq!(snapshot.ttl_ms(), Some(60_000));
        snapshot.value = SourceValue::Hash(vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
        let rows = snapshot.rows().expect("valid hash");
        assert_eq!(rows.iter().map(|r| r.key.sort_key.as_slice()).collect::<Vec<_>>(), [&b"a"[..], b"b"]);
        assert!(rows.iter().all(|r| r.key.partition_key == b"user:1" && r.expires_at_ms == Some(61_000)));
        snapshot.value = SourceValue::Hash(vec![(Vec::new(), b"1".to_vec())]);
        assert_eq!(snapshot.rows(), Err(RowError::EmptyField));
        for value in [SourceValue::Gone, SourceValue::Other("list".into())] {
            snapshot.value = value;
            assert_eq!(snapshot.rows(), Ok(Vec::new()));
        }
    }

    #[test]
    fn ttl_counts_from_the_observation_and_stays_positive() {
        let mut snapshot = Snapshot {
            key: b"k".to_vec(),
            observed: Ts((5_000 << 16) | 999),
            expires_at_ms: None,
            expiry: Expiry::Exact,
            value: SourceValue::Gone,
        };
        assert_eq!(snapshot.ttl_ms(), None);
        snapshot.expires_at_ms = Some(5_000);
        assert_eq!(snapshot.ttl_ms(), Some(1));
        snapshot.expires_at_ms = Some(5_250);
        assert_eq!(snapshot.ttl_ms(), Some(250));
    }

    #[test]
    fn same_value_and_expiry_is_unchanged() {
        assert_eq!(decide(&row("v", None), LATER, Some(&current("v", None)), None), Decision::Unchanged);
        let near = Some(1_000 + EXACT_EXPIRY_TOLERANCE_MS);
        assert_eq!(decide(&row("v", Some(1_000)), LATER, Some(&current("v", near)), None), Decision::Unchanged);
    }

    #[test]
    fn an_estimated_expiry_matches_within_the_wider_tolerance() {
        let mut estimated = row("v", Some(10_000));
        estimated.expiry = Expiry::Estimated;
        let early = Some(10_000 - ESTIMATED_EXPIRY_TOLERANCE_MS);
        assert_eq!(decide(&estimated, LATER, Some(&current("v", early)), None), Decision::Unchanged);
        assert_eq!(decide(&row("v", Some(10_000)), LATER, Some(&current("v", early)), None), Decision::Copy);
        let moved_on = history(&[(20, Some(("w", None))), (10, Some(("v", early)))]);
        assert_eq!(decide(&estimated, LATER, Some(&current("w", None)), Some(&moved_on)), Decision::NacreNewer);
    }

    #[test]
    fn a_different_value_or_expiry_without_history_is_copied() {
        assert_eq!(decide(&row("v", None), LATER, None, None), Decision::Copy);
        assert_eq!(decide(&row("v", None), LATER, Some(&current("w", None)), None), Decision::Copy);
        let far = Some(1_001 + EXACT_EXPIRY_TOLERANCE_MS);
        assert_eq!(decide(&row("v", Some(1_000)), LATER, Some(&current("v", far)), None), Decision::Copy);
        assert_eq!(decide(&row("v", Some(1_000)), LATER, Some(&current("v", None)), None), Decision::Copy);
        assert_eq!(decide(&row("v", None), LATER, None, Some(&history(&[]))), Decision::Copy);
    }

    #[test]
    fn a_retained_version_with_this_value_means_nacre_is_newer() {
        // Imported v, then the service wrote w.
        let moved_on = history(&[(20, Some(("w", None))), (10, Some(("v", None)))]);
        assert_eq!(decide(&row("v", None), LATER, Some(&current("w", None)), Some(&moved_on)), Decision::NacreNewer);
        // Imported v, then the service deleted it.
        let deleted = history(&[(20, None), (10, Some(("v", None)))]);
        assert_eq!(decide(&row("v", None), LATER, None, Some(&deleted)), Decision::NacreNewer);
    }

    #[test]
    fn a_visible_row_written_at_or_after_the_observation_is_newer() {
        let at = current("w", None).version.ts;
        assert_eq!(decide(&row("v", None), at, Some(&current("w", None)), None), Decision::NacreNewer);
        assert_eq!(decide(&row("v", None), Ts(at.0 + 1), Some(&current("w", None)), None), Decision::Copy);
        // Unchanged still wins: the row holds this value already.
        assert_eq!(decide(&row("w", None), at, Some(&current("w", None)), None), Decision::Unchanged);
    }

    #[test]
    fn a_retained_version_with_another_value_or_expiry_does_not_block_the_copy() {
        let other = history(&[(20, Some(("w", None))), (10, Some(("u", None)))]);
        assert_eq!(decide(&row("v", None), LATER, Some(&current("w", None)), Some(&other)), Decision::Copy);
        // Redis changed only the TTL of v: the old version of v has the old expiry.
        let old_expiry = history(&[(10, Some(("v", Some(5_000))))]);
        assert_eq!(
            decide(&row("v", Some(9_000)), LATER, Some(&current("v", Some(5_000))), Some(&old_expiry)),
            Decision::Copy
        );
        // A tombstone holds no value.
        assert_eq!(decide(&row("v", None), LATER, None, Some(&history(&[(10, None)]))), Decision::Copy);
    }
}
