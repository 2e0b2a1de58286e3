//! Framing and limits: `u32 little-endian length | flatbuffer`, the frame-size cap (checked
//! before anything is allocated), and the verifier limits every decode runs under.
//!
//! A frame is exactly a flatbuffers size-prefixed buffer, so alignment inside it counts from the
//! prefix's first byte. This module owns the byte layout of a frame and nothing about what the
//! flatbuffer says; it does no I/O, so the daemon (glommio) and the client (tokio) share it.

use crate::error::{MessageError, WireError};
use flatbuffers::VerifierOptions;

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Default cap on a frame's flatbuffer, bytes (the prefix not counted): 8 MiB. A write batch at
/// the engine's default limit (4 MiB of entries) fits with room for framing overhead.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 << 20;

/// Default cap on how deeply tables nest. The schema is not recursive and its deepest path
/// (`Response` → `ListSourcesReply` → `SourceInfo` → `SourceTopic`) is 4 tables, so 16 only
/// rejects garbage.
pub const DEFAULT_MAX_DEPTH: usize = 16;

/// Default cap on the elements of any one vector (keys, ops, rows, versions, stats, ports):
/// 100,000. Checked before the elements are copied out, since a decoded element can take ten
/// times the bytes it took on the wire.
pub const DEFAULT_MAX_ITEMS: usize = 100_000;

/// The verifier's apparent-size budget, as a multiple of the flatbuffer's own length. The
/// verifier counts every byte it reads, and reads offsets and shared vtables once per visit, so
/// an honest buffer's apparent size exceeds its length: by 2.25x for this schema's smallest
/// tables (an empty `GetReply` per key), and by at most about 3x for any shape. A buffer whose
/// offsets point many times at one large object (a DAG that would decode into a huge tree)
/// exceeds it by far more, and is refused after work linear in its length.
pub const APPARENT_SIZE_FACTOR: usize = 8;

/// The smallest table on the wire, bytes: its offset to its vtable. Bounds how many tables an
/// honest buffer can hold.
const MIN_TABLE_BYTES: usize = 4;

/// The limits a frame is checked against, each with its documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest flatbuffer accepted or sent, bytes, prefix not counted. Default
    /// [`DEFAULT_MAX_FRAME_BYTES`]; at most `u32::MAX`.
    pub max_frame_bytes: usize,
    /// Deepest nesting of tables the verifier accepts. Default [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
    /// Most elements in any one vector of a message. Default [`DEFAULT_MAX_ITEMS`].
    pub max_items: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self { max_frame_bytes: DEFAULT_MAX_FRAME_BYTES, max_depth: DEFAULT_MAX_DEPTH, max_items: DEFAULT_MAX_ITEMS }
    }
}

impl FrameLimits {
    /// The length of the flatbuffer a prefix announces, checked against the cap. Call it on the
    /// 4 prefix bytes before allocating the body.
    pub fn body_len(&self, prefix: [u8; LENGTH_PREFIX_BYTES]) -> Result<usize, WireError> {
        let len = usize::try_from(u32::from_le_bytes(prefix)).expect("usize holds a u32");
        if len == 0 {
            return Err(WireError::EmptyFrame);
        }
        if len > self.max_frame_bytes {
            return Err(WireError::FrameTooLarge { len, max: self.max_frame_bytes });
        }
        Ok(len)
    }

    /// The length of the first frame in `buf`, prefix included, if `buf` holds all of it; `None`
    /// if more bytes are needed. For readers that buffer a stream.
    pub fn complete_frame_len(&self, buf: &[u8]) -> Result<Option<usize>, WireError> {
        let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return Ok(None);
        };
        let total = LENGTH_PREFIX_BYTES + self.body_len(*prefix)?;
        Ok((buf.len() >= total).then_some(total))
    }

    /// The flatbuffer of `frame`, which must be exactly one frame.
    pub fn body<'a>(&self, frame: &'a [u8]) -> Result<&'a [u8], WireError> {
        let Some((prefix, body)) = frame.split_first_chunk::<LENGTH_PREFIX_BYTES>() else {
            return Err(WireError::Truncated { needed: LENGTH_PREFIX_BYTES, available: frame.len() });
        };
        let len = self.body_len(*prefix)?;
        match body.len().cmp(&len) {
            std::cmp::Ordering::Less => {
                Err(WireError::Truncated { needed: LENGTH_PREFIX_BYTES + len, available: frame.len() })
            }
            std::cmp::Ordering::Greater => Err(WireError::TrailingBytes { extra: body.len() - len }),
            std::cmp::Ordering::Equal => Ok(body),
        }
    }

    /// The verifier limits for a flatbuffer of `body_len` bytes: the depth limit, at most one
    /// table per 4 bytes (the smallest a table can be), and an apparent size of
    /// [`APPARENT_SIZE_FACTOR`] times its length. Derived from the buffer's own length (itself
    /// under the cap), so verification work stays linear in the bytes received.
    pub fn verifier_options(&self, body_len: usize) -> VerifierOptions {
        let len = body_len.min(self.max_frame_bytes);
        VerifierOptions {
            max_depth: self.max_depth,
            max_tables: len / MIN_TABLE_BYTES,
            max_apparent_size: len.saturating_mul(APPARENT_SIZE_FACTOR),
            ignore_missing_null_terminator: false,
        }
    }

    /// Refuses a vector of `len` elements over [`FrameLimits::max_items`]; the decoders call it
    /// before copying a vector out.
    pub fn check_items(&self, len: usize, field: &'static str) -> Result<(), MessageError> {
        if len > self.max_items {
            return Err(MessageError::TooManyItems { field, len, max: self.max_items });
        }
        Ok(())
    }
}

/// Raw bytes behind a length prefix, for tests and tools that need a frame of arbitrary bytes.
/// Messages are never framed this way: the codec finishes them as size-prefixed flatbuffers,
/// whose alignment counts the prefix (see FORMAT.md); prefixing an unprefixed flatbuffer would
/// misalign it.
///
/// # Panics
///
/// If `body` is 4 GiB or more; flatbuffers cannot build one that large.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(body.len()).expect("a flatbuffer is under 2 GiB");
    let mut out = Vec::with_capacity(LENGTH_PREFIX_BYTES + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_len_checks_the_cap_before_anything_is_allocated() {
        let limits = FrameLimits { max_frame_bytes: 100, ..FrameLimits::default() };
        assert_eq!(limits.body_len(100u32.to_le_bytes()).expect("at the cap"), 100);
        assert!(matches!(limits.body_len(101u32.to_le_bytes()), Err(WireError::FrameTooLarge { len: 101, max: 100 })));
        assert!(matches!(limits.body_len(u32::MAX.to_le_bytes()), Err(WireError::FrameTooLarge { .. })));
        assert!(matches!(limits.body_len([0; 4]), Err(WireError::EmptyFrame)));
    }

    #[test]
    fn body_demands_exactly_one_frame() {
        let limits = FrameLimits::default();
        let f = frame(b"abcdef");
        assert_eq!(&f[..4], &6u32.to_le_bytes());
        assert_eq!(limits.body(&f).expect("one whole frame"), b"abcdef");
        assert!(matches!(limits.body(&f[..2]), Err(WireError::Truncated { needed: 4, available: 2 })));
        assert!(matches!(limits.body(&f[..7]), Err(WireError::Truncated { needed: 10, available: 7 })));
        let mut long = f.clone();
        long.push(0);
        assert!(matches!(limits.body(&long), Err(WireError::TrailingBytes { extra: 1 })));
    }

    #[test]
    fn complete_frame_len_waits_for_the_whole_frame() {
        let limits = FrameLimits::default();
        let mut stream = frame(b"abc");
        stream.extend_from_slice(&frame(b"de"));
        assert_eq!(limits.complete_frame_len(&stream[..3]).expect("short prefix"), None);
        assert_eq!(limits.complete_frame_len(&stream[..6]).expect("short body"), None);
        assert_eq!(limits.complete_frame_len(&stream).expect("whole"), Some(7));
        assert_eq!(limits.complete_frame_len(&stream[7..]).expect("second"), Some(6));
        let tiny = FrameLimits { max_frame_bytes: 2, ..limits };
        assert!(matches!(tiny.complete_frame_len(&stream), Err(WireError::FrameTooLarge { len: 3, max: 2 })));
    }

    #[test]
    fn verifier_options_scale_with_the_buffer_and_stop_at_the_cap() {
        let limits = FrameLimits { max_frame_bytes: 1000, max_depth: 7, ..FrameLimits::default() };
        let small = limits.verifier_options(100);
        assert_eq!((small.max_depth, small.max_tables, small.max_apparent_size), (7, 25, 800));
        let capped = limits.verifier_options(1 << 20);
        assert_eq!((capped.max_tables, capped.max_apparent_size), (250, 8000));
    }
}
