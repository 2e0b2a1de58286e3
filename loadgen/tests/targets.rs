//! nacre-loadgen against a real `nacred`: YCSB workloads through the native door (scans,
//! inserts, read-modify-writes, each key sent to its owning shard) and through the RESP door,
//! and a clear error when nothing listens. It checks what the run did, from its JSON summary,
//! never how fast.

use nacre_tests::server::{Server, ServerOptions, free_ports, test_dir};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

/// Longest one loadgen run may take.
const DEADLINE: Duration = Duration::from_secs(120);

/// Runs nacre-loadgen with `args` and returns its output and its JSON summary.
fn loadgen(args: &[&str]) -> (Output, Option<Value>) {
    let dir = test_dir("loadgen-targets-");
    let summary = dir.path().join("summary.json");
    let output = nacre_tests::program::run(
        Command::new(env!("CARGO_BIN_EXE_nacre-loadgen"))
            .args(args)
            .args(["--progress-interval", "0s", "--seed", "7", "--json"])
            .arg(&summary),
        b"",
        DEADLINE,
    );
    let json = std::fs::read_to_string(&summary).ok().map(|text| serde_json::from_str(&text).expect("JSON"));
    (output, json)
}

fn count(summary: &Value, phase: &str, op: &str) -> u64 {
    summary[phase]["operations"][op]["count"].as_u64().unwrap_or(0)
}

fn succeeded(output: &Output, summary: Option<Value>) -> Value {
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "nacre-loadgen failed: {}\n{text}", output.status);
    println!("{text}");
    let summary = summary.expect("a summary was written");
    assert_eq!(summary["run"]["errors"], 0, "{summary}");
    summary
}

#[test]
fn ycsb_workloads_run_through_the_native_door() {
    let server = Server::start();
    let addr = server.addr().to_string();
    let common = ["--addr", &addr, "--keys", "2000", "--connections", "2", "--pipeline", "4", "--duration", "1s"];

    // E: load 2,000 records, 100 to a partition, then scan ranges and insert.
    let (output, summary) = loadgen(&[&common[..], &["--workload", "e", "--phase", "both", "--warmup", "0s"]].concat());
    let summary = succeeded(&output, summary);
    assert_eq!(count(&summary, "load", "insert"), 2000);
    assert!(count(&summary, "run", "scan") > 0 && count(&summary, "run", "insert") > 0, "{summary}");
    // A scan reads from its record to its partition's end, at most its length: some rows each.
    let scans = count(&summary, "run", "scan");
    let rows = summary["run"]["scanned_rows"].as_u64().expect("scanned rows");
    assert!(rows >= scans && rows <= scans * 100, "{rows} rows for {scans} scans");

    // F on the records just loaded (same layout): every read finds its record.
    let (output, summary) = loadgen(&[&common[..], &["--workload", "f", "--rows-per-partition", "100"]].concat());
    let summary = succeeded(&output, summary);
    assert!(count(&summary, "run", "rmw") > 0 && count(&summary, "run", "read") > 0, "{summary}");
    assert_eq!(summary["run"]["misses"], 0, "{summary}");
}

#[test]
fn the_same_workload_runs_through_the_resp_door() {
    let server = Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() });
    let addr = server.resp_addr().to_string();
    let (output, summary) = loadgen(&[
        "--target",
        "resp",
        "--addr",
        &addr,
        "--workload",
        "f",
        "--phase",
        "both",
        "--keys",
        "2000",
        "--connections",
        "4",
        "--pipeline",
        "8",
        "--duration",
        "1s",
        "--warmup",
        "0s",
    ]);
    let summary = succeeded(&output, summary);
    assert_eq!(count(&summary, "load", "insert"), 2000);
    assert!(count(&summary, "run", "rmw") > 0, "{summary}");
    assert_eq!(summary["run"]["misses"], 0, "the load phase wrote every record: {summary}");
    // The records are there, under the names redis-benchmark -r uses.
    let mut redis = nacre_tests::resp::RespConnection::open(server.resp_addr());
    let value = redis.call(&["GET", "key:000000001999"]);
    assert!(value.as_bytes().is_some_and(|v| v.len() == 100), "{value:?}");
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let addr = free_ports(0).to_string();
    for target in ["native", "resp"] {
        let (output, summary) = loadgen(&["--target", target, "--addr", &addr, "--duration", "1s"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{target}: {stderr}");
        assert!(stderr.contains(&format!("connecting to {addr}")) && stderr.contains("refused"), "{target}: {stderr}");
        assert!(summary.is_none());
    }
}
