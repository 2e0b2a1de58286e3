//! Bulk loads: datasets built offline into segment files, then linked into a running store.
//!
//! - [`build`] turns records into per-partition sorted segment files and a load descriptor,
//!   with bounded memory (external sort through [`spill`] files) and in parallel. It runs on
//!   any machine, on [`crate::io::std_fs::StdDisk`], with no daemon.
//! - [`descriptor`] is the load descriptor (`load.json`): id, table, mode, snapshot, partition
//!   count, each file's size and checksum.
//! - [`validate`] checks a load directory against a store before anything is touched.
//! - [`visibility`] is the process-wide set of loads reads must not see: a load is hidden from
//!   before its first manifest edit until its load-level commit record is durable, and again
//!   from its rollback on.
//!
//! The engine links a validated file with one manifest edit (`engine/link.rs`); the daemon
//! runs the two-phase commit across shards.

pub mod build;
pub mod descriptor;
pub mod run_buffer;
pub mod spill;
pub mod validate;
pub mod visibility;

pub use build::{BuildError, BuildOptions, BuildSummary, Builder, BulkRecord, InputSink};
pub use descriptor::{DESCRIPTOR_FILE, LoadDescriptor, LoadFile, LoadMode};
pub use validate::{LinkTarget, LoadRejection, ValidatedFile, ValidatedLoad};
pub use visibility::LoadVisibility;

use crate::ids::PartitionId;

/// The partition `partition_key` belongs to among `count`: `xxh3_64(partition_key) % count`,
/// the client's rule (`nacre_wire::partition_of`).
pub fn partition_of(partition_key: &[u8], count: u32) -> PartitionId {
    PartitionId((xxhash_rust::xxh3::xxh3_64(partition_key) % u64::from(count.max(1))) as u32)
}

/// The bit position of the input number in a bulk record's `seq`: `seq = input << 40 | row`.
pub const SEQ_INPUT_SHIFT: u32 = 40;
