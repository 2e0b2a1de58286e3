//! Spill runs: the builder's external sort. A run is one file of entries sorted in storage
//! order, in one section per partition, each section checksummed. Runs are written when a
//! reader's buffer reaches its share of the memory limit, read back once by the merge, and
//! deleted with the spill directory. They never leave the machine that wrote them.
//!
//! Section layout: repeated `len u32 | entry` (the segment entry encoding, FORMAT.md "Entry").

use super::run_buffer::RunBuffer;
use crate::codec::{self, Decoder};
use crate::record::Entry;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

/// Read buffer per run section while merging, bytes.
pub const MERGE_READ_BUFFER_BYTES: usize = 64 << 10;

/// One partition's part of a run.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// Offset in the run file.
    pub offset: u64,
    /// Length, bytes.
    pub len: u64,
    /// xxh3-64 of the section's bytes.
    pub checksum: u64,
}

/// A spill run on disk.
#[derive(Debug)]
pub struct Run {
    /// The run file.
    pub path: PathBuf,
    /// Sections by partition.
    pub sections: BTreeMap<u32, Section>,
}

/// Writes `run` (sorted: see [`RunBuffer::sort`]) as a run file at `path`.
pub fn write_run(path: &Path, run: &RunBuffer) -> std::io::Result<Run> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create_new(path)?);
    let mut sections = BTreeMap::new();
    let mut offset = 0u64;
    for (partition, entries) in run.sections() {
        let mut hasher = Xxh3::new();
        let start = offset;
        for i in entries {
            let (_, bytes) = run.encoded(i);
            let len = (bytes.len() as u32).to_le_bytes();
            hasher.update(&len);
            hasher.update(bytes);
            out.write_all(&len)?;
            out.write_all(bytes)?;
            offset += 4 + bytes.len() as u64;
        }
        sections.insert(partition, Section { offset: start, len: offset - start, checksum: hasher.digest() });
    }
    out.flush()?;
    Ok(Run { path: path.to_path_buf(), sections })
}

/// Reads one section of a run, entry by entry. The whole section is checked against its
/// checksum when it is opened, before any length read from it sizes a buffer or any entry is
/// decoded, so a damaged run is refused, never trusted.
pub struct SectionReader {
    input: std::io::Take<BufReader<File>>,
    path: PathBuf,
    buf: Vec<u8>,
}

fn bad(path: &Path, reason: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("spill run {}: {reason}", path.display()))
}

impl SectionReader {
    /// Opens `section` of the run at `path`, after checking the section's checksum (one
    /// streaming pass through a fixed buffer).
    pub fn open(path: &Path, section: Section) -> std::io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(section.offset))?;
        let mut input = BufReader::with_capacity(MERGE_READ_BUFFER_BYTES, file).take(section.len);
        let mut hasher = Xxh3::new();
        let mut chunk = vec![0u8; MERGE_READ_BUFFER_BYTES];
        loop {
            match input.read(&mut chunk)? {
                0 => break,
                n => hasher.update(&chunk[..n]),
            }
        }
        if input.limit() != 0 {
            return Err(bad(path, "section is cut short"));
        }
        if hasher.digest() != section.checksum {
            return Err(bad(path, "section checksum mismatch"));
        }
        let mut file = input.into_inner().into_inner();
        file.seek(SeekFrom::Start(section.offset))?;
        Ok(SectionReader {
            input: BufReader::with_capacity(MERGE_READ_BUFFER_BYTES, file).take(section.len),
            path: path.to_path_buf(),
            buf: Vec::new(),
        })
    }

    /// The next entry, or `None` at the end of the section.
    pub fn next_entry(&mut self) -> std::io::Result<Option<Entry>> {
        if self.input.limit() == 0 {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as u64;
        // Checked, but the file could change under us: never size a buffer past the section.
        if len > self.input.limit() {
            return Err(bad(&self.path, "an entry runs past its section"));
        }
        self.buf.resize(len as usize, 0);
        self.input.read_exact(&mut self.buf)?;
        let entry = codec::decode_entry_owned(&mut Decoder::new(&self.buf)).map_err(|e| bad(&self.path, e.reason))?;
        Ok(Some(entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TableId, Ts};
    use crate::record::EntryRef;
    use crate::version::{Origin, OriginKind, VersionId};

    fn entry(pk: &'static str, seq: u64) -> EntryRef<'static> {
        EntryRef {
            table: TableId(1),
            partition_key: pk.as_bytes(),
            sort_key: b"",
            id: VersionId { ts: Ts(5), origin: Origin { kind: OriginKind::Bulk, source_id: 0, seq } },
            value: Some(b"v"),
            expires_at_ms: None,
        }
    }

    fn run_of(entries: &[(u32, EntryRef<'static>)]) -> RunBuffer {
        let mut run = RunBuffer::default();
        for (partition, e) in entries {
            run.push(*partition, *e);
        }
        run.sort();
        run
    }

    #[test]
    fn a_run_reads_back_by_section_and_a_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run");
        let run =
            write_run(&path, &run_of(&[(0, entry("a", 1)), (0, entry("b", 2)), (3, entry("c", 3))])).expect("write");
        let mut r = SectionReader::open(&path, run.sections[&3]).expect("open");
        assert_eq!(r.next_entry().expect("read").as_ref().map(Entry::as_ref), Some(entry("c", 3)));
        assert_eq!(r.next_entry().expect("end"), None);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).expect("write");
        assert!(SectionReader::open(&path, run.sections[&3]).is_err(), "the section checksum catches the flip");
    }

    #[test]
    fn a_damaged_length_is_refused_at_open_before_it_sizes_a_buffer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run");
        let run = write_run(&path, &run_of(&[(0, entry("a", 1)), (0, entry("b", 2))])).expect("write");
        let mut bytes = std::fs::read(&path).expect("read");
        // The first entry's length becomes 4 GiB - 1.
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        std::fs::write(&path, bytes).expect("write");
        let e = SectionReader::open(&path, run.sections[&0]).err().expect("refused at open");
        assert!(e.to_string().contains("checksum"), "{e}");
    }
}
