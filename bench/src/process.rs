//! Child processes of a benchmark: a guard that kills one when dropped, CPU seconds from
//! `/proc`, free loopback ports, waiting for a Redis-speaking port, and the sibling binaries
//! (`nacred`, `nacre-loadgen`) built next to the running one.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

/// Longest a server may take to answer its first PING.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A child process, killed and reaped when dropped.
pub struct Guard {
    /// The process.
    pub child: Child,
    /// What it is, for messages.
    pub name: &'static str,
}

impl Guard {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Fails only if it already exited.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU seconds (user + system) of process `pid` from `/proc/PID/stat`, or of its waited-for
/// children when `children`.
///
/// # Errors
///
/// If the process is gone or the file unreadable.
pub fn cpu_seconds(pid: u32, children: bool) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name, which may hold spaces: state is field 3.
    let rest = stat.rsplit_once(')').context("a /proc stat line")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime, stime, cutime, cstime are fields 14-17, so 11-14 counted from state (field 3) at 0.
    let (first, second) = if children { (13, 14) } else { (11, 12) };
    let ticks: f64 = fields[first].parse::<f64>()? + fields[second].parse::<f64>()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.context("CLK_TCK")? as f64;
    Ok(ticks / per_second)
}

/// Ports servers are given: below Linux's ephemeral range (32768 on), so no client
/// connection of an earlier run holds one.
const SERVER_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback address with a free port, for a server.
///
/// # Errors
///
/// If none is found.
pub fn free_port() -> Result<SocketAddr> {
    free_port_block(1)
}

/// The first of `span` consecutive free loopback ports (nacred takes its shared port and one
/// per shard after it). Each is free when checked; a port handed out is not handed out again by
/// this process.
///
/// # Errors
///
/// If no such block is found.
pub fn free_port_block(span: u16) -> Result<SocketAddr> {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let base = fastrand::u16(SERVER_PORTS.start..SERVER_PORTS.end - span);
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let all_free = (base..base + span)
            .all(|port| !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            handed_out.extend(base..base + span);
            return Ok(SocketAddr::from(([127, 0, 0, 1], base)));
        }
    }
    bail!("found no {span} consecutive free ports in {SERVER_PORTS:?}")
}

/// Waits until `addr` answers PING, failing early if `server` exits.
///
/// # Errors
///
/// If it exits or does not answer within [`START_TIMEOUT`].
pub fn wait_for_pong(addr: SocketAddr, server: &mut Guard) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("{} exited during start with {status}", server.name);
        }
        if pong(addr).is_ok() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{} did not answer PING on {addr} within {START_TIMEOUT:?}", server.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn pong(addr: SocketAddr) -> Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"*1\r\n$4\r\nPING\r\n")?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply)?;
    if &reply != b"+PONG\r\n" {
        bail!("PING answered {:?}", String::from_utf8_lossy(&reply));
    }
    Ok(())
}

/// The workspace binary `name` built next to the running one (same profile).
///
/// # Errors
///
/// If it is missing, with the command that builds it.
pub fn sibling_binary(name: &str, package: &str) -> Result<PathBuf> {
    let here = std::env::current_exe()?;
    let path = here.parent().context("this binary's directory")?.join(name);
    if !path.exists() {
        bail!("{} is missing: cargo build [--release] -p {package} --bin {name}", path.display());
    }
    Ok(path)
}
