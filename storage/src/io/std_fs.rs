//! `StdDisk`: the seam on std's blocking, buffered file API, for offline tools (the bulk
//! builder, and the linker's validation on a blocking thread). Every call completes before its
//! future is first polled, so any executor, even `futures_lite::future::block_on`, drives it.
//!
//! It is `Send`, holds no cache of its own, and keeps the seam's durability rules: nothing is
//! durable before `sync` (fdatasync) or `sync_dir`. It is not for the daemon's hot path: it
//! blocks its thread on every call.

use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{ALIGN, DirLock, Disk, DiskFile, IoBuf, IoError, IoResult, OpenMode};

fn serr<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |e| IoError::new(op, path, e)
}

/// The blocking std backend.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdDisk;

impl Disk for StdDisk {
    type File = StdDiskFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<StdDiskFile> {
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true);
        if mode == OpenMode::CreateNew {
            opts.create_new(true);
        }
        let file = opts.open(path).map_err(serr("open", path))?;
        Ok(StdDiskFile { file, path: path.to_path_buf() })
    }

    async fn create_dir_all(&self, path: &Path) -> IoResult<()> {
        create_dir_all(path)
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        list(dir)
    }

    async fn exists(&self, path: &Path) -> IoResult<bool> {
        exists(path)
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        remove(path)
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        rename(from, to)
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()> {
        hard_link(from, to)
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(serr("sync_dir", dir))
    }

    async fn lock(&self, path: &Path) -> IoResult<DirLock> {
        lock(path)
    }
}

// The metadata operations, on std's blocking calls; `DmaDisk` uses them too, since glommio offers
// no async equivalents for most of them.

/// [`Disk::create_dir_all`].
pub(super) fn create_dir_all(path: &Path) -> IoResult<()> {
    std::fs::create_dir_all(path).map_err(serr("create_dir_all", path))
}

/// [`Disk::list`]: the names of the files (not directories) in `dir`, sorted.
pub(super) fn list(dir: &Path) -> IoResult<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(serr("list", dir))? {
        let entry = entry.map_err(serr("list", dir))?;
        if entry.file_type().map_err(serr("list", &entry.path()))?.is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// [`Disk::exists`].
pub(super) fn exists(path: &Path) -> IoResult<bool> {
    std::fs::exists(path).map_err(serr("exists", path))
}

/// [`Disk::remove`].
pub(super) fn remove(path: &Path) -> IoResult<()> {
    std::fs::remove_file(path).map_err(serr("remove", path))
}

/// [`Disk::rename`].
pub(super) fn rename(from: &Path, to: &Path) -> IoResult<()> {
    std::fs::rename(from, to).map_err(serr("rename", from))
}

/// [`Disk::hard_link`].
pub(super) fn hard_link(from: &Path, to: &Path) -> IoResult<()> {
    std::fs::hard_link(from, to).map_err(serr("hard_link", from))
}

/// [`Disk::lock`]: `try_lock` is flock(LOCK_EX | LOCK_NB), held per open file description, so a
/// second open in this same process conflicts too, and the kernel drops it if we die.
pub(super) fn lock(path: &Path) -> IoResult<DirLock> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(serr("lock", path))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock::new(Box::new(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(IoError::new("lock", path, ErrorKind::WouldBlock.into())),
        Err(std::fs::TryLockError::Error(e)) => Err(IoError::new("lock", path, e)),
    }
}

/// A file open on a [`StdDisk`].
#[derive(Debug)]
pub struct StdDiskFile {
    file: std::fs::File,
    path: PathBuf,
}

impl DiskFile for StdDiskFile {
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf> {
        debug_assert!(offset.is_multiple_of(ALIGN as u64) && len.is_multiple_of(ALIGN));
        let mut buf = IoBuf::zeroed(len);
        let size = self.file.metadata().map_err(serr("read", &self.path))?.len();
        let want = usize::try_from(size.saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
        // Bytes past the end read as zeros; anything short of `want` is a short read.
        self.file.read_exact_at(&mut buf.as_mut_slice()[..want], offset).map_err(serr("read", &self.path))?;
        Ok(buf)
    }

    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()> {
        debug_assert!(offset.is_multiple_of(ALIGN as u64) && buf.len().is_multiple_of(ALIGN));
        self.file.write_all_at(buf.as_slice(), offset).map_err(serr("write", &self.path))
    }

    async fn sync(&self) -> IoResult<()> {
        self.file.sync_data().map_err(serr("sync", &self.path))
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        let size = self.file.metadata().map_err(serr("preallocate", &self.path))?.len();
        if size < len {
            // Buffered writes are not serialised by extension the way direct I/O is, so a
            // sparse extension is enough here.
            self.file.set_len(len).map_err(serr("preallocate", &self.path))?;
        }
        Ok(())
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        self.file.set_len(len).map_err(serr("truncate", &self.path))
    }

    async fn size(&self) -> IoResult<u64> {
        Ok(self.file.metadata().map_err(serr("size", &self.path))?.len())
    }

    async fn close(self) -> IoResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn reads_past_the_end_are_zeros_and_writes_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        block_on(async {
            let file = StdDisk.open(&path, OpenMode::CreateNew).await.expect("create");
            file.write_at(0, IoBuf::from_padded(b"hello".to_vec())).await.expect("write");
            file.truncate(5).await.expect("truncate");
            let buf = file.read_at(0, ALIGN).await.expect("read");
            assert_eq!(&buf.as_slice()[..5], b"hello");
            assert!(buf.as_slice()[5..].iter().all(|b| *b == 0));
            assert!(StdDisk.open(&path, OpenMode::CreateNew).await.is_err(), "create_new refuses an existing file");
        });
    }
}
