//! Bulk loads as the admin requests carry them: linking a load directory, asking for loads'
//! states, and rolling one back. The server validates the load and runs the commit; these types
//! only name what is asked and what the server recorded.

/// How a load combines with what its table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkMode {
    /// Upsert the records at the snapshot.
    #[default]
    Merge,
    /// A table-wide watermark at the snapshot plus the records.
    Replace,
}

/// How much of a load a link reads and checks before it commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LinkVerify {
    /// Every file's size and whole-file checksum, its footer, index, bloom and metadata, every
    /// data block's checksum, and every entry against the rules of bulk loads.
    #[default]
    Full,
    /// Every file's size and whole-file checksum, its footer, index, bloom and metadata, and
    /// what the metadata says of its entries; no entry is decoded (the builder is trusted for
    /// their order, origin and the store's key and value limits).
    Checksums,
}

/// Where a load stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BulkLoadState {
    /// Being linked: visible nowhere yet.
    #[default]
    Preparing,
    /// Linked and visible on every partition.
    Committed,
    /// The link failed, or the server stopped before its commit record: visible nowhere.
    Aborted,
    /// Withdrawn by a rollback: visible nowhere.
    RolledBack,
}

impl BulkLoadState {
    /// The state's name, as the CLI prints it.
    pub fn name(self) -> &'static str {
        match self {
            BulkLoadState::Preparing => "preparing",
            BulkLoadState::Committed => "committed",
            BulkLoadState::Aborted => "aborted",
            BulkLoadState::RolledBack => "rolled-back",
        }
    }
}

/// A bulk load as the server records it. Answers every bulk request (in
/// [`crate::Reply::BulkLoads`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BulkLoadInfo {
    /// The load id (every record's origin `source_id`).
    pub load_id: u32,
    /// The table.
    pub table: String,
    /// Merge or replace.
    pub mode: BulkMode,
    /// The snapshot, milliseconds since the Unix epoch.
    pub snapshot_ms: u64,
    /// Where it stands.
    pub state: BulkLoadState,
    /// The load directory it was linked from.
    pub dir: String,
    /// Segment files.
    pub files: u32,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Entries (versions).
    pub entries: u64,
    /// When the state last changed, milliseconds since the Unix epoch.
    pub changed_at_ms: u64,
    /// Why it was aborted, or what the request did ("already linked: nothing changed").
    pub note: Option<String>,
    /// For the request that linked it: milliseconds validating every file.
    pub validate_ms: u64,
    /// Milliseconds preparing (linking files into partition directories, fsyncs).
    pub prepare_ms: u64,
    /// Milliseconds committing (manifest edits and the load's commit record).
    pub commit_ms: u64,
}
