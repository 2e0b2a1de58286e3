//! Requests: the [`Request`] enum every client sends and the daemon matches on, and its frame
//! codec. Encoding never fails; decoding verifies the frame first and returns a typed
//! [`WireError`] for anything malformed, never panics.

mod decode;
mod encode;

use crate::error::WireError;
use crate::frame::FrameLimits;
use crate::types::{
    AlterTable, Compact, CreateTable, Delete, DropTable, Explain, Get, GetRef, Handshake, LinkVerify, MultiGet, Put,
    PutRef, RemoveSource, Scan, SourceSpec, Versions, WriteBatch,
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
        /// How much of the load the server reads and checks before it commits.
        verify: LinkVerify,
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
    /// Every request kind's name, indexed by [`Request::kind_index`].
    pub const KINDS: [&'static str; 22] = [
        "handshake",
        "topology",
        "create_table",
        "alter_table",
        "drop_table",
        "list_tables",
        "put",
        "delete",
        "write_batch",
        "get",
        "multi_get",
        "scan",
        "versions",
        "stats",
        "add_source",
        "list_sources",
        "remove_source",
        "bulk_link",
        "bulk_status",
        "bulk_rollback",
        "compact",
        "explain",
    ];

    /// [`Request::kind_index`] of a get.
    pub const GET_KIND: usize = 9;

    /// The request's kind, for logs, metrics and errors.
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    /// The request's kind as an index into [`Request::KINDS`], for per-kind counters.
    pub fn kind_index(&self) -> usize {
        match self {
            Request::Handshake(_) => 0,
            Request::Topology => 1,
            Request::CreateTable(_) => 2,
            Request::AlterTable(_) => 3,
            Request::DropTable(_) => 4,
            Request::ListTables => 5,
            Request::Put(_) => 6,
            Request::Delete(_) => 7,
            Request::WriteBatch(_) => 8,
            Request::Get(_) => Self::GET_KIND,
            Request::MultiGet(_) => 10,
            Request::Scan(_) => 11,
            Request::Versions(_) => 12,
            Request::Stats => 13,
            Request::AddSource(_) => 14,
            Request::ListSources => 15,
            Request::RemoveSource(_) => 16,
            Request::BulkLink { .. } => 17,
            Request::BulkStatus { .. } => 18,
            Request::BulkRollback { .. } => 19,
            Request::Compact(_) => 20,
            Request::Explain(_) => 21,
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

/// Encodes requests into buffers the caller owns, with one builder reused from request to
/// request: no allocation per request once the builder has grown to fit the requests it makes.
/// A builder grown past [`RequestEncoder::KEEP_BYTES`] by a large request is dropped after it.
#[derive(Default)]
pub struct RequestEncoder {
    builder: crate::codec::ReusedBuilder,
}

impl RequestEncoder {
    /// The largest frame after which the builder is kept for the next request.
    pub const KEEP_BYTES: usize = crate::codec::ReusedBuilder::KEEP_BYTES;

    /// Appends the frame carrying `request` with id `request_id` to `out`: the same bytes
    /// [`encode_request`] returns.
    pub fn encode_into(&mut self, request_id: u64, request: &Request, out: &mut Vec<u8>) {
        self.builder.append(out, |fbb| encode::encode_in(fbb, request_id, request));
    }

    /// Appends the frame of a get whose key the caller keeps in its own buffers: the same bytes
    /// as [`RequestEncoder::encode_into`] of the owned get, with no copy of the key made first.
    pub fn encode_get_into(&mut self, request_id: u64, get: &GetRef<'_>, out: &mut Vec<u8>) {
        self.builder.append(out, |fbb| encode::encode_get_in(fbb, request_id, get));
    }

    /// Appends the frame of a put whose key and value the caller keeps in its own buffers: the
    /// same bytes as [`RequestEncoder::encode_into`] of the owned put.
    pub fn encode_put_into(&mut self, request_id: u64, put: &PutRef<'_>, out: &mut Vec<u8>) {
        self.builder.append(out, |fbb| encode::encode_put_in(fbb, request_id, put));
    }
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

/// A request as a server's request loop takes it from its frame: a get read in place,
/// borrowing the frame, or any other request decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InPlace<'a> {
    /// A get, its fields borrowed from the frame.
    Get(GetRef<'a>),
    /// Any other request.
    Other(Request),
}

/// The id and request in `frame`, under `limits`, with a get read in place: the frame is
/// verified once, as [`decode_request_with`] verifies it, and decodes to the same request
/// (tested).
pub fn decode_request_in_place<'a>(frame: &'a [u8], limits: &FrameLimits) -> Result<(u64, InPlace<'a>), WireError> {
    decode::decode_in_place(frame, limits)
}
