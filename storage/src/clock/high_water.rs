//! A hybrid clock's high-water mark on disk: a bound at or above every timestamp the clock has
//! issued or observed, so a restart resumes above it even when the wall clock stepped back.
//!
//! The owner persists the bound *ahead* of what it hands out (a lease): while a timestamp is at
//! or below the persisted bound it needs no I/O, and only a timestamp past it waits for one
//! write and one fdatasync ([`HighWater::raise`]). A clean stop stores the exact last reading
//! ([`HighWater::store_exact`]), so a restart after one does not start ahead of the wall clock.
//!
//! The file holds two 4 KiB slots written alternately (FORMAT.md, "Clock high-water file"), so
//! a torn write leaves the other slot, the previous bound, intact. Each slot's record sits in
//! its first sector and carries a checksum: bytes that fail it are corruption, refused, never
//! read as a smaller bound. This module does no clock arithmetic; `Hlc` does.

use crate::checksum::checksum;
use crate::error::{Error, Result};
use crate::ids::Ts;
use crate::io::{ALIGN, Disk, DiskFile, IoBuf, OpenMode};
use std::cell::Cell;
use std::path::{Path, PathBuf};

/// `"NHWM"`, little-endian: the first bytes of a written slot.
pub const MAGIC: u32 = u32::from_le_bytes(*b"NHWM");
/// The slot format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The file name suffix of a high-water file.
pub const SUFFIX: &str = ".hwm";
/// Bytes of a slot's record: magic, format version, generation, bound, checksum.
const RECORD_BYTES: usize = 32;
/// Bytes covered by a record's checksum.
const CHECKED_BYTES: usize = 24;
/// Slots in a file.
const SLOTS: u64 = 2;

/// One slot's content, once verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotRecord {
    /// Counts the writes to the file; the slot with the greater one is the newer.
    pub generation: u64,
    /// The persisted bound.
    pub bound: Ts,
}

/// Encodes `record` as one slot of [`ALIGN`] bytes.
pub fn encode_slot(record: SlotRecord) -> IoBuf {
    let mut buf = IoBuf::zeroed(ALIGN);
    let bytes = buf.as_mut_slice();
    bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    bytes[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[8..16].copy_from_slice(&record.generation.to_le_bytes());
    bytes[16..24].copy_from_slice(&record.bound.0.to_le_bytes());
    let sum = checksum(&bytes[..CHECKED_BYTES], 0);
    bytes[CHECKED_BYTES..RECORD_BYTES].copy_from_slice(&sum.to_le_bytes());
    buf
}

/// Decodes the slot at `offset` of `file`: `None` for a slot never written (all zero).
pub fn decode_slot(bytes: &[u8], file: &Path, offset: u64) -> Result<Option<SlotRecord>> {
    let Some(record) = bytes.get(..RECORD_BYTES) else {
        return Err(Error::Corrupt { file: file.to_path_buf(), offset, reason: "a high-water slot is truncated" });
    };
    if record.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    let u32_at = |i: usize| u32::from_le_bytes(record[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(record[i..i + 8].try_into().expect("8 bytes"));
    let (expected, actual) = (u64_at(CHECKED_BYTES), checksum(&record[..CHECKED_BYTES], 0));
    if expected != actual {
        return Err(Error::ChecksumMismatch { file: file.to_path_buf(), offset, expected, actual });
    }
    if u32_at(0) != MAGIC {
        return Err(Error::Corrupt { file: file.to_path_buf(), offset, reason: "not a high-water slot" });
    }
    if u32_at(4) != FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            file: file.to_path_buf(),
            found: u32_at(4),
            supported: FORMAT_VERSION,
        });
    }
    Ok(Some(SlotRecord { generation: u64_at(8), bound: Ts(u64_at(16)) }))
}

/// The newest verified record of the file at `path`, if any slot was ever written.
async fn read_newest<D: Disk>(file: &D::File, path: &Path) -> Result<Option<SlotRecord>> {
    let bytes = file.read_at(0, SLOTS as usize * ALIGN).await?;
    let mut newest: Option<SlotRecord> = None;
    for slot in 0..SLOTS {
        let offset = slot * ALIGN as u64;
        let start = offset as usize;
        if let Some(r) = decode_slot(&bytes.as_slice()[start..start + ALIGN], path, offset)? {
            newest = Some(newest.map_or(r, |n| if r.generation > n.generation { r } else { n }));
        }
    }
    Ok(newest)
}

/// The greatest bound among every high-water file in `dir` (one per shard, whatever the shard
/// count was when each was written), or `None` when there is none. Read before any shard
/// starts, so no file is being written meanwhile.
pub async fn recover_bound<D: Disk>(disk: &D, dir: &Path) -> Result<Option<Ts>> {
    if !disk.exists(dir).await? {
        return Ok(None);
    }
    let mut bound: Option<Ts> = None;
    for name in disk.list(dir).await?.into_iter().filter(|n| n.ends_with(SUFFIX)) {
        let path = dir.join(&name);
        let file = disk.open(&path, OpenMode::Existing).await?;
        let newest = read_newest::<D>(&file, &path).await;
        file.close().await?;
        if let Some(r) = newest? {
            bound = bound.max(Some(r.bound));
        }
    }
    Ok(bound)
}

/// One clock's high-water file, open for writing.
pub struct HighWater<D: Disk> {
    path: PathBuf,
    file: D::File,
    generation: Cell<u64>,
    bound: Cell<Ts>,
    /// The operation whose failure poisoned the file: nothing is written after it.
    poisoned: Cell<Option<&'static str>>,
    writing: async_lock::Mutex<()>,
}

impl<D: Disk> HighWater<D> {
    /// Opens the file `name` in `dir`, creating both (durably) if missing. Its bound starts at
    /// what it holds, or zero.
    pub async fn open(disk: &D, dir: &Path, name: &str) -> Result<Self> {
        disk.create_dir_all(dir).await?;
        let path = dir.join(name);
        let (file, newest) = if disk.exists(&path).await? {
            let file = disk.open(&path, OpenMode::Existing).await?;
            let newest = read_newest::<D>(&file, &path).await?;
            (file, newest)
        } else {
            let file = disk.open(&path, OpenMode::CreateNew).await?;
            disk.sync_dir(dir).await?;
            (file, None)
        };
        let newest = newest.unwrap_or(SlotRecord { generation: 0, bound: Ts(0) });
        Ok(Self {
            path,
            file,
            generation: Cell::new(newest.generation),
            bound: Cell::new(newest.bound),
            poisoned: Cell::new(None),
            writing: async_lock::Mutex::new(()),
        })
    }

    /// The bound persisted now: every timestamp at or below it may be handed out.
    pub fn bound(&self) -> Ts {
        self.bound.get()
    }

    /// Makes the persisted bound at least `to`, durably, before returning. Concurrent callers
    /// share one write when the first covers the second. A failed write or sync poisons the
    /// file: it and every later call that needs I/O return an error.
    pub async fn raise(&self, to: Ts) -> Result<()> {
        if to <= self.bound.get() {
            return Ok(());
        }
        let _writing = self.writing.lock().await;
        if to <= self.bound.get() {
            return Ok(());
        }
        self.write(to).await
    }

    /// Stores exactly `at`, lower than the bound or not: a clean stop's last step, when `at` is
    /// the last timestamp issued or observed and nothing more will be.
    pub async fn store_exact(&self, at: Ts) -> Result<()> {
        let _writing = self.writing.lock().await;
        self.write(at).await
    }

    async fn write(&self, bound: Ts) -> Result<()> {
        if let Some(op) = self.poisoned.get() {
            return Err(Error::Poisoned { op });
        }
        let generation = self.generation.get() + 1;
        let offset = (generation % SLOTS) * ALIGN as u64;
        let written = async {
            self.file.write_at(offset, encode_slot(SlotRecord { generation, bound })).await?;
            self.file.sync().await
        }
        .await;
        if let Err(e) = written {
            self.poisoned.set(Some("clock high-water write"));
            return Err(e.into());
        }
        self.generation.set(generation);
        self.bound.set(bound);
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::sim::SimDisk;
    use futures_lite::future::block_on;

    fn dir() -> PathBuf {
        PathBuf::from("/data/clock")
    }

    #[test]
    fn a_slot_decodes_to_what_was_encoded_and_an_unwritten_one_to_nothing() {
        let record = SlotRecord { generation: 7, bound: Ts(0x0123_4567_89ab_cdef) };
        let buf = encode_slot(record);
        assert_eq!(decode_slot(buf.as_slice(), Path::new("f"), 0).expect("valid"), Some(record));
        assert_eq!(decode_slot(&[0; ALIGN], Path::new("f"), 0).expect("zero"), None);
    }

    #[test]
    fn any_flipped_bit_of_a_record_is_refused_never_read_as_another_bound() {
        let buf = encode_slot(SlotRecord { generation: 3, bound: Ts(99) });
        for bit in 0..RECORD_BYTES * 8 {
            let mut bytes = buf.as_slice().to_vec();
            bytes[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_slot(&bytes, Path::new("f"), 0).is_err(), "bit {bit} flipped passed");
        }
    }

    #[test]
    fn raises_persist_alternately_and_the_greatest_bound_of_every_file_is_recovered() {
        let disk = SimDisk::new(1);
        block_on(async {
            let a = HighWater::open(&disk, &dir(), "shard-00.hwm").await.expect("open");
            let b = HighWater::open(&disk, &dir(), "shard-01.hwm").await.expect("open");
            a.raise(Ts(100)).await.expect("raise");
            a.raise(Ts(50)).await.expect("a lower raise is a no-op");
            a.raise(Ts(300)).await.expect("raise");
            b.raise(Ts(200)).await.expect("raise");
            assert_eq!(a.bound(), Ts(300));
            let image = disk.crash_image(false);
            assert_eq!(recover_bound(&image, &dir()).await.expect("recover"), Some(Ts(300)));
            a.store_exact(Ts(250)).await.expect("store");
            let image = disk.crash_image(false);
            assert_eq!(recover_bound(&image, &dir()).await.expect("recover"), Some(Ts(250)));
            let reopened = HighWater::open(&image, &dir(), "shard-00.hwm").await.expect("reopen");
            assert_eq!(reopened.bound(), Ts(250));
        });
    }

    #[test]
    fn a_crash_at_any_step_of_a_raise_recovers_the_old_bound_or_the_new_one() {
        let disk = SimDisk::new(2);
        block_on(async {
            let hw = HighWater::open(&disk, &dir(), "shard-00.hwm").await.expect("open");
            hw.raise(Ts(1_000)).await.expect("raise");
            disk.set_capture(true);
            hw.raise(Ts(2_000)).await.expect("raise");
            let images = disk.take_captured();
            assert!(!images.is_empty(), "the raise did some I/O");
            for (step, image) in images {
                let got = recover_bound(&image, &dir()).await.expect("a torn raise is never corruption");
                assert!(got == Some(Ts(1_000)) || got == Some(Ts(2_000)), "step {step}: {got:?}");
            }
        });
    }

    #[test]
    fn a_failed_sync_poisons_the_file_and_its_bound_stays_where_it_was() {
        let disk = SimDisk::new(3);
        block_on(async {
            let hw = HighWater::open(&disk, &dir(), "shard-00.hwm").await.expect("open");
            hw.raise(Ts(10)).await.expect("raise");
            disk.fail_next_sync();
            assert!(hw.raise(Ts(20)).await.is_err());
            assert_eq!(hw.bound(), Ts(10));
            let again = hw.raise(Ts(30)).await;
            assert!(matches!(again, Err(Error::Poisoned { .. })), "{again:?}");
        });
    }

    #[test]
    fn a_corrupt_slot_stops_recovery_with_a_checksum_error_naming_the_file() {
        let disk = SimDisk::new(4);
        block_on(async {
            let hw = HighWater::open(&disk, &dir(), "shard-00.hwm").await.expect("open");
            hw.raise(Ts(10)).await.expect("raise");
            disk.flip_bit(hw.path(), ALIGN as u64 + 17, 2);
            match recover_bound(&disk, &dir()).await {
                Err(Error::ChecksumMismatch { file, .. }) => assert_eq!(file, dir().join("shard-00.hwm")),
                other => panic!("expected a checksum mismatch, got {other:?}"),
            }
        });
    }
}
