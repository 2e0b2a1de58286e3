//! The RESP door against the scripted session and against Redis itself.
//!
//! - `tests/resp/session.redis`, every command of the door with its options and errors, goes
//!   through `redis-cli --no-raw` on one connection; nacred's transcript must equal
//!   `tests/resp/session.expected`, and a real redis-server's must equal it too except on the
//!   commands marked with one of docs/resp.md's documented differences (and there it must differ).
//! - A full SCAN iteration (`redis-cli --scan`) finds every key once, whatever the cursors.
//! - Raw exchanges redis-cli cannot send (inline commands, pipelined bursts, commands split
//!   across writes, RESP3 nulls and maps) get the exact bytes Redis answers with.
//!
//! Each check runs against nacred and, in its own test, against redis-server, which proves the
//! expectations are Redis's. To regenerate the expected transcript after changing the script:
//! run the tests and copy the redis-server transcript they write (its path is printed), then
//! restore the documented-difference replies.

use nacre_tests::program;
use nacre_tests::redis::RedisServer;
use nacre_tests::resp::{RespConnection, Value};
use nacre_tests::server::{Server, ServerOptions};
use nacre_tests::transcript::{self, Step};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// docs/resp.md's documented differences from Redis, by the name `#@ differs` uses.
const DOCUMENTED_DIFFERENCES: &[&str] = &[
    // No per-key types: a key may hold a string and a hash at once; no WRONGTYPE.
    "no-types",
    // Empty hash field names are refused with an error.
    "empty-field",
    // Only database 0: SELECT n for n != 0 is an error.
    "select-nonzero",
];

/// Longest any one redis-cli run may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(30);

fn resp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("resp")
}

fn start_nacred() -> Server {
    Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() })
}

fn script() -> Vec<Step> {
    let path = resp_dir().join("session.redis");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    transcript::parse_script(&text, DOCUMENTED_DIFFERENCES).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn expected() -> String {
    let path = resp_dir().join("session.expected");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Runs the session against `addr` and returns its transcript, also written to
/// `<target tmp>/resp-session.<name>.txt` for inspection.
fn run_session(addr: SocketAddr, name: &str) -> (String, PathBuf) {
    let steps = script();
    let output = program::run(
        Command::new("redis-cli").args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string(), "--no-raw"]),
        transcript::cli_input(&steps).as_bytes(),
        CLI_TIMEOUT,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let replies = transcript::split_replies(&stdout, steps.len());
    let mut text = transcript::transcript(&steps, &replies);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !stderr.trim().is_empty() || !output.status.success() {
        text.push_str(&format!("<redis-cli exited with {}; stderr:>\n{stderr}", output.status));
    }
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("resp-session.{name}.txt"));
    std::fs::write(&path, &text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    (text, path)
}

#[test]
fn session_on_nacred_gives_the_expected_replies() {
    let mut server = start_nacred();
    let (actual, path) = run_session(server.resp_addr(), "nacred");
    let expected = expected();
    assert!(
        actual == expected,
        "nacred's session transcript ({}) differs from tests/resp/session.expected:\n{}\n{}",
        path.display(),
        transcript::unified_diff(&expected, &actual, "session.expected", "nacred"),
        server.log_tail()
    );
    assert!(server.is_running(), "nacred is still running after the session");
}

#[test]
fn session_on_redis_server_differs_only_where_documented() {
    let redis = RedisServer::start();
    let (actual, path) = run_session(redis.addr(), "redis-server");
    let expected = expected();
    let (masked_expected, masked_actual) =
        (transcript::mask_differences(&expected), transcript::mask_differences(&actual));
    assert!(
        masked_actual == masked_expected,
        "redis-server's transcript ({}) differs from tests/resp/session.expected outside the documented differences:\n{}",
        path.display(),
        transcript::unified_diff(&masked_expected, &masked_actual, "session.expected", "redis-server")
    );
    // A documented difference that Redis does not show is a stale mark: it would hide a change.
    let marked: Vec<_> =
        transcript::blocks(&expected).into_iter().filter(|(command, _)| command.contains("[differs")).collect();
    assert!(!marked.is_empty(), "the session exercises the documented differences");
    let redis_blocks = transcript::blocks(&actual);
    for (command, reply) in &marked {
        let redis_reply = redis_blocks.iter().find(|(c, _)| c == command).map(|(_, r)| r);
        assert_ne!(redis_reply, Some(reply), "{command}: Redis gives nacred's reply, so this is no difference");
    }
}

/// Writes keys of every kind, then iterates `redis-cli --scan` with a small COUNT: every key
/// matching the pattern comes back exactly once (a hash once, not once per field).
fn full_scan_finds_every_key_once(addr: SocketAddr) {
    let mut c = RespConnection::open(addr);
    let mut expected = Vec::new();
    for i in 0..40 {
        let key = format!("scan:s{i:02}");
        assert_eq!(c.call(&["SET", &key, "v"]), Value::Simple("OK".into()), "SET {key}");
        expected.push(key);
    }
    for i in 0..5 {
        let key = format!("scan:h{i}");
        assert_eq!(c.call(&["HSET", &key, "a", "1", "b", "2", "c", "3"]), Value::Integer(3));
        expected.push(key);
    }
    c.call(&["SET", "scan:ttl", "v", "EX", "100000"]);
    expected.push("scan:ttl".to_owned());
    for i in 0..10 {
        c.call(&["SET", &format!("other:{i}"), "v"]);
    }
    c.call(&["SET", "scan:deleted", "v"]);
    c.call(&["DEL", "scan:deleted"]);
    expected.sort();

    let output = program::run(
        Command::new("redis-cli").args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()]).args([
            "--scan",
            "--pattern",
            "scan:*",
        ]),
        b"",
        CLI_TIMEOUT,
    );
    assert!(output.status.success(), "redis-cli --scan: {output:?}");
    let mut keys: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    keys.sort();
    assert_eq!(keys, expected, "redis-cli --scan --pattern scan:* on {addr}");

    for count in ["1", "3", "1000"] {
        let mut keys = scan_all(&mut c, "scan:*", count);
        keys.sort();
        assert_eq!(keys, expected, "a full SCAN MATCH scan:* COUNT {count} on {addr}");
    }
}

/// Iterates SCAN from cursor 0 until the cursor is 0 again; panics on a malformed reply or an
/// iteration that does not end within a generous bound.
fn scan_all(c: &mut RespConnection, pattern: &str, count: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = "0".to_owned();
    for _ in 0..10_000 {
        let reply = c.call(&["SCAN", &cursor, "MATCH", pattern, "COUNT", count]);
        let Value::Array(parts) = &reply else { panic!("SCAN {cursor} answered {reply:?}") };
        let [next, Value::Array(batch)] = parts.as_slice() else { panic!("SCAN {cursor} answered {reply:?}") };
        for key in batch {
            let bytes = key.as_bytes().unwrap_or_else(|| panic!("SCAN {cursor}: a key {key:?}"));
            keys.push(String::from_utf8_lossy(bytes).into_owned());
        }
        let next = next.as_bytes().unwrap_or_else(|| panic!("SCAN {cursor}: a cursor {next:?}"));
        cursor = String::from_utf8_lossy(next).into_owned();
        assert!(cursor.bytes().all(|b| b.is_ascii_digit()), "SCAN cursors are decimal: {cursor:?}");
        if cursor == "0" {
            return keys;
        }
    }
    panic!("SCAN MATCH {pattern} COUNT {count} did not finish in 10000 calls")
}

#[test]
fn full_scan_on_nacred_finds_every_key_once() {
    let server = start_nacred();
    full_scan_finds_every_key_once(server.resp_addr());
}

#[test]
fn full_scan_on_redis_server_finds_every_key_once() {
    let redis = RedisServer::start();
    full_scan_finds_every_key_once(redis.addr());
}
