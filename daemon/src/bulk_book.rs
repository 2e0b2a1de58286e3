//! The bulk-load book, `DATA/bulk-loads.json`: every load the store has linked or tried to, and
//! where it stands. Shard 0 writes it; a write is durable (temporary file, fsync, rename, fsync
//! of the directory) before anything depends on it.
//!
//! It holds the load-level commit record of the two-phase link: a load is visible exactly when
//! the book says `committed`. The record is written after every partition's manifest edit and
//! before the load is shown, so after a crash the book alone decides: committed loads are whole
//! everywhere, and every other load's segments are unlinked by recovery (`bulk_link.rs`).
//!
//! The file carries an xxh3 checksum of its records; a mismatch stops the daemon at startup
//! rather than guessing which loads are committed.

use crate::datadir::write_atomically;
use anyhow::{Context, Result, bail};
use nacre_storage::bulk::LoadMode;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Where a load stands, durably.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadState {
    /// A link started; not visible. After a crash it becomes `Aborted`.
    Preparing,
    /// The commit record: visible on every partition.
    Committed,
    /// The link failed or the daemon stopped before the commit record.
    Aborted,
    /// Withdrawn by a rollback.
    RolledBack,
}

/// One load's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadRecord {
    /// The load id.
    pub load_id: u32,
    /// The table's name.
    pub table: String,
    /// The table's id.
    pub table_id: u32,
    /// Merge or replace.
    pub mode: LoadMode,
    /// The snapshot, milliseconds since the Unix epoch.
    pub snapshot_ms: u64,
    /// The descriptor's checksum: the load's identity, so a different load reusing the id is
    /// told apart from a re-link of the same one.
    pub digest: String,
    /// The directory it was linked from.
    pub dir: String,
    /// Segment files.
    pub files: u32,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Entries.
    pub entries: u64,
    /// The partitions it has a file in.
    #[serde(default)]
    pub partitions: Vec<u32>,
    /// Where it stands.
    pub state: LoadState,
    /// When `state` last changed, milliseconds since the Unix epoch.
    pub changed_at_ms: u64,
    /// Why it was aborted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct BookFile {
    loads: Vec<LoadRecord>,
    checksum: String,
}

fn checksum(loads: &[LoadRecord]) -> String {
    let bytes = serde_json::to_vec(loads).expect("records always serialise");
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
}

/// The book, in memory, mirroring the file.
#[derive(Debug, Clone, Default)]
pub struct LoadBook {
    path: PathBuf,
    loads: BTreeMap<u32, LoadRecord>,
}

impl LoadBook {
    /// The book's file in data directory `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join("bulk-loads.json")
    }

    /// Reads the book of `root`; an empty one if there is none yet.
    pub fn load(root: &Path) -> Result<LoadBook> {
        let path = Self::path(root);
        if !path.exists() {
            return Ok(LoadBook { path, loads: BTreeMap::new() });
        }
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let file: BookFile = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        if checksum(&file.loads) != file.checksum {
            bail!("{} fails its checksum: the bulk-load book is corrupt", path.display());
        }
        Ok(LoadBook { path, loads: file.loads.into_iter().map(|l| (l.load_id, l)).collect() })
    }

    /// Writes the book durably with `record` set.
    pub fn put(&mut self, record: LoadRecord) -> Result<()> {
        let mut next = self.loads.clone();
        next.insert(record.load_id, record);
        let loads: Vec<LoadRecord> = next.values().cloned().collect();
        let file = BookFile { checksum: checksum(&loads), loads };
        let bytes = serde_json::to_vec_pretty(&file).context("encoding the bulk-load book")?;
        write_atomically(&self.path, &bytes)?;
        self.loads = next;
        Ok(())
    }

    /// The record of `load`.
    pub fn get(&self, load: u32) -> Option<&LoadRecord> {
        self.loads.get(&load)
    }

    /// Every record, by id.
    pub fn all(&self) -> impl Iterator<Item = &LoadRecord> {
        self.loads.values()
    }

    /// Loads reads must not see: every recorded load not committed.
    pub fn hidden(&self) -> BTreeSet<u32> {
        self.loads.values().filter(|l| l.state != LoadState::Committed).map(|l| l.load_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: u32, state: LoadState) -> LoadRecord {
        LoadRecord {
            load_id: id,
            table: "t".into(),
            table_id: 1,
            mode: LoadMode::Merge,
            snapshot_ms: 5,
            digest: "00".into(),
            dir: "/x".into(),
            files: 1,
            bytes: 2,
            entries: 3,
            partitions: vec![0],
            state,
            changed_at_ms: 4,
            note: None,
        }
    }

    #[test]
    fn the_book_round_trips_hides_what_is_not_committed_and_catches_an_edit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut book = LoadBook::load(dir.path()).expect("empty");
        book.put(record(1, LoadState::Committed)).expect("put");
        book.put(record(2, LoadState::Preparing)).expect("put");
        book.put(record(3, LoadState::RolledBack)).expect("put");
        let again = LoadBook::load(dir.path()).expect("reads");
        assert_eq!(again.all().cloned().collect::<Vec<_>>(), book.all().cloned().collect::<Vec<_>>());
        assert_eq!(again.hidden(), BTreeSet::from([2, 3]));
        let text = std::fs::read_to_string(LoadBook::path(dir.path())).expect("read");
        std::fs::write(LoadBook::path(dir.path()), text.replacen("\"rolled-back\"", "\"committed\"", 1))
            .expect("write");
        let err = LoadBook::load(dir.path()).expect_err("an edited book is refused");
        assert!(format!("{err:#}").contains("checksum"), "{err:#}");
    }
}
