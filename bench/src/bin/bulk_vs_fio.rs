//! Bulk loads, measured against the disk and against the write path, in one run:
//!
//! 1. **fio**: sequential direct-I/O write bandwidth on the same filesystem (1 MiB blocks,
//!    queue depth 16, 2 GiB, fsync at the end): the disk's ceiling.
//! 2. **Build**: for each size (default 1 and 4 GiB of record bytes), a Parquet input is
//!    generated (the Arrow writer, 1 KiB values), then `nacre bulk build` turns it into a load;
//!    throughput is segment bytes written per second, and its ratio to fio's bandwidth.
//! 3. **Link**: each load is linked into a running nacred (release, fresh data directory);
//!    the server reports validation (reads every byte), prepare (hard links, fsyncs) and commit
//!    (manifest edits, the commit record). Printed per file and per GiB: prepare + commit must
//!    not grow with size.
//! 4. **Ingest**: the 1 GiB load's same records go through the write path as client write
//!    batches (one partition per batch, sync durability, many in flight) into a fresh nacred;
//!    the time is compared with the 1 GiB link's.
//!
//! nacred and nacre are the release binaries next to this one
//! (`cargo build --release -p nacre-daemon -p nacre-bench`); fio must be installed. The machine
//! is shared and noisy, so only the ratios within one run mean anything.

use anyhow::{Context, Result, bail};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use clap::Parser;
use nacre_wire::{BatchOp, Client, ClientOptions, Key, TableSettings, WriteBatch};
use parquet::arrow::ArrowWriter;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "Bulk build and link vs fio and vs the write path, in one run")]
struct Args {
    /// Load sizes to build and link, GiB of record bytes (keys and values).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    sizes: Vec<u64>,
    /// Bytes of each value.
    #[arg(long, default_value_t = 1000)]
    value_bytes: usize,
    /// Working directory (inputs, loads, nacred data; ext4 or xfs for O_DIRECT); emptied first.
    #[arg(long, default_value = "/var/tmp/nacre-bulk-bench")]
    dir: PathBuf,
    /// nacred's shards (--cores); 0 = one per core.
    #[arg(long, default_value_t = 0)]
    cores: usize,
    /// nacred's own protocol address (it also takes the next `cores` ports).
    #[arg(long, default_value = "127.0.0.1:7470")]
    listen: SocketAddr,
    /// The builder's --memory-limit.
    #[arg(long, default_value = "1GiB")]
    memory_limit: String,
    /// Write batches in flight during the ingest.
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Records per write batch during the ingest.
    #[arg(long, default_value_t = 64)]
    batch_records: usize,
}

const GIB: f64 = (1u64 << 30) as f64;

fn main() -> Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?.parent().context("this binary's directory")?.to_path_buf();
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("emptying {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let fio = fio_write_bandwidth(&args.dir)?;
    println!("fio sequential direct write: {:.0} MiB/s", fio / (1 << 20) as f64);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut nacred = Nacred::start(&here, &args, "link")?;
    let client = runtime.block_on(nacred.client())?;
    let partitions = runtime.block_on(client.topology())?.partition_count;
    let mut rows = Vec::new();
    for &gib in &args.sizes {
        let table = format!("bulk{gib}");
        let info = runtime.block_on(client.create_table(&table, TableSettings::default()))?;
        let input = args.dir.join(format!("input-{gib}.parquet"));
        let records = records_for(gib, args.value_bytes);
        write_input(&input, records, args.value_bytes)?;
        let input_bytes = std::fs::metadata(&input)?.len();
        let out = args.dir.join(format!("load-{gib}"));
        let started = Instant::now();
        let status = Command::new(here.join("nacre"))
            .args(["bulk", "build", "--table", &table, "--table-id", &info.id.to_string()])
            .args(["--mode", "merge", "--snapshot-ts", &now_ms().to_string(), "--partitions", &partitions.to_string()])
            .args(["--format", "parquet", "--key", "id", "--value", "val", "--no-progress"])
            .args(["--memory-limit", &args.memory_limit, "--out", &out.display().to_string()])
            .arg(&input)
            .stdout(Stdio::null())
            .status()?;
        let build = started.elapsed();
        if !status.success() {
            bail!("nacre bulk build failed ({status})");
        }
        std::fs::remove_file(&input)?;
        let started = Instant::now();
        let load = runtime.block_on(client.bulk_link(&out.display().to_string()))?;
        let link = started.elapsed();
        rows.push(Measured { gib, records, input_bytes, build, load, link });
        let r = rows.last().context("a row")?;
        println!(
            "{gib} GiB: {} records, input {:.2} GiB, load {:.2} GiB in {} files; build {:.1}s; link {:.2}s (validate {} ms, prepare {} ms, commit {} ms)",
            r.records,
            r.input_bytes as f64 / GIB,
            r.load.bytes as f64 / GIB,
            r.load.files,
            r.build.as_secs_f64(),
            r.link.as_secs_f64(),
            r.load.validate_ms,
            r.load.prepare_ms,
            r.load.commit_ms
        );
    }
    drop(client);
    nacred.stop()?;

    println!();
    println!(
        "| load | build MiB/s | build / fio | link total | validate | prepare + commit | per file (p+c) | per GiB (p+c) | per GiB (total) |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &rows {
        let rate = r.load.bytes as f64 / r.build.as_secs_f64();
        let pc = r.load.prepare_ms + r.load.commit_ms;
        let gib = r.load.bytes as f64 / GIB;
        println!(
            "| {} GiB | {:.0} | {:.2} | {} ms | {} ms | {} ms | {:.2} ms | {:.1} ms | {:.0} ms |",
            r.gib,
            rate / (1 << 20) as f64,
            rate / fio,
            r.link.as_millis(),
            r.load.validate_ms,
            pc,
            pc as f64 / f64::from(r.load.files.max(1)),
            pc as f64 / gib,
            r.link.as_millis() as f64 / gib
        );
    }

    let Some(first) = rows.iter().find(|r| r.gib == 1).or(rows.first()) else { return Ok(()) };
    for r in &rows {
        std::fs::remove_dir_all(args.dir.join(format!("load-{}", r.gib)))?;
    }
    std::fs::remove_dir_all(args.dir.join("link"))?;
    let nacred = Nacred::start(&here, &args, "ingest")?;
    let ingest = runtime.block_on(async {
        let client = Arc::new(nacred.client().await?);
        client.create_table("ingest", TableSettings::default()).await?;
        ingest(&client, first.records, &args).await
    })?;
    let mut nacred = nacred;
    nacred.stop()?;
    println!();
    println!(
        "ingest of the same {} records through write batches: {:.1}s; link {:.2}s; ingest / link = {:.1}x (ingest / prepare+commit = {:.0}x)",
        first.records,
        ingest.as_secs_f64(),
        first.link.as_secs_f64(),
        ingest.as_secs_f64() / first.link.as_secs_f64(),
        ingest.as_secs_f64() * 1000.0 / (first.load.prepare_ms + first.load.commit_ms).max(1) as f64
    );
    Ok(())
}

struct Measured {
    gib: u64,
    records: u64,
    input_bytes: u64,
    build: Duration,
    load: nacre_wire::BulkLoadInfo,
    link: Duration,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Records making `gib` GiB of key and value bytes.
fn records_for(gib: u64, value_bytes: usize) -> u64 {
    (gib << 30) / (value_bytes as u64 + 16)
}

fn key(i: u64) -> String {
    format!("user-{i:011}")
}

/// A value that does not compress away: xorshift bytes as letters.
fn value(i: u64, len: usize) -> String {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

fn write_input(path: &Path, records: u64, value_bytes: usize) -> Result<()> {
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false), Field::new("val", DataType::Utf8, false)]));
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path)?, schema.clone(), None)?;
    let mut i = 0;
    while i < records {
        let n = (records - i).min(65_536);
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values((i..i + n).map(key)));
        let vals: ArrayRef = Arc::new(StringArray::from_iter_values((i..i + n).map(|j| value(j, value_bytes))));
        writer.write(&RecordBatch::try_new(schema.clone(), vec![ids, vals])?)?;
        i += n;
    }
    writer.close()?;
    Ok(())
}

/// fio's sequential direct-I/O write bandwidth in `dir`, bytes per second.
fn fio_write_bandwidth(dir: &Path) -> Result<f64> {
    let file = dir.join("fio.dat");
    let out = Command::new("fio")
        .args(["--name=seqwrite", "--rw=write", "--bs=1M", "--size=2G", "--direct=1", "--ioengine=libaio"])
        .args(["--iodepth=16", "--end_fsync=1", "--output-format=json"])
        .arg(format!("--filename={}", file.display()))
        .output()
        .context("running fio (apt-get install fio)")?;
    let _ = std::fs::remove_file(&file);
    if !out.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).context("fio's JSON")?;
    report["jobs"][0]["write"]["bw_bytes"].as_f64().context("fio's write bandwidth")
}

/// Sends records 0..records as write batches, one partition per batch, `in_flight` at a time.
async fn ingest(client: &Arc<Client>, records: u64, args: &Args) -> Result<Duration> {
    let topology = client.topology().await?;
    let started = Instant::now();
    let mut pending: Vec<Vec<BatchOp>> = vec![Vec::new(); topology.partition_count as usize];
    let mut inflight = tokio::task::JoinSet::new();
    for i in 0..records {
        let k = key(i);
        let p = topology.partition_of(k.as_bytes()) as usize;
        pending[p].push(BatchOp::Put {
            key: Key::new(k.as_bytes(), b""),
            value: value(i, args.value_bytes).into_bytes(),
            ts: None,
            ttl_ms: None,
        });
        if pending[p].len() >= args.batch_records {
            let ops = std::mem::take(&mut pending[p]);
            while inflight.len() >= args.in_flight {
                inflight.join_next().await.context("a batch")???;
            }
            let client = client.clone();
            inflight.spawn(async move { client.write_batch(WriteBatch::new("ingest", ops)).await.map(|_| ()) });
        }
    }
    for ops in pending.into_iter().filter(|o| !o.is_empty()) {
        client.write_batch(WriteBatch::new("ingest", ops)).await?;
    }
    while let Some(r) = inflight.join_next().await {
        r??;
    }
    Ok(started.elapsed())
}

/// A release nacred on a fresh data directory under the working directory.
struct Nacred {
    child: Option<Child>,
    listen: SocketAddr,
}

impl Nacred {
    fn start(here: &Path, args: &Args, name: &str) -> Result<Nacred> {
        let log = std::fs::File::create(args.dir.join(format!("{name}.log")))?;
        let child = Command::new(here.join("nacred"))
            .arg("--data-dir")
            .arg(args.dir.join(name))
            .args(["--listen", &args.listen.to_string(), "--cores", &args.cores.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nacred")?;
        Ok(Nacred { child: Some(child), listen: args.listen })
    }

    async fn client(&self) -> Result<Client> {
        let options = ClientOptions { timeout: Duration::from_secs(3600), ..ClientOptions::default() };
        let up = Instant::now();
        loop {
            match Client::connect(self.listen, options.clone()).await {
                Ok(c) => return Ok(c),
                Err(e) if up.elapsed() > Duration::from_secs(30) => bail!("nacred did not come up: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id())?),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            let status = child.wait()?;
            if !status.success() {
                bail!("nacred's clean stop failed ({status})");
            }
        }
        Ok(())
    }
}

impl Drop for Nacred {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
