//! Write amplification under overwrites, Nacre's engine with its compaction planner against
//! RocksDB's `db_bench` (leveled, default options), in the same run, then random reads of a data
//! set several times the block cache, with direct reads on both sides.
//!
//! Workload, matched on both: `--writes` puts of uniformly random keys from `[0, --keys)` (16-byte
//! keys, `--value-size` values, no compression, WAL on without sync, one thread), then `--reads`
//! gets of uniformly random keys from the same range. Nacre's engine runs the planner after every
//! flush and carries out what it plans before writing on (one partition, `max_versions = 1`, so
//! both keep one version a key, as RocksDB does).
//!
//! Write amplification is measured the same way for both: the bytes the block device holding
//! `--dir` reports written (`/sys/dev/block/M:m/stat`, WAL, segments, manifests and all) during
//! the write phase, over the user bytes (`writes x (16 + value size)`), after a `sync` so
//! RocksDB's buffered writes are counted too (a WAL file deleted before write-back is never
//! written at all: buffered I/O's real advantage, which Nacre's direct I/O forgoes; a second
//! db_bench run with `--wal_bytes_per_sync=1048576` writes its WAL back as it goes, as durable as
//! Nacre's async commit, and shows what that costs). Beside it,
//! the bytes each engine says its flushes and compactions wrote (RocksDB's statistics
//! `rocksdb.flush.write.bytes` and `rocksdb.compact.write.bytes`; Nacre's maintenance
//! counters), over the same user bytes: the part compaction policy decides. The figure that
//! counts is the ratio; the goal is Nacre at most 0.5x RocksDB's, at no worse read throughput.

use anyhow::{Context, Result, bail};
use clap::Parser;
use nacre_storage::compaction::{Policy, plan};
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, CompactionOptions, Durability, Engine, EngineOptions, Entry, Hlc, Key, Origin, OriginKind, PartitionId,
    Payload, ReadAt, SystemClock, TableId, TableSettings, Version, VersionId, Wal, WalOptions,
};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Write amplification under overwrites: Nacre's engine vs db_bench, same run")]
struct Args {
    /// Distinct keys.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Puts (overwrites of random keys).
    #[arg(long, default_value_t = 8_000_000)]
    writes: u64,
    /// Gets after the writes.
    #[arg(long, default_value_t = 1_000_000)]
    reads: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Block cache of each store, MiB (several times smaller than the data, so reads reach disk).
    #[arg(long, default_value_t = 16)]
    cache_mib: usize,
    /// Memtable (write buffer) size of each store, MiB.
    #[arg(long, default_value_t = 64)]
    memtable_mib: usize,
    /// Directory for both stores (must support O_DIRECT: ext4 or xfs, not tmpfs).
    #[arg(long, default_value = "/var/tmp/nacre-bench")]
    dir: PathBuf,
    /// Override the planner's `hot_max_runs` (a fully hot partition's most runs), for tuning.
    #[arg(long)]
    hot_max_runs: Option<usize>,
    /// Override the planner's `hot_size_ratio`, percent, for tuning.
    #[arg(long)]
    hot_size_ratio_percent: Option<u32>,
    /// The db_bench binary (Debian: rocksdb-tools).
    #[arg(long, default_value = "db_bench")]
    db_bench: String,
    /// Run Nacre's side only (for tuning the planner: db_bench's figures do not change).
    #[arg(long)]
    nacre_only: bool,
    /// Seed for Nacre's key sequence.
    #[arg(long, default_value_t = 301)]
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    write_ops_per_sec: f64,
    device_bytes_written: u64,
    /// What the engine says its flushes and compactions wrote.
    maintenance_bytes: u64,
    read_ops_per_sec: f64,
    space_bytes: u64,
}

/// Bytes the block device holding `dir` has written since boot, once every dirty page is
/// written back.
fn device_bytes_written(dir: &Path) -> Result<u64> {
    Command::new("sync").status().context("running sync")?;
    let dev = std::fs::metadata(dir).with_context(|| format!("stat {}", dir.display()))?.dev();
    let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
    let path = format!("/sys/dev/block/{major}:{minor}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let sectors: u64 = stat
        .split_whitespace()
        .nth(6)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no sectors-written field in {path}: {stat}"))?;
    Ok(sectors * 512)
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let user_bytes = args.writes * (16 + args.value_size as u64);
    println!(
        "workload: {} overwrites of {} keys (16 B keys, {} B values), then {} random reads; cache {} MiB; direct reads",
        args.writes, args.keys, args.value_size, args.reads, args.cache_mib
    );
    let amp = |o: &Outcome| o.device_bytes_written as f64 / user_bytes as f64;
    let maintenance_amp = |o: &Outcome| o.maintenance_bytes as f64 / user_bytes as f64;
    if args.nacre_only {
        let nacre = run_nacre(&args)?;
        println!("write amplification {:.2}", amp(&nacre));
        println!("flush+compaction amp. {:.2}", maintenance_amp(&nacre));
        let _ = std::fs::remove_dir_all(&args.dir);
        return Ok(());
    }
    let rocks = run_db_bench(&args, &[])?;
    let _ = std::fs::remove_dir_all(args.dir.join("rocksdb"));
    // The same, its WAL written back every MiB as it goes, as Nacre's async commit makes its
    // own durable every 50 ms or 1 MiB: what a WAL costs a store that keeps its promise.
    let rocks_wal_written = run_db_bench(&args, &["--wal_bytes_per_sync=1048576".into()])?;
    let _ = std::fs::remove_dir_all(args.dir.join("rocksdb"));
    let nacre = run_nacre(&args)?;
    println!();
    println!("{:<28} {:>14} {:>14} {:>8}", "", "nacre", "db_bench", "ratio");
    let rows = [
        ("write amplification", amp(&nacre), amp(&rocks)),
        ("  db_bench WAL written back", amp(&nacre), amp(&rocks_wal_written)),
        ("flush+compaction amp.", maintenance_amp(&nacre), maintenance_amp(&rocks)),
        ("write ops/s", nacre.write_ops_per_sec, rocks.write_ops_per_sec),
        ("read ops/s", nacre.read_ops_per_sec, rocks.read_ops_per_sec),
        ("space used, MiB", nacre.space_bytes as f64 / 1048576.0, rocks.space_bytes as f64 / 1048576.0),
    ];
    for (name, n, r) in rows {
        println!("{name:<28} {n:>14.2} {r:>14.2} {:>7.2}x", n / r);
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

fn run_db_bench(args: &Args, extra: &[String]) -> Result<Outcome> {
    let db = args.dir.join("rocksdb");
    let common = |benchmarks: &str, existing: bool| -> Vec<String> {
        vec![
            format!("--benchmarks={benchmarks}"),
            format!("--num={}", args.keys),
            format!("--writes={}", args.writes),
            format!("--reads={}", args.reads),
            "--key_size=16".into(),
            format!("--value_size={}", args.value_size),
            "--compression_type=none".into(),
            "--threads=1".into(),
            "--sync=false".into(),
            "--disable_wal=false".into(),
            "--statistics=1".into(),
            "--use_direct_reads=true".into(),
            "--use_direct_io_for_flush_and_compaction=true".into(),
            format!("--cache_size={}", args.cache_mib << 20),
            format!("--write_buffer_size={}", args.memtable_mib << 20),
            format!("--use_existing_db={}", u8::from(existing)),
            format!("--db={}", db.display()),
        ]
    };
    let run = |argv: Vec<String>| -> Result<String> {
        let out = Command::new(&args.db_bench)
            .args(&argv)
            .output()
            .with_context(|| format!("running {} (Debian package rocksdb-tools)", args.db_bench))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("db_bench failed: {}\n{}", text, String::from_utf8_lossy(&out.stderr));
        }
        Ok(text)
    };
    let rate = |text: &str, name: &str| -> Result<f64> {
        let line =
            text.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} line in db_bench output"))?;
        let ops = line.split_whitespace().zip(line.split_whitespace().skip(1)).find(|(_, unit)| *unit == "ops/sec");
        ops.and_then(|(n, _)| n.parse().ok()).with_context(|| format!("cannot parse: {line}"))
    };
    // `rocksdb.flush.write.bytes COUNT : 123`
    let ticker = |text: &str, name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .with_context(|| format!("no {name} in db_bench's statistics"))?;
        line.rsplit(':').next().and_then(|n| n.trim().parse().ok()).with_context(|| format!("cannot parse: {line}"))
    };
    let before = device_bytes_written(&args.dir)?;
    // Overwrites, then let its compactions settle before counting (waitforcompaction).
    let written = run([common("overwrite,waitforcompaction", false), extra.to_vec()].concat())?;
    let device_bytes_written = device_bytes_written(&args.dir)? - before;
    let space_bytes = dir_bytes(&db);
    let read = run(common("readrandom", true))?;
    let outcome = Outcome {
        write_ops_per_sec: rate(&written, "overwrite")?,
        device_bytes_written,
        maintenance_bytes: ticker(&written, "rocksdb.flush.write.bytes")?
            + ticker(&written, "rocksdb.compact.write.bytes")?,
        read_ops_per_sec: rate(&read, "readrandom")?,
        space_bytes,
    };
    println!("db_bench {}: {outcome:?}", extra.join(" "));
    Ok(outcome)
}

/// db_bench's key layout: the number big-endian in the first 8 bytes, zero padding after.
fn key_bytes(n: u64) -> Vec<u8> {
    let mut k = n.to_be_bytes().to_vec();
    k.resize(16, b'0');
    k
}

fn run_nacre(args: &Args) -> Result<Outcome> {
    let root = args.dir.join("nacre");
    std::fs::create_dir_all(&root)?;
    let options = EngineOptions {
        block_cache_bytes: args.cache_mib << 20,
        memtable_flush_bytes: args.memtable_mib << 20,
        // As nacred runs it (RocksDB's flush drops overwritten versions too).
        retain_on_flush: true,
        ..EngineOptions::default()
    };
    let (keys, writes, reads, value_size, seed) = (args.keys, args.writes, args.reads, args.value_size, args.seed);
    let mut policy = Policy::default();
    if let Some(runs) = args.hot_max_runs {
        policy.hot_max_runs = runs;
    }
    if let Some(percent) = args.hot_size_ratio_percent {
        policy.hot_size_ratio = f64::from(percent) / 100.0;
    }
    println!("nacre: planner {policy:?}");
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(2 << 20)
        .make()
        .map_err(|e| anyhow::anyhow!("starting a glommio executor (locked memory must be at least 4 MiB): {e}"))?
        .run(async move { nacre_phases(&root, (keys, writes, reads), value_size, seed, options, policy).await })
}

async fn nacre_phases(
    root: &Path,
    (keys, writes, reads): (u64, u64, u64),
    value_size: usize,
    seed: u64,
    options: EngineOptions,
    policy: Policy,
) -> Result<Outcome> {
    let disk = DmaDisk::new(root).await?;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let wal = Wal::create(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
    let engine = Engine::create(disk, &root.join("p0"), PartitionId(0), wal.clone(), options, clock.clone()).await?;
    let table = TableId(1);
    engine.define_table(table, TableSettings { max_versions: 1, ..TableSettings::default() });
    let hlc = Hlc::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let value: Vec<u8> = (0..value_size).map(|i| b'a' + (i % 26) as u8).collect();

    let before = device_bytes_written(root)?;
    let start = Instant::now();
    let mut compactions = 0;
    for seq in 0..writes {
        let entry = Entry {
            key: Key { table, partition_key: key_bytes(rng.u64(0..keys)), sort_key: Vec::new() },
            version: Version {
                id: VersionId {
                    ts: hlc.next(clock.as_ref()),
                    origin: Origin { kind: OriginKind::Direct, source_id: 0, seq },
                },
                payload: Payload::Value { value: value.clone(), expires_at_ms: None },
            },
        };
        engine.write(vec![entry], Durability::Async).await?;
        if engine.needs_flush() {
            engine.flush().await?;
            while let Some(task) = plan(&engine.compaction_snapshot(), engine.heat(), &policy) {
                engine.compact(&task.inputs, CompactionOptions::collect_garbage()).await?;
                compactions += 1;
            }
        }
    }
    engine.flush().await?;
    wal.sync().await?;
    let elapsed = start.elapsed();
    let device_bytes_written = device_bytes_written(root)? - before;
    let space_bytes = dir_bytes(root);
    let counters = engine.maintenance_counters();
    println!(
        "nacre: {compactions} compactions; {:?}; engine write amplification {:.2}; {:?}",
        counters,
        counters.write_amplification(),
        engine.stats()
    );

    let start = Instant::now();
    for _ in 0..reads {
        let pk = key_bytes(rng.u64(0..keys));
        let key = nacre_storage::KeyRef { table, partition_key: &pk, sort_key: &[] };
        engine.get(key, ReadAt::Latest).await?;
    }
    let read_ops_per_sec = reads as f64 / start.elapsed().as_secs_f64();
    let outcome = Outcome {
        write_ops_per_sec: writes as f64 / elapsed.as_secs_f64(),
        device_bytes_written,
        maintenance_bytes: counters.flush_bytes + counters.compaction_bytes_written,
        read_ops_per_sec,
        space_bytes,
    };
    println!("nacre: {outcome:?}");
    Ok(outcome)
}
