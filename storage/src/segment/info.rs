//! What is known about a segment without reading its data: size, counts, `ts` range and key
//! range. Stored twice, in the segment's metadata block and in the manifest, and the two are
//! checked against each other when a segment is opened.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::ids::{SegmentId, TableId, Ts};
use crate::record::Key;

/// Which path wrote a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// A memtable flush.
    Flush = 1,
    /// A compaction.
    Compaction = 2,
    /// The offline bulk builder.
    Bulk = 3,
}

/// A segment's summary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SegmentInfo {
    /// The segment's id within its partition.
    pub id: SegmentId,
    /// Which path wrote it.
    pub kind: SegmentKind,
    /// Logical length of the file, bytes (the file may be longer: preallocation).
    pub size_bytes: u64,
    /// Number of entries (versions).
    pub entry_count: u64,
    /// Number of tombstones among them.
    pub tombstone_count: u64,
    /// Number of distinct keys.
    pub key_count: u64,
    /// Smallest `ts` held.
    pub min_ts: Ts,
    /// Greatest `ts` held: a point read stops before a segment whose `max_ts` is below its best.
    pub max_ts: Ts,
    /// Smallest key held.
    pub min_key: Key,
    /// Greatest key held.
    pub max_key: Key,
}

impl SegmentInfo {
    /// Encodes the summary.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.u64(self.id.0);
        enc.u8(self.kind as u8);
        enc.u64(self.size_bytes);
        enc.u64(self.entry_count);
        enc.u64(self.tombstone_count);
        enc.u64(self.key_count);
        enc.u64(self.min_ts.0);
        enc.u64(self.max_ts.0);
        encode_key(enc, &self.min_key);
        encode_key(enc, &self.max_key);
    }

    /// Decodes what [`SegmentInfo::encode`] wrote.
    pub fn decode(dec: &mut Decoder<'_>) -> Result<SegmentInfo, DecodeError> {
        let id = SegmentId(dec.u64()?);
        let kind = match dec.u8()? {
            1 => SegmentKind::Flush,
            2 => SegmentKind::Compaction,
            3 => SegmentKind::Bulk,
            _ => return Err(dec.error("unknown segment kind")),
        };
        let info = SegmentInfo {
            id,
            kind,
            size_bytes: dec.u64()?,
            entry_count: dec.u64()?,
            tombstone_count: dec.u64()?,
            key_count: dec.u64()?,
            min_ts: Ts(dec.u64()?),
            max_ts: Ts(dec.u64()?),
            min_key: decode_key(dec)?,
            max_key: decode_key(dec)?,
        };
        if info.min_ts > info.max_ts || info.min_key > info.max_key || info.entry_count == 0 {
            return Err(dec.error("segment summary is inconsistent"));
        }
        Ok(info)
    }
}

/// Encodes a key as `table u32 | pk bytes32 | sk bytes32`.
pub fn encode_key(enc: &mut Encoder, key: &Key) {
    enc.u32(key.table.0);
    enc.bytes32(&key.partition_key);
    enc.bytes32(&key.sort_key);
}

/// Decodes what [`encode_key`] wrote.
pub fn decode_key(dec: &mut Decoder<'_>) -> Result<Key, DecodeError> {
    Ok(Key { table: TableId(dec.u32()?), partition_key: dec.bytes32()?.to_vec(), sort_key: dec.bytes32()?.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn info_round_trips() {
        let info = SegmentInfo {
            id: SegmentId(7),
            kind: SegmentKind::Compaction,
            size_bytes: 40960,
            entry_count: 10,
            tombstone_count: 2,
            key_count: 4,
            min_ts: Ts(3),
            max_ts: Ts(9),
            min_key: Key::new(TableId(1), b"a".to_vec(), b"".to_vec()),
            max_key: Key::new(TableId(2), b"z".to_vec(), b"s".to_vec()),
        };
        let mut enc = Encoder::default();
        info.encode(&mut enc);
        let mut dec = Decoder::new(&enc.bytes);
        assert_eq!(SegmentInfo::decode(&mut dec).expect("decodes"), info);
        dec.finish().expect("all consumed");
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_info_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = SegmentInfo::decode(&mut Decoder::new(&bytes));
        }
    }
}
