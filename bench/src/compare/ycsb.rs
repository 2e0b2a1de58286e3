//! Section 3: YCSB workloads A, B, C and F (zipfian, 100-byte values): nacred's native and RESP
//! doors against redis-server, all driven by nacre-loadgen. No RocksDB-backed server is packaged
//! for Debian, so that peer is left out (the engine meets RocksDB in its own section).

use crate::compare::context::Context;
use crate::compare::report::Section;
use crate::compare::targets::{Servers, Target, row};
use anyhow::Result;

/// The workloads run, by loadgen name.
const WORKLOADS: [&str; 4] = ["a", "b", "c", "f"];

/// Runs the section.
///
/// # Errors
///
/// If a server or a run fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let servers = Servers::start(ctx, ctx.records(), 100)?;
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        let args = ["--workload", workload, "--connections", "32", "--pipeline", "1"];
        let rounds = servers.rounds(ctx, &args)?;
        let name = format!("YCSB {}", workload.to_uppercase());
        for door in 0..Target::NACRE.len() {
            rows.push(row(&rounds, door, format!("{name} throughput"), "op/s", true, |m| m.rate));
            rows.push(row(&rounds, door, format!("{name} p99"), "us", false, |m| m.latency_us("p99")));
        }
    }
    Ok(Section {
        number: 3,
        name: "ycsb".to_owned(),
        title: "YCSB A, B, C and F against redis-server".to_owned(),
        method: format!(
            "nacre-loadgen, YCSB's core workloads (zipfian, theta 0.99; F's read-modify-write is a GET then a SET, \
             timed together), closed loop, 32 sessions of one request each, {} records loaded first, 100-byte \
             values, {} s a run; the native door gets 1 / shards the sessions with shards requests each (a session \
             holds a connection per shard): the same connections. No RocksDB-backed server is packaged for Debian, \
             so none is compared here.",
            ctx.records(),
            ctx.seconds()
        ),
        rows,
        notes: Vec::new(),
        skipped: None,
    })
}
