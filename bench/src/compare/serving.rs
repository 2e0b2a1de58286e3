//! Section 1: GET and SET throughput and operations per server CPU-second, `-P 1` and `-P 16`,
//! 50 sessions, 100-byte values: nacred's native and RESP doors against redis-server, all
//! driven by nacre-loadgen, which is as light per request as redis-benchmark (docs/loadgen.md).

use crate::compare::context::Context;
use crate::compare::loadgen::Measured;
use crate::compare::report::{Section, median};
use crate::compare::targets::{Servers, Target, row};
use anyhow::Result;

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
    Ok(Section {
        number: 1,
        name: "serving".to_owned(),
        title: "GET and SET against redis-server".to_owned(),
        method: format!(
            "nacre-loadgen, closed loop, 50 sessions, 100-byte values, {} records loaded first, {} s a run, \
             against redis-server (no persistence), nacred's RESP door and nacred's native door (both \
             acknowledging writes after the WAL queue, async). Server CPU is utime + stime from /proc over the \
             run; client and server share the machine's cores. Goals (issue 13): 1.0x throughput and 1.5x \
             operations per server CPU-second on both doors.",
            ctx.records(),
            ctx.seconds()
        ),
        rows,
        notes,
        skipped: None,
    })
}
