//! The three servers every serving comparison drives with the same client: `redis-server`
//! through RESP, nacred through its RESP door, and nacred through its native door. Starts
//! them, loads the same records into each, and runs a workload against each in turn.

use crate::compare::context::Context;
use crate::compare::loadgen::{self, Measured, Served};
use crate::compare::peers::REDIS_SERVER;
use crate::compare::redis_benchmark::{self, Outcome, Test};
use crate::compare::report::Row;
use crate::compare::servers::{Nacred, Redis};
use anyhow::{Context as _, Result};
use std::path::Path;

/// Who serves a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// redis-server, through RESP: the peer.
    Redis,
    /// nacred's RESP door.
    NacreResp,
    /// nacred's native door (async acknowledgements, as the RESP door's default).
    NacreNative,
}

impl Target {
    /// Its name in reports.
    pub fn label(self) -> &'static str {
        match self {
            Target::Redis => "redis-server",
            Target::NacreResp => "nacred RESP",
            Target::NacreNative => "nacred native",
        }
    }

    /// nacred's two doors.
    pub const NACRE: [Target; 2] = [Target::NacreResp, Target::NacreNative];
}

/// redis-server and nacred, running, with the same records in each.
pub struct Servers {
    redis: Redis,
    nacred: Nacred,
    records: u64,
}

impl Servers {
    /// Starts both and loads `records` records of `value_size` bytes into each, through every
    /// door a run will use.
    ///
    /// # Errors
    ///
    /// If redis-server is not installed (the message says how), or either fails to start or
    /// load.
    pub fn start(ctx: &Context, records: u64, value_size: u64) -> Result<Servers> {
        let redis_binary = REDIS_SERVER.find().map_err(anyhow::Error::msg)?;
        let redis = Redis::start(&redis_binary, &ctx.work)?;
        let nacred = Nacred::start(&ctx.nacred, &ctx.work)?;
        let servers = Servers { redis, nacred, records };
        for target in [Target::Redis, Target::NacreResp, Target::NacreNative] {
            let mut args = servers.target_args(target);
            args.extend(
                ["--phase", "load", "--keys", &records.to_string(), "--value-size", &value_size.to_string()]
                    .map(str::to_owned),
            );
            args.extend(["--connections", "8", "--pipeline", "16"].map(str::to_owned));
            loadgen::run(&ctx.loadgen, &args, &servers.served(target), &ctx.work)
                .with_context(|| format!("loading {}", target.label()))?;
        }
        Ok(servers)
    }

    /// The loadgen arguments that reach `target`.
    fn target_args(&self, target: Target) -> Vec<String> {
        let (protocol, addr) = match target {
            Target::Redis => ("resp", self.redis.addr),
            Target::NacreResp => ("resp", self.nacred.resp),
            Target::NacreNative => ("native", self.nacred.native),
        };
        let mut args = vec!["--target".to_owned(), protocol.to_owned(), "--addr".to_owned(), addr.to_string()];
        if target == Target::NacreNative {
            args.extend(["--durability", "async"].map(str::to_owned));
        }
        args
    }

    fn served(&self, target: Target) -> Served<'_> {
        match target {
            Target::Redis => Served::Redis { pid: self.redis.guard.pid() },
            Target::NacreResp | Target::NacreNative => Served::Nacred(&self.nacred),
        }
    }

    /// Runs `workload` (loadgen arguments beyond the target's and `ctx`'s common ones) against
    /// `target`.
    ///
    /// # Errors
    ///
    /// If the run fails or reports errors.
    pub fn measure(&self, ctx: &Context, target: Target, workload: &[&str]) -> Result<Measured> {
        let mut args = self.target_args(target);
        args.extend(ctx.loadgen_common(self.records));
        let mut workload: Vec<String> = workload.iter().map(|a| (*a).to_owned()).collect();
        if target == Target::NacreNative {
            same_connections(&mut workload, self.nacred.shards);
        }
        args.extend(workload.iter().cloned());
        let measured = loadgen::run(&ctx.loadgen, &args, &self.served(target), &ctx.work)
            .with_context(|| format!("{} {}", target.label(), workload.join(" ")))?;
        eprintln!(
            "  {:<14} {:<60} {:>10.0} op/s  {:>10.0} op/server-cpu-s",
            target.label(),
            workload.join(" "),
            measured.rate,
            measured.per_server_cpu_second()
        );
        Ok(measured)
    }

    /// Every round of `workload`: redis-server, then nacred's RESP door, then its native door.
    ///
    /// # Errors
    ///
    /// If a run fails or reports errors.
    pub fn rounds(&self, ctx: &Context, workload: &[&str]) -> Result<Vec<Round>> {
        (0..ctx.rounds)
            .map(|_| {
                let redis = self.measure(ctx, Target::Redis, workload)?;
                let resp = self.measure(ctx, Target::NacreResp, workload)?;
                let native = self.measure(ctx, Target::NacreNative, workload)?;
                Ok(Round { redis, nacre: [resp, native] })
            })
            .collect()
    }

    /// redis-benchmark's `test` against redis-server, then against nacred's RESP door.
    ///
    /// # Errors
    ///
    /// If either run fails.
    pub fn redis_benchmark(&self, binary: &Path, test: &Test<'_>) -> Result<(Outcome, Outcome)> {
        let redis = redis_benchmark::run(binary, self.redis.addr, self.redis.guard.pid(), test)?;
        let nacre = redis_benchmark::run(binary, self.nacred.resp, self.nacred.guard.pid(), test)?;
        eprintln!(
            "  redis-benchmark -t {} -P {}: redis-server {:.0} op/s, nacred RESP {:.0} op/s",
            test.test, test.pipeline, redis.rate, nacre.rate
        );
        Ok((redis, nacre))
    }
}

/// Reshapes a RESP run's `--connections C --pipeline P` for the native door, whose sessions
/// open a connection to each of nacred's `shards` and send each key to its owner: `C / shards`
/// sessions of `P * shards` requests in flight, so the door serves the same number of
/// connections with the same requests in flight on each (on average) as a RESP server does.
/// Without it, 50 sessions at `-P 16` on two shards were 100 connections with 8 requests each.
fn same_connections(workload: &mut [String], shards: usize) {
    let shards = shards.max(1) as u64;
    let mut scale = |flag: &str, f: &dyn Fn(u64) -> u64| {
        if let Some(at) = workload.iter().position(|a| a == flag)
            && let Some(value) = workload.get_mut(at + 1)
            && let Ok(n) = value.parse::<u64>()
        {
            *value = f(n).to_string();
        }
    };
    scale("--connections", &|c| (c / shards).max(1));
    scale("--pipeline", &|p| p * shards);
}

/// One round of a workload against the three.
pub struct Round {
    /// redis-server's figures.
    pub redis: Measured,
    /// nacred's, in [`Target::NACRE`] order.
    pub nacre: [Measured; 2],
}

/// The row comparing `of` for nacred's door number `door` (in [`Target::NACRE`] order) against
/// redis-server over `rounds`.
pub fn row(
    rounds: &[Round],
    door: usize,
    measure: String,
    unit: &str,
    higher_is_better: bool,
    of: impl Fn(&Measured) -> f64,
) -> Row {
    Row {
        measure,
        unit: unit.to_owned(),
        peer: Target::Redis.label().to_owned(),
        peer_values: rounds.iter().map(|r| of(&r.redis)).collect(),
        nacre: Target::NACRE[door].label().to_owned(),
        nacre_values: rounds.iter().map(|r| of(&r.nacre[door])).collect(),
        higher_is_better,
    }
}

#[cfg(test)]
mod tests {
    use super::same_connections;

    #[test]
    fn native_sessions_keep_the_connections_and_requests_in_flight() {
        let mut args: Vec<String> =
            ["--workload", "get", "--connections", "50", "--pipeline", "16"].map(str::to_owned).to_vec();
        same_connections(&mut args, 2);
        assert_eq!(args, ["--workload", "get", "--connections", "25", "--pipeline", "32"]);
        let mut one = vec!["--connections".to_owned(), "1".to_owned()];
        same_connections(&mut one, 4);
        assert_eq!(one, ["--connections", "1"], "at least one session; no pipeline flag, none added");
    }
}
