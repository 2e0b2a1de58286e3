//! Link validation: everything about a load directory is checked against the store before
//! anything is touched, and any failure rejects the whole load with a precise reason.
//!
//! Per file: the name is a plain file name, the size and the whole-file xxh3 match the
//! descriptor, the segment opens (footer, index, bloom, metadata), every data block passes its
//! checksum, and every entry is in the right table and partition, strictly increasing in storage
//! order, of origin `Bulk` with the load's id, within the store's limits and its clock skew
//! bound and, for a replace load, not older than the snapshot. Reading every byte makes this the one part of a link whose
//! time grows with the data; it runs before the commit, off the serving path.

use super::descriptor::{DESCRIPTOR_FORMAT_VERSION, DescriptorError, LoadDescriptor, LoadMode, hex64};
use super::partition_of;
use crate::ids::{TableId, Ts};
use crate::io::std_fs::StdDisk;
use crate::io::{Disk, OpenMode};
use crate::options::Limits;
use crate::record::Entry;
use crate::segment::info::{SegmentInfo, SegmentKind};
use crate::segment::reader::SegmentReader;
use crate::version::OriginKind;
use futures_lite::future::block_on;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

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
            LoadRejection::BadEntry { .. } => "bad-entry",
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
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(f) = descriptor.files.get(i) else { break };
                    let r = validate_file(dir, &descriptor, f, target);
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

fn validate_file(
    dir: &Path,
    d: &LoadDescriptor,
    f: &super::LoadFile,
    target: &LinkTarget,
) -> Result<ValidatedFile, LoadRejection> {
    let name = || f.name.clone();
    let path = dir.join(&f.name);
    let unreadable = |e: &dyn std::fmt::Display| LoadRejection::Unreadable { name: name(), reason: e.to_string() };
    let actual = std::fs::metadata(&path).map_err(|e| unreadable(&e))?.len();
    if actual != f.size_bytes {
        return Err(LoadRejection::Size { name: name(), recorded: f.size_bytes, actual });
    }
    let computed = hex64(super::build::file_checksum(&path).map_err(|e| unreadable(&e))?);
    if computed != f.xxh3 {
        return Err(LoadRejection::Checksum { name: name(), recorded: f.xxh3.clone(), computed });
    }
    let corrupt = |e: crate::error::Error| LoadRejection::Corrupt { name: name(), reason: e.to_string() };
    block_on(async {
        let file = StdDisk.open(&path, OpenMode::Existing).await.map_err(|e| unreadable(&e))?;
        let reader = SegmentReader::open_as_written(file, &path, actual).await.map_err(corrupt)?;
        let info = reader.info().clone();
        if info.kind != SegmentKind::Bulk {
            return Err(LoadRejection::Corrupt { name: name(), reason: "not a bulk segment".into() });
        }
        let mut checker = EntryChecker { name: f.name.clone(), partition: f.partition, d, target, last: None, n: 0 };
        for i in 0..reader.block_count() {
            let payload = reader.block(i, None).await.map_err(corrupt)?;
            for e in reader.decode_block(i, &payload).map_err(corrupt)? {
                checker.check(e)?;
            }
        }
        if checker.n != info.entry_count || checker.n != f.entries {
            return Err(LoadRejection::Corrupt {
                name: name(),
                reason: format!(
                    "{} entries read, metadata says {}, descriptor says {}",
                    checker.n, info.entry_count, f.entries
                ),
            });
        }
        Ok(ValidatedFile { partition: f.partition, path: path.clone(), info })
    })
}

struct EntryChecker<'a> {
    name: String,
    partition: u32,
    d: &'a LoadDescriptor,
    target: &'a LinkTarget,
    last: Option<Entry>,
    n: u64,
}

impl EntryChecker<'_> {
    fn check(&mut self, e: crate::record::EntryRef<'_>) -> Result<(), LoadRejection> {
        let bad = |fault: EntryFault| LoadRejection::BadEntry { name: self.name.clone(), entry: self.n, fault };
        if e.table != self.target.table_id {
            return Err(bad(EntryFault::WrongTable { found: e.table.0, expected: self.target.table_id.0 }));
        }
        let key_partition = partition_of(e.partition_key, self.target.partition_count).0;
        if key_partition != self.partition {
            return Err(LoadRejection::KeyOutsidePartition {
                name: self.name.clone(),
                partition: self.partition,
                key_partition,
            });
        }
        if let Some(last) = &self.last
            && last.as_ref().storage_cmp(&e) != std::cmp::Ordering::Less
        {
            return Err(LoadRejection::Unsorted { name: self.name.clone(), entry: self.n });
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
        if self.d.mode == LoadMode::Replace && e.id.ts < Ts::from_millis(self.d.snapshot_ms) {
            return Err(bad(EntryFault::BeforeSnapshot { ts: e.id.ts }));
        }
        if e.id.ts > self.target.latest_ts {
            return Err(bad(EntryFault::TooFarInFuture { ts: e.id.ts, latest: self.target.latest_ts }));
        }
        self.last = Some(e.to_owned());
        self.n += 1;
        Ok(())
    }
}
