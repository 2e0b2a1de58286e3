//! `redis-benchmark`, Redis's own client, as a second client for section 1: the same `-t get` or
//! `-t set` run against redis-server and against nacred's RESP door, so the serving figures do
//! not rest on nacre-loadgen alone. Server CPU is read from `/proc` around each run.

use crate::process::cpu_seconds;
use anyhow::{Context as _, Result, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

/// One redis-benchmark run.
#[derive(Debug, Clone, Copy)]
pub struct Test<'a> {
    /// `get` or `set`.
    pub test: &'a str,
    /// Requests (`-n`).
    pub requests: u64,
    /// Connections (`-c`).
    pub clients: u32,
    /// Pipeline depth (`-P`).
    pub pipeline: u32,
    /// Value bytes (`-d`).
    pub data_size: u64,
    /// Keys drawn from (`-r`), as nacre-loadgen names them (`key:` and twelve digits).
    pub keyspace: u64,
}

/// What it measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Requests a second, as redis-benchmark reports.
    pub rate: f64,
    /// Requests per CPU-second of the server.
    pub per_server_cpu_second: f64,
}

/// Runs `test` with `binary` against `addr`, served by process `server_pid`.
///
/// # Errors
///
/// If it fails or its CSV lacks the figure.
pub fn run(binary: &Path, addr: SocketAddr, server_pid: u32, test: &Test<'_>) -> Result<Outcome> {
    let server_before = cpu_seconds(server_pid, false)?;
    let output = Command::new(binary)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "-t", test.test, "--csv"])
        .args(["-n", &test.requests.to_string(), "-c", &test.clients.to_string()])
        .args(["-P", &test.pipeline.to_string(), "-d", &test.data_size.to_string()])
        .args(["-r", &test.keyspace.to_string()])
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let server_cpu = cpu_seconds(server_pid, false)? - server_before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("redis-benchmark against {addr} failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(Outcome {
        rate: parse_rate(&stdout, test.test)?,
        per_server_cpu_second: test.requests as f64 / server_cpu.max(f64::MIN_POSITIVE),
    })
}

/// The requests a second of `test` in redis-benchmark's CSV: `"test","rps",...`, the line
/// after the header.
fn parse_rate(csv: &str, test: &str) -> Result<f64> {
    let line = csv.lines().nth(1).with_context(|| format!("no result line in: {csv}"))?;
    let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
    if !fields[0].eq_ignore_ascii_case(test) {
        bail!("redis-benchmark -t {test} reported {line}");
    }
    fields.get(1).and_then(|r| r.parse().ok()).with_context(|| format!("no rate in: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_comes_from_the_line_after_the_header() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\"\n\"GET\",\"123456.78\",\"0.2\"\n";
        assert_eq!(parse_rate(csv, "get").expect("a rate"), 123_456.78);
        assert!(parse_rate(csv, "set").is_err(), "another test's line");
        assert!(parse_rate("\"test\",\"rps\"\n", "get").is_err(), "no result line");
    }
}
