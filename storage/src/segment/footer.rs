//! The segment footer: the last page of a segment, locating the index, bloom and metadata blocks
//! and naming the format version. Pure: no I/O.

use crate::codec::{DecodeError, Decoder, Encoder};

/// "NACRESEG" read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"NACRESEG");

/// Where a block sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHandle {
    /// Offset in the file.
    pub offset: u64,
    /// Framed length, bytes.
    pub len: u32,
}

/// The footer's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Format version of the file.
    pub format_version: u32,
    /// Number of data blocks.
    pub data_block_count: u32,
    /// The index block.
    pub index: BlockHandle,
    /// The bloom block.
    pub bloom: BlockHandle,
    /// The metadata block.
    pub meta: BlockHandle,
}

impl Footer {
    /// Encodes `magic u64 | format_version u32 | data_block_count u32 | (offset u64, len u32) x3`.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.u64(MAGIC);
        enc.u32(self.format_version);
        enc.u32(self.data_block_count);
        for h in [self.index, self.bloom, self.meta] {
            enc.u64(h.offset);
            enc.u32(h.len);
        }
    }

    /// Decodes what [`Footer::encode`] wrote. The caller checks the version.
    pub fn decode(dec: &mut Decoder<'_>) -> Result<Footer, DecodeError> {
        if dec.u64()? != MAGIC {
            return Err(dec.error("bad segment magic"));
        }
        let format_version = dec.u32()?;
        let data_block_count = dec.u32()?;
        let mut handle =
            || -> Result<BlockHandle, DecodeError> { Ok(BlockHandle { offset: dec.u64()?, len: dec.u32()? }) };
        let (index, bloom, meta) = (handle()?, handle()?, handle()?);
        Ok(Footer { format_version, data_block_count, index, bloom, meta })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn footer_round_trips() {
        let f = Footer {
            format_version: 1,
            data_block_count: 3,
            index: BlockHandle { offset: 12288, len: 4096 },
            bloom: BlockHandle { offset: 16384, len: 4096 },
            meta: BlockHandle { offset: 20480, len: 4096 },
        };
        let mut enc = Encoder::default();
        f.encode(&mut enc);
        assert_eq!(Footer::decode(&mut Decoder::new(&enc.bytes)).expect("decodes"), f);
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_footer_decoder(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            let _ = Footer::decode(&mut Decoder::new(&bytes));
        }
    }
}
