//! Section 8: the loopback ceiling. iperf3's one-stream TCP throughput over loopback against
//! nacred's native door serving 64 KiB GETs (bytes of values per second), with redis-server's
//! figure for the same GETs beside it.

use crate::compare::context::Context;
use crate::compare::peers::IPERF3;
use crate::compare::report::{Row, Section, median};
use crate::compare::targets::{Servers, Target};
use crate::process::{Guard, free_port};
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Bytes per value.
const VALUE_BYTES: u64 = 64 * 1024;
/// Records of that size.
const RECORDS: u64 = 1_000;

/// Runs the section, or says why it cannot.
///
/// # Errors
///
/// If a server or a run fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let mut section = Section::new(
        8,
        "loopback",
        "The loopback ceiling: iperf3",
        format!(
            "iperf3, one TCP stream over loopback for {} s, against nacre-loadgen reading {} KiB values ({} \
             records, 4 sessions of 8 requests) from nacred's native door, counted as value bytes a second; \
             redis-server's figure for the same reads is a note.",
            ctx.seconds(),
            VALUE_BYTES / 1024,
            RECORDS
        ),
    );
    let iperf3 = match IPERF3.find() {
        Ok(path) => path,
        Err(why) => return Ok(section.skip(why)),
    };
    let servers = Servers::start(ctx, RECORDS, VALUE_BYTES)?;
    let args = ["--workload", "get", "--connections", "4", "--pipeline", "8", "--value-size", &VALUE_BYTES.to_string()];
    let gbit = |ops_per_second: f64| ops_per_second * VALUE_BYTES as f64 * 8.0 / 1e9;
    let (mut peer_values, mut nacre_values, mut redis_values) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ctx.rounds {
        peer_values.push(iperf3_gbit(&iperf3, ctx.seconds())?);
        nacre_values.push(gbit(servers.measure(ctx, Target::NacreNative, &args)?.rate));
        redis_values.push(gbit(servers.measure(ctx, Target::Redis, &args)?.rate));
    }
    section.rows.push(Row {
        measure: format!("{} KiB GETs, value bytes", VALUE_BYTES / 1024),
        unit: "Gbit/s".to_owned(),
        peer: "iperf3".to_owned(),
        peer_values,
        nacre: Target::NacreNative.label().to_owned(),
        nacre_values,
        higher_is_better: true,
    });
    let redis_ratios: Vec<f64> = redis_values.iter().zip(&section.rows[0].peer_values).map(|(r, p)| r / p).collect();
    section.notes.push(format!(
        "redis-server, the same GETs: {:.2} Gbit/s, {:.2}x iperf3",
        median(&redis_values),
        median(&redis_ratios)
    ));
    Ok(section)
}

/// iperf3's one-stream loopback throughput over `seconds`, Gbit/s received.
fn iperf3_gbit(iperf3: &Path, seconds: u64) -> Result<f64> {
    let addr = free_port()?;
    let port = addr.port().to_string();
    let server = Command::new(iperf3)
        .args(["--server", "--one-off", "--bind", "127.0.0.1", "--port", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("running iperf3 --server")?;
    let _server = Guard { child: server, name: "iperf3 --server" };
    // The server takes a moment to listen; the client retries until it can connect.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = Command::new(iperf3)
            .args(["--client", "127.0.0.1", "--port", &port, "--time", &seconds.to_string(), "--json"])
            .output()
            .context("running iperf3 --client")?;
        // iperf3 --json may exit 0 with an "error" (the server not listening yet).
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        if output.status.success() && report.get("error").is_none() {
            let bits = report["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .with_context(|| format!("no end.sum_received.bits_per_second in iperf3's report: {report}"))?;
            return Ok(bits / 1e9);
        }
        if Instant::now() >= deadline {
            bail!("iperf3 --client failed: {}", String::from_utf8_lossy(&output.stdout));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
