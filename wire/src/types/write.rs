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

    /// The put borrowed, as [`crate::RequestEncoder::encode_put_into`] takes it.
    pub fn as_ref(&self) -> PutRef<'_> {
        PutRef {
            table: &self.table,
            partition_key: &self.key.partition_key,
            sort_key: &self.key.sort_key,
            value: &self.value,
            ts: self.ts,
            ttl_ms: self.ttl_ms,
            durability: self.durability,
        }
    }
}

/// A [`Put`] whose bytes are borrowed: what a client that keeps its keys and values in its own
/// buffers encodes with no copy made first ([`crate::RequestEncoder::encode_put_into`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutRef<'a> {
    /// The table.
    pub table: &'a str,
    /// The key's partition key.
    pub partition_key: &'a [u8],
    /// The key's sort key; may be empty.
    pub sort_key: &'a [u8],
    /// As in [`Put::value`].
    pub value: &'a [u8],
    /// As in [`Put::ts`].
    pub ts: Option<Ts>,
    /// As in [`Put::ttl_ms`].
    pub ttl_ms: Option<u64>,
    /// As in [`Put::durability`].
    pub durability: Option<Durability>,
}

impl PutRef<'_> {
    /// The owned put.
    pub fn to_owned(&self) -> Put {
        Put {
            table: self.table.to_owned(),
            key: Key::new(self.partition_key, self.sort_key),
            value: self.value.to_vec(),
            ts: self.ts,
            ttl_ms: self.ttl_ms,
            durability: self.durability,
        }
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
