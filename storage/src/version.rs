//! The version model and the ordering rule.
//!
//! A version is identified by `(ts, origin)`. The visible value of a key is its greatest live
//! version under one total order: `(ts, kind_rank(tie_rule), source_id, seq)`, and, only for two
//! versions that claim the same identity with different payloads, the payload itself (see
//! [`Payload::cmp`]), so that even a misbehaving writer cannot make the result depend on arrival
//! order. This module owns that order and nothing else.

use crate::ids::Ts;
use std::cmp::Ordering;

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OriginKind {
    /// A bulk load: `source_id` is the load id, `seq` the record index.
    Bulk = 0,
    /// A stream: `source_id` names (topic, Kafka partition), `seq` is the offset.
    Stream = 1,
    /// A direct write: `source_id` is the node/shard, `seq` a per-shard counter.
    Direct = 2,
}

impl OriginKind {
    /// The on-disk code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Decodes an on-disk code.
    pub fn from_code(code: u8) -> Option<OriginKind> {
        match code {
            0 => Some(OriginKind::Bulk),
            1 => Some(OriginKind::Stream),
            2 => Some(OriginKind::Direct),
            _ => None,
        }
    }
}

/// Where a version came from, precisely enough to find the write again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Which path wrote it.
    pub kind: OriginKind,
    /// The source within that path.
    pub source_id: u32,
    /// The position within that source.
    pub seq: u64,
}

/// How origins rank on equal `ts`: a permutation of the three kinds, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TieRule {
    highest_first: [OriginKind; 3],
}

impl Default for TieRule {
    /// Direct > Stream > Bulk: an online write beats a streamed one, which beats a bulk one.
    fn default() -> Self {
        Self { highest_first: [OriginKind::Direct, OriginKind::Stream, OriginKind::Bulk] }
    }
}

impl TieRule {
    /// A rule from its ranking, highest first. `None` unless it names each kind exactly once.
    pub fn new(highest_first: [OriginKind; 3]) -> Option<TieRule> {
        let mut seen = [false; 3];
        for kind in highest_first {
            seen[kind.code() as usize] = true;
        }
        seen.iter().all(|s| *s).then_some(TieRule { highest_first })
    }

    /// The ranking, highest first.
    pub fn highest_first(self) -> [OriginKind; 3] {
        self.highest_first
    }

    /// The rank of `kind`: greater ranks win ties.
    pub fn rank(self, kind: OriginKind) -> u8 {
        let position = self.highest_first.iter().position(|k| *k == kind);
        2 - position.expect("a TieRule names every kind") as u8
    }

    /// Compares two versions under the ordering rule.
    pub fn cmp(self, a: &VersionId, b: &VersionId) -> Ordering {
        a.ts.cmp(&b.ts)
            .then_with(|| self.rank(a.origin.kind).cmp(&self.rank(b.origin.kind)))
            .then_with(|| a.origin.source_id.cmp(&b.origin.source_id))
            .then_with(|| a.origin.seq.cmp(&b.origin.seq))
    }
}

/// The identity of a version: its timestamp and its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionId {
    /// Hybrid logical timestamp.
    pub ts: Ts,
    /// Where it came from.
    pub origin: Origin,
}

impl VersionId {
    /// The identity that sorts first among a key's versions in storage order.
    pub const FIRST_IN_STORAGE: VersionId =
        VersionId { ts: Ts::MAX, origin: Origin { kind: OriginKind::Direct, source_id: u32::MAX, seq: u64::MAX } };
    /// The identity that sorts last among a key's versions in storage order.
    pub const LAST_IN_STORAGE: VersionId =
        VersionId { ts: Ts(0), origin: Origin { kind: OriginKind::Bulk, source_id: 0, seq: 0 } };

    /// The physical order versions of one key are stored in: descending `ts`, then descending
    /// (kind code, source_id, seq). It is independent of the tie rule, so a table's rule can
    /// change without rewriting data; readers re-rank the versions of equal `ts`.
    pub fn storage_cmp(&self, other: &VersionId) -> Ordering {
        other
            .ts
            .cmp(&self.ts)
            .then_with(|| other.origin.kind.code().cmp(&self.origin.kind.code()))
            .then_with(|| other.origin.source_id.cmp(&self.origin.source_id))
            .then_with(|| other.origin.seq.cmp(&self.origin.seq))
    }
}

/// What a version says about its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// The key holds this value, until `expires_at` (milliseconds since the Unix epoch), if set.
    Value {
        /// The value's bytes.
        value: Vec<u8>,
        /// When the value stops being visible.
        expires_at_ms: Option<u64>,
    },
    /// The key is deleted.
    Tombstone,
}

impl Payload {
    /// A deterministic order among payloads that claim the same version identity: tombstone
    /// lowest, then values by expiry (none last), then by bytes. Only used to break such ties.
    pub fn tie_cmp(&self, other: &Payload) -> Ordering {
        match (self, other) {
            (Payload::Tombstone, Payload::Tombstone) => Ordering::Equal,
            (Payload::Tombstone, Payload::Value { .. }) => Ordering::Less,
            (Payload::Value { .. }, Payload::Tombstone) => Ordering::Greater,
            (Payload::Value { value: a, expires_at_ms: ea }, Payload::Value { value: b, expires_at_ms: eb }) => {
                expiry_key(*ea).cmp(&expiry_key(*eb)).then_with(|| a.cmp(b))
            }
        }
    }

    /// True if, at `now_ms`, this payload hides the key: a tombstone or an expired value.
    pub fn is_dead_at(&self, now_ms: u64) -> bool {
        match self {
            Payload::Tombstone => true,
            Payload::Value { expires_at_ms, .. } => expires_at_ms.is_some_and(|e| e <= now_ms),
        }
    }
}

fn expiry_key(expires_at_ms: Option<u64>) -> u64 {
    expires_at_ms.unwrap_or(u64::MAX)
}

/// A version: identity plus payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// Timestamp and origin.
    pub id: VersionId,
    /// Value or tombstone.
    pub payload: Payload,
}

impl Version {
    /// Total order for picking a winner under `rule`: the rule first, the payload only for
    /// identical identities.
    pub fn rule_cmp(&self, other: &Version, rule: TieRule) -> Ordering {
        rule.cmp(&self.id, &other.id).then_with(|| self.payload.tie_cmp(&other.payload))
    }
}

/// A table-wide range tombstone: every version of the table ordered strictly below `point`
/// (under the table's rule) is superseded. A bulk load in replace mode at `snapshot_ts = T`
/// commits one at `(T, Bulk, load_id, 0)`, so its own records at `T` stay visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Watermark {
    /// The version below which everything is superseded.
    pub point: VersionId,
}

impl Watermark {
    /// True if the watermark supersedes `id` under `rule`.
    pub fn hides(&self, id: &VersionId, rule: TieRule) -> bool {
        rule.cmp(id, &self.point) == Ordering::Less
    }

    /// The bulk load whose link set this watermark, if a load did: the watermark shows and
    /// goes with that load.
    pub fn bulk_load(&self) -> Option<u32> {
        (self.point.origin.kind == OriginKind::Bulk).then_some(self.point.origin.source_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ts: u64, kind: OriginKind, source_id: u32, seq: u64) -> VersionId {
        VersionId { ts: Ts(ts), origin: Origin { kind, source_id, seq } }
    }

    #[test]
    fn default_rule_ranks_direct_over_stream_over_bulk_on_equal_ts() {
        let rule = TieRule::default();
        let direct = id(5, OriginKind::Direct, 0, 0);
        let stream = id(5, OriginKind::Stream, 9, 9);
        let bulk = id(5, OriginKind::Bulk, 9, 9);
        assert_eq!(rule.cmp(&direct, &stream), Ordering::Greater);
        assert_eq!(rule.cmp(&stream, &bulk), Ordering::Greater);
        assert_eq!(rule.cmp(&bulk, &id(6, OriginKind::Bulk, 0, 0)), Ordering::Less);
    }

    #[test]
    fn tie_rule_rejects_a_ranking_that_repeats_a_kind() {
        assert!(TieRule::new([OriginKind::Bulk, OriginKind::Bulk, OriginKind::Direct]).is_none());
        let bulk_first =
            TieRule::new([OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct]).expect("a permutation");
        assert_eq!(bulk_first.cmp(&id(1, OriginKind::Bulk, 0, 0), &id(1, OriginKind::Direct, 0, 0)), Ordering::Greater);
    }

    #[test]
    fn storage_order_is_descending() {
        let a = id(9, OriginKind::Bulk, 0, 0);
        let b = id(3, OriginKind::Direct, 0, 0);
        assert_eq!(a.storage_cmp(&b), Ordering::Less);
        assert_eq!(a.storage_cmp(&a), Ordering::Equal);
    }

    #[test]
    fn watermark_hides_strictly_lower_versions_only() {
        let rule = TieRule::default();
        let mark = Watermark { point: id(10, OriginKind::Bulk, 7, 0) };
        assert!(mark.hides(&id(9, OriginKind::Direct, 0, 0), rule));
        assert!(mark.hides(&id(10, OriginKind::Bulk, 6, 99), rule));
        assert!(!mark.hides(&id(10, OriginKind::Bulk, 7, 0), rule));
        assert!(!mark.hides(&id(10, OriginKind::Stream, 0, 0), rule));
    }

    #[test]
    fn payload_tie_break_is_total_and_deterministic() {
        let t = Payload::Tombstone;
        let v1 = Payload::Value { value: b"a".to_vec(), expires_at_ms: None };
        let v2 = Payload::Value { value: b"b".to_vec(), expires_at_ms: None };
        let v3 = Payload::Value { value: b"z".to_vec(), expires_at_ms: Some(1) };
        assert_eq!(t.tie_cmp(&v1), Ordering::Less);
        assert_eq!(v1.tie_cmp(&v2), Ordering::Less);
        assert_eq!(v3.tie_cmp(&v1), Ordering::Less);
        assert!(v3.is_dead_at(1) && !v3.is_dead_at(0) && t.is_dead_at(0));
    }
}
