//! Section 1: GET and SET throughput and operations per server CPU-second, `-P 1` and `-P 16`,
//! 50 sessions, 100-byte values: nacred's native and RESP doors against redis-server, all
//! driven by nacre-loadgen, which is as light per request as redis-benchmark (docs/loadgen.md).

use crate::compare::context::Context;
use crate::compare::loadgen::Measured;
use crate::compare::peers::REDIS_BENCHMARK;
use crate::compare::redis_benchmark::Test;
use crate::compare::report::{Row, Section, median};
use crate::compare::targets::{Servers, Target, row};
use anyhow::Result;
use std::path::Path;

/// Pipeline depths, deepest first.
const PIPELINES: [u32; 2] = [16, 1];
/// The operations: (label, loadgen workload).
const OPERATIONS: [(&str, &str); 2] = [("GET", "get"), ("SET", "put")];

/// Runs the section.
///
/// # Errors
///
/// If a server or a run fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let servers = Servers::start(ctx, ctx.records(), 100)?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for pipeline in PIPELINES {
        for (label, workload) in OPERATIONS {
            let p = pipeline.to_string();
            let args = ["--workload", workload, "--connections", "50", "--pipeline", &p];
            let rounds = servers.rounds(ctx, &args)?;
            let name = format!("{label} -P {pipeline}");
            for (door, target) in Target::NACRE.into_iter().enumerate() {
                rows.push(row(&rounds, door, format!("{name} throughput"), "op/s", true, |m| m.rate));
                rows.push(row(
                    &rounds,
                    door,
                    format!("{name} per server CPU-second"),
                    "op/cpu-s",
                    true,
                    Measured::per_server_cpu_second,
                ));
                rows.push(row(
                    &rounds,
                    door,
                    format!("{name} client CPU per op"),
                    "us",
                    false,
                    Measured::client_cpu_us,
                ));
                let allocations: Vec<f64> = rounds
                    .iter()
                    .filter_map(|r| r.nacre[door].allocations.map(|a| a as f64 / r.nacre[door].operations.max(1.0)))
                    .collect();
                notes.push(format!(
                    "{name}, {}: {:.2} allocations per operation",
                    target.label(),
                    median(&allocations)
                ));
            }
        }
    }
    match REDIS_BENCHMARK.find() {
        Ok(binary) => rows.extend(redis_benchmark_rows(ctx, &servers, &binary)?),
        Err(why) => notes.push(format!("no redis-benchmark rows: {why}")),
    }
    Ok(Section {
        number: 1,
        name: "serving".to_owned(),
        title: "GET and SET against redis-server".to_owned(),
        method: format!(
            "nacre-loadgen, closed loop, 50 sessions, 100-byte values, {} records loaded first, {} s a run, \
             against redis-server (no persistence), nacred's RESP door and nacred's native door (both \
             acknowledging writes after the WAL queue, async). Server CPU is utime + stime from /proc over the \
             run; client and server share the machine's cores. Goals (issue 13): 1.0x throughput and 1.5x \
             operations per server CPU-second on both doors. Rows marked (redis-benchmark) drive redis-server and \
             nacred's RESP door with redis-benchmark -c 50 -d 100 -r {} -n {} instead, Redis's own client. \
             The native door's sessions each hold a connection per shard, so it gets 50 / shards sessions of \
             (pipeline x shards) requests: the same 50 connections, with the same requests in flight on each, as \
             the RESP servers.",
            ctx.records(),
            ctx.seconds(),
            ctx.records(),
            redis_benchmark_requests(ctx)
        ),
        rows,
        notes,
        skipped: None,
    })
}

/// Requests per redis-benchmark run.
fn redis_benchmark_requests(ctx: &Context) -> u64 {
    if ctx.quick { 20_000 } else { 1_000_000 }
}

/// Throughput and operations per server CPU-second by redis-benchmark, redis-server against
/// nacred's RESP door, every pipeline depth and operation, rounds interleaved.
fn redis_benchmark_rows(ctx: &Context, servers: &Servers, binary: &Path) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    for pipeline in PIPELINES {
        for (label, _) in OPERATIONS {
            let test = Test {
                test: &label.to_lowercase(),
                requests: redis_benchmark_requests(ctx),
                clients: 50,
                pipeline,
                data_size: 100,
                keyspace: ctx.records(),
            };
            let rounds = (0..ctx.rounds).map(|_| servers.redis_benchmark(binary, &test)).collect::<Result<Vec<_>>>()?;
            let row = |what: &str, unit: &str, of: fn(&crate::compare::redis_benchmark::Outcome) -> f64| Row {
                measure: format!("{label} -P {pipeline} {what} (redis-benchmark)"),
                unit: unit.to_owned(),
                peer: Target::Redis.label().to_owned(),
                peer_values: rounds.iter().map(|(redis, _)| of(redis)).collect(),
                nacre: Target::NacreResp.label().to_owned(),
                nacre_values: rounds.iter().map(|(_, nacre)| of(nacre)).collect(),
                higher_is_better: true,
            };
            rows.push(row("throughput", "op/s", |o| o.rate));
            rows.push(row("per server CPU-second", "op/cpu-s", |o| o.per_server_cpu_second));
        }
    }
    Ok(rows)
}
