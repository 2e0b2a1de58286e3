//! `fio`, the disk's peer: one job with direct I/O through io_uring (the interface nacred's
//! glommio executors use) on a file in the comparison's scratch space, read from its JSON
//! output.

use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::Command;

/// One fio job.
#[derive(Debug, Clone)]
pub struct Job<'a> {
    /// `write`, `read`, `randread`, ...
    pub rw: &'a str,
    /// Bytes per I/O.
    pub block_bytes: u64,
    /// I/Os in flight.
    pub queue_depth: u32,
    /// The file's size, bytes (written first for reads).
    pub size_bytes: u64,
    /// For reads: how long to run, seconds (0: once over the file).
    pub seconds: u64,
}

/// What a job did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Bytes a second.
    pub bandwidth: f64,
    /// I/Os a second.
    pub iops: f64,
}

/// Runs `job` on `file` (fio lays it out first if reading) and removes the file after.
///
/// # Errors
///
/// If fio cannot run or its report lacks the figures.
pub fn run(fio: &Path, file: &Path, job: &Job<'_>) -> Result<Outcome> {
    let mut command = Command::new(fio);
    command
        .arg("--name=nacre-bench")
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--rw={}", job.rw))
        .arg(format!("--bs={}", job.block_bytes))
        .arg(format!("--iodepth={}", job.queue_depth))
        .arg(format!("--size={}", job.size_bytes))
        .args(["--direct=1", "--ioengine=io_uring", "--output-format=json"]);
    if job.rw.contains("write") {
        // Durable at the end, as a segment is.
        command.arg("--end_fsync=1");
    }
    if job.seconds > 0 {
        command.args(["--time_based", &format!("--runtime={}", job.seconds)]);
    }
    let output = command.output().with_context(|| format!("running {}", fio.display()));
    let _ = std::fs::remove_file(file);
    let output = output?;
    if !output.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("fio's JSON report")?;
    let side = if job.rw.contains("write") { "write" } else { "read" };
    let figures = &report["jobs"][0][side];
    Ok(Outcome {
        bandwidth: figures["bw_bytes"].as_f64().context("fio's bandwidth")?,
        iops: figures["iops"].as_f64().context("fio's iops")?,
    })
}
