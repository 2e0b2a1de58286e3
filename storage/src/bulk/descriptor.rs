//! The load descriptor, `load.json` in a load directory: what the builder made, for the linker
//! to check. JSON, so an operator can read it; its `checksum` covers every other field, so a
//! hand edit or a torn copy is caught. See FORMAT.md, "Load descriptor".

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The descriptor's file name in a load directory.
pub const DESCRIPTOR_FILE: &str = "load.json";

/// The descriptor format this build writes and reads.
pub const DESCRIPTOR_FORMAT_VERSION: u32 = 1;

/// How a load combines with what the table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LoadMode {
    /// Upsert the records at the snapshot; nothing else changes.
    Merge,
    /// A table-wide watermark at the snapshot plus the records: everything older is superseded.
    Replace,
}

impl LoadMode {
    /// The mode's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            LoadMode::Merge => "merge",
            LoadMode::Replace => "replace",
        }
    }
}

/// One segment file of a load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadFile {
    /// The partition every key in the file belongs to.
    pub partition: u32,
    /// The file's name in the load directory.
    pub name: String,
    /// The file's length, bytes.
    pub size_bytes: u64,
    /// xxh3-64 of the whole file, as 16 lowercase hex digits.
    pub xxh3: String,
    /// Entries (versions) in the file.
    pub entries: u64,
}

/// What a load directory holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadDescriptor {
    /// [`DESCRIPTOR_FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// The segment format version of the files.
    pub segment_format_version: u32,
    /// The load's id: every record's origin `source_id`. Never 0.
    pub load_id: u32,
    /// The table's name.
    pub table: String,
    /// The table's id in the store it was built for.
    pub table_id: u32,
    /// Merge or replace.
    pub mode: LoadMode,
    /// The snapshot, milliseconds since the Unix epoch: the records' default `ts`, and a replace
    /// load's watermark.
    pub snapshot_ms: u64,
    /// Partitions of the store it was built for.
    pub partition_count: u32,
    /// Records read from the inputs.
    pub records: u64,
    /// Records dropped as duplicates of a greater version of the same key.
    pub duplicates: u64,
    /// The files, by partition.
    pub files: Vec<LoadFile>,
    /// xxh3-64 of the descriptor serialised with this field empty, 16 lowercase hex digits.
    #[serde(default)]
    pub checksum: String,
}

/// Why a descriptor could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DescriptorError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The descriptor's path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a descriptor.
    #[error("{} is not a load descriptor: {reason}", path.display())]
    Malformed {
        /// The descriptor's path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The descriptor's own checksum does not match.
    #[error("{}: descriptor checksum mismatch (recorded {recorded}, computed {computed})", path.display())]
    Checksum {
        /// The descriptor's path.
        path: PathBuf,
        /// The checksum recorded.
        recorded: String,
        /// The checksum of the content.
        computed: String,
    },
}

/// Formats a checksum as the descriptor spells it.
pub fn hex64(v: u64) -> String {
    format!("{v:016x}")
}

impl LoadDescriptor {
    /// The checksum of every field but `checksum`: also the load's identity, so re-linking
    /// the same load is told apart from a different load that reuses its id.
    pub fn digest(&self) -> u64 {
        let body = LoadDescriptor { checksum: String::new(), ..self.clone() };
        let bytes = serde_json::to_vec(&body).expect("a descriptor always serialises");
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    /// Sets `checksum` from the content.
    pub fn seal(&mut self) {
        self.checksum = hex64(self.digest());
    }

    /// The descriptor as written to disk: pretty JSON and a final newline.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a descriptor always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Reads and checks the descriptor in load directory `dir`.
    pub fn read(dir: &Path) -> Result<LoadDescriptor, DescriptorError> {
        let path = dir.join(DESCRIPTOR_FILE);
        let bytes = std::fs::read(&path).map_err(|source| DescriptorError::Read { path: path.clone(), source })?;
        let d: LoadDescriptor = serde_json::from_slice(&bytes)
            .map_err(|e| DescriptorError::Malformed { path: path.clone(), reason: e.to_string() })?;
        let computed = hex64(d.digest());
        if computed != d.checksum {
            return Err(DescriptorError::Checksum { path, recorded: d.checksum, computed });
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LoadDescriptor {
        let mut d = LoadDescriptor {
            format_version: DESCRIPTOR_FORMAT_VERSION,
            segment_format_version: 1,
            load_id: 7,
            table: "t".into(),
            table_id: 1,
            mode: LoadMode::Replace,
            snapshot_ms: 1000,
            partition_count: 4,
            records: 3,
            duplicates: 0,
            files: vec![LoadFile { partition: 2, name: "p".into(), size_bytes: 4096, xxh3: hex64(9), entries: 3 }],
            checksum: String::new(),
        };
        d.seal();
        d
    }

    #[test]
    fn a_descriptor_round_trips_and_an_edit_breaks_its_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = sample();
        std::fs::write(dir.path().join(DESCRIPTOR_FILE), d.to_file_bytes()).expect("write");
        assert_eq!(LoadDescriptor::read(dir.path()).expect("reads"), d);
        let edited = String::from_utf8(d.to_file_bytes())
            .expect("utf8")
            .replace("\"snapshot_ms\": 1000", "\"snapshot_ms\": 1001");
        std::fs::write(dir.path().join(DESCRIPTOR_FILE), edited).expect("write");
        assert!(matches!(LoadDescriptor::read(dir.path()), Err(DescriptorError::Checksum { .. })));
    }
}
