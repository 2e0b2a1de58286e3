//! The memtable's arena: byte records packed in chunks, each record named by a 4-byte address.
//!
//! An address counts 8-byte units through a virtual space of 64 KiB pages (32 GiB in all);
//! `pages` maps each page to the chunk holding it, so resolving an address is two indexed loads.
//! Chunks start at 64 KiB and double to 1 MiB; a record of 256 KiB or more gets a chunk of its
//! own, rounded up to whole pages, so a large value neither cuts a chunk short nor wastes more
//! than a page of address space. Address 0 is never handed out: links use it for "none".
//!
//! A chunk is a `Vec` whose length is the bytes in use: its capacity past that is address space
//! the kernel has not backed, and is not charged.

use std::num::NonZeroU32;

/// Where a record starts, in 8-byte units.
pub(super) type Addr = NonZeroU32;

/// Records start on 8-byte boundaries.
const UNIT: usize = 8;
const PAGE_BYTES: usize = 64 << 10;
const PAGE_UNITS: u32 = (PAGE_BYTES / UNIT) as u32;
/// Pages the 32-bit address space holds.
const MAX_PAGES: usize = (1usize << 32) / (PAGE_BYTES / UNIT);
const FIRST_CHUNK_BYTES: usize = PAGE_BYTES;
const MAX_CHUNK_BYTES: usize = 1 << 20;
/// A record at least this large gets a chunk of its own.
const OWN_CHUNK_BYTES: usize = MAX_CHUNK_BYTES / 4;

struct Chunk {
    bytes: Vec<u8>,
    first_page: u32,
}

/// Chunks of records, grown and never moved or freed until the memtable is dropped.
pub(super) struct Arena {
    chunks: Vec<Chunk>,
    /// The chunk of each page of the address space handed out so far.
    pages: Vec<u32>,
    /// The chunk small records go to, if any.
    open: Option<usize>,
    /// Bytes of records (with their padding) and of chunk tails left unused.
    used_bytes: usize,
}

impl Arena {
    pub(super) fn new() -> Self {
        Arena { chunks: Vec::new(), pages: Vec::new(), open: None, used_bytes: 0 }
    }

    /// Bytes the records take, with the padding between them and the ends of chunks a record
    /// did not fit in.
    pub(super) fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Room for a record of `len` bytes, zeroed: its address.
    ///
    /// # Panics
    ///
    /// When the address space (32 GiB) is exhausted; the memtable ceiling keeps a memtable far
    /// below that.
    pub(super) fn alloc(&mut self, len: usize) -> Addr {
        let len = len.next_multiple_of(UNIT);
        let chunk = match self.open {
            _ if len >= OWN_CHUNK_BYTES => self.new_chunk(len.next_multiple_of(PAGE_BYTES)),
            Some(open) if self.chunks[open].bytes.capacity() - self.chunks[open].bytes.len() >= len => open,
            previous => {
                let size =
                    previous.map_or(FIRST_CHUNK_BYTES, |p| (self.chunks[p].bytes.capacity() * 2).min(MAX_CHUNK_BYTES));
                if let Some(p) = previous {
                    let chunk = &self.chunks[p].bytes;
                    self.used_bytes += chunk.capacity() - chunk.len();
                }
                let chunk = self.new_chunk(size);
                self.open = Some(chunk);
                chunk
            }
        };
        let Chunk { bytes, first_page } = &mut self.chunks[chunk];
        let offset = bytes.len();
        bytes.resize(offset + len, 0);
        self.used_bytes += len;
        let unit = *first_page * PAGE_UNITS + u32::try_from(offset / UNIT).expect("a chunk under 32 GiB");
        Addr::new(unit).expect("address 0 is reserved")
    }

    /// A chunk of `size` bytes (whole pages) at the end of the address space: its index.
    fn new_chunk(&mut self, size: usize) -> usize {
        let pages = size / PAGE_BYTES;
        assert!(self.pages.len() + pages <= MAX_PAGES, "a memtable's arena is limited to 32 GiB");
        let index = self.chunks.len();
        let first_page = u32::try_from(self.pages.len()).expect("under 2^32 pages");
        self.pages.extend(std::iter::repeat_n(u32::try_from(index).expect("under 2^32 chunks"), pages));
        let mut bytes = Vec::with_capacity(size);
        if index == 0 {
            // Address 0 stands for "none".
            bytes.resize(UNIT, 0);
            self.used_bytes += UNIT;
        }
        self.chunks.push(Chunk { bytes, first_page });
        index
    }

    fn locate(&self, at: Addr) -> (usize, usize) {
        let unit = at.get();
        let chunk = self.pages[(unit / PAGE_UNITS) as usize] as usize;
        let offset = (unit - self.chunks[chunk].first_page * PAGE_UNITS) as usize * UNIT;
        (chunk, offset)
    }

    /// The bytes from the record at `at` to the end of its chunk's records.
    pub(super) fn bytes(&self, at: Addr) -> &[u8] {
        let (chunk, offset) = self.locate(at);
        &self.chunks[chunk].bytes[offset..]
    }

    /// Loads the first byte of the record at `at` and drops it, so the record is on its way into
    /// the cache while the caller goes on: nothing waits on the load, so the caller's next cache
    /// miss overlaps this one. (The prefetch instruction itself needs `unsafe`, which this crate
    /// forbids.)
    pub(super) fn prefetch(&self, at: Addr) {
        std::hint::black_box(self.bytes(at)[0]);
    }

    /// [`Arena::bytes`], to write.
    pub(super) fn bytes_mut(&mut self, at: Addr) -> &mut [u8] {
        let (chunk, offset) = self.locate(at);
        &mut self.chunks[chunk].bytes[offset..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_keep_their_bytes_whatever_their_size_and_the_space_is_counted() {
        let mut arena = Arena::new();
        let mut rng = fastrand::Rng::with_seed(11);
        let mut records = Vec::new();
        let mut expected_min = UNIT;
        for i in 0..3_000usize {
            let len = match i % 500 {
                0 => rng.usize(OWN_CHUNK_BYTES..3 * MAX_CHUNK_BYTES),
                _ => rng.usize(1..2_000),
            };
            let at = arena.alloc(len);
            let fill = (i % 251) as u8;
            arena.bytes_mut(at)[..len].fill(fill);
            records.push((at, len, fill));
            expected_min += len.next_multiple_of(UNIT);
        }
        for &(at, len, fill) in &records {
            assert!(arena.bytes(at)[..len].iter().all(|&b| b == fill), "record at {at} of {len} bytes");
        }
        let addresses: std::collections::BTreeSet<_> = records.iter().map(|r| r.0).collect();
        assert_eq!(addresses.len(), records.len(), "every record has its own address");
        assert!(arena.used_bytes() >= expected_min);
        assert!(arena.used_bytes() < expected_min + expected_min / 4, "{} used for {expected_min}", arena.used_bytes());
    }
}
