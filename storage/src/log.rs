//! The framed log both the WAL and the manifest are made of: a header page, then batches, each
//! starting on a page boundary and padded to one, each checksummed with the file's random salt.
//! One batch is one commit (one write, one fdatasync). See FORMAT.md, "Log file".
//!
//! Recovery reads batches until the first that fails. If no valid batch of this file follows it,
//! it was the tail being written when the power went: it is dropped. If one does follow, bytes
//! that were once durable are damaged: that is an error, never skipped. A recovered file is never
//! appended to, so a torn tail stays behind its last valid batch forever.

use crate::checksum::checksum;
use crate::codec::{Decoder, Encoder};
use crate::error::{Error, Result};
use crate::io::{ALIGN, DiskFile, IoBuf, align_up};
use crate::segment::block::{self, BlockKind};
use std::path::{Path, PathBuf};

/// Version of the log format this build writes. Version 2 writes WAL records with a LEB128
/// header and entries in the compact layout; manifest payloads are the same in both.
pub const FORMAT_VERSION: u32 = 2;
/// Oldest log format version this build reads.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// "NLOG" as a little-endian u32.
const BATCH_MAGIC: u32 = u32::from_le_bytes(*b"NLOG");
/// Bytes of a batch header.
pub const BATCH_HEADER_BYTES: usize = 32;

/// Which log a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    /// The write-ahead log.
    Wal = 1,
    /// The manifest.
    Manifest = 2,
}

/// A log file's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    /// The format version the file was written in: [`FORMAT_VERSION`] for a file this build
    /// creates.
    pub format_version: u32,
    /// Which log.
    pub kind: LogKind,
    /// The file's number within its log.
    pub file_number: u64,
    /// Seeds every batch checksum of this file.
    pub salt: u64,
    /// Sequence number of the file's first batch.
    pub first_seq: u64,
}

impl LogHeader {
    fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::default();
        enc.u32(self.format_version);
        enc.u8(self.kind as u8);
        enc.u64(self.file_number);
        enc.u64(self.salt);
        enc.u64(self.first_seq);
        enc.bytes
    }

    fn decode(payload: &[u8], path: &Path) -> Result<LogHeader> {
        let corrupt = |reason| Error::Corrupt { file: path.to_path_buf(), offset: 0, reason };
        let mut dec = Decoder::new(payload);
        let version = dec.u32().map_err(|e| corrupt(e.reason))?;
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(Error::UnsupportedFormatVersion {
                file: path.to_path_buf(),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let kind = match dec.u8().map_err(|e| corrupt(e.reason))? {
            1 => LogKind::Wal,
            2 => LogKind::Manifest,
            _ => return Err(corrupt("unknown log kind")),
        };
        let mut field = || dec.u64().map_err(|e| corrupt(e.reason));
        Ok(LogHeader { format_version: version, kind, file_number: field()?, salt: field()?, first_seq: field()? })
    }
}

/// Frames one batch: `checksum u64 | magic u32 | payload_len u32 | seq u64 | header_check u64 |
/// payload | zero padding`. `checksum` covers everything after it, padding included;
/// `header_check` covers magic, length and seq alone, so recovery can trust a batch's length
/// when telling a torn tail from damage. Both are seeded with the file's `salt`.
pub fn frame_batch(payload: &[u8], seq: u64, salt: u64) -> IoBuf {
    let mut buf = Vec::with_capacity(align_up(BATCH_HEADER_BYTES + payload.len()));
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&BATCH_MAGIC.to_le_bytes());
    buf.extend_from_slice(&u32::try_from(payload.len()).expect("batches are under 4 GiB").to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    let header_check = checksum(&buf[8..24], salt);
    buf.extend_from_slice(&header_check.to_le_bytes());
    buf.extend_from_slice(payload);
    buf.resize(align_up(buf.len()), 0);
    let sum = checksum(&buf[8..], salt);
    buf[..8].copy_from_slice(&sum.to_le_bytes());
    IoBuf::from_padded(buf)
}

/// Appends batches to one log file.
pub struct LogWriter<F: DiskFile> {
    file: F,
    path: PathBuf,
    header: LogHeader,
    next_offset: u64,
    next_seq: u64,
    allocated_bytes: u64,
}

impl<F: DiskFile> LogWriter<F> {
    /// Writes the header of a new file, preallocates `preallocate_bytes`, and syncs the file.
    /// The caller makes the directory entry durable.
    pub async fn create(file: F, path: &Path, header: LogHeader, preallocate_bytes: u64) -> Result<Self> {
        let allocated_bytes = preallocate_bytes.max(ALIGN as u64);
        file.preallocate(allocated_bytes).await?;
        file.write_at(0, block::seal(BlockKind::LogHeader, &header.encode())).await?;
        file.sync().await?;
        Ok(LogWriter {
            file,
            path: path.to_path_buf(),
            header,
            next_offset: ALIGN as u64,
            next_seq: header.first_seq,
            allocated_bytes,
        })
    }

    /// Bytes a batch of `payload_len` occupies.
    pub fn batch_len(payload_len: usize) -> u64 {
        align_up(BATCH_HEADER_BYTES + payload_len) as u64
    }

    /// Offset the next batch goes to.
    pub fn next_offset(&self) -> u64 {
        self.next_offset
    }

    /// Sequence number of the next batch.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The file's header.
    pub fn header(&self) -> LogHeader {
        self.header
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one batch and makes it durable. On error the caller must poison: whether the
    /// batch is durable is unknown.
    pub async fn append(&mut self, payload: &[u8]) -> Result<()> {
        let buf = frame_batch(payload, self.next_seq, self.header.salt);
        let end = self.next_offset + buf.len() as u64;
        if end > self.allocated_bytes {
            self.allocated_bytes = end.max(self.allocated_bytes * 2);
            self.file.preallocate(self.allocated_bytes).await?;
        }
        self.file.write_at(self.next_offset, buf).await?;
        self.file.sync().await?;
        self.next_offset = end;
        self.next_seq += 1;
        Ok(())
    }

    /// Closes the file.
    pub async fn close(self) -> Result<()> {
        Ok(self.file.close().await?)
    }
}

/// What recovery found in one log file.
#[derive(Debug)]
pub struct RecoveredLog {
    /// The file's header.
    pub header: LogHeader,
    /// Valid batches in order: `(seq, payload)`.
    pub batches: Vec<(u64, Vec<u8>)>,
    /// True if a torn tail was dropped.
    pub torn_tail: bool,
}

/// The outcome of reading a log file.
#[derive(Debug)]
pub enum LogRead {
    /// The file holds a header and batches.
    Log(RecoveredLog),
    /// The header never became durable: the file was being created when the power went.
    Unborn,
}

/// Reads every valid batch of a log file.
pub async fn read_log<F: DiskFile>(file: &F, path: &Path, kind: LogKind) -> Result<LogRead> {
    let size = file.size().await?;
    let len = align_up(usize::try_from(size).expect("log files fit in memory"));
    if len < ALIGN {
        return Ok(LogRead::Unborn);
    }
    let buf = file.read_at(0, len).await?;
    let bytes = buf.as_slice();
    let header = match block::unseal(&bytes[..ALIGN], BlockKind::LogHeader, path, 0) {
        Ok(payload) => LogHeader::decode(payload, path)?,
        Err(_) if bytes[..ALIGN].iter().all(|b| *b == 0) => return Ok(LogRead::Unborn),
        Err(e) => return Err(e),
    };
    if header.kind != kind {
        return Err(Error::Corrupt { file: path.to_path_buf(), offset: 0, reason: "log file of another kind" });
    }
    let mut batches = Vec::new();
    let mut offset = ALIGN;
    let mut seq = header.first_seq;
    loop {
        match parse_batch(bytes, offset, header.salt) {
            Some((batch_seq, payload, next)) if batch_seq == seq => {
                batches.push((seq, payload.to_vec()));
                offset = next;
                seq += 1;
            }
            _ => break,
        }
    }
    // Anything valid after the first failure means durable bytes were damaged.
    let damaged = |reason| Error::Corrupt { file: path.to_path_buf(), offset: offset as u64, reason };
    let mut probe = offset + ALIGN;
    while probe < bytes.len() {
        if parse_batch(bytes, probe, header.salt).is_some_and(|(later_seq, _, _)| later_seq >= seq) {
            return Err(damaged("a damaged batch is followed by valid ones"));
        }
        probe += ALIGN;
    }
    let torn_tail = match classify_failed_batch(bytes, offset, header.salt) {
        FailedBatch::End => false,
        FailedBatch::Torn => true,
        FailedBatch::Damaged => {
            let (expected, actual) = stored_and_actual_checksum(bytes, offset, header.salt);
            return Err(Error::ChecksumMismatch { file: path.to_path_buf(), offset: offset as u64, expected, actual });
        }
    };
    Ok(LogRead::Log(RecoveredLog { header, batches, torn_tail }))
}

/// Parses a batch at `offset`: `(seq, payload, next_offset)` if it is whole and its checksum
/// holds.
fn parse_batch(bytes: &[u8], offset: usize, salt: u64) -> Option<(u64, &[u8], usize)> {
    let head = bytes.get(offset..offset + BATCH_HEADER_BYTES)?;
    if !header_intact(head, salt) {
        return None;
    }
    let len = u32::from_le_bytes(head[12..16].try_into().ok()?) as usize;
    let end = offset.checked_add(BATCH_HEADER_BYTES)?.checked_add(len)?;
    let padded_end = offset + align_up(BATCH_HEADER_BYTES + len);
    let body = bytes.get(offset + 8..padded_end)?;
    let stored = u64::from_le_bytes(head[..8].try_into().ok()?);
    if checksum(body, salt) != stored {
        return None;
    }
    let seq = u64::from_le_bytes(head[16..24].try_into().ok()?);
    Some((seq, &bytes[offset + BATCH_HEADER_BYTES..end], padded_end))
}

/// What a batch that failed to parse is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailedBatch {
    /// Its first sector is empty: the log ends here. (A header sector is written whole or not
    /// at all.)
    End,
    /// Some sector it claims is still all zeros: a write the power cut tore. Log files are
    /// preallocated zeroed and never rewritten, so a whole written batch has no zero sector
    /// before its payload's end... unless its payload holds 512 aligned zero bytes, in which
    /// case a damaged batch would be taken for torn: a documented limit.
    Torn,
    /// Every sector it claims was written, yet it fails: durable bytes were damaged.
    Damaged,
}

fn header_intact(head: &[u8], salt: u64) -> bool {
    u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) == BATCH_MAGIC
        && u64::from_le_bytes(head[24..32].try_into().expect("8 bytes")) == checksum(&head[8..24], salt)
}

fn classify_failed_batch(bytes: &[u8], offset: usize, salt: u64) -> FailedBatch {
    use crate::io::SECTOR;
    let Some(first) = bytes.get(offset..offset + SECTOR) else { return FailedBatch::End };
    if first.iter().all(|b| *b == 0) {
        return FailedBatch::End;
    }
    if !header_intact(first, salt) {
        return FailedBatch::Damaged;
    }
    let len = u32::from_le_bytes(first[12..16].try_into().expect("4 bytes")) as usize;
    let claimed_end = (offset + BATCH_HEADER_BYTES).saturating_add(len).min(bytes.len());
    let any_zero_sector =
        (offset..claimed_end).step_by(SECTOR).any(|s| bytes[s..(s + SECTOR).min(bytes.len())].iter().all(|b| *b == 0));
    if any_zero_sector { FailedBatch::Torn } else { FailedBatch::Damaged }
}

fn stored_and_actual_checksum(bytes: &[u8], offset: usize, salt: u64) -> (u64, u64) {
    let stored = u64::from_le_bytes(bytes[offset..offset + 8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(bytes[offset + 12..offset + 16].try_into().expect("4 bytes")) as usize;
    let end = (offset + align_up(BATCH_HEADER_BYTES + len)).min(bytes.len());
    (stored, checksum(&bytes[offset + 8..end], salt))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_framed_batch_parses_back_and_rejects_another_salt() {
        let buf = frame_batch(b"hello", 7, 42).into_vec();
        assert_eq!(buf.len(), ALIGN);
        let (seq, payload, next) = parse_batch(&buf, 0, 42).expect("parses");
        assert_eq!((seq, payload, next), (7, &b"hello"[..], ALIGN));
        assert!(parse_batch(&buf, 0, 43).is_none());
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_batch_parser(bytes in prop::collection::vec(any::<u8>(), 0..5000), offset in 0usize..5000) {
            let _ = parse_batch(&bytes, offset, 1);
            let _ = LogHeader::decode(&bytes, Path::new("f"));
        }
    }
}
