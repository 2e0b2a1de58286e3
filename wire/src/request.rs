//! Requests: the [`Request`] enum every client sends and the daemon matches on, and its frame
//! codec. Encoding never fails; decoding verifies the frame first and returns a typed
//! [`WireError`] for anything malformed, never panics.

mod decode;
mod encode;

use crate::error::WireError;
use crate::frame::FrameLimits;
use crate::types::{
    AlterTable, Compact, CreateTable, Delete, DropTable, Explain, Get, Handshake, MultiGet, Put, RemoveSource, Scan,
    SourceSpec, Versions, WriteBatch,
};

/// A request, as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Opens a connection; must come first.
    Handshake(Handshake),
    /// Asks for the partition-to-port map.
    Topology,
    /// Creates a table.
    CreateTable(CreateTable),
    /// Changes a table's settings.
    AlterTable(AlterTable),
    /// Drops a table.
    DropTable(DropTable),
    /// Lists every table.
    ListTables,
    /// Writes a value.
    Put(Put),
    /// Deletes a key.
    Delete(Delete),
    /// Writes atomically within one partition.
    WriteBatch(WriteBatch),
    /// Reads one key.
    Get(Get),
    /// Reads several keys.
    MultiGet(MultiGet),
    /// Reads a page of one partition key's rows.
    Scan(Scan),
    /// Reads a key's retained versions.
    Versions(Versions),
    /// Asks for server statistics.
    Stats,
    /// Starts consuming Kafka topics into a table.
    AddSource(SourceSpec),
    /// Lists every source.
    ListSources,
    /// Stops consuming a source.
    RemoveSource(RemoveSource),
    /// Links the bulk load in a directory on the server's machine.
    BulkLink {
        /// The load directory.
        dir: String,
    },
    /// The state of one bulk load, or of every load (`None`).
    BulkStatus {
        /// The load id.
        load_id: Option<u32>,
    },
    /// Withdraws a linked bulk load.
    BulkRollback {
        /// The load id.
        load_id: u32,
    },
    /// Compacts the partitions holding a table.
    Compact(Compact),
    /// Explains why a key reads as it does.
    Explain(Explain),
}

impl Request {
    /// The request's kind, for logs, metrics and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Handshake(_) => "handshake",
            Request::Topology => "topology",
            Request::CreateTable(_) => "create_table",
            Request::AlterTable(_) => "alter_table",
            Request::DropTable(_) => "drop_table",
            Request::ListTables => "list_tables",
            Request::Put(_) => "put",
            Request::Delete(_) => "delete",
            Request::WriteBatch(_) => "write_batch",
            Request::Get(_) => "get",
            Request::MultiGet(_) => "multi_get",
            Request::Scan(_) => "scan",
            Request::Versions(_) => "versions",
            Request::Stats => "stats",
            Request::AddSource(_) => "add_source",
            Request::ListSources => "list_sources",
            Request::RemoveSource(_) => "remove_source",
            Request::BulkLink { .. } => "bulk_link",
            Request::BulkStatus { .. } => "bulk_status",
            Request::BulkRollback { .. } => "bulk_rollback",
            Request::Compact(_) => "compact",
            Request::Explain(_) => "explain",
        }
    }

    /// The partition key that decides which shard serves the request: `None` for requests
    /// about the server or a table as a whole, and for a multi-get (whose keys may span
    /// partitions). A write batch is routed by its first op.
    pub fn partition_key(&self) -> Option<&[u8]> {
        match self {
            Request::Put(p) => Some(&p.key.partition_key),
            Request::Delete(d) => Some(&d.key.partition_key),
            Request::WriteBatch(b) => b.ops.first().map(|op| op.key().partition_key.as_slice()),
            Request::Get(g) => Some(&g.key.partition_key),
            Request::Scan(s) => Some(&s.partition_key),
            Request::Versions(v) => Some(&v.key.partition_key),
            Request::Explain(e) => Some(&e.key.partition_key),
            Request::Handshake(_)
            | Request::Topology
            | Request::CreateTable(_)
            | Request::AlterTable(_)
            | Request::DropTable(_)
            | Request::ListTables
            | Request::MultiGet(_)
            | Request::Stats
            | Request::AddSource(_)
            | Request::ListSources
            | Request::RemoveSource(_)
            | Request::BulkLink { .. }
            | Request::BulkStatus { .. }
            | Request::BulkRollback { .. }
            | Request::Compact(_) => None,
        }
    }
}

/// The frame carrying `request` with id `request_id`.
pub fn encode_request(request_id: u64, request: &Request) -> Vec<u8> {
    encode::encode(request_id, request)
}

/// The id and request in `frame` (exactly one frame, prefix included), under the default
/// [`FrameLimits`].
pub fn decode_request(frame: &[u8]) -> Result<(u64, Request), WireError> {
    decode_request_with(frame, &FrameLimits::default())
}

/// The id and request in `frame`, under `limits`.
pub fn decode_request_with(frame: &[u8], limits: &FrameLimits) -> Result<(u64, Request), WireError> {
    decode::decode(frame, limits)
}
