//! Frames as FORMAT.md specifies them: `u32 little-endian length | flatbuffer`, which is exactly
//! a flatbuffers size-prefixed buffer. Reading checks the length against a limit before
//! allocating, and a reply is read only after the verifier accepts it, under explicit limits.

use crate::error::Error;
use crate::generated as fb;
use flatbuffers::VerifierOptions;
use std::io::{ErrorKind, Read, Write};

/// Default cap on a reply's flatbuffer, bytes: the protocol's default frame limit, 8 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 8 << 20;
/// Deepest table nesting accepted; the v1 schema's deepest path is 3 tables.
pub const MAX_DEPTH: usize = 16;
/// Most elements of any one vector of a reply, checked before they are copied.
pub const MAX_ITEMS: usize = 100_000;
/// The verifier's apparent-size budget, a multiple of the buffer's length (FORMAT.md, "Limits").
const APPARENT_SIZE_FACTOR: usize = 8;
/// The smallest a table can be, bytes: bounds how many an honest buffer holds.
const MIN_TABLE_BYTES: usize = 4;

/// Writes one whole frame.
pub(crate) fn write(stream: &mut impl Write, frame: &[u8]) -> Result<(), Error> {
    stream.write_all(frame).map_err(|source| Error::Io { op: "sending a request", source })?;
    stream.flush().map_err(|source| Error::Io { op: "sending a request", source })
}

/// Reads one whole frame, prefix included, refusing one over `max_frame_bytes` before reading
/// its body.
pub(crate) fn read(stream: &mut impl Read, max_frame_bytes: usize) -> Result<Vec<u8>, Error> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).map_err(|source| match source.kind() {
        ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io { op: "reading a reply", source },
    })?;
    let len = usize::try_from(u32::from_le_bytes(prefix)).expect("usize holds a u32");
    if len == 0 {
        return Err(Error::EmptyFrame);
    }
    if len > max_frame_bytes {
        return Err(Error::FrameTooLarge { len, max: max_frame_bytes });
    }
    let mut frame = vec![0u8; 4 + len];
    frame[..4].copy_from_slice(&prefix);
    stream.read_exact(&mut frame[4..]).map_err(|source| match source.kind() {
        ErrorKind::UnexpectedEof => Error::Closed,
        _ => Error::Io { op: "reading a reply", source },
    })?;
    Ok(frame)
}

/// The verified `Response` of a whole frame (as [`read`] returns it). The verifier's limits
/// scale with the frame, so its work is linear in the bytes received.
pub(crate) fn verify_response(frame: &[u8]) -> Result<fb::Response<'_>, Error> {
    let len = frame.len().saturating_sub(4);
    let options = VerifierOptions {
        max_depth: MAX_DEPTH,
        max_tables: len / MIN_TABLE_BYTES,
        max_apparent_size: len.saturating_mul(APPARENT_SIZE_FACTOR),
        ignore_missing_null_terminator: false,
    };
    Ok(flatbuffers::size_prefixed_root_with_opts::<fb::Response<'_>>(&options, frame)?)
}

/// Refuses a vector over [`MAX_ITEMS`] before it is copied out.
pub(crate) fn check_items(len: usize, field: &'static str) -> Result<(), Error> {
    if len > MAX_ITEMS {
        return Err(Error::Malformed { field, reason: "more elements than the client accepts" });
    }
    Ok(())
}
