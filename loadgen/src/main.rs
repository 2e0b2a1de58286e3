//! `nacre-loadgen`: a pipelined GET/PUT driver for `nacred` over the wire client, closed loop or
//! open loop (`--rate`). It opens `--connections` TCP connections dealt over the shard ports, keeps `--pipeline`
//! requests in flight on each, records every latency in an HdrHistogram and prints throughput
//! and p50/p99/p99.9/max. It reports; it never asserts. It is a client only and never links
//! storage or the daemon.

mod args;
mod keys;
mod report;
mod worker;

use anyhow::{Context, Result};
use args::{Args, DurabilityArg};
use clap::Parser;
use nacre_wire::{Client, ClientOptions, Durability, ErrorCode, Put, TableSettings};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use worker::{Plan, Tally};

/// Puts in flight while preloading.
const PRELOAD_IN_FLIGHT: usize = 256;

fn main() {
    let args = Args::parse();
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

fn options(args: &Args) -> ClientOptions {
    ClientOptions {
        client_name: "nacre-loadgen".to_owned(),
        timeout: args.timeout,
        connect_timeout: args.timeout,
        max_in_flight: usize::try_from(args.pipeline).expect("at most MAX_PIPELINE").max(PRELOAD_IN_FLIGHT),
        ..ClientOptions::default()
    }
}

async fn run(args: Args) -> Result<()> {
    let control = Client::connect(args.addr.as_str(), options(&args))
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    ensure_table(&control, &args.table).await?;
    let topology = control.current_topology();
    let space = keys::KeySpace::split(&topology, args.keys);
    let host =
        tokio::net::lookup_host(args.addr.as_str()).await?.next().context("the address resolves to nothing")?.ip();
    let seed = args.seed.unwrap_or_else(|| fastrand::u64(..));
    let read_ratio = args.effective_read_ratio();
    let durability = args.durability.map(|d| match d {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Async => Durability::Async,
    });
    println!(
        "nacre-loadgen: {} ({} shards, {} partitions), table {:?}, {} keys, {}-byte values, read ratio {read_ratio}, \
         durability {}, {} connections x pipeline {} = {} in flight, {}, {} thread(s), warmup {:?}, duration {:?}, seed {seed}",
        args.addr,
        topology.shard_count,
        topology.partition_count,
        args.table,
        args.keys,
        args.value_size,
        args.durability.map_or("server default".to_owned(), |d| format!("{d:?}").to_lowercase()),
        args.connections,
        args.pipeline,
        args.connections * args.pipeline,
        args.rate.map_or("closed loop".to_owned(), |r| format!("open loop at {r} requests/s")),
        args.threads,
        args.warmup,
        args.duration,
    );
    if args.preload {
        preload(Arc::new(control), &args, durability).await?;
    }

    let mut clients = Vec::new();
    for c in 0..usize::try_from(args.connections)? {
        let (port, keys) = space.for_connection(c);
        let client = Client::connect(SocketAddr::new(host, *port), options(&args))
            .await
            .with_context(|| format!("connecting to shard port {port}"))?;
        clients.push((Arc::new(client), Arc::new(keys.clone())));
    }
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let until = measure_from + args.duration;
    let mut slots = tokio::task::JoinSet::new();
    let slot_count = args.connections * args.pipeline;
    for (c, (client, keys)) in clients.iter().enumerate() {
        for p in 0..args.pipeline {
            // Open loop: the run's rate dealt evenly over the slots, their schedules staggered.
            let schedule = args.rate.map(|rate| {
                let interval = Duration::from_secs_f64(slot_count as f64 / rate as f64);
                let index = c as u64 * args.pipeline + p;
                worker::Schedule { first: start + interval.mul_f64(index as f64 / slot_count as f64), interval }
            });
            let plan = Plan {
                table: args.table.clone(),
                keys: Arc::clone(keys),
                read_ratio,
                value_size: usize::try_from(args.value_size)?,
                durability,
                measure_from,
                until,
                seed: seed ^ ((c as u64) << 32 | p),
                schedule,
            };
            slots.spawn(worker::run(Arc::clone(client), plan));
        }
    }
    let mut total = Tally::new();
    while let Some(slot) = slots.join_next().await {
        total.merge(&slot.context("a load slot panicked")?);
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    print!("{}", report::render(&total, elapsed));
    Ok(())
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

/// Writes every key once, `PRELOAD_IN_FLIGHT` at a time, and prints how long it took.
async fn preload(client: Arc<Client>, args: &Args, durability: Option<Durability>) -> Result<()> {
    let started = Instant::now();
    let value = vec![0x5a_u8; usize::try_from(args.value_size)?];
    let mut tally = Tally::new();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut next = 0;
    while next < args.keys || !in_flight.is_empty() {
        while next < args.keys && in_flight.len() < PRELOAD_IN_FLIGHT {
            let (client, value) = (Arc::clone(&client), value.clone());
            let put = Put { durability, ..Put::new(args.table.as_str(), keys::key(next), value) };
            in_flight.spawn(async move {
                let sent = Instant::now();
                client.put(put).await.map(|_| sent.elapsed())
            });
            next += 1;
        }
        if let Some(done) = in_flight.join_next().await {
            let latency = done.context("a preload put panicked")?.context("a preload put failed")?;
            tally.put_ns.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX).max(1));
        }
    }
    let elapsed = started.elapsed();
    println!("preload: {}", report::one_line(&tally.put_ns, elapsed.max(Duration::from_nanos(1))));
    Ok(())
}
