//! The I/O seam: the only way the engine reaches a disk.
//!
//! Everything the engine stores goes through [`Disk`] and [`DiskFile`]. Three implementations
//! exist: [`dma::DmaDisk`] on glommio DMA files (direct I/O, production); [`sim::SimDisk`], an
//! in-memory disk that keeps live and durable bytes apart, produces power-cut images and injects
//! faults; and [`std_fs::StdDisk`] on std's blocking files, for offline tools (the bulk builder)
//! and blocking threads. No other module names glommio.
//!
//! Rules every caller keeps, and every implementation may assert:
//! - file offsets and buffer lengths passed to `write_at` and `read_at` are multiples of
//!   [`ALIGN`];
//! - nothing written is durable until `sync` on that file returns, and no directory change
//!   (create, rename, remove, link) is durable until `sync_dir` on its directory returns.

pub mod dma;
pub mod sim;
pub mod std_fs;

use std::fmt;
use std::path::{Path, PathBuf};

/// Alignment of every offset and length that crosses the seam, in bytes.
pub const ALIGN: usize = 4096;

/// The smallest unit a power cut may tear a write into, in bytes.
pub const SECTOR: usize = 512;

/// Rounds `len` up to a multiple of [`ALIGN`].
pub fn align_up(len: usize) -> usize {
    len.div_ceil(ALIGN) * ALIGN
}

/// An owned buffer whose length is a multiple of [`ALIGN`]. Buffers go into the seam by value
/// and come back by value, so an implementation may hand them to the kernel without copying.
#[derive(Clone, PartialEq, Eq)]
pub struct IoBuf {
    bytes: Vec<u8>,
}

impl IoBuf {
    /// A zeroed buffer of `len` bytes; `len` is rounded up to [`ALIGN`].
    pub fn zeroed(len: usize) -> Self {
        Self { bytes: vec![0; align_up(len)] }
    }

    /// Wraps `bytes`, zero-padding it to a multiple of [`ALIGN`].
    pub fn from_padded(mut bytes: Vec<u8>) -> Self {
        bytes.resize(align_up(bytes.len()), 0);
        Self { bytes }
    }

    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// The buffer's bytes, mutable. The length cannot change.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Length in bytes, always a multiple of [`ALIGN`].
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The underlying vector.
    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
    }
}

impl fmt::Debug for IoBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IoBuf({} bytes)", self.bytes.len())
    }
}

/// What the seam failed to do, and where. The engine wraps it into its own error.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct IoError {
    /// The operation: "read", "write", "sync", "open", ...
    pub op: &'static str,
    /// The file or directory it was applied to.
    pub path: PathBuf,
    /// What the OS (or the simulated disk) said.
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    /// Builds an error for `op` on `path`.
    pub fn new(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self { op, path: path.to_path_buf(), source }
    }
}

/// Result of a seam operation.
pub type IoResult<T> = Result<T, IoError>;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create a new file; fails if it exists.
    CreateNew,
    /// Open an existing file for reading and writing.
    Existing,
}

/// A directory tree the engine stores files in.
#[allow(async_fn_in_trait, reason = "the engine is !Send by design; futures need not be Send")]
pub trait Disk: Clone + 'static {
    /// A file opened on this disk.
    type File: DiskFile;

    /// Opens (or creates) a file for reading and writing.
    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<Self::File>;
    /// Creates a directory and its parents; succeeds if it exists.
    async fn create_dir_all(&self, path: &Path) -> IoResult<()>;
    /// Names of the entries of a directory (files only), sorted.
    async fn list(&self, dir: &Path) -> IoResult<Vec<String>>;
    /// True if the file exists.
    async fn exists(&self, path: &Path) -> IoResult<bool>;
    /// Removes a file. Durable after `sync_dir`.
    async fn remove(&self, path: &Path) -> IoResult<()>;
    /// Atomically renames a file, replacing `to`. Durable after `sync_dir`.
    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()>;
    /// Makes a second name for a file (a hard link). Durable after `sync_dir`.
    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()>;
    /// Makes the directory's entries durable.
    async fn sync_dir(&self, dir: &Path) -> IoResult<()>;
    /// Takes an exclusive lock on `path` (created if missing) for as long as the guard lives.
    /// A second holder, in this process or another, is refused with `WouldBlock`.
    async fn lock(&self, path: &Path) -> IoResult<DirLock>;
}

/// One open file. Offsets and lengths are multiples of [`ALIGN`].
#[allow(async_fn_in_trait, reason = "the engine is !Send by design; futures need not be Send")]
pub trait DiskFile: 'static {
    /// Reads `len` bytes at `offset`. Bytes past the end of the file read as zeros; a short read
    /// is an error (`UnexpectedEof`), never a shorter buffer.
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf>;
    /// Writes the whole buffer at `offset`.
    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()>;
    /// Makes the file's written bytes durable (fdatasync).
    async fn sync(&self) -> IoResult<()>;
    /// Reserves space up to `len` bytes so appends do not extend the file (the file's size
    /// becomes at least `len`; the format keeps the logical length).
    async fn preallocate(&self, len: u64) -> IoResult<()>;
    /// Sets the file's size.
    async fn truncate(&self, len: u64) -> IoResult<()>;
    /// The file's size in bytes.
    async fn size(&self) -> IoResult<u64>;
    /// Closes the file.
    async fn close(self) -> IoResult<()>;
}

/// An exclusive lock on a directory, released on drop.
pub struct DirLock {
    _release: Box<dyn std::any::Any>,
}

impl DirLock {
    /// Wraps whatever releases the lock when dropped.
    pub fn new(release: Box<dyn std::any::Any>) -> Self {
        Self { _release: release }
    }
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DirLock")
    }
}
