//! The engine's one public error type. Expected outcomes (not found, an idempotent re-apply) are
//! values, not errors. Every variant carries enough structure to act on without parsing text.

use crate::ids::{SegmentId, TableId, Ts};
use crate::io::IoError;
use std::path::PathBuf;

/// Everything that can go wrong inside the storage engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The disk refused an operation.
    #[error("i/o failed: {op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Stored bytes do not match their checksum: they were torn or corrupted.
    #[error("checksum mismatch in {file} at offset {offset}: expected {expected:#018x}, found {actual:#018x}")]
    ChecksumMismatch {
        /// The file.
        file: PathBuf,
        /// Offset of the checksummed unit in the file.
        offset: u64,
        /// The checksum stored.
        expected: u64,
        /// The checksum of the bytes found.
        actual: u64,
    },
    /// Stored bytes passed their checksum but do not decode (or break an invariant).
    #[error("corrupt {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Where the problem was found.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A file written by a format version this build cannot read.
    #[error("{file}: format version {found} is not supported (this build reads {supported})")]
    UnsupportedFormatVersion {
        /// The file.
        file: PathBuf,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// An earlier fsync failed; the engine refuses writes until it is reopened.
    #[error("engine poisoned by an earlier failed {op}; reopen to recover")]
    Poisoned {
        /// The operation whose failure poisoned the engine.
        op: &'static str,
    },
    /// An input was larger than its configured limit.
    #[error("{what} is {size} bytes, over the limit of {max}")]
    LimitExceeded {
        /// Which limit.
        what: Limit,
        /// The size offered.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A timestamp beyond the allowed clock skew; it would pin its key forever.
    #[error("timestamp {ts} is beyond the skew bound (latest accepted now: {max})")]
    TimestampTooFarInFuture {
        /// The timestamp offered.
        ts: Ts,
        /// The latest acceptable one at the time.
        max: Ts,
    },
    /// A table the engine was not told about.
    #[error("unknown table {0:?}")]
    UnknownTable(TableId),
    /// A segment the manifest does not list.
    #[error("unknown segment {0:?}")]
    UnknownSegment(SegmentId),
    /// The directory is locked by another engine, in this process or another.
    #[error("{path} is in use by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// `create` found an existing partition.
    #[error("{path} already holds a partition")]
    AlreadyExists {
        /// The partition directory.
        path: PathBuf,
    },
    /// `open` found no partition.
    #[error("{path} holds no partition")]
    NoPartition {
        /// The partition directory.
        path: PathBuf,
    },
    /// A caller broke an API precondition (for example compacting an empty set of segments).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

/// The configurable limits an input can exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `Limits::max_partition_key_bytes`.
    PartitionKey,
    /// `Limits::max_sort_key_bytes`.
    SortKey,
    /// `Limits::max_value_bytes`.
    Value,
    /// `Limits::max_batch_bytes`.
    Batch,
    /// `Limits::max_batch_entries`.
    BatchEntries,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::PartitionKey => "partition key",
            Limit::SortKey => "sort key",
            Limit::Value => "value",
            Limit::Batch => "batch",
            Limit::BatchEntries => "batch entry count",
        })
    }
}

impl From<IoError> for Error {
    fn from(e: IoError) -> Self {
        Error::Io { op: e.op, path: e.path, source: e.source }
    }
}

/// Result type of the engine.
pub type Result<T> = std::result::Result<T, Error>;
