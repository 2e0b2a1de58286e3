//! Responses: the [`Reply`] enum a server answers with (an error is one of its variants) and its
//! frame codec. Encoding never fails; decoding verifies the frame first and returns a typed
//! [`WireError`] for anything malformed, never panics.

mod decode;
mod encode;

use crate::error::WireError;
use crate::frame::FrameLimits;
use crate::types::{
    BulkLoadInfo, CompactionReport, ErrorReply, Explanation, HandshakeOk, KeyHistory, Row, RowRef, ScanPage,
    SourceInfo, Stat, TableInfo, Topology, VersionId,
};

/// A server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The request failed; it changed nothing unless the code says otherwise.
    Error(ErrorReply),
    /// Answers [`crate::Request::Handshake`].
    Handshake(HandshakeOk),
    /// Answers [`crate::Request::Topology`].
    Topology(Topology),
    /// Answers [`crate::Request::CreateTable`] and [`crate::Request::AlterTable`]: the table as
    /// it now is.
    Table(TableInfo),
    /// Answers [`crate::Request::DropTable`].
    TableDropped,
    /// Answers [`crate::Request::ListTables`], in name order.
    Tables(Vec<TableInfo>),
    /// Answers [`crate::Request::Put`] and [`crate::Request::Delete`]: the version written.
    Written(VersionId),
    /// Answers [`crate::Request::WriteBatch`]: the versions written, in the order of the ops.
    BatchWritten(Vec<VersionId>),
    /// Answers [`crate::Request::Get`]; `None` when nothing is visible.
    Get(Option<Row>),
    /// Answers [`crate::Request::MultiGet`]: one result per key, in order.
    MultiGet(Vec<Option<Row>>),
    /// Answers [`crate::Request::Scan`].
    Scan(ScanPage),
    /// Answers [`crate::Request::Versions`].
    Versions(KeyHistory),
    /// Answers [`crate::Request::Stats`].
    Stats(Vec<Stat>),
    /// Answers [`crate::Request::AddSource`]: the source as created.
    Source(SourceInfo),
    /// Answers [`crate::Request::ListSources`], in name order.
    Sources(Vec<SourceInfo>),
    /// Answers [`crate::Request::RemoveSource`].
    SourceRemoved,
    /// Answers [`crate::Request::BulkLink`], [`crate::Request::BulkStatus`] and
    /// [`crate::Request::BulkRollback`]: the loads concerned.
    BulkLoads(Vec<BulkLoadInfo>),
    /// Answers [`crate::Request::Compact`].
    Compacted(CompactionReport),
    /// Answers [`crate::Request::Explain`].
    Explain(Explanation),
}

impl Reply {
    /// The reply's kind, for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Error(_) => "error",
            Reply::Handshake(_) => "handshake",
            Reply::Topology(_) => "topology",
            Reply::Table(_) => "table",
            Reply::TableDropped => "table_dropped",
            Reply::Tables(_) => "tables",
            Reply::Written(_) => "written",
            Reply::BatchWritten(_) => "batch_written",
            Reply::Get(_) => "get",
            Reply::MultiGet(_) => "multi_get",
            Reply::Scan(_) => "scan",
            Reply::Versions(_) => "versions",
            Reply::Stats(_) => "stats",
            Reply::Source(_) => "source",
            Reply::Sources(_) => "sources",
            Reply::BulkLoads(_) => "bulk_loads",
            Reply::SourceRemoved => "source_removed",
            Reply::Compacted(_) => "compacted",
            Reply::Explain(_) => "explain",
        }
    }
}

/// The frame carrying `reply` to the request with id `request_id` (0 for an error about the
/// connection itself).
pub fn encode_response(request_id: u64, reply: &Reply) -> Vec<u8> {
    encode::encode(request_id, reply)
}

/// Encodes replies into buffers the caller owns, with one builder reused from reply to reply:
/// no allocation per reply once the builder has grown to fit the replies it makes. A builder
/// grown past [`ResponseEncoder::KEEP_BYTES`] by a large reply is dropped after it.
#[derive(Default)]
pub struct ResponseEncoder {
    builder: crate::codec::ReusedBuilder,
}

impl ResponseEncoder {
    /// The largest frame after which the builder is kept for the next reply.
    pub const KEEP_BYTES: usize = crate::codec::ReusedBuilder::KEEP_BYTES;

    /// Appends the frame carrying `reply` to the request with id `request_id` to `out`: the
    /// same bytes [`encode_response`] returns.
    pub fn encode_into(&mut self, request_id: u64, reply: &Reply, out: &mut Vec<u8>) {
        self.builder.append(out, |fbb| encode::encode_in(fbb, request_id, reply));
    }
}

/// The request id and reply in `frame` (exactly one frame, prefix included), under the default
/// [`FrameLimits`].
pub fn decode_response(frame: &[u8]) -> Result<(u64, Reply), WireError> {
    decode_response_with(frame, &FrameLimits::default())
}

/// The request id and reply in `frame`, under `limits`.
pub fn decode_response_with(frame: &[u8], limits: &FrameLimits) -> Result<(u64, Reply), WireError> {
    decode::decode(frame, limits)
}

/// A reply as a client's response loop takes it from its frame: a get's row read in place,
/// borrowing the frame, or any other reply decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyInPlace<'a> {
    /// Answers a get, its row (if any) borrowed from the frame.
    Get(Option<RowRef<'a>>),
    /// Any other reply.
    Other(Reply),
}

/// The request id and reply in `frame`, under `limits`, with a get's row read in place: the
/// frame is verified once, as [`decode_response_with`] verifies it, and decodes to the same
/// reply (tested).
pub fn decode_response_in_place<'a>(
    frame: &'a [u8],
    limits: &FrameLimits,
) -> Result<(u64, ReplyInPlace<'a>), WireError> {
    decode::decode_in_place(frame, limits)
}
