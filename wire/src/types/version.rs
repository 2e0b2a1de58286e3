//! Timestamps and version identities as the wire carries them: the same model as storage's
//! (`ts`, then `{kind, source_id, seq}`), defined again here because wire depends on no other
//! crate of the workspace. It owns no ordering rule; the server applies that.

use std::fmt;

/// A hybrid logical timestamp: 48 bits of milliseconds since the Unix epoch, then 16 bits of
/// logical counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub u64);

impl Ts {
    /// Bits of logical counter below the milliseconds.
    pub const LOGICAL_BITS: u32 = 16;

    /// The timestamp at the start of millisecond `millis`.
    pub fn from_millis(millis: u64) -> Ts {
        Ts(millis << Self::LOGICAL_BITS)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        u16::try_from(self.0 & 0xffff).expect("masked to 16 bits")
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis(), self.logical())
    }
}

/// Which path wrote a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OriginKind {
    /// A bulk load: `source_id` is the load id, `seq` the record index.
    Bulk,
    /// A stream: `source_id` names (topic, Kafka partition), `seq` is the offset.
    Stream,
    /// A direct write: `source_id` is the node/shard, `seq` a per-shard counter.
    Direct,
}

impl OriginKind {
    /// Every kind, in code order.
    pub const ALL: [OriginKind; 3] = [OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct];

    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            OriginKind::Bulk => 0,
            OriginKind::Stream => 1,
            OriginKind::Direct => 2,
        }
    }

    /// The kind of a wire code, if it is one.
    pub fn from_code(code: u8) -> Option<OriginKind> {
        Self::ALL.into_iter().find(|k| k.code() == code)
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

/// The identity of a version: its timestamp and its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionId {
    /// Hybrid logical timestamp.
    pub ts: Ts,
    /// Where it came from.
    pub origin: Origin,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_splits_into_millis_and_logical() {
        let ts = Ts((1_700_000_000_000 << 16) | 7);
        assert_eq!((ts.millis(), ts.logical()), (1_700_000_000_000, 7));
        assert_eq!(Ts::from_millis(5), Ts(5 << 16));
        assert_eq!(ts.to_string(), "1700000000000.7");
    }

    #[test]
    fn origin_kind_codes_round_trip_and_reject_unknowns() {
        for kind in OriginKind::ALL {
            assert_eq!(OriginKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(OriginKind::from_code(3), None);
    }
}
