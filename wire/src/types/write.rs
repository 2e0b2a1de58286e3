//! Write requests: put, delete and the atomic single-partition batch. Owns their shapes only;
//! limits and timestamp assignment are the server's.

use super::read::Key;
use super::version::Ts;

/// When a write is acknowledged. A request that names none gets the table's (or server's)
/// default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Durability {
    /// After the write's log bytes are durable (group-committed fdatasync).
    Sync,
    /// After it is applied in memory and queued for the log; the server makes it durable
    /// within its async commit window (nacred: `wal.async_commit_interval_ms`), so only a crash
    /// inside that window may lose it.
    Async,
}

/// Writes one value. Answered by [`crate::Reply::Written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Put {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Key,
    /// The value; may be empty.
    pub value: Vec<u8>,
    /// The version's timestamp; `None` lets the server assign one from its clock.
    pub ts: Option<Ts>,
    /// Time to live, milliseconds, counted from the version's `ts`; `None` applies the table's
    /// default.
    pub ttl_ms: Option<u64>,
    /// When to acknowledge; `None` for the default.
    pub durability: Option<Durability>,
}

impl Put {
    /// A put of `value` at `key`, with the server's timestamp, the table's TTL and the default
    /// durability.
    pub fn new(table: impl Into<String>, key: Key, value: impl Into<Vec<u8>>) -> Put {
        Put { table: table.into(), key, value: value.into(), ts: None, ttl_ms: None, durability: None }
    }
}

/// Deletes a key (writes a tombstone). Answered by [`crate::Reply::Written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Key,
    /// The tombstone's timestamp; `None` lets the server assign one.
    pub ts: Option<Ts>,
    /// When to acknowledge; `None` for the default.
    pub durability: Option<Durability>,
}

impl Delete {
    /// A delete of `key` with the server's timestamp and the default durability.
    pub fn new(table: impl Into<String>, key: Key) -> Delete {
        Delete { table: table.into(), key, ts: None, durability: None }
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Writes a value.
    Put {
        /// The key.
        key: Key,
        /// The value; may be empty.
        value: Vec<u8>,
        /// The version's timestamp; `None` lets the server assign one.
        ts: Option<Ts>,
        /// Time to live, milliseconds; `None` applies the table's default.
        ttl_ms: Option<u64>,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: Key,
        /// The tombstone's timestamp; `None` lets the server assign one.
        ts: Option<Ts>,
    },
}

impl BatchOp {
    /// The key the op writes.
    pub fn key(&self) -> &Key {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key, .. } => key,
        }
    }
}

/// Writes atomically: every op becomes visible together, and a crash keeps all or none. All
/// ops must fall in one partition: the server answers a batch that spans partitions with
/// [`crate::ErrorCode::CrossPartitionBatch`] and never splits it. Answered by
/// [`crate::Reply::BatchWritten`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteBatch {
    /// The table.
    pub table: String,
    /// The writes, at least one.
    pub ops: Vec<BatchOp>,
    /// When to acknowledge; `None` for the default.
    pub durability: Option<Durability>,
}

impl WriteBatch {
    /// A batch of `ops` with the default durability.
    pub fn new(table: impl Into<String>, ops: Vec<BatchOp>) -> WriteBatch {
        WriteBatch { table: table.into(), ops, durability: None }
    }
}
