//! Read requests and what they return: get, multi-get, scan pages and key histories. Not-found
//! is a value (`None`), never an error.

use super::version::{Ts, VersionId};

/// A key of a table: the partition key decides the partition; the sort key orders rows within
/// it and may be empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Key {
    /// The partition key.
    pub partition_key: Vec<u8>,
    /// The sort key; may be empty.
    pub sort_key: Vec<u8>,
}

impl Key {
    /// A key from its parts.
    pub fn new(partition_key: impl Into<Vec<u8>>, sort_key: impl Into<Vec<u8>>) -> Key {
        Key { partition_key: partition_key.into(), sort_key: sort_key.into() }
    }
}

/// Reads the visible value of one key. Answered by [`crate::Reply::Get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Get {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Key,
    /// Read the state as of this timestamp; `None` reads the latest.
    pub as_of: Option<Ts>,
}

/// A [`Get`] read in place, borrowing its frame: what a server's point-read path serves with no
/// copy of the request. [`crate::decode_request_in_place`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GetRef<'a> {
    /// The table.
    pub table: &'a str,
    /// The key's partition key.
    pub partition_key: &'a [u8],
    /// The key's sort key; may be empty.
    pub sort_key: &'a [u8],
    /// As in [`Get::as_of`].
    pub as_of: Option<Ts>,
}

impl GetRef<'_> {
    /// The owned get.
    pub fn to_owned(&self) -> Get {
        Get { table: self.table.to_owned(), key: Key::new(self.partition_key, self.sort_key), as_of: self.as_of }
    }
}

impl Get {
    /// A read of the latest visible value of `key`.
    pub fn new(table: impl Into<String>, key: Key) -> Get {
        Get { table: table.into(), key, as_of: None }
    }

    /// The get borrowed, as [`crate::RequestEncoder::encode_get_into`] takes it.
    pub fn as_ref(&self) -> GetRef<'_> {
        GetRef {
            table: &self.table,
            partition_key: &self.key.partition_key,
            sort_key: &self.key.sort_key,
            as_of: self.as_of,
        }
    }
}

/// Reads several keys of one table, which may span partitions. Answered by
/// [`crate::Reply::MultiGet`], one result per key in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiGet {
    /// The table.
    pub table: String,
    /// The keys.
    pub keys: Vec<Key>,
    /// Read the state as of this timestamp; `None` reads the latest.
    pub as_of: Option<Ts>,
}

impl MultiGet {
    /// A read of the latest visible values of `keys`.
    pub fn new(table: impl Into<String>, keys: Vec<Key>) -> MultiGet {
        MultiGet { table: table.into(), keys, as_of: None }
    }
}

/// Reads one page of the rows of one partition key, in sort-key order. Answered by
/// [`crate::Reply::Scan`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scan {
    /// The table.
    pub table: String,
    /// The partition key whose rows are read.
    pub partition_key: Vec<u8>,
    /// Smallest sort key, inclusive; `None` is unbounded.
    pub from: Option<Vec<u8>>,
    /// Greatest sort key, inclusive; `None` is unbounded.
    pub to: Option<Vec<u8>>,
    /// Most rows to return; 0 asks for the server's default. The server caps it, and a page
    /// may be short even when rows remain: only a `None` cursor means the range is done.
    pub limit: u32,
    /// Descending sort-key order.
    pub reverse: bool,
    /// A previous page's cursor: resume strictly after it (before it, in reverse).
    pub cursor: Option<Vec<u8>>,
    /// Read the state as of this timestamp; `None` reads the latest.
    pub as_of: Option<Ts>,
}

impl Scan {
    /// A forward scan of all of `partition_key`'s rows, latest state, server's page size.
    pub fn new(table: impl Into<String>, partition_key: impl Into<Vec<u8>>) -> Scan {
        Scan { table: table.into(), partition_key: partition_key.into(), ..Scan::default() }
    }
}

/// Reads every retained version of one key, with origins. Answered by
/// [`crate::Reply::Versions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Key,
}

impl Versions {
    /// A read of `key`'s history.
    pub fn new(table: impl Into<String>, key: Key) -> Versions {
        Versions { table: table.into(), key }
    }
}

/// A visible value and the version that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The value.
    pub value: Vec<u8>,
    /// The winning version, with its origin (lineage).
    pub version: VersionId,
    /// When the value stops being visible, Unix milliseconds; `None` never.
    pub expires_at_ms: Option<u64>,
}

/// A [`Row`] read in place, borrowing its reply's frame: what a client that only looks at a
/// value reads with no copy of it ([`crate::decode_response_in_place`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef<'a> {
    /// The value.
    pub value: &'a [u8],
    /// As in [`Row::version`].
    pub version: VersionId,
    /// As in [`Row::expires_at_ms`].
    pub expires_at_ms: Option<u64>,
}

impl RowRef<'_> {
    /// The owned row.
    pub fn to_owned(&self) -> Row {
        Row { value: self.value.to_vec(), version: self.version, expires_at_ms: self.expires_at_ms }
    }
}

/// One row of a scan page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The row's sort key.
    pub sort_key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The winning version.
    pub version: VersionId,
    /// When the value stops being visible, Unix milliseconds; `None` never.
    pub expires_at_ms: Option<u64>,
}

/// A page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Rows in scan order.
    pub rows: Vec<ScanRow>,
    /// Pass back as [`Scan::cursor`] for the next page; `None` when the range is done.
    pub cursor: Option<Vec<u8>>,
}

/// What a version says about its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// The key holds this value, until `expires_at_ms` if set.
    Value {
        /// The value.
        value: Vec<u8>,
        /// When it stops being visible, Unix milliseconds.
        expires_at_ms: Option<u64>,
    },
    /// The key is deleted.
    Tombstone,
}

/// One retained version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Its identity.
    pub version: VersionId,
    /// Value or tombstone.
    pub payload: Payload,
}

/// A key's history: every retained version, greatest first under the table's tie rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyHistory {
    /// The versions.
    pub versions: Vec<VersionEntry>,
    /// The table-wide watermark in force, if any: versions ordered below it are superseded.
    pub watermark: Option<VersionId>,
}
