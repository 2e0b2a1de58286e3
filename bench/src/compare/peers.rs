//! The peers a comparison needs, found on `PATH`, and how to install the missing ones.

use std::path::PathBuf;

/// A program a section compares against.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// Its command.
    pub command: &'static str,
    /// The Debian package that provides it.
    pub debian_package: &'static str,
}

/// `redis-server`.
pub const REDIS_SERVER: Peer = Peer { command: "redis-server", debian_package: "redis-server" };
/// `redis-benchmark`.
pub const REDIS_BENCHMARK: Peer = Peer { command: "redis-benchmark", debian_package: "redis-tools" };
/// RocksDB's `db_bench`.
pub const DB_BENCH: Peer = Peer { command: "db_bench", debian_package: "rocksdb-tools" };
/// `fio`.
pub const FIO: Peer = Peer { command: "fio", debian_package: "fio" };
/// `iperf3`.
pub const IPERF3: Peer = Peer { command: "iperf3", debian_package: "iperf3" };

impl Peer {
    /// Its path on `PATH`.
    ///
    /// # Errors
    ///
    /// If it is not there: the message names the package to install.
    pub fn find(&self) -> Result<PathBuf, String> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(self.command))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| format!("{} not found (Debian: apt-get install {})", self.command, self.debian_package))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_peer_says_what_to_install() {
        let missing = Peer { command: "no-such-peer-program", debian_package: "no-such-package" };
        let message = missing.find().expect_err("not installed");
        assert!(message.contains("apt-get install no-such-package"), "{message}");
        // sh is on every machine these benchmarks run on.
        assert!(Peer { command: "sh", debian_package: "dash" }.find().is_ok());
    }
}
