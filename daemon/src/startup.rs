//! Startup checks that turn a missing prerequisite into one clear message instead of a
//! confusing failure later: locked memory for glommio's io_uring buffers, io_uring itself,
//! O_DIRECT on the data directory's filesystem, and ports nobody else listens on (naming who
//! does, when /proc tells).

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
            "the data directory {} does not support direct I/O (O_DIRECT: {e}); use a directory on ext4 or xfs \
             (not ramfs, tmpfs before Linux 6.6, or most network filesystems)",
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
                let who = listener_of(addr.port()).map_or_else(
                    || "another process (run `ss -ltnp` to see which)".to_owned(),
                    |(pid, name)| format!("process {pid} ({name})"),
                );
                bail!(
                    "port {} is in use: {who} listens on it. Stop it, or give nacred other ports \
                     (--listen, --resp-listen, --http-listen; shard i uses the --listen port + 1 + i)",
                    addr
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    Ok(())
}

/// How long a port may stay held by a listener before startup gives up on it.
const PORT_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The process listening on TCP `port`, as (pid, command name), when /proc tells: the socket's
/// inode from /proc/net/tcp{,6}, then the process holding a descriptor to it. `None` when it
/// cannot tell (another user's process, no /proc).
pub fn listener_of(port: u16) -> Option<(u32, String)> {
    const LISTEN: &str = "0A";
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields.get(1)?.rsplit(':').next()?;
                    let listening = u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
                    listening.then(|| fields.get(9).map(|inode| (*inode).to_owned())).flatten()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let sockets: Vec<String> = inodes.iter().map(|inode| format!("socket:[{inode}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let holds = std::fs::read_link(fd.path())
                .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()));
            if holds {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some((pid, name.trim().to_owned()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_of_a_port_is_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (pid, _) = listener_of(port).expect("this process listens");
        assert_eq!(pid, std::process::id());
        drop(listener);
        assert_eq!(listener_of(port), None);
    }
}
