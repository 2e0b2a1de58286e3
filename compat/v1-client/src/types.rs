//! The plain values a v1 client sends and receives, one per message of the v1 schema. They own
//! their bytes (a flatbuffer borrows its frame) and carry no flatbuffers types.

/// The protocol version this crate speaks, and the only one: the frozen schema's.
pub const PROTOCOL_VERSION: u32 = 1;

/// A key of a table: the partition key decides the partition, the sort key orders rows within
/// it (empty is a valid sort key).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Key {
    /// The partition key.
    pub partition_key: Vec<u8>,
    /// The sort key; may be empty.
    pub sort_key: Vec<u8>,
}

impl Key {
    /// A key from its parts.
    pub fn new(partition_key: impl Into<Vec<u8>>, sort_key: impl Into<Vec<u8>>) -> Key {
        Key { partition_key: partition_key.into(), sort_key: sort_key.into() }
    }
}

/// Which path wrote a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginKind {
    /// A bulk load.
    Bulk,
    /// A stream.
    Stream,
    /// A direct write (every write this client makes).
    Direct,
}

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The path.
    pub kind: OriginKind,
    /// The node/shard, load or stream that wrote it.
    pub source_id: u32,
    /// Its position within that source.
    pub seq: u64,
}

/// The identity of a version: a hybrid logical timestamp and an origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// 48 bits of Unix milliseconds, then 16 bits of logical counter.
    pub ts: u64,
    /// Who wrote it.
    pub origin: Origin,
}

impl Version {
    /// The Unix milliseconds of the timestamp.
    pub fn millis(&self) -> u64 {
        self.ts >> 16
    }
}

/// When a write is acknowledged. `Default` leaves it to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The table's (or the server's) default.
    #[default]
    Default,
    /// After the write's log bytes are durable.
    Sync,
    /// After it is applied in memory; a crash may lose it.
    Async,
}

/// The optional parts of a put or delete. [`WriteOptions::default`] is what a plain legacy
/// client sends: no fields at all, so the server assigns the timestamp, applies the table's TTL
/// and its default durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// The version's timestamp; `None` lets the server assign one.
    pub ts: Option<u64>,
    /// Time to live in milliseconds, counted from the timestamp; `None` applies the table's
    /// default. Ignored by deletes.
    pub ttl_ms: Option<u64>,
    /// When to acknowledge.
    pub durability: Durability,
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Writes a value.
    Put {
        /// The key.
        key: Key,
        /// The value.
        value: Vec<u8>,
        /// The timestamp; `None` lets the server assign one.
        ts: Option<u64>,
        /// Time to live; `None` applies the table's default.
        ttl_ms: Option<u64>,
    },
    /// Deletes a key.
    Delete {
        /// The key.
        key: Key,
        /// The timestamp; `None` lets the server assign one.
        ts: Option<u64>,
    },
}

/// How equal timestamps rank by origin, highest first.
pub type TieRule = [OriginKind; 3];

/// A table's settings. [`TableSettings::default`] is the schema's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSettings {
    /// Versions of each key to keep.
    pub max_versions: u32,
    /// Longest a superseded version is kept; `None` keeps it until `max_versions` pushes it out.
    pub version_retention_ms: Option<u64>,
    /// Time to live of writes that carry none; `None` never expires.
    pub default_ttl_ms: Option<u64>,
    /// `None` sends nothing: the server's default (Direct, Stream, Bulk).
    pub tie_rule: Option<TieRule>,
}

impl Default for TableSettings {
    fn default() -> Self {
        TableSettings { max_versions: 3, version_retention_ms: None, default_ttl_ms: None, tie_rule: None }
    }
}

/// Changes to some settings of a table; each `None` / `false` leaves one unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterTable {
    /// The table.
    pub name: String,
    /// A new `max_versions`.
    pub max_versions: Option<u32>,
    /// A new retention.
    pub version_retention_ms: Option<u64>,
    /// Removes the retention.
    pub clear_version_retention: bool,
    /// A new default TTL.
    pub default_ttl_ms: Option<u64>,
    /// Removes the default TTL.
    pub clear_default_ttl: bool,
    /// A new tie rule.
    pub tie_rule: Option<TieRule>,
}

/// A table and its settings, as the server holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The name.
    pub name: String,
    /// The settings (the tie rule always filled in).
    pub settings: TableSettings,
}

/// How the server's shards split the partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Logical partitions.
    pub partition_count: u32,
    /// Shards serving them.
    pub shard_count: u32,
    /// For each partition, the port of the shard that owns it.
    pub owner_ports: Vec<u16>,
}

/// The server's answer to the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The version the connection speaks: at most the one asked for.
    pub protocol_version: u32,
    /// The server's name.
    pub server_name: String,
    /// The server's version.
    pub server_version: String,
    /// The partition map.
    pub topology: Topology,
}

/// A visible value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The value.
    pub value: Vec<u8>,
    /// The version holding it.
    pub version: Version,
    /// When it stops being visible, Unix milliseconds; `None` never.
    pub expires_at_ms: Option<u64>,
}

/// What to scan within one partition key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanRange {
    /// Smallest sort key, inclusive; `None` unbounded.
    pub from: Option<Vec<u8>>,
    /// Greatest sort key, inclusive; `None` unbounded.
    pub to: Option<Vec<u8>>,
    /// Most rows per page; 0 asks for the server's default.
    pub limit: u32,
    /// Descending order.
    pub reverse: bool,
    /// Read as of this timestamp; `None` reads the latest.
    pub as_of: Option<u64>,
}

/// One row of a scan page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The row's sort key.
    pub sort_key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The version holding it.
    pub version: Version,
    /// When it stops being visible; `None` never.
    pub expires_at_ms: Option<u64>,
}

/// One page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// The rows, in the scan's order.
    pub rows: Vec<ScanRow>,
    /// Where the next page starts; `None` when the range is done.
    pub cursor: Option<Vec<u8>>,
}

/// One retained version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Its identity.
    pub version: Version,
    /// A delete.
    pub tombstone: bool,
    /// The value (empty for a tombstone).
    pub value: Vec<u8>,
    /// When it expires; `None` never.
    pub expires_at_ms: Option<u64>,
}

/// A key's retained versions, greatest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The versions.
    pub versions: Vec<VersionEntry>,
    /// The table-wide watermark in force, if any.
    pub watermark: Option<Version>,
}

/// One counter or gauge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// What it measures; ends in its unit.
    pub name: String,
    /// The shard; `None` for the whole server.
    pub shard: Option<u32>,
    /// The partition; `None` for a shard or the server.
    pub partition: Option<u32>,
    /// The value.
    pub value: u64,
}
