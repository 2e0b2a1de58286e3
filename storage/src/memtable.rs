//! The memtable: one partition's recent writes, sorted, with keys and values in a bumpalo arena.
//!
//! Entries sort as [`EntryRef::storage_cmp`] orders them. The index is a `BTreeMap` whose keys
//! borrow the arena; `self_cell` ties the two lifetimes together without unsafe code. A memtable
//! is mutable until frozen; a frozen one is read-only and shared with the flush that writes it.
//! It does no I/O and knows nothing of the WAL.

use crate::ids::{TableId, Ts};
use crate::record::{Entry, EntryRef, KeyRef, PartitionRange};
use crate::version::VersionId;
use bumpalo::Bump;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound;

/// Index overhead charged per entry on top of its arena bytes: the `BTreeMap` slot for one
/// key/value pair. Node headers are amortised over about eleven slots and not counted.
pub const ENTRY_OVERHEAD_BYTES: usize = std::mem::size_of::<(IndexKey<'static>, IndexValue<'static>)>();

/// An index key: the entry's key and version identity, borrowing the arena.
#[derive(Debug, Clone, Copy)]
pub struct IndexKey<'a> {
    table: TableId,
    partition_key: &'a [u8],
    sort_key: &'a [u8],
    id: VersionId,
}

impl Ord for IndexKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.table, self.partition_key, self.sort_key)
            .cmp(&(other.table, other.partition_key, other.sort_key))
            .then_with(|| self.id.storage_cmp(&other.id))
    }
}
impl PartialOrd for IndexKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for IndexKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for IndexKey<'_> {}

/// An index value: the payload, borrowing the arena.
#[derive(Debug, Clone, Copy)]
pub struct IndexValue<'a> {
    value: Option<&'a [u8]>,
    expires_at_ms: Option<u64>,
}

type Index<'a> = BTreeMap<IndexKey<'a>, IndexValue<'a>>;

self_cell::self_cell!(
    struct Arena {
        owner: Bump,
        #[covariant]
        dependent: Index,
    }
);

const FIRST_ID: VersionId = VersionId::FIRST_IN_STORAGE;
const LAST_ID: VersionId = VersionId::LAST_IN_STORAGE;

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
        Self { arena: Arena::new(Bump::new(), |_| BTreeMap::new()), data_bytes: 0, min_ts: Ts::MAX, max_ts: Ts(0) }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.arena.borrow_dependent().len()
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
        self.arena.borrow_owner().allocated_bytes() + self.len() * ENTRY_OVERHEAD_BYTES
    }

    /// Smallest and greatest `ts` held, or `None` when empty.
    pub fn ts_range(&self) -> Option<(Ts, Ts)> {
        (!self.is_empty()).then_some((self.min_ts, self.max_ts))
    }

    /// Inserts one entry. An identical version is a no-op; the same identity with another
    /// payload keeps whichever payload wins [`EntryRef::payload_tie_cmp`].
    pub fn insert(&mut self, e: EntryRef<'_>) -> Inserted {
        let outcome = self.arena.with_dependent_mut(|bump, index| {
            let probe = IndexKey { table: e.table, partition_key: e.partition_key, sort_key: e.sort_key, id: e.id };
            // A shared view may shorten the keys' lifetime to the probe's; a mutable one may not.
            let existing = {
                let view: &Index<'_> = index;
                view.get(&probe).copied()
            };
            let outcome = match existing {
                None => Inserted::New,
                Some(old) => {
                    match e.payload_tie_cmp(&EntryRef { value: old.value, expires_at_ms: old.expires_at_ms, ..e }) {
                        Ordering::Equal | Ordering::Less => return Inserted::Duplicate,
                        Ordering::Greater => Inserted::Replaced,
                    }
                }
            };
            let key = IndexKey {
                table: e.table,
                partition_key: bump.alloc_slice_copy(e.partition_key),
                sort_key: bump.alloc_slice_copy(e.sort_key),
                id: e.id,
            };
            let value =
                IndexValue { value: e.value.map(|v| &*bump.alloc_slice_copy(v)), expires_at_ms: e.expires_at_ms };
            index.insert(key, value);
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
        let index = self.arena.borrow_dependent();
        let lo = probe(key, FIRST_ID);
        let hi = probe(key, LAST_ID);
        range_refs(index, Bound::Included(lo), Bound::Included(hi)).collect()
    }

    /// The versions of `key` with the greatest `ts` at or below `bound`, in storage order: all a
    /// point read needs from this memtable, since the ordering rule compares `ts` first. Reads
    /// only that group, so a hot key with many versions costs no more than a cold one.
    pub fn newest_versions_of<'s>(&'s self, key: KeyRef<'s>, bound: Ts) -> Vec<EntryRef<'s>> {
        let index = self.arena.borrow_dependent();
        let lo = probe(key, VersionId { ts: bound, ..FIRST_ID });
        let hi = probe(key, LAST_ID);
        let mut group = range_refs(index, Bound::Included(lo), Bound::Included(hi));
        let Some(first) = group.next() else { return Vec::new() };
        let mut out = vec![first];
        out.extend(group.take_while(|e| e.id.ts == first.id.ts));
        out
    }

    /// Entries of table `table` whose partition key is after `after` (from the table's first
    /// when `None`), in storage order, up to `max_partition_keys` whole partition keys.
    pub fn scan_table(&self, table: TableId, after: Option<&[u8]>, max_partition_keys: usize) -> Vec<Entry> {
        let index = self.arena.borrow_dependent();
        let start = after.map(|a| [a, &[0u8]].concat()).unwrap_or_default();
        let lo = probe(KeyRef { table, partition_key: &start, sort_key: &[] }, FIRST_ID);
        let hi = match table.0.checked_add(1) {
            Some(next) => {
                Bound::Excluded(probe(KeyRef { table: TableId(next), partition_key: &[], sort_key: &[] }, FIRST_ID))
            }
            None => Bound::Unbounded,
        };
        let mut out: Vec<Entry> = Vec::new();
        let mut keys = 0;
        for e in range_refs(index, Bound::Included(lo), hi) {
            if out.last().is_none_or(|last| last.key.partition_key != e.partition_key) {
                if keys == max_partition_keys {
                    break;
                }
                keys += 1;
            }
            out.push(e.to_owned());
        }
        out
    }

    /// Entries of `range`: of each sort key, its versions at the greatest `ts` at or below
    /// `range.bound`, newest first; sort keys ascending, or descending when `range.reverse`.
    /// Seeks from one sort key to the next, so a row with many versions costs no more than one
    /// with few.
    pub fn scan_partition(&self, range: &PartitionRange<'_>) -> Vec<Entry> {
        let PartitionRange { table, partition_key, from, to, reverse, max_sort_keys, bound } = *range;
        let index = self.arena.borrow_dependent();
        let after_partition = [partition_key, &[0u8]].concat();
        let partition_end = probe(KeyRef { table, partition_key: &after_partition, sort_key: &[] }, FIRST_ID);
        let mut out = Vec::new();
        let mut groups = 0;
        // The next sort key to visit is found from this edge (exclusive once a key was visited).
        let mut edge: Option<Vec<u8>> = None;
        while groups < max_sort_keys {
            let next = if reverse {
                let hi = match (&edge, to) {
                    (Some(e), _) => Bound::Excluded(probe(KeyRef { table, partition_key, sort_key: e }, FIRST_ID)),
                    (None, Some(t)) => Bound::Included(probe(KeyRef { table, partition_key, sort_key: t }, LAST_ID)),
                    (None, None) => Bound::Excluded(partition_end),
                };
                let lo = probe(KeyRef { table, partition_key, sort_key: from.unwrap_or(&[]) }, FIRST_ID);
                range_refs(index, Bound::Included(lo), hi).next_back()
            } else {
                let lo = match &edge {
                    Some(e) => Bound::Excluded(probe(KeyRef { table, partition_key, sort_key: e }, LAST_ID)),
                    None => {
                        Bound::Included(probe(KeyRef { table, partition_key, sort_key: from.unwrap_or(&[]) }, FIRST_ID))
                    }
                };
                let hi = match to {
                    Some(t) => Bound::Included(probe(KeyRef { table, partition_key, sort_key: t }, LAST_ID)),
                    None => Bound::Excluded(partition_end),
                };
                range_refs(index, lo, hi).next()
            };
            let Some(found) = next else { break };
            let sort_key = found.sort_key;
            let group = self.newest_versions_of(KeyRef { table, partition_key, sort_key }, bound);
            if !group.is_empty() {
                groups += 1;
                out.extend(group.into_iter().map(EntryRef::to_owned));
            }
            edge = Some(sort_key.to_vec());
        }
        out
    }

    /// All entries in storage order, for a flush.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        self.arena.borrow_dependent().iter().map(|(k, v)| to_ref(k, v))
    }
}

fn probe<'q>(key: KeyRef<'q>, id: VersionId) -> IndexKey<'q> {
    IndexKey { table: key.table, partition_key: key.partition_key, sort_key: key.sort_key, id }
}

fn to_ref<'a>(k: &IndexKey<'a>, v: &IndexValue<'a>) -> EntryRef<'a> {
    EntryRef {
        table: k.table,
        partition_key: k.partition_key,
        sort_key: k.sort_key,
        id: k.id,
        value: v.value,
        expires_at_ms: v.expires_at_ms,
    }
}

fn range_refs<'s>(
    index: &'s Index<'s>,
    lo: Bound<IndexKey<'s>>,
    hi: Bound<IndexKey<'s>>,
) -> impl DoubleEndedIterator<Item = EntryRef<'s>> {
    index.range((lo, hi)).map(|(k, v)| to_ref(k, v))
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
}
