//! The builder's in-memory run: a sink's entries (all of one table) encoded back to back in one
//! arena (the entry encoding of spill runs, FORMAT.md "Entry", fixed layout), and one small slot
//! per entry that the sort moves instead of the entries. A slot carries the entry's partition and
//! the first sixteen bytes of its partition key, so most comparisons are integer comparisons;
//! keys that share that prefix are compared whole, straight from the arena, and only entries of
//! one key are decoded to compare their versions. No entry is a heap allocation of its own.

use crate::codec::{self, Decoder, Encoder};
use crate::record::EntryRef;
use std::ops::Range;

/// Bytes a slot takes, for memory accounting.
pub const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// Where one entry is, and what it sorts by first.
#[derive(Debug, Clone, Copy)]
struct Slot {
    partition: u32,
    len: u32,
    /// The partition key's first sixteen bytes, big-endian, zero-padded: ordered as the keys
    /// are wherever they differ.
    prefix: [u64; 2],
    offset: usize,
}

/// Encoded entries and their slots.
#[derive(Default)]
pub struct RunBuffer {
    arena: Encoder,
    slots: Vec<Slot>,
}

fn prefix_of(partition_key: &[u8]) -> [u64; 2] {
    let mut bytes = [0u8; 16];
    let n = partition_key.len().min(16);
    bytes[..n].copy_from_slice(&partition_key[..n]);
    let (high, low) = bytes.split_at(8);
    [u64::from_be_bytes(high.try_into().expect("8 bytes")), u64::from_be_bytes(low.try_into().expect("8 bytes"))]
}

impl RunBuffer {
    /// An empty buffer with room for `arena_bytes` of encoded entries and `slots` entries, so
    /// that filling it up to its budget does not double a vector past it. (Pages are only
    /// touched as entries arrive.)
    pub fn with_capacity(arena_bytes: usize, slots: usize) -> Self {
        RunBuffer { arena: Encoder::new(Vec::with_capacity(arena_bytes)), slots: Vec::with_capacity(slots) }
    }

    /// Appends `e`, of `partition`.
    pub fn push(&mut self, partition: u32, e: EntryRef<'_>) {
        let offset = self.arena.bytes.len();
        codec::encode_entry_parts(&mut self.arena, e);
        let len = u32::try_from(self.arena.bytes.len() - offset).expect("limits bound an entry below 4 GiB");
        self.slots.push(Slot { partition, len, prefix: prefix_of(e.partition_key), offset });
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True if it holds none.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Memory it takes: the encoded entries and their slots.
    pub fn bytes(&self) -> usize {
        self.arena.bytes.len() + self.slots.len() * SLOT_BYTES
    }

    fn encoded_at(&self, slot: &Slot) -> &[u8] {
        &self.arena.bytes[slot.offset..slot.offset + slot.len as usize]
    }

    fn entry_at(&self, slot: &Slot) -> EntryRef<'_> {
        codec::decode_entry(&mut Decoder::new(self.encoded_at(slot))).expect("the buffer decodes what it encoded")
    }

    /// Sorts the entries by partition, then storage order.
    pub fn sort(&mut self) {
        let RunBuffer { arena, slots } = self;
        let entry = |s: &Slot| {
            codec::decode_entry(&mut Decoder::new(&arena.bytes[s.offset..s.offset + s.len as usize]))
                .expect("the buffer decodes what it encoded")
        };
        slots.sort_unstable_by(|a, b| {
            a.partition.cmp(&b.partition).then(a.prefix.cmp(&b.prefix)).then_with(|| entry(a).storage_cmp(&entry(b)))
        });
    }

    /// Each partition's range of entry numbers, in order (after [`RunBuffer::sort`]).
    pub fn sections(&self) -> Vec<(u32, Range<usize>)> {
        let mut sections = Vec::new();
        let mut start = 0;
        for i in 1..=self.slots.len() {
            if i == self.slots.len() || self.slots[i].partition != self.slots[start].partition {
                sections.push((self.slots[start].partition, start..i));
                start = i;
            }
        }
        sections
    }

    /// Entry number `i`.
    pub fn entry(&self, i: usize) -> EntryRef<'_> {
        self.entry_at(&self.slots[i])
    }

    /// Entry number `i` as encoded, and its partition.
    pub fn encoded(&self, i: usize) -> (u32, &[u8]) {
        let slot = &self.slots[i];
        (slot.partition, self.encoded_at(slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TableId, Ts};
    use crate::version::{Origin, OriginKind, VersionId};

    fn entry(pk: &'static [u8], seq: u64) -> EntryRef<'static> {
        EntryRef {
            table: TableId(1),
            partition_key: pk,
            sort_key: b"",
            id: VersionId { ts: Ts(5), origin: Origin { kind: OriginKind::Bulk, source_id: 0, seq } },
            value: Some(b"v"),
            expires_at_ms: None,
        }
    }

    #[test]
    fn sorting_orders_by_partition_then_storage_order_also_past_the_prefix() {
        let mut b = RunBuffer::default();
        // Keys that share the sixteen-byte prefix, one that is a prefix of another, a zero byte
        // where the padding is, one key twice, and a second partition.
        let keys: [(u32, &'static [u8]); 9] = [
            (1, b"zz"),
            (0, b"abcdefgh01234567-2"),
            (0, b"abcdefgh01234567-10"),
            (0, b"ab"),
            (0, b"ab\0"),
            (0, b"abcdefgh01234567"),
            (0, b"abcdefgh"),
            (1, b"a"),
            (1, b"a"),
        ];
        for (n, (partition, key)) in keys.iter().enumerate() {
            b.push(*partition, entry(key, n as u64));
        }
        b.sort();
        let got: Vec<(u32, &[u8], u64)> =
            (0..b.len()).map(|i| (b.encoded(i).0, b.entry(i).partition_key, b.entry(i).id.origin.seq)).collect();
        // Storage order puts the newer of equal keys' versions first: here the greater seq.
        let mut want: Vec<(u32, &[u8], u64)> = keys.iter().enumerate().map(|(n, (p, k))| (*p, *k, n as u64)).collect();
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)).then(b.2.cmp(&a.2)));
        assert_eq!(got, want);
        assert_eq!(b.sections(), vec![(0, 0..6), (1, 6..9)]);
    }
}
