//! Section 3: YCSB workloads A, B, C and F (zipfian, 100-byte values): nacred's native and RESP
//! doors against redis-server, all driven by nacre-loadgen. No RocksDB-backed server is packaged
//! for Debian, so that peer is left out (the engine meets RocksDB in its own section).

use crate::compare::context::Context;
use crate::compare::loadgen::Measured;
use crate::compare::report::{Row, Section};
use crate::compare::targets::{Servers, Target};
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
        let mut rounds: Vec<(Measured, [Measured; 2])> = Vec::new();
        for _ in 0..ctx.rounds {
            let redis = servers.measure(ctx, Target::Redis, &args)?;
            let resp = servers.measure(ctx, Target::NacreResp, &args)?;
            let native = servers.measure(ctx, Target::NacreNative, &args)?;
            rounds.push((redis, [resp, native]));
        }
        let name = format!("YCSB {}", workload.to_uppercase());
        for (door, target) in Target::NACRE.into_iter().enumerate() {
            let row = |measure: &str, unit: &str, higher_is_better: bool, of: &dyn Fn(&Measured) -> f64| Row {
                measure: format!("{name} {measure}"),
                unit: unit.to_owned(),
                peer: Target::Redis.label().to_owned(),
                peer_values: rounds.iter().map(|(redis, _)| of(redis)).collect(),
                nacre: target.label().to_owned(),
                nacre_values: rounds.iter().map(|(_, nacre)| of(&nacre[door])).collect(),
                higher_is_better,
            };
            rows.push(row("throughput", "op/s", true, &|m| m.rate));
            rows.push(row("p99", "us", false, &|m| m.latency_us("p99")));
        }
    }
    Ok(Section {
        number: 3,
        name: "ycsb".to_owned(),
        title: "YCSB A, B, C and F against redis-server".to_owned(),
        method: format!(
            "nacre-loadgen, YCSB's core workloads (zipfian, theta 0.99; F's read-modify-write is a GET then a SET, \
             timed together), closed loop, 32 sessions of one request each, {} records loaded first, 100-byte \
             values, {} s a run. No RocksDB-backed server is packaged for Debian, so none is compared here.",
            ctx.records(),
            ctx.seconds()
        ),
        rows,
        notes: Vec::new(),
        skipped: None,
    })
}
