//! `nacre-loadgen`: a workload driver for `nacred` and for any Redis. YCSB's core workloads (A
//! to F, with zipfian, uniform and latest request distributions) or plain gets and puts; a load
//! phase and a run phase; closed loop (sessions x pipeline depth) or open loop (`--rate`, each
//! latency counted from its request's due time). It speaks nacred's own protocol, shard-aware,
//! or RESP, so the same client drives the native door, the RESP door and redis-server; and it
//! writes the same records to a Kafka topic (`kafka.rs`) or a bulk input file (`bulk.rs`). It prints
//! a summary per operation and can write JSON and `.hgrm` files. It reports; it never asserts.
//! It is a client only and never links storage or the daemon.

mod args;
mod bulk;
mod distribution;
mod kafka;
mod keys;
mod native;
mod pacer;
mod plan;
mod progress;
mod report;
mod resp;
mod resp_reply;
mod tally;
mod workload;

use anyhow::{Context, Result};
use args::{Args, DurabilityArg, Target};
use clap::Parser;
use distribution::Chooser;
use keys::{Layout, Router};
use nacre_wire::{Client, ClientOptions, Durability, ErrorCode, TableSettings};
use plan::{Plan, Schedule};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tally::Tally;
use workload::{Generator, Inserts, Mix};

fn main() {
    let args = Args::parse();
    if let Err(message) = args.validate() {
        eprintln!("nacre-loadgen: {message}");
        std::process::exit(2);
    }
    raise_open_file_limit();
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::try_from(args.threads).expect("at most 64"))
            .enable_all()
            .build()
    };
    let result = runtime.context("starting the runtime").and_then(|rt| rt.block_on(run(args)));
    if let Err(e) = result {
        eprintln!("nacre-loadgen: {e:#}");
        std::process::exit(2);
    }
}

/// Raises the soft limit on open files to the hard one: a run may hold a socket per session and
/// shard and, in open loop, a timer per sender. Failing leaves the limit as it was; running out
/// is then a clear error from the socket or timer that could not be made.
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// Where the senders go.
enum Connected {
    /// nacred's native door: each session connects to every shard port.
    Native(Arc<native::Target>),
    /// A Redis-speaking address; each session connects itself.
    Resp(SocketAddr),
    /// A Kafka topic, through one producer.
    Kafka(Arc<kafka::Target>),
}

/// The phase being run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PhaseKind {
    Load,
    Run,
}

impl PhaseKind {
    fn name(self) -> &'static str {
        match self {
            PhaseKind::Load => "load",
            PhaseKind::Run => "run",
        }
    }
}

async fn run(args: Args) -> Result<()> {
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    if args.target == Target::Bulk {
        return write_bulk(&args, seed);
    }
    let mix = args.mix();
    let connected = connect(&args).await?;
    let described = match &connected {
        Connected::Native(target) => format!(
            "native, {} shard port(s) a session, table {:?}, durability {}",
            target.shards.len(),
            args.table,
            args.durability.map_or("server default".to_owned(), |d| format!("{d:?}").to_lowercase())
        ),
        Connected::Resp(_) => "resp".to_owned(),
        Connected::Kafka(target) => format!(
            "kafka topic {:?}, {}",
            args.topic.as_deref().unwrap_or_default(),
            target.aligned_partitions().map_or("Kafka's default partitioner".to_owned(), |p| format!(
                "Nacre's partitioner over {p} partitions"
            ))
        ),
    };
    println!(
        "nacre-loadgen: {} ({described}), workload {:?} ({:?}), {} records, {}-byte values, {} sessions x pipeline {}, \
         {}, {} thread(s), warmup {:?}, duration {:?}, seed {seed}",
        args.addr,
        args.workload,
        mix.distribution,
        args.records(),
        args.value_size,
        args.connections,
        args.pipeline,
        args.rate.map_or("closed loop".to_owned(), |r| format!("open loop at {r} requests/s")),
        args.threads,
        args.warmup,
        args.duration,
    );
    let mut summary = json!({
        "config": {
            "addr": args.addr, "target": format!("{:?}", args.target).to_lowercase(),
            "workload": format!("{:?}", args.workload).to_lowercase(),
            "distribution": format!("{:?}", mix.distribution).to_lowercase(),
            "zipfian_theta": args.zipfian_theta, "records": args.records(), "value_size": args.value_size,
            "connections": args.connections, "pipeline": args.pipeline, "rate": args.rate,
            "warmup_seconds": args.warmup.as_secs_f64(), "duration_seconds": args.duration.as_secs_f64(),
            "seed": seed,
        }
    });
    let mut phases = Vec::new();
    if args.loads() {
        phases.push(PhaseKind::Load);
    }
    if args.runs() {
        phases.push(PhaseKind::Run);
    }
    for phase in phases {
        let (tally, elapsed) = run_phase(&args, &connected, phase, seed).await?;
        if phase == PhaseKind::Load {
            println!("load:");
        }
        print!("{}", report::render(&tally, elapsed));
        summary[phase.name()] = report::to_json(&tally, elapsed);
        if let Some(dir) = &args.plot_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let title = format!("nacre-loadgen {}: {:?} against {}", phase.name(), args.workload, args.addr);
            nacre_loadgen::plot::write(&dir.join(format!("{}-latency", phase.name())), &title, &report::curves(&tally))
                .map_err(anyhow::Error::msg)?;
        }
        if let Some(dir) = &args.hgrm_dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for (op, text) in report::hgrm_files(&tally) {
                let path = dir.join(format!("{}-{op}.hgrm", phase.name()));
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary).expect("a JSON value serialises");
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The bulk target: the load phase's records into a file, with a progress line.
fn write_bulk(args: &Args, seed: u64) -> Result<()> {
    let path = args.out.as_deref().context("the bulk target needs --out")?;
    let dataset = bulk::Dataset {
        records: args.records(),
        value_size: usize::try_from(args.value_size)?,
        layout: Layout::new(args.effective_rows_per_partition()),
        seed,
    };
    println!(
        "nacre-loadgen: writing {} records ({}-byte values) as {:?} to {}, seed {seed}",
        dataset.records,
        dataset.value_size,
        args.format,
        path.display()
    );
    let started = Instant::now();
    let mut last = started;
    let mut progress = |done: u64| {
        if !args.progress_interval.is_zero() && last.elapsed() >= args.progress_interval {
            last = Instant::now();
            eprintln!("bulk: {done} of {} records, {:.0}s", dataset.records, started.elapsed().as_secs_f64());
        }
    };
    let written = bulk::write(path, args.format, &dataset, &mut progress)?;
    let seconds = written.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "wrote {} records, {:.1} MiB of keys and values, a {:.1} MiB file, in {seconds:.2}s ({:.0} MiB/s of records)",
        dataset.records,
        written.record_bytes as f64 / f64::from(1 << 20),
        written.file_bytes as f64 / f64::from(1 << 20),
        written.record_bytes as f64 / f64::from(1 << 20) / seconds
    );
    if let Some(json_path) = &args.json {
        let summary = json!({
            "config": { "target": "bulk", "format": format!("{:?}", args.format).to_lowercase(),
                "records": dataset.records, "value_size": dataset.value_size, "seed": seed },
            "file_bytes": written.file_bytes, "record_bytes": written.record_bytes,
            "seconds": written.elapsed.as_secs_f64(),
        });
        let text = serde_json::to_string_pretty(&summary).expect("a JSON value serialises");
        std::fs::write(json_path, text + "\n").with_context(|| format!("writing {}", json_path.display()))?;
    }
    Ok(())
}

fn options(args: &Args) -> ClientOptions {
    ClientOptions {
        client_name: "nacre-loadgen".to_owned(),
        timeout: args.timeout,
        connect_timeout: args.timeout,
        max_in_flight: usize::try_from(args.pipeline).expect("at most MAX_PIPELINE"),
        ..ClientOptions::default()
    }
}

async fn connect(args: &Args) -> Result<Connected> {
    if args.target == Target::Kafka {
        let topic = args.topic.as_deref().context("the kafka target needs --topic")?;
        let in_flight = usize::try_from(args.connections * args.pipeline)?;
        let target = kafka::Target::connect(&args.addr, topic, args.partitioner, in_flight, args.timeout)?;
        return Ok(Connected::Kafka(Arc::new(target)));
    }
    let addr = tokio::net::lookup_host(args.addr.as_str())
        .await
        .with_context(|| format!("resolving {}", args.addr))?
        .next()
        .context("the address resolves to nothing")?;
    if args.target == Target::Resp {
        // Fail at once, clearly, if nothing listens; sessions connect for themselves.
        tokio::time::timeout(args.timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow::anyhow!("connecting to {addr}: no answer within {:?}", args.timeout))?
            .with_context(|| format!("connecting to {addr}"))?;
        return Ok(Connected::Resp(addr));
    }
    let control = Client::connect(addr, options(args)).await.with_context(|| format!("connecting to {addr}"))?;
    ensure_table(&control, &args.table).await?;
    let router = Router::new(control.current_topology());
    let durability = args.durability.map(|d| match d {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Async => Durability::Async,
    });
    let shards = router.ports().iter().map(|port| SocketAddr::new(addr.ip(), *port)).collect();
    Ok(Connected::Native(Arc::new(native::Target { shards, router, table: args.table.clone(), durability })))
}

/// Creates the table unless it exists (another loadgen may create it at the same time).
async fn ensure_table(client: &Client, table: &str) -> Result<()> {
    if client.list_tables().await?.iter().any(|t| t.name == table) {
        return Ok(());
    }
    match client.create_table(table, TableSettings::default()).await {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(ErrorCode::TableExists) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating table {table:?}")),
    }
}

/// Runs one phase with every sender and returns the merged tally and the time it measured.
async fn run_phase(args: &Args, connected: &Connected, phase: PhaseKind, seed: u64) -> Result<(Tally, Duration)> {
    let start = Instant::now();
    let (mix, inserts, measure_from, until, end_record) = match phase {
        // Every record once, in order, as fast as the senders go.
        PhaseKind::Load => {
            let inserts_only = Mix { proportions: [0.0, 0.0, 1.0, 0.0, 0.0], distribution: args.mix().distribution };
            (
                inserts_only,
                Inserts::after(0),
                start,
                start + Duration::from_secs(u64::from(u32::MAX)),
                Some(args.records()),
            )
        }
        PhaseKind::Run => {
            let measure_from = start + args.warmup;
            (args.mix(), Inserts::after(args.records()), measure_from, measure_from + args.duration, None)
        }
    };
    // Computing zeta is linear in the record count: once, then cloned.
    let chooser = Chooser::new(mix.distribution, args.records(), args.zipfian_theta);
    let layout = Layout::new(args.effective_rows_per_partition());
    let value_size = usize::try_from(args.value_size)?;
    let pipeline = usize::try_from(args.pipeline)?;
    let senders = usize::try_from(args.connections)?;
    let rate = if phase == PhaseKind::Run { args.rate } else { None };
    let pacer = match rate {
        Some(_) => Some(pacer::Pacer::start().context("starting the open-loop timer")?),
        None => None,
    };
    let mut counters = Vec::new();
    let mut plan_for = |index: usize| {
        // Open loop: the run's rate dealt evenly over the senders, their schedules staggered.
        let schedule = rate.map(|rate| {
            let interval = Duration::from_secs_f64(senders as f64 / rate as f64);
            Schedule { first: start + interval.mul_f64(index as f64 / senders as f64), interval }
        });
        let completed = Arc::new(AtomicU64::new(0));
        counters.push(Arc::clone(&completed));
        let sender_seed =
            seed ^ (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(phase == PhaseKind::Load);
        Plan {
            generator: Generator::new(mix, chooser.clone(), Arc::clone(&inserts), args.max_scan_length, sender_seed),
            layout,
            value_size,
            measure_from,
            until,
            end_record,
            schedule,
            pacer: pacer.clone(),
            completed,
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        match connected {
            Connected::Native(target) => {
                tasks.spawn(native::run_session(Arc::clone(target), plan_for(s), pipeline, args.timeout))
            }
            Connected::Resp(addr) => tasks.spawn(resp::run_session(*addr, plan_for(s), pipeline, args.timeout)),
            Connected::Kafka(target) => tasks.spawn(kafka::run_session(Arc::clone(target), plan_for(s), pipeline)),
        };
    }
    let progress = tokio::spawn(progress::report(phase.name(), counters, start, measure_from, args.progress_interval));
    let mut total = Tally::new();
    while let Some(sender) = tasks.join_next().await {
        total.merge(&sender.context("a sender panicked")?);
    }
    progress.abort();
    Ok((total, Instant::now().saturating_duration_since(measure_from)))
}
