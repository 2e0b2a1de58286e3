//! Section 4: the storage engine in-process against RocksDB's `db_bench`, same run, same
//! workload: `fillrandom`, `readrandom`, then `overwrite`.
//!
//! Matched to `db_bench --benchmarks=fillrandom,readrandom,overwrite --num=N --key_size=16
//! --value_size=100 --compression_type=none --threads=1 --sync=false`: N puts of uniformly
//! random keys drawn with replacement from `[0, N)` (about 63% distinct), the WAL on without
//! sync (Nacre: `Durability::Async`, group-committed), then N gets of random keys from the same
//! range, then N more random puts. One thread (one glommio executor). db_bench reads through the
//! OS page cache, which holds its whole data set after the fill; Nacre reads with direct I/O, so
//! its block cache (512 MiB) plays that role.
//!
//! Then write amplification under overwrites, with the engine's compaction planner running and
//! a data set larger than either cache ([`write_amplification`]).

use crate::compare::context::Context;
use crate::compare::peers::DB_BENCH;
use crate::compare::report::{Row, Section};
use crate::compare::write_amplification;
use anyhow::{Context as _, Result, bail};
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, Durability, Engine, EngineOptions, Entry, Hlc, Key, Origin, OriginKind, PartitionId, Payload, ReadAt,
    SystemClock, TableId, TableSettings, Ts, Version, VersionId, Wal, WalOptions,
};
use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

/// Bytes per value (and per key: 16).
pub(super) const VALUE_SIZE: usize = 100;
/// Nacre's block cache, bytes: the stand-in for the page cache db_bench reads through.
const CACHE_BYTES: usize = 512 << 20;
/// Nacre's memtable flush size, bytes (db_bench's default write buffer is 64 MiB).
const MEMTABLE_BYTES: usize = 64 << 20;
/// The phases, in order, as db_bench names them.
const PHASES: [&str; 3] = ["fillrandom", "readrandom", "overwrite"];

/// Operations per second of each phase, in [`PHASES`] order.
type Rates = [f64; 3];

/// Runs the section, or says why it cannot.
///
/// # Errors
///
/// If db_bench or the engine fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let num: u64 = if ctx.quick { 200_000 } else { 2_000_000 };
    let mut section = Section::new(
        4,
        "engine",
        "The engine against RocksDB's db_bench",
        format!(
            "db_bench --benchmarks={} --num={num} --key_size=16 --value_size={VALUE_SIZE} --compression_type=none \
             --threads=1 --sync=false, against the engine in-process on the same workload (one glommio executor, \
             WAL on without sync, a {} MiB block cache standing in for the page cache db_bench reads through). {}",
            PHASES.join(","),
            CACHE_BYTES >> 20,
            write_amplification::method(ctx.quick)
        ),
    );
    let db_bench = match DB_BENCH.find() {
        Ok(path) => path,
        Err(why) => return Ok(section.skip(why)),
    };
    let (mut rocks, mut nacre): (Vec<Rates>, Vec<Rates>) = (Vec::new(), Vec::new());
    for round in 0..ctx.rounds {
        let dir = ctx.work.join("engine");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        rocks.push(run_db_bench(&db_bench, &dir.join("rocksdb"), num)?);
        let _ = std::fs::remove_dir_all(dir.join("rocksdb"));
        nacre.push(run_engine(&dir.join("nacre"), num, ctx.seed ^ round as u64)?);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("  db_bench {:?} op/s, engine {:?} op/s", rocks[round], nacre[round]);
    }
    for (phase, name) in PHASES.iter().enumerate() {
        section.rows.push(Row {
            measure: (*name).to_owned(),
            unit: "op/s".to_owned(),
            peer: "db_bench".to_owned(),
            peer_values: rocks.iter().map(|r| r[phase]).collect(),
            nacre: "engine".to_owned(),
            nacre_values: nacre.iter().map(|r| r[phase]).collect(),
            higher_is_better: true,
        });
    }
    write_amplification::run(ctx, &db_bench, &mut section)?;
    Ok(section)
}

fn run_db_bench(db_bench: &Path, db: &Path, num: u64) -> Result<Rates> {
    let out = Command::new(db_bench)
        .arg(format!("--benchmarks={}", PHASES.join(",")))
        .arg(format!("--num={num}"))
        .args(["--key_size=16", &format!("--value_size={VALUE_SIZE}"), "--compression_type=none", "--threads=1"])
        .args(["--sync=false", "--disable_wal=false"])
        .arg(format!("--db={}", db.display()))
        .output()
        .with_context(|| format!("running {}", db_bench.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("db_bench failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok([ops_per_sec(&text, PHASES[0])?, ops_per_sec(&text, PHASES[1])?, ops_per_sec(&text, PHASES[2])?])
}

/// The operations per second db_bench's output gives `benchmark`
/// (`overwrite    :       4.802 micros/op 208265 ops/sec ...`).
///
/// # Errors
///
/// If the output has no such line, or it does not parse.
pub(super) fn ops_per_sec(text: &str, benchmark: &str) -> Result<f64> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(benchmark))
        .with_context(|| format!("no {benchmark} line in db_bench's output: {text}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "ops/sec").with_context(|| format!("no ops/sec in: {line}"))?;
    words.get(at.wrapping_sub(1)).and_then(|n| n.parse().ok()).with_context(|| format!("cannot parse: {line}"))
}

/// db_bench's key layout: the number big-endian in the first 8 bytes, zero padding after.
pub(super) fn key_bytes(n: u64) -> Vec<u8> {
    let mut k = n.to_be_bytes().to_vec();
    k.resize(16, b'0');
    k
}

/// A put of `value` under `partition_key` in `table`, at `ts`, the `seq`-th of its origin.
pub(super) fn put(table: TableId, partition_key: Vec<u8>, value: &[u8], ts: Ts, seq: u64) -> Entry {
    Entry {
        key: Key { table, partition_key, sort_key: Vec::new() },
        version: Version {
            id: VersionId { ts, origin: Origin { kind: OriginKind::Direct, source_id: 0, seq } },
            payload: Payload::Value { value: value.to_vec(), expires_at_ms: None },
        },
    }
}

/// Runs `work` to completion on a fresh glommio executor on this thread.
///
/// # Errors
///
/// If the executor cannot start, or `work` fails.
pub(super) fn on_executor<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(2 << 20)
        .make()
        .map_err(|e| anyhow::anyhow!("starting a glommio executor (locked memory must be at least 4 MiB): {e}"))?
        .run(work)
}

fn run_engine(root: &Path, num: u64, seed: u64) -> Result<Rates> {
    on_executor(engine_phases(root, num, seed))
}

async fn engine_phases(root: &Path, num: u64, seed: u64) -> Result<Rates> {
    std::fs::create_dir_all(root)?;
    let disk = DmaDisk::new(root).await?;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let wal = Wal::create(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
    let options = EngineOptions {
        block_cache_bytes: CACHE_BYTES,
        memtable_flush_bytes: MEMTABLE_BYTES,
        ..EngineOptions::default()
    };
    let engine = Engine::create(disk, &root.join("p0"), PartitionId(0), wal.clone(), options, clock.clone()).await?;
    let table = TableId(1);
    engine.define_table(table, TableSettings::default());
    let hlc = Hlc::new();
    let mut rng = fastrand::Rng::with_seed(seed);
    let value: Vec<u8> = (0..VALUE_SIZE).map(|i| b'a' + (i % 26) as u8).collect();
    let mut seq = 0;
    let mut fill = async |rng: &mut fastrand::Rng| -> Result<f64> {
        let start = Instant::now();
        for _ in 0..num {
            let entry = put(table, key_bytes(rng.u64(0..num)), &value, hlc.next(clock.as_ref()), seq);
            seq += 1;
            engine.write(vec![entry], Durability::Async).await?;
            if engine.needs_flush() {
                engine.flush().await?;
            }
        }
        wal.sync().await?;
        Ok(num as f64 / start.elapsed().as_secs_f64())
    };
    let fillrandom = fill(&mut rng).await?;
    let start = Instant::now();
    for _ in 0..num {
        let pk = key_bytes(rng.u64(0..num));
        let key = nacre_storage::KeyRef { table, partition_key: &pk, sort_key: &[] };
        engine.get(key, ReadAt::Latest).await?;
    }
    let readrandom = num as f64 / start.elapsed().as_secs_f64();
    let overwrite = fill(&mut rng).await?;
    Ok([fillrandom, readrandom, overwrite])
}
