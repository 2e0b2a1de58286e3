//! The plain Rust types of every request and reply: what the daemon, the client and the CLI
//! build and match on. They carry no flatbuffers types and do no I/O; the codec
//! ([`crate::request`], [`crate::response`]) converts them to and from frames.

mod bulk;
mod compaction;
mod error_code;
mod explain;
mod read;
mod session;
mod source;
mod table;
mod version;
mod write;

pub use bulk::{BulkLoadInfo, BulkLoadState, BulkMode, LinkVerify};
pub use compaction::{Compact, CompactionReport};
pub use error_code::{ErrorCode, ErrorReply};
pub use explain::{
    CandidateStanding, Explain, ExplainCandidate, ExplainVerdict, Explanation, RuleStep, VersionLocation,
};
pub use read::{
    Get, GetRef, Key, KeyHistory, MultiGet, Payload, Row, RowRef, Scan, ScanPage, ScanRow, VersionEntry, Versions,
};
pub use session::{Handshake, HandshakeOk, PROTOCOL_VERSION, Stat, Topology};
pub use source::{RemoveSource, SourceInfo, SourceSpec, SourceTopic, stream_of_source_id, stream_source_id};
pub use table::{AlterTable, CreateTable, DropTable, TableInfo, TableSettings, TieRule};
pub use version::{Origin, OriginKind, Ts, VersionId};
pub use write::{BatchOp, Delete, Durability, Put, PutRef, WriteBatch};
