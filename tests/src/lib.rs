//! End-to-end tests against the real `nacred` binary: the shared harness the test files in
//! `tests/tests/` use. (Kafka and third-party clients come with the issues that add them.)
//!
//! - [`server`] starts, signals and restarts `nacred` on free loopback ports and a fresh data
//!   directory, and keeps its stderr for the failure message.
//! - [`raw`] speaks the protocol over a plain blocking socket, so tests can send any bytes to any
//!   port, including ones the client would refuse to send.
//! - [`acked`] is the log of acknowledged writes that durability tests check a restarted daemon
//!   against, and the writer load that fills it.
//! - [`seed`] gives random tests a printed, replayable seed.
//!
//! The harness builds nothing: `cargo test --workspace` builds `nacred` before running any test
//! (see [`server::nacred_binary`]), and a lone `cargo test -p nacre-tests` needs
//! `cargo build -p nacre-daemon --bin nacred` first.

pub mod acked;
pub mod raw;
pub mod seed;
pub mod server;

/// The runtime the tests drive clients on: two workers, so a load keeps running while the test
/// thread blocks on the daemon (a start, a kill).
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime")
}
