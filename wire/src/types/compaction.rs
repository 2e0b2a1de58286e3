//! Asking for a compaction, and what it did.

/// Compacts the partitions holding a table, every one or one, whole. Answered by
/// [`crate::Reply::Compacted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compact {
    /// The table (it must exist).
    pub table: String,
    /// The one partition to compact; `None` for every partition.
    pub partition: Option<u32>,
    /// Answer once the compactions are done rather than once they are queued.
    pub wait: bool,
}

/// What a [`Compact`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompactionReport {
    /// Partitions compacted (with `wait`) or queued.
    pub partitions: u32,
    /// Compactions committed (0 unless waited for).
    pub compactions: u32,
    /// Segment bytes the compactions read.
    pub bytes_in: u64,
    /// Segment bytes they wrote.
    pub bytes_out: u64,
}
