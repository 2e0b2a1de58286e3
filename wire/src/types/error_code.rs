//! The error codes a server answers with, and the error reply. Owns the mapping between codes
//! and their wire numbers; which failure gets which code is the daemon's business.

use std::fmt;

/// Why a request failed. Mirrors the schema's `ErrorCode`; numbers are fixed forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A server bug or an unclassified failure.
    Internal,
    /// The request is malformed or breaks a documented rule.
    BadRequest,
    /// The table does not exist.
    UnknownTable,
    /// `CreateTable` named a table that exists.
    TableExists,
    /// A value is over the server's limit.
    ValueTooLarge,
    /// A partition key or sort key is over the server's limit.
    KeyTooLarge,
    /// A write batch has too many entries or bytes.
    BatchTooLarge,
    /// A timestamp is beyond the server's clock-skew bound.
    TimestampTooFarInFuture,
    /// The server is overloaded; retry later.
    Busy,
    /// The server gave up waiting (a flush, a commit, a forwarded request).
    Timeout,
    /// The shard refuses writes after a failed fsync until it is restarted.
    Poisoned,
    /// Stored data failed its checksum or does not decode; nothing corrupt is served.
    Corruption,
    /// The server's disk failed.
    Io,
    /// The request kind, or an option of it, is not supported by this server.
    Unsupported,
    /// The handshake's protocol version cannot be served, or the handshake is missing.
    ProtocolVersion,
    /// The receiving shard does not own the partition and will not forward.
    NotOwner,
    /// A write batch spans more than one partition.
    CrossPartitionBatch,
    /// The frame was over the server's size limit; the server closes the connection.
    FrameTooLarge,
    /// The server is shutting down and accepts no new requests.
    ShuttingDown,
    /// `AddSource` named a source that exists.
    SourceExists,
    /// The source does not exist.
    UnknownSource,
    /// A bulk load was refused; the message starts with the reason's token. Nothing changed.
    LoadRejected,
    /// No bulk load has that id.
    UnknownLoad,
    /// A code this build does not know (a newer server); treat it as [`ErrorCode::Internal`].
    Other(u16),
}

impl ErrorCode {
    /// Every named code, in wire order.
    pub const NAMED: [ErrorCode; 23] = [
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
        ErrorCode::SourceExists,
        ErrorCode::UnknownSource,
        ErrorCode::LoadRejected,
        ErrorCode::UnknownLoad,
    ];

    /// The wire number.
    pub fn code(self) -> u16 {
        match self {
            ErrorCode::Other(code) => code,
            named => {
                let index = Self::NAMED.iter().position(|c| *c == named).expect("every named code is listed");
                u16::try_from(index).expect("fewer than 65,536 codes")
            }
        }
    }

    /// The code of a wire number; numbers this build does not know become [`ErrorCode::Other`].
    pub fn from_code(code: u16) -> ErrorCode {
        Self::NAMED.get(usize::from(code)).copied().unwrap_or(ErrorCode::Other(code))
    }

    /// True if retrying the same request later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorCode::Busy | ErrorCode::Timeout | ErrorCode::NotOwner | ErrorCode::ShuttingDown)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorCode::Other(code) => write!(f, "error code {code}"),
            named => write!(f, "{named:?}"),
        }
    }
}

/// A failed request: a code to act on and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReply {
    /// What went wrong.
    pub code: ErrorCode,
    /// Details, for logs and people; never parse it.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_fixed_and_round_trip() {
        // Pinned: these numbers are in the schema and on the wire.
        assert_eq!(ErrorCode::Internal.code(), 0);
        assert_eq!(ErrorCode::BadRequest.code(), 1);
        assert_eq!(ErrorCode::NotOwner.code(), 15);
        assert_eq!(ErrorCode::ShuttingDown.code(), 18);
        assert_eq!(ErrorCode::SourceExists.code(), 19);
        assert_eq!(ErrorCode::UnknownSource.code(), 20);
        for code in ErrorCode::NAMED {
            assert_eq!(ErrorCode::from_code(code.code()), code);
        }
        assert_eq!(ErrorCode::LoadRejected.code(), 21);
        assert_eq!(ErrorCode::UnknownLoad.code(), 22);
        assert_eq!(ErrorCode::from_code(23), ErrorCode::Other(23));
        assert_eq!(ErrorCode::Other(500).code(), 500);
        assert_eq!(ErrorCode::Other(500).to_string(), "error code 500");
        assert_eq!(ErrorCode::Busy.to_string(), "Busy");
    }
}
