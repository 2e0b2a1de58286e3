//! The codec's error types: what can be wrong with a frame ([`WireError`]), and, inside it,
//! what can be wrong with a well-formed message ([`MessageError`]). It owns no decoding logic;
//! the client's own failures (timeouts, lost connections) are [`crate::ClientError`].

use crate::types::ErrorCode;

/// Why bytes are not a valid frame of the protocol.
///
/// Two kinds, and a peer treats them differently. A *frame* error (every variant but
/// [`WireError::Message`]) leaves the stream unusable or the request unidentifiable: answer
/// with request id 0 and close the connection. A *message* error comes from a frame that passed
/// verification, so its request id is known: answer that request and keep serving the
/// connection. That is how a server answers a newer client's unknown request kind with
/// [`ErrorCode::Unsupported`] rather than hanging up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The length prefix announces more bytes than the limit allows; nothing was allocated.
    #[error("frame of {len} bytes is over the limit of {max}")]
    FrameTooLarge {
        /// The announced length of the flatbuffer.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The length prefix announces an empty flatbuffer.
    #[error("frame announces an empty flatbuffer")]
    EmptyFrame,
    /// The bytes end before the frame does.
    #[error("frame truncated: needs {needed} bytes, has {available}")]
    Truncated {
        /// Bytes the frame needs, prefix included.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// Bytes follow the end of the frame the length prefix announces.
    #[error("{extra} bytes follow the end of the frame")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The flatbuffers verifier rejected the buffer (out-of-bounds offset, bad UTF-8, a missing
    /// required field, a verifier limit).
    #[error("invalid flatbuffer: {0}")]
    Verify(#[from] flatbuffers::InvalidFlatbuffer),
    /// A verified frame whose message breaks a rule of the protocol.
    #[error("request {request_id}: {problem}")]
    Message {
        /// The id the frame carries.
        request_id: u64,
        /// What is wrong.
        problem: MessageError,
    },
}

impl WireError {
    /// The request id, when the frame was sound enough to carry one.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            WireError::Message { request_id, .. } => Some(*request_id),
            _ => None,
        }
    }

    /// The code a server answers this error with.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            WireError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            WireError::Message { problem: MessageError::UnknownKind { .. }, .. } => ErrorCode::Unsupported,
            WireError::Message { problem: MessageError::TooManyItems { .. }, .. } => ErrorCode::BatchTooLarge,
            _ => ErrorCode::BadRequest,
        }
    }
}

/// Why a verified message is still not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// A request or response kind this build does not know (a newer peer).
    #[error("unknown message kind {tag}")]
    UnknownKind {
        /// The union tag.
        tag: u8,
    },
    /// An enum field holds a value this build does not know.
    #[error("{field} holds unknown value {value}")]
    UnknownEnumValue {
        /// The field, as `Table.field`.
        field: &'static str,
        /// The value found.
        value: u16,
    },
    /// A field breaks a rule of the schema that the verifier cannot check.
    #[error("{field}: {reason}")]
    InvalidField {
        /// The field, as `Table.field`.
        field: &'static str,
        /// The rule broken.
        reason: &'static str,
    },
    /// A vector holds more elements than the limit allows; nothing was copied.
    #[error("{field} holds {len} elements, over the limit of {max}")]
    TooManyItems {
        /// The field, as `Table.field`.
        field: &'static str,
        /// How many it holds.
        len: usize,
        /// The limit.
        max: usize,
    },
}
