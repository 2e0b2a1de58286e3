//! The client's error type, and the v1 error codes a server answers with. A failed request is a
//! typed [`ServerError`]; everything else is the connection or the bytes on it.

/// Why a request failed, as the v1 schema numbers it. A code this client does not know is read
/// as [`ErrorCode::Internal`], as the protocol asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs, reason = "the schema's ErrorCode documents each code; FORMAT.md lists them")]
pub enum ErrorCode {
    Internal,
    BadRequest,
    UnknownTable,
    TableExists,
    ValueTooLarge,
    KeyTooLarge,
    BatchTooLarge,
    TimestampTooFarInFuture,
    Busy,
    Timeout,
    Poisoned,
    Corruption,
    Io,
    Unsupported,
    ProtocolVersion,
    NotOwner,
    CrossPartitionBatch,
    FrameTooLarge,
    ShuttingDown,
}

impl ErrorCode {
    /// Every v1 code, in wire order: a code's wire value is its index.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::Internal,
        ErrorCode::BadRequest,
        ErrorCode::UnknownTable,
        ErrorCode::TableExists,
        ErrorCode::ValueTooLarge,
        ErrorCode::KeyTooLarge,
        ErrorCode::BatchTooLarge,
        ErrorCode::TimestampTooFarInFuture,
        ErrorCode::Busy,
        ErrorCode::Timeout,
        ErrorCode::Poisoned,
        ErrorCode::Corruption,
        ErrorCode::Io,
        ErrorCode::Unsupported,
        ErrorCode::ProtocolVersion,
        ErrorCode::NotOwner,
        ErrorCode::CrossPartitionBatch,
        ErrorCode::FrameTooLarge,
        ErrorCode::ShuttingDown,
    ];

    /// The code with wire value `code`; unknown values read as `Internal`.
    pub fn from_wire(code: u16) -> ErrorCode {
        ErrorCode::ALL.get(usize::from(code)).copied().unwrap_or(ErrorCode::Internal)
    }
}

/// A request the server refused, as it answered it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ServerError {
    /// Why, for programs.
    pub code: ErrorCode,
    /// Why, for people; never parse it.
    pub message: String,
}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered the request with an error.
    #[error("request refused: {0}")]
    Server(ServerError),
    /// The server reported a problem with the connection itself (request id 0) and closes it.
    #[error("connection refused: {0}")]
    Connection(ServerError),
    /// A socket operation failed (timeouts included).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The server closed the connection before answering.
    #[error("the server closed the connection")]
    Closed,
    /// A reply frame announces more bytes than this client accepts.
    #[error("reply of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The client's limit.
        max: usize,
    },
    /// A reply frame announces an empty flatbuffer.
    #[error("reply frame is empty")]
    EmptyFrame,
    /// The flatbuffers verifier refused a reply.
    #[error("invalid reply: {0}")]
    Verify(#[from] flatbuffers::InvalidFlatbuffer),
    /// A verified reply breaks a rule of the protocol.
    #[error("malformed reply: {field}: {reason}")]
    Malformed {
        /// The field, as `Table.field`.
        field: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// A reply carries another request's id.
    #[error("reply to request {got} while waiting for {expected}")]
    WrongRequestId {
        /// The id sent.
        expected: u64,
        /// The id received.
        got: u64,
    },
    /// A scan's range did not end within the pages the caller allowed.
    #[error("the scan did not end within {max_pages} pages")]
    TooManyPages {
        /// The caller's bound.
        max_pages: usize,
    },
    /// The server answered with a reply of the wrong kind.
    #[error("expected {expected}, got {got}")]
    UnexpectedReply {
        /// The reply the request calls for.
        expected: &'static str,
        /// The reply received.
        got: &'static str,
    },
}
