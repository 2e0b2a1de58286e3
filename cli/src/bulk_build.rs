//! `nacre bulk build`: reads Parquet, JSON Lines or CSV files and writes a load directory (one
//! sorted segment per partition plus `load.json`) for `nacre bulk link`. It runs offline, on
//! any machine, with no daemon: unlike the rest of the CLI it links storage, whose offline
//! builder ([`nacre_storage::bulk::Builder`]) does the sorting, merging and writing.
//!
//! This module owns the command's flags, reading the inputs in parallel (up to `--threads`
//! inputs at once, each by one thread, input number = position on the command line), the
//! progress bar and the summary. The readers live in `bulk_build/` ([`parquet`], [`jsonl`],
//! [`csv`]), and the one set of conversion rules they share in [`column`]:
//!
//! - key, sort key, value: UTF-8 text → its bytes; binary → the raw bytes; an integer → its
//!   decimal text; a boolean → `true` / `false`; as a value only, a JSON object, array or
//!   non-integer number → its compact JSON text;
//! - a null value is a tombstone; a null key or sort key is an error;
//! - ts: integer milliseconds since the Unix epoch (for Parquet also a Timestamp column of any
//!   unit); null takes the snapshot. ttl: integer milliseconds; null is none. A negative or
//!   non-integer ts or ttl is an error;
//! - CSV fields are all text, so CSV cannot express a tombstone: an empty value field is an
//!   empty value, and an empty ts or ttl field is null.
//!
//! Every error names the input file and the line (JSON Lines, CSV) or 0-based record number
//! (Parquet). A failed build removes its spill files and the segments it wrote.

pub mod byte_size;
pub mod column;
pub mod csv;
pub mod input;
pub mod jsonl;
pub mod parquet;
mod progress;
#[cfg(test)]
mod testing;

use anyhow::Context;
use column::Columns;
use input::Format;
use nacre_storage::bulk::{BuildError, BuildOptions, BuildSummary, Builder, LoadMode};
use nacre_storage::segment::writer::SegmentLayout;
use nacre_storage::{Clock, EngineOptions, Limits, TableId};
use nacre_wire::Ts;
use progress::Progress;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

/// Segment preallocation step, bytes.
const PREALLOCATE_BYTES: u64 = 4 << 20;

/// The conversion rules, shown at the end of `--help`.
const CONVERSION_HELP: &str = "\
Conversion rules (all formats):
  key, sort key, value: UTF-8 text -> its bytes; binary -> the raw bytes; an integer -> its
    decimal text; a boolean -> \"true\" / \"false\"; as a value only, a JSON object, array or
    non-integer number -> its compact JSON text. Without --sort-key the sort key is empty.
  null: a null value is a tombstone; a null key or sort key is an error.
  ts: integer milliseconds since the Unix epoch (Parquet: also a Timestamp column of any unit,
    truncated to the millisecond); null takes --snapshot-ts. ttl: integer milliseconds from ts;
    null is no ttl. A negative or non-integer ts or ttl is an error.
  JSON Lines: one object per line, blank lines skipped; every named column must be a field of
    every object (null allowed).
  CSV: the first row is the header and every field is text, so CSV cannot express a tombstone:
    an empty value field is an empty value; an empty ts or ttl field is null.
  Parquet: Utf8, LargeUtf8, Utf8View, Binary, LargeBinary, BinaryView, Int8..Int64,
    UInt8..UInt64, Boolean and dictionaries of these; Timestamp for ts.
Errors name the input file and its line (JSON Lines, CSV) or 0-based record (Parquet).";

/// How a load combines with what the table holds.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Upsert the records at the snapshot; nothing else changes.
    Merge,
    /// Everything in the table older than the snapshot is superseded by the load.
    Replace,
}

/// `nacre bulk build`.
#[derive(clap::Args, Debug, Clone)]
#[command(after_long_help = CONVERSION_HELP)]
pub struct BulkBuildArgs {
    /// The table the load is for.
    #[arg(long, value_name = "NAME")]
    pub table: String,
    /// The table's id in the store the load is for. Table ids are fixed when a table is
    /// created; `nacre table list` prints them. Not needed with --from-server.
    #[arg(long, value_name = "ID", required_unless_present = "from_server")]
    pub table_id: Option<u32>,
    /// merge: upsert the records; replace: also supersede everything older than the snapshot.
    #[arg(long, value_enum)]
    pub mode: Mode,
    /// The load's snapshot: every record's default ts, and a replace load's watermark. RFC 3339
    /// or integer milliseconds since the Unix epoch.
    #[arg(long, value_name = "TS", value_parser = super::time::parse_ts)]
    pub snapshot_ts: Ts,
    /// The store's partition count (keys are assigned to partitions as the store does). Not
    /// needed with --from-server.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u32).range(1..), required_unless_present = "from_server")]
    pub partitions: Option<u32>,
    /// Ask the server at --addr for the table's id and the partition count (if --table-id or
    /// --partitions is given too, it must agree). Without it the build is offline and needs both.
    #[arg(long)]
    pub from_server: bool,
    /// The input files' format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// The partition key's column.
    #[arg(long, value_name = "COL")]
    pub key: String,
    /// The sort key's column; without it every sort key is empty.
    #[arg(long, value_name = "COL")]
    pub sort_key: Option<String>,
    /// The value's column (null: a tombstone).
    #[arg(long, value_name = "COL")]
    pub value: String,
    /// The record timestamp's column: integer milliseconds since the Unix epoch (Parquet: or a
    /// Timestamp); null or absent: the snapshot.
    #[arg(long, value_name = "COL")]
    pub ts: Option<String>,
    /// The time-to-live's column: integer milliseconds from the record's ts; null: none.
    #[arg(long, value_name = "COL")]
    pub ttl: Option<String>,
    /// The input files, numbered in this order (a later record wins a tie between versions).
    #[arg(value_name = "INPUT", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The load directory to write; it must not exist or be empty.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The load id (nonzero); by default derived from the options and the records.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub load_id: Option<u32>,
    /// Memory the buffered records may take before they are spilled to disk: bytes, or with a
    /// unit (64MiB, 1GiB, 500MB). At least 1 MiB per thread.
    #[arg(long, value_name = "BYTES", default_value = "1GiB", value_parser = byte_size::parse_bytes)]
    pub memory_limit: usize,
    /// Threads reading inputs (one per input) and merging partitions [default: the CPU count].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: Option<u64>,
    /// Fail on a key that appears twice instead of keeping its greatest version (greatest ts,
    /// then the later record).
    #[arg(long)]
    pub fail_on_duplicate: bool,
    /// How far past this machine's clock a snapshot or record ts may be, milliseconds: the
    /// store's `limits.max_clock_skew_ms`, which refuses such a load at link anyway.
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub max_clock_skew_ms: u64,
    /// Where spill files go (in a new subdirectory); default OUT/.spill.
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl BulkBuildArgs {
    /// The columns named.
    pub fn columns(&self) -> Columns {
        Columns {
            key: self.key.clone(),
            sort_key: self.sort_key.clone(),
            value: self.value.clone(),
            ts: self.ts.clone(),
            ttl: self.ttl.clone(),
        }
    }

    /// The builder's options.
    fn build_options(&self) -> anyhow::Result<BuildOptions> {
        if self.snapshot_ts.0 & ((1 << Ts::LOGICAL_BITS) - 1) != 0 {
            anyhow::bail!("--snapshot-ts has millisecond precision; give it without a logical counter");
        }
        let threads = match self.threads {
            Some(n) => usize::try_from(n).context("--threads")?,
            None => std::thread::available_parallelism().map_or(1, usize::from),
        };
        let spill_dir = match &self.spill_dir {
            // A fresh subdirectory: the spill directory is removed when the build ends.
            Some(dir) => dir.join(format!(".nacre-bulk-spill-{}", std::process::id())),
            None => self.out.join(".spill"),
        };
        let engine = EngineOptions::default();
        let (Some(table_id), Some(partition_count)) = (self.table_id, self.partitions) else {
            anyhow::bail!("an offline build needs --table-id and --partitions (or --from-server to ask the server)");
        };
        Ok(BuildOptions {
            table: self.table.clone(),
            table_id: TableId(table_id),
            mode: match self.mode {
                Mode::Merge => LoadMode::Merge,
                Mode::Replace => LoadMode::Replace,
            },
            snapshot_ms: self.snapshot_ts.millis(),
            partition_count,
            latest_ts_ms: Some(nacre_storage::SystemClock.now_ms().saturating_add(self.max_clock_skew_ms)),
            load_id: self.load_id,
            memory_limit_bytes: self.memory_limit,
            threads,
            fail_on_duplicate: self.fail_on_duplicate,
            limits: Limits::default(),
            layout: SegmentLayout {
                block_target_bytes: engine.block_target_bytes,
                bloom_bits_per_key: engine.bloom_bits_per_key,
                preallocate_bytes: PREALLOCATE_BYTES,
                keep_blocks_bytes: 0,
            },
            out_dir: self.out.clone(),
            spill_dir: Some(spill_dir),
        })
    }
}

/// `args` with the table id and partition count the server at the other end of `client` gives,
/// refusing a --table-id or --partitions that disagrees with it.
pub async fn with_server_target(args: &BulkBuildArgs, client: &nacre_wire::Client) -> anyhow::Result<BulkBuildArgs> {
    let partitions = client.topology().await.context("asking the server for its partition count")?.partition_count;
    let tables = client.list_tables().await.context("asking the server for its tables")?;
    let Some(table) = tables.iter().find(|t| t.name == args.table) else {
        anyhow::bail!("the server has no table named {:?} (`nacre table list` shows its tables)", args.table);
    };
    if table.id == 0 {
        anyhow::bail!(
            "the server does not report table ids; give --table-id and --partitions instead of --from-server"
        );
    }
    let mut resolved = args.clone();
    for (flag, given, server) in
        [("--table-id", args.table_id, table.id), ("--partitions", args.partitions, partitions)]
    {
        if given.is_some_and(|g| g != server) {
            anyhow::bail!("{flag} {} disagrees with the server, which says {server}", given.unwrap_or_default());
        }
    }
    resolved.table_id = Some(table.id);
    resolved.partitions = Some(partitions);
    Ok(resolved)
}

/// Runs the build and prints its summary on stdout.
pub fn run(args: &BulkBuildArgs) -> anyhow::Result<BuildSummary> {
    let started = Instant::now();
    let options = args.build_options()?;
    let threads = options.threads;
    let spill_dir = options.spill_dir.clone().expect("build_options names the spill directory");
    u32::try_from(args.inputs.len()).context("too many inputs")?;
    let mut total_bytes = 0;
    for path in &args.inputs {
        total_bytes += std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    }
    let out_existed = args.out.exists();
    let builder = Builder::new(options)?;
    let progress = Progress::reading(total_bytes, args.no_progress);
    let result = read_inputs(&builder, args, threads, &progress).and_then(|records| {
        progress.merging(records);
        builder.finish(&|n| progress.merged(n)).map_err(|e| explain(e, &args.inputs))
    });
    progress.finish();
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            clean_up(&args.out, out_existed, &spill_dir);
            return Err(e);
        }
    };
    print_summary(&summary, &args.out, started);
    Ok(summary)
}

/// Reads every input into its sinks, `threads` pieces at a time (a Parquet file's row groups
/// are read in parallel; a text file by one thread). Returns the records read. On failure, the
/// error of the first failed piece (by input, then record) is returned.
fn read_inputs(builder: &Builder, args: &BulkBuildArgs, threads: usize, progress: &Progress) -> anyhow::Result<u64> {
    let columns = args.columns();
    let mut pieces = Vec::new();
    for (index, path) in args.inputs.iter().enumerate() {
        pieces.extend(input::pieces(args.format, index, path)?);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let records = AtomicU64::new(0);
    let errors: Mutex<Vec<((usize, u64), anyhow::Error)>> = Mutex::new(Vec::new());
    let on_bytes = |bytes| progress.read(bytes);
    std::thread::scope(|scope| {
        for _ in 0..threads.min(pieces.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(&piece) = pieces.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                    let path = &args.inputs[piece.input];
                    let number = u32::try_from(piece.input).expect("run checked the input count fits a u32");
                    let mut sink = builder.sink_at(number, piece.first_row);
                    let result = input::read_piece(args.format, path, piece, &columns, &mut sink, &on_bytes)
                        .map_err(anyhow::Error::from)
                        .and_then(|()| sink.finish().with_context(|| format!("finishing {}", path.display())));
                    match result {
                        Ok(n) => {
                            records.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            let at = (piece.input, piece.first_row);
                            errors.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((at, e));
                        }
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    match errors.into_iter().min_by_key(|(at, _)| *at) {
        Some((_, e)) => Err(e),
        None => Ok(records.into_inner()),
    }
}

/// A builder error with input numbers replaced by the inputs' paths.
fn explain(error: BuildError, inputs: &[PathBuf]) -> anyhow::Error {
    let path =
        |input: u32| inputs.get(input as usize).map_or_else(|| format!("input {input}"), |p| p.display().to_string());
    match error {
        BuildError::Duplicate { partition_key, sort_key, first_input, first_row, second_input, second_row } => {
            anyhow::anyhow!(
                "duplicate key (partition key {partition_key:?}, sort key {sort_key:?}): record {first_row} of {} \
                 (the greater version) and record {second_row} of {} (records count from 0 in each input, without \
                 a CSV header or blank lines)",
                path(first_input),
                path(second_input)
            )
        }
        BuildError::BadRecord { input, row, reason } => {
            anyhow::anyhow!("{}, record {row}: {reason}", path(input))
        }
        other => other.into(),
    }
}

/// Removes what a failed build wrote: the spill directory, the segments, and the output
/// directory if the build created it. Best effort: the error being reported matters more.
fn clean_up(out: &Path, out_existed: bool, spill_dir: &Path) {
    let _ = std::fs::remove_dir_all(spill_dir);
    if let Ok(entries) = std::fs::read_dir(out) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if (name.starts_with("part-") && name.ends_with(".seg")) || name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    if !out_existed {
        let _ = std::fs::remove_dir(out);
    }
}

fn print_summary(summary: &BuildSummary, out: &Path, started: Instant) {
    let d = &summary.descriptor;
    let bytes: u64 = d.files.iter().map(|f| f.size_bytes).sum();
    println!("built load {} for table {} ({}, snapshot {} ms)", d.load_id, d.table, d.mode.name(), d.snapshot_ms);
    println!("  files       {} of {} partitions", d.files.len(), d.partition_count);
    println!("  records     {} ({} duplicates dropped)", d.records, d.duplicates);
    println!("  bytes       {bytes}");
    println!(
        "  runs        {} in memory, {} spilled ({} bytes)",
        summary.resident_runs, summary.spill_runs, summary.spill_bytes
    );
    println!("  elapsed     {:.2?}", started.elapsed());
    println!("  out         {}", out.display());
}

#[cfg(test)]
mod tests {
    use super::testing::segment_entries;
    use super::*;
    use clap::{Args as _, CommandFactory as _};
    use nacre_storage::bulk::{DESCRIPTOR_FILE, LoadDescriptor};
    use std::collections::BTreeMap;
    use std::io::Write;

    const SNAPSHOT_MS: u64 = 1_700_000_000_000;

    fn args(inputs: Vec<PathBuf>, out: PathBuf, format: Format) -> BulkBuildArgs {
        BulkBuildArgs {
            table: "t".into(),
            table_id: Some(3),
            mode: Mode::Merge,
            snapshot_ts: Ts::from_millis(SNAPSHOT_MS),
            partitions: Some(8),
            from_server: false,
            format,
            key: "k".into(),
            sort_key: None,
            value: "v".into(),
            ts: None,
            ttl: None,
            inputs,
            out,
            load_id: None,
            memory_limit: 1 << 30,
            threads: None,
            fail_on_duplicate: false,
            max_clock_skew_ms: 60_000,
            spill_dir: None,
            no_progress: true,
        }
    }

    /// Every file of `dir` (recursively) by relative path, with its bytes.
    fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("list") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    let rel = path.strip_prefix(dir).expect("under dir").to_path_buf();
                    files.insert(rel, std::fs::read(&path).expect("read"));
                }
            }
        }
        files
    }

    #[test]
    fn the_command_definition_is_consistent_and_documents_the_rules() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            build: BulkBuildArgs,
        }
        Cli::command().debug_assert();
        let help = BulkBuildArgs::augment_args(clap::Command::new("build")).render_long_help().to_string();
        for expected in ["nacre table list", "cannot express a tombstone", "Timestamp", "--fail-on-duplicate"] {
            assert!(help.contains(expected), "help lacks {expected:?}:\n{help}");
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "build",
            "--table",
            "t",
            "--table-id",
            "4",
            "--mode",
            "replace",
            "--snapshot-ts",
            "2026-01-01T00:00:00Z",
            "--partitions",
            "16",
            "--format",
            "csv",
            "--key",
            "k",
            "--value",
            "v",
            "--out",
            "o",
            "--memory-limit",
            "64MiB",
            "a.csv",
            "b.csv",
        ])
        .expect("valid");
        let b = cli.build;
        assert_eq!((b.table_id, b.mode, b.partitions, b.format), (Some(4), Mode::Replace, Some(16), Format::Csv));
        assert_eq!(b.snapshot_ts.millis(), 1_767_225_600_000);
        assert_eq!((b.memory_limit, b.threads, b.load_id), (64 << 20, None, None));
        assert_eq!(b.inputs, [PathBuf::from("a.csv"), PathBuf::from("b.csv")]);
        let no_inputs = ["build", "--table", "t", "--table-id", "4", "--mode", "merge", "--snapshot-ts", "0"];
        assert!(<Cli as clap::Parser>::try_parse_from(no_inputs).is_err());
    }

    #[test]
    fn spilling_and_thread_count_do_not_change_the_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut inputs = Vec::new();
        let mut written = 0u64;
        for n in 0..2 {
            let path = dir.path().join(format!("in-{n}.jsonl"));
            let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
            for i in 0..20_000u64 {
                // Keys interleave across the two inputs; about 100 bytes a record.
                let key = format!("user-{:08}", i * 2 + n);
                writeln!(f, r#"{{"k": "{key}", "v": "{:0>80}", "ts": {}}}"#, i * 7919 % 100_003, SNAPSHOT_MS + i)
                    .expect("write");
                written += 1;
            }
            f.flush().expect("flush");
            inputs.push(path);
        }
        let spilled_out = dir.path().join("spilled");
        let mut spilled = args(inputs.clone(), spilled_out.clone(), Format::Jsonl);
        spilled.ts = Some("ts".into());
        spilled.threads = Some(1);
        spilled.memory_limit = 1 << 20;
        let spilled_summary = run(&spilled).expect("spilled build");
        let default_out = dir.path().join("default");
        let mut default = args(inputs, default_out.clone(), Format::Jsonl);
        default.ts = Some("ts".into());
        let default_summary = run(&default).expect("default build");

        assert!(spilled_summary.spill_runs >= 8, "{} spill runs", spilled_summary.spill_runs);
        assert_eq!(
            (default_summary.spill_runs, default_summary.resident_runs),
            (0, 2),
            "one run per input, kept in memory, when everything fits"
        );
        let (a, b) = (tree(&spilled_out), tree(&default_out));
        assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
        for (name, bytes) in &a {
            assert!(bytes == &b[name], "{} differs", name.display());
        }
        assert!(a.contains_key(Path::new(DESCRIPTOR_FILE)) && a.len() == 9, "8 segments and the descriptor");
        let d = LoadDescriptor::read(&spilled_out).expect("descriptor");
        assert_eq!((d.records, d.duplicates), (written, 0));
        assert_eq!(d.files.iter().map(|f| f.entries).sum::<u64>(), written);
        let entries: usize = d.files.iter().map(|f| segment_entries(&spilled_out.join(&f.name)).len()).sum();
        assert_eq!(entries as u64, written);
    }

    /// A Parquet file of `rows` records (keys repeat, so later records win ties) in row groups
    /// of `group_rows`.
    fn parquet_input(path: &Path, rows: usize, group_rows: usize) {
        use ::parquet::arrow::ArrowWriter;
        use ::parquet::file::properties::WriterProperties;
        use arrow_array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
        let keys: Vec<String> = (0..rows).map(|i| format!("user-{:06}", i * 7919 % (rows * 3 / 4))).collect();
        let values: Vec<String> = (0..rows).map(|i| format!("{i:0>90}")).collect();
        let ts: Vec<u64> = (0..rows).map(|i| SNAPSHOT_MS + (i % 5) as u64).collect();
        let batch = RecordBatch::try_from_iter([
            ("k", std::sync::Arc::new(StringArray::from(keys)) as ArrayRef),
            ("v", std::sync::Arc::new(StringArray::from(values)) as ArrayRef),
            ("ts", std::sync::Arc::new(UInt64Array::from(ts)) as ArrayRef),
        ])
        .expect("batch");
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(group_rows)).build();
        let file = std::fs::File::create(path).expect("create");
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    #[test]
    fn a_parquet_file_read_by_row_group_gives_the_same_load_whatever_the_threads_and_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.parquet");
        parquet_input(&input, 30_000, 4_000);
        assert_eq!(input::pieces(Format::Parquet, 0, &input).expect("pieces").len(), 8, "8 row groups, 8 pieces");
        let mut outputs = Vec::new();
        for (threads, memory_limit) in [(1, 1 << 30), (4, 1 << 30), (3, 4 << 20), (1, 1 << 20)] {
            let out = dir.path().join(format!("out-{threads}-{memory_limit}"));
            let mut a = args(vec![input.clone()], out.clone(), Format::Parquet);
            a.ts = Some("ts".into());
            a.threads = Some(threads);
            a.memory_limit = memory_limit;
            let summary = run(&a).expect("builds");
            let d = &summary.descriptor;
            assert_eq!(d.records, 30_000);
            assert_eq!(d.files.iter().map(|f| f.entries).sum::<u64>() + d.duplicates, 30_000);
            println!(
                "threads {threads}, memory {memory_limit}: {} spilled, {} in memory",
                summary.spill_runs, summary.resident_runs
            );
            outputs.push((summary.spill_runs, tree(&out)));
        }
        assert_eq!(outputs[0].0, 0, "everything fits in 1 GiB");
        assert!(outputs[3].0 > 0, "1 MiB spills");
        let (_, first) = &outputs[0];
        for (_, other) in &outputs[1..] {
            assert_eq!(first.keys().collect::<Vec<_>>(), other.keys().collect::<Vec<_>>());
            for (name, bytes) in first {
                assert!(bytes == &other[name], "{} differs", name.display());
            }
        }
        // The greatest version of each key wins: its record is the last with the greatest ts.
        let out = dir.path().join(format!("out-1-{}", 1 << 30));
        let d = LoadDescriptor::read(&out).expect("descriptor");
        let mut got = BTreeMap::new();
        for f in &d.files {
            for e in segment_entries(&out.join(&f.name)) {
                got.insert(e.0.clone(), e.2.clone());
            }
        }
        let mut want: BTreeMap<Vec<u8>, (u64, usize)> = BTreeMap::new();
        for i in 0..30_000usize {
            let key = format!("user-{:06}", i * 7919 % 22_500).into_bytes();
            let ts = SNAPSHOT_MS + (i % 5) as u64;
            let slot = want.entry(key).or_insert((ts, i));
            if (ts, i) >= *slot {
                *slot = (ts, i);
            }
        }
        assert_eq!(got.len(), want.len());
        for (key, (_, i)) in want {
            assert_eq!(got[&key].as_deref(), Some(format!("{i:0>90}").as_bytes()), "{}", String::from_utf8_lossy(&key));
        }
    }

    #[test]
    fn a_later_duplicate_wins_and_fail_on_duplicate_names_both_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("dup.jsonl");
        std::fs::write(
            &input,
            "{\"k\": \"a\", \"v\": \"first\"}\n{\"k\": \"b\", \"v\": \"other\"}\n{\"k\": \"a\", \"v\": \"second\"}\n",
        )
        .expect("write");
        let out = dir.path().join("out");
        let mut a = args(vec![input.clone()], out.clone(), Format::Jsonl);
        a.partitions = Some(1);
        let summary = run(&a).expect("builds");
        assert_eq!((summary.descriptor.records, summary.descriptor.duplicates), (3, 1));
        let entries = segment_entries(&out.join("part-00000.seg"));
        let values: Vec<_> = entries.iter().map(|e| (e.0.as_slice(), e.2.as_deref(), e.3)).collect();
        assert_eq!(
            values,
            [(&b"a"[..], Some(&b"second"[..]), SNAPSHOT_MS), (&b"b"[..], Some(&b"other"[..]), SNAPSHOT_MS)]
        );

        let failing_out = dir.path().join("failing");
        let mut failing = args(vec![input.clone()], failing_out.clone(), Format::Jsonl);
        failing.fail_on_duplicate = true;
        let e = run(&failing).expect_err("a duplicate fails the build").to_string();
        let shown = input.display().to_string();
        assert!(e.contains("partition key \"a\""), "{e}");
        assert!(e.contains(&format!("record 2 of {shown}")) && e.contains(&format!("record 0 of {shown}")), "{e}");
        assert!(!failing_out.exists(), "a failed build leaves nothing behind");
    }

    #[test]
    fn a_bad_record_fails_the_build_naming_its_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.csv");
        std::fs::write(&good, "k,v\na,1\n").expect("write");
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "k,v\na,1\n,2\n").expect("write");
        let out = dir.path().join("out");
        let e = run(&args(vec![good, bad.clone()], out.clone(), Format::Csv)).expect_err("empty key").to_string();
        assert!(e.contains(&format!("{}, line 3", bad.display())) && e.contains("the partition key is empty"), "{e}");
        assert!(!out.exists(), "a failed build leaves nothing behind");
    }

    #[test]
    fn a_spill_dir_keeps_what_it_held_and_a_snapshot_with_a_logical_counter_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "{\"k\": \"a\", \"v\": \"x\"}\n").expect("write");
        let spill = dir.path().join("spill");
        std::fs::create_dir(&spill).expect("mkdir");
        std::fs::write(spill.join("keep"), "mine").expect("write");
        let mut a = args(vec![input.clone()], dir.path().join("out"), Format::Jsonl);
        a.spill_dir = Some(spill.clone());
        run(&a).expect("builds");
        assert_eq!(std::fs::read_dir(&spill).expect("list").count(), 1, "only the user's file is left");
        assert_eq!(std::fs::read(spill.join("keep")).expect("kept"), b"mine");

        let mut b = args(vec![input], dir.path().join("out2"), Format::Jsonl);
        b.snapshot_ts = Ts(Ts::from_millis(SNAPSHOT_MS).0 | 3);
        assert!(run(&b).expect_err("logical counter").to_string().contains("millisecond precision"));
    }
}
