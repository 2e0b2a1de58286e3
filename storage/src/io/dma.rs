//! `DmaDisk`: the production backend, on glommio DMA (`O_DIRECT`) files.
//!
//! Owns the mapping from the seam's [`Disk`] and [`DiskFile`] calls to glommio 0.9 file I/O and
//! to the few metadata syscalls (directory listing, rename, link, remove, flock) the engine
//! needs, plus the warm-up that keeps glommio's iopoll probe from misfiring.
//!
//! It must not buffer, cache or reorder anything (durability is exactly what `sync` and
//! `sync_dir` say), must not be used outside a glommio `LocalExecutor`, and must not be moved to
//! another thread (it is `!Send`: glommio's per-device probe state is per thread). No other
//! module may name glommio.

use std::io::{ErrorKind, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::GlommioError;
use glommio::io::{Directory, DmaFile, OpenOptions};

use super::{ALIGN, DirLock, Disk, DiskFile, IoBuf, IoError, IoResult, OpenMode, std_fs};

/// Name of the scratch file the iopoll warm-up creates (and removes) under the root hint.
const PROBE_NAME: &str = ".nacre-dma-probe";

/// Maps a glommio error for `op` on `path` into the seam's error.
fn gerr<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(GlommioError<()>) -> IoError + 'a {
    move |e| IoError::new(op, path, e.into())
}

/// Maps a std error for `op` on `path` into the seam's error.
fn serr<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> IoError + 'a {
    move |e| IoError::new(op, path, e)
}

/// `path` made absolute against the current directory: glommio 0.9 opens paths relative to a
/// directory descriptor, and a relative path there fails with EBADF.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Asserts the seam's alignment rule for a read or write.
fn assert_aligned(offset: u64, len: usize) {
    assert!(offset.is_multiple_of(ALIGN as u64), "offset {offset} is not a multiple of ALIGN");
    assert!(len.is_multiple_of(ALIGN), "length {len} is not a multiple of ALIGN");
}

/// Runs the blocking metadata call `op` on `path` on this executor's blocking thread pool.
async fn off_executor<T, F>(path: &Path, op: F) -> IoResult<T>
where
    T: Send + 'static,
    F: FnOnce(&Path) -> IoResult<T> + Send + 'static,
{
    let path = path.to_path_buf();
    glommio::executor().spawn_blocking(move || op(&path)).await
}

/// The real disk, through glommio DMA files. Paths are absolute or relative to the current
/// directory. Create one per executor thread, before any other DMA file is opened on it.
#[derive(Clone, Debug)]
pub struct DmaDisk {
    /// Keeps the disk on the thread whose glommio probe state `new` warmed up.
    _not_send: PhantomData<Rc<()>>,
}

impl DmaDisk {
    /// Prepares direct I/O on this thread for files on the device holding `root_hint` (created
    /// if missing). Must run inside a glommio `LocalExecutor`.
    pub async fn new(root_hint: &Path) -> IoResult<DmaDisk> {
        warm_up_iopoll_probe(root_hint).await?;
        Ok(DmaDisk { _not_send: PhantomData })
    }
}

/// Works around a glommio 0.9.0 bug. The first time a thread opens a DMA file on a block
/// device, glommio probes io_uring iopoll support for that device by reading the first sector
/// of *that* file, and caches the answer per (thread, device). On an empty, freshly created file
/// the kernel short-circuits the read to success before reaching the driver, glommio wrongly
/// concludes iopoll works, and every later DMA read on the device fails with EOPNOTSUPP
/// (os error 95). So we make the first DMA open on this thread a file with a real sector in it.
/// Files on other block devices than `root`'s are not covered.
async fn warm_up_iopoll_probe(root: &Path) -> IoResult<()> {
    std::fs::create_dir_all(root).map_err(serr("create_dir_all", root))?;
    // One probe file per warm-up: shards warm up concurrently on their own threads.
    static NEXT_PROBE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT_PROBE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = root.join(format!("{PROBE_NAME}-{}-{n}", std::process::id()));
    {
        // `create` truncates a probe left behind by a crash during an earlier warm-up.
        let mut file = std::fs::File::create(&probe).map_err(serr("open", &probe))?;
        file.write_all(&[0u8; ALIGN]).map_err(serr("write", &probe))?;
        // Put the sector on the device so the probe's direct read has something real to fetch.
        file.sync_all().map_err(serr("sync", &probe))?;
    }
    let file = OpenOptions::new().read(true).dma_open(&probe).await.map_err(gerr("open", &probe))?;
    let read = file.read_at_aligned(0, ALIGN).await.map_err(gerr("read", &probe));
    let closed = file.close().await.map_err(gerr("close", &probe));
    // Remove the probe even when the read failed, then report the first failure.
    let removed = std::fs::remove_file(&probe).map_err(serr("remove", &probe));
    read?;
    closed?;
    removed
}

impl Disk for DmaDisk {
    type File = DmaDiskFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<DmaDiskFile> {
        // Not `DmaFile::create`: it opens write-only, and the engine reads what it writes.
        let mut opts = OpenOptions::new();
        opts.read(true).write(true);
        if mode == OpenMode::CreateNew {
            opts.create_new(true);
        }
        let file = opts.dma_open(absolute(path)).await.map_err(gerr("open", path))?;
        Ok(DmaDiskFile { file, path: path.to_path_buf() })
    }

    // The metadata operations are blocking std calls (shared with `StdDisk`), run on glommio's
    // blocking thread pool so the executor keeps serving while they wait: an unlink of a large
    // preallocated WAL file was measured at 14-18 ms, and under a busy journal any of them can
    // wait far longer. glommio offers no io_uring equivalents for most of them.

    async fn create_dir_all(&self, path: &Path) -> IoResult<()> {
        off_executor(path, std_fs::create_dir_all).await
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        off_executor(dir, std_fs::list).await
    }

    async fn exists(&self, path: &Path) -> IoResult<bool> {
        off_executor(path, std_fs::exists).await
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        off_executor(path, std_fs::remove).await
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        let to = to.to_path_buf();
        off_executor(from, move |from| std_fs::rename(from, &to)).await
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()> {
        let to = to.to_path_buf();
        off_executor(from, move |from| std_fs::hard_link(from, &to)).await
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        let handle = Directory::open(absolute(dir)).await.map_err(gerr("sync_dir", dir))?;
        let synced = handle.sync().await.map_err(gerr("sync_dir", dir));
        let closed = handle.close().await.map_err(gerr("close", dir));
        synced?;
        closed
    }

    async fn lock(&self, path: &Path) -> IoResult<DirLock> {
        std_fs::lock(path)
    }
}

/// A file open on a [`DmaDisk`]: a glommio DMA file and its path, for error messages.
pub struct DmaDiskFile {
    file: DmaFile,
    path: PathBuf,
}

impl std::fmt::Debug for DmaDiskFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaDiskFile").field("path", &self.path).finish_non_exhaustive()
    }
}

impl DiskFile for DmaDiskFile {
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf> {
        assert_aligned(offset, len);
        let mut buf = IoBuf::zeroed(len);
        if len == 0 {
            return Ok(buf);
        }
        let read = self.file.read_at_aligned(offset, len).await.map_err(gerr("read", &self.path))?;
        let got = read.len().min(len);
        buf.as_mut_slice()[..got].copy_from_slice(&read[..got]);
        if got < len {
            // Fewer bytes is normal at end of file (the rest reads as zeros); anywhere else it
            // is a short read, which the seam reports rather than hiding behind zeros.
            let size = self.file.file_size().await.map_err(gerr("read", &self.path))?;
            if offset + (got as u64) < size {
                let msg = format!("short read: {got} of {len} bytes at {offset}, file size {size}");
                return Err(IoError::new("read", &self.path, std::io::Error::new(ErrorKind::UnexpectedEof, msg)));
            }
        }
        Ok(buf)
    }

    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()> {
        assert_aligned(offset, buf.len());
        if buf.is_empty() {
            return Ok(());
        }
        // glommio needs its own aligned buffer; IoBuf's Vec makes no alignment promise.
        let mut dma = self.file.alloc_dma_buffer(buf.len());
        dma.as_bytes_mut().copy_from_slice(buf.as_slice());
        let written = self.file.write_at(dma, offset).await.map_err(gerr("write", &self.path))?;
        if written != buf.len() {
            let msg = format!("short write: {written} of {} bytes at {offset}", buf.len());
            return Err(IoError::new("write", &self.path, std::io::Error::new(ErrorKind::WriteZero, msg)));
        }
        Ok(())
    }

    async fn sync(&self) -> IoResult<()> {
        self.file.fdatasync().await.map_err(gerr("sync", &self.path))
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        let size = self.file.file_size().await.map_err(gerr("preallocate", &self.path))?;
        // Never shrink: fallocate would not, but skipping the syscall is cheaper still.
        if size < len {
            self.file.pre_allocate(len, false).await.map_err(gerr("preallocate", &self.path))?;
        }
        Ok(())
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        self.file.truncate(len).await.map_err(gerr("truncate", &self.path))
    }

    async fn size(&self) -> IoResult<u64> {
        self.file.file_size().await.map_err(gerr("size", &self.path))
    }

    async fn close(self) -> IoResult<()> {
        self.file.close().await.map_err(gerr("close", &self.path))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::Mutex;

    /// Serialises the tests: each executor registers its io_memory against one small
    /// locked-memory limit, and the machine has two cores anyway.
    static SERIAL: Mutex<()> = Mutex::new(());

    /// Runs `body` on a fresh glommio executor with a `DmaDisk` rooted in a temp dir.
    fn with_disk<F, Fut>(body: F)
    where
        F: FnOnce(DmaDisk, PathBuf) -> Fut,
        Fut: Future<Output = ()>,
    {
        let _serial = SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::Builder::new().prefix("nacre-dma").tempdir_in("/tmp").unwrap();
        let root = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .expect("glommio executor")
            .run(async move {
                let disk = DmaDisk::new(&root).await.unwrap();
                let left: Vec<_> = std::fs::read_dir(&root)
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_name().to_string_lossy().starts_with(PROBE_NAME))
                    .collect();
                assert!(left.is_empty(), "warm-up leaves no probe behind: {left:?}");
                body(disk, root).await;
            });
    }

    fn pattern(seed: u8, len: usize) -> IoBuf {
        IoBuf::from_padded((0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect())
    }

    #[test]
    fn write_sync_read_roundtrip() {
        with_disk(|disk, root| async move {
            let path = root.join("data");
            let f = disk.open(&path, OpenMode::CreateNew).await.unwrap();
            let writes = [
                (0u64, 1u8, ALIGN),
                (3 * ALIGN as u64, 2, 2 * ALIGN),
                (8 * ALIGN as u64, 3, ALIGN),
                // One write spanning many blocks.
                (16 * ALIGN as u64, 4, 64 * ALIGN),
            ];
            for (offset, seed, len) in writes {
                f.write_at(offset, pattern(seed, len)).await.unwrap();
            }
            f.sync().await.unwrap();
            assert_eq!(f.size().await.unwrap(), 80 * ALIGN as u64);
            for (offset, seed, len) in writes {
                assert_eq!(f.read_at(offset, len).await.unwrap(), pattern(seed, len));
            }
            // The hole between writes reads as zeros.
            let hole = f.read_at(ALIGN as u64, 2 * ALIGN).await.unwrap();
            assert!(hole.as_slice().iter().all(|&b| b == 0));
            f.close().await.unwrap();
            // Reopened, the bytes are still there.
            let f = disk.open(&path, OpenMode::Existing).await.unwrap();
            assert_eq!(f.read_at(3 * ALIGN as u64, 2 * ALIGN).await.unwrap(), pattern(2, 2 * ALIGN));
            f.close().await.unwrap();
            let err = disk.open(&path, OpenMode::CreateNew).await.err().unwrap();
            assert_eq!(err.source.kind(), ErrorKind::AlreadyExists);
            let err = disk.open(&root.join("missing"), OpenMode::Existing).await.err().unwrap();
            assert_eq!(err.source.kind(), ErrorKind::NotFound);
        });
    }

    #[test]
    fn read_past_eof_zero_fills() {
        with_disk(|disk, root| async move {
            let f = disk.open(&root.join("short"), OpenMode::CreateNew).await.unwrap();
            f.write_at(0, pattern(7, ALIGN)).await.unwrap();
            let buf = f.read_at(0, 3 * ALIGN).await.unwrap();
            assert_eq!(buf.len(), 3 * ALIGN);
            assert_eq!(&buf.as_slice()[..ALIGN], pattern(7, ALIGN).as_slice());
            assert!(buf.as_slice()[ALIGN..].iter().all(|&b| b == 0));
            let beyond = f.read_at(10 * ALIGN as u64, ALIGN).await.unwrap();
            assert!(beyond.as_slice().iter().all(|&b| b == 0));
            f.close().await.unwrap();
        });
    }

    #[test]
    fn preallocate_and_truncate_set_size() {
        with_disk(|disk, root| async move {
            let f = disk.open(&root.join("sized"), OpenMode::CreateNew).await.unwrap();
            f.preallocate(4 * ALIGN as u64).await.unwrap();
            assert_eq!(f.size().await.unwrap(), 4 * ALIGN as u64);
            f.preallocate(ALIGN as u64).await.unwrap();
            assert_eq!(f.size().await.unwrap(), 4 * ALIGN as u64, "preallocate never shrinks");
            let zeros = f.read_at(0, 4 * ALIGN).await.unwrap();
            assert!(zeros.as_slice().iter().all(|&b| b == 0));
            f.truncate(ALIGN as u64).await.unwrap();
            assert_eq!(f.size().await.unwrap(), ALIGN as u64);
            f.truncate(0).await.unwrap();
            assert_eq!(f.size().await.unwrap(), 0);
            f.close().await.unwrap();
        });
    }

    #[test]
    fn rename_list_link_remove() {
        with_disk(|disk, root| async move {
            let sub = root.join("a/b");
            disk.create_dir_all(&sub).await.unwrap();
            disk.create_dir_all(&sub).await.unwrap();
            for name in ["zeta", "alpha"] {
                let f = disk.open(&sub.join(name), OpenMode::CreateNew).await.unwrap();
                f.write_at(0, pattern(9, ALIGN)).await.unwrap();
                f.sync().await.unwrap();
                f.close().await.unwrap();
            }
            disk.create_dir_all(&sub.join("subdir")).await.unwrap();
            assert_eq!(disk.list(&sub).await.unwrap(), vec!["alpha", "zeta"]);
            disk.rename(&sub.join("zeta"), &sub.join("beta")).await.unwrap();
            disk.hard_link(&sub.join("beta"), &sub.join("gamma")).await.unwrap();
            disk.sync_dir(&sub).await.unwrap();
            assert_eq!(disk.list(&sub).await.unwrap(), vec!["alpha", "beta", "gamma"]);
            // The link is the same file: it sees writes made through the other name.
            let f = disk.open(&sub.join("beta"), OpenMode::Existing).await.unwrap();
            f.write_at(0, pattern(10, ALIGN)).await.unwrap();
            f.close().await.unwrap();
            let g = disk.open(&sub.join("gamma"), OpenMode::Existing).await.unwrap();
            assert_eq!(g.read_at(0, ALIGN).await.unwrap(), pattern(10, ALIGN));
            g.close().await.unwrap();
            let err = disk.hard_link(&sub.join("beta"), &sub.join("alpha")).await.unwrap_err();
            assert_eq!(err.source.kind(), ErrorKind::AlreadyExists);
            disk.remove(&sub.join("beta")).await.unwrap();
            assert!(!disk.exists(&sub.join("beta")).await.unwrap());
            assert!(disk.exists(&sub.join("gamma")).await.unwrap());
            // rename replaces an existing target.
            disk.rename(&sub.join("gamma"), &sub.join("alpha")).await.unwrap();
            assert_eq!(disk.list(&sub).await.unwrap(), vec!["alpha"]);
            let err = disk.list(&root.join("nope")).await.unwrap_err();
            assert_eq!(err.source.kind(), ErrorKind::NotFound);
            assert!(disk.sync_dir(&root.join("nope")).await.is_err());
        });
    }

    #[test]
    fn second_lock_is_refused_until_first_drops() {
        with_disk(|disk, root| async move {
            let path = root.join("LOCK");
            let first = disk.lock(&path).await.unwrap();
            assert!(path.exists());
            let err = disk.lock(&path).await.unwrap_err();
            assert_eq!(err.source.kind(), ErrorKind::WouldBlock);
            drop(first);
            drop(disk.lock(&path).await.unwrap());
        });
    }
}
