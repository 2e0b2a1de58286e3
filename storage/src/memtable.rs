//! The memtable: one partition's recent writes, sorted, with keys and values in a bumpalo arena.
//!
//! Entries sort as [`EntryRef::storage_cmp`] orders them. The index holds each row (a key without
//! its version) once: a `BTreeMap` of rows in key order for scans and the flush, a hash map of the
//! same rows for point reads and inserts, and per row its versions in a small vector. So the
//! write a feature store lives on, a newer version of a row already present, costs one hash and
//! a push, and a point read of the latest value one hash: no tree descent. Row keys and values
//! borrow the arena; `self_cell` ties the lifetimes together without unsafe code. A memtable is
//! mutable until frozen; a frozen one is read-only and shared with the flush that writes it. It
//! does no I/O and knows nothing of the WAL.

use crate::ids::{TableId, Ts};
use crate::record::{Entry, EntryRef, KeyRef, PartitionRange};
use crate::version::VersionId;
use bumpalo::Bump;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Bound;

/// Index overhead charged per version on top of its arena bytes: its slot in its row's vector.
pub const ENTRY_OVERHEAD_BYTES: usize = std::mem::size_of::<(VersionId, IndexValue<'static>)>();

/// Index overhead charged per row: its `BTreeMap` slot (node headers, amortised over about
/// eleven slots, not counted), its version vector's header, and its hash-map slot with
/// hashbrown's control byte (charged by capacity, in `memory_bytes`).
const ROW_OVERHEAD_BYTES: usize =
    std::mem::size_of::<(RowKey<'static>, usize)>() + std::mem::size_of::<Versions<'static>>();
const HASH_SLOT_BYTES: usize = std::mem::size_of::<Slot<'static>>() + 1;

/// A row: a key without its version, borrowing the arena.
type RowKey<'a> = (TableId, &'a [u8], &'a [u8]);

/// An index value: the payload, borrowing the arena.
#[derive(Debug, Clone, Copy)]
pub struct IndexValue<'a> {
    value: Option<&'a [u8]>,
    expires_at_ms: Option<u64>,
}

/// One row's versions, in reverse storage order: the newest is last, so the common insert (a
/// version newer than all the row has) appends.
type Versions<'a> = Vec<(VersionId, IndexValue<'a>)>;

/// A row in the hash table: the row, where its versions are, and a copy of its newest version
/// with whether it is the only one at its `ts`, so a read of the latest value touches nothing
/// else (each further hop is a cache miss, measured as a tenth of a GET's server CPU).
#[derive(Debug, Clone, Copy)]
struct Slot<'a> {
    row: RowKey<'a>,
    at: usize,
    newest: VersionId,
    value: IndexValue<'a>,
    alone: bool,
}

/// The rows, both ways, and their versions, all borrowing the arena.
struct Index<'a> {
    /// Rows in key order, each to its slot in `versions`.
    sorted: BTreeMap<RowKey<'a>, usize>,
    /// The same rows by hash.
    slots: hashbrown::HashTable<Slot<'a>>,
    hasher: foldhash::fast::FixedState,
    versions: Vec<Versions<'a>>,
    /// Versions held, and version slots allocated, over every row.
    len: usize,
    capacity: usize,
}

impl<'a> Index<'a> {
    fn new() -> Self {
        Index {
            sorted: BTreeMap::new(),
            slots: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::default(),
            versions: Vec::new(),
            len: 0,
            capacity: 0,
        }
    }

    /// `row`'s entry in the hash table, found by its hash `hash`.
    fn slot(&self, hash: u64, row: RowKey<'_>) -> Option<&Slot<'a>> {
        self.slots.find(hash, |s| s.row == row)
    }

    /// The versions of `row`, oldest first, or none.
    fn row(&self, row: RowKey<'_>) -> &[(VersionId, IndexValue<'a>)] {
        match self.slot(self.hasher.hash_one(row), row) {
            Some(slot) => &self.versions[slot.at],
            None => &[],
        }
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

    /// Memory held: the arena's allocated chunks plus the index slots. This is what budgets use.
    pub fn memory_bytes(&self) -> usize {
        let index = self.arena.borrow_dependent();
        self.arena.borrow_owner().allocated_bytes()
            + index.capacity * ENTRY_OVERHEAD_BYTES
            + index.versions.capacity() * ROW_OVERHEAD_BYTES
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
            let probe: RowKey<'_> = (e.table, e.partition_key, e.sort_key);
            let Index { sorted, slots, hasher, versions: rows, len, capacity } = index;
            let hash = hasher.hash_one(probe);
            let value =
                || IndexValue { value: e.value.map(|v| &*bump.alloc_slice_copy(v)), expires_at_ms: e.expires_at_ms };
            let Some(slot) = slots.find_mut(hash, |s| s.row == probe) else {
                // The row's first version.
                let row = (e.table, &*bump.alloc_slice_copy(e.partition_key), &*bump.alloc_slice_copy(e.sort_key));
                let value = value();
                let at = rows.len();
                let versions = vec![(e.id, value)];
                *capacity += versions.capacity();
                *len += 1;
                rows.push(versions);
                sorted.insert(row, at);
                slots.insert_unique(hash, Slot { row, at, newest: e.id, value, alone: true }, |s| {
                    hasher.hash_one(s.row)
                });
                return Inserted::New;
            };
            let versions = &mut rows[slot.at];
            // Oldest first: an older version than `e` (which `e` precedes in storage order)
            // ranks below it. Usually every version there is older, and `e` goes last.
            let at = match versions.last() {
                Some((newest, _)) if e.id.storage_cmp(newest).is_lt() => Err(versions.len()),
                None => Err(0),
                Some(_) => versions.binary_search_by(|(v, _)| e.id.storage_cmp(v)),
            };
            let outcome = match at {
                Err(_) => Inserted::New,
                Ok(i) => {
                    let old = versions[i].1;
                    match e.payload_tie_cmp(&EntryRef { value: old.value, expires_at_ms: old.expires_at_ms, ..e }) {
                        Ordering::Equal | Ordering::Less => return Inserted::Duplicate,
                        Ordering::Greater => Inserted::Replaced,
                    }
                }
            };
            let value = value();
            match at {
                Ok(i) => versions[i].1 = value,
                Err(i) => {
                    let before = versions.capacity();
                    versions.insert(i, (e.id, value));
                    *capacity += versions.capacity() - before;
                    *len += 1;
                }
            }
            let (newest, value) = *versions.last().expect("the row has a version");
            let alone = versions.len() < 2 || versions[versions.len() - 2].0.ts != newest.ts;
            (slot.newest, slot.value, slot.alone) = (newest, value, alone);
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
        let row = (key.table, key.partition_key, key.sort_key);
        index.row(row).iter().rev().map(|(id, v)| to_ref(row, id, v)).collect()
    }

    /// The versions of `key` with the greatest `ts` at or below `bound`, in storage order: all a
    /// point read needs from this memtable, since the ordering rule compares `ts` first. Reads
    /// only that group, so a hot key with many versions costs no more than a cold one.
    pub fn newest_versions_of<'s>(&'s self, key: KeyRef<'s>, bound: Ts) -> Vec<EntryRef<'s>> {
        let index: &Index<'s> = self.arena.borrow_dependent();
        let row = (key.table, key.partition_key, key.sort_key);
        match index.slot(index.hasher.hash_one(row), row) {
            None => Vec::new(),
            Some(s) if s.alone && s.newest.ts <= bound => vec![to_ref(row, &s.newest, &s.value)],
            Some(s) => newest_group(row, &index.versions[s.at], bound),
        }
    }

    /// Entries of table `table` whose partition key is after `after` (from the table's first
    /// when `None`), in storage order, up to `max_partition_keys` whole partition keys.
    pub fn scan_table(&self, table: TableId, after: Option<&[u8]>, max_partition_keys: usize) -> Vec<Entry> {
        let index = self.arena.borrow_dependent();
        let start = after.map(|a| [a, &[0u8]].concat()).unwrap_or_default();
        let lo: RowKey<'_> = (table, &start, &[]);
        let hi = match table.0.checked_add(1) {
            Some(next) => Bound::Excluded((TableId(next), &[][..], &[][..])),
            None => Bound::Unbounded,
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut keys = 0;
        for (row, &slot) in index.sorted.range((Bound::Included(lo), hi)) {
            if out.last().is_none_or(|last| last.key.partition_key != row.1) {
                if keys == max_partition_keys {
                    break;
                }
                keys += 1;
            }
            out.extend(index.versions[slot].iter().rev().map(|(id, v)| to_ref(*row, id, v).to_owned()));
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
        let lo: RowKey<'_> = (table, partition_key, from.unwrap_or(&[]));
        let hi = match to {
            Some(t) => Bound::Included((table, partition_key, t)),
            None => Bound::Excluded((table, &after_partition[..], &[][..])),
        };
        let rows = index.sorted.range((Bound::Included(lo), hi));
        let rows: Box<dyn Iterator<Item = (&RowKey<'_>, &usize)>> =
            if reverse { Box::new(rows.rev()) } else { Box::new(rows) };
        let mut out = Vec::new();
        let mut groups = 0;
        for (row, &slot) in rows {
            if groups == max_sort_keys {
                break;
            }
            let group = newest_group(*row, &index.versions[slot], bound);
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
            .flat_map(move |(row, &slot)| index.versions[slot].iter().rev().map(move |(id, v)| to_ref(*row, id, v)))
    }
}

/// Of one row's versions (oldest first), those at the greatest `ts` at or below `bound`, in
/// storage order.
fn newest_group<'s>(row: RowKey<'s>, versions: &[(VersionId, IndexValue<'s>)], bound: Ts) -> Vec<EntryRef<'s>> {
    let mut newest = versions.iter().rev().skip_while(|(id, _)| id.ts > bound);
    let Some((first, value)) = newest.next() else { return Vec::new() };
    let mut out = vec![to_ref(row, first, value)];
    out.extend(newest.take_while(|(id, _)| id.ts == first.ts).map(|(id, v)| to_ref(row, id, v)));
    out
}

fn to_ref<'a>(row: RowKey<'a>, id: &VersionId, v: &IndexValue<'a>) -> EntryRef<'a> {
    EntryRef {
        table: row.0,
        partition_key: row.1,
        sort_key: row.2,
        id: *id,
        value: v.value,
        expires_at_ms: v.expires_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert!(m.memory_bytes() >= before + 107 + ENTRY_OVERHEAD_BYTES);
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
