//! `ProbeDisk`: a thin wrapper over [`SimDisk`] that aims its one-shot faults at named files.
//!
//! SimDisk's `fail_next_sync` and `short_read_next` hit the very next sync or read, whatever the
//! file; a flush syncs its segment before the manifest, and recovery reads the WAL before the
//! manifest and segments. ProbeDisk arms them just before the next sync or read of a file whose
//! path contains a given string, so a test can fail exactly the manifest's sync or a segment's
//! read. It also logs every file sync with its outcome, so a test can tell that a failed sync
//! was never retried. All state, op counting, captures and crash images stay SimDisk's; stack
//! it under `YieldingDisk` for interleavings.

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use nacre_storage::io::sim::{SimDisk, SimFile};
use nacre_storage::io::{DirLock, Disk, DiskFile, IoBuf, IoResult, OpenMode};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

#[derive(Default)]
struct Control {
    fail_sync_of: RefCell<Option<String>>,
    short_read_of: RefCell<Option<String>>,
    syncs: RefCell<Vec<(PathBuf, bool)>>,
}

/// Takes `slot`'s needle if `path` contains it: a one-shot trigger.
fn fire(slot: &RefCell<Option<String>>, path: &Path) -> bool {
    let mut needle = slot.borrow_mut();
    let hit = needle.as_deref().is_some_and(|n| path.to_string_lossy().contains(n));
    if hit {
        *needle = None;
    }
    hit
}

/// A SimDisk whose faults can be aimed at a named file.
#[derive(Clone)]
pub struct ProbeDisk {
    /// The disk underneath: op counts, captures, crash images and faults live here.
    pub sim: SimDisk,
    control: Rc<Control>,
}

impl ProbeDisk {
    /// Wraps a fresh SimDisk seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { sim: SimDisk::new(seed), control: Rc::default() }
    }

    /// Makes the next sync of a file whose path contains `needle` fail (SimDisk's
    /// `fail_next_sync`, armed just before that sync).
    pub fn fail_next_sync_of(&self, needle: &str) {
        *self.control.fail_sync_of.borrow_mut() = Some(needle.to_string());
    }

    /// Makes the next read of a file whose path contains `needle` fail short (SimDisk's
    /// `short_read_next`, armed just before that read).
    pub fn short_read_next_of(&self, needle: &str) {
        *self.control.short_read_of.borrow_mut() = Some(needle.to_string());
    }

    /// Every file sync so far, in order: the file and whether the sync succeeded.
    pub fn syncs(&self) -> Vec<(PathBuf, bool)> {
        self.control.syncs.borrow().clone()
    }
}

impl Disk for ProbeDisk {
    type File = ProbeFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<ProbeFile> {
        let inner = self.sim.open(path, mode).await?;
        Ok(ProbeFile { disk: self.clone(), inner, path: path.to_path_buf() })
    }

    async fn create_dir_all(&self, path: &Path) -> IoResult<()> {
        self.sim.create_dir_all(path).await
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        self.sim.list(dir).await
    }

    async fn exists(&self, path: &Path) -> IoResult<bool> {
        self.sim.exists(path).await
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        self.sim.remove(path).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        self.sim.rename(from, to).await
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()> {
        self.sim.hard_link(from, to).await
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        self.sim.sync_dir(dir).await
    }

    async fn lock(&self, path: &Path) -> IoResult<DirLock> {
        self.sim.lock(path).await
    }
}

/// A file open on a [`ProbeDisk`].
pub struct ProbeFile {
    disk: ProbeDisk,
    inner: SimFile,
    path: PathBuf,
}

impl DiskFile for ProbeFile {
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf> {
        if fire(&self.disk.control.short_read_of, &self.path) {
            self.disk.sim.short_read_next();
        }
        self.inner.read_at(offset, len).await
    }

    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()> {
        self.inner.write_at(offset, buf).await
    }

    async fn sync(&self) -> IoResult<()> {
        if fire(&self.disk.control.fail_sync_of, &self.path) {
            self.disk.sim.fail_next_sync();
        }
        let result = self.inner.sync().await;
        self.disk.control.syncs.borrow_mut().push((self.path.clone(), result.is_ok()));
        result
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        self.inner.preallocate(len).await
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        self.inner.truncate(len).await
    }

    async fn size(&self) -> IoResult<u64> {
        self.inner.size().await
    }

    async fn close(self) -> IoResult<()> {
        self.inner.close().await
    }
}
