//! Reads one segment through the I/O seam and a block cache: opens and verifies the footer,
//! index, bloom and metadata, then serves point lookups, partition scans, whole-block reads
//! for compaction, and the unsealing and decoding of blocks a caller read itself (link
//! validation reads whole files in large chunks). Every block is checked against its checksum
//! before use; nothing unverified reaches a caller.

use super::block::{self, BlockKind};
use super::bloom::{self, Bloom};
use super::footer::Footer;
use super::index::{self, IndexEntry};
use super::info::{SegmentInfo, SegmentKind};
use crate::block_cache::BlockCache;
use crate::codec::{self, Decoder, EntryLayout};
use crate::error::{Error, Result};
use crate::ids::{TableId, Ts};
use crate::io::{ALIGN, DiskFile};
use crate::record::{Entry, EntryRef, KeyRef, PartitionRange};
use crate::version::VersionId;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const FIRST_ID: VersionId = VersionId::FIRST_IN_STORAGE;

/// One key's versions at one `ts`, as a point read takes them from a segment: nearly always one,
/// so on the stack.
pub type NewestGroup = smallvec::SmallVec<[crate::version::Version; 2]>;
const LAST_ID: VersionId = VersionId::LAST_IN_STORAGE;

/// An open, verified segment.
pub struct SegmentReader<F: DiskFile> {
    file: F,
    path: PathBuf,
    info: SegmentInfo,
    index: Vec<IndexEntry>,
    bloom: Bloom,
    /// How its data blocks lay out entries, by its format version.
    entries: EntryLayout,
}

impl<F: DiskFile> std::fmt::Debug for SegmentReader<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader").field("path", &self.path).field("info", &self.info).finish()
    }
}

/// Entries read from a range of a segment.
#[derive(Debug, Default)]
pub struct RangeRead {
    /// Entries in storage order (or by descending sort key when reversed; versions of one sort
    /// key newest first either way).
    pub entries: Vec<Entry>,
    /// True if the read stopped at its sort-key cap and more may follow.
    pub truncated: bool,
}

impl<F: DiskFile> SegmentReader<F> {
    /// Opens the segment at `path` and checks it against `expected`, the summary its manifest
    /// (or load descriptor) recorded.
    pub async fn open(file: F, path: &Path, expected: &SegmentInfo) -> Result<Self> {
        let corrupt = |offset, reason| Error::Corrupt { file: path.to_path_buf(), offset, reason };
        let size = expected.size_bytes;
        if size < 4 * ALIGN as u64 || !size.is_multiple_of(ALIGN as u64) {
            return Err(corrupt(0, "segment length is not a whole number of pages"));
        }
        if file.size().await? < size {
            return Err(corrupt(size, "segment file is shorter than its recorded length"));
        }
        let footer_offset = size - ALIGN as u64;
        let buf = file.read_at(footer_offset, ALIGN).await?;
        let payload = block::unseal(buf.as_slice(), BlockKind::Footer, path, footer_offset)?;
        let footer = Footer::decode(&mut Decoder::new(payload)).map_err(|e| corrupt(footer_offset, e.reason))?;
        let Some(entries) = super::entry_layout(footer.format_version) else {
            return Err(Error::UnsupportedFormatVersion {
                file: path.to_path_buf(),
                found: footer.format_version,
                supported: super::FORMAT_VERSION,
            });
        };
        for h in [footer.index, footer.bloom, footer.meta] {
            if h.offset % ALIGN as u64 != 0
                || !(h.len as usize).is_multiple_of(ALIGN)
                || h.len == 0
                || h.offset + u64::from(h.len) > footer_offset
            {
                return Err(corrupt(footer_offset, "footer points outside the segment"));
            }
        }
        let meta = read_block(&file, path, footer.meta, BlockKind::Meta).await?;
        let info = SegmentInfo::decode(&mut Decoder::new(&meta)).map_err(|e| corrupt(footer.meta.offset, e.reason))?;
        // A bulk segment is written offline with id 0; the partition gives it its id at link.
        let matches = match expected.kind {
            SegmentKind::Bulk => SegmentInfo { id: expected.id, ..info } == *expected,
            _ => info == *expected,
        };
        if !matches {
            return Err(corrupt(footer.meta.offset, "segment metadata differs from the manifest's record"));
        }
        let info = expected.clone();
        let index_bytes = read_block(&file, path, footer.index, BlockKind::Index).await?;
        let index =
            index::decode(&mut Decoder::new(&index_bytes)).map_err(|e| corrupt(footer.index.offset, e.reason))?;
        if index.len() != footer.data_block_count as usize || index.is_empty() {
            return Err(corrupt(footer.index.offset, "index block count differs from the footer"));
        }
        let mut next = 0;
        for e in &index {
            if e.offset != next || !(e.len as usize).is_multiple_of(ALIGN) || e.len == 0 {
                return Err(corrupt(footer.index.offset, "index entries do not tile the data region"));
            }
            next = e.offset + u64::from(e.len);
        }
        if next != footer.index.offset {
            return Err(corrupt(footer.index.offset, "index entries do not tile the data region"));
        }
        let bloom_bytes = read_block(&file, path, footer.bloom, BlockKind::Bloom).await?;
        let bloom =
            Bloom::decode(&mut Decoder::new(&bloom_bytes)).map_err(|e| corrupt(footer.bloom.offset, e.reason))?;
        Ok(SegmentReader { file, path: path.to_path_buf(), info, index, bloom, entries })
    }

    /// Opens the segment at `path`, `size` bytes long, trusting the summary its own metadata
    /// block holds: for a file whose whole-file checksum was checked (a bulk load's).
    pub async fn open_as_written(file: F, path: &Path, size: u64) -> Result<Self> {
        let corrupt = |offset, reason| Error::Corrupt { file: path.to_path_buf(), offset, reason };
        if size < 4 * ALIGN as u64 || !size.is_multiple_of(ALIGN as u64) {
            return Err(corrupt(0, "segment length is not a whole number of pages"));
        }
        let footer_offset = size - ALIGN as u64;
        let buf = file.read_at(footer_offset, ALIGN).await?;
        let payload = block::unseal(buf.as_slice(), BlockKind::Footer, path, footer_offset)?;
        let footer = Footer::decode(&mut Decoder::new(payload)).map_err(|e| corrupt(footer_offset, e.reason))?;
        if footer.meta.offset + u64::from(footer.meta.len) > footer_offset || footer.meta.len == 0 {
            return Err(corrupt(footer_offset, "footer points outside the segment"));
        }
        let meta = read_block(&file, path, footer.meta, BlockKind::Meta).await?;
        let info = SegmentInfo::decode(&mut Decoder::new(&meta)).map_err(|e| corrupt(footer.meta.offset, e.reason))?;
        if info.size_bytes != size {
            return Err(corrupt(footer.meta.offset, "segment metadata records another length"));
        }
        Self::open(file, path, &info).await
    }

    /// The segment's summary.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.index.len()
    }

    /// Bytes held in memory by the index and bloom filter.
    pub fn pinned_bytes(&self) -> usize {
        self.index.iter().map(|e| 64 + e.last_partition_key.len() + e.last_sort_key.len()).sum::<usize>()
    }

    /// Reads and verifies data block `i`, through `cache` if given.
    pub async fn block(&self, i: usize, cache: Option<&RefCell<BlockCache>>) -> Result<Rc<[u8]>> {
        let no = u32::try_from(i).expect("under 4G blocks");
        if let Some(hit) = cache.and_then(|c| c.borrow_mut().get(self.info.id, no)) {
            return Ok(hit);
        }
        let h = &self.index[i];
        let buf = self.file.read_at(h.offset, h.len as usize).await?;
        let payload: Rc<[u8]> = Rc::from(block::unseal(buf.as_slice(), BlockKind::Data, &self.path, h.offset)?);
        if let Some(c) = cache {
            c.borrow_mut().insert(self.info.id, no, payload.clone());
        }
        Ok(payload)
    }

    /// The payloads of blocks `first..` up to about `max_bytes` of them (at least one block), read
    /// with one I/O and without the cache: the merge's read-ahead.
    pub async fn blocks_from(&self, first: usize, max_bytes: usize) -> Result<Vec<Rc<[u8]>>> {
        let start = self.index[first].offset;
        let mut end = first + 1;
        while end < self.index.len()
            && (self.index[end].offset + u64::from(self.index[end].len) - start) as usize <= max_bytes
        {
            end += 1;
        }
        let last = &self.index[end - 1];
        let len = (last.offset + u64::from(last.len) - start) as usize;
        let buf = self.file.read_at(start, len).await?;
        let bytes = buf.as_slice();
        self.index[first..end]
            .iter()
            .map(|h| {
                let at = (h.offset - start) as usize;
                let sealed = bytes.get(at..at + h.len as usize).ok_or_else(|| Error::Corrupt {
                    file: self.path.clone(),
                    offset: h.offset,
                    reason: "block beyond the read",
                })?;
                Ok(Rc::from(block::unseal(sealed, BlockKind::Data, &self.path, h.offset)?))
            })
            .collect()
    }

    /// Decodes a block payload's entries.
    pub fn decode_block<'a>(&self, i: usize, payload: &'a [u8]) -> Result<Vec<EntryRef<'a>>> {
        let entries = self.block_entries(i, payload)?;
        let mut out = Vec::with_capacity(entries.left);
        for e in entries {
            out.push(e?);
        }
        Ok(out)
    }

    /// Where data block `i` sits in the file: its offset and framed length.
    pub fn block_extent(&self, i: usize) -> (u64, usize) {
        (self.index[i].offset, self.index[i].len as usize)
    }

    /// Verifies data block `i` in `sealed`, its framed bytes as the caller read them from
    /// [`Self::block_extent`], and returns its payload: [`Self::block`] without the read, for a
    /// caller reading the file in large chunks itself (link validation).
    pub fn unseal_block<'a>(&self, i: usize, sealed: &'a [u8]) -> Result<&'a [u8]> {
        let (offset, len) = self.block_extent(i);
        if sealed.len() != len {
            return Err(Error::Corrupt {
                file: self.path.clone(),
                offset,
                reason: "block length differs from the index",
            });
        }
        block::unseal(sealed, BlockKind::Data, &self.path, offset)
    }

    /// The entries of data block `i`'s payload, decoded one at a time as they are taken:
    /// [`Self::decode_block`] without collecting them. After the last entry the iterator checks
    /// that the payload holds nothing more.
    pub fn block_entries<'a>(&self, i: usize, payload: &'a [u8]) -> Result<BlockEntries<'a, '_>> {
        let offset = self.index[i].offset;
        let mut dec = Decoder::new(payload);
        let left = dec.count(self.entries.min_bytes()).map_err(|e| Error::Corrupt {
            file: self.path.clone(),
            offset,
            reason: e.reason,
        })?;
        Ok(BlockEntries { dec, left, layout: self.entries, path: &self.path, offset, done: false })
    }

    /// Every version of `key` held here, in storage order.
    pub async fn versions_of(&self, key: KeyRef<'_>, cache: &RefCell<BlockCache>) -> Result<Vec<Entry>> {
        if key < self.info.min_key.as_ref()
            || key > self.info.max_key.as_ref()
            || !self.bloom.may_contain(bloom::key_hash(key))
        {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut i = index::first_block_at_or_after(&self.index, key, &FIRST_ID);
        while i < self.index.len() {
            let payload = self.block(i, Some(cache)).await?;
            let offset = self.index[i].offset;
            let corrupt = |reason| Error::Corrupt { file: self.path.clone(), offset, reason };
            // Decode lazily and stop at the first greater key: most of a block is never needed.
            let mut dec = Decoder::new(&payload);
            let count = dec.count(self.entries.min_bytes()).map_err(|e| corrupt(e.reason))?;
            for _ in 0..count {
                let e = codec::decode_entry_in(&mut dec, self.entries).map_err(|e| corrupt(e.reason))?;
                match e.key().cmp(&key) {
                    std::cmp::Ordering::Less => {}
                    std::cmp::Ordering::Equal => out.push(e.to_owned()),
                    std::cmp::Ordering::Greater => return Ok(out),
                }
            }
            i += 1;
        }
        Ok(out)
    }

    /// The versions of `key` held here at the greatest `ts` at or below `bound`: all a point
    /// read needs, found by seeking to `bound` and reading only that group.
    pub async fn newest_versions_of(
        &self,
        key: KeyRef<'_>,
        bound: Ts,
        cache: &RefCell<BlockCache>,
    ) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.walk_newest(key, bound, cache, |e| out.push(e.to_owned())).await?;
        Ok(out)
    }

    /// [`SegmentReader::newest_versions_of`] without their key (the caller has it): a point
    /// read copies only the payloads, onto the stack while they are one or two.
    pub async fn newest_payloads_of(
        &self,
        key: KeyRef<'_>,
        bound: Ts,
        cache: &RefCell<BlockCache>,
    ) -> Result<NewestGroup> {
        let mut out = NewestGroup::new();
        self.walk_newest(key, bound, cache, |e| out.push(e.version())).await?;
        Ok(out)
    }

    /// [`SegmentReader::newest_payloads_of`] when every block it needs is cached, without I/O;
    /// `None` as soon as one is not (nothing is counted as a miss: the read that follows does).
    pub fn newest_payloads_cached(
        &self,
        key: KeyRef<'_>,
        bound: Ts,
        cache: &RefCell<BlockCache>,
    ) -> Option<Result<NewestGroup>> {
        let mut out = NewestGroup::new();
        let mut group = None;
        let Some(mut i) = self.first_block_for(key, bound) else { return Some(Ok(out)) };
        while i < self.index.len() {
            let payload = cache.borrow_mut().hit(self.info.id, u32::try_from(i).expect("under 4G blocks"))?;
            match self.collect_newest(i, &payload, key, bound, &mut group, &mut |e| out.push(e.version())) {
                Ok(false) => i += 1,
                Ok(true) => break,
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(out))
    }

    /// Hands `keep` the versions of `key` in the newest group at or below `bound`, in storage
    /// order, reading blocks through `cache`.
    async fn walk_newest(
        &self,
        key: KeyRef<'_>,
        bound: Ts,
        cache: &RefCell<BlockCache>,
        mut keep: impl FnMut(EntryRef<'_>),
    ) -> Result<()> {
        let mut group = None;
        let Some(mut i) = self.first_block_for(key, bound) else { return Ok(()) };
        while i < self.index.len()
            && !self.collect_newest(i, &self.block(i, Some(cache)).await?, key, bound, &mut group, &mut keep)?
        {
            i += 1;
        }
        Ok(())
    }

    /// The first block that may hold `key`'s versions at or below `bound`, or `None` when the
    /// key range or the bloom filter rules the segment out.
    fn first_block_for(&self, key: KeyRef<'_>, bound: Ts) -> Option<usize> {
        if key < self.info.min_key.as_ref()
            || key > self.info.max_key.as_ref()
            || !self.bloom.may_contain(bloom::key_hash(key))
        {
            return None;
        }
        Some(index::first_block_at_or_after(&self.index, key, &VersionId { ts: bound, ..FIRST_ID }))
    }

    /// Hands `keep` block `i`'s versions of `key` in the newest group at or below `bound`
    /// (`payload` is the block's payload; `group` is the group's `ts` once found); true once the
    /// group is whole (a later block cannot add to it).
    fn collect_newest(
        &self,
        i: usize,
        payload: &[u8],
        key: KeyRef<'_>,
        bound: Ts,
        group: &mut Option<Ts>,
        keep: &mut impl FnMut(EntryRef<'_>),
    ) -> Result<bool> {
        let offset = self.index[i].offset;
        let corrupt = |reason| Error::Corrupt { file: self.path.clone(), offset, reason };
        let mut dec = Decoder::new(payload);
        let count = dec.count(self.entries.min_bytes()).map_err(|e| corrupt(e.reason))?;
        for _ in 0..count {
            let e = codec::decode_entry_in(&mut dec, self.entries).map_err(|e| corrupt(e.reason))?;
            match e.key().cmp(&key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Greater => return Ok(true),
                std::cmp::Ordering::Equal if e.id.ts > bound => {}
                std::cmp::Ordering::Equal => match *group {
                    Some(ts) if ts != e.id.ts => return Ok(true),
                    _ => {
                        *group = Some(e.id.ts);
                        keep(e);
                    }
                },
            }
        }
        Ok(false)
    }

    /// Entries of `range` held here, in the order [`RangeRead`] describes: of each sort key
    /// its versions at the greatest `ts` within `range.bound`. Seeks through the index from one
    /// sort key to the next, so a row with many versions costs no more than one with few.
    pub async fn scan_partition(&self, range: &PartitionRange<'_>, cache: &RefCell<BlockCache>) -> Result<RangeRead> {
        let PartitionRange { table, partition_key, max_sort_keys, bound, .. } = *range;
        if (table, partition_key) > (self.info.max_key.table, self.info.max_key.partition_key.as_slice())
            || (table, partition_key) < (self.info.min_key.table, self.info.min_key.partition_key.as_slice())
            || !self.bloom.may_contain(bloom::prefix_hash(table, partition_key))
            || self.index.is_empty()
        {
            return Ok(RangeRead::default());
        }
        let mut entries = Vec::new();
        let mut groups = 0;
        let mut edge: Option<Vec<u8>> = None;
        loop {
            let next = if range.reverse {
                self.sort_key_before(range, edge.as_deref(), cache).await?
            } else {
                self.sort_key_after(range, edge.as_deref(), cache).await?
            };
            let Some(sort_key) = next else { return Ok(RangeRead { entries, truncated: false }) };
            let group =
                self.newest_versions_of(KeyRef { table, partition_key, sort_key: &sort_key }, bound, cache).await?;
            if !group.is_empty() {
                if groups == max_sort_keys {
                    return Ok(RangeRead { entries, truncated: true });
                }
                groups += 1;
                entries.extend(group);
            }
            edge = Some(sort_key);
        }
    }

    /// The smallest sort key of `range`'s partition key held here after `edge` (at or after
    /// `range.from` when there is no edge yet), within `range.to`.
    async fn sort_key_after(
        &self,
        range: &PartitionRange<'_>,
        edge: Option<&[u8]>,
        cache: &RefCell<BlockCache>,
    ) -> Result<Option<Vec<u8>>> {
        let PartitionRange { table, partition_key, from, to, .. } = *range;
        let (sort_key, id) = match edge {
            Some(e) => (e, LAST_ID),
            None => (from.unwrap_or(&[]), FIRST_ID),
        };
        let mut i = index::first_block_at_or_after(&self.index, KeyRef { table, partition_key, sort_key }, &id);
        while i < self.index.len() {
            let payload = self.block(i, Some(cache)).await?;
            for e in self.decode_block(i, &payload)? {
                match (e.table, e.partition_key).cmp(&(table, partition_key)) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Greater => return Ok(None),
                    std::cmp::Ordering::Equal => {}
                }
                let before = match edge {
                    Some(ed) => e.sort_key <= ed,
                    None => from.is_some_and(|f| e.sort_key < f),
                };
                if before {
                    continue;
                }
                if to.is_some_and(|t| e.sort_key > t) {
                    return Ok(None);
                }
                return Ok(Some(e.sort_key.to_vec()));
            }
            i += 1;
        }
        Ok(None)
    }

    /// The greatest sort key of `range`'s partition key held here before `edge` (at or before
    /// `range.to` when there is no edge yet), within `range.from`.
    async fn sort_key_before(
        &self,
        range: &PartitionRange<'_>,
        edge: Option<&[u8]>,
        cache: &RefCell<BlockCache>,
    ) -> Result<Option<Vec<u8>>> {
        let PartitionRange { table, partition_key, from, to, .. } = *range;
        let after_partition = [partition_key, &[0u8]].concat();
        let target = match (edge, to) {
            (Some(e), _) => KeyRef { table, partition_key, sort_key: e },
            (None, Some(t)) => KeyRef { table, partition_key, sort_key: t },
            (None, None) => KeyRef { table, partition_key: &after_partition, sort_key: &[] },
        };
        let id = if edge.is_none() && to.is_some() { LAST_ID } else { FIRST_ID };
        let mut i = index::first_block_at_or_after(&self.index, target, &id).min(self.index.len() - 1);
        loop {
            let payload = self.block(i, Some(cache)).await?;
            for e in self.decode_block(i, &payload)?.iter().rev() {
                match (e.table, e.partition_key).cmp(&(table, partition_key)) {
                    std::cmp::Ordering::Greater => continue,
                    std::cmp::Ordering::Less => return Ok(None),
                    std::cmp::Ordering::Equal => {}
                }
                let after = match (edge, to) {
                    (Some(ed), _) => e.sort_key >= ed,
                    (None, Some(t)) => e.sort_key > t,
                    (None, None) => false,
                };
                if after {
                    continue;
                }
                if from.is_some_and(|f| e.sort_key < f) {
                    return Ok(None);
                }
                return Ok(Some(e.sort_key.to_vec()));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    /// Entries of table `table` whose partition key is after `after` (from the table's first
    /// when `None`), in storage order, up to `max_partition_keys` whole partition keys;
    /// `truncated` when the cap stopped the read.
    pub async fn scan_table(
        &self,
        table: TableId,
        after: Option<&[u8]>,
        max_partition_keys: usize,
        cache: &RefCell<BlockCache>,
    ) -> Result<RangeRead> {
        let start = after.map(|a| [a, &[0u8]].concat()).unwrap_or_default();
        let lo = KeyRef { table, partition_key: &start, sort_key: &[] };
        if table > self.info.max_key.table || table < self.info.min_key.table || self.index.is_empty() {
            return Ok(RangeRead::default());
        }
        let mut entries: Vec<Entry> = Vec::new();
        let mut keys = 0;
        let first = index::first_block_at_or_after(&self.index, lo, &FIRST_ID);
        for i in first..self.index.len() {
            let payload = self.block(i, Some(cache)).await?;
            for e in self.decode_block(i, &payload)? {
                if e.table < table || (e.table == table && e.partition_key < start.as_slice()) {
                    continue;
                }
                if e.table > table {
                    return Ok(RangeRead { entries, truncated: false });
                }
                if entries.last().is_none_or(|last| last.key.partition_key != e.partition_key) {
                    if keys == max_partition_keys {
                        return Ok(RangeRead { entries, truncated: true });
                    }
                    keys += 1;
                }
                entries.push(e.to_owned());
            }
        }
        Ok(RangeRead { entries, truncated: false })
    }
}

/// The entries of one data block, decoded lazily ([`SegmentReader::block_entries`]): each item
/// an entry or the error that ends the block.
#[derive(Debug)]
pub struct BlockEntries<'a, 'r> {
    dec: Decoder<'a>,
    left: usize,
    layout: EntryLayout,
    path: &'r Path,
    offset: u64,
    done: bool,
}

impl<'a> Iterator for BlockEntries<'a, '_> {
    type Item = Result<EntryRef<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let step = if self.left == 0 {
            self.done = true;
            match self.dec.finish() {
                Ok(()) => return None,
                Err(e) => Err(e),
            }
        } else {
            self.left -= 1;
            codec::decode_entry_in(&mut self.dec, self.layout)
        };
        Some(step.map_err(|e| {
            self.done = true;
            Error::Corrupt { file: self.path.to_path_buf(), offset: self.offset, reason: e.reason }
        }))
    }
}

async fn read_block<F: DiskFile>(
    file: &F,
    path: &Path,
    h: super::footer::BlockHandle,
    kind: BlockKind,
) -> Result<Vec<u8>> {
    let buf = file.read_at(h.offset, h.len as usize).await?;
    block::unseal(buf.as_slice(), kind, path, h.offset).map(<[u8]>::to_vec)
}
