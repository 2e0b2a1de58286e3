//! The data directory: its layout, its one-process lock, and the cluster file that fixes the
//! partition count for the directory's life.
//!
//! ```text
//! DATA/nacred.lock          flock'd by the running nacred
//! DATA/cluster.toml         partition_count, shard_count of the last start
//! DATA/catalog.json         tables (see catalog.rs)
//! DATA/wal/shard-NN/        each shard's WAL
//! DATA/partitions/NNNN/     each partition's segments and manifest
//! DATA/clock/shard-NN.hwm   each shard's clock high-water mark (written through the I/O seam)
//! ```
//!
//! Metadata files are small and rare, so they use std's blocking file API, not the I/O seam
//! (except the clock's marks, which a shard raises while it serves).

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What `cluster.toml` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterFile {
    /// Logical partitions, fixed at initialisation.
    pub partition_count: u32,
    /// Shards at the last start.
    pub shard_count: u32,
}

/// An open, locked data directory.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    cluster: ClusterFile,
    fresh: bool,
    _lock: File,
}

impl DataDir {
    /// Locks `root`, creating and initialising it if new. A second process is refused.
    pub fn open_or_init(root: &Path, partitions: u32, shards: usize) -> Result<DataDir> {
        let writable = "choose a directory nacred can create and write: --data-dir, or data_dir in the configuration";
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create the data directory {} ({writable})", root.display()))?;
        // Absolute from here on: logs name it unambiguously and nothing depends on the cwd.
        let root = &std::fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
        let lock_path = root.join("nacred.lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot write in the data directory {} ({writable})", root.display()))?;
        if let Err(e) = lock.try_lock() {
            match e {
                std::fs::TryLockError::WouldBlock => {
                    bail!("data directory {} is in use by another nacred process", root.display())
                }
                std::fs::TryLockError::Error(e) => return Err(e).context("locking the data directory"),
            }
        }
        let shard_count = u32::try_from(shards).context("shard count")?;
        let cluster_path = root.join("cluster.toml");
        let previous: Option<ClusterFile> = if cluster_path.exists() {
            let text = std::fs::read_to_string(&cluster_path).context("reading cluster.toml")?;
            Some(toml::from_str(&text).context("parsing cluster.toml")?)
        } else {
            None
        };
        let (cluster, fresh) = if let Some(old) = previous {
            if old.shard_count != shard_count && wal_holds_records(root)? {
                bail!(
                    "the data directory was last served by {} shards and its WAL still holds unflushed writes; \
                     restart with --cores {} (a clean shutdown flushes everything; then any core count works)",
                    old.shard_count,
                    old.shard_count
                );
            }
            (ClusterFile { partition_count: old.partition_count, shard_count }, false)
        } else {
            (ClusterFile { partition_count: partitions, shard_count }, true)
        };
        if previous != Some(cluster) {
            write_atomically(&cluster_path, toml::to_string(&cluster).context("encoding cluster.toml")?.as_bytes())?;
        }
        std::fs::create_dir_all(root.join("wal"))?;
        std::fs::create_dir_all(root.join("partitions"))?;
        Ok(DataDir { root: root.to_path_buf(), cluster, fresh, _lock: lock })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The cluster's fixed facts.
    pub fn cluster(&self) -> ClusterFile {
        self.cluster
    }

    /// True if this start initialised the directory.
    pub fn is_fresh(&self) -> bool {
        self.fresh
    }

    /// Shard `shard`'s WAL directory.
    pub fn wal_dir(&self, shard: usize) -> PathBuf {
        self.root.join("wal").join(format!("shard-{shard:02}"))
    }

    /// Partition `partition`'s directory.
    pub fn partition_dir(&self, partition: u32) -> PathBuf {
        self.root.join("partitions").join(format!("{partition:04}"))
    }
}

/// True if any shard's WAL directory holds a WAL file with anything past its header page.
fn wal_holds_records(root: &Path) -> Result<bool> {
    let wal = root.join("wal");
    if !wal.exists() {
        return Ok(false);
    }
    for shard in std::fs::read_dir(&wal)? {
        for file in std::fs::read_dir(shard?.path())? {
            let file = file?;
            let name = file.file_name();
            if name.to_string_lossy().ends_with(".wal") && wal_file_has_batches(&file.path())? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn wal_file_has_batches(path: &Path) -> Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path)?;
    let mut page = [0u8; 4096];
    f.seek(SeekFrom::Start(4096))?;
    let n = f.read(&mut page)?;
    Ok(page[..n].iter().any(|b| *b != 0))
}

/// Where the shards' clock high-water files live under the data directory (one per shard,
/// `shard-NN.hwm`; FORMAT.md).
pub fn clock_dir(root: &Path) -> PathBuf {
    root.join("clock")
}

/// Replaces `path` with `bytes` atomically and durably: temp file, fsync, rename, fsync dir.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_open_is_refused_and_the_partition_count_sticks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open_or_init(dir.path(), 16, 2).expect("first");
        assert!(first.is_fresh());
        let second = DataDir::open_or_init(dir.path(), 16, 2);
        let message = format!("{:#}", second.expect_err("second is refused"));
        assert!(message.contains("in use by another nacred"), "{message}");
        drop(first);
        let again = DataDir::open_or_init(dir.path(), 99, 3).expect("reopen");
        assert_eq!(again.cluster(), ClusterFile { partition_count: 16, shard_count: 3 });
        assert!(!again.is_fresh());
    }
}
