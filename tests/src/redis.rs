//! A real `redis-server` (Debian's `redis-server` package) to compare the RESP door against:
//! started on a free loopback port with no persistence and a fresh directory, waited on until
//! it answers PING, and SIGKILLed when dropped.
//!
//! Also [`wait_for_pong`], which both this harness and the `nacred` harness use to know a
//! Redis-speaking port is up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::{RespConnection, Value};
use crate::server::{START_TIMEOUT, free_ports};

/// The `redis-server` to compare with: `$REDIS_SERVER` if set, else `redis-server` on `PATH`.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER").map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port (no RDB snapshots, no AOF) and waits until
    /// it answers PING.
    ///
    /// # Panics
    ///
    /// If it cannot be spawned (is `redis-server` installed?) or does not answer within
    /// [`START_TIMEOUT`].
    pub fn start() -> RedisServer {
        let dir = tempfile::Builder::new().prefix("redis-e2e-").tempdir().expect("a temporary directory");
        let addr = free_ports(0);
        let binary = redis_server_binary();
        let port = addr.port().to_string();
        let log = dir.path().join("redis.log");
        let child = Command::new(&binary)
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--logfile"])
            .arg(&log)
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawning {}: {e} (Debian: apt-get install redis-server redis-tools)", binary.display())
            });
        let mut server = RedisServer { child: Some(child), addr, dir };
        if let Err(e) = wait_for_pong(addr, START_TIMEOUT, || server.exited()) {
            panic!("redis-server on {addr}: {e}\n{}", server.log());
        }
        server
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Its process id, for signals (a test stalls it with SIGSTOP).
    ///
    /// # Panics
    ///
    /// If it was already reaped.
    pub fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.as_ref().expect("the server is running");
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid fits i32"))
    }

    /// Its log file's text.
    pub fn log(&self) -> String {
        let path = self.dir.path().join("redis.log");
        std::fs::read_to_string(&path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
    }

    /// True while the process is alive.
    pub fn is_running(&mut self) -> bool {
        self.exited().is_none() && self.child.is_some()
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        child.try_wait().ok().flatten().map(|status| format!("exited with {status}"))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it already exited, which `wait` then reports.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until `addr` answers PING with PONG, at most `timeout`; `exited` says why the server
/// will never answer (it died), which ends the wait at once.
///
/// # Errors
///
/// A description of the last failure, when the time is up or the server exited.
pub fn wait_for_pong(
    addr: SocketAddr,
    timeout: Duration,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(why) = exited() {
            return Err(why);
        }
        let last = match pong(addr) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() >= deadline {
            return Err(format!("no PONG within {timeout:?}: {last}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pong(addr: SocketAddr) -> Result<(), String> {
    // A short wait: a port that is bound but silent is retried until the deadline.
    let mut c = RespConnection::connect_with_timeout(addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    c.send_bytes(b"*1\r\n$4\r\nPING\r\n").map_err(|e| e.to_string())?;
    match c.receive().map_err(|e| e.to_string())? {
        crate::resp::Received::Reply(Value::Simple(s), _) if s == "PONG" => Ok(()),
        other => Err(format!("PING answered with {other:?}")),
    }
}
