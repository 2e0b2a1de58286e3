//! `SimDisk`: an in-memory disk for crash and fault tests.
//!
//! Owns a simulated file system that keeps what reads see (live) apart from what would survive a
//! power cut (durable), for file bytes and for directory entries alike. It can produce the image
//! a power cut would leave at any instant (optionally tearing unsynced writes at sector
//! granularity), record such an image after every mutating operation, and inject one-shot faults.
//!
//! It must not touch the real file system, must not be shared across threads (it is `!Send`),
//! and must not make anything durable that the seam rules in [`super`] say is not durable yet:
//! tests trust it to be at least as unforgiving as a real disk.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use super::{ALIGN, DirLock, Disk, DiskFile, IoBuf, IoError, IoResult, OpenMode, SECTOR};

/// Identifies one simulated file independently of its names (hard links share it).
type InodeId = u64;

/// One sector-sized write made since the inode's last sync; a torn crash image applies each
/// one independently, because a real device only promises sector atomicity.
#[derive(Clone)]
struct PendingSector {
    offset: u64,
    bytes: Vec<u8>,
}

/// One simulated file's contents.
#[derive(Clone, Default)]
struct Inode {
    /// What reads see now.
    live: Vec<u8>,
    /// What survives a power cut.
    durable: Vec<u8>,
    /// Sector writes since the last `sync`, oldest first.
    pending: Vec<PendingSector>,
}

impl Inode {
    /// The bytes a power cut leaves; with `torn`, each pending sector is a coin flip.
    fn image(&self, torn: bool, rng: &mut fastrand::Rng) -> Vec<u8> {
        let mut bytes = self.durable.clone();
        if !torn {
            return bytes;
        }
        for sector in &self.pending {
            if !rng.bool() {
                continue;
            }
            let start = to_usize(sector.offset);
            let end = start + sector.bytes.len();
            // A write that extended the file carries its size update with it; sizes move in
            // whole ALIGN blocks because every write is ALIGN-sized and ALIGN-aligned.
            if bytes.len() < end {
                bytes.resize(end.next_multiple_of(ALIGN), 0);
            }
            bytes[start..end].copy_from_slice(&sector.bytes);
        }
        bytes
    }
}

/// Everything a `SimDisk` knows; shared by its clones and open files.
#[derive(Default)]
struct State {
    rng: fastrand::Rng,
    /// The highest inode id handed out so far.
    last_inode: InodeId,
    inodes: BTreeMap<InodeId, Inode>,
    /// Directory entries as reads see them.
    live_names: BTreeMap<PathBuf, InodeId>,
    /// Directory entries as a power cut leaves them.
    durable_names: BTreeMap<PathBuf, InodeId>,
    /// Directories are immediately durable: the engine creates them once, up front.
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    op_count: u64,
    /// Ops left until the injected failure (1 = the next one fails).
    fail_countdown: Option<u64>,
    fail_next_sync: bool,
    short_read_next: bool,
    capture: bool,
    captured: Vec<(u64, SimDisk)>,
}

impl State {
    fn new(seed: u64) -> Self {
        Self { rng: fastrand::Rng::with_seed(seed), ..Self::default() }
    }

    /// Counts one I/O op and fires the `fail_op_after` fault if it is due.
    fn begin_op(&mut self, op: &'static str, path: &Path) -> IoResult<()> {
        self.op_count += 1;
        match self.fail_countdown {
            Some(1) => {
                self.fail_countdown = None;
                Err(IoError::new(op, path, std::io::Error::other("injected fault")))
            }
            Some(n) => {
                self.fail_countdown = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Records a crash image after a successful mutating op, when capture is on.
    fn after_mutation(&mut self) {
        if self.capture {
            let image = self.image(true);
            let index = self.op_count;
            self.captured.push((index, SimDisk(Rc::new(RefCell::new(image)))));
        }
    }

    /// The state a power cut right now would leave, as a fresh disk state.
    fn image(&mut self, torn: bool) -> State {
        let seed = self.rng.u64(..);
        let mut out = State::new(seed);
        out.last_inode = self.last_inode;
        out.dirs = self.dirs.clone();
        out.durable_names = self.durable_names.clone();
        out.live_names = self.durable_names.clone();
        let reachable: BTreeSet<InodeId> = self.durable_names.values().copied().collect();
        // Iterate in inode order so the RNG draws, and hence torn images, follow from the seed.
        for id in reachable {
            let inode = self.inodes.get(&id).expect("durable names only point at existing inodes");
            let bytes = inode.image(torn, &mut self.rng);
            out.inodes.insert(id, Inode { live: bytes.clone(), durable: bytes, pending: Vec::new() });
        }
        out
    }

    fn inode_of(&self, op: &'static str, path: &Path) -> IoResult<InodeId> {
        self.live_names.get(path).copied().ok_or_else(|| not_found(op, path))
    }

    fn inode_mut(&mut self, id: InodeId) -> &mut Inode {
        self.inodes.get_mut(&id).expect("open files and names only point at existing inodes")
    }

    /// A new name must live in an existing directory (paths relative to cwd have none to check).
    fn check_parent(&self, op: &'static str, path: &Path) -> IoResult<()> {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() && !self.dirs.contains(parent) => Err(not_found(op, parent)),
            _ => Ok(()),
        }
    }

    /// Checks that `path` is free and in an existing directory, so a new file may take it.
    fn check_new_name(&self, op: &'static str, path: &Path) -> IoResult<()> {
        if self.live_names.contains_key(path) || self.dirs.contains(path) {
            return Err(err(op, path, ErrorKind::AlreadyExists));
        }
        self.check_parent(op, path)
    }

    /// Creates an empty file under `path` in the live namespace.
    fn create_file(&mut self, path: &Path) -> InodeId {
        self.last_inode += 1;
        self.inodes.insert(self.last_inode, Inode::default());
        self.live_names.insert(path.to_path_buf(), self.last_inode);
        self.last_inode
    }
}

fn err(op: &'static str, path: &Path, kind: ErrorKind) -> IoError {
    IoError::new(op, path, kind.into())
}

fn not_found(op: &'static str, path: &Path) -> IoError {
    err(op, path, ErrorKind::NotFound)
}

fn to_usize(v: u64) -> usize {
    usize::try_from(v).expect("simulated files fit in memory")
}

/// Asserts the seam's alignment rule for a read or write.
fn assert_aligned(offset: u64, len: usize) {
    assert!(offset.is_multiple_of(ALIGN as u64), "offset {offset} is not a multiple of ALIGN");
    assert!(len.is_multiple_of(ALIGN), "length {len} is not a multiple of ALIGN");
}

/// An in-memory disk that keeps live and durable state apart, produces power-cut images and
/// injects faults. Clones share the same disk.
#[derive(Clone)]
pub struct SimDisk(Rc<RefCell<State>>);

impl SimDisk {
    /// An empty disk whose random choices (torn writes) all follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Rc::new(RefCell::new(State::new(seed))))
    }

    /// A new, independent disk holding what a power cut at this instant would leave: the
    /// durable names, each with its file's durable bytes; with `torn`, each sector written since
    /// that file's last sync is independently applied or not. The image has no pending writes,
    /// locks or faults, and its op counter starts at zero.
    pub fn crash_image(&self, torn: bool) -> SimDisk {
        SimDisk(Rc::new(RefCell::new(self.0.borrow_mut().image(torn))))
    }

    /// While on, records `crash_image(true)` after every successful mutating op.
    pub fn set_capture(&self, on: bool) {
        self.0.borrow_mut().capture = on;
    }

    /// Takes the recorded images, each with the op index (see [`SimDisk::op_count`]) of the op
    /// after which it was taken.
    pub fn take_captured(&self) -> Vec<(u64, SimDisk)> {
        std::mem::take(&mut self.0.borrow_mut().captured)
    }

    /// Number of I/O ops (reads and failed ops included) since this disk was created.
    pub fn op_count(&self) -> u64 {
        self.0.borrow().op_count
    }

    /// Makes the `n`-th next I/O op (counting from 1) fail with "injected fault", without effect.
    pub fn fail_op_after(&self, n: u64) {
        assert!(n >= 1, "fail_op_after counts from 1");
        self.0.borrow_mut().fail_countdown = Some(n);
    }

    /// Makes the next file `sync` fail; its bytes do not become durable.
    pub fn fail_next_sync(&self) {
        self.0.borrow_mut().fail_next_sync = true;
    }

    /// Makes the next `read_at` fail with `UnexpectedEof`.
    pub fn short_read_next(&self) {
        self.0.borrow_mut().short_read_next = true;
    }

    /// Flips `bit` of the byte at `byte_offset` of the file at `path`, in its live and durable
    /// bytes and in any pending write covering it (media corruption). Panics if the file or the
    /// byte does not exist in both.
    pub fn flip_bit(&self, path: &Path, byte_offset: u64, bit: u8) {
        assert!(bit < 8, "bit {bit} out of range");
        let mut st = self.0.borrow_mut();
        let id = *st.live_names.get(path).expect("flip_bit: no such file");
        let inode = st.inode_mut(id);
        let at = to_usize(byte_offset);
        let mask = 1u8 << bit;
        assert!(at < inode.live.len() && at < inode.durable.len(), "flip_bit: offset out of range");
        inode.live[at] ^= mask;
        inode.durable[at] ^= mask;
        for sector in &mut inode.pending {
            let start = to_usize(sector.offset);
            if (start..start + sector.bytes.len()).contains(&at) {
                sector.bytes[at - start] ^= mask;
            }
        }
    }

    /// The live length of the file at `path`, if it exists.
    pub fn file_len(&self, path: &Path) -> Option<u64> {
        let st = self.0.borrow();
        let id = st.live_names.get(path)?;
        Some(st.inodes[id].live.len() as u64)
    }

    /// The live bytes of the file at `path`, if it exists.
    pub fn read_live(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.0.borrow();
        let id = st.live_names.get(path)?;
        Some(st.inodes[id].live.clone())
    }

    /// Every file path in the live namespace, sorted.
    pub fn live_paths(&self) -> Vec<PathBuf> {
        self.0.borrow().live_names.keys().cloned().collect()
    }
}

impl std::fmt::Debug for SimDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.0.borrow();
        f.debug_struct("SimDisk")
            .field("files", &st.live_names.len())
            .field("op_count", &st.op_count)
            .finish_non_exhaustive()
    }
}

/// Releases a simulated lock when dropped.
struct SimLockGuard {
    state: Weak<RefCell<State>>,
    path: PathBuf,
}

impl Drop for SimLockGuard {
    fn drop(&mut self) {
        // The disk may be gone already; then so is its lock table.
        if let Some(state) = self.state.upgrade() {
            state.borrow_mut().locks.remove(&self.path);
        }
    }
}

impl Disk for SimDisk {
    type File = SimFile;

    async fn open(&self, path: &Path, mode: OpenMode) -> IoResult<SimFile> {
        let mut st = self.0.borrow_mut();
        st.begin_op("open", path)?;
        let inode = match mode {
            OpenMode::Existing => st.inode_of("open", path)?,
            OpenMode::CreateNew => {
                st.check_new_name("open", path)?;
                let id = st.create_file(path);
                st.after_mutation();
                id
            }
        };
        Ok(SimFile { disk: self.clone(), inode, path: path.to_path_buf() })
    }

    async fn create_dir_all(&self, path: &Path) -> IoResult<()> {
        let mut st = self.0.borrow_mut();
        st.begin_op("create_dir_all", path)?;
        for dir in path.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            if st.live_names.contains_key(dir) {
                return Err(err("create_dir_all", dir, ErrorKind::AlreadyExists));
            }
            st.dirs.insert(dir.to_path_buf());
        }
        Ok(())
    }

    async fn list(&self, dir: &Path) -> IoResult<Vec<String>> {
        let mut st = self.0.borrow_mut();
        st.begin_op("list", dir)?;
        if !st.dirs.contains(dir) {
            return Err(not_found("list", dir));
        }
        // BTreeMap order is path order, which for one directory is file-name order.
        Ok(st
            .live_names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    async fn exists(&self, path: &Path) -> IoResult<bool> {
        let mut st = self.0.borrow_mut();
        st.begin_op("exists", path)?;
        Ok(st.live_names.contains_key(path) || st.dirs.contains(path))
    }

    async fn remove(&self, path: &Path) -> IoResult<()> {
        let mut st = self.0.borrow_mut();
        st.begin_op("remove", path)?;
        st.live_names.remove(path).ok_or_else(|| not_found("remove", path))?;
        st.after_mutation();
        Ok(())
    }

    async fn rename(&self, from: &Path, to: &Path) -> IoResult<()> {
        let mut st = self.0.borrow_mut();
        st.begin_op("rename", from)?;
        let id = st.inode_of("rename", from)?;
        st.check_parent("rename", to)?;
        st.live_names.remove(from);
        st.live_names.insert(to.to_path_buf(), id);
        st.after_mutation();
        Ok(())
    }

    async fn hard_link(&self, from: &Path, to: &Path) -> IoResult<()> {
        let mut st = self.0.borrow_mut();
        st.begin_op("hard_link", from)?;
        let id = st.inode_of("hard_link", from)?;
        st.check_new_name("hard_link", to)?;
        st.live_names.insert(to.to_path_buf(), id);
        st.after_mutation();
        Ok(())
    }

    async fn sync_dir(&self, dir: &Path) -> IoResult<()> {
        let mut st = self.0.borrow_mut();
        st.begin_op("sync_dir", dir)?;
        if !st.dirs.contains(dir) {
            return Err(not_found("sync_dir", dir));
        }
        // Only this directory's own entries become durable; subdirectories need their own sync.
        st.durable_names.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, InodeId)> =
            st.live_names.iter().filter(|(p, _)| p.parent() == Some(dir)).map(|(p, id)| (p.clone(), *id)).collect();
        st.durable_names.extend(entries);
        st.after_mutation();
        Ok(())
    }

    async fn lock(&self, path: &Path) -> IoResult<DirLock> {
        let mut st = self.0.borrow_mut();
        st.begin_op("lock", path)?;
        if st.locks.contains(path) {
            return Err(err("lock", path, ErrorKind::WouldBlock));
        }
        // Like the real backend, the lock file is created if missing. Not captured: a new name
        // is not durable before sync_dir, so the crash image is unchanged.
        if !st.live_names.contains_key(path) {
            st.check_new_name("lock", path)?;
            st.create_file(path);
        }
        st.locks.insert(path.to_path_buf());
        let guard = SimLockGuard { state: Rc::downgrade(&self.0), path: path.to_path_buf() };
        Ok(DirLock::new(Box::new(guard)))
    }
}

/// A file open on a [`SimDisk`]. It keeps its inode, so it still works after a rename or remove.
#[derive(Debug)]
pub struct SimFile {
    disk: SimDisk,
    inode: InodeId,
    path: PathBuf,
}

impl DiskFile for SimFile {
    async fn read_at(&self, offset: u64, len: usize) -> IoResult<IoBuf> {
        assert_aligned(offset, len);
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("read", &self.path)?;
        if std::mem::take(&mut st.short_read_next) {
            return Err(err("read", &self.path, ErrorKind::UnexpectedEof));
        }
        let live = &st.inode_mut(self.inode).live;
        let mut buf = IoBuf::zeroed(len);
        let start = to_usize(offset).min(live.len());
        let end = (start + len).min(live.len());
        // Bytes past the end of the file stay zero, as the seam promises.
        buf.as_mut_slice()[..end - start].copy_from_slice(&live[start..end]);
        Ok(buf)
    }

    async fn write_at(&self, offset: u64, buf: IoBuf) -> IoResult<()> {
        assert_aligned(offset, buf.len());
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("write", &self.path)?;
        let inode = st.inode_mut(self.inode);
        let start = to_usize(offset);
        let end = start + buf.len();
        if inode.live.len() < end {
            inode.live.resize(end, 0);
        }
        inode.live[start..end].copy_from_slice(buf.as_slice());
        for (i, chunk) in buf.as_slice().chunks(SECTOR).enumerate() {
            let offset = offset + (i * SECTOR) as u64;
            inode.pending.push(PendingSector { offset, bytes: chunk.to_vec() });
        }
        st.after_mutation();
        Ok(())
    }

    async fn sync(&self) -> IoResult<()> {
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("sync", &self.path)?;
        if std::mem::take(&mut st.fail_next_sync) {
            let fault = std::io::Error::other("injected sync fault");
            return Err(IoError::new("sync", &self.path, fault));
        }
        let inode = st.inode_mut(self.inode);
        inode.durable = inode.live.clone();
        inode.pending.clear();
        st.after_mutation();
        Ok(())
    }

    async fn preallocate(&self, len: u64) -> IoResult<()> {
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("preallocate", &self.path)?;
        let inode = st.inode_mut(self.inode);
        let len = to_usize(len);
        if inode.live.len() < len {
            inode.live.resize(len, 0);
        }
        st.after_mutation();
        Ok(())
    }

    async fn truncate(&self, len: u64) -> IoResult<()> {
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("truncate", &self.path)?;
        st.inode_mut(self.inode).live.resize(to_usize(len), 0);
        st.after_mutation();
        Ok(())
    }

    async fn size(&self) -> IoResult<u64> {
        let mut st = self.disk.0.borrow_mut();
        st.begin_op("size", &self.path)?;
        Ok(st.inode_mut(self.inode).live.len() as u64)
    }

    async fn close(self) -> IoResult<()> {
        self.disk.0.borrow_mut().begin_op("close", &self.path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// SimDisk futures never wait, so one poll finishes them.
    fn run<F: Future>(fut: F) -> F::Output {
        let mut cx = Context::from_waker(Waker::noop());
        match pin!(fut).poll(&mut cx) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("SimDisk future did not complete immediately"),
        }
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    fn block(fill: u8, len: usize) -> IoBuf {
        IoBuf::from_padded(vec![fill; len])
    }

    /// A disk with directory /d and file /d/f created, written with `fill` and made durable.
    fn disk_with_durable_file(seed: u64, fill: u8) -> (SimDisk, SimFile) {
        let disk = SimDisk::new(seed);
        run(disk.create_dir_all(&p("/d"))).unwrap();
        let f = run(disk.open(&p("/d/f"), OpenMode::CreateNew)).unwrap();
        run(f.write_at(0, block(fill, 2 * ALIGN))).unwrap();
        run(f.sync()).unwrap();
        run(disk.sync_dir(&p("/d"))).unwrap();
        (disk, f)
    }

    #[test]
    fn unsynced_write_vanishes_and_synced_bytes_survive() {
        let (disk, f) = disk_with_durable_file(1, 0xAA);
        run(f.write_at(ALIGN as u64, block(0xBB, ALIGN))).unwrap();
        run(f.write_at(2 * ALIGN as u64, block(0xCC, ALIGN))).unwrap();
        assert_eq!(disk.file_len(&p("/d/f")), Some(3 * ALIGN as u64));
        let image = disk.crash_image(false);
        assert_eq!(image.read_live(&p("/d/f")), Some(vec![0xAA; 2 * ALIGN]));
        // The image is a working disk of its own.
        let g = run(image.open(&p("/d/f"), OpenMode::Existing)).unwrap();
        assert_eq!(run(g.read_at(0, ALIGN)).unwrap().as_slice(), &[0xAA; ALIGN][..]);
        assert_eq!(image.op_count(), 2, "counted from zero: the open and the read");
        // After a sync, the new bytes survive too.
        run(f.sync()).unwrap();
        let image = disk.crash_image(false);
        assert_eq!(image.read_live(&p("/d/f")), disk.read_live(&p("/d/f")));
    }

    #[test]
    fn read_past_eof_zero_fills_and_size_changes() {
        let (disk, f) = disk_with_durable_file(2, 0x11);
        let buf = run(f.read_at(ALIGN as u64, 3 * ALIGN)).unwrap();
        assert_eq!(&buf.as_slice()[..ALIGN], &[0x11; ALIGN][..]);
        assert!(buf.as_slice()[ALIGN..].iter().all(|&b| b == 0));
        run(f.preallocate(8 * ALIGN as u64)).unwrap();
        assert_eq!(run(f.size()).unwrap(), 8 * ALIGN as u64);
        run(f.preallocate(ALIGN as u64)).unwrap();
        assert_eq!(run(f.size()).unwrap(), 8 * ALIGN as u64);
        assert_eq!(disk.crash_image(false).file_len(&p("/d/f")), Some(2 * ALIGN as u64));
        run(f.truncate(ALIGN as u64)).unwrap();
        assert_eq!(run(f.size()).unwrap(), ALIGN as u64);
        run(f.sync()).unwrap();
        assert_eq!(disk.crash_image(false).file_len(&p("/d/f")), Some(ALIGN as u64));
    }

    #[test]
    #[should_panic(expected = "not a multiple of ALIGN")]
    fn unaligned_write_panics() {
        let (_disk, f) = disk_with_durable_file(3, 0);
        let _ = run(f.write_at(512, block(1, ALIGN)));
    }

    #[test]
    fn namespace_changes_need_sync_dir() {
        let (disk, _f) = disk_with_durable_file(4, 0x22);
        let g = run(disk.open(&p("/d/new"), OpenMode::CreateNew)).unwrap();
        run(g.write_at(0, block(1, ALIGN))).unwrap();
        run(g.sync()).unwrap();
        run(disk.rename(&p("/d/f"), &p("/d/renamed"))).unwrap();
        assert_eq!(run(disk.list(&p("/d"))).unwrap(), vec!["new", "renamed"]);
        // Neither the creation nor the rename is durable yet.
        let image = disk.crash_image(false);
        assert_eq!(image.live_paths(), vec![p("/d/f")]);
        assert_eq!(image.read_live(&p("/d/f")), Some(vec![0x22; 2 * ALIGN]));
        run(disk.sync_dir(&p("/d"))).unwrap();
        let image = disk.crash_image(false);
        assert_eq!(image.live_paths(), vec![p("/d/new"), p("/d/renamed")]);
        assert_eq!(run(image.list(&p("/d"))).unwrap(), vec!["new", "renamed"]);
        // Removal and links follow the same rule.
        run(disk.hard_link(&p("/d/new"), &p("/d/link"))).unwrap();
        run(disk.remove(&p("/d/new"))).unwrap();
        assert_eq!(disk.crash_image(false).live_paths(), vec![p("/d/new"), p("/d/renamed")]);
        run(disk.sync_dir(&p("/d"))).unwrap();
        let image = disk.crash_image(false);
        assert_eq!(image.live_paths(), vec![p("/d/link"), p("/d/renamed")]);
        assert_eq!(image.read_live(&p("/d/link")), Some(vec![1; ALIGN]));
    }

    #[test]
    fn namespace_errors() {
        let (disk, _f) = disk_with_durable_file(5, 0);
        let err = run(disk.open(&p("/d/f"), OpenMode::CreateNew)).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::AlreadyExists);
        let err = run(disk.open(&p("/d/missing"), OpenMode::Existing)).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::NotFound);
        let err = run(disk.open(&p("/nodir/x"), OpenMode::CreateNew)).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::NotFound);
        assert!(run(disk.exists(&p("/d/f"))).unwrap());
        assert!(!run(disk.exists(&p("/d/missing"))).unwrap());
    }

    /// Writes a distinct pattern per sector so tearing is visible.
    fn torn_setup(seed: u64) -> SimDisk {
        let (disk, f) = disk_with_durable_file(seed, 0x00);
        let bytes: Vec<u8> = (0..3 * ALIGN).map(|i| (i / SECTOR) as u8 + 1).collect();
        run(f.write_at(0, IoBuf::from_padded(bytes))).unwrap();
        disk
    }

    #[test]
    fn torn_image_tears_whole_sectors_reproducibly() {
        let disk = torn_setup(42);
        let written = disk.read_live(&p("/d/f")).unwrap();
        let image = disk.crash_image(true).read_live(&p("/d/f")).unwrap();
        assert!(image.len() == 2 * ALIGN || image.len() == 3 * ALIGN);
        let mut applied = 0;
        for (i, sector) in image.chunks(SECTOR).enumerate() {
            let new = &written[i * SECTOR..(i + 1) * SECTOR];
            if sector == new {
                applied += 1;
            } else {
                assert!(sector.iter().all(|&b| b == 0), "sector {i} is neither old nor new");
            }
        }
        assert!(applied > 0 && applied < 3 * ALIGN / SECTOR, "24 coin flips all landed alike");
        // Same seed, same ops: the same torn image.
        let again = torn_setup(42).crash_image(true).read_live(&p("/d/f")).unwrap();
        assert_eq!(image, again);
        let other = torn_setup(43).crash_image(true).read_live(&p("/d/f")).unwrap();
        assert_ne!(image, other);
        // A torn image after sync has nothing left to tear.
        run(async { disk.open(&p("/d/f"), OpenMode::Existing).await?.sync().await }).unwrap();
        assert_eq!(disk.crash_image(true).read_live(&p("/d/f")), Some(written));
    }

    #[test]
    fn fail_op_after_fires_once_without_effect() {
        let (disk, f) = disk_with_durable_file(6, 0x33);
        disk.fail_op_after(2);
        run(f.read_at(0, ALIGN)).unwrap();
        let err = run(f.write_at(0, block(0x44, ALIGN))).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::Other);
        assert_eq!(err.source.to_string(), "injected fault");
        assert_eq!(disk.read_live(&p("/d/f")), Some(vec![0x33; 2 * ALIGN]));
        run(f.write_at(0, block(0x44, ALIGN))).unwrap();
        run(f.write_at(0, block(0x44, ALIGN))).unwrap();
    }

    #[test]
    fn fail_next_sync_fires_once_and_keeps_bytes_volatile() {
        let (disk, f) = disk_with_durable_file(7, 0x55);
        run(f.write_at(0, block(0x66, ALIGN))).unwrap();
        disk.fail_next_sync();
        let err = run(f.sync()).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::Other);
        assert_eq!(disk.crash_image(false).read_live(&p("/d/f")), Some(vec![0x55; 2 * ALIGN]));
        run(f.sync()).unwrap();
        let image = disk.crash_image(false).read_live(&p("/d/f")).unwrap();
        assert_eq!(&image[..ALIGN], &[0x66; ALIGN][..]);
    }

    #[test]
    fn short_read_fires_once() {
        let (disk, f) = disk_with_durable_file(8, 0x77);
        disk.short_read_next();
        let err = run(f.read_at(0, ALIGN)).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(run(f.read_at(0, ALIGN)).unwrap().as_slice(), &[0x77; ALIGN][..]);
    }

    #[test]
    fn flip_bit_corrupts_live_and_durable() {
        let (disk, f) = disk_with_durable_file(9, 0);
        disk.flip_bit(&p("/d/f"), 5000, 3);
        assert_eq!(run(f.read_at(ALIGN as u64, ALIGN)).unwrap().as_slice()[5000 - ALIGN], 8);
        assert_eq!(disk.crash_image(false).read_live(&p("/d/f")).unwrap()[5000], 8);
    }

    #[test]
    #[should_panic(expected = "out of range")]
    fn flip_bit_out_of_range_panics() {
        let (disk, _f) = disk_with_durable_file(10, 0);
        disk.flip_bit(&p("/d/f"), 2 * ALIGN as u64, 0);
    }

    #[test]
    fn lock_conflicts_until_guard_drops() {
        let disk = SimDisk::new(11);
        run(disk.create_dir_all(&p("/d"))).unwrap();
        let guard = run(disk.lock(&p("/d/LOCK"))).unwrap();
        let err = run(disk.lock(&p("/d/LOCK"))).unwrap_err();
        assert_eq!(err.source.kind(), ErrorKind::WouldBlock);
        // A crash image carries no locks.
        run(disk.sync_dir(&p("/d"))).unwrap();
        let image = disk.crash_image(false);
        drop(run(image.lock(&p("/d/LOCK"))).unwrap());
        drop(guard);
        drop(run(disk.lock(&p("/d/LOCK"))).unwrap());
    }

    #[test]
    fn capture_records_one_image_per_mutating_op() {
        let disk = SimDisk::new(12);
        run(disk.create_dir_all(&p("/d"))).unwrap();
        disk.set_capture(true);
        let f = run(disk.open(&p("/d/f"), OpenMode::CreateNew)).unwrap(); // op 2
        run(f.write_at(0, block(1, ALIGN))).unwrap(); // op 3
        run(f.read_at(0, ALIGN)).unwrap(); // op 4: not mutating
        run(f.sync()).unwrap(); // op 5
        run(disk.sync_dir(&p("/d"))).unwrap(); // op 6
        run(f.preallocate(2 * ALIGN as u64)).unwrap(); // op 7
        run(f.truncate(ALIGN as u64)).unwrap(); // op 8
        run(disk.hard_link(&p("/d/f"), &p("/d/g"))).unwrap(); // op 9
        run(disk.rename(&p("/d/g"), &p("/d/h"))).unwrap(); // op 10
        run(disk.remove(&p("/d/h"))).unwrap(); // op 11
        assert_eq!(disk.op_count(), 11);
        disk.set_capture(false);
        run(f.write_at(0, block(2, ALIGN))).unwrap();
        let images = disk.take_captured();
        let indices: Vec<u64> = images.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, vec![2, 3, 5, 6, 7, 8, 9, 10, 11]);
        // Before sync_dir the file is absent; after it, present with its synced bytes.
        assert!(images[2].1.live_paths().is_empty());
        assert_eq!(images[3].1.read_live(&p("/d/f")), Some(vec![1; ALIGN]));
        assert!(disk.take_captured().is_empty());
    }
}
