//! The memtable: one partition's recent writes, sorted, with keys and values in a bumpalo arena.
//!
//! Entries sort as [`EntryRef::storage_cmp`] orders them. The index holds each row (a key without
//! its version) once, in a chunked row store: a `BTreeMap` of rows in key order for scans and
//! the flush, and a hash table of row numbers for point reads and inserts. A row holds its
//! newest version inline and the others in a thin vector. So the write a feature store lives
//! on, a newer version of a row already present, costs one hash and a push, a point read of the
//! latest value one hash and one row, and a row written once costs no allocation but its arena
//! bytes.
//! Row keys and values borrow the arena; `self_cell` ties the lifetimes together without unsafe
//! code. A memtable is mutable until frozen; a frozen one is read-only and shared with the flush
//! that writes it. It does no I/O and knows nothing of the WAL.

use crate::codec::key_len;
use crate::ids::{TableId, Ts};
use crate::record::{Entry, EntryRef, KeyRef, PartitionRange};
use crate::version::VersionId;
use bumpalo::Bump;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;
use thin_vec::ThinVec;

/// Index overhead charged per version older than its row's newest: its slot in the row's
/// vector (the newest lives in the row itself).
pub const ENTRY_OVERHEAD_BYTES: usize = std::mem::size_of::<(VersionId, IndexValue<'static>)>();

/// Index overhead charged per row: the row itself (by the capacity of its chunk) and its
/// `BTreeMap` slot (node headers, amortised over about eleven slots, not counted); the hash
/// table's slot and control byte are charged by capacity, in `memory_bytes`.
const ROW_BYTES: usize = std::mem::size_of::<Row<'static>>();
const SORTED_SLOT_BYTES: usize = std::mem::size_of::<(RowKey<'static>, u32)>();
const HASH_SLOT_BYTES: usize = std::mem::size_of::<u32>() + 1;

/// Rows are stored in chunks of this many, so the row store grows without copying and holds at
/// most one chunk it does not use.
const ROWS_PER_CHUNK: usize = 1024;

/// A row: a key without its version, its partition key and sort key back to back in the arena,
/// so a row and its slot in the sorted map each hold one slice (24 bytes, where a slice for each
/// key took 40). Ordered, compared and hashed as `(table, partition key, sort key)`.
#[derive(Debug, Clone, Copy)]
struct RowKey<'a> {
    table: TableId,
    pk_len: u16,
    bytes: &'a [u8],
}

/// A row key's parts, as probes and bounds give them: what it is ordered and hashed by.
type KeyParts<'a> = (TableId, &'a [u8], &'a [u8]);

impl<'a> RowKey<'a> {
    fn parts(&self) -> KeyParts<'a> {
        let (pk, sk) = self.bytes.split_at(usize::from(self.pk_len));
        (self.table, pk, sk)
    }

    /// A key over `buf`, which it fills with the parts: a bound for a range of the sorted map.
    fn bound(table: TableId, pk: &[u8], sk: &[u8], buf: &'a mut Vec<u8>) -> RowKey<'a> {
        buf.clear();
        buf.extend_from_slice(pk);
        buf.extend_from_slice(sk);
        RowKey { table, pk_len: key_len(pk), bytes: buf }
    }
}

impl PartialEq for RowKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for RowKey<'_> {}

impl PartialOrd for RowKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for RowKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parts().cmp(&other.parts())
    }
}

/// An index value: the payload, borrowing the arena.
#[derive(Debug, Clone, Copy)]
pub struct IndexValue<'a> {
    value: Option<&'a [u8]>,
    expires_at_ms: Option<u64>,
}

/// One version of a row.
type Slot<'a> = (VersionId, IndexValue<'a>);

/// One row: its key, its newest version in storage order, and the others oldest first, so the
/// common insert (a version newer than all the row has) moves the newest to the end of `older`.
/// A read of the latest value finds all it needs here, with whether the newest is the only
/// version at its `ts` (each further hop is a cache miss, measured as a tenth of a GET's server
/// CPU), and a row written once holds no vector: `older` is one pointer (thin-vec keeps its
/// length and capacity beside its elements), empty until the row's second version.
#[derive(Debug)]
struct Row<'a> {
    key: RowKey<'a>,
    newest: Slot<'a>,
    alone: bool,
    older: ThinVec<Slot<'a>>,
}

impl<'a> Row<'a> {
    /// Every version, newest first in storage order.
    fn newest_first(&self) -> impl DoubleEndedIterator<Item = &Slot<'a>> {
        std::iter::once(&self.newest).chain(self.older.iter().rev())
    }
}

/// The rows, in insertion order, in chunks.
#[derive(Default)]
struct Rows<'a> {
    chunks: Vec<Vec<Row<'a>>>,
    len: usize,
}

impl<'a> Rows<'a> {
    fn get(&self, at: u32) -> &Row<'a> {
        let at = at as usize;
        &self.chunks[at / ROWS_PER_CHUNK][at % ROWS_PER_CHUNK]
    }

    fn get_mut(&mut self, at: u32) -> &mut Row<'a> {
        let at = at as usize;
        &mut self.chunks[at / ROWS_PER_CHUNK][at % ROWS_PER_CHUNK]
    }

    /// Appends `row`, returning where it is.
    fn push(&mut self, row: Row<'a>) -> u32 {
        if self.len.is_multiple_of(ROWS_PER_CHUNK) {
            self.chunks.push(Vec::with_capacity(ROWS_PER_CHUNK));
        }
        self.chunks.last_mut().expect("a chunk with room").push(row);
        self.len += 1;
        u32::try_from(self.len - 1).expect("fewer than 2^32 rows in one memtable")
    }

    /// Rows the chunks have room for.
    fn capacity(&self) -> usize {
        self.chunks.len() * ROWS_PER_CHUNK
    }
}

/// The rows, both ways, all borrowing the arena.
struct Index<'a> {
    /// Rows in key order, each to where it is in `rows`.
    sorted: BTreeMap<RowKey<'a>, u32>,
    /// The same rows by hash.
    slots: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    rows: Rows<'a>,
    /// Versions held over every row, and slots allocated for versions older than their row's
    /// newest.
    len: usize,
    older_capacity: usize,
}

impl<'a> Index<'a> {
    fn new() -> Self {
        Index {
            sorted: BTreeMap::new(),
            slots: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            rows: Rows::default(),
            len: 0,
            older_capacity: 0,
        }
    }

    /// `key`'s row, or none.
    fn row(&self, key: KeyParts<'_>) -> Option<&Row<'a>> {
        let rows = &self.rows;
        self.slots.find(self.hasher.hash_one(key), |&at| rows.get(at).key.parts() == key).map(|&at| rows.get(at))
    }
}

self_cell::self_cell!(
    struct Arena {
        owner: Bump,
        #[covariant]
        dependent: Index,
    }
);

/// What inserting an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new version.
    New,
    /// The identical version was already present: nothing changed.
    Duplicate,
    /// The same identity with a payload that wins the tie-break replaced the old one.
    Replaced,
}

/// One partition's in-memory sorted run.
pub struct Memtable {
    arena: Arena,
    data_bytes: usize,
    min_ts: Ts,
    max_ts: Ts,
}

impl std::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memtable").field("entries", &self.len()).field("data_bytes", &self.data_bytes).finish()
    }
}

impl Default for Memtable {
    fn default() -> Self {
        Self::new()
    }
}

impl Memtable {
    /// An empty memtable.
    pub fn new() -> Self {
        Self { arena: Arena::new(Bump::new(), |_| Index::new()), data_bytes: 0, min_ts: Ts::MAX, max_ts: Ts(0) }
    }

    /// Number of entries (versions).
    pub fn len(&self) -> usize {
        self.arena.borrow_dependent().len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of keys and values stored, exactly.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// Memory held: the arena's bytes in use plus the index. This is what budgets use. The
    /// untouched rest of the arena's newest chunk is address space the kernel has not backed
    /// (chunks double, so counting it would charge up to twice the data).
    pub fn memory_bytes(&self) -> usize {
        let index = self.arena.borrow_dependent();
        let bump = self.arena.borrow_owner();
        bump.allocated_bytes().saturating_sub(bump.chunk_capacity())
            + index.rows.capacity() * ROW_BYTES
            + index.sorted.len() * SORTED_SLOT_BYTES
            + index.older_capacity * ENTRY_OVERHEAD_BYTES
            + index.slots.capacity() * HASH_SLOT_BYTES
    }

    /// Smallest and greatest `ts` held, or `None` when empty.
    pub fn ts_range(&self) -> Option<(Ts, Ts)> {
        (!self.is_empty()).then_some((self.min_ts, self.max_ts))
    }

    /// Inserts one entry. An identical version is a no-op; the same identity with another
    /// payload keeps whichever payload wins [`EntryRef::payload_tie_cmp`].
    pub fn insert(&mut self, e: EntryRef<'_>) -> Inserted {
        let outcome = self.arena.with_dependent_mut(|bump, index| {
            let probe: KeyParts<'_> = (e.table, e.partition_key, e.sort_key);
            let Index { sorted, slots, hasher, rows, len, older_capacity } = index;
            let hash = hasher.hash_one(probe);
            let value =
                || IndexValue { value: e.value.map(|v| &*bump.alloc_slice_copy(v)), expires_at_ms: e.expires_at_ms };
            let Some(&at) = slots.find(hash, |&at| rows.get(at).key.parts() == probe) else {
                // The row's first version.
                let bytes = bump.alloc_slice_fill_copy(e.partition_key.len() + e.sort_key.len(), 0u8);
                let (pk, sk) = bytes.split_at_mut(e.partition_key.len());
                pk.copy_from_slice(e.partition_key);
                sk.copy_from_slice(e.sort_key);
                let key = RowKey { table: e.table, pk_len: key_len(e.partition_key), bytes };
                let at = rows.push(Row { key, newest: (e.id, value()), alone: true, older: ThinVec::new() });
                *len += 1;
                sorted.insert(key, at);
                slots.insert_unique(hash, at, |&at| hasher.hash_one(rows.get(at).key.parts()));
                return Inserted::New;
            };
            let row = rows.get_mut(at);
            // Where `e` goes: past the newest (usually), at it (the same identity), or among
            // the older ones, oldest first, where an older version than `e` (which `e`
            // precedes in storage order) ranks below it.
            let place = match e.id.storage_cmp(&row.newest.0) {
                Ordering::Less => None,
                Ordering::Equal => Some(Ok(None)),
                Ordering::Greater => Some(row.older.binary_search_by(|(v, _)| e.id.storage_cmp(v)).map(Some)),
            };
            if let Some(Ok(i)) = place {
                let old = i.map_or(row.newest.1, |i| row.older[i].1);
                if e.payload_tie_cmp(&EntryRef { value: old.value, expires_at_ms: old.expires_at_ms, ..e }).is_le() {
                    return Inserted::Duplicate;
                }
            }
            let version = (e.id, value());
            let before = row.older.capacity();
            let outcome = match place {
                None => {
                    // A row with many versions grows its vector by doubling; one overwritten a
                    // few times, by one slot at a time.
                    if row.older.len() == row.older.capacity() && row.older.len() < 4 {
                        row.older.reserve_exact(1);
                    }
                    row.older.push(std::mem::replace(&mut row.newest, version));
                    Inserted::New
                }
                Some(Ok(None)) => {
                    row.newest = version;
                    Inserted::Replaced
                }
                Some(Ok(Some(i))) => {
                    row.older[i] = version;
                    Inserted::Replaced
                }
                Some(Err(i)) => {
                    row.older.insert(i, version);
                    Inserted::New
                }
            };
            *older_capacity += row.older.capacity() - before;
            if outcome == Inserted::New {
                *len += 1;
            }
            row.alone = row.older.last().is_none_or(|(older, _)| older.ts != row.newest.0.ts);
            outcome
        });
        if outcome != Inserted::Duplicate {
            self.data_bytes += e.partition_key.len() + e.sort_key.len() + e.value.map_or(0, <[u8]>::len);
            self.min_ts = self.min_ts.min(e.id.ts);
            self.max_ts = self.max_ts.max(e.id.ts);
        }
        outcome
    }

    /// Every version of `key`, newest first in storage order.
    pub fn versions_of<'s>(&'s self, key: KeyRef<'s>) -> Vec<EntryRef<'s>> {
        let index: &Index<'s> = self.arena.borrow_dependent();
        let Some(row) = index.row((key.table, key.partition_key, key.sort_key)) else { return Vec::new() };
        row.newest_first().map(|(id, v)| to_ref(row.key, id, v)).collect()
    }

    /// The versions of `key` with the greatest `ts` at or below `bound`, in storage order: all a
    /// point read needs from this memtable, since the ordering rule compares `ts` first. Reads
    /// only that group, so a hot key with many versions costs no more than a cold one.
    pub fn newest_versions_of<'s>(&'s self, key: KeyRef<'s>, bound: Ts) -> Vec<EntryRef<'s>> {
        let mut out = Vec::new();
        self.visit_newest_versions_of(key, bound, |e| out.push(e));
        out
    }

    /// [`Memtable::newest_versions_of`], each handed to `visit` in storage order instead of
    /// collected: a point read copies them straight into its own candidates.
    pub fn visit_newest_versions_of<'s>(&'s self, key: KeyRef<'s>, bound: Ts, mut visit: impl FnMut(EntryRef<'s>)) {
        let index: &Index<'s> = self.arena.borrow_dependent();
        match index.row((key.table, key.partition_key, key.sort_key)) {
            None => {}
            Some(r) if r.alone && r.newest.0.ts <= bound => visit(to_ref(r.key, &r.newest.0, &r.newest.1)),
            Some(r) => visit_newest_group(r.key, r, bound, visit),
        }
    }

    /// Entries of table `table` whose partition key is after `after` (from the table's first
    /// when `None`), in storage order, up to `max_partition_keys` whole partition keys.
    pub fn scan_table(&self, table: TableId, after: Option<&[u8]>, max_partition_keys: usize) -> Vec<Entry> {
        let index = self.arena.borrow_dependent();
        let start = after.map(|a| [a, &[0u8]].concat()).unwrap_or_default();
        let mut lo_buf = Vec::new();
        let lo = RowKey::bound(table, &start, &[], &mut lo_buf);
        let hi = match table.0.checked_add(1) {
            Some(next) => Bound::Excluded(RowKey { table: TableId(next), pk_len: 0, bytes: &[] }),
            None => Bound::Unbounded,
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut keys = 0;
        for (row, &slot) in index.sorted.range((Bound::Included(lo), hi)) {
            if out.last().is_none_or(|last| last.key.partition_key != row.parts().1) {
                if keys == max_partition_keys {
                    break;
                }
                keys += 1;
            }
            out.extend(index.rows.get(slot).newest_first().map(|(id, v)| to_ref(*row, id, v).to_owned()));
        }
        out
    }

    /// Entries of `range`: of each sort key, its versions at the greatest `ts` at or below
    /// `range.bound`, newest first; sort keys ascending, or descending when `range.reverse`.
    /// Visits each row once, however many versions it has.
    pub fn scan_partition(&self, range: &PartitionRange<'_>) -> Vec<Entry> {
        let PartitionRange { table, partition_key, from, to, reverse, max_sort_keys, bound } = *range;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Vec::new();
        }
        let index = self.arena.borrow_dependent();
        let after_partition = [partition_key, &[0u8]].concat();
        let (mut lo_buf, mut hi_buf) = (Vec::new(), Vec::new());
        let lo = RowKey::bound(table, partition_key, from.unwrap_or(&[]), &mut lo_buf);
        let hi = match to {
            Some(t) => Bound::Included(RowKey::bound(table, partition_key, t, &mut hi_buf)),
            None => Bound::Excluded(RowKey::bound(table, &after_partition, &[], &mut hi_buf)),
        };
        let rows = index.sorted.range((Bound::Included(lo), hi));
        let rows: Box<dyn Iterator<Item = (&RowKey<'_>, &u32)>> =
            if reverse { Box::new(rows.rev()) } else { Box::new(rows) };
        let mut out = Vec::new();
        let mut groups = 0;
        for (row, &slot) in rows {
            if groups == max_sort_keys {
                break;
            }
            let group = newest_group(*row, index.rows.get(slot), bound);
            if !group.is_empty() {
                groups += 1;
                out.extend(group.into_iter().map(EntryRef::to_owned));
            }
        }
        out
    }

    /// All entries in storage order, for a flush.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        let index = self.arena.borrow_dependent();
        index
            .sorted
            .iter()
            .flat_map(move |(row, &slot)| index.rows.get(slot).newest_first().map(move |(id, v)| to_ref(*row, id, v)))
    }
}

/// Of one row's versions, those at the greatest `ts` at or below `bound`, in storage order.
fn newest_group<'s>(row: RowKey<'s>, versions: &Row<'s>, bound: Ts) -> Vec<EntryRef<'s>> {
    let mut out = Vec::new();
    visit_newest_group(row, versions, bound, |e| out.push(e));
    out
}

/// [`newest_group`], each handed to `visit` instead of collected.
fn visit_newest_group<'s>(row: RowKey<'s>, versions: &Row<'s>, bound: Ts, mut visit: impl FnMut(EntryRef<'s>)) {
    let mut newest = versions.newest_first().skip_while(|(id, _)| id.ts > bound);
    if let Some((first, value)) = newest.next() {
        visit(to_ref(row, first, value));
        newest.take_while(|(id, _)| id.ts == first.ts).for_each(|(id, v)| visit(to_ref(row, id, v)));
    }
}

fn to_ref<'a>(row: RowKey<'a>, id: &VersionId, v: &IndexValue<'a>) -> EntryRef<'a> {
    let (table, partition_key, sort_key) = row.parts();
    EntryRef { table, partition_key, sort_key, id: *id, value: v.value, expires_at_ms: v.expires_at_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_and_its_sorted_slot_stay_small() {
        // Every byte here is charged to each row against the memtable budget: a smaller index
        // holds more versions a flush, so fewer flushes and merges rewrite them.
        assert_eq!(std::mem::size_of::<RowKey<'static>>(), 24);
        assert_eq!(ROW_BYTES, 96, "key 24, newest version 56, older 8, alone 1, padded");
        assert_eq!(SORTED_SLOT_BYTES, 32);
    }
    use crate::version::{Origin, OriginKind};

    fn entry<'a>(pk: &'a [u8], sk: &'a [u8], ts: u64, value: Option<&'a [u8]>) -> EntryRef<'a> {
        EntryRef {
            table: TableId(1),
            partition_key: pk,
            sort_key: sk,
            id: VersionId { ts: Ts(ts), origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: ts } },
            value,
            expires_at_ms: None,
        }
    }

    #[test]
    fn versions_come_back_newest_first_and_duplicates_are_no_ops() {
        let mut m = Memtable::new();
        assert_eq!(m.insert(entry(b"k", b"", 1, Some(b"a"))), Inserted::New);
        assert_eq!(m.insert(entry(b"k", b"", 3, Some(b"c"))), Inserted::New);
        assert_eq!(m.insert(entry(b"k", b"", 2, None)), Inserted::New);
        let bytes = m.data_bytes();
        assert_eq!(m.insert(entry(b"k", b"", 3, Some(b"c"))), Inserted::Duplicate);
        assert_eq!(m.data_bytes(), bytes);
        assert_eq!(m.insert(entry(b"k", b"", 3, Some(b"d"))), Inserted::Replaced);
        let got: Vec<_> = m
            .versions_of(KeyRef { table: TableId(1), partition_key: b"k", sort_key: b"" })
            .iter()
            .map(|e| (e.id.ts.0, e.value))
            .collect();
        assert_eq!(got, vec![(3, Some(&b"d"[..])), (2, None), (1, Some(&b"a"[..]))]);
        assert_eq!(m.ts_range(), Some((Ts(1), Ts(3))));
        assert!(m.versions_of(KeyRef { table: TableId(1), partition_key: b"k", sort_key: b"x" }).is_empty());
    }

    #[test]
    fn scan_stays_in_its_partition_key_and_honours_bounds_and_direction() {
        let mut m = Memtable::new();
        for (pk, sk) in [(&b"a"[..], &b"1"[..]), (b"a", b"2"), (b"a", b"3"), (b"a\0", b""), (b"b", b"1")] {
            m.insert(entry(pk, sk, 1, Some(b"v")));
            m.insert(entry(pk, sk, 2, Some(b"w")));
        }
        let sks = |v: Vec<Entry>| v.iter().map(|e| (e.key.sort_key.clone(), e.version.id.ts.0)).collect::<Vec<_>>();
        let all = m.scan_partition(&PartitionRange {
            table: TableId(1),
            partition_key: b"a",
            from: None,
            to: None,
            reverse: false,
            max_sort_keys: 10,
            bound: Ts::MAX,
        });
        assert_eq!(sks(all), vec![(b"1".to_vec(), 2), (b"2".to_vec(), 2), (b"3".to_vec(), 2)]);
        let rev = m.scan_partition(&PartitionRange {
            table: TableId(1),
            partition_key: b"a",
            from: Some(b"2"),
            to: None,
            reverse: true,
            max_sort_keys: 10,
            bound: Ts::MAX,
        });
        assert_eq!(sks(rev), vec![(b"3".to_vec(), 2), (b"2".to_vec(), 2)]);
        let limited = m.scan_partition(&PartitionRange {
            table: TableId(1),
            partition_key: b"a",
            from: None,
            to: Some(b"2"),
            reverse: false,
            max_sort_keys: 1,
            bound: Ts(1),
        });
        assert_eq!(sks(limited), vec![(b"1".to_vec(), 1)], "only versions within the bound");
    }

    #[test]
    fn memory_accounting_grows_with_data() {
        let mut m = Memtable::new();
        let before = m.memory_bytes();
        m.insert(entry(b"key", b"sort", 1, Some(&[7; 100])));
        assert_eq!(m.data_bytes(), 3 + 4 + 100);
        assert!(m.memory_bytes() >= before + 107 + ROW_BYTES, "a new row is charged its data and its row");
    }

    #[test]
    fn memory_charged_per_write_stays_near_the_data() {
        // 16-byte keys and 100-byte values, overwrites among them, until the memtable holds
        // what a small budget allows: every byte stored is charged, and the index adds about
        // as much again, not the 2-3x a fat hash slot and a half-empty arena chunk did.
        let mut m = Memtable::new();
        let mut rng = fastrand::Rng::with_seed(7);
        let value = [7u8; 100];
        let mut writes = 0u64;
        while m.memory_bytes() < 8 << 20 {
            let mut key = rng.u64(0..60_000).to_be_bytes().to_vec();
            key.resize(16, b'0');
            writes += 1;
            m.insert(entry(&key, b"", writes, Some(&value)));
        }
        let per_write = m.memory_bytes() as f64 / writes as f64;
        let data_per_write = m.data_bytes() as f64 / writes as f64;
        assert!(per_write >= data_per_write, "{per_write} charged, {data_per_write} stored");
        assert!(per_write < 300.0, "{per_write} bytes charged a write of {data_per_write} ({writes} writes)");
    }

    /// The model every read must agree with: the entries, one per identity (the payload that
    /// wins the tie-break), in storage order.
    fn model_of(inserts: &[EntryRef<'_>]) -> Vec<Entry> {
        let mut model: Vec<Entry> = Vec::new();
        for e in inserts {
            match model.iter_mut().find(|m| m.key.as_ref() == e.key() && m.version.id == e.id) {
                Some(m) => {
                    if e.payload_tie_cmp(&m.as_ref()).is_gt() {
                        *m = EntryRef::to_owned(*e);
                    }
                }
                None => model.push(EntryRef::to_owned(*e)),
            }
        }
        model.sort_by(|a, b| a.as_ref().storage_cmp(&b.as_ref()));
        model
    }

    /// Of the model's entries of one row, those at the greatest `ts` at or below `bound`.
    fn model_newest(row: &[Entry], bound: Ts) -> Vec<Entry> {
        let within: Vec<Entry> = row.iter().filter(|e| e.version.id.ts <= bound).cloned().collect();
        let Some(top) = within.first().map(|e| e.version.id.ts) else { return Vec::new() };
        within.into_iter().take_while(|e| e.version.id.ts == top).collect()
    }

    fn owned(refs: Vec<EntryRef<'_>>) -> Vec<Entry> {
        refs.into_iter().map(EntryRef::to_owned).collect()
    }

    proptest::proptest! {
        /// Every read answers as the model does, whatever the order of inserts: rows of several
        /// partition and sort keys, ties at one `ts` from several origins, duplicates, replaced
        /// payloads, versions older than a row's newest; point reads, scans in both directions
        /// and the flush's iteration, at every bound.
        #[test]
        fn every_read_answers_as_the_model_does(
            inserts in proptest::collection::vec((0u8..3, 0u8..3, 1u64..6, 0u32..3, 0u8..3, proptest::option::of(0u8..3)), 1..80),
            from in proptest::option::of(0u8..3),
            to in proptest::option::of(0u8..3),
            max_sort_keys in 1usize..4,
        ) {
            let kinds = [OriginKind::Direct, OriginKind::Stream, OriginKind::Bulk];
            let bytes: Vec<[u8; 1]> = (0..3).map(|v| [v]).collect();
            let refs: Vec<EntryRef<'_>> = inserts
                .iter()
                .map(|&(pk, sk, ts, source, kind, value)| EntryRef {
                    table: TableId(1),
                    partition_key: &bytes[pk as usize],
                    sort_key: &bytes[sk as usize],
                    id: VersionId { ts: Ts(ts), origin: Origin { kind: kinds[kind as usize], source_id: source, seq: 0 } },
                    value: value.map(|v| &bytes[v as usize][..]),
                    expires_at_ms: None,
                })
                .collect();
            let mut m = Memtable::new();
            for e in &refs {
                m.insert(*e);
            }
            let model = model_of(&refs);
            proptest::prop_assert_eq!(owned(m.iter().collect()), model.clone());
            proptest::prop_assert_eq!(m.len(), model.len());
            for pk in 0u8..3 {
                for sk in 0u8..3 {
                    let key = KeyRef { table: TableId(1), partition_key: &bytes[pk as usize], sort_key: &bytes[sk as usize] };
                    let row: Vec<Entry> = model.iter().filter(|e| e.key.as_ref() == key).cloned().collect();
                    proptest::prop_assert_eq!(owned(m.versions_of(key)), row.clone());
                    for bound in [Ts(0), Ts(1), Ts(2), Ts(3), Ts(4), Ts(5), Ts(6), Ts::MAX] {
                        proptest::prop_assert_eq!(owned(m.newest_versions_of(key, bound)), model_newest(&row, bound), "pk {} sk {} bound {:?}", pk, sk, bound);
                    }
                }
                for reverse in [false, true] {
                    for bound in [Ts(2), Ts(4), Ts::MAX] {
                        let range = PartitionRange {
                            table: TableId(1),
                            partition_key: &bytes[pk as usize],
                            from: from.map(|f| &bytes[f as usize][..]),
                            to: to.map(|t| &bytes[t as usize][..]),
                            reverse,
                            max_sort_keys,
                            bound,
                        };
                        let mut sks: Vec<u8> = (0u8..3).filter(|sk| from.is_none_or(|f| *sk >= f) && to.is_none_or(|t| *sk <= t)).collect();
                        if reverse {
                            sks.reverse();
                        }
                        let expected: Vec<Entry> = sks
                            .iter()
                            .map(|sk| {
                                let row: Vec<Entry> = model.iter().filter(|e| e.key.partition_key == [pk] && e.key.sort_key == [*sk]).cloned().collect();
                                model_newest(&row, bound)
                            })
                            .filter(|g| !g.is_empty())
                            .take(max_sort_keys)
                            .flatten()
                            .collect();
                        proptest::prop_assert_eq!(m.scan_partition(&range), expected, "pk {} reverse {} bound {:?}", pk, reverse, bound);
                    }
                }
            }
            for after in [None, Some(0u8), Some(1)] {
                let pks: Vec<u8> = (0u8..3).filter(|pk| after.is_none_or(|a| *pk > a)).filter(|pk| model.iter().any(|e| e.key.partition_key == [*pk])).take(max_sort_keys).collect();
                let expected: Vec<Entry> = model.iter().filter(|e| pks.contains(&e.key.partition_key[0])).cloned().collect();
                let after_bytes = after.map(|a| [a]);
                proptest::prop_assert_eq!(m.scan_table(TableId(1), after_bytes.as_ref().map(|a| &a[..]), max_sort_keys), expected, "after {:?}", after);
            }
        }
    }
}
