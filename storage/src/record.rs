//! The record model: keys, entries (a key plus one version), and their order.
//!
//! A key is `(table, partition_key, sort_key)`; keys sort by table, then partition key, then sort
//! key, bytewise. Entries of one key sort by [`VersionId::storage_cmp`] (newest first).

use crate::ids::TableId;
use crate::version::{Payload, Version, VersionId};
use std::cmp::Ordering;

/// A row's key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// The table.
    pub table: TableId,
    /// The partition key: decides the partition; a scan stays within one.
    pub partition_key: Vec<u8>,
    /// The sort key within the partition key; may be empty.
    pub sort_key: Vec<u8>,
}

impl Key {
    /// A key from its parts.
    pub fn new(table: TableId, partition_key: impl Into<Vec<u8>>, sort_key: impl Into<Vec<u8>>) -> Key {
        Key { table, partition_key: partition_key.into(), sort_key: sort_key.into() }
    }

    /// The borrowed form.
    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef { table: self.table, partition_key: &self.partition_key, sort_key: &self.sort_key }
    }
}

/// A borrowed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRef<'a> {
    /// The table.
    pub table: TableId,
    /// The partition key.
    pub partition_key: &'a [u8],
    /// The sort key.
    pub sort_key: &'a [u8],
}

impl KeyRef<'_> {
    /// The owned form.
    pub fn to_owned(self) -> Key {
        Key::new(self.table, self.partition_key, self.sort_key)
    }
}

/// One version of one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    /// The key.
    pub key: Key,
    /// The version.
    pub version: Version,
}

impl Entry {
    /// The borrowed form.
    pub fn as_ref(&self) -> EntryRef<'_> {
        let (value, expires_at_ms) = match &self.version.payload {
            Payload::Value { value, expires_at_ms } => (Some(value.as_slice()), *expires_at_ms),
            Payload::Tombstone => (None, None),
        };
        EntryRef {
            table: self.key.table,
            partition_key: &self.key.partition_key,
            sort_key: &self.key.sort_key,
            id: self.version.id,
            value,
            expires_at_ms,
        }
    }
}

/// A borrowed entry, as decoded from a block or a memtable without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The table.
    pub table: TableId,
    /// The partition key.
    pub partition_key: &'a [u8],
    /// The sort key.
    pub sort_key: &'a [u8],
    /// The version's identity.
    pub id: VersionId,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Expiry of the value, if any.
    pub expires_at_ms: Option<u64>,
}

impl EntryRef<'_> {
    /// The key part.
    pub fn key(&self) -> KeyRef<'_> {
        KeyRef { table: self.table, partition_key: self.partition_key, sort_key: self.sort_key }
    }

    /// The payload, owned.
    pub fn payload(&self) -> Payload {
        match self.value {
            Some(v) => Payload::Value { value: v.to_vec(), expires_at_ms: self.expires_at_ms },
            None => Payload::Tombstone,
        }
    }

    /// The version, owned.
    pub fn version(&self) -> Version {
        Version { id: self.id, payload: self.payload() }
    }

    /// The owned form.
    pub fn to_owned(self) -> Entry {
        Entry { key: self.key().to_owned(), version: self.version() }
    }

    /// The physical order of entries: key ascending, then versions newest first, then (for the
    /// same identity) payload descending, so the first of equals is the one a reader keeps.
    pub fn storage_cmp(&self, other: &EntryRef<'_>) -> Ordering {
        self.key()
            .cmp(&other.key())
            .then_with(|| self.id.storage_cmp(&other.id))
            .then_with(|| other.payload_tie_cmp(self))
    }

    /// [`Payload::tie_cmp`] on borrowed payloads.
    pub fn payload_tie_cmp(&self, other: &EntryRef<'_>) -> Ordering {
        match (self.value, other.value) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => self
                .expires_at_ms
                .unwrap_or(u64::MAX)
                .cmp(&other.expires_at_ms.unwrap_or(u64::MAX))
                .then_with(|| a.cmp(b)),
        }
    }
}

/// A range of one partition key's rows: what a scan asks each source (memtable, segment) for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange<'a> {
    /// The table.
    pub table: TableId,
    /// The partition key.
    pub partition_key: &'a [u8],
    /// Smallest sort key, inclusive.
    pub from: Option<&'a [u8]>,
    /// Greatest sort key, inclusive.
    pub to: Option<&'a [u8]>,
    /// Descending sort-key order (versions of one sort key stay newest first).
    pub reverse: bool,
    /// Stop after this many distinct sort keys (whole groups only).
    pub max_sort_keys: usize,
    /// Only versions at or below this `ts` are read, and of each sort key only those at the
    /// greatest such `ts`: all the ordering rule can pick. A sort key with none is skipped.
    pub bound: crate::ids::Ts,
}
