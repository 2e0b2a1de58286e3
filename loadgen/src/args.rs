//! `nacre-loadgen`'s command line: every knob with its default and its limit. Owns parsing and
//! validation only.

use crate::distribution::{DEFAULT_THETA, Kind};
use crate::workload::Mix;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Most sessions one run opens.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most requests in flight per session. The server reads at most
/// `max_in_flight_per_connection` (default 128) at a time; more wait in its socket buffer.
pub const MAX_PIPELINE: usize = 1024;
/// Largest value written, bytes (the server's default `max_value_bytes`).
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Longest scan, rows (the server's default page size caps a page anyway).
pub const MAX_SCAN_LENGTH: u32 = 10_000;
/// Largest bulk file, MiB of key and value bytes (1 TiB).
pub const MAX_BULK_MIB: u64 = 1 << 20;
/// Rows per partition key workload E uses unless told otherwise: YCSB's longest scan.
pub const SCAN_ROWS_PER_PARTITION: u64 = 100;

/// A workload driver for `nacred`'s native door, its RESP door or any Redis: YCSB's core
/// workloads or plain gets and puts, closed loop or open loop.
#[derive(Parser, Debug, Clone)]
#[command(name = "nacre-loadgen", version, about)]
pub struct Args {
    /// The server: nacred's shared port (native; its topology gives the shard ports), a
    /// Redis-speaking address (resp), or Kafka's bootstrap servers (kafka).
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub addr: String,
    /// Where the workload goes: nacred's own protocol (shard-aware), RESP (nacred's RESP door,
    /// redis-server), a Kafka topic (produced, for a nacred source to ingest), or a bulk input
    /// file (written, for `nacre bulk build`).
    #[arg(long, value_enum, default_value_t = Target::Native)]
    pub target: Target,
    /// The topic the kafka target produces to; it must exist.
    #[arg(long)]
    pub topic: Option<String>,
    /// How the kafka target assigns keys to the topic's partitions: Nacre's (a topic with as
    /// many partitions as the store, each Kafka partition one of the store's) or Kafka's
    /// default (murmur2 of the key, as the Java producer does).
    #[arg(long, value_enum, default_value_t = PartitionerArg::Nacre)]
    pub partitioner: PartitionerArg,
    /// The file the bulk target writes (it must not exist).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The bulk target's file format.
    #[arg(long, value_enum, default_value_t = BulkFormat::Parquet)]
    pub format: BulkFormat,
    /// The bulk target's size in MiB of key and value bytes; sets --keys.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_BULK_MIB))]
    pub size_mib: Option<u64>,
    /// Client sessions. A native session opens one connection per shard port and sends each
    /// key to its owner; a RESP session is one connection.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECTIONS as u64))]
    pub connections: u64,
    /// Requests in flight per session (closed loop: each sends its next when a reply arrives;
    /// open loop: the most that may wait for replies).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_PIPELINE as u64))]
    pub pipeline: u64,
    /// Records loaded (the load phase writes records 0..N; reads and updates choose among
    /// them; inserts number on from N).
    #[arg(long, visible_alias = "records", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Bytes per value written.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=MAX_VALUE_BYTES as u64))]
    pub value_size: u64,
    /// How long to measure, after the warm-up.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// How long to run before measuring (sent, not counted).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// The operation mix: YCSB's core workloads a to f, or get, put, mixed (--read-ratio).
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Fraction of operations that are gets, 0 to 1, for get, put and mixed (default 0.5 for
    /// mixed).
    #[arg(long, value_parser = parse_ratio)]
    pub read_ratio: Option<f64>,
    /// How records are chosen; default: the workload's (YCSB's for a-f, uniform otherwise).
    #[arg(long, value_enum)]
    pub distribution: Option<DistributionArg>,
    /// The zipfian skew, between 0 and 1 exclusive.
    #[arg(long, default_value_t = DEFAULT_THETA, value_parser = parse_theta)]
    pub zipfian_theta: f64,
    /// Longest scan, records (each scan reads 1 to this many, uniformly).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SCAN_LENGTH)))]
    pub max_scan_length: u32,
    /// Records per partition key (a scan reads its start record's partition from that record
    /// on); default 100 for workload e, 1 otherwise. Native target only.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rows_per_partition: Option<u64>,
    /// The table (native target); created with default settings if missing. A RESP target
    /// writes where the server puts plain keys.
    #[arg(long, default_value = "loadgen")]
    pub table: String,
    /// Which phases run: load (write every record once, as fast as the sessions go), run (the
    /// workload for --warmup and --duration) or both.
    #[arg(long, value_enum, default_value_t = Phase::Run)]
    pub phase: Phase,
    /// The same as --phase both.
    #[arg(long, conflicts_with = "phase")]
    pub preload: bool,
    /// When puts are acknowledged (native target); default: the server's (sync).
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
    /// Runtime worker threads; 1 runs everything on the calling thread.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub threads: u64,
    /// Seed for key, operation and value choices; default: random (printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Open loop: requests per second over the whole run, sent on a fixed schedule spread over
    /// the senders, each latency counted from when its request was due (so a stalled server's
    /// queueing shows, with no coordinated omission). Default: closed loop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// Longest a request waits for its reply before it counts as an error.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Write the run's summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write each operation's latency distribution as HdrHistogram `.hgrm` text into this
    /// directory (created if missing), as `<phase>-<operation>.hgrm`, in microseconds.
    #[arg(long)]
    pub hgrm_dir: Option<PathBuf>,
    /// Draw each phase's latency-percentile plot (one line per operation) into this directory
    /// (created if missing), as `<phase>-latency.svg` and `.png`.
    #[arg(long)]
    pub plot_dir: Option<PathBuf>,
    /// Print a progress line to standard error this often; 0 for none.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub progress_interval: Duration,
}

/// The protocol a run speaks.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// nacred's flatbuffers protocol, shard-aware.
    Native,
    /// RESP2: nacred's RESP door or any Redis.
    Resp,
    /// A Kafka topic: every write is a message (key: the record's key, payload: its value).
    Kafka,
    /// A bulk input file of the load phase's records, for `nacre bulk build`.
    Bulk,
}

/// How the kafka target partitions.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionerArg {
    /// Nacre's partitioner: Kafka partition = the store's partition of the key.
    Nacre,
    /// Kafka's default (murmur2 of the key).
    Kafka,
}

/// The bulk target's file format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFormat {
    /// Apache Parquet: columns `key`, `sort` (with --rows-per-partition above 1) and `value`.
    Parquet,
    /// JSON Lines: one object a record with the same fields.
    Jsonl,
}

/// Which operations a run sends.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// YCSB A: 50% reads, 50% updates, zipfian.
    A,
    /// YCSB B: 95% reads, 5% updates, zipfian.
    B,
    /// YCSB C: reads only, zipfian.
    C,
    /// YCSB D: 95% reads, 5% inserts, latest.
    D,
    /// YCSB E: 95% short scans, 5% inserts, zipfian.
    E,
    /// YCSB F: 50% reads, 50% read-modify-writes, zipfian.
    F,
    /// Only gets.
    Get,
    /// Only puts.
    Put,
    /// Gets and puts by --read-ratio (default half each).
    Mixed,
}

/// A request distribution.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributionArg {
    /// Every record alike.
    Uniform,
    /// YCSB's scrambled zipfian (--zipfian-theta).
    Zipfian,
    /// The newest records most often.
    Latest,
}

/// Which phases run.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Write records 0..--keys once, then stop.
    Load,
    /// Run the workload only.
    Run,
    /// Load, then run.
    Both,
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
    /// The operation mix and distribution the arguments ask for.
    pub fn mix(&self) -> Mix {
        let letter = match self.workload {
            Workload::A => Some('a'),
            Workload::B => Some('b'),
            Workload::C => Some('c'),
            Workload::D => Some('d'),
            Workload::E => Some('e'),
            Workload::F => Some('f'),
            Workload::Get | Workload::Put | Workload::Mixed => None,
        };
        let mut mix = match letter {
            Some(letter) => Mix::ycsb(letter).expect("a to f are YCSB's core workloads"),
            None => {
                let read_ratio = match (self.read_ratio, self.workload) {
                    (Some(r), _) => r,
                    (None, Workload::Get) => 1.0,
                    (None, Workload::Put) => 0.0,
                    (None, _) => 0.5,
                };
                Mix::reads_and_updates(read_ratio, Kind::Uniform)
            }
        };
        if let Some(d) = self.distribution {
            mix.distribution = match d {
                DistributionArg::Uniform => Kind::Uniform,
                DistributionArg::Zipfian => Kind::Zipfian,
                DistributionArg::Latest => Kind::Latest,
            };
        }
        mix
    }

    /// Records per partition key.
    pub fn effective_rows_per_partition(&self) -> u64 {
        self.rows_per_partition.unwrap_or(if self.workload == Workload::E { SCAN_ROWS_PER_PARTITION } else { 1 })
    }

    /// Whether the load phase runs.
    pub fn loads(&self) -> bool {
        self.preload || matches!(self.phase, Phase::Load | Phase::Both)
    }

    /// Whether the run phase runs.
    pub fn runs(&self) -> bool {
        self.preload || matches!(self.phase, Phase::Run | Phase::Both)
    }

    /// Checks the combinations clap cannot.
    ///
    /// # Errors
    ///
    /// What is wrong, in words.
    pub fn validate(&self) -> Result<(), String> {
        let ycsb = !matches!(self.workload, Workload::Get | Workload::Put | Workload::Mixed);
        if ycsb && self.read_ratio.is_some() {
            return Err("--read-ratio applies to workloads get, put and mixed; a-f have YCSB's fixed mixes".to_owned());
        }
        if matches!(self.target, Target::Kafka | Target::Bulk) {
            self.validate_writer()?;
        }
        if self.target == Target::Resp {
            if self.mix().share(crate::workload::Op::Scan) > 0.0 {
                return Err("workload e scans ranges of records; a RESP target has no ordered range read of plain                             keys (use --target native)"
                    .to_owned());
            }
            if self.effective_rows_per_partition() != 1 {
                return Err("--rows-per-partition applies to the native target; a RESP key is one row".to_owned());
            }
            if self.durability.is_some() {
                return Err("--durability applies to the native target; a RESP server acknowledges as it is                             configured ([resp] durability in nacred)"
                    .to_owned());
            }
        }
        Ok(())
    }
}

impl Args {
    /// The kafka and bulk targets only write.
    fn validate_writer(&self) -> Result<(), String> {
        let mix = self.mix();
        let reads = [crate::workload::Op::Read, crate::workload::Op::Scan, crate::workload::Op::ReadModifyWrite];
        if self.runs() && reads.iter().any(|op| mix.share(*op) > 0.0) {
            return Err(format!(
                "the {} target only writes: use --phase load, or --workload put (or d without reads)",
                if self.target == Target::Kafka { "kafka" } else { "bulk" }
            ));
        }
        match self.target {
            Target::Kafka if self.topic.is_none() => Err("the kafka target needs --topic".to_owned()),
            Target::Bulk if self.out.is_none() => Err("the bulk target needs --out FILE".to_owned()),
            Target::Bulk if self.runs() => {
                Err("the bulk target writes the load phase's records: use --phase load".to_owned())
            }
            _ if self.durability.is_some() => Err("--durability applies to the native target".to_owned()),
            _ => Ok(()),
        }
    }

    /// Records the run writes or reads: --keys, or as many as fill --size-mib.
    pub fn records(&self) -> u64 {
        match self.size_mib {
            Some(mib) => ((mib << 20) / (crate::keys::REDIS_KEY_LEN as u64 + self.value_size)).max(1),
            None => self.keys,
        }
    }
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    let r: f64 = s.parse().map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if (0.0..=1.0).contains(&r) { Ok(r) } else { Err(format!("{s} is not between 0 and 1")) }
}

fn parse_theta(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|e| format!("{s:?} is not a number: {e}"))?;
    if t > 0.0 && t < 1.0 { Ok(t) } else { Err(format!("{s} is not strictly between 0 and 1")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::Op;
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
        let reads = |args: &[&str]| parse(args).expect("valid").mix().share(Op::Read);
        assert_eq!(reads(&["--workload", "get"]), 1.0);
        assert_eq!(reads(&["--workload", "put"]), 0.0);
        assert_eq!(reads(&[]), 0.5);
        assert_eq!(reads(&["--workload", "get", "--read-ratio", "0.9"]), 0.9);
        assert_eq!(reads(&["--workload", "b"]), 0.95);
    }

    #[test]
    fn ycsb_workloads_bring_their_distribution_unless_given() {
        assert_eq!(parse(&["--workload", "d"]).expect("valid").mix().distribution, Kind::Latest);
        assert_eq!(parse(&["--workload", "a"]).expect("valid").mix().distribution, Kind::Zipfian);
        assert_eq!(parse(&["--workload", "get"]).expect("valid").mix().distribution, Kind::Uniform);
        let uniform_a = parse(&["--workload", "a", "--distribution", "uniform"]).expect("valid");
        assert_eq!(uniform_a.mix().distribution, Kind::Uniform);
        assert_eq!(parse(&["--workload", "e"]).expect("valid").effective_rows_per_partition(), 100);
    }

    #[test]
    fn phases() {
        let both = parse(&["--preload"]).expect("valid");
        assert!(both.loads() && both.runs());
        let load = parse(&["--phase", "load"]).expect("valid");
        assert!(load.loads() && !load.runs());
        let run = parse(&[]).expect("valid");
        assert!(!run.loads() && run.runs());
        assert!(parse(&["--preload", "--phase", "load"]).is_err());
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
            &["--zipfian-theta", "1"],
            &["--max-scan-length", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn combinations_that_mean_nothing_are_refused() {
        for bad in [
            &["--workload", "a", "--read-ratio", "0.3"][..],
            &["--target", "resp", "--workload", "e"],
            &["--target", "resp", "--rows-per-partition", "10"],
            &["--target", "resp", "--durability", "sync"],
            &["--target", "kafka", "--phase", "load"],
            &["--target", "kafka", "--topic", "t", "--workload", "a"],
            &["--target", "bulk", "--phase", "load"],
            &["--target", "bulk", "--out", "f", "--workload", "put"],
        ] {
            let args = parse(bad).expect("clap accepts it");
            assert!(args.validate().is_err(), "{bad:?} accepted");
        }
        for good in [
            &["--target", "resp", "--workload", "f"][..],
            &["--workload", "e"],
            &["--target", "kafka", "--topic", "t", "--workload", "put", "--rate", "1000"],
            &["--target", "bulk", "--out", "f", "--phase", "load", "--size-mib", "1"],
        ] {
            parse(good).expect("clap accepts it").validate().expect("valid");
        }
    }
}
