//! The block index: for each data block, its position and the last entry it holds, so a reader
//! finds the block that may hold a key with one binary search. Pure: no I/O.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::ids::{TableId, Ts};
use crate::record::KeyRef;
use crate::version::{Origin, OriginKind, VersionId};
use std::cmp::Ordering;

/// One data block's index entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Offset of the block in the file.
    pub offset: u64,
    /// Framed length of the block, bytes.
    pub len: u32,
    /// Table of the block's last entry.
    pub last_table: TableId,
    /// Partition key of the block's last entry.
    pub last_partition_key: Vec<u8>,
    /// Sort key of the block's last entry.
    pub last_sort_key: Vec<u8>,
    /// Version of the block's last entry.
    pub last_id: VersionId,
}

impl IndexEntry {
    /// Compares this block's last entry with the probe `(key, id)` in storage order.
    pub fn cmp_last(&self, key: KeyRef<'_>, id: &VersionId) -> Ordering {
        KeyRef { table: self.last_table, partition_key: &self.last_partition_key, sort_key: &self.last_sort_key }
            .cmp(&key)
            .then_with(|| self.last_id.storage_cmp(id))
    }
}

/// The index of position of the first block whose last entry is at or after `(key, id)`: the
/// only block where an entry at `(key, id)` could start. `entries.len()` if none.
pub fn first_block_at_or_after(entries: &[IndexEntry], key: KeyRef<'_>, id: &VersionId) -> usize {
    entries.partition_point(|e| e.cmp_last(key, id) == Ordering::Less)
}

/// Encodes the index: `count u32`, then per block `offset u64 | len u32 | table u32 | pk_len u16
/// | sk_len u16 | ts u64 | kind u8 | source_id u32 | seq u64 | pk | sk`.
pub fn encode(entries: &[IndexEntry], enc: &mut Encoder) {
    enc.u32(u32::try_from(entries.len()).expect("under 4G blocks"));
    for e in entries {
        enc.u64(e.offset);
        enc.u32(e.len);
        enc.u32(e.last_table.0);
        enc.u16(u16::try_from(e.last_partition_key.len()).expect("keys are under 64 KiB"));
        enc.u16(u16::try_from(e.last_sort_key.len()).expect("keys are under 64 KiB"));
        enc.u64(e.last_id.ts.0);
        enc.u8(e.last_id.origin.kind.code());
        enc.u32(e.last_id.origin.source_id);
        enc.u64(e.last_id.origin.seq);
        enc.raw(&e.last_partition_key);
        enc.raw(&e.last_sort_key);
    }
}

/// Bytes of one index entry before its keys.
const FIXED_BYTES: usize = 8 + 4 + 4 + 2 + 2 + 8 + 1 + 4 + 8;

/// Decodes what [`encode`] wrote.
pub fn decode(dec: &mut Decoder<'_>) -> Result<Vec<IndexEntry>, DecodeError> {
    let n = dec.count(FIXED_BYTES)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let offset = dec.u64()?;
        let len = dec.u32()?;
        let last_table = TableId(dec.u32()?);
        let pk_len = dec.u16()? as usize;
        let sk_len = dec.u16()? as usize;
        let ts = Ts(dec.u64()?);
        let kind = OriginKind::from_code(dec.u8()?).ok_or(dec.error("unknown origin kind"))?;
        let source_id = dec.u32()?;
        let seq = dec.u64()?;
        let last_partition_key = dec.raw(pk_len)?.to_vec();
        let last_sort_key = dec.raw(sk_len)?.to_vec();
        out.push(IndexEntry {
            offset,
            len,
            last_table,
            last_partition_key,
            last_sort_key,
            last_id: VersionId { ts, origin: Origin { kind, source_id, seq } },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(offset: u64, pk: &[u8], ts: u64) -> IndexEntry {
        IndexEntry {
            offset,
            len: 4096,
            last_table: TableId(1),
            last_partition_key: pk.to_vec(),
            last_sort_key: vec![],
            last_id: VersionId { ts: Ts(ts), origin: Origin { kind: OriginKind::Stream, source_id: 3, seq: 4 } },
        }
    }

    #[test]
    fn index_round_trips_and_finds_the_first_candidate_block() {
        let entries = vec![entry(0, b"b", 5), entry(4096, b"d", 9), entry(8192, b"d", 1)];
        let mut enc = Encoder::default();
        encode(&entries, &mut enc);
        let mut dec = Decoder::new(&enc.bytes);
        assert_eq!(decode(&mut dec).expect("decodes"), entries);
        let first = crate::version::VersionId {
            ts: Ts::MAX,
            origin: Origin { kind: OriginKind::Direct, source_id: u32::MAX, seq: u64::MAX },
        };
        let key = |pk| KeyRef { table: TableId(1), partition_key: pk, sort_key: b"" };
        assert_eq!(first_block_at_or_after(&entries, key(b"a"), &first), 0);
        assert_eq!(first_block_at_or_after(&entries, key(b"c"), &first), 1);
        assert_eq!(first_block_at_or_after(&entries, key(b"d"), &first), 1);
        assert_eq!(first_block_at_or_after(&entries, key(b"e"), &first), 3);
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_index_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&mut Decoder::new(&bytes));
        }
    }
}
