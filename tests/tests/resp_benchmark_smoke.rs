//! `redis-benchmark -t set,get,mset,incr,hset -P 16` completes against the RESP door with no
//! error. A smoke test, not a benchmark: it asserts behaviour, never speed.
//!
//! redis-benchmark (7.0) exits 1 at the first error reply ("Error from server: ..."), so exit
//! 0 means every reply was a success. What is left to check is that the commands did what they
//! say: without `-r` every request names the same keys (`key:__rand_int__`,
//! `counter:__rand_int__`, field `element:__rand_int__` of `myhash`), so the counter must equal
//! the number of INCRs exactly (sent by 8 connections at once) and the others must hold
//! `-d`-byte values. The same run against a real redis-server proves those expectations.

use nacre_tests::program;
use nacre_tests::redis::RedisServer;
use nacre_tests::resp::{RespConnection, Value};
use nacre_tests::server::{Server, ServerOptions};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

/// Requests per test.
const REQUESTS: usize = 20_000;

/// Value size, bytes (`-d`).
const VALUE_BYTES: usize = 3;

/// The only line redis-benchmark may print on stderr: it asks for `CONFIG GET save` and
/// `appendonly` before starting, which the door answers with an unknown-command error.
const CONFIG_WARNING: &str = "WARNING: Could not fetch server CONFIG";

fn smoke(addr: SocketAddr) {
    let output = program::run(
        Command::new("redis-benchmark").args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()]).args([
            "-t",
            "set,get,mset,incr,hset",
            "-P",
            "16",
            "-n",
            &REQUESTS.to_string(),
            "-c",
            "8",
            "-d",
            &VALUE_BYTES.to_string(),
            "-q",
            "--csv",
        ]),
        b"",
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "redis-benchmark on {addr} exited with {}\n{stdout}\n{stderr}", output.status);
    let unexpected: Vec<&str> =
        stderr.lines().filter(|l| !l.trim().is_empty() && !l.starts_with(CONFIG_WARNING)).collect();
    assert!(unexpected.is_empty(), "redis-benchmark on {addr} complained: {unexpected:?}");

    let mut tests = Vec::new();
    for line in stdout.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').map(|f| f.trim_matches('"')).collect();
        let rate: f64 = fields.get(1).and_then(|r| r.parse().ok()).unwrap_or_else(|| panic!("a CSV line: {line}"));
        assert!(rate > 0.0, "{line}");
        tests.push(fields[0].to_owned());
    }
    assert_eq!(tests, ["SET", "GET", "INCR", "HSET", "MSET (10 keys)"], "redis-benchmark's results:\n{stdout}");

    let mut c = RespConnection::open(addr);
    let total = i64::try_from(REQUESTS).expect("small");
    assert_eq!(c.call(&["GET", "counter:__rand_int__"]), Value::Bulk(total.to_string().into_bytes()), "INCR count");
    let value = c.call(&["GET", "key:__rand_int__"]);
    assert_eq!(value.as_bytes().map(<[u8]>::len), Some(VALUE_BYTES), "SET/MSET's key: {value:?}");
    let field = c.call(&["HGET", "myhash", "element:__rand_int__"]);
    assert_eq!(field.as_bytes().map(<[u8]>::len), Some(VALUE_BYTES), "HSET's field: {field:?}");
}

#[test]
fn redis_benchmark_completes_against_nacred() {
    let mut server = Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() });
    smoke(server.resp_addr());
    assert!(server.is_running());
}

#[test]
fn redis_benchmark_completes_against_redis_server() {
    let redis = RedisServer::start();
    smoke(redis.addr());
}
