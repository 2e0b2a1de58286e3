//! Engine options, limits and per-table settings, each with its documented default.

use crate::version::TieRule;

/// Sizes an input may not exceed. Every one is checked before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest partition key, bytes. Default 1 KiB; at most 65,535 (the format's u16).
    pub max_partition_key_bytes: usize,
    /// Largest sort key, bytes. Default 1 KiB; at most 65,535.
    pub max_sort_key_bytes: usize,
    /// Largest value, bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// Largest write batch, encoded bytes. Default 4 MiB.
    pub max_batch_bytes: usize,
    /// Most entries in one write batch. Default 10,000.
    pub max_batch_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_partition_key_bytes: 1024,
            max_sort_key_bytes: 1024,
            max_value_bytes: 1 << 20,
            max_batch_bytes: 4 << 20,
            max_batch_entries: 10_000,
        }
    }
}

/// How one engine behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// Input limits.
    pub limits: Limits,
    /// Memtable size at which [`crate::Engine::needs_flush`] says yes, bytes. Default 64 MiB.
    pub memtable_flush_bytes: usize,
    /// Block cache capacity, bytes of cached block payload. Default 64 MiB.
    pub block_cache_bytes: usize,
    /// Target size of a segment data block before padding, bytes. Default 4 KiB minus framing,
    /// so a block fills one aligned page.
    pub block_target_bytes: usize,
    /// Bloom filter bits per key. Default 10 (about 1% false positives).
    pub bloom_bits_per_key: usize,
    /// How far in the future a timestamp may be, milliseconds. Default 60,000.
    pub max_clock_skew_ms: u64,
    /// Bytes a segment file grows by at a time when preallocating, so appends never extend the
    /// file one block at a time. Default 4 MiB.
    pub segment_preallocate_bytes: u64,
    /// Manifest edits after which the manifest is rewritten as a snapshot. Default 1,000.
    pub manifest_snapshot_edits: usize,
    /// Put the data blocks a flush or compaction writes straight into the block cache. Direct
    /// I/O bypasses the page cache, so fresh data would otherwise be cold. Default true.
    pub cache_on_write: bool,
    /// How long a tombstone (or an expired value) is kept before a bottommost compaction may
    /// reclaim it, milliseconds: the bound on how late a write stamped before it may arrive and
    /// still be hidden by it. Default 86,400,000 (24 h).
    pub tombstone_grace_ms: u64,
    /// Half-life of the write and read rates the compaction planner weighs, milliseconds.
    /// Default 60,000.
    pub heat_half_life_ms: u64,
    /// A flush leaves out the versions its own memtable pushes past their table's
    /// `max_versions` or version retention (rule 1 of the garbage-collection contract), so a
    /// hot key's overwrites reach disk once, not once per version. Default false: every version
    /// is flushed (what a test that counts versions on disk needs); nacred turns it on.
    pub retain_on_flush: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            memtable_flush_bytes: 64 << 20,
            block_cache_bytes: 64 << 20,
            block_target_bytes: 4096 - crate::segment::block::BLOCK_HEADER_BYTES,
            bloom_bits_per_key: 10,
            max_clock_skew_ms: 60_000,
            segment_preallocate_bytes: 4 << 20,
            manifest_snapshot_edits: 1_000,
            cache_on_write: true,
            tombstone_grace_ms: 86_400_000,
            heat_half_life_ms: 60_000,
            retain_on_flush: false,
        }
    }
}

/// A table's settings, as the engine needs them. The daemon owns the catalog and tells each
/// engine; the engine does not persist them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSettings {
    /// Versions of each key to keep; compaction drops older ones. Default 3.
    pub max_versions: u32,
    /// Longest a superseded version is kept, milliseconds; `None` keeps it until `max_versions`
    /// pushes it out. Default `None`.
    pub version_retention_ms: Option<u64>,
    /// Time-to-live applied to writes that carry none, milliseconds. Default `None`.
    pub default_ttl_ms: Option<u64>,
    /// How equal timestamps rank by origin.
    pub tie_rule: TieRule,
}

impl Default for TableSettings {
    fn default() -> Self {
        Self { max_versions: 3, version_retention_ms: None, default_ttl_ms: None, tie_rule: TieRule::default() }
    }
}

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// After its WAL bytes are durable (group-committed fdatasync).
    #[default]
    Sync,
    /// After it is in the memtable and queued for the WAL; a crash before the next commit
    /// (a sync writer's, one past `async_commit_bytes`, or the owner's periodic one) may lose it.
    Async,
}
