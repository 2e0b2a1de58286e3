//! Reads one segment through the I/O seam and a block cache: opens and verifies the footer,
//! index, bloom and metadata, then serves point lookups, partition scans and whole-block reads
//! for compaction. Every block is checked against its checksum before use; nothing unverified
//! reaches a caller.

use super::block::{self, BlockKind};
use super::bloom::{self, Bloom};
use super::footer::Footer;
use super::index::{self, IndexEntry};
use super::info::SegmentInfo;
use crate::block_cache::BlockCache;
use crate::codec::{self, Decoder};
use crate::error::{Error, Result};
use crate::ids::TableId;
use crate::io::{ALIGN, DiskFile};
use crate::record::{Entry, EntryRef, KeyRef, PartitionRange};
use crate::version::VersionId;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const FIRST_ID: VersionId = VersionId::FIRST_IN_STORAGE;
const LAST_ID: VersionId = VersionId::LAST_IN_STORAGE;

/// An open, verified segment.
pub struct SegmentReader<F: DiskFile> {
    file: F,
    path: PathBuf,
    info: SegmentInfo,
    index: Vec<IndexEntry>,
    bloom: Bloom,
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
        if footer.format_version != super::FORMAT_VERSION {
            return Err(Error::UnsupportedFormatVersion {
                file: path.to_path_buf(),
                found: footer.format_version,
                supported: super::FORMAT_VERSION,
            });
        }
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
        if &info != expected {
            return Err(corrupt(footer.meta.offset, "segment metadata differs from the manifest's record"));
        }
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
        Ok(SegmentReader { file, path: path.to_path_buf(), info, index, bloom })
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

    /// Decodes a block payload's entries.
    pub fn decode_block<'a>(&self, i: usize, payload: &'a [u8]) -> Result<Vec<EntryRef<'a>>> {
        let offset = self.index[i].offset;
        let corrupt = |reason| Error::Corrupt { file: self.path.clone(), offset, reason };
        let mut dec = Decoder::new(payload);
        let count = dec.count(codec::ENTRY_FIXED_BYTES).map_err(|e| corrupt(e.reason))?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(codec::decode_entry(&mut dec).map_err(|e| corrupt(e.reason))?);
        }
        dec.finish().map_err(|e| corrupt(e.reason))?;
        Ok(out)
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
            let count = dec.count(codec::ENTRY_FIXED_BYTES).map_err(|e| corrupt(e.reason))?;
            for _ in 0..count {
                let e = codec::decode_entry(&mut dec).map_err(|e| corrupt(e.reason))?;
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

    /// Entries of `range` held here, in the order [`RangeRead`] describes.
    pub async fn scan_partition(&self, range: &PartitionRange<'_>, cache: &RefCell<BlockCache>) -> Result<RangeRead> {
        let PartitionRange { table, partition_key, from, to, reverse, max_sort_keys } = *range;
        let lo = KeyRef { table, partition_key, sort_key: from.unwrap_or(&[]) };
        let before_range = |e: &EntryRef<'_>| {
            (e.table, e.partition_key) < (table, partition_key)
                || ((e.table, e.partition_key) == (table, partition_key) && from.is_some_and(|f| e.sort_key < f))
        };
        let after_range = |e: &EntryRef<'_>| {
            (e.table, e.partition_key) > (table, partition_key)
                || ((e.table, e.partition_key) == (table, partition_key) && to.is_some_and(|t| e.sort_key > t))
        };
        if (table, partition_key) > (self.info.max_key.table, self.info.max_key.partition_key.as_slice())
            || (table, partition_key) < (self.info.min_key.table, self.info.min_key.partition_key.as_slice())
            || !self.bloom.may_contain(bloom::prefix_hash(table, partition_key))
        {
            return Ok(RangeRead::default());
        }
        let mut groups: Vec<Vec<Entry>> = Vec::new();
        let mut truncated = false;
        let start = index::first_block_at_or_after(&self.index, lo, &FIRST_ID);
        let order: Box<dyn Iterator<Item = usize>> = if reverse {
            let after = [partition_key, &[0u8]].concat();
            let hi_block = match to {
                Some(t) => {
                    index::first_block_at_or_after(&self.index, KeyRef { table, partition_key, sort_key: t }, &LAST_ID)
                }
                None => index::first_block_at_or_after(
                    &self.index,
                    KeyRef { table, partition_key: &after, sort_key: &[] },
                    &FIRST_ID,
                ),
            };
            Box::new((start..=hi_block.min(self.index.len() - 1)).rev())
        } else {
            Box::new(start..self.index.len())
        };
        'blocks: for i in order {
            let payload = self.block(i, Some(cache)).await?;
            let entries = self.decode_block(i, &payload)?;
            let iter: Box<dyn Iterator<Item = &EntryRef<'_>>> =
                if reverse { Box::new(entries.iter().rev()) } else { Box::new(entries.iter()) };
            for e in iter {
                let (skip, stop) =
                    if reverse { (after_range(e), before_range(e)) } else { (before_range(e), after_range(e)) };
                if stop {
                    break 'blocks;
                }
                if skip {
                    continue;
                }
                let same = groups.last().is_some_and(|g| g[0].key.sort_key == e.sort_key);
                if !same {
                    if groups.len() == max_sort_keys {
                        truncated = true;
                        break 'blocks;
                    }
                    groups.push(Vec::new());
                }
                groups.last_mut().expect("pushed above").push((*e).to_owned());
            }
        }
        let mut entries = Vec::new();
        for mut g in groups {
            if reverse {
                g.reverse();
            }
            entries.extend(g);
        }
        Ok(RangeRead { entries, truncated })
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

async fn read_block<F: DiskFile>(
    file: &F,
    path: &Path,
    h: super::footer::BlockHandle,
    kind: BlockKind,
) -> Result<Vec<u8>> {
    let buf = file.read_at(h.offset, h.len as usize).await?;
    block::unseal(buf.as_slice(), kind, path, h.offset).map(<[u8]>::to_vec)
}
