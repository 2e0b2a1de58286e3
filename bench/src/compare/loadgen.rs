//! One `nacre-loadgen` run against one server, measured from outside: its JSON summary, the
//! server's CPU seconds over the run (from `/proc`), the client's own CPU seconds, and, for
//! nacred, its allocations.

use crate::compare::servers::Nacred;
use crate::process::cpu_seconds;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The server side of a run.
pub enum Served<'a> {
    /// A Redis-speaking process that is not nacred.
    Redis {
        /// Its process id.
        pid: u32,
    },
    /// nacred: its allocations are read too.
    Nacred(&'a Nacred),
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The run phase's summary (`nacre-loadgen --json`, its `run` object).
    pub run: Value,
    /// Operations the run phase measured.
    pub operations: f64,
    /// Operations per second.
    pub rate: f64,
    /// The server's CPU seconds over the whole invocation.
    pub server_cpu_seconds: f64,
    /// nacre-loadgen's CPU seconds over the whole invocation.
    pub client_cpu_seconds: f64,
    /// nacred's allocations over the invocation; `None` for other servers.
    pub allocations: Option<u64>,
}

impl Measured {
    /// Operations per CPU-second of the server.
    pub fn per_server_cpu_second(&self) -> f64 {
        self.operations / self.server_cpu_seconds.max(f64::MIN_POSITIVE)
    }

    /// Client CPU microseconds per operation.
    pub fn client_cpu_us(&self) -> f64 {
        self.client_cpu_seconds * 1e6 / self.operations.max(1.0)
    }

    /// A latency of all operations in microseconds (`"p99"`, `"p99.9"`, ...).
    pub fn latency_us(&self, label: &str) -> f64 {
        self.run["operations"]["all"]["latency_us"][label].as_f64().unwrap_or(f64::NAN)
    }
}

/// Runs `loadgen` with `args` (plus its JSON output into `work`) against `served`, counting
/// only the run phase's operations; a load phase in the same invocation adds to the CPU figures,
/// so measured runs use `--phase run`.
///
/// # Errors
///
/// If it fails or reports errors.
pub fn run(loadgen: &Path, args: &[String], served: &Served<'_>, work: &Path) -> Result<Measured> {
    let summary_path = work.join("loadgen-summary.json");
    let server_pid = match served {
        Served::Redis { pid } => *pid,
        Served::Nacred(nacred) => nacred.guard.pid(),
    };
    let allocations_before = match served {
        Served::Nacred(nacred) => Some(nacred.allocations()?),
        Served::Redis { .. } => None,
    };
    let server_before = cpu_seconds(server_pid, false)?;
    let client_before = cpu_seconds(std::process::id(), true)?;
    let output = invoke(loadgen, args, &summary_path);
    let server_cpu_seconds = cpu_seconds(server_pid, false)? - server_before;
    // nacre-loadgen has been waited for, so its CPU is in this process's children's times.
    let client_cpu_seconds = cpu_seconds(std::process::id(), true)? - client_before;
    let allocations = match (served, allocations_before) {
        (Served::Nacred(nacred), Some(before)) => Some(nacred.allocations()?.saturating_sub(before)),
        _ => None,
    };
    let summary = output?;
    let run = summary.get("run").cloned().unwrap_or(Value::Null);
    if run["errors"].as_u64().unwrap_or(0) > 0 {
        bail!("nacre-loadgen {} reported errors: {}", args.join(" "), run["error_samples"]);
    }
    let operations = run["operations"]["all"]["count"].as_f64().unwrap_or(0.0);
    let rate = run["operations"]["all"]["ops_per_second"].as_f64().unwrap_or(0.0);
    Ok(Measured { run, operations, rate, server_cpu_seconds, client_cpu_seconds, allocations })
}

/// Runs `loadgen` with `args` for what it writes (a load phase, a Kafka topic, a bulk file)
/// rather than for what it measures, and returns its whole JSON summary.
///
/// # Errors
///
/// If it fails or any phase reports errors.
pub fn produce(loadgen: &Path, args: &[&str], work: &Path) -> Result<Value> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let summary = invoke(loadgen, &args, &work.join("loadgen-produce.json"))?;
    for phase in ["load", "run"] {
        if summary[phase]["errors"].as_u64().unwrap_or(0) > 0 {
            bail!("nacre-loadgen {} reported errors: {}", args.join(" "), summary[phase]["error_samples"]);
        }
    }
    Ok(summary)
}

/// Runs `loadgen` with `args`, its JSON summary written to `summary_path`, and returns the
/// summary.
///
/// # Errors
///
/// If it cannot run, fails, or leaves no summary.
fn invoke(loadgen: &Path, args: &[String], summary_path: &Path) -> Result<Value> {
    let _ = std::fs::remove_file(summary_path);
    let output = Command::new(loadgen)
        .args(args)
        .args(["--progress-interval", "0s", "--json"])
        .arg(summary_path)
        .output()
        .with_context(|| format!("running {}", loadgen.display()))?;
    if !output.status.success() {
        bail!(
            "nacre-loadgen {} failed: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(summary_path)?)?)
}
