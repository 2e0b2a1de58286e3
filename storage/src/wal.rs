//! The write-ahead log one core's partitions share, with group commit.
//!
//! A writer [`Wal::reserve`]s room, [`Wal::append`]s a record (partition id, LSN, entries) to the
//! pending batch and then [`Wal::commit`]s: a waiter that finds no commit running leads one: it
//! writes every pending record as one batch with one fdatasync, marks it durable and steps down.
//! A waiter whose record came in behind that batch then leads the next one, so a leader is
//! acknowledged once its own batch is durable, never after everything queued behind it. Nobody
//! is told "durable" before their bytes are. A failed write or sync poisons the WAL: it is never
//! retried.
//!
//! What is pending (appended, not yet written) plus what is being written is bounded by
//! [`WalOptions::pending_limit_bytes`]: a writer over it waits in [`Wal::reserve`] (leading a
//! commit if none runs), so no batch outgrows what the log format takes. Async writes are made
//! durable by whoever commits next: a sync writer, a writer past
//! [`WalOptions::async_commit_bytes`], or the owner's periodic committer, which waits in
//! [`Wal::wait_for_pending`] for the first record after a quiet spell.
//!
//! Files are `NNNNNNNNNNNNNNNN.wal`, preallocated; the WAL rotates to a new file when one fills
//! and on every recovery, and deletes a file once no partition needs any of its records. It knows
//! partitions only by id and hands recovered records back per partition; it knows nothing of
//! memtables or segments.

use crate::codec::{self, Decoder, Encoder, EntryLayout};
use crate::error::{Error, Result};
use crate::ids::{Lsn, PartitionId};
use crate::io::{DirLock, Disk, DiskFile, OpenMode};
use crate::log::{self, LogHeader, LogKind, LogRead, LogWriter};
use crate::record::{Entry, EntryRef};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// How the WAL behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// Size a WAL file is preallocated to and rotated at, bytes. Default 64 MiB.
    pub file_bytes: u64,
    /// Pending bytes at which an async writer commits on the spot, bounding what an async
    /// write can have queued. Default 1 MiB.
    pub async_commit_bytes: usize,
    /// Most bytes pending plus being written; a writer past it waits in [`Wal::reserve`].
    /// Default 64 MiB. A batch is at most this (a lone record over it is written alone), so it
    /// must stay far below the log format's 4 GiB batch limit: [`WalOptions::validate`].
    pub pending_limit_bytes: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self { file_bytes: 64 << 20, async_commit_bytes: 1 << 20, pending_limit_bytes: 64 << 20 }
    }
}

/// Largest pending limit [`WalOptions::validate`] accepts: a batch must fit the log's u32 length
/// with room for a lone oversized record.
pub const MAX_PENDING_LIMIT_BYTES: usize = 1 << 30;

impl WalOptions {
    /// Checks the options against each other and the format, naming the one that is off.
    pub fn validate(&self) -> std::result::Result<(), &'static str> {
        if self.pending_limit_bytes == 0 || self.pending_limit_bytes > MAX_PENDING_LIMIT_BYTES {
            return Err("pending_limit_bytes must be between 1 and 1 GiB");
        }
        if self.async_commit_bytes == 0 || self.async_commit_bytes > self.pending_limit_bytes {
            return Err("async_commit_bytes must be between 1 and pending_limit_bytes");
        }
        if self.file_bytes < self.pending_limit_bytes as u64 {
            return Err("file_bytes must be at least pending_limit_bytes, so a full batch fits one file");
        }
        Ok(())
    }
}

/// One recovered record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// Its position.
    pub lsn: Lsn,
    /// The entries written together.
    pub entries: Vec<Entry>,
}

/// Records recovered from the WAL, by partition, in LSN order.
#[derive(Debug, Default)]
pub struct RecoveredWal {
    /// Records per partition.
    pub records: BTreeMap<PartitionId, Vec<WalRecord>>,
    /// True if a torn tail was dropped from the last file.
    pub torn_tail: bool,
}

#[derive(Debug)]
struct WalFile {
    number: u64,
    path: PathBuf,
    last_lsn: Option<Lsn>,
}

struct State<F: DiskFile> {
    writer: Option<LogWriter<F>>,
    files: Vec<WalFile>,
    next_lsn: u64,
    pending: Encoder,
    pending_last: Option<Lsn>,
    /// Bytes of the batch being written, if a commit runs (counted against the pending limit).
    writing_bytes: usize,
    committing: bool,
    durable: Lsn,
    poisoned: Option<&'static str>,
    needs: BTreeMap<PartitionId, Lsn>,
    /// Batches written since creation or recovery (for stats and tests).
    batches_written: u64,
    /// The most bytes ever pending plus being written.
    pending_peak_bytes: usize,
    /// Batch bytes written since creation or recovery.
    bytes_written: u64,
    /// Time spent writing and syncing batches, microseconds.
    commit_micros: u64,
    /// When the first record of the pending batch was appended.
    pending_since: Option<std::time::Instant>,
    /// When the first record of the batch being written (or that failed) was appended.
    writing_since: Option<std::time::Instant>,
}

/// The shared write-ahead log of one core.
pub struct Wal<D: Disk> {
    disk: D,
    dir: PathBuf,
    options: WalOptions,
    state: RefCell<State<D::File>>,
    /// Notified whenever a commit ends (durable, or poisoned): waiters re-check.
    commit_ended: event_listener::Event,
    /// Notified when a record arrives in an empty pending batch.
    appended: event_listener::Event,
    _lock: DirLock,
}

impl<D: Disk> std::fmt::Debug for Wal<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal").field("dir", &self.dir).finish()
    }
}

fn file_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:016}.wal"))
}

fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    (digits.len() == 16).then(|| digits.parse().ok()).flatten()
}

/// Takes `dir/LOCK` for this process, or fails with [`Error::Locked`] if another holds it. The
/// WAL and each partition lock their directories the same way.
pub(crate) async fn lock_dir<D: Disk>(disk: &D, dir: &Path) -> Result<DirLock> {
    let path = dir.join("LOCK");
    disk.lock(&path).await.map_err(|e| match e.source.kind() {
        std::io::ErrorKind::WouldBlock => Error::Locked { path },
        _ => e.into(),
    })
}

impl<D: Disk> Wal<D> {
    /// Creates an empty WAL in `dir`.
    pub async fn create(disk: D, dir: &Path, options: WalOptions) -> Result<Rc<Self>> {
        disk.create_dir_all(dir).await?;
        let lock = lock_dir(&disk, dir).await?;
        if disk.list(dir).await?.iter().any(|n| parse_file_name(n).is_some()) {
            return Err(Error::AlreadyExists { path: dir.to_path_buf() });
        }
        Self::start(disk, dir, options, lock, Vec::new(), 1, 1).await
    }

    /// Recovers the WAL in `dir`: reads every file, hands records back by partition, and starts
    /// a new file for what comes next.
    pub async fn recover(disk: D, dir: &Path, options: WalOptions) -> Result<(Rc<Self>, RecoveredWal)> {
        let lock = lock_dir(&disk, dir).await?;
        let mut numbers: Vec<u64> = disk.list(dir).await?.iter().filter_map(|n| parse_file_name(n)).collect();
        numbers.sort_unstable();
        let mut recovered = RecoveredWal::default();
        let mut files = Vec::new();
        let mut next_seq = 1;
        let mut next_lsn = 1;
        for (i, &number) in numbers.iter().enumerate() {
            let path = file_path(dir, number);
            let file = disk.open(&path, OpenMode::Existing).await?;
            let read = log::read_log(&file, &path, LogKind::Wal).await;
            // What is read here is what the next file continues from, so make it durable: after
            // a failed fsync and a restart without a power cut, a file can hold batches that
            // read back but never became durable, and a later power cut would take them from
            // under the next file's sequence numbers.
            let synced = match &read {
                Ok(LogRead::Log(_)) => file.sync().await,
                _ => Ok(()),
            };
            file.close().await?;
            synced?;
            let log = match read? {
                LogRead::Log(log) => log,
                LogRead::Unborn if i + 1 == numbers.len() => {
                    disk.remove(&path).await?;
                    continue;
                }
                LogRead::Unborn => {
                    return Err(Error::Corrupt {
                        file: path,
                        offset: 0,
                        reason: "a WAL file before the last has no header",
                    });
                }
            };
            // A torn tail in a file before the last is one an earlier recovery dropped: it never
            // appends to a recovered file, and starts the next file at the seq after the last
            // valid batch. Had the tail been durable batches, the next file would start past
            // them and the continuity check below would refuse the gap.
            if i + 1 == numbers.len() {
                recovered.torn_tail = log.torn_tail;
            }
            if !files.is_empty() && log.header.first_seq != next_seq {
                return Err(Error::Corrupt { file: path, offset: 0, reason: "WAL files do not continue each other" });
            }
            next_seq = log.header.first_seq + log.batches.len() as u64;
            let mut last_lsn = None;
            for (_, payload) in &log.batches {
                for (partition, record) in decode_batch(payload, &path, log.header.format_version)? {
                    if record.lsn.0 < next_lsn {
                        return Err(Error::Corrupt {
                            file: path,
                            offset: 0,
                            reason: "WAL record positions go backwards",
                        });
                    }
                    next_lsn = record.lsn.0 + 1;
                    last_lsn = Some(record.lsn);
                    recovered.records.entry(partition).or_default().push(record);
                }
            }
            files.push(WalFile { number, path, last_lsn });
        }
        let next_number = numbers.last().map_or(1, |n| n + 1);
        let wal = Self::start(disk, dir, options, lock, files, next_number, next_seq).await?;
        {
            let mut st = wal.state.borrow_mut();
            st.next_lsn = next_lsn;
            st.durable = Lsn(next_lsn - 1);
            // Until each engine reports, every recovered record is needed.
            for (partition, records) in &recovered.records {
                st.needs.insert(*partition, records[0].lsn);
            }
        }
        Ok((wal, recovered))
    }

    async fn start(
        disk: D,
        dir: &Path,
        options: WalOptions,
        lock: DirLock,
        files: Vec<WalFile>,
        number: u64,
        first_seq: u64,
    ) -> Result<Rc<Self>> {
        options.validate().map_err(Error::InvalidArgument)?;
        let writer = Self::new_file(&disk, dir, number, first_seq, options.file_bytes).await?;
        let mut files = files;
        files.push(WalFile { number, path: writer.path().to_path_buf(), last_lsn: None });
        Ok(Rc::new(Wal {
            disk,
            dir: dir.to_path_buf(),
            options,
            state: RefCell::new(State {
                writer: Some(writer),
                files,
                next_lsn: 1,
                pending: Encoder::default(),
                pending_last: None,
                writing_bytes: 0,
                committing: false,
                durable: Lsn(0),
                poisoned: None,
                needs: BTreeMap::new(),
                batches_written: 0,
                pending_peak_bytes: 0,
                bytes_written: 0,
                commit_micros: 0,
                pending_since: None,
                writing_since: None,
            }),
            commit_ended: event_listener::Event::new(),
            appended: event_listener::Event::new(),
            _lock: lock,
        }))
    }

    async fn new_file(disk: &D, dir: &Path, number: u64, first_seq: u64, bytes: u64) -> Result<LogWriter<D::File>> {
        let path = file_path(dir, number);
        let file = disk.open(&path, OpenMode::CreateNew).await?;
        let header = LogHeader {
            format_version: log::FORMAT_VERSION,
            kind: LogKind::Wal,
            file_number: number,
            salt: fastrand::u64(..),
            first_seq,
        };
        let writer = LogWriter::create(file, &path, header, bytes).await?;
        disk.sync_dir(dir).await?;
        Ok(writer)
    }

    /// Waits until a record of `bytes` encoded bytes fits under the pending limit, leading a
    /// commit if none runs. A record over the limit alone goes once nothing else is pending.
    /// Call [`Wal::append`] with no await in between, so the room is still there.
    pub async fn reserve(&self, bytes: usize) -> Result<()> {
        let limit = self.options.pending_limit_bytes;
        self.commit_until(|st| {
            let used = st.pending.bytes.len() + st.writing_bytes;
            used == 0 || used + record_len(bytes) <= limit
        })
        .await
    }

    /// Queues a record of `entries` for `partition` and returns its LSN. Nothing is written
    /// until a [`Wal::commit`]. Call [`Wal::reserve`] first to keep within the pending limit.
    pub fn append(&self, partition: PartitionId, entries: &[Entry]) -> Result<Lsn> {
        let mut st = self.state.borrow_mut();
        if let Some(op) = st.poisoned {
            return Err(Error::Poisoned { op });
        }
        let lsn = Lsn(st.next_lsn);
        st.next_lsn += 1;
        let was_empty = st.pending.bytes.is_empty();
        if st.pending_since.is_none() {
            st.pending_since = Some(std::time::Instant::now());
        }
        encode_record(&mut st.pending, partition, lsn, entries);
        st.pending_last = Some(lsn);
        let used = st.pending.bytes.len() + st.writing_bytes;
        st.pending_peak_bytes = st.pending_peak_bytes.max(used);
        drop(st);
        if was_empty {
            self.appended.notify(usize::MAX);
        }
        Ok(lsn)
    }

    /// Pending bytes not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.state.borrow().pending.bytes.len()
    }

    /// The most bytes ever pending plus being written at once.
    pub fn pending_peak_bytes(&self) -> usize {
        self.state.borrow().pending_peak_bytes
    }

    /// Batches written (each one write and one fdatasync).
    pub fn batches_written(&self) -> u64 {
        self.state.borrow().batches_written
    }

    /// Batch bytes written (the group commits' sizes, summed).
    pub fn bytes_written(&self) -> u64 {
        self.state.borrow().bytes_written
    }

    /// Time spent writing and fdatasyncing batches, microseconds.
    pub fn commit_micros(&self) -> u64 {
        self.state.borrow().commit_micros
    }

    /// How long the oldest record not yet durable has waited (zero when every record is): an
    /// async write's exposure to a crash right now.
    pub fn durability_lag(&self) -> std::time::Duration {
        let st = self.state.borrow();
        st.writing_since.or(st.pending_since).map_or(std::time::Duration::ZERO, |at| at.elapsed())
    }

    /// The failure that poisoned the WAL, if one did.
    pub fn poisoned(&self) -> Option<&'static str> {
        self.state.borrow().poisoned
    }

    /// The LSN everything up to which is durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.state.borrow().durable
    }

    /// Returns once something is pending (at once if something is). The owner's periodic
    /// committer waits here, so an idle WAL wakes nobody.
    pub async fn wait_for_pending(&self) {
        loop {
            let listener = self.appended.listen();
            if !self.state.borrow().pending.bytes.is_empty() {
                return;
            }
            listener.await;
        }
    }

    /// Waits until `lsn` is durable, leading one group commit whenever none is running.
    pub async fn commit(&self, lsn: Lsn) -> Result<()> {
        self.commit_until(|st| st.durable >= lsn).await
    }

    /// Waits until `done` holds (or the WAL is poisoned): while a commit runs, for it to end;
    /// while none runs, by leading one. Both callers wait only on what a commit changes: a
    /// record not yet durable, or bytes pending, are bytes a leader has to write.
    async fn commit_until(&self, done: impl Fn(&State<D::File>) -> bool) -> Result<()> {
        loop {
            let listener = {
                let st = self.state.borrow();
                if let Some(op) = st.poisoned {
                    return Err(Error::Poisoned { op });
                }
                if done(&st) {
                    return Ok(());
                }
                // Leading with nothing to write would make no progress and spin.
                assert!(
                    st.committing || !st.pending.bytes.is_empty(),
                    "a waiter with no commit running has bytes to write"
                );
                st.committing.then(|| self.commit_ended.listen())
            };
            match listener {
                Some(ended) => ended.await,
                None => self.lead_one_commit().await?,
            }
        }
    }

    /// For async writes: commits now if enough is pending, so queued bytes stay bounded.
    pub async fn commit_if_over_threshold(&self) -> Result<()> {
        let (over, last) = {
            let st = self.state.borrow();
            (st.pending.bytes.len() >= self.options.async_commit_bytes, st.pending_last)
        };
        match last {
            Some(lsn) if over => self.commit(lsn).await,
            _ => Ok(()),
        }
    }

    /// Makes everything appended so far durable.
    pub async fn sync(&self) -> Result<()> {
        let (last, poisoned) = {
            let st = self.state.borrow();
            (st.pending_last, st.poisoned)
        };
        // A failed commit took its records off the pending queue without making them durable:
        // with nothing pending, only the poison remembers them.
        if let Some(op) = poisoned {
            return Err(Error::Poisoned { op });
        }
        match last {
            Some(lsn) => self.commit(lsn).await,
            None => Ok(()),
        }
    }

    /// Writes what is pending now as one batch, then steps down and wakes every waiter; the
    /// caller must have seen no commit running.
    async fn lead_one_commit(&self) -> Result<()> {
        self.state.borrow_mut().committing = true;
        // If the leading writer's future is dropped mid-commit, a batch may be half written and
        // the log writer is gone with it: the guard poisons and releases every waiter.
        let mut guard = CommitGuard { wal: self, finished: false };
        let outcome = self.write_pending().await;
        guard.finished = true;
        self.end_commit(outcome.is_err().then_some("wal write"));
        outcome
    }

    fn end_commit(&self, failed: Option<&'static str>) {
        {
            let mut st = self.state.borrow_mut();
            st.committing = false;
            st.writing_bytes = 0;
            if let Some(op) = failed {
                st.poisoned.get_or_insert(op);
            }
        }
        self.commit_ended.notify(usize::MAX);
    }

    async fn write_pending(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let (payload, last, mut writer) = {
            let mut st = self.state.borrow_mut();
            let Some(last) = st.pending_last.take() else { return Ok(()) };
            let payload = std::mem::take(&mut st.pending.bytes);
            st.writing_since = st.pending_since.take();
            st.writing_bytes = payload.len();
            (payload, last, st.writer.take().expect("only the committer takes the writer"))
        };
        let rotated = writer.next_offset() + LogWriter::<D::File>::batch_len(payload.len()) > self.options.file_bytes;
        if rotated {
            // A failed rotation leaves no writer: `end_commit` poisons, so nobody asks for one.
            writer = self.rotate(writer).await?;
        }
        let written = writer.append(&payload).await;
        self.state.borrow_mut().writer = Some(writer);
        if let Err(e) = written {
            self.state.borrow_mut().poisoned = Some("wal sync");
            return Err(e);
        }
        self.mark_durable(last, payload.len(), started);
        if rotated {
            // Only now that the new file holds a durable batch may older files go.
            self.retire_unneeded().await?;
        }
        Ok(())
    }

    /// Records that everything up to `last` is durable, by a batch of `bytes` whose commit
    /// started at `started`.
    fn mark_durable(&self, last: Lsn, bytes: usize, started: std::time::Instant) {
        let mut st = self.state.borrow_mut();
        st.durable = last;
        st.batches_written += 1;
        st.bytes_written += bytes as u64;
        st.commit_micros += u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        st.writing_since = None;
        st.files.last_mut().expect("the current file is listed").last_lsn = Some(last);
    }

    async fn rotate(&self, old: LogWriter<D::File>) -> Result<LogWriter<D::File>> {
        let number = old.header().file_number + 1;
        let first_seq = old.next_seq();
        old.close().await?;
        let writer = Self::new_file(&self.disk, &self.dir, number, first_seq, self.options.file_bytes).await?;
        self.state.borrow_mut().files.push(WalFile { number, path: writer.path().to_path_buf(), last_lsn: None });
        Ok(writer)
    }

    /// Tells the WAL the oldest record `partition` still needs (`None`: nothing, everything it
    /// wrote is in durable segments). Files no partition needs are deleted by
    /// [`Wal::retire_unneeded`], which every rotation runs.
    pub fn set_needed(&self, partition: PartitionId, oldest: Option<Lsn>) {
        let mut st = self.state.borrow_mut();
        match oldest {
            Some(lsn) => st.needs.insert(partition, lsn),
            None => st.needs.remove(&partition),
        };
    }

    /// Makes every LSN handed out from now on greater than `lsn`. A recovering partition passes
    /// the position its manifest covers: records up to it can be in segments without being in
    /// any durable WAL batch (an async write flushed before its batch was written, or older
    /// files deleted by a rotation before the batch that caused it was durable), so the WAL's
    /// own files may end below it, and a record at or below it would be skipped by the next
    /// recovery as already flushed.
    pub fn advance_past(&self, lsn: Lsn) {
        let mut st = self.state.borrow_mut();
        st.next_lsn = st.next_lsn.max(lsn.0 + 1);
    }

    /// Deletes the WAL files that no partition needs any more (all before the current one whose
    /// records are below every partition's oldest need). Safe to call concurrently: each call
    /// takes its files off the list before its first await.
    pub async fn retire_unneeded(&self) -> Result<()> {
        let doomed: Vec<PathBuf> = {
            let mut st = self.state.borrow_mut();
            let floor = st.needs.values().min().copied().unwrap_or(Lsn(u64::MAX));
            let current = st.files.len() - 1;
            let mut doomed = Vec::new();
            let mut keep = Vec::new();
            for (i, f) in std::mem::take(&mut st.files).into_iter().enumerate() {
                // A file is needed while it holds a record at or past the floor; the files
                // before the first needed one go, in order, so the survivors stay contiguous.
                let unneeded = i < current && keep.is_empty() && f.last_lsn.is_none_or(|l| l < floor);
                if unneeded { doomed.push(f.path) } else { keep.push(f) }
            }
            st.files = keep;
            doomed
        };
        for path in &doomed {
            self.disk.remove(path).await?;
        }
        if !doomed.is_empty() {
            self.disk.sync_dir(&self.dir).await?;
        }
        Ok(())
    }

    /// Numbers of the WAL files kept.
    pub fn file_numbers(&self) -> Vec<u64> {
        self.state.borrow().files.iter().map(|f| f.number).collect()
    }
}

/// Poisons the WAL if a commit is abandoned half way (its future dropped).
struct CommitGuard<'a, D: Disk> {
    wal: &'a Wal<D>,
    finished: bool,
}

impl<D: Disk> Drop for CommitGuard<'_, D> {
    fn drop(&mut self) {
        if !self.finished {
            self.wal.end_commit(Some("wal commit abandoned"));
        }
    }
}

/// Most bytes a record of `entries_bytes` encoded entries takes in a batch: `entries_bytes`
/// counts them in the fixed layout, which no entry's compact encoding exceeds.
fn record_len(entries_bytes: usize) -> usize {
    RECORD_HEADER_MAX_BYTES + entries_bytes
}

/// Most bytes a record header takes: `partition`, `lsn` and `entry_count` as LEB128 (log format
/// 2), or the fixed 4 + 8 + 4 of log format 1.
const RECORD_HEADER_MAX_BYTES: usize = 5 + 10 + 5;

/// How a WAL file of log format `version` lays out its records' headers and entries.
fn entry_layout(version: u32) -> EntryLayout {
    if version >= 2 { EntryLayout::Compact } else { EntryLayout::Fixed }
}

/// Record layout (log format 2, FORMAT.md "WAL batch payload"): `partition varint | lsn varint |
/// entry_count varint | entries`, each entry in the compact layout.
fn encode_record(enc: &mut Encoder, partition: PartitionId, lsn: Lsn, entries: &[Entry]) {
    debug_assert_eq!(entry_layout(log::FORMAT_VERSION), EntryLayout::Compact);
    enc.varint(u64::from(partition.0));
    enc.varint(lsn.0);
    enc.varint(entries.len() as u64);
    for e in entries {
        codec::encode_entry_in(enc, e.as_ref(), EntryLayout::Compact);
    }
}

/// The records of a batch of a WAL file of log format `version`: format 1's record header is
/// `partition u32 | lsn u64 | entry_count u32` and its entries are in the fixed layout.
fn decode_batch(payload: &[u8], path: &Path, version: u32) -> Result<Vec<(PartitionId, WalRecord)>> {
    let corrupt = |reason| Error::Corrupt { file: path.to_path_buf(), offset: 0, reason };
    let layout = entry_layout(version);
    let mut dec = Decoder::new(payload);
    let mut out = Vec::new();
    while dec.remaining() > 0 {
        let (partition, lsn, n) = match layout {
            EntryLayout::Fixed => (dec.u32(), dec.u64(), dec.count(layout.min_bytes())),
            EntryLayout::Compact => (
                dec.varint(u64::from(u32::MAX)).map(|p| p as u32),
                dec.varint(u64::MAX),
                dec.varint_count(layout.min_bytes()),
            ),
        };
        let partition = PartitionId(partition.map_err(|e| corrupt(e.reason))?);
        let lsn = Lsn(lsn.map_err(|e| corrupt(e.reason))?);
        let n = n.map_err(|e| corrupt(e.reason))?;
        let entries = (0..n)
            .map(|_| codec::decode_entry_in(&mut dec, layout).map(EntryRef::to_owned).map_err(|e| corrupt(e.reason)))
            .collect::<Result<_>>()?;
        out.push((partition, WalRecord { lsn, entries }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_wal_batch_decoder(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            for version in [1, 2] {
                let _ = decode_batch(&bytes, Path::new("f"), version);
            }
        }
    }

    #[test]
    fn a_record_round_trips() {
        let e = Entry {
            key: crate::record::Key::new(crate::ids::TableId(1), b"k".to_vec(), b"".to_vec()),
            version: crate::version::Version {
                id: crate::version::VersionId {
                    ts: crate::ids::Ts(5),
                    origin: crate::version::Origin { kind: crate::version::OriginKind::Direct, source_id: 1, seq: 2 },
                },
                payload: crate::version::Payload::Tombstone,
            },
        };
        let mut enc = Encoder::default();
        encode_record(&mut enc, PartitionId(3), Lsn(9), std::slice::from_ref(&e));
        let got = decode_batch(&enc.bytes, Path::new("f"), log::FORMAT_VERSION).expect("decodes");
        assert_eq!(got, vec![(PartitionId(3), WalRecord { lsn: Lsn(9), entries: vec![e] })]);
    }
}
