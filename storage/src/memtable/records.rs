//! The memtable's two records, as bytes in its arena (little-endian, 8-byte aligned).
//!
//! A **row** is a key without its version, written once:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | newest version's address |
//! | 4 | table |
//! | 2 | partition key length |
//! | 2 | sort key length |
//! | n | partition key, then sort key |
//!
//! A **version** links to the next older one of its row, so a row's versions are a chain in
//! storage order, newest first:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | next older version's address, or 0 |
//! | 1 | flags: a value (not a tombstone), an expiry, the next older version has the same `ts` |
//! | 1 | origin kind |
//! | 2 | zero |
//! | 8 | `ts` |
//! | 8 | origin `seq` |
//! | 4 | origin `source_id` |
//! | 4 | value length |
//! | 0 or 8 | expiry (ms), when flagged |
//! | n | value |
//!
//! A new row's record and its first version's are allocated together, so a read of a row
//! written once touches one stretch of memory.

use super::arena::{Addr, Arena};
use crate::ids::{TableId, Ts};
use crate::record::EntryRef;
use crate::version::{Origin, OriginKind, VersionId};

const ROW_HEADER: usize = 12;
const VERSION_HEADER: usize = 32;
const HAS_VALUE: u8 = 1;
const HAS_EXPIRY: u8 = 2;
const OLDER_SAME_TS: u8 = 4;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("two bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

/// A row record, read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row<'a> {
    pub newest: Addr,
    pub table: TableId,
    pub partition_key: &'a [u8],
    pub sort_key: &'a [u8],
}

impl<'a> Row<'a> {
    /// What rows are ordered and hashed by.
    pub fn parts(&self) -> (TableId, &'a [u8], &'a [u8]) {
        (self.table, self.partition_key, self.sort_key)
    }
}

/// A version record, read.
#[derive(Debug, Clone, Copy)]
pub(super) struct Version<'a> {
    pub older: Option<Addr>,
    /// The next older version has the same `ts`: a read of the newest group goes on to it.
    pub older_same_ts: bool,
    pub id: VersionId,
    pub value: Option<&'a [u8]>,
    pub expires_at_ms: Option<u64>,
}

pub(super) fn row(arena: &Arena, at: Addr) -> Row<'_> {
    let b = arena.bytes(at);
    let pk_len = usize::from(u16_at(b, 8));
    let sk_len = usize::from(u16_at(b, 10));
    let key = &b[ROW_HEADER..ROW_HEADER + pk_len + sk_len];
    Row {
        newest: Addr::new(u32_at(b, 0)).expect("a row has a version"),
        table: TableId(u32_at(b, 4)),
        partition_key: &key[..pk_len],
        sort_key: &key[pk_len..],
    }
}

pub(super) fn version(arena: &Arena, at: Addr) -> Version<'_> {
    let b = arena.bytes(at);
    let flags = b[4];
    let kind = OriginKind::from_code(b[5]).expect("the memtable writes only known kinds");
    let value_len = u32_at(b, 28) as usize;
    let (expires_at_ms, value_at) = if flags & HAS_EXPIRY != 0 {
        (Some(u64_at(b, VERSION_HEADER)), VERSION_HEADER + 8)
    } else {
        (None, VERSION_HEADER)
    };
    Version {
        older: Addr::new(u32_at(b, 0)),
        older_same_ts: flags & OLDER_SAME_TS != 0,
        id: VersionId { ts: Ts(u64_at(b, 8)), origin: Origin { kind, source_id: u32_at(b, 24), seq: u64_at(b, 16) } },
        value: (flags & HAS_VALUE != 0).then(|| &b[value_at..value_at + value_len]),
        expires_at_ms,
    }
}

fn version_len(e: &EntryRef<'_>) -> usize {
    VERSION_HEADER + if e.expires_at_ms.is_some() { 8 } else { 0 } + e.value.map_or(0, <[u8]>::len)
}

fn write_version(b: &mut [u8], e: &EntryRef<'_>, older: Option<Addr>, older_same_ts: bool) {
    let flags = if e.value.is_some() { HAS_VALUE } else { 0 }
        | if e.expires_at_ms.is_some() { HAS_EXPIRY } else { 0 }
        | if older_same_ts { OLDER_SAME_TS } else { 0 };
    b[0..4].copy_from_slice(&older.map_or(0, Addr::get).to_le_bytes());
    b[4] = flags;
    b[5] = e.id.origin.kind.code();
    b[8..16].copy_from_slice(&e.id.ts.0.to_le_bytes());
    b[16..24].copy_from_slice(&e.id.origin.seq.to_le_bytes());
    b[24..28].copy_from_slice(&e.id.origin.source_id.to_le_bytes());
    let value = e.value.unwrap_or_default();
    b[28..32].copy_from_slice(&u32::try_from(value.len()).expect("values under 4 GiB").to_le_bytes());
    let mut at = VERSION_HEADER;
    if let Some(expires) = e.expires_at_ms {
        b[at..at + 8].copy_from_slice(&expires.to_le_bytes());
        at += 8;
    }
    b[at..at + value.len()].copy_from_slice(value);
}

/// Writes `e`'s key as a new row and its version as the row's only one: the row's address.
pub(super) fn push_row(arena: &mut Arena, e: &EntryRef<'_>) -> Addr {
    let key_len = e.partition_key.len() + e.sort_key.len();
    let row_len = (ROW_HEADER + key_len).next_multiple_of(8);
    let at = arena.alloc(row_len + version_len(e));
    let row_units = u32::try_from(row_len / 8).expect("a row under 32 GiB");
    let version_at = Addr::new(at.get() + row_units).expect("past a non-zero address");
    let b = arena.bytes_mut(at);
    b[0..4].copy_from_slice(&version_at.get().to_le_bytes());
    b[4..8].copy_from_slice(&e.table.0.to_le_bytes());
    b[8..10].copy_from_slice(&crate::codec::key_len(e.partition_key).to_le_bytes());
    b[10..12].copy_from_slice(&crate::codec::key_len(e.sort_key).to_le_bytes());
    b[ROW_HEADER..ROW_HEADER + e.partition_key.len()].copy_from_slice(e.partition_key);
    b[ROW_HEADER + e.partition_key.len()..ROW_HEADER + key_len].copy_from_slice(e.sort_key);
    write_version(&mut b[row_len..], e, None, false);
    at
}

/// Writes `e`'s version, linked to `older`: its address.
pub(super) fn push_version(arena: &mut Arena, e: &EntryRef<'_>, older: Option<Addr>, older_same_ts: bool) -> Addr {
    let at = arena.alloc(version_len(e));
    write_version(arena.bytes_mut(at), e, older, older_same_ts);
    at
}

/// Points the row at `row` to a new newest version.
pub(super) fn set_newest(arena: &mut Arena, row: Addr, newest: Addr) {
    arena.bytes_mut(row)[0..4].copy_from_slice(&newest.get().to_le_bytes());
}

/// Points the version at `at` to a new next older one.
pub(super) fn set_older(arena: &mut Arena, at: Addr, older: Addr, older_same_ts: bool) {
    let b = arena.bytes_mut(at);
    b[0..4].copy_from_slice(&older.get().to_le_bytes());
    b[4] = (b[4] & !OLDER_SAME_TS) | if older_same_ts { OLDER_SAME_TS } else { 0 };
}
