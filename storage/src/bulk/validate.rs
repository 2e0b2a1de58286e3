//! Link validation: everything about a load directory is checked against the store before
//! anything is touched, and any failure rejects the whole load with a precise reason.
//!
//! Per file: the name is a plain file name, the size and the whole-file xxh3 match the
//! descriptor, the segment opens (footer, index, bloom, metadata), every data block passes its
//! checksum, and every entry is in the right table and partition, strictly increasing in storage
//! order, of origin `Bulk` with the load's id, within the store's limits and its clock skew
//! bound and, for a replace load, not older than the snapshot.
//!
//! Each file is read once: its footer, index, bloom and metadata first (a few small reads at its
//! end), then front to back in chunks of half a MiB into a buffer each thread reuses
//! from file to file. Each chunk is hashed for the whole-file checksum, and the data blocks it
//! holds are unsealed and their entries decoded and checked from the same bytes, with the
//! previous entry kept in reusable buffers across chunks: no allocation per entry or block. A
//! fault is reported only once the whole-file checksum has matched, so a damaged file is always
//! refused for its checksum. [`Verify::Checksums`] still reads every byte for the checksum but
//! decodes no entry, checking what the metadata says of them instead.
//!
//! Reading every byte makes this the one part of a link whose time grows with the data; it runs
//! before the commit, off the serving path.

use super::descriptor::{DESCRIPTOR_FORMAT_VERSION, DescriptorError, LoadDescriptor, LoadMode, hex64};
use super::partition_of;
use crate::ids::{TableId, Ts};
use crate::io::std_fs::{StdDisk, StdDiskFile};
use crate::io::{Disk, OpenMode};
use crate::options::Limits;
use crate::record::EntryRef;
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::segment::reader::SegmentReader;
use crate::version::{OriginKind, VersionId};
use futures_lite::future::block_on;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use xxhash_rust::xxh3::Xxh3;

/// What the store expects of a load.
#[derive(Debug, Clone, Copy)]
pub struct LinkTarget {
    /// The store's partition count.
    pub partition_count: u32,
    /// The id the store knows the load's table by.
    pub table_id: TableId,
    /// The store's key and value limits.
    pub limits: Limits,
    /// The latest timestamp the store accepts now (its clock plus its skew bound): a load
    /// holding a later one, or a later snapshot, is refused, since it would pin its keys.
    pub latest_ts: Ts,
}

/// A file that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedFile {
    /// Its partition.
    pub partition: u32,
    /// Its path in the load directory.
    pub path: PathBuf,
    /// Its summary, as written (id 0).
    pub info: SegmentInfo,
}

/// A load that passed validation.
#[derive(Debug, Clone)]
pub struct ValidatedLoad {
    /// The load directory.
    pub dir: PathBuf,
    /// Its descriptor.
    pub descriptor: LoadDescriptor,
    /// Its files, by partition.
    pub files: Vec<ValidatedFile>,
}

impl ValidatedLoad {
    /// Bytes of segment data.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.info.size_bytes).sum()
    }
}

/// Why a load is refused. Each variant names a `code()` the CLI and tests can match.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadRejection {
    /// The descriptor is missing, malformed or fails its checksum.
    #[error("bad descriptor: {0}")]
    Descriptor(String),
    /// A format version this build does not read.
    #[error("{what} format version {found} is not supported (this build reads {supported})")]
    FormatVersion {
        /// Which format.
        what: &'static str,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The load was built for another partition count.
    #[error("the load was built for {load} partitions; this store has {store}")]
    PartitionCount {
        /// The load's.
        load: u32,
        /// The store's.
        store: u32,
    },
    /// The descriptor lists a file oddly: a path, a partition out of range or twice.
    #[error("descriptor lists {name}: {reason}")]
    FileList {
        /// The file.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A listed file is missing or unreadable.
    #[error("{name}: cannot read: {reason}")]
    Unreadable {
        /// The file.
        name: String,
        /// The cause.
        reason: String,
    },
    /// A file's size differs from the descriptor's.
    #[error("{name}: size {actual} differs from the descriptor's {recorded}")]
    Size {
        /// The file.
        name: String,
        /// The descriptor's.
        recorded: u64,
        /// The file's.
        actual: u64,
    },
    /// A file's checksum differs from the descriptor's.
    #[error("{name}: checksum {computed} differs from the descriptor's {recorded}")]
    Checksum {
        /// The file.
        name: String,
        /// The descriptor's.
        recorded: String,
        /// The file's.
        computed: String,
    },
    /// A file is not a readable segment, or a block fails its checksum.
    #[error("{name}: corrupt segment: {reason}")]
    Corrupt {
        /// The file.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A key belongs to another partition than its file's.
    #[error("{name}: a key of partition {key_partition} is in the file of partition {partition}")]
    KeyOutsidePartition {
        /// The file.
        name: String,
        /// The file's partition.
        partition: u32,
        /// The key's.
        key_partition: u32,
    },
    /// Entries are not strictly increasing in storage order.
    #[error("{name}: keys are not sorted (entry {entry})")]
    Unsorted {
        /// The file.
        name: String,
        /// The entry's index in the file.
        entry: u64,
    },
    /// An entry breaks a rule of bulk loads: wrong table, origin, limit or timestamp.
    #[error("{name}: entry {entry}: {fault}")]
    BadEntry {
        /// The file.
        name: String,
        /// The entry's index in the file.
        entry: u64,
        /// Which rule it breaks.
        fault: EntryFault,
    },
    /// Under [`Verify::Checksums`], which decodes no entry: the segment's metadata (the table of
    /// its first and last keys, its `ts` range) says an entry breaks a rule of bulk loads.
    #[error("{name}: its metadata says an entry breaks a rule: {fault}")]
    SummaryFault {
        /// The file.
        name: String,
        /// Which rule.
        fault: EntryFault,
    },
    /// No table has the load's name.
    #[error("table {0:?} does not exist")]
    UnknownTable(String),
    /// The table exists, but under another id than the load was built for.
    #[error(
        "table {table:?} refuses the load: the load was built for table id {built_for}, and the table's id here is {actual}"
    )]
    TableRefuses {
        /// The table.
        table: String,
        /// The id the load was built for.
        built_for: u32,
        /// The table's id here.
        actual: u32,
    },
    /// Another load with this id is linked.
    #[error("load {0} is already linked with different content; rebuild with another load id")]
    LoadIdTaken(u32),
    /// The load's snapshot is past the store's skew bound: its replace watermark or its
    /// records would pin their keys until the clock caught up.
    #[error(
        "load {load}: the snapshot {snapshot_ms} ms is beyond the clock skew bound (latest accepted now: {latest_ms} ms)"
    )]
    SnapshotTooFarInFuture {
        /// The load.
        load: u32,
        /// Its snapshot.
        snapshot_ms: u64,
        /// The latest accepted at the time.
        latest_ms: u64,
    },
    /// The load was rolled back; its versions stay hidden, so it cannot be linked again.
    #[error("load {0} was rolled back; rebuild it to load it again (a new build gets a new id with --load-id)")]
    RolledBack(u32),
}

impl LoadRejection {
    /// A stable token for the reason.
    pub fn code(&self) -> &'static str {
        match self {
            LoadRejection::Descriptor(_) => "bad-descriptor",
            LoadRejection::FormatVersion { .. } => "format-version",
            LoadRejection::PartitionCount { .. } => "partition-count",
            LoadRejection::FileList { .. } => "file-list",
            LoadRejection::Unreadable { .. } => "unreadable-file",
            LoadRejection::Size { .. } => "size-mismatch",
            LoadRejection::Checksum { .. } => "checksum-mismatch",
            LoadRejection::Corrupt { .. } => "corrupt-segment",
            LoadRejection::KeyOutsidePartition { .. } => "key-outside-partition",
            LoadRejection::Unsorted { .. } => "unsorted",
            LoadRejection::BadEntry { .. } | LoadRejection::SummaryFault { .. } => "bad-entry",
            LoadRejection::UnknownTable(_) => "unknown-table",
            LoadRejection::TableRefuses { .. } => "table-refuses",
            LoadRejection::LoadIdTaken(_) => "load-id-taken",
            LoadRejection::RolledBack(_) => "rolled-back",
            LoadRejection::SnapshotTooFarInFuture { .. } => "too-far-in-future",
        }
    }
}

/// Which rule of bulk loads an entry breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryFault {
    /// The entry's table is not the load's.
    #[error("table id {found} is not the load's {expected}")]
    WrongTable {
        /// The entry's.
        found: u32,
        /// The load's.
        expected: u32,
    },
    /// The entry's origin is not this load's.
    #[error("origin {kind:?}/{source_id} is not this load's (bulk/{load})")]
    WrongOrigin {
        /// The origin's kind.
        kind: OriginKind,
        /// The origin's source.
        source_id: u32,
        /// The load's id.
        load: u32,
    },
    /// A key or value is over the store's limit.
    #[error("the {what} is {len} bytes, over the store's limit of {max}")]
    OverLimit {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The partition key is empty.
    #[error("the partition key is empty")]
    EmptyPartitionKey,
    /// A replace load's entry is older than its snapshot.
    #[error("ts {ts} is before the replace snapshot")]
    BeforeSnapshot {
        /// The entry's.
        ts: Ts,
    },
    /// The entry's own timestamp is past the store's skew bound.
    #[error("ts {ts} is beyond the clock skew bound (latest accepted now: {latest})")]
    TooFarInFuture {
        /// The entry's.
        ts: Ts,
        /// The latest accepted at the time.
        latest: Ts,
    },
}

impl From<DescriptorError> for LoadRejection {
    fn from(e: DescriptorError) -> Self {
        LoadRejection::Descriptor(e.to_string())
    }
}

/// Reads the descriptor in `dir` and checks what can be checked without the files.
pub fn read_descriptor(dir: &Path, partition_count: u32) -> Result<LoadDescriptor, LoadRejection> {
    let d = LoadDescriptor::read(dir)?;
    if d.format_version != DESCRIPTOR_FORMAT_VERSION {
        return Err(LoadRejection::FormatVersion {
            what: "descriptor",
            found: d.format_version,
            supported: DESCRIPTOR_FORMAT_VERSION,
        });
    }
    // A load built by an older builder links as long as this build reads its segments.
    if crate::segment::entry_layout(d.segment_format_version).is_none() {
        return Err(LoadRejection::FormatVersion {
            what: "segment",
            found: d.segment_format_version,
            supported: crate::segment::FORMAT_VERSION,
        });
    }
    if d.partition_count != partition_count {
        return Err(LoadRejection::PartitionCount { load: d.partition_count, store: partition_count });
    }
    if d.load_id == 0 {
        return Err(LoadRejection::Descriptor("load id 0 is reserved".into()));
    }
    let mut seen = std::collections::BTreeSet::new();
    for f in &d.files {
        let plain = Path::new(&f.name).file_name().is_some_and(|n| n == f.name.as_str()) && f.name != "..";
        if !plain {
            return Err(LoadRejection::FileList { name: f.name.clone(), reason: "not a plain file name" });
        }
        if f.partition >= partition_count {
            return Err(LoadRejection::FileList { name: f.name.clone(), reason: "partition out of range" });
        }
        if !seen.insert(f.partition) {
            return Err(LoadRejection::FileList { name: f.name.clone(), reason: "a second file for one partition" });
        }
    }
    Ok(d)
}

/// How much of each file a link checks (`nacre bulk link --verify`, the link request's `verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verify {
    /// Everything the module comment lists: each file's size and whole-file checksum, its
    /// structure, every data block's checksum and every entry against the rules of bulk loads.
    #[default]
    Full,
    /// Each file's size and whole-file checksum, its structure (footer, index, bloom, metadata),
    /// and what its metadata says of its entries (count, table, the partition of its first and
    /// last keys, its `ts` range): every byte is still read once, for the checksum, but no entry
    /// is decoded. Trusts the builder for the order of entries, their origin and the store's key
    /// and value limits.
    Checksums,
}

impl Verify {
    /// The mode's name, as `nacre bulk link --verify` takes it: `full` or `checksums`.
    pub fn name(self) -> &'static str {
        match self {
            Verify::Full => "full",
            Verify::Checksums => "checksums",
        }
    }
}

/// Bytes read from a file at a time: small enough to stay in a core's L2 cache while it is
/// hashed, unsealed and decoded, large enough to make few reads.
const READ_CHUNK_BYTES: usize = 512 << 10;

/// Validates the load in `dir` against `target`, on up to `threads` threads.
pub fn validate(dir: &Path, target: &LinkTarget, threads: usize) -> Result<ValidatedLoad, LoadRejection> {
    validate_files(dir, read_descriptor(dir, target.partition_count)?, target, threads)
}

/// Validates every file of the load in `dir` against `target`, as `descriptor` (read by
/// [`read_descriptor`]) lists them: the validated load is exactly what that descriptor says.
pub fn validate_files(
    dir: &Path,
    descriptor: LoadDescriptor,
    target: &LinkTarget,
    threads: usize,
) -> Result<ValidatedLoad, LoadRejection> {
    validate_files_with(dir, descriptor, target, threads, Verify::Full)
}

/// [`validate_files`], checking each file as `verify` says.
pub fn validate_files_with(
    dir: &Path,
    descriptor: LoadDescriptor,
    target: &LinkTarget,
    threads: usize,
    verify: Verify,
) -> Result<ValidatedLoad, LoadRejection> {
    validate_in_chunks(dir, descriptor, target, threads, verify, READ_CHUNK_BYTES)
}

/// [`validate_files_with`], reading files `chunk` bytes at a time.
fn validate_in_chunks(
    dir: &Path,
    descriptor: LoadDescriptor,
    target: &LinkTarget,
    threads: usize,
    verify: Verify,
    chunk: usize,
) -> Result<ValidatedLoad, LoadRejection> {
    if descriptor.table_id != target.table_id.0 {
        return Err(LoadRejection::TableRefuses {
            table: descriptor.table.clone(),
            built_for: descriptor.table_id,
            actual: target.table_id.0,
        });
    }
    if Ts::from_millis(descriptor.snapshot_ms) > target.latest_ts {
        return Err(LoadRejection::SnapshotTooFarInFuture {
            load: descriptor.load_id,
            snapshot_ms: descriptor.snapshot_ms,
            latest_ms: target.latest_ts.millis(),
        });
    }
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, descriptor.files.len().max(1)) {
            scope.spawn(|| {
                // One read buffer per thread, reused from file to file.
                let mut buf = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = descriptor.files.get(i) else { break };
                    let r = validate_file(dir, &descriptor, f, target, verify, (chunk, &mut buf));
                    let failed = r.is_err();
                    results.lock().unwrap_or_else(|e| e.into_inner()).push((i, r));
                    if failed {
                        next.store(usize::MAX / 2, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    // The first failing file in descriptor order, so the same load is always refused the same way.
    results.sort_by_key(|(i, _)| *i);
    let mut files = Vec::new();
    for (_, r) in results {
        files.push(r?);
    }
    Ok(ValidatedLoad { dir: dir.to_path_buf(), descriptor, files })
}

/// Checks one file, reading it once, `chunk` bytes at a time, through `buf`: the segment's footer, index, bloom and
/// metadata first (small reads at its end), then the whole file front to back in chunks, each
/// chunk hashed for the whole-file checksum and, under [`Verify::Full`], its data blocks
/// unsealed and their entries checked from the same bytes. A fault found in the segment is only
/// reported once the whole-file checksum matched, so a damaged file is refused for its checksum
/// whatever else is wrong with it, as when the checksum was taken first.
fn validate_file(
    dir: &Path,
    d: &LoadDescriptor,
    f: &super::LoadFile,
    target: &LinkTarget,
    verify: Verify,
    (chunk, buf): (usize, &mut Vec<u8>),
) -> Result<ValidatedFile, LoadRejection> {
    let name = || f.name.clone();
    let path = dir.join(&f.name);
    let unreadable = |e: &dyn std::fmt::Display| LoadRejection::Unreadable { name: name(), reason: e.to_string() };
    let actual = std::fs::metadata(&path).map_err(|e| unreadable(&e))?.len();
    if actual != f.size_bytes {
        return Err(LoadRejection::Size { name: name(), recorded: f.size_bytes, actual });
    }
    let corrupt = |e: crate::error::Error| LoadRejection::Corrupt { name: name(), reason: e.to_string() };
    let opened = block_on(async {
        let file = StdDisk.open(&path, OpenMode::Existing).await.map_err(|e| unreadable(&e))?;
        Ok::<_, LoadRejection>(SegmentReader::open_as_written(file, &path, actual).await)
    })?;
    // The first fault found, reported only if the whole-file checksum matches.
    let mut fault = None;
    let reader = match opened {
        Ok(r) if r.info().kind == SegmentKind::Bulk => Some(r),
        Ok(_) => {
            fault = Some(LoadRejection::Corrupt { name: name(), reason: "not a bulk segment".into() });
            None
        }
        Err(e) => {
            fault = Some(corrupt(e));
            None
        }
    };
    let mut scan = match (&reader, verify) {
        (Some(reader), Verify::Full) => Some(BlockScan {
            reader,
            next: 0,
            checker: EntryChecker { name: &f.name, partition: f.partition, d, target, n: 0 },
            last: LastEntry::default(),
        }),
        _ => None,
    };

    let mut file = std::fs::File::open(&path).map_err(|e| unreadable(&e))?;
    let mut hasher = Xxh3::new();
    if buf.len() < chunk {
        buf.resize(chunk, 0);
    }
    // `buf[..filled]` holds the file's bytes from `base`: whatever the last chunk left of a
    // block it did not hold whole, then the next chunk.
    let (mut base, mut filled, mut read) = (0u64, 0usize, 0u64);
    loop {
        if filled == buf.len() {
            // A block larger than the buffer (a large entry's): make room for the whole of it.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(unreadable(&e)),
        };
        hasher.update(&buf[filled..filled + n]);
        filled += n;
        read += n as u64;
        let mut used = filled;
        if let Some(s) = &mut scan {
            match s.blocks(&buf[..filled], base) {
                Ok(through) => used = through,
                Err(r) => {
                    fault = Some(r);
                    scan = None;
                }
            }
        }
        buf.copy_within(used..filled, 0);
        base += used as u64;
        filled -= used;
    }
    if read != actual {
        return Err(LoadRejection::Size { name: name(), recorded: f.size_bytes, actual: read });
    }
    let computed = hex64(hasher.digest());
    if computed != f.xxh3 {
        return Err(LoadRejection::Checksum { name: name(), recorded: f.xxh3.clone(), computed });
    }
    if let Some(fault) = fault {
        return Err(fault);
    }
    let Some(reader) = &reader else {
        return Err(LoadRejection::Corrupt { name: name(), reason: "the segment did not open".into() });
    };
    let info = reader.info().clone();
    let entries = match scan {
        Some(s) if s.next != reader.block_count() => {
            return Err(LoadRejection::Corrupt { name: name(), reason: "the file ends inside its data blocks".into() });
        }
        Some(s) => s.checker.n,
        None => {
            check_summary(f, d, target, &info)?;
            info.entry_count
        }
    };
    if entries != info.entry_count || entries != f.entries {
        return Err(LoadRejection::Corrupt {
            name: name(),
            reason: format!(
                "{} entries read, metadata says {}, descriptor says {}",
                entries, info.entry_count, f.entries
            ),
        });
    }
    Ok(ValidatedFile { partition: f.partition, path, info })
}

/// Under [`Verify::Checksums`]: what the segment's metadata says of its entries, checked against
/// the rules [`EntryChecker`] applies to each entry under [`Verify::Full`]. Its first and last
/// keys are its first and last entries' (storage order), and every entry's `ts` lies in its range.
fn check_summary(
    f: &super::LoadFile,
    d: &LoadDescriptor,
    target: &LinkTarget,
    info: &SegmentInfo,
) -> Result<(), LoadRejection> {
    let bad = |fault: EntryFault| LoadRejection::SummaryFault { name: f.name.clone(), fault };
    if info.entry_count == 0 {
        return Ok(());
    }
    for key in [&info.min_key, &info.max_key] {
        if let Some(fault) = table_fault(key.table, target) {
            return Err(bad(fault));
        }
        check_partition(&f.name, f.partition, &key.partition_key, target)?;
    }
    ts_fault(d, target, info.min_ts, info.max_ts).map_or(Ok(()), |fault| Err(bad(fault)))
}

/// A key's table against the target's: the rule every entry keeps, and so a segment's first
/// and last keys.
fn table_fault(table: TableId, target: &LinkTarget) -> Option<EntryFault> {
    (table != target.table_id).then_some(EntryFault::WrongTable { found: table.0, expected: target.table_id.0 })
}

/// Whether `partition_key` belongs to the partition of file `name`.
fn check_partition(name: &str, partition: u32, partition_key: &[u8], target: &LinkTarget) -> Result<(), LoadRejection> {
    let key_partition = partition_of(partition_key, target.partition_count).0;
    if key_partition != partition {
        return Err(LoadRejection::KeyOutsidePartition { name: name.to_owned(), partition, key_partition });
    }
    Ok(())
}

/// Timestamps from `min` to `max` against the load's snapshot (a replace load's versions are
/// not older) and the store's clock skew bound: one entry's (`min == max`), or a segment's range.
fn ts_fault(d: &LoadDescriptor, target: &LinkTarget, min: Ts, max: Ts) -> Option<EntryFault> {
    if d.mode == LoadMode::Replace && min < Ts::from_millis(d.snapshot_ms) {
        return Some(EntryFault::BeforeSnapshot { ts: min });
    }
    (max > target.latest_ts).then_some(EntryFault::TooFarInFuture { ts: max, latest: target.latest_ts })
}

/// Under [`Verify::Full`]: the data blocks of one file, checked in order as its chunks arrive.
struct BlockScan<'r, 'a> {
    reader: &'r SegmentReader<StdDiskFile>,
    /// The next data block to check.
    next: usize,
    checker: EntryChecker<'a>,
    /// The last entry of the chunks before this one.
    last: LastEntry,
}

impl BlockScan<'_, '_> {
    /// Checks every data block `bytes` (the file's bytes from `base`, which is where the next
    /// block starts) holds whole, and returns how many of its bytes it is done with: up to the
    /// first block it does not hold whole, or all of them after the last data block.
    fn blocks(&mut self, bytes: &[u8], base: u64) -> Result<usize, LoadRejection> {
        let name = self.checker.name;
        let corrupt = |e: crate::error::Error| LoadRejection::Corrupt { name: name.to_owned(), reason: e.to_string() };
        // The entry before the next one: in these bytes, or else the one kept from earlier chunks.
        let mut prev: Option<EntryRef<'_>> = None;
        let mut done = bytes.len();
        while self.next < self.reader.block_count() {
            let (offset, len) = self.reader.block_extent(self.next);
            let start = (offset - base) as usize;
            if start + len > bytes.len() {
                done = start;
                break;
            }
            let payload = self.reader.unseal_block(self.next, &bytes[start..start + len]).map_err(corrupt)?;
            for e in self.reader.block_entries(self.next, payload).map_err(corrupt)? {
                let e = e.map_err(corrupt)?;
                self.checker.check(&e, prev.or_else(|| self.last.get()))?;
                prev = Some(e);
            }
            self.next += 1;
        }
        if let Some(p) = prev {
            self.last.set(&p);
        }
        Ok(done)
    }
}

/// An entry kept in reusable buffers: the last one checked, once its chunk's bytes are reused.
#[derive(Default)]
struct LastEntry {
    /// The entry's fixed fields, once there is one: table, version, expiry, and whether it
    /// holds a value (else a tombstone).
    fixed: Option<(TableId, VersionId, Option<u64>, bool)>,
    partition_key: Vec<u8>,
    sort_key: Vec<u8>,
    value: Vec<u8>,
}

impl LastEntry {
    fn get(&self) -> Option<EntryRef<'_>> {
        let (table, id, expires_at_ms, has_value) = self.fixed?;
        Some(EntryRef {
            table,
            partition_key: &self.partition_key,
            sort_key: &self.sort_key,
            id,
            value: has_value.then_some(self.value.as_slice()),
            expires_at_ms,
        })
    }

    fn set(&mut self, e: &EntryRef<'_>) {
        self.fixed = Some((e.table, e.id, e.expires_at_ms, e.value.is_some()));
        for (buf, bytes) in [
            (&mut self.partition_key, e.partition_key),
            (&mut self.sort_key, e.sort_key),
            (&mut self.value, e.value.unwrap_or_default()),
        ] {
            buf.clear();
            buf.extend_from_slice(bytes);
        }
    }
}

/// The rules of bulk loads, applied to each entry of a file in order.
struct EntryChecker<'a> {
    name: &'a str,
    partition: u32,
    d: &'a LoadDescriptor,
    target: &'a LinkTarget,
    /// Entries checked so far.
    n: u64,
}

impl EntryChecker<'_> {
    /// Checks `e`, which follows `last` (none for the file's first entry).
    fn check(&mut self, e: &EntryRef<'_>, last: Option<EntryRef<'_>>) -> Result<(), LoadRejection> {
        let bad = |fault: EntryFault| LoadRejection::BadEntry { name: self.name.to_owned(), entry: self.n, fault };
        if let Some(fault) = table_fault(e.table, self.target) {
            return Err(bad(fault));
        }
        // An entry with its predecessor's partition key is in its predecessor's partition.
        if last.is_none_or(|l| l.partition_key != e.partition_key) {
            check_partition(self.name, self.partition, e.partition_key, self.target)?;
        }
        if let Some(last) = last
            && last.storage_cmp(e) != std::cmp::Ordering::Less
        {
            return Err(LoadRejection::Unsorted { name: self.name.to_owned(), entry: self.n });
        }
        if e.id.origin.kind != OriginKind::Bulk || e.id.origin.source_id != self.d.load_id {
            return Err(bad(EntryFault::WrongOrigin {
                kind: e.id.origin.kind,
                source_id: e.id.origin.source_id,
                load: self.d.load_id,
            }));
        }
        let limits = &self.target.limits;
        for (what, len, max) in [
            ("partition key", e.partition_key.len(), limits.max_partition_key_bytes),
            ("sort key", e.sort_key.len(), limits.max_sort_key_bytes),
            ("value", e.value.map_or(0, <[u8]>::len), limits.max_value_bytes),
        ] {
            if len > max {
                return Err(bad(EntryFault::OverLimit { what, len, max }));
            }
        }
        if e.partition_key.is_empty() {
            return Err(bad(EntryFault::EmptyPartitionKey));
        }
        if let Some(fault) = ts_fault(self.d, self.target, e.id.ts, e.id.ts) {
            return Err(bad(fault));
        }
        self.n += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::{BuildOptions, Builder, BulkRecord};
    use crate::segment::writer::SegmentLayout;

    const PARTITIONS: u32 = 2;

    fn target() -> LinkTarget {
        LinkTarget { partition_count: PARTITIONS, table_id: TableId(1), limits: Limits::default(), latest_ts: Ts::MAX }
    }

    /// A load whose files hold one-page blocks, blocks of a few pages and blocks larger than the
    /// smallest chunks read below.
    fn build(out: &Path) -> LoadDescriptor {
        let builder = Builder::new(BuildOptions {
            table: "t".into(),
            table_id: TableId(1),
            mode: LoadMode::Merge,
            snapshot_ms: 1_000_000,
            partition_count: PARTITIONS,
            latest_ts_ms: None,
            load_id: None,
            memory_limit_bytes: 64 << 20,
            threads: 1,
            fail_on_duplicate: false,
            limits: Limits::default(),
            layout: SegmentLayout {
                block_target_bytes: 4080,
                bloom_bits_per_key: 10,
                preallocate_bytes: 1 << 20,
                keep_blocks_bytes: 0,
            },
            out_dir: out.to_path_buf(),
            spill_dir: None,
        })
        .expect("builder");
        let mut sink = builder.sink(0);
        for i in 0..3000usize {
            let len = match i % 500 {
                250 => 40_000,
                1..=20 => 9_000,
                _ => 100 + i % 300,
            };
            let value = vec![b'a' + (i % 26) as u8; len];
            let record = BulkRecord {
                partition_key: format!("pk{}", i % 53).into_bytes(),
                sort_key: format!("sk{i:05}").into_bytes(),
                value: Some(value),
                ts_ms: None,
                ttl_ms: None,
            };
            sink.push(record).expect("push");
        }
        sink.finish().expect("finish");
        builder.finish(&|_| {}).expect("build").descriptor
    }

    fn code(dir: &Path, verify: Verify, chunk: usize) -> Result<ValidatedLoad, &'static str> {
        let d = read_descriptor(dir, PARTITIONS).map_err(|e| e.code())?;
        validate_in_chunks(dir, d, &target(), 2, verify, chunk).map_err(|e| e.code())
    }

    /// Rewrites file 0 of the load in `dir` with `edit`, and the descriptor with its new checksum.
    fn edit_file_and_reseal(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
        let mut d = LoadDescriptor::read(dir).expect("descriptor");
        let file = dir.join(&d.files[0].name);
        let mut bytes = std::fs::read(&file).expect("read");
        edit(&mut bytes);
        std::fs::write(&file, &bytes).expect("write");
        d.files[0].xxh3 = hex64(xxhash_rust::xxh3::xxh3_64(&bytes));
        d.seal();
        std::fs::write(dir.join(crate::bulk::DESCRIPTOR_FILE), d.to_file_bytes()).expect("write");
    }

    /// Where the first two adjacent one-page data blocks of the segment at `path` start.
    fn first_two_one_page_blocks(path: &Path) -> usize {
        block_on(async {
            let size = std::fs::metadata(path).expect("stat").len();
            let file = StdDisk.open(path, OpenMode::Existing).await.expect("open");
            let reader = SegmentReader::open_as_written(file, path, size).await.expect("segment");
            let i = (0..reader.block_count() - 1)
                .find(|&i| reader.block_extent(i).1 == 4096 && reader.block_extent(i + 1).1 == 4096)
                .expect("two one-page blocks");
            reader.block_extent(i).0 as usize
        })
    }

    #[test]
    fn every_chunk_size_reads_the_same_load_and_blocks_larger_than_a_chunk_grow_the_buffer() {
        let root = tempfile::tempdir().expect("tempdir");
        let d = build(root.path());
        assert!(d.files.iter().all(|f| f.size_bytes > 200 * 4096), "files span many chunks");
        let whole = code(root.path(), Verify::Full, READ_CHUNK_BYTES).expect("valid");
        for chunk in [4096, 3 * 4096, 5000, 64 << 10] {
            for verify in [Verify::Full, Verify::Checksums] {
                let load = code(root.path(), verify, chunk).expect("valid");
                let infos = |l: &ValidatedLoad| l.files.iter().map(|f| f.info.clone()).collect::<Vec<_>>();
                assert_eq!(infos(&load), infos(&whole), "chunk {chunk}, {verify:?}");
            }
        }
    }

    #[test]
    fn order_is_checked_across_chunks_and_a_fault_waits_for_the_whole_file_checksum() {
        let root = tempfile::tempdir().expect("tempdir");
        let unsorted = root.path().join("unsorted");
        build(&unsorted);
        // Blocks 1 and 2 swapped: each passes its checksum, but keys go backwards between them,
        // which a 4 KiB chunk sees only through the entry kept from the chunk before.
        let d = LoadDescriptor::read(&unsorted).expect("descriptor");
        let at = first_two_one_page_blocks(&unsorted.join(&d.files[0].name));
        edit_file_and_reseal(&unsorted, |bytes| {
            let (one, two) = bytes[at..at + 2 * 4096].split_at_mut(4096);
            one.swap_with_slice(two);
        });
        for chunk in [4096, READ_CHUNK_BYTES] {
            assert_eq!(code(&unsorted, Verify::Full, chunk).map(|_| ()), Err("unsorted"), "chunk {chunk}");
            assert!(code(&unsorted, Verify::Checksums, chunk).is_ok(), "checksums trusts the builder for order");
        }

        let flipped = root.path().join("flipped");
        build(&flipped);
        edit_file_and_reseal(&flipped, |bytes| bytes[5 * 4096 + 100] ^= 1);
        for chunk in [4096, READ_CHUNK_BYTES] {
            assert_eq!(code(&flipped, Verify::Full, chunk).map(|_| ()), Err("corrupt-segment"));
        }
        // The same flip with the descriptor's checksum left as it was: the block is found
        // corrupt first, but the file is refused for its checksum.
        let d = LoadDescriptor::read(&flipped).expect("descriptor");
        let file = flipped.join(&d.files[0].name);
        let mut bytes = std::fs::read(&file).expect("read");
        bytes[7 * 4096] ^= 1;
        std::fs::write(&file, &bytes).expect("write");
        for verify in [Verify::Full, Verify::Checksums] {
            assert_eq!(code(&flipped, verify, 4096).map(|_| ()), Err("checksum-mismatch"));
        }
    }
}
