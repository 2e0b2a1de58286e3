//! The one error type of nacre-wire's codec: everything that can be wrong with a frame. It owns
//! no decoding logic; the client's own failures (timeouts, lost connections) are
//! [`crate::ClientError`].

/// Why bytes are not a valid frame of the protocol.
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
    /// The flatbuffers verifier rejected the buffer (out-of-bounds offset, bad UTF-8, a missing
    /// required field, a verifier limit).
    #[error("invalid flatbuffer: {0}")]
    Verify(#[from] flatbuffers::InvalidFlatbuffer),
    /// A request kind this build does not know (a newer peer, or garbage).
    #[error("unknown request kind {tag}")]
    UnknownRequestKind {
        /// The union tag.
        tag: u8,
    },
    /// A response kind this build does not know.
    #[error("unknown response kind {tag}")]
    UnknownResponseKind {
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
}
