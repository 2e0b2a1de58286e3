//! The client's error type: everything a call can end in besides its reply. The codec's own
//! failures stay [`WireError`]s, carried inside.

use crate::error::WireError;
use crate::types::{ErrorCode, ErrorReply};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Why a connection ended. Every request in flight on it fails with this reason.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The server closed the connection.
    #[error("closed by the server")]
    ClosedByServer,
    /// Reading or writing the socket failed.
    #[error("socket error: {0}")]
    Io(Arc<std::io::Error>),
    /// The server sent bytes that are not a valid response frame.
    #[error("bad frame from the server: {0}")]
    BadFrame(Arc<WireError>),
    /// The server reported an error about the connection itself (request id 0), then closed it.
    #[error("connection error from the server: {} ({})", .0.code, .0.message)]
    Refused(ErrorReply),
    /// The client dropped the connection.
    #[error("closed by the client")]
    ClosedByClient,
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The address did not resolve to anything.
    #[error("could not resolve the server address: {source}")]
    Resolve {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting failed.
    #[error("could not connect to {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// No reply came within the request timeout. The request may or may not have been applied.
    #[error("{request} got no reply within {after:?}")]
    Timeout {
        /// The request's kind.
        request: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The connection ended before the reply came. The request may or may not have been
    /// applied.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionClosed {
        /// The server address of the connection.
        addr: SocketAddr,
        /// Why it ended.
        reason: Disconnect,
    },
    /// The server answered with an error.
    #[error("server error {code}: {message}")]
    Server {
        /// What went wrong.
        code: ErrorCode,
        /// Details, for people.
        message: String,
    },
    /// The request encodes to a frame over the client's frame limit; nothing was sent.
    #[error("request of {len} bytes is over the frame limit of {max}")]
    RequestTooLarge {
        /// The flatbuffer's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The server answered with a reply of the wrong kind, or of the wrong shape (a multi-get
    /// with a different number of results).
    #[error("{request} got an unexpected {reply} reply")]
    UnexpectedReply {
        /// The request's kind.
        request: &'static str,
        /// The reply's kind.
        reply: &'static str,
    },
    /// The server's reply to this request is a sound frame this client cannot read (a reply
    /// kind or enum value from a newer server, a broken rule). The connection stays usable.
    #[error("unreadable reply: {source}")]
    BadReply {
        /// What is wrong with it.
        #[source]
        source: WireError,
    },
    /// The server chose a protocol version this client does not speak.
    #[error("server speaks protocol version {server}; this client speaks {client}")]
    ProtocolVersion {
        /// The highest version this client speaks.
        client: u32,
        /// The version the server chose.
        server: u32,
    },
    /// A write batch's ops fall in more than one partition; nothing was sent.
    #[error("write batch spans partitions {first} and {other}")]
    CrossPartitionBatch {
        /// The first op's partition.
        first: u32,
        /// Another op's partition.
        other: u32,
    },
}

impl ClientError {
    /// The server's error code, if the server answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<ErrorReply> for ClientError {
    fn from(e: ErrorReply) -> Self {
        ClientError::Server { code: e.code, message: e.message }
    }
}
