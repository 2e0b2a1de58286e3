//! The servers a comparison runs side by side: `redis-server` without persistence, and `nacred`
//! on a fresh data directory with its RESP door open. Each is killed when dropped.

use crate::process::{Guard, free_port, free_port_block, wait_for_pong};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running `redis-server`.
pub struct Redis {
    /// The process.
    pub guard: Guard,
    /// Its address.
    pub addr: SocketAddr,
}

impl Redis {
    /// Starts `binary` on a free loopback port with no RDB snapshots and no AOF, in `dir`.
    ///
    /// # Errors
    ///
    /// If it cannot start or does not answer PING.
    pub fn start(binary: &Path, dir: &Path) -> Result<Redis> {
        let addr = free_port()?;
        let child = Command::new(binary)
            .args(["--port", &addr.port().to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("running {}", binary.display()))?;
        let mut guard = Guard { child, name: "redis-server" };
        wait_for_pong(addr, &mut guard)?;
        Ok(Redis { guard, addr })
    }
}

/// A running `nacred`.
pub struct Nacred {
    /// The process.
    pub guard: Guard,
    /// Its native door (the shared port).
    pub native: SocketAddr,
    /// Its RESP door.
    pub resp: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Its shards (one per core, its default).
    pub shards: usize,
}

impl Nacred {
    /// Starts `binary` on a fresh data directory under `dir`, on its defaults, both doors on
    /// loopback; the RESP door acknowledges after the WAL queue (its default, async).
    ///
    /// # Errors
    ///
    /// If it cannot start or its RESP door does not answer PING.
    pub fn start(binary: &Path, dir: &Path) -> Result<Nacred> {
        Nacred::start_configured(binary, dir, None)
    }

    /// [`Nacred::start`] with `config` as its configuration file's text, if given.
    ///
    /// # Errors
    ///
    /// If it cannot start or its RESP door does not answer PING.
    pub fn start_configured(binary: &Path, dir: &Path, config: Option<&str>) -> Result<Nacred> {
        let data_dir = dir.join("nacred-data");
        let _ = std::fs::remove_dir_all(&data_dir);
        // The shared port and, after it, one port per shard (one shard per core by default).
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let native = free_port_block(u16::try_from(cores + 1).context("fewer than 65535 cores")?)?;
        let resp = free_port()?;
        let log = std::fs::File::create(dir.join("nacred.log"))?;
        let mut command = Command::new(binary);
        if let Some(text) = config {
            let path = dir.join("nacred.toml");
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            command.arg("--config").arg(path);
        }
        let child = command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &native.to_string(), "--resp-listen", &resp.to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("running {}", binary.display()))?;
        let mut guard = Guard { child, name: "nacred" };
        wait_for_pong(resp, &mut guard)
            .with_context(|| format!("nacred's log: {}", dir.join("nacred.log").display()))?;
        Ok(Nacred { guard, native, resp, data_dir, shards: cores })
    }

    /// Every shard's `allocations_total`, summed, through the native door (the stats call's own
    /// few allocations round away against a run's operations).
    ///
    /// # Errors
    ///
    /// If the door does not answer.
    pub fn allocations(&self) -> Result<u64> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let client = nacre_wire::Client::connect(self.native, nacre_wire::ClientOptions::default()).await?;
            let stats = client.stats().await?;
            anyhow::Ok(stats.iter().filter(|s| s.name == "allocations_total").map(|s| s.value).sum())
        })
    }

    /// Stops it cleanly (SIGTERM: it flushes what it holds to segment files) and waits.
    ///
    /// # Errors
    ///
    /// If the signal fails or it exits unsuccessfully.
    pub fn stop(&mut self) -> Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.guard.pid())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let status = self.guard.child.wait()?;
        anyhow::ensure!(status.success(), "nacred's clean stop failed ({status})");
        Ok(())
    }

    /// A native-protocol client of it, for the calls a section makes besides its workload.
    ///
    /// # Errors
    ///
    /// If it does not answer.
    pub async fn client(&self) -> Result<nacre_wire::Client> {
        let options = nacre_wire::ClientOptions {
            timeout: std::time::Duration::from_secs(3600),
            ..nacre_wire::ClientOptions::default()
        };
        Ok(nacre_wire::Client::connect(self.native, options).await?)
    }
}

impl Drop for Nacred {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}
