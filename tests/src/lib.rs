//! End-to-end tests against the real `nacred` binary: the shared harness the test files in
//! `tests/tests/` use.
//!
//! - [`server`] starts, signals and restarts `nacred` on free loopback ports and a fresh data
//!   directory, and keeps its stderr for the failure message.
//! - [`raw`] speaks the protocol over a plain blocking socket, so tests can send any bytes to any
//!   port, including ones the client would refuse to send.
//! - [`acked`] is the log of acknowledged writes that durability tests check a restarted daemon
//!   against, and the writer load that fills it.
//! - [`seed`] gives random tests a printed, replayable seed.
//! - [`resp`] speaks RESP (the Redis protocol) over a plain blocking socket, byte-exact, for the
//!   RESP door's tests; [`redis`] starts a real `redis-server` to compare the door with;
//!   [`transcript`] runs the scripted session's text; [`program`] runs third-party programs
//!   (redis-cli, redis-benchmark, kcat, the `nacre` CLI) with a bounded time.
//! - [`bulk`] writes bulk-load inputs (JSON Lines, CSV, Parquet), runs `nacre bulk ...`, and
//!   lists partition files so a refused load can be shown to change nothing.
//! - [`kafka`] runs a real Apache Kafka broker (`kafka/broker.sh`), produces to it with
//!   librdkafka and kcat recording where every message landed, reads topics back, drives
//!   `nacre source ...`, and waits until the daemon has applied a topic up to its end offsets.
//! - [`stats`] reads the daemon's statistics: sums by labelled name, values by shard.
//! - [`prometheus`] runs a real Prometheus (Debian's `prometheus`) scraping the daemon's
//!   `/metrics` and queries its HTTP API; [`http`] makes the plain GETs both need.
//!
//! The harness builds nothing: `cargo test --workspace` builds `nacred` before running any test
//! (see [`server::nacred_binary`]), and a lone `cargo test -p nacre-tests` needs
//! `cargo build -p nacre-daemon -p nacre-cli` first (`nacred`, and the `nacre` CLI some tests run).

pub mod acked;
pub mod bulk;
pub mod http;
pub mod kafka;
pub mod program;
pub mod prometheus;
pub mod raw;
pub mod redis;
pub mod resp;
pub mod seed;
pub mod server;
pub mod stats;
pub mod transcript;

/// The runtime the tests drive clients on: two workers, so a load keeps running while the test
/// thread blocks on the daemon (a start, a kill).
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}
