//! The offline builder: records in, per-partition sorted segment files and a load descriptor
//! out, with bounded memory and in parallel.
//!
//! 1. Each piece of an input (a whole file, or a Parquet row group) is read by one thread into
//!    an [`InputSink`]. A sink checks each record, turns it into an entry (origin `Bulk`,
//!    `seq = input << 40 | row`, the row counted from the start of the input, so splitting an
//!    input changes no entry), and buffers it. When the buffer reaches its share of the memory
//!    limit (a quarter of the limit over the threads), a helper thread sorts it (partition, then
//!    storage order) while the reader fills the next one: at most one run per sink is in flight,
//!    so two buffers bound the sink's memory, and all sinks together half the limit.
//! 2. A sorted run stays in memory while the runs kept there take at most the other half of the
//!    limit; past that it is written as a spill run. So records that fit are never written
//!    twice, and records that do not are sorted externally, in bounded memory.
//! 3. [`Builder::finish`] merges, partition by partition on `threads` threads, every run's
//!    section of that partition, keeps the greatest version of each key (the ordering rule: `ts`,
//!    then `seq`, so the later record wins a tie), and writes the partition's segment, hashing
//!    the file as it is written.
//! 4. The descriptor is written last, so a load directory without one is an unfinished build.
//!
//! The output depends only on the records and the options that shape data (table, mode,
//! snapshot, partitions, load id): not on the memory limit, the thread count, whether runs were
//! spilled, or timing. The same input gives byte-identical files.

use super::descriptor::{DESCRIPTOR_FILE, DESCRIPTOR_FORMAT_VERSION, LoadDescriptor, LoadFile, LoadMode, hex64};
use super::run_buffer::RunBuffer;
use super::spill::{self, SectionReader};
use super::{SEQ_INPUT_SHIFT, partition_of};
use crate::ids::{SegmentId, TableId, Ts};
use crate::io::std_fs::StdDisk;
use crate::options::Limits;
use crate::record::EntryRef;
use crate::segment::info::SegmentKind;
use crate::segment::writer::{SegmentLayout, SegmentWriter};
use crate::version::{Origin, OriginKind, VersionId};
use futures_lite::future::block_on;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use xxhash_rust::xxh3::Xxh3;

/// Room a sink's arena has past its budget, for the entry that crosses it.
const SINK_SLACK_BYTES: usize = 64 << 10;

/// One input record, as a reader of Parquet, JSON Lines or CSV produces it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkRecord {
    /// The partition key; not empty.
    pub partition_key: Vec<u8>,
    /// The sort key; empty if the table has none.
    pub sort_key: Vec<u8>,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// The record's own timestamp, milliseconds; `None` takes the snapshot.
    pub ts_ms: Option<u64>,
    /// Time to live from `ts`, milliseconds.
    pub ttl_ms: Option<u64>,
}

/// What shapes a build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The table's name.
    pub table: String,
    /// The table's id in the store the load is for.
    pub table_id: TableId,
    /// Merge or replace.
    pub mode: LoadMode,
    /// The snapshot, milliseconds since the Unix epoch.
    pub snapshot_ms: u64,
    /// The store's partition count.
    pub partition_count: u32,
    /// The latest timestamp accepted, milliseconds (the build's clock plus the store's skew
    /// bound): a later snapshot or record ts is refused here rather than at link. `None` checks
    /// nothing.
    pub latest_ts_ms: Option<u64>,
    /// The load id; `None` derives it from the options and the records.
    pub load_id: Option<u32>,
    /// Memory the buffered records of all inputs may take, bytes.
    pub memory_limit_bytes: usize,
    /// Threads reading inputs and merging partitions.
    pub threads: usize,
    /// Fail on the first key that appears twice, instead of keeping its greatest version.
    pub fail_on_duplicate: bool,
    /// Key and value limits (the store's).
    pub limits: Limits,
    /// Segment block and bloom layout.
    pub layout: SegmentLayout,
    /// The load directory to create; it must not exist or be empty.
    pub out_dir: PathBuf,
    /// Where spill runs go; default `out_dir/.spill`.
    pub spill_dir: Option<PathBuf>,
}

/// Which build option is off, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BadOptions {
    /// `partition_count` is 0.
    #[error("the partition count is at least 1")]
    NoPartitions,
    /// `load_id` is 0.
    #[error("load id 0 is reserved")]
    ReservedLoadId,
    /// The snapshot does not fit the 48 bits of milliseconds a timestamp has.
    #[error("the snapshot {snapshot_ms} ms is past the year 10889")]
    SnapshotTooLate {
        /// The snapshot given.
        snapshot_ms: u64,
    },
    /// The snapshot is past the clock skew bound.
    #[error("the snapshot {snapshot_ms} ms is beyond the clock skew bound (latest accepted now: {latest_ms} ms)")]
    SnapshotTooFarInFuture {
        /// The snapshot given.
        snapshot_ms: u64,
        /// The latest accepted.
        latest_ms: u64,
    },
    /// `threads` is 0.
    #[error("threads is at least 1")]
    NoThreads,
    /// Less than 1 MiB of memory per thread.
    #[error("the memory limit {limit_bytes} is under 1 MiB per thread ({min_bytes} bytes for {threads} threads)")]
    MemoryTooSmall {
        /// The limit given.
        limit_bytes: usize,
        /// The least it may be.
        min_bytes: usize,
        /// The threads asked for.
        threads: usize,
    },
    /// The output directory holds files already.
    #[error("output directory {} is not empty", dir.display())]
    OutputNotEmpty {
        /// The directory.
        dir: PathBuf,
    },
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A record is not acceptable.
    #[error("input {input}, record {row}: {reason}")]
    BadRecord {
        /// The input's number (0-based, in argument order).
        input: u32,
        /// The record's number in that input (0-based).
        row: u64,
        /// What is wrong.
        reason: String,
    },
    /// A key appears twice and `fail_on_duplicate` was asked for.
    #[error(
        "duplicate key (partition key {partition_key:?}, sort key {sort_key:?}): input {first_input} record {first_row} and input {second_input} record {second_row}"
    )]
    Duplicate {
        /// The partition key, lossily as text.
        partition_key: String,
        /// The sort key, lossily as text.
        sort_key: String,
        /// Where the winning version came from.
        first_input: u32,
        /// Its record number.
        first_row: u64,
        /// Where the other came from.
        second_input: u32,
        /// Its record number.
        second_row: u64,
    },
    /// The options do not make sense.
    #[error("{0}")]
    Options(#[from] BadOptions),
    /// A thread sorting or spilling a run panicked (a bug): the build is incomplete.
    #[error("a thread sorting a run panicked")]
    SpillPanicked,
    /// Writing a segment failed.
    #[error("writing a segment: {0}")]
    Segment(#[from] crate::error::Error),
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io { what, path: path.to_path_buf(), source }
}

/// What a finished build made.
#[derive(Debug, Clone)]
pub struct BuildSummary {
    /// The descriptor written.
    pub descriptor: LoadDescriptor,
    /// Spill runs written (0 if everything fit in memory).
    pub spill_runs: usize,
    /// Bytes written to spill runs.
    pub spill_bytes: u64,
    /// Sorted runs kept in memory until the merge.
    pub resident_runs: usize,
}

/// A sorted run of one sink's records, by partition: written to a spill file, or kept in
/// memory.
enum Run {
    Spilled(spill::Run),
    /// The sorted entries and each partition's range of them.
    Resident(RunBuffer, BTreeMap<u32, Range<usize>>),
}

impl Run {
    fn partitions(&self) -> Vec<u32> {
        match self {
            Run::Spilled(r) => r.sections.keys().copied().collect(),
            Run::Resident(_, sections) => sections.keys().copied().collect(),
        }
    }
}

/// Where the merge reads one run's section of a partition from, one entry at a time.
enum Source<'r> {
    File(SectionReader),
    Memory { run: &'r RunBuffer, entries: Range<usize> },
}

impl<'r> Source<'r> {
    fn next_entry(&mut self) -> std::io::Result<Option<Head<'r>>> {
        Ok(match self {
            Source::File(reader) => reader.next_entry()?.map(Head::Owned),
            Source::Memory { run, entries } => entries.next().map(|i| Head::Borrowed(run.entry(i))),
        })
    }
}

/// A source's next entry: borrowed from a run in memory, or read from a spill file.
enum Head<'r> {
    Borrowed(EntryRef<'r>),
    Owned(crate::record::Entry),
}

impl Head<'_> {
    fn entry(&self) -> EntryRef<'_> {
        match self {
            Head::Borrowed(e) => *e,
            Head::Owned(e) => e.as_ref(),
        }
    }
}

/// A source's next entry and the source's number, ordered by storage order, then source (for
/// a total order).
struct Ordered<'r>(Head<'r>, usize);

impl PartialEq for Ordered<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ordered<'_> {}
impl PartialOrd for Ordered<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ordered<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.entry().storage_cmp(&other.0.entry()).then(self.1.cmp(&other.1))
    }
}

/// A run being sorted (and maybe spilled) on a thread of its own.
type Sorting = std::thread::JoinHandle<Result<Run, BuildError>>;

/// A build in progress.
pub struct Builder {
    options: BuildOptions,
    spill_dir: PathBuf,
    /// True if the builder made the spill directory (and so removes it when done).
    made_spill_dir: bool,
    runs: Mutex<Vec<Run>>,
    spill_bytes: AtomicU64,
    /// Bytes of the runs kept in memory (reserved before they are sorted).
    resident_bytes: AtomicUsize,
    /// Per piece of an input, by (input, first row): (records, digest of its records).
    inputs: Mutex<BTreeMap<(u32, u64), (u64, u64)>>,
    next_run: AtomicU32,
}

impl Builder {
    /// Checks the options and creates the output and spill directories.
    pub fn new(options: BuildOptions) -> Result<Builder, BuildError> {
        if options.partition_count == 0 {
            return Err(BadOptions::NoPartitions.into());
        }
        if options.load_id == Some(0) {
            return Err(BadOptions::ReservedLoadId.into());
        }
        if options.snapshot_ms >= 1 << 48 {
            return Err(BadOptions::SnapshotTooLate { snapshot_ms: options.snapshot_ms }.into());
        }
        if let Some(latest_ms) = options.latest_ts_ms
            && options.snapshot_ms > latest_ms
        {
            return Err(BadOptions::SnapshotTooFarInFuture { snapshot_ms: options.snapshot_ms, latest_ms }.into());
        }
        if options.threads == 0 {
            return Err(BadOptions::NoThreads.into());
        }
        let min_memory = options.threads * (1 << 20);
        if options.memory_limit_bytes < min_memory {
            return Err(BadOptions::MemoryTooSmall {
                limit_bytes: options.memory_limit_bytes,
                min_bytes: min_memory,
                threads: options.threads,
            }
            .into());
        }
        let out = &options.out_dir;
        std::fs::create_dir_all(out).map_err(io_err("creating", out))?;
        if std::fs::read_dir(out).map_err(io_err("listing", out))?.next().is_some() {
            return Err(BadOptions::OutputNotEmpty { dir: out.clone() }.into());
        }
        let spill_dir = options.spill_dir.clone().unwrap_or_else(|| out.join(".spill"));
        let made_spill_dir = !spill_dir.exists();
        std::fs::create_dir_all(&spill_dir).map_err(io_err("creating", &spill_dir))?;
        Ok(Builder {
            options,
            spill_dir,
            made_spill_dir,
            runs: Mutex::new(Vec::new()),
            spill_bytes: AtomicU64::new(0),
            resident_bytes: AtomicUsize::new(0),
            inputs: Mutex::new(BTreeMap::new()),
            next_run: AtomicU32::new(0),
        })
    }

    /// A sink for input number `input` (0-based, in argument order), read whole. Each input
    /// gets exactly one sink, or one per piece (see [`Builder::sink_at`]); sinks may be filled
    /// on different threads at once.
    pub fn sink(&self, input: u32) -> InputSink<'_> {
        self.sink_at(input, 0)
    }

    /// A sink for the piece of input `input` whose first record is the input's record
    /// `first_row` (a Parquet row group, say): its records number on from there, so an input
    /// read in pieces gives the entries it gives read whole. The pieces of an input must not
    /// overlap, and must be the same on every build of it (the load id digests each piece).
    pub fn sink_at(&self, input: u32, first_row: u64) -> InputSink<'_> {
        let budget = self.options.memory_limit_bytes / self.options.threads / 4;
        InputSink {
            builder: self,
            input,
            first_row,
            row: first_row,
            buffer: RunBuffer::with_capacity(budget + SINK_SLACK_BYTES, 0),
            budget,
            sorting: None,
            hasher: Xxh3::new(),
        }
    }

    /// Reserves `bytes` of the resident half of the memory limit, if it has room.
    fn reserve_resident(&self, bytes: usize) -> bool {
        let limit = self.options.memory_limit_bytes / 2;
        self.resident_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| (r + bytes <= limit).then_some(r + bytes))
            .is_ok()
    }

    /// Starts sorting `buffer` on a thread of its own, to be kept in memory if the resident
    /// half of the limit has room, else written as a spill run.
    fn start_run(&self, mut buffer: RunBuffer) -> Sorting {
        let spill_to = (!self.reserve_resident(buffer.bytes())).then(|| {
            let n = self.next_run.fetch_add(1, Ordering::Relaxed);
            self.spill_dir.join(format!("run-{n:06}"))
        });
        std::thread::spawn(move || {
            buffer.sort();
            match spill_to {
                Some(path) => spill::write_run(&path, &buffer).map(Run::Spilled).map_err(|source| BuildError::Io {
                    what: "writing spill run",
                    path,
                    source,
                }),
                None => {
                    let sections = buffer.sections().into_iter().collect();
                    Ok(Run::Resident(buffer, sections))
                }
            }
        })
    }

    /// Waits for a run started by [`Builder::start_run`] and records it.
    fn finish_run(&self, sorting: Sorting) -> Result<(), BuildError> {
        let run = sorting.join().map_err(|_| BuildError::SpillPanicked)??;
        if let Run::Spilled(spilled) = &run {
            let bytes = spilled.sections.values().map(|s| s.len).sum::<u64>();
            self.spill_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        self.runs.lock().unwrap_or_else(|e| e.into_inner()).push(run);
        Ok(())
    }

    fn load_id(&self) -> u32 {
        if let Some(id) = self.options.load_id {
            return id;
        }
        let o = &self.options;
        let mut h = Xxh3::new();
        h.update(b"nacre bulk load 1");
        for part in [o.table.as_bytes(), &o.table_id.0.to_le_bytes(), o.mode.name().as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(&o.snapshot_ms.to_le_bytes());
        h.update(&o.partition_count.to_le_bytes());
        for ((input, first_row), (rows, digest)) in self.inputs.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h.update(&input.to_le_bytes());
            h.update(&first_row.to_le_bytes());
            h.update(&rows.to_le_bytes());
            h.update(&digest.to_le_bytes());
        }
        match h.digest() as u32 {
            0 => 1,
            id => id,
        }
    }

    /// Merges the runs into one segment per partition and writes the descriptor. `progress` is
    /// called with the entries merged so far.
    pub fn finish(self, progress: &(dyn Fn(u64) + Sync)) -> Result<BuildSummary, BuildError> {
        let load_id = self.load_id();
        let runs = std::mem::take(&mut *self.runs.lock().unwrap_or_else(|e| e.into_inner()));
        let partitions: Vec<u32> = {
            let mut p: Vec<u32> = runs.iter().flat_map(Run::partitions).collect();
            p.sort_unstable();
            p.dedup();
            p
        };
        let next = AtomicU32::new(0);
        let merged = AtomicU64::new(0);
        let results: Mutex<Vec<Result<(LoadFile, u64), BuildError>>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for _ in 0..self.options.threads.min(partitions.len()).max(1) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(&partition) = partitions.get(i) else { break };
                        let result = self.merge_partition(partition, load_id, &runs, &merged, progress);
                        let failed = result.is_err();
                        results.lock().unwrap_or_else(|e| e.into_inner()).push(result);
                        if failed {
                            // Stop handing out work; the build fails.
                            next.store(u32::MAX, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let mut files = Vec::new();
        let mut duplicates = 0;
        for r in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
            let (file, dups) = r?;
            files.push(file);
            duplicates += dups;
        }
        files.sort_by_key(|f| f.partition);
        let records = self.inputs.lock().unwrap_or_else(|e| e.into_inner()).values().map(|(rows, _)| rows).sum();
        let mut descriptor = LoadDescriptor {
            format_version: DESCRIPTOR_FORMAT_VERSION,
            segment_format_version: crate::segment::FORMAT_VERSION,
            load_id,
            table: self.options.table.clone(),
            table_id: self.options.table_id.0,
            mode: self.options.mode,
            snapshot_ms: self.options.snapshot_ms,
            partition_count: self.options.partition_count,
            records,
            duplicates,
            files,
            checksum: String::new(),
        };
        descriptor.seal();
        let out = &self.options.out_dir;
        let tmp = out.join(format!(".{DESCRIPTOR_FILE}.tmp"));
        write_durably(&tmp, &descriptor.to_file_bytes())?;
        let path = out.join(DESCRIPTOR_FILE);
        std::fs::rename(&tmp, &path).map_err(io_err("renaming", &tmp))?;
        sync_dir(out)?;
        let spill_runs = runs.iter().filter(|r| matches!(r, Run::Spilled(_))).count();
        // Only what the builder wrote: a spill directory given by the caller may hold other files.
        for run in &runs {
            if let Run::Spilled(spilled) = run {
                std::fs::remove_file(&spilled.path).map_err(io_err("removing", &spilled.path))?;
            }
        }
        if self.made_spill_dir {
            std::fs::remove_dir(&self.spill_dir).map_err(io_err("removing", &self.spill_dir))?;
        }
        Ok(BuildSummary {
            descriptor,
            spill_runs,
            spill_bytes: self.spill_bytes.load(Ordering::Relaxed),
            resident_runs: runs.len() - spill_runs,
        })
    }

    /// Merges one partition's sections into its segment file. Returns the file and the number
    /// of duplicates dropped.
    fn merge_partition(
        &self,
        partition: u32,
        load_id: u32,
        runs: &[Run],
        merged: &AtomicU64,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<(LoadFile, u64), BuildError> {
        let mut sources = Vec::new();
        for run in runs {
            match run {
                Run::Spilled(spilled) => {
                    if let Some(section) = spilled.sections.get(&partition) {
                        let reader =
                            SectionReader::open(&spilled.path, *section).map_err(io_err("opening", &spilled.path))?;
                        sources.push(Source::File(reader));
                    }
                }
                Run::Resident(buffer, sections) => {
                    if let Some(range) = sections.get(&partition) {
                        sources.push(Source::Memory { run: buffer, entries: range.clone() });
                    }
                }
            }
        }
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(head) = source.next_entry().map_err(io_err("reading spill run", &self.spill_dir))? {
                heap.push(Reverse(Ordered(head, i)));
            }
        }
        let name = format!("part-{partition:05}.seg");
        let path = self.options.out_dir.join(&name);
        let mut duplicates = 0;
        let mut local = 0u64;
        let finished = block_on(async {
            let mut writer =
                SegmentWriter::create(&StdDisk, &path, SegmentId(0), SegmentKind::Bulk, self.options.layout).await?;
            writer.hash_file();
            // The last key written (partition key, sort key) and its record's seq.
            let mut last: Option<(Vec<u8>, Vec<u8>, u64)> = None;
            while let Some(Reverse(Ordered(head, i))) = heap.pop() {
                let mut e = head.entry();
                match &mut last {
                    Some((pk, sk, seq)) if pk[..] == *e.partition_key && sk[..] == *e.sort_key => {
                        if self.options.fail_on_duplicate {
                            let (first_input, first_row) = split_seq(*seq);
                            let (second_input, second_row) = split_seq(e.id.origin.seq);
                            return Err(BuildError::Duplicate {
                                partition_key: String::from_utf8_lossy(e.partition_key).into_owned(),
                                sort_key: String::from_utf8_lossy(e.sort_key).into_owned(),
                                first_input,
                                first_row,
                                second_input,
                                second_row,
                            });
                        }
                        duplicates += 1;
                    }
                    _ => {
                        let (pk, sk, seq) = last.get_or_insert_with(Default::default);
                        pk.clear();
                        pk.extend_from_slice(e.partition_key);
                        sk.clear();
                        sk.extend_from_slice(e.sort_key);
                        *seq = e.id.origin.seq;
                        e.id.origin.source_id = load_id;
                        writer.add(e).await?;
                        local += 1;
                        if local.is_multiple_of(65_536) {
                            progress(merged.fetch_add(65_536, Ordering::Relaxed) + 65_536);
                        }
                    }
                }
                if let Some(next) = sources[i].next_entry().map_err(io_err("reading spill run", &self.spill_dir))? {
                    heap.push(Reverse(Ordered(next, i)));
                }
            }
            Ok::<_, BuildError>(writer.finish().await?)
        })?;
        progress(merged.fetch_add(local % 65_536, Ordering::Relaxed) + local % 65_536);
        let info = finished.info;
        let checksum = finished.file_xxh3.expect("the writer was asked to hash the file");
        Ok((
            LoadFile { partition, name, size_bytes: info.size_bytes, xxh3: hex64(checksum), entries: info.entry_count },
            duplicates,
        ))
    }
}

/// `(input, row)` of a bulk record's `seq`.
pub fn split_seq(seq: u64) -> (u32, u64) {
    ((seq >> SEQ_INPUT_SHIFT) as u32, seq & ((1 << SEQ_INPUT_SHIFT) - 1))
}

/// xxh3-64 of a whole file.
pub fn file_checksum(path: &Path) -> Result<u64, BuildError> {
    let mut file = std::fs::File::open(path).map_err(io_err("opening", path))?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err("reading", path))?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io_err("creating", path))?;
    f.write_all(bytes).map_err(io_err("writing", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

fn sync_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("syncing", dir))
}

/// Takes the records of one input.
pub struct InputSink<'a> {
    builder: &'a Builder,
    input: u32,
    /// The input's record number of this piece's first record.
    first_row: u64,
    /// The input's record number of the next record.
    row: u64,
    buffer: RunBuffer,
    budget: usize,
    /// The run being sorted, if any.
    sorting: Option<Sorting>,
    hasher: Xxh3,
}

impl InputSink<'_> {
    /// Checks and takes the next record of this input.
    pub fn push(&mut self, r: BulkRecord) -> Result<(), BuildError> {
        let o = &self.builder.options;
        let row = self.row;
        let bad = |reason: String| BuildError::BadRecord { input: self.input, row, reason };
        if row >= 1 << SEQ_INPUT_SHIFT {
            return Err(bad(format!("an input holds at most 2^{SEQ_INPUT_SHIFT} records")));
        }
        if r.partition_key.is_empty() {
            return Err(bad("the partition key is empty".into()));
        }
        let limits = &o.limits;
        for (what, len, max) in [
            ("partition key", r.partition_key.len(), limits.max_partition_key_bytes),
            ("sort key", r.sort_key.len(), limits.max_sort_key_bytes),
            ("value", r.value.as_ref().map_or(0, Vec::len), limits.max_value_bytes),
        ] {
            if len > max {
                return Err(bad(format!("the {what} is {len} bytes, over the limit of {max}")));
            }
        }
        let ts_ms = r.ts_ms.unwrap_or(o.snapshot_ms);
        if ts_ms >= 1 << 48 {
            return Err(bad(format!("ts {ts_ms} is past the year 10889")));
        }
        if let Some(latest_ms) = o.latest_ts_ms
            && ts_ms > latest_ms
        {
            return Err(bad(format!(
                "ts {ts_ms} is beyond the clock skew bound (latest accepted now: {latest_ms}): it would pin its key"
            )));
        }
        if o.mode == LoadMode::Replace && ts_ms < o.snapshot_ms {
            return Err(bad(format!(
                "ts {ts_ms} is before the snapshot {}: a replace load's own watermark would hide it",
                o.snapshot_ms
            )));
        }
        let expires_at_ms = match r.ttl_ms {
            None => None,
            Some(ttl) => Some(ts_ms.checked_add(ttl).ok_or_else(|| bad(format!("ttl {ttl} overflows")))?),
        };
        if r.value.is_none() && r.ttl_ms.is_some() {
            return Err(bad("a tombstone (null value) cannot carry a ttl".into()));
        }
        self.digest(&r, ts_ms);
        let partition = partition_of(&r.partition_key, o.partition_count).0;
        let seq = (u64::from(self.input) << SEQ_INPUT_SHIFT) | row;
        self.buffer.push(
            partition,
            EntryRef {
                table: o.table_id,
                partition_key: &r.partition_key,
                sort_key: &r.sort_key,
                id: VersionId {
                    ts: Ts::from_millis(ts_ms),
                    origin: Origin { kind: OriginKind::Bulk, source_id: 0, seq },
                },
                value: r.value.as_deref(),
                expires_at_ms,
            },
        );
        self.row += 1;
        if self.buffer.bytes() >= self.budget {
            self.hand_off()?;
        }
        Ok(())
    }

    fn digest(&mut self, r: &BulkRecord, ts_ms: u64) {
        let h = &mut self.hasher;
        for part in [&r.partition_key[..], &r.sort_key[..]] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        match &r.value {
            Some(v) => {
                h.update(&[1]);
                h.update(&(v.len() as u64).to_le_bytes());
                h.update(v);
            }
            None => h.update(&[0]),
        }
        h.update(&ts_ms.to_le_bytes());
        h.update(&r.ttl_ms.map_or(u64::MAX, |t| t).to_le_bytes());
    }

    /// Hands the buffer to a sorting thread, after the previous run (if any) is done.
    fn hand_off(&mut self) -> Result<(), BuildError> {
        if let Some(previous) = self.sorting.take() {
            self.builder.finish_run(previous)?;
        }
        // The next buffer has room for as many entries as this one took.
        let next = RunBuffer::with_capacity(self.budget + SINK_SLACK_BYTES, self.buffer.len() + self.buffer.len() / 8);
        let full = std::mem::replace(&mut self.buffer, next);
        self.sorting = Some(self.builder.start_run(full));
        Ok(())
    }

    /// Records taken so far.
    pub fn rows(&self) -> u64 {
        self.row - self.first_row
    }

    /// Ends the input (or the piece of it): hands off what is buffered. Returns the number of
    /// records it held.
    pub fn finish(mut self) -> Result<u64, BuildError> {
        if !self.buffer.is_empty() {
            self.hand_off()?;
        }
        if let Some(last) = self.sorting.take() {
            self.builder.finish_run(last)?;
        }
        let digest = self.hasher.digest();
        let rows = self.rows();
        self.builder
            .inputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((self.input, self.first_row), (rows, digest));
        Ok(rows)
    }
}
