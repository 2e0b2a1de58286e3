//! `nacre-storage`: one partition's versioned LSM engine on direct I/O.
//!
//! Owns the record and version model and the ordering rule, the memtable, the shared per-core
//! WAL, the segment format, the manifest, recovery, compaction planning and its executor. It knows
//! nothing of cores, sockets or Kafka; the daemon composes engines per core. All disk access
//! goes through [`io`]; glommio is named nowhere else.

#![forbid(unsafe_code)]

pub mod block_cache;
pub mod bulk;
pub mod checksum;
pub mod clock;
pub mod codec;
pub mod compaction;
pub mod engine;
pub mod error;
pub mod ids;
pub mod io;
pub mod log;
pub mod manifest;
pub mod memtable;
pub mod options;
pub mod record;
pub mod segment;
pub mod version;
pub mod wal;

pub use clock::{Clock, Hlc, ManualClock, SystemClock};
pub use engine::{
    CompactionOptions, CompactionOutcome, Engine, EngineStats, KeyHistory, KeysPage, KeysRequest, LoadSegments,
    MaintenanceCounters, MemoryTally, PACE_STEP_BYTES, Pacer, ReadAt, Row, ScanPage, ScanRequest, ScanRow, StreamAck,
    Unpaced, WriteAck,
};
pub use error::{Error, Limit, Result};
pub use ids::{Lsn, PartitionId, SegmentId, TableId, Ts};
pub use options::{Durability, EngineOptions, Limits, TableSettings};
pub use record::{Entry, Key, KeyRef};
pub use version::{Origin, OriginKind, Payload, TieRule, Version, VersionId, Watermark};
pub use wal::{RecoveredWal, Wal, WalOptions};
