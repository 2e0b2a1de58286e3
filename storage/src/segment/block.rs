//! Block framing: every unit stored in a segment or log header is a block of a whole number of
//! 4 KiB pages, `checksum u64 | kind u8 | 3 zero bytes | payload_len u32 | payload | zero
//! padding`, with the checksum over everything after it, padding included, so a flipped bit
//! anywhere in a block is caught. Owns framing only; payloads are someone else's.

use crate::checksum::checksum;
use crate::error::{Error, Result};
use crate::io::{IoBuf, align_up};
use std::path::Path;

/// Bytes before the payload.
pub const BLOCK_HEADER_BYTES: usize = 16;

/// What a block holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Entries.
    Data = 1,
    /// The block index.
    Index = 2,
    /// The bloom filter.
    Bloom = 3,
    /// Segment metadata.
    Meta = 4,
    /// The segment footer.
    Footer = 5,
    /// A log file's header.
    LogHeader = 6,
    /// The CURRENT pointer.
    Current = 7,
}

impl BlockKind {
    fn from_code(code: u8) -> Option<BlockKind> {
        Some(match code {
            1 => BlockKind::Data,
            2 => BlockKind::Index,
            3 => BlockKind::Bloom,
            4 => BlockKind::Meta,
            5 => BlockKind::Footer,
            6 => BlockKind::LogHeader,
            7 => BlockKind::Current,
            _ => return None,
        })
    }
}

/// The aligned size of a block carrying `payload_len` bytes.
pub fn framed_len(payload_len: usize) -> usize {
    align_up(BLOCK_HEADER_BYTES + payload_len)
}

/// Frames `payload` as a block of `kind`.
pub fn seal(kind: BlockKind, payload: &[u8]) -> IoBuf {
    let mut buf = Vec::with_capacity(framed_len(payload.len()));
    seal_into(&mut buf, kind, payload);
    IoBuf::from_padded(buf)
}

/// Appends the framed block to `out` (which must end on a page boundary).
pub fn seal_into(out: &mut Vec<u8>, kind: BlockKind, payload: &[u8]) {
    debug_assert_eq!(out.len() % crate::io::ALIGN, 0);
    let start = out.len();
    let len = framed_len(payload.len());
    out.resize(start + len, 0);
    let block = &mut out[start..];
    block[8] = kind as u8;
    block[12..16].copy_from_slice(&u32::try_from(payload.len()).expect("blocks are under 4 GiB").to_le_bytes());
    block[16..16 + payload.len()].copy_from_slice(payload);
    let sum = checksum(&block[8..], 0);
    block[..8].copy_from_slice(&sum.to_le_bytes());
    debug_assert!(unseal(block, kind, Path::new(""), 0).is_ok(), "a sealed block opens");
}

/// Checks a block's checksum and kind and returns its payload. `offset` is where the block sits
/// in `file`, for the error.
pub fn unseal<'a>(block: &'a [u8], kind: BlockKind, file: &Path, offset: u64) -> Result<&'a [u8]> {
    let corrupt = |reason| Error::Corrupt { file: file.to_path_buf(), offset, reason };
    if block.len() < BLOCK_HEADER_BYTES || !block.len().is_multiple_of(crate::io::ALIGN) {
        return Err(corrupt("block is not a whole number of pages"));
    }
    let expected = u64::from_le_bytes(block[..8].try_into().expect("8 bytes"));
    let actual = checksum(&block[8..], 0);
    if expected != actual {
        return Err(Error::ChecksumMismatch { file: file.to_path_buf(), offset, expected, actual });
    }
    if BlockKind::from_code(block[8]) != Some(kind) {
        return Err(corrupt("block kind is not the one expected"));
    }
    let len = u32::from_le_bytes(block[12..16].try_into().expect("4 bytes")) as usize;
    if BLOCK_HEADER_BYTES + len > block.len() || framed_len(len) != block.len() {
        return Err(corrupt("block payload length does not fit its block"));
    }
    Ok(&block[BLOCK_HEADER_BYTES..BLOCK_HEADER_BYTES + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_sealed_block_round_trips_and_any_flipped_bit_is_caught() {
        let payload: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let block = seal(BlockKind::Data, &payload).into_vec();
        assert_eq!(block.len(), 8192);
        assert_eq!(unseal(&block, BlockKind::Data, Path::new("f"), 0).expect("opens"), &payload[..]);
        assert!(matches!(unseal(&block, BlockKind::Index, Path::new("f"), 0), Err(Error::Corrupt { .. })));
        for bit in (0..block.len() * 8).step_by(97) {
            let mut bad = block.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(unseal(&bad, BlockKind::Data, Path::new("f"), 0).is_err(), "bit {bit} not caught");
        }
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_unseal(bytes in prop::collection::vec(any::<u8>(), 0..9000)) {
            let _ = unseal(&bytes, BlockKind::Data, Path::new("f"), 0);
        }
    }
}
