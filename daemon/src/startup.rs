//! Startup checks that turn a missing prerequisite into one clear message instead of a
//! confusing failure later: locked memory for glommio's io_uring buffers, io_uring itself, and
//! O_DIRECT on the data directory's filesystem.

use anyhow::{Result, bail};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Locked memory each shard's executor registers for io_uring, bytes.
pub const IO_MEMORY_PER_SHARD: usize = 1 << 20;

/// Fails unless the locked-memory limit covers `shards` executors.
pub fn check_locked_memory(shards: usize) -> Result<()> {
    let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::MEMLOCK)?;
    // Each executor also locks its rings; 2x the buffers is a safe bound.
    let needed = (shards * IO_MEMORY_PER_SHARD * 2) as u64;
    if soft != rlimit::INFINITY && soft < needed {
        bail!(
            "locked-memory limit is {} KiB but {shards} shard(s) need {} KiB for io_uring: raise it \
             (ulimit -l, or LimitMEMLOCK= in the systemd unit) or start fewer shards with --cores",
            soft / 1024,
            needed / 1024
        );
    }
    Ok(())
}

/// Fails unless files in `dir` can be opened with O_DIRECT.
pub fn check_direct_io(dir: &Path) -> Result<()> {
    let probe = dir.join(".nacred-direct-io-probe");
    let opened =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).custom_flags(libc::O_DIRECT).open(&probe);
    let _ = std::fs::remove_file(&probe);
    if let Err(e) = opened {
        bail!(
            "the data directory {} does not support direct I/O (O_DIRECT: {e}); use a directory on ext4 or xfs, not tmpfs",
            dir.display()
        );
    }
    Ok(())
}

/// Fails unless an io_uring executor can start on this kernel.
pub fn check_io_uring() -> Result<()> {
    let probe = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(64 << 10).make();
    match probe {
        Ok(executor) => {
            executor.run(async {});
            Ok(())
        }
        Err(e) => {
            bail!("cannot start an io_uring executor ({e}): Nacre needs Linux 5.8 or later with io_uring enabled")
        }
    }
}

/// Fails if something already listens on one of `addrs`. Every shard binds its listeners with
/// SO_REUSEPORT, which would otherwise let a second daemon (say, with another data directory)
/// silently share the ports and take some of the connections. The probe connects rather than
/// binds: a bind would also trip over the TIME_WAIT connections a killed predecessor left.
pub fn check_ports_free(addrs: &[std::net::SocketAddr]) -> Result<()> {
    for addr in addrs {
        let target = match addr.ip() {
            std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
                std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
            }
            std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
                std::net::SocketAddr::new(std::net::Ipv6Addr::LOCALHOST.into(), addr.port())
            }
            _ => *addr,
        };
        // A killed predecessor's listeners can outlive it briefly (the kernel tears down its
        // io_uring after the process is gone), so only a listener that stays is refused.
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(500)).is_ok() {
            if start.elapsed() > PORT_RELEASE_WAIT {
                bail!("something already listens on {addr} (another nacred or server?): not sharing it");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(())
}

/// How long a port may stay held by a listener before startup gives up on it.
const PORT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
