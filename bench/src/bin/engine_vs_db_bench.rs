//! Runs the storage engine in-process on RocksDB `db_bench`'s `fillrandom,readrandom` workload
//! and runs `db_bench` itself in the same run, then prints both rates and their ratio.
//!
//! Workload, matched to `db_bench --benchmarks=fillrandom,readrandom --num=N --key_size=16
//! --value_size=100 --compression_type=none --threads=1 --sync=false`: N puts of uniformly
//! random keys drawn with replacement from `[0, N)` (so about 63% distinct), WAL on without
//! sync (Nacre: `Durability::Async`, group-committed in 1 MiB batches), then N gets of
//! uniformly random keys from the same range. One thread (one glommio executor).
//!
//! Caching: db_bench reads through the OS page cache, which holds its whole data set after the
//! fill; Nacre reads with direct I/O, bypassing the page cache, so its own block cache is sized
//! (`--cache-mib`) to play that role. The figure that counts is the ratio printed at the end.

use anyhow::{Context, Result, bail};
use clap::Parser;
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, Durability, Engine, EngineOptions, Entry, Hlc, Key, Origin, OriginKind, PartitionId, Payload, ReadAt,
    SystemClock, TableId, TableSettings, Version, VersionId, Wal, WalOptions,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "Nacre's storage engine vs RocksDB db_bench: fillrandom then readrandom, same run")]
struct Args {
    /// Number of operations in each phase (db_bench --num).
    #[arg(long, default_value_t = 2_000_000)]
    num: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Directory for both stores (must support O_DIRECT: ext4 or xfs, not tmpfs).
    #[arg(long, default_value = "/var/tmp/nacre-bench")]
    dir: PathBuf,
    /// Nacre block cache, MiB (the stand-in for the page cache db_bench reads through).
    #[arg(long, default_value_t = 512)]
    cache_mib: usize,
    /// Nacre memtable flush size, MiB (db_bench's default write buffer is 64 MiB).
    #[arg(long, default_value_t = 64)]
    memtable_mib: usize,
    /// The db_bench binary (Debian: rocksdb-tools).
    #[arg(long, default_value = "db_bench")]
    db_bench: String,
    /// Seed for Nacre's key sequence.
    #[arg(long, default_value_t = 301)]
    seed: u64,
}

#[derive(Debug, Clone, Copy)]
struct Rates {
    fill_ops_per_sec: f64,
    read_ops_per_sec: f64,
    found: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    println!(
        "workload: fillrandom,readrandom num={} key=16B value={}B no compression, one thread, WAL on without sync",
        args.num, args.value_size
    );
    let rocks = run_db_bench(&args)?;
    let _ = std::fs::remove_dir_all(args.dir.join("rocksdb"));
    let nacre = run_nacre(&args)?;
    println!();
    println!("{:<12} {:>14} {:>14} {:>8}", "workload", "nacre ops/s", "db_bench ops/s", "ratio");
    for (name, n, r) in [
        ("fillrandom", nacre.fill_ops_per_sec, rocks.fill_ops_per_sec),
        ("readrandom", nacre.read_ops_per_sec, rocks.read_ops_per_sec),
    ] {
        println!("{name:<12} {n:>14.0} {r:>14.0} {:>7.2}x", n / r);
    }
    println!(
        "keys found by readrandom: nacre {} of {}, db_bench {} of {}",
        nacre.found, args.num, rocks.found, args.num
    );
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

fn run_db_bench(args: &Args) -> Result<Rates> {
    let db = args.dir.join("rocksdb");
    let out = Command::new(&args.db_bench)
        .args([
            "--benchmarks=fillrandom,readrandom",
            &format!("--num={}", args.num),
            "--key_size=16",
            &format!("--value_size={}", args.value_size),
            "--compression_type=none",
            "--threads=1",
            "--sync=false",
            "--disable_wal=false",
            &format!("--db={}", db.display()),
        ])
        .output()
        .with_context(|| format!("running {} (Debian package rocksdb-tools)", args.db_bench))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("db_bench failed: {}\n{}", text, String::from_utf8_lossy(&out.stderr));
    }
    let rate = |name: &str| -> Result<f64> {
        let line =
            text.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name} line in db_bench output"))?;
        let ops = line.split_whitespace().zip(line.split_whitespace().skip(1)).find(|(_, unit)| *unit == "ops/sec");
        ops.and_then(|(n, _)| n.parse().ok()).with_context(|| format!("cannot parse: {line}"))
    };
    let found = text
        .lines()
        .find(|l| l.starts_with("readrandom"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let rates = Rates { fill_ops_per_sec: rate("fillrandom")?, read_ops_per_sec: rate("readrandom")?, found };
    println!(
        "db_bench: fillrandom {:.0} ops/s, readrandom {:.0} ops/s",
        rates.fill_ops_per_sec, rates.read_ops_per_sec
    );
    Ok(rates)
}

/// db_bench's key layout: the number big-endian in the first 8 bytes, zero padding after.
fn key_bytes(n: u64) -> Vec<u8> {
    let mut k = n.to_be_bytes().to_vec();
    k.resize(16, b'0');
    k
}

fn run_nacre(args: &Args) -> Result<Rates> {
    let root = args.dir.join("nacre");
    let num = args.num;
    let value_size = args.value_size;
    let seed = args.seed;
    let options = EngineOptions {
        block_cache_bytes: args.cache_mib << 20,
        memtable_flush_bytes: args.memtable_mib << 20,
        ..EngineOptions::default()
    };
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(2 << 20)
        .make()
        .map_err(|e| anyhow::anyhow!("starting a glommio executor (locked memory must be at least 4 MiB): {e}"))?
        .run(async move { nacre_phases(&root, num, value_size, seed, options).await })
}

async fn nacre_phases(root: &Path, num: u64, value_size: usize, seed: u64, options: EngineOptions) -> Result<Rates> {
    let disk = DmaDisk::new(root).await?;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let wal = Wal::create(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
    let engine = Engine::create(disk, &root.join("p0"), PartitionId(0), wal.clone(), options, clock.clone()).await?;
    let table = TableId(1);
    engine.define_table(table, TableSettings::default());
    let hlc = Hlc::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let value: Vec<u8> = (0..value_size).map(|i| b'a' + (i % 26) as u8).collect();

    let start = Instant::now();
    for seq in 0..num {
        let entry = Entry {
            key: Key { table, partition_key: key_bytes(rng.u64(0..num)), sort_key: Vec::new() },
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
        }
    }
    wal.sync().await?;
    let fill = start.elapsed();
    let fill_ops_per_sec = num as f64 / fill.as_secs_f64();
    println!("nacre: fillrandom {fill_ops_per_sec:.0} ops/s ({:?}); {:?}", fill, engine.stats());

    let start = Instant::now();
    let mut found = 0;
    for _ in 0..num {
        let pk = key_bytes(rng.u64(0..num));
        let key = nacre_storage::KeyRef { table, partition_key: &pk, sort_key: &[] };
        found += u64::from(engine.get(key, ReadAt::Latest).await?.is_some());
    }
    let read = start.elapsed();
    let read_ops_per_sec = num as f64 / read.as_secs_f64();
    println!("nacre: readrandom {read_ops_per_sec:.0} ops/s ({:?}); {:?}", read, engine.stats());
    Ok(Rates { fill_ops_per_sec, read_ops_per_sec, found })
}
