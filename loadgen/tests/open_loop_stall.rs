//! The open loop corrects coordinated omission: against a real `redis-server` that is stopped
//! (SIGSTOP) for a second in the middle of the measured window, the requests that fell due
//! during the stall count their latency from when they were due, so p99.9 shows the stall.
//! A closed-loop client would have sent nothing while it waited and reported a p99.9 of
//! microseconds.
//!
//! Nothing here depends on timing to pass: the stall lasts at least a second however slow the
//! machine is, and a quarter of the window's requests fall due during it, so p99.9 is at least
//! about 0.99 s whatever else happens.

use nacre_tests::redis::RedisServer;
use nacre_tests::server::test_dir;
use nix::sys::signal::{Signal, kill};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Requests per second, over the run.
const RATE: u64 = 2_000;
/// The measured window.
const MEASURE: Duration = Duration::from_secs(4);
/// How long the server is stopped.
const STALL: Duration = Duration::from_secs(1);
/// Longest the whole run may take.
const DEADLINE: Duration = Duration::from_secs(120);

#[test]
fn a_one_second_stall_shows_in_p99_9() {
    let redis = RedisServer::start();
    let dir = test_dir("loadgen-stall-");
    let summary = dir.path().join("summary.json");
    let mut loadgen = Command::new(env!("CARGO_BIN_EXE_nacre-loadgen"))
        .args(["--target", "resp", "--addr", &redis.addr().to_string(), "--workload", "get", "--keys", "1000"])
        .args(["--phase", "both", "--connections", "4", "--pipeline", "64", "--rate", &RATE.to_string()])
        .args(["--warmup", "500ms", "--duration", &format!("{}s", MEASURE.as_secs()), "--progress-interval", "0s"])
        .args(["--seed", "1", "--json"])
        .arg(&summary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning nacre-loadgen");
    let stderr = BufReader::new(loadgen.stderr.take().expect("piped"));
    let mut said = Vec::new();
    for line in stderr.lines() {
        let line = line.expect("reading loadgen's stderr");
        said.push(line.clone());
        if line == "run: warm-up done, measuring" {
            break;
        }
    }
    assert!(said.last().is_some_and(|l| l.ends_with("measuring")), "loadgen never started measuring: {said:?}");
    // A second into the window, stop the server for STALL.
    std::thread::sleep(Duration::from_secs(1));
    kill(redis.pid(), Signal::SIGSTOP).expect("stopping redis-server");
    std::thread::sleep(STALL);
    kill(redis.pid(), Signal::SIGCONT).expect("continuing redis-server");

    let started = Instant::now();
    let status = loop {
        if let Some(status) = loadgen.try_wait().expect("waiting for loadgen") {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "nacre-loadgen did not finish within {DEADLINE:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut loadgen.stdout.take().expect("piped"), &mut stdout).expect("reading stdout");
    assert!(status.success(), "nacre-loadgen failed: {status}\n{stdout}");
    println!("{stdout}");

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("the summary file")).expect("JSON");
    let reads = &summary["run"]["operations"]["read"];
    assert_eq!(summary["run"]["errors"], 0, "{summary}");
    // Every due request of the window was sent and answered: the schedule is fixed.
    let expected = (RATE * MEASURE.as_secs()) as f64;
    let count = reads["count"].as_f64().expect("a count");
    assert!((count - expected).abs() <= expected * 0.01, "{count} reads, {expected} due");
    let p999 = reads["latency_us"]["p99.9"].as_f64().expect("p99.9");
    assert!(p999 >= 900_000.0, "p99.9 {p999} us does not show the 1 s stall: {summary}");
    // The load phase wrote every key, so every read found one.
    assert_eq!(summary["run"]["misses"], 0);
    assert_eq!(summary["load"]["operations"]["insert"]["count"], 1000);
}
