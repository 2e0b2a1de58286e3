//! Writes one segment file through the I/O seam: entries in, aligned blocks out, then index,
//! bloom, metadata and footer. Writes go out in large aligned chunks into space preallocated
//! ahead of them, so ext4 never serialises extending direct-I/O writes. The writer checks the
//! order of what it is given; it does not decide what to write.

use super::WRITTEN_ENTRY_LAYOUT;
use super::block::{self, BlockKind};
use super::bloom::{self, Bloom};
use super::footer::{BlockHandle, Footer};
use super::index::{self, IndexEntry};
use super::info::{SegmentInfo, SegmentKind};
use crate::codec::{self, Encoder};
use crate::error::{Error, Result};
use crate::ids::{SegmentId, Ts};
use crate::io::{Disk, DiskFile, IoBuf, OpenMode};
use crate::record::{EntryRef, Key};
use crate::version::VersionId;
use std::path::{Path, PathBuf};

/// Bytes gathered before one write to the file.
const WRITE_CHUNK_BYTES: usize = 256 << 10;

/// How many times the target's framed size a block may grow to, to pack entries of a good
/// fraction of the target with little padding (see `SegmentWriter::seals_before`).
const MAX_BLOCK_PAGES: usize = 4;

/// How a segment is laid out.
#[derive(Debug, Clone, Copy)]
pub struct SegmentLayout {
    /// Target payload bytes per data block.
    pub block_target_bytes: usize,
    /// Bloom bits per key.
    pub bloom_bits_per_key: usize,
    /// Preallocation step, bytes.
    pub preallocate_bytes: u64,
    /// Keep the data blocks' payloads for the caller's block cache while they add up to at
    /// most this many bytes: direct I/O bypasses the page cache, so without this freshly written
    /// data is cold. Past it none are kept (a segment larger than the cache would only evict
    /// everything else, and its blocks would be held in memory until it is written). 0 keeps
    /// none.
    pub keep_blocks_bytes: usize,
}

/// A finished segment: its summary and, if asked for, its data block payloads in order and
/// the xxh3-64 of the whole file.
#[derive(Debug)]
pub struct FinishedSegment {
    /// The summary.
    pub info: SegmentInfo,
    /// Data block payloads by block number (empty unless they fit `keep_blocks_bytes`).
    pub blocks: Vec<std::rc::Rc<[u8]>>,
    /// xxh3-64 of the file's bytes, if [`SegmentWriter::hash_file`] asked for it.
    pub file_xxh3: Option<u64>,
}

/// An open segment being written.
pub struct SegmentWriter<F: DiskFile> {
    file: F,
    path: PathBuf,
    id: SegmentId,
    kind: SegmentKind,
    layout: SegmentLayout,
    block: Encoder,
    block_entries: u32,
    pending: Vec<u8>,
    written_bytes: u64,
    allocated_bytes: u64,
    index: Vec<IndexEntry>,
    kept_blocks: Vec<std::rc::Rc<[u8]>>,
    /// Bytes of `kept_blocks`, or `None` once they outgrew `keep_blocks_bytes`.
    kept_bytes: Option<usize>,
    hashes: Vec<u64>,
    /// xxh3 of what has been written, if asked for.
    file_hasher: Option<Box<xxhash_rust::xxh3::Xxh3>>,
    last: Option<(Key, VersionId)>,
    entry_count: u64,
    tombstone_count: u64,
    key_count: u64,
    min_ts: Ts,
    max_ts: Ts,
    min_key: Option<Key>,
}

impl<F: DiskFile> SegmentWriter<F> {
    /// Creates the file at `path` and starts a segment.
    pub async fn create<D: Disk<File = F>>(
        disk: &D,
        path: &Path,
        id: SegmentId,
        kind: SegmentKind,
        layout: SegmentLayout,
    ) -> Result<Self> {
        let file = disk.open(path, OpenMode::CreateNew).await?;
        let mut writer = SegmentWriter {
            file,
            path: path.to_path_buf(),
            id,
            kind,
            layout,
            block: Encoder::default(),
            block_entries: 0,
            pending: Vec::with_capacity(WRITE_CHUNK_BYTES + 4096),
            written_bytes: 0,
            allocated_bytes: 0,
            index: Vec::new(),
            kept_blocks: Vec::new(),
            kept_bytes: (layout.keep_blocks_bytes > 0).then_some(0),
            hashes: Vec::new(),
            file_hasher: None,
            last: None,
            entry_count: 0,
            tombstone_count: 0,
            key_count: 0,
            min_ts: Ts::MAX,
            max_ts: Ts(0),
            min_key: None,
        };
        writer.start_block();
        Ok(writer)
    }

    /// Computes the xxh3-64 of the whole file as it is written (every write is a whole chunk,
    /// in order, and the file ends where the last one does), so [`FinishedSegment::file_xxh3`]
    /// gives it without reading the file back. Call before the first [`SegmentWriter::add`].
    pub fn hash_file(&mut self) {
        debug_assert_eq!(self.written_bytes, 0, "asked for before anything is written");
        self.file_hasher = Some(Box::new(xxhash_rust::xxh3::Xxh3::new()));
    }

    fn start_block(&mut self) {
        self.block.bytes.clear();
        self.block.u32(0); // entry count, patched when sealed
        self.block_entries = 0;
    }

    /// Appends one entry. Entries must come in strictly increasing `(key, version)` storage
    /// order; anything else is refused and the segment must be abandoned.
    pub async fn add(&mut self, e: EntryRef<'_>) -> Result<()> {
        let new_key = match &self.last {
            None => true,
            Some((k, id)) => match k.as_ref().cmp(&e.key()).then_with(|| id.storage_cmp(&e.id)) {
                std::cmp::Ordering::Less => k.as_ref() != e.key(),
                _ => return Err(Error::InvalidArgument("segment entries must be strictly increasing")),
            },
        };
        let len = codec::entry_len_in(&e, WRITTEN_ENTRY_LAYOUT);
        if self.block_entries > 0 && self.seals_before(len) {
            self.seal_block().await?;
        }
        codec::encode_entry_in(&mut self.block, e, WRITTEN_ENTRY_LAYOUT);
        self.block_entries += 1;
        if new_key {
            self.key_count += 1;
            self.hashes.push(bloom::key_hash(e.key()));
            let new_prefix =
                self.last.as_ref().is_none_or(|(k, _)| k.table != e.table || k.partition_key != e.partition_key);
            if new_prefix {
                self.hashes.push(bloom::prefix_hash(e.table, e.partition_key));
            }
            self.last = Some((e.key().to_owned(), e.id));
        } else if let Some(last) = &mut self.last {
            last.1 = e.id;
        }
        if self.min_key.is_none() {
            self.min_key = Some(e.key().to_owned());
        }
        self.entry_count += 1;
        self.tombstone_count += u64::from(e.value.is_none());
        self.min_ts = self.min_ts.min(e.id.ts);
        self.max_ts = self.max_ts.max(e.id.ts);
        Ok(())
    }

    /// Whether the block must be sealed before an entry of `len` bytes joins it. Up to the
    /// target it joins. Past it, it joins if it fits the block's last page (padding it would
    /// waste), or if sealing now would leave more than an eighth of the block as padding and
    /// the block stays within [`MAX_BLOCK_PAGES`] pages of the target: so entries of a good
    /// fraction of a page (a 1,000-byte value in 4 KiB blocks pads a quarter of every block)
    /// pack into blocks of a few pages with little padding, while small entries make blocks of
    /// the target exactly as before.
    fn seals_before(&self, len: usize) -> bool {
        let payload = self.block.bytes.len();
        if payload + len <= self.layout.block_target_bytes {
            return false;
        }
        let framed = block::framed_len(payload);
        let grown = block::framed_len(payload + len);
        if grown == framed {
            return false;
        }
        let padding = framed - block::BLOCK_HEADER_BYTES - payload;
        padding * 8 <= framed || grown > MAX_BLOCK_PAGES * block::framed_len(self.layout.block_target_bytes)
    }

    async fn seal_block(&mut self) -> Result<()> {
        let count = self.block_entries.to_le_bytes();
        self.block.bytes[..4].copy_from_slice(&count);
        let offset = self.written_bytes + self.pending.len() as u64;
        block::seal_into(&mut self.pending, BlockKind::Data, &self.block.bytes);
        if let Some(kept) = self.kept_bytes {
            let kept = kept + self.block.bytes.len();
            if kept <= self.layout.keep_blocks_bytes {
                self.kept_blocks.push(std::rc::Rc::from(self.block.bytes.as_slice()));
                self.kept_bytes = Some(kept);
            } else {
                self.kept_blocks = Vec::new();
                self.kept_bytes = None;
            }
        }
        let len = self.written_bytes + self.pending.len() as u64 - offset;
        let (key, id) = self.last.as_ref().expect("a block holds at least one entry");
        self.index.push(IndexEntry {
            offset,
            len: u32::try_from(len).expect("blocks are under 4 GiB"),
            last_table: key.table,
            last_partition_key: key.partition_key.clone(),
            last_sort_key: key.sort_key.clone(),
            last_id: *id,
        });
        self.start_block();
        if self.pending.len() >= WRITE_CHUNK_BYTES {
            self.write_pending().await?;
        }
        Ok(())
    }

    async fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let end = self.written_bytes + self.pending.len() as u64;
        if end > self.allocated_bytes {
            let step = self.layout.preallocate_bytes.max(1);
            self.allocated_bytes = end.div_ceil(step) * step;
            self.file.preallocate(self.allocated_bytes).await?;
        }
        let chunk = std::mem::replace(&mut self.pending, Vec::with_capacity(WRITE_CHUNK_BYTES + 4096));
        if let Some(h) = &mut self.file_hasher {
            // `pending` always ends on a page boundary, so the chunk is written exactly as it is.
            h.update(&chunk);
        }
        self.file.write_at(self.written_bytes, IoBuf::from_padded(chunk)).await?;
        self.written_bytes = end;
        Ok(())
    }

    /// Writes the index, bloom, metadata and footer, trims the file to its logical length,
    /// makes it durable and returns its summary. The caller makes the directory entry durable.
    pub async fn finish(mut self) -> Result<FinishedSegment> {
        if self.entry_count == 0 {
            return Err(Error::InvalidArgument("a segment holds at least one entry"));
        }
        if self.block_entries > 0 {
            self.seal_block().await?;
        }
        let base = self.written_bytes + self.pending.len() as u64;
        let mut enc = Encoder::default();
        index::encode(&self.index, &mut enc);
        let index_payload = enc.bytes;
        let mut enc = Encoder::default();
        Bloom::build(&self.hashes, self.layout.bloom_bits_per_key).encode(&mut enc);
        let bloom_payload = enc.bytes;
        let (key, _) = self.last.clone().expect("entry_count > 0");
        let mut info = SegmentInfo {
            id: self.id,
            kind: self.kind,
            size_bytes: 0,
            entry_count: self.entry_count,
            tombstone_count: self.tombstone_count,
            key_count: self.key_count,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            min_key: self.min_key.clone().expect("entry_count > 0"),
            max_key: key,
        };
        let mut enc = Encoder::default();
        info.encode(&mut enc);
        let meta_len = block::framed_len(enc.bytes.len());
        let index_h = BlockHandle { offset: base, len: block::framed_len(index_payload.len()) as u32 };
        let bloom_h = BlockHandle {
            offset: index_h.offset + u64::from(index_h.len),
            len: block::framed_len(bloom_payload.len()) as u32,
        };
        let meta_h = BlockHandle { offset: bloom_h.offset + u64::from(bloom_h.len), len: meta_len as u32 };
        info.size_bytes = meta_h.offset + u64::from(meta_h.len) + crate::io::ALIGN as u64;
        let mut enc = Encoder::default();
        info.encode(&mut enc);
        debug_assert_eq!(block::framed_len(enc.bytes.len()), meta_len);
        block::seal_into(&mut self.pending, BlockKind::Index, &index_payload);
        block::seal_into(&mut self.pending, BlockKind::Bloom, &bloom_payload);
        block::seal_into(&mut self.pending, BlockKind::Meta, &enc.bytes);
        let footer = Footer {
            format_version: super::FORMAT_VERSION,
            data_block_count: u32::try_from(self.index.len()).expect("under 4G blocks"),
            index: index_h,
            bloom: bloom_h,
            meta: meta_h,
        };
        let mut enc = Encoder::default();
        footer.encode(&mut enc);
        block::seal_into(&mut self.pending, BlockKind::Footer, &enc.bytes);
        self.write_pending().await?;
        assert_eq!(self.written_bytes, info.size_bytes, "the layout computed is the layout written");
        self.file.truncate(info.size_bytes).await?;
        self.file.sync().await?;
        self.file.close().await?;
        Ok(FinishedSegment { info, blocks: self.kept_blocks, file_xxh3: self.file_hasher.map(|h| h.digest()) })
    }

    /// Bytes written to the file so far (whole chunks; what is pending is not yet written).
    pub fn bytes_written(&self) -> u64 {
        self.written_bytes
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TableId;
    use crate::io::std_fs::StdDisk;
    use crate::segment::reader::SegmentReader;
    use crate::version::{Origin, OriginKind};
    use futures_lite::future::block_on;

    /// Writes `n` entries of `value_bytes`-byte values in 4 KiB blocks; returns the file's size,
    /// its data blocks' framed sizes, the entries read back and the hash the writer gave.
    fn write(dir: &Path, n: u64, value_bytes: usize) -> (u64, Vec<usize>, u64, Option<u64>) {
        let path = dir.join(format!("{n}-{value_bytes}.seg"));
        let layout = SegmentLayout {
            block_target_bytes: 4096 - block::BLOCK_HEADER_BYTES,
            bloom_bits_per_key: 10,
            preallocate_bytes: 1 << 20,
            keep_blocks_bytes: 0,
        };
        block_on(async {
            let mut w =
                SegmentWriter::create(&StdDisk, &path, SegmentId(1), SegmentKind::Bulk, layout).await.expect("io");
            w.hash_file();
            let value = vec![b'v'; value_bytes];
            for i in 0..n {
                let pk = format!("key-{i:08}");
                let e = EntryRef {
                    table: TableId(1),
                    partition_key: pk.as_bytes(),
                    sort_key: b"",
                    id: VersionId { ts: Ts(7), origin: Origin { kind: OriginKind::Bulk, source_id: 1, seq: i } },
                    value: Some(&value),
                    expires_at_ms: None,
                };
                w.add(e).await.expect("io");
            }
            let finished = w.finish().await.expect("io");
            let file = StdDisk.open(&path, crate::io::OpenMode::Existing).await.expect("io");
            let reader = SegmentReader::open_as_written(file, &path, finished.info.size_bytes).await.expect("io");
            let mut sizes = Vec::new();
            let mut read = 0;
            for b in 0..reader.block_count() {
                let payload = reader.block(b, None).await.expect("io");
                sizes.push(block::framed_len(payload.len()));
                read += reader.decode_block(b, &payload).expect("ok").len() as u64;
            }
            (finished.info.size_bytes, sizes, read, finished.file_xxh3)
        })
    }

    #[test]
    fn entries_of_a_quarter_page_pack_into_few_page_blocks_and_small_ones_fill_one_page() {
        let dir = tempfile::tempdir().expect("ok");
        // 1,000-byte values: one-page blocks would hold three entries and a quarter padding.
        let (_, sizes, read, _) = write(dir.path(), 700, 1000);
        assert_eq!(read, 700);
        let entry = 1000 + 12 + 30;
        let payload: usize = 700 * entry;
        let framed: usize = sizes.iter().sum();
        assert!(framed * 100 <= payload * 113, "{framed} framed bytes for {payload} of entries: over 13% padding");
        assert!(sizes.iter().all(|s| *s <= MAX_BLOCK_PAGES * 4096), "{sizes:?}");
        // 100-byte values: every block but the last is one page, as before.
        let (_, sizes, read, _) = write(dir.path(), 2000, 100);
        assert_eq!(read, 2000);
        assert!(sizes[..sizes.len() - 1].iter().all(|s| *s == 4096), "{sizes:?}");
    }

    #[test]
    fn the_hash_the_writer_gives_is_the_files() {
        let dir = tempfile::tempdir().expect("ok");
        let (size, _, _, hash) = write(dir.path(), 3000, 300);
        let bytes = std::fs::read(dir.path().join("3000-300.seg")).expect("ok");
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(hash, Some(xxhash_rust::xxh3::xxh3_64(&bytes)));
    }
}
