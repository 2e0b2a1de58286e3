//! Newtypes for the numbers the engine passes around: timestamps, ids and log positions.
//! Owns no behaviour beyond construction and display.

use std::fmt;

/// A hybrid logical timestamp: 48 bits of milliseconds since the Unix epoch, then 16 bits of
/// logical counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub u64);

impl Ts {
    /// Bits of logical counter below the milliseconds.
    pub const LOGICAL_BITS: u32 = 16;
    /// The greatest timestamp.
    pub const MAX: Ts = Ts(u64::MAX);

    /// The timestamp at `millis` with logical counter `logical`.
    pub fn from_parts(millis: u64, logical: u16) -> Ts {
        Ts((millis << Self::LOGICAL_BITS) | u64::from(logical))
    }

    /// The timestamp at the start of millisecond `millis`.
    pub fn from_millis(millis: u64) -> Ts {
        Self::from_parts(millis, 0)
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> Self::LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.millis(), self.logical())
    }
}

/// A table's id. The daemon maps table names to ids; storage only sees ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TableId(pub u32);

/// A logical partition's id (`xxh3_64(partition_key) % P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PartitionId(pub u32);

/// A segment file's id, unique within its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SegmentId(pub u64);

impl SegmentId {
    /// The segment's file name.
    pub fn file_name(self) -> String {
        format!("{:016}.seg", self.0)
    }

    /// Parses a segment file name.
    pub fn parse_file_name(name: &str) -> Option<SegmentId> {
        let digits = name.strip_suffix(".seg")?;
        if digits.len() != 16 {
            return None;
        }
        digits.parse().ok().map(SegmentId)
    }
}

/// A WAL record's sequence number, unique and increasing across the shared WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
