//! `nacre-loadgen`'s command line: every knob with its default and its limit. Owns parsing and
//! validation only.

use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Most connections one run opens.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most requests in flight per connection. The server reads at most
/// `max_in_flight_per_connection` (default 128) at a time; more wait in its socket buffer.
pub const MAX_PIPELINE: usize = 1024;
/// Largest value written, bytes (the server's default `max_value_bytes`).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// A closed-loop, pipelined GET/PUT driver for `nacred`.
#[derive(Parser, Debug, Clone)]
#[command(name = "nacre-loadgen", version, about)]
pub struct Args {
    /// The server's shared port (its topology gives the shard ports).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub addr: String,
    /// TCP connections, dealt round-robin over the shard ports; each sends only keys its shard
    /// owns, so nothing is forwarded.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub connections: u64,
    /// Requests in flight per connection (closed loop: each slot sends its next request when
    /// its reply arrives).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_PIPELINE as u64))]
    pub pipeline: u64,
    /// Distinct keys, chosen uniformly.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=MAX_VALUE_BYTES as u64))]
    pub value_size: u64,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to run before measuring.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// The operation mix: get (read ratio 1), put (0) or mixed (--read-ratio, default 0.5).
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Fraction of operations that are gets, 0 to 1; overrides --workload.
    #[arg(long, value_parser = parse_ratio)]
    pub read_ratio: Option<f64>,
    /// The table; created with default settings if missing.
    #[arg(long, default_value = "loadgen")]
    pub table: String,
    /// Write every key once before the run, so gets hit.
    #[arg(long)]
    pub preload: bool,
    /// When puts are acknowledged; default: the server's (sync).
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Runtime worker threads; 1 runs everything on the calling thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// Seed for key and operation choices; default: random (printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Open loop: requests per second over the whole run, sent on a fixed schedule spread over
    /// the slots, each latency counted from when its request was due (so a stalled server's
    /// queueing shows, with no coordinated omission). Default: closed loop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Longest a request waits for its reply before it counts as an error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// Which operations a run sends.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Only gets.
    Get,
    /// Only puts.
    Put,
    /// Gets and puts by --read-ratio.
    Mixed,
}

/// When puts are acknowledged.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityArg {
    /// After the log is durable.
    Sync,
    /// After the write is applied in memory.
    Async,
}

impl Args {
    /// The fraction of operations that are gets.
    pub fn effective_read_ratio(&self) -> f64 {
        match (self.read_ratio, self.workload) {
            (Some(r), _) => r,
            (None, Workload::Get) => 1.0,
            (None, Workload::Put) => 0.0,
            (None, Workload::Mixed) => 0.5,
        }
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&r) { Ok(r) } else { Err(format!("{s} is not between 0 and 1")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("nacre-loadgen").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn workload_sets_the_read_ratio_unless_given() {
        assert_eq!(parse(&["--workload", "get"]).expect("valid").effective_read_ratio(), 1.0);
        assert_eq!(parse(&["--workload", "put"]).expect("valid").effective_read_ratio(), 0.0);
        assert_eq!(parse(&[]).expect("valid").effective_read_ratio(), 0.5);
        assert_eq!(parse(&["--workload", "get", "--read-ratio", "0.9"]).expect("valid").effective_read_ratio(), 0.9);
    }

    #[test]
    fn limits_are_enforced() {
        for bad in [
            &["--read-ratio", "1.5"][..],
            &["--connections", "0"],
            &["--pipeline", "100000"],
            &["--keys", "0"],
            &["--value-size", "2000000"],
            &["--duration", "ten"],
            &["--rate", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
