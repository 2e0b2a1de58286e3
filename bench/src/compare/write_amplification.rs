//! Section 4's write amplification under overwrites: the engine with its compaction planner
//! against RocksDB's `db_bench` (leveled, default options), same run, on the same workload, then
//! random reads of a data set several times either block cache, direct reads on both sides
//! ([`method`] says how). The goal is the engine at most 0.5x RocksDB's at no worse read
//! throughput; the report states the ratios and judges nothing.

use crate::compare::context::Context;
use crate::compare::engine::{VALUE_SIZE, key_bytes, on_executor, ops_per_sec, put};
use crate::compare::report::{Row, Section};
use anyhow::{Context as _, Result, bail};
use nacre_storage::compaction::{Policy, plan};
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, CompactionOptions, Durability, Engine, EngineOptions, Hlc, KeyRef, PartitionId, ReadAt, SystemClock,
    TableId, TableSettings, Wal, WalOptions,
};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Instant;

/// The flag that makes db_bench write its WAL back every MiB as it goes, as the engine's async
/// commit makes its own durable every 50 ms or 1 MiB.
const WAL_WRITTEN_BACK: &str = "--wal_bytes_per_sync=1048576";

/// One mode's workload, the same on both sides.
#[derive(Debug, Clone, Copy)]
struct Workload {
    /// Distinct keys.
    keys: u64,
    /// Puts of uniformly random keys from `[0, keys)`: mostly overwrites.
    writes: u64,
    /// Gets of random keys after the writes.
    reads: u64,
    /// Each store's block cache, bytes: several times smaller than the data, so reads reach disk.
    cache_bytes: usize,
    /// Each store's memtable (write buffer), bytes.
    memtable_bytes: usize,
}

impl Workload {
    /// Quick: small enough for a debug build. Full: a quarter of the standalone run this replaced
    /// (1,000,000 keys, 8,000,000 writes, 64 MiB memtable, 16 MiB cache), with the same ratios of
    /// writes, data, memtable and cache, and fewer reads (db_bench's direct reads run at some
    /// 6,000 op/s here: 1,000,000 took three minutes a round).
    fn for_mode(quick: bool) -> Workload {
        if quick {
            Workload { keys: 50_000, writes: 400_000, reads: 20_000, cache_bytes: 1 << 20, memtable_bytes: 4 << 20 }
        } else {
            Workload { keys: 250_000, writes: 2_000_000, reads: 50_000, cache_bytes: 4 << 20, memtable_bytes: 16 << 20 }
        }
    }

    /// What the writes hand the store: keys and values.
    fn user_bytes(&self) -> u64 {
        self.writes * (16 + VALUE_SIZE as u64)
    }
}

/// What one store's write phase cost.
#[derive(Debug, Clone, Copy)]
struct Written {
    /// Bytes the block device reports written; `None` when the work directory is on no block
    /// device with statistics.
    device_bytes: Option<u64>,
    /// Bytes the store says its flushes and compactions wrote.
    maintenance_bytes: u64,
    /// Bytes the store's data (its WAL left out: the engine's next WAL file is preallocated)
    /// takes up afterwards.
    space_bytes: u64,
}

/// Every round's figures, in round order.
#[derive(Debug, Default)]
struct Rounds {
    /// db_bench's writes.
    rocks: Vec<Written>,
    /// db_bench's writes with its WAL written back as it goes ([`WAL_WRITTEN_BACK`]).
    rocks_wal_written_back: Vec<Written>,
    /// The engine's writes.
    nacre: Vec<Written>,
    /// db_bench's reads after its writes, op/s.
    rocks_reads: Vec<f64>,
    /// The engine's reads after its writes, op/s.
    nacre_reads: Vec<f64>,
}

impl Rounds {
    /// The section's rows, amplification over `user_bytes`; the device rows only when every
    /// round counted the device.
    fn rows(self, user_bytes: u64) -> Vec<Row> {
        let amplification = |of: &[Written], bytes: fn(&Written) -> Option<u64>| -> Option<Vec<f64>> {
            of.iter().map(|w| bytes(w).map(|b| b as f64 / user_bytes as f64)).collect()
        };
        let row = |measure: &str, unit: &str, (peer_values, nacre_values): (Vec<f64>, Vec<f64>)| Row {
            measure: measure.to_owned(),
            unit: unit.to_owned(),
            peer: "db_bench".to_owned(),
            peer_values,
            nacre: "engine".to_owned(),
            nacre_values,
            higher_is_better: unit == "op/s",
        };
        let device = |peer: &[Written]| {
            amplification(peer, |w| w.device_bytes).zip(amplification(&self.nacre, |w| w.device_bytes))
        };
        let maintenance = |of: &[Written]| amplification(of, |w| Some(w.maintenance_bytes)).unwrap_or_default();
        let space = |of: &[Written]| of.iter().map(|w| w.space_bytes as f64 / f64::from(1 << 20)).collect();
        let x_user = "x user bytes";
        let mut rows = Vec::new();
        if let Some(values) = device(&self.rocks) {
            rows.push(row("device write amplification", x_user, values));
        }
        if let Some(values) = device(&self.rocks_wal_written_back) {
            rows.push(row("device write amplification, db_bench WAL written back", x_user, values));
        }
        rows.push(row(
            "flush+compaction write amplification",
            x_user,
            (maintenance(&self.rocks), maintenance(&self.nacre)),
        ));
        rows.push(row("readrandom after overwrites, direct reads", "op/s", (self.rocks_reads, self.nacre_reads)));
        rows.push(row("data space after overwrites", "MiB", (space(&self.rocks), space(&self.nacre))));
        rows
    }
}

/// The block device holding a directory, by its statistics in sysfs.
#[derive(Debug, Clone)]
struct Device {
    /// `/sys/dev/block/M:m/stat`.
    stat: PathBuf,
}

impl Device {
    /// The device holding `dir`, or why it has no statistics (tmpfs and overlay are on none).
    fn holding(dir: &Path) -> Result<Device, String> {
        let dev = std::fs::metadata(dir).map_err(|e| format!("stat {}: {e}", dir.display()))?.dev();
        // glibc's gnu_dev_major and gnu_dev_minor.
        let (major, minor) = (((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff), (dev & 0xff) | ((dev >> 12) & !0xff));
        let stat = PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
        if stat.is_file() {
            Ok(Device { stat })
        } else {
            Err(format!("{} is on device {major}:{minor}, which has no {}", dir.display(), stat.display()))
        }
    }

    /// Bytes written to `device` since boot, if there is one, after a `sync` so every dirty
    /// page has been written back.
    fn bytes_written(device: Option<&Device>) -> Result<Option<u64>> {
        let Some(device) = device else { return Ok(None) };
        Command::new("sync").status().context("running sync")?;
        let stat = &device.stat;
        let text = std::fs::read_to_string(stat).with_context(|| format!("reading {}", stat.display()))?;
        let sectors: u64 = text
            .split_whitespace()
            .nth(6)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("no sectors-written field in {}: {text}", stat.display()))?;
        Ok(Some(sectors * 512))
    }

    /// Bytes written to `device` since `before` ([`Device::bytes_written`]), if there is one.
    fn bytes_written_since(device: Option<&Device>, before: Option<u64>) -> Result<Option<u64>> {
        Ok(Device::bytes_written(device)?.zip(before).map(|(after, before)| after.saturating_sub(before)))
    }
}

/// Bytes the files under `dir` that `counts` keeps take up on disk.
fn space_bytes(dir: &Path, counts: fn(&Path) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => space_bytes(&e.path(), counts),
            Ok(m) if counts(&e.path()) => m.blocks() * 512,
            _ => 0,
        })
        .sum()
}

/// The method, in a few sentences, for the section's method text.
pub fn method(quick: bool) -> String {
    let w = Workload::for_mode(quick);
    format!(
        "Write amplification under overwrites: {} puts of uniformly random keys from [0, {}) (same keys, values, \
         WAL and thread as above), then {} random gets, a {} MiB block cache and a {} MiB memtable on both sides, \
         direct reads on both (db_bench --benchmarks=overwrite,waitforcompaction --use_direct_reads=true \
         --use_direct_io_for_flush_and_compaction=true --statistics=1, leveled and otherwise default, then \
         readrandom --use_existing_db=1). The engine runs its compaction planner (default policy) after every flush \
         and carries out what it plans before writing on, keeping one version a key as RocksDB does. Device write \
         amplification is the bytes the block device holding the work directory reports written during the write \
         phase (/sys/dev/block/M:m/stat: WAL, segments, manifests and anything else writing to that device \
         meanwhile), read after a `sync` so buffered writes count too, over the user bytes (writes x {} B). A WAL \
         file RocksDB deletes before write-back never reaches the device at all: buffered I/O's real advantage, \
         which the engine's direct I/O forgoes; the WAL-written-back row runs db_bench again with \
         {WAL_WRITTEN_BACK}, about as durable as the engine's async commit. Flush+compaction amplification is what \
         each engine says its flushes and compactions wrote (rocksdb.flush.write.bytes + \
         rocksdb.compact.write.bytes; the engine's maintenance counters) over the same user bytes: the part \
         compaction policy decides. Data space leaves out each WAL.",
        w.writes,
        w.keys,
        w.reads,
        w.cache_bytes >> 20,
        w.memtable_bytes >> 20,
        16 + VALUE_SIZE
    )
}

/// Measures `ctx.rounds` interleaved rounds (db_bench, db_bench with its WAL written back, then
/// the engine, each round in a fresh directory) and adds their rows and notes to `section`.
///
/// # Errors
///
/// If db_bench or the engine fails.
pub fn run(ctx: &Context, db_bench: &Path, section: &mut Section) -> Result<()> {
    let workload = Workload::for_mode(ctx.quick);
    let dir = ctx.work.join("write-amplification");
    std::fs::create_dir_all(&dir)?;
    let device = Device::holding(&dir)
        .inspect_err(|why| section.notes.push(format!("device write amplification not measured: {why}")))
        .ok();
    let mut rounds = Rounds::default();
    for round in 0..ctx.rounds {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let db = dir.join("rocksdb");
        rounds.rocks.push(db_bench_writes(db_bench, &db, workload, device.as_ref(), &[])?);
        let reads = db_bench_run(db_bench, &db, workload, "readrandom", true, &[])?;
        rounds.rocks_reads.push(ops_per_sec(&reads, "readrandom")?);
        let _ = std::fs::remove_dir_all(&db);
        let wal_written_back = db_bench_writes(db_bench, &db, workload, device.as_ref(), &[WAL_WRITTEN_BACK])?;
        rounds.rocks_wal_written_back.push(wal_written_back);
        let _ = std::fs::remove_dir_all(&db);
        let (written, reads) = on_executor(engine_writes_and_reads(
            &dir.join("nacre"),
            workload,
            device.as_ref(),
            ctx.seed ^ round as u64,
        ))?;
        rounds.nacre.push(written);
        rounds.nacre_reads.push(reads);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("  write amplification: db_bench {:?}, engine {written:?}", rounds.rocks[round]);
    }
    section.rows.extend(rounds.rows(workload.user_bytes()));
    Ok(())
}

/// Runs db_bench's `benchmarks` on `db` (an existing one if `existing`) and returns its output.
fn db_bench_run(
    db_bench: &Path,
    db: &Path,
    w: Workload,
    benchmarks: &str,
    existing: bool,
    extra: &[&str],
) -> Result<String> {
    let out = Command::new(db_bench)
        .arg(format!("--benchmarks={benchmarks}"))
        .args([format!("--num={}", w.keys), format!("--writes={}", w.writes), format!("--reads={}", w.reads)])
        .args(["--key_size=16", &format!("--value_size={VALUE_SIZE}"), "--compression_type=none", "--threads=1"])
        .args(["--sync=false", "--disable_wal=false", "--statistics=1"])
        .args(["--use_direct_reads=true", "--use_direct_io_for_flush_and_compaction=true"])
        .arg(format!("--cache_size={}", w.cache_bytes))
        .arg(format!("--write_buffer_size={}", w.memtable_bytes))
        .arg(format!("--use_existing_db={}", u8::from(existing)))
        .arg(format!("--db={}", db.display()))
        .args(extra)
        .output()
        .with_context(|| format!("running {}", db_bench.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!("db_bench failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(text)
}

/// db_bench's overwrites on a fresh `db`, its compactions settled before counting.
fn db_bench_writes(
    db_bench: &Path,
    db: &Path,
    w: Workload,
    device: Option<&Device>,
    extra: &[&str],
) -> Result<Written> {
    let before = Device::bytes_written(device)?;
    let text = db_bench_run(db_bench, db, w, "overwrite,waitforcompaction", false, extra)?;
    let device_bytes = Device::bytes_written_since(device, before)?;
    // `rocksdb.flush.write.bytes COUNT : 123`
    let ticker = |name: &str| -> Result<u64> {
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .with_context(|| format!("no {name} in db_bench's statistics"))?;
        line.rsplit(':').next().and_then(|n| n.trim().parse().ok()).with_context(|| format!("cannot parse: {line}"))
    };
    let maintenance_bytes = ticker("rocksdb.flush.write.bytes")? + ticker("rocksdb.compact.write.bytes")?;
    // RocksDB's WAL files are `NNNNNN.log` (its info log is `LOG`).
    let space_bytes = space_bytes(db, |path| path.extension().is_none_or(|e| e != "log"));
    Ok(Written { device_bytes, maintenance_bytes, space_bytes })
}

/// The engine's overwrites and reads in `root`: what the writes cost, and the reads' op/s.
async fn engine_writes_and_reads(
    root: &Path,
    w: Workload,
    device: Option<&Device>,
    seed: u64,
) -> Result<(Written, f64)> {
    std::fs::create_dir_all(root)?;
    let disk = DmaDisk::new(root).await?;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let wal = Wal::create(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
    let options = EngineOptions {
        block_cache_bytes: w.cache_bytes,
        memtable_flush_bytes: w.memtable_bytes,
        // As nacred runs it (RocksDB's flush drops overwritten versions too).
        retain_on_flush: true,
        ..EngineOptions::default()
    };
    let engine = Engine::create(disk, &root.join("p0"), PartitionId(0), wal.clone(), options, clock.clone()).await?;
    let table = TableId(1);
    engine.define_table(table, TableSettings { max_versions: 1, ..TableSettings::default() });
    let (hlc, policy) = (Hlc::new(), Policy::default());
    let mut rng = fastrand::Rng::with_seed(seed);
    let value: Vec<u8> = (0..VALUE_SIZE).map(|i| b'a' + (i % 26) as u8).collect();

    let before = Device::bytes_written(device)?;
    for seq in 0..w.writes {
        let entry = put(table, key_bytes(rng.u64(0..w.keys)), &value, hlc.next(clock.as_ref()), seq);
        engine.write(vec![entry], Durability::Async).await?;
        if engine.needs_flush() {
            engine.flush().await?;
            while let Some(task) = plan(&engine.compaction_snapshot(), engine.heat(), &policy) {
                engine.compact(&task.inputs, CompactionOptions::collect_garbage()).await?;
            }
        }
    }
    engine.flush().await?;
    wal.sync().await?;
    let counters = engine.maintenance_counters();
    let written = Written {
        device_bytes: Device::bytes_written_since(device, before)?,
        maintenance_bytes: counters.flush_bytes + counters.compaction_bytes_written,
        // Segments and manifest: the WAL is beside them, in `root/wal`.
        space_bytes: space_bytes(&root.join("p0"), |_| true),
    };

    let start = Instant::now();
    for _ in 0..w.reads {
        let partition_key = key_bytes(rng.u64(0..w.keys));
        engine.get(KeyRef { table, partition_key: &partition_key, sort_key: &[] }, ReadAt::Latest).await?;
    }
    Ok((written, w.reads as f64 / start.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One round: db_bench wrote 200 B on the device (300 B with its WAL written back) and 100 B
    /// by its own count, the engine `nacre_device_bytes` and 250 B; each keeps 3 MiB.
    fn one_round(nacre_device_bytes: Option<u64>) -> Rounds {
        let written =
            |device_bytes, maintenance_bytes| Written { device_bytes, maintenance_bytes, space_bytes: 3 << 20 };
        Rounds {
            rocks: vec![written(Some(200), 100)],
            rocks_wal_written_back: vec![written(Some(300), 100)],
            nacre: vec![written(nacre_device_bytes, 250)],
            rocks_reads: vec![6_000.0],
            nacre_reads: vec![9_000.0],
        }
    }

    #[test]
    fn rows_divide_by_user_bytes_and_only_reads_are_better_higher() {
        let rows = one_round(Some(400)).rows(100);
        let figures: Vec<(&str, f64, f64, bool)> = rows
            .iter()
            .map(|r| (r.measure.as_str(), r.peer_values[0], r.nacre_values[0], r.higher_is_better))
            .collect();
        assert_eq!(
            figures,
            [
                ("device write amplification", 2.0, 4.0, false),
                ("device write amplification, db_bench WAL written back", 3.0, 4.0, false),
                ("flush+compaction write amplification", 1.0, 2.5, false),
                ("readrandom after overwrites, direct reads", 6_000.0, 9_000.0, true),
                ("data space after overwrites", 3.0, 3.0, false),
            ]
        );
    }

    #[test]
    fn an_uncounted_device_leaves_out_the_device_rows() {
        let rows = one_round(None).rows(100);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|r| !r.measure.starts_with("device")), "{rows:?}");
    }
}
