//! nacred's RESP door against redis-server, same machine, same run: `redis-benchmark -t get,set`
//! against each in turn, pipelined (`-P 16` by default) and not (`-P 1`), then a table of both
//! rates and the ratio Nacre/Redis per test, and each server's operations per CPU-second (its
//! utime + stime over the test, from `/proc`) with their ratio, since client and server share
//! the machine's cores, the client's CPU per operation, and nacred's allocations per operation
//! (every shard's `allocations_total`, read through the native door).
//!
//! redis-server runs with no persistence (`--save '' --appendonly no`); nacred runs on its
//! defaults (a WAL with group commit) on a fresh data directory. Both share the machine with
//! redis-benchmark itself, so only the ratio means anything, and only within one run.
//!
//! nacred is the release binary next to this one (`cargo build --release -p nacre-daemon`), or
//! `--nacred PATH`.

use anyhow::{Context, Result, bail};
use clap::Parser;
use nacre_bench::process::{Guard, cpu_seconds, free_port, wait_for_pong};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Parser, Debug)]
#[command(about = "nacred's RESP door vs redis-server: redis-benchmark -t get,set, same run")]
struct Args {
    /// Requests per test (redis-benchmark -n).
    #[arg(long, default_value_t = 2_000_000)]
    requests: u64,
    /// Parallel connections (-c).
    #[arg(long, default_value_t = 50)]
    clients: u32,
    /// Pipeline depths to run, in order (-P).
    #[arg(long, value_delimiter = ',', default_value = "16,1")]
    pipelines: Vec<u32>,
    /// Value size, bytes (-d).
    #[arg(long, default_value_t = 100)]
    data_size: u32,
    /// Key space (-r): keys are drawn from this many; 0 leaves -r out (every request on one key,
    /// as plain `redis-benchmark -t get,set` does).
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// nacred's shards (--cores); 0 = one per core.
    #[arg(long, default_value_t = 0)]
    cores: usize,
    /// The nacred binary; default: `nacred` next to this binary.
    #[arg(long)]
    nacred: Option<PathBuf>,
    /// nacred's data directory (must support O_DIRECT: ext4 or xfs, not tmpfs); emptied first.
    #[arg(long, default_value = "/var/tmp/nacre-bench-resp")]
    dir: PathBuf,
    /// nacred's own protocol address (it also takes the next `cores` ports).
    #[arg(long, default_value = "127.0.0.1:27170")]
    listen: SocketAddr,
    /// The redis-server binary (Debian: redis-server).
    #[arg(long, default_value = "redis-server")]
    redis_server: String,
    /// The redis-benchmark binary (Debian: redis-tools).
    #[arg(long, default_value = "redis-benchmark")]
    redis_benchmark: String,
}

/// The tests, each run alone so each has its own CPU figures.
const TESTS: [&str; 2] = ["SET", "GET"];

/// One redis-benchmark run of one test against one server.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Requests per second.
    rate: f64,
    /// Requests per CPU-second of the server process.
    per_server_cpu_second: f64,
    /// CPU microseconds redis-benchmark spent per request.
    client_cpu_us: f64,
    /// nacred's allocations per request, every shard's `allocations_total` over the test (none
    /// for redis-server, which does not count them).
    allocations: Option<f64>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let nacred = match &args.nacred {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.parent().context("this binary's directory")?.join("nacred"),
    };
    if !nacred.exists() {
        bail!("{} is missing: cargo build --release -p nacre-daemon (or --nacred PATH)", nacred.display());
    }
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;

    let redis_addr = free_port()?;
    let redis = Command::new(&args.redis_server)
        .args(["--port", &redis_addr.port().to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running {} (Debian: redis-server)", args.redis_server))?;
    let mut redis = Guard { child: redis, name: "redis-server" };
    wait_for_pong(redis_addr, &mut redis)?;

    let resp_addr = free_port()?;
    let log = std::fs::File::create(args.dir.join("nacred.log"))?;
    let nacred_child = Command::new(&nacred)
        .arg("--data-dir")
        .arg(args.dir.join("data"))
        .args(["--listen", &args.listen.to_string(), "--resp-listen", &resp_addr.to_string()])
        .args(["--cores", &args.cores.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("running {}", nacred.display()))?;
    let mut nacred_guard = Guard { child: nacred_child, name: "nacred" };
    wait_for_pong(resp_addr, &mut nacred_guard)?;

    println!(
        "redis-benchmark -t get,set -n {} -c {} -d {}{}, pipelines {:?}; nacred --cores {} (0 = all), redis-server without persistence",
        args.requests,
        args.clients,
        args.data_size,
        if args.keyspace > 0 { format!(" -r {}", args.keyspace) } else { " (one key)".to_owned() },
        args.pipelines,
        args.cores
    );
    let mut rows = Vec::new();
    for &pipeline in &args.pipelines {
        for test in TESTS {
            let redis_run = benchmark(&args, redis_addr, redis.pid(), pipeline, test, None)?;
            println!("redis-server -P {pipeline} {test}: {redis_run:?}");
            let nacre_run = benchmark(&args, resp_addr, nacred_guard.pid(), pipeline, test, Some(args.listen))?;
            println!("nacred       -P {pipeline} {test}: {nacre_run:?}");
            rows.push((test, pipeline, nacre_run, redis_run));
        }
    }
    println!();
    println!(
        "{:<4} {:>3} {:>12} {:>12} {:>7} {:>13} {:>13} {:>7} {:>11} {:>11} {:>10}",
        "test",
        "-P",
        "nacred op/s",
        "redis op/s",
        "ratio",
        "nacred op/cpu",
        "redis op/cpu",
        "ratio",
        "client us/op",
        "(on redis)",
        "allocs/op"
    );
    for (test, pipeline, nacre, redis) in rows {
        println!(
            "{test:<4} {pipeline:>3} {:>12.0} {:>12.0} {:>6.2}x {:>13.0} {:>13.0} {:>6.2}x {:>11.2} {:>11.2} {:>10.2}",
            nacre.rate,
            redis.rate,
            nacre.rate / redis.rate,
            nacre.per_server_cpu_second,
            redis.per_server_cpu_second,
            nacre.per_server_cpu_second / redis.per_server_cpu_second,
            nacre.client_cpu_us,
            redis.client_cpu_us,
            nacre.allocations.unwrap_or(f64::NAN),
        );
    }
    drop(nacred_guard);
    let _ = std::fs::remove_dir_all(&args.dir);
    Ok(())
}

/// Runs redis-benchmark's `test` against `addr`, served by process `server`; `native` is
/// nacred's native door, to read its allocation counts from.
fn benchmark(
    args: &Args,
    addr: SocketAddr,
    server: u32,
    pipeline: u32,
    test: &str,
    native: Option<SocketAddr>,
) -> Result<Run> {
    let allocations_before = native.map(allocations).transpose()?;
    let (server_before, client_before) = (cpu_seconds(server, false)?, cpu_seconds(std::process::id(), true)?);
    let output = Command::new(&args.redis_benchmark)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-t", &test.to_lowercase(), "--csv"])
        .args(["-n", &args.requests.to_string(), "-c", &args.clients.to_string(), "-P", &pipeline.to_string()])
        .args(["-d", &args.data_size.to_string()])
        .args(if args.keyspace > 0 { vec!["-r".to_owned(), args.keyspace.to_string()] } else { Vec::new() })
        .output()
        .with_context(|| format!("running {} (Debian: redis-tools)", args.redis_benchmark))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("redis-benchmark against {addr} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    let server_cpu = cpu_seconds(server, false)? - server_before;
    // redis-benchmark has been waited for, so its CPU is in this process's children's times.
    let client_cpu = cpu_seconds(std::process::id(), true)? - client_before;
    // "test","rps","avg_latency_ms",...: the line after the header.
    let line = stdout.lines().nth(1).with_context(|| format!("no result line in: {stdout}"))?;
    let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
    if fields[0] != test {
        bail!("redis-benchmark -t {test} reported {line}");
    }
    let rate: f64 = fields.get(1).and_then(|r| r.parse().ok()).with_context(|| format!("a CSV line: {line}"))?;
    let requests = args.requests as f64;
    let allocations = match (native, allocations_before) {
        (Some(addr), Some(before)) => Some((allocations(addr)? - before) as f64 / requests),
        _ => None,
    };
    Ok(Run {
        rate,
        per_server_cpu_second: requests / server_cpu,
        client_cpu_us: client_cpu * 1e6 / requests,
        allocations,
    })
}

/// Every shard's `allocations_total`, summed, from nacred's native door at `addr` (the stats
/// call's own few allocations round away against a test's requests).
fn allocations(addr: SocketAddr) -> Result<u64> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let client = nacre_wire::Client::connect(addr, nacre_wire::ClientOptions::default()).await?;
        let stats = client.stats().await?;
        anyhow::Ok(stats.iter().filter(|s| s.name == "allocations_total").map(|s| s.value).sum())
    })
}
