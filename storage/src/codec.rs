//! Little-endian byte encoding and checked decoding, and the encoding of one entry (key plus
//! version), shared by the WAL, segment blocks and bulk files, in one of two layouts
//! ([`EntryLayout`]). Decoding never panics: every read is bounds-checked and returns
//! [`DecodeError`].

use crate::ids::{TableId, Ts};
use crate::record::{Entry, EntryRef, Key};
use crate::version::{Origin, OriginKind, Payload, VersionId};

/// Why bytes did not decode; the caller adds file and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    /// What was wrong.
    pub reason: &'static str,
    /// Offset within the decoded slice.
    pub at: usize,
}

/// Appends little-endian fields to a byte vector.
#[derive(Debug, Default)]
pub struct Encoder {
    /// The bytes written so far.
    pub bytes: Vec<u8>,
}

impl Encoder {
    /// An encoder appending to `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }
    /// Appends a u8.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }
    /// Appends a u16.
    pub fn u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u32.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends a u64.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }
    /// Appends raw bytes.
    pub fn raw(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }
    /// Appends an unsigned LEB128 integer: seven bits a byte, low bits first, the high bit set
    /// on every byte but the last.
    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.bytes.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.bytes.push(v as u8);
    }
    /// Appends a u32 length, then the bytes.
    pub fn bytes32(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).expect("callers bound lengths below 4 GiB"));
        self.raw(v);
    }
}

/// Reads little-endian fields from a slice, bounds-checked.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }
    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
    /// An error at the current position.
    pub fn error(&self, reason: &'static str) -> DecodeError {
        DecodeError { reason, at: self.pos }
    }
    /// Takes `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.error("truncated"));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    /// Reads a u8.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.raw(1)?[0])
    }
    /// Reads a u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.raw(2)?.try_into().expect("2 bytes")))
    }
    /// Reads a u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.raw(4)?.try_into().expect("4 bytes")))
    }
    /// Reads a u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.raw(8)?.try_into().expect("8 bytes")))
    }
    /// Reads an unsigned LEB128 integer of at most `max`: at most ten bytes, and none that
    /// overflows 64 bits.
    pub fn varint(&mut self, max: u64) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.error("variable-length integer overflows 64 bits"));
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                return if v <= max { Ok(v) } else { Err(self.error("variable-length integer out of range")) };
            }
        }
        Err(self.error("variable-length integer longer than ten bytes"))
    }
    /// Reads a u32 length, then that many bytes.
    pub fn bytes32(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.raw(len)
    }
    /// Reads a count that must be plausible for the bytes left (each item at least
    /// `min_item_bytes`), so a corrupt count cannot trigger a huge allocation.
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        self.plausible_count(n, min_item_bytes)
    }
    /// [`Decoder::count`], the count a LEB128 integer.
    pub fn varint_count(&mut self, min_item_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.varint(u64::from(u32::MAX))? as usize;
        self.plausible_count(n, min_item_bytes)
    }
    fn plausible_count(&self, n: usize, min_item_bytes: usize) -> Result<usize, DecodeError> {
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(self.error("count exceeds the bytes left"));
        }
        Ok(n)
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.error("trailing bytes"));
        }
        Ok(())
    }
}

const FLAG_TOMBSTONE: u8 = 1;
const FLAG_EXPIRES: u8 = 2;

/// How an entry's fields other than its key and value bytes are laid out (FORMAT.md, "Entry").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryLayout {
    /// Fixed-width little-endian fields, 34 bytes: the WAL's, bulk spill files' and format-1
    /// segments'.
    Fixed,
    /// Table, lengths, source and sequence number as LEB128 integers and the origin kind and
    /// flags in one byte, 15 bytes and up: format-2 segments', where the fixed part of a small
    /// entry was a quarter of its bytes.
    Compact,
}

impl EntryLayout {
    /// The fewest bytes an entry takes: what a plausible count is checked against.
    pub fn min_bytes(self) -> usize {
        match self {
            EntryLayout::Fixed => ENTRY_FIXED_BYTES,
            EntryLayout::Compact => 1 + 1 + 1 + 1 + 8 + 1 + 1 + 1,
        }
    }
}

/// Bytes of an encoded entry before its variable-length parts (without `expires_at`), in the
/// fixed layout.
pub const ENTRY_FIXED_BYTES: usize = 4 + 2 + 2 + 4 + 8 + 1 + 1 + 4 + 8;

/// Appends one entry in the fixed layout. Layout (FORMAT.md, "Entry"): table u32, pk_len u16,
/// sk_len u16, value_len u32, ts u64, kind u8, flags u8, source_id u32, seq u64,
/// [expires_at_ms u64], partition key, sort key, value.
pub fn encode_entry(enc: &mut Encoder, key: &Key, id: &VersionId, payload: &Payload) {
    let (value, expires, tombstone): (&[u8], Option<u64>, bool) = match payload {
        Payload::Value { value, expires_at_ms } => (value, *expires_at_ms, false),
        Payload::Tombstone => (&[], None, true),
    };
    encode_entry_parts(
        enc,
        EntryRef {
            table: key.table,
            partition_key: &key.partition_key,
            sort_key: &key.sort_key,
            id: *id,
            value: (!tombstone).then_some(value),
            expires_at_ms: expires,
        },
    );
}

fn flags_of(e: &EntryRef<'_>) -> u8 {
    let mut flags = 0;
    if e.value.is_none() {
        flags |= FLAG_TOMBSTONE;
    }
    if e.expires_at_ms.is_some() {
        flags |= FLAG_EXPIRES;
    }
    flags
}

/// A key's length as stored: keys are bounded below 64 KiB by the engine's limits.
pub(crate) fn key_len(bytes: &[u8]) -> u16 {
    u16::try_from(bytes.len()).expect("limits bound keys below 64 KiB")
}

/// Appends one entry from borrowed parts, in the fixed layout.
pub fn encode_entry_parts(enc: &mut Encoder, e: EntryRef<'_>) {
    encode_entry_in(enc, e, EntryLayout::Fixed);
}

/// Appends one entry from borrowed parts, in `layout`.
pub fn encode_entry_in(enc: &mut Encoder, e: EntryRef<'_>, layout: EntryLayout) {
    let flags = flags_of(&e);
    let value = e.value.unwrap_or(&[]);
    let value_len = u32::try_from(value.len()).expect("limits bound values below 4 GiB");
    match layout {
        EntryLayout::Fixed => {
            enc.u32(e.table.0);
            enc.u16(key_len(e.partition_key));
            enc.u16(key_len(e.sort_key));
            enc.u32(value_len);
            enc.u64(e.id.ts.0);
            enc.u8(e.id.origin.kind.code());
            enc.u8(flags);
            enc.u32(e.id.origin.source_id);
            enc.u64(e.id.origin.seq);
        }
        EntryLayout::Compact => {
            enc.varint(u64::from(e.table.0));
            enc.varint(u64::from(key_len(e.partition_key)));
            enc.varint(u64::from(key_len(e.sort_key)));
            enc.varint(u64::from(value_len));
            enc.u64(e.id.ts.0);
            enc.u8(e.id.origin.kind.code() | flags << KIND_BITS);
            enc.varint(u64::from(e.id.origin.source_id));
            enc.varint(e.id.origin.seq);
        }
    }
    if let Some(at) = e.expires_at_ms {
        enc.u64(at);
    }
    enc.raw(e.partition_key);
    enc.raw(e.sort_key);
    enc.raw(value);
}

/// Bits of the compact layout's kind-and-flags byte that hold the origin kind.
const KIND_BITS: u8 = 2;

/// The bytes `v` takes as a LEB128 integer.
fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The encoded size of an entry in the fixed layout.
pub fn entry_encoded_len(e: &EntryRef<'_>) -> usize {
    entry_len_in(e, EntryLayout::Fixed)
}

/// The encoded size of an entry in `layout`.
pub fn entry_len_in(e: &EntryRef<'_>, layout: EntryLayout) -> usize {
    let value_len = e.value.map_or(0, <[u8]>::len);
    let head = match layout {
        EntryLayout::Fixed => ENTRY_FIXED_BYTES,
        EntryLayout::Compact => {
            varint_len(u64::from(e.table.0))
                + varint_len(e.partition_key.len() as u64)
                + varint_len(e.sort_key.len() as u64)
                + varint_len(value_len as u64)
                + 8
                + 1
                + varint_len(u64::from(e.id.origin.source_id))
                + varint_len(e.id.origin.seq)
        }
    };
    head + if e.expires_at_ms.is_some() { 8 } else { 0 } + e.partition_key.len() + e.sort_key.len() + value_len
}

/// The partition key of an entry this process encoded in the fixed layout, read without
/// decoding the rest: for sorts of trusted buffers that compare keys before anything else.
///
/// # Panics
///
/// If `bytes` is shorter than the lengths it holds say (never, for what [`encode_entry_parts`]
/// wrote).
pub fn fixed_layout_partition_key(bytes: &[u8]) -> &[u8] {
    let pk_len = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
    let flags = bytes[21];
    let start = ENTRY_FIXED_BYTES + if flags & FLAG_EXPIRES != 0 { 8 } else { 0 };
    &bytes[start..start + pk_len]
}

/// Decodes one entry in the fixed layout, borrowing its byte fields.
pub fn decode_entry<'a>(dec: &mut Decoder<'a>) -> Result<EntryRef<'a>, DecodeError> {
    decode_entry_in(dec, EntryLayout::Fixed)
}

/// Decodes one entry in `layout`, borrowing its byte fields.
pub fn decode_entry_in<'a>(dec: &mut Decoder<'a>, layout: EntryLayout) -> Result<EntryRef<'a>, DecodeError> {
    let (table, pk_len, sk_len, value_len, ts, kind, flags, source_id, seq) = match layout {
        EntryLayout::Fixed => {
            let table = TableId(dec.u32()?);
            let pk_len = dec.u16()? as usize;
            let sk_len = dec.u16()? as usize;
            let value_len = dec.u32()? as usize;
            let ts = Ts(dec.u64()?);
            let kind = dec.u8()?;
            let flags = dec.u8()?;
            (table, pk_len, sk_len, value_len, ts, kind, flags, dec.u32()?, dec.u64()?)
        }
        EntryLayout::Compact => {
            let table = TableId(dec.varint(u32::MAX.into())? as u32);
            let pk_len = dec.varint(u16::MAX.into())? as usize;
            let sk_len = dec.varint(u16::MAX.into())? as usize;
            let value_len = dec.varint(u32::MAX.into())? as usize;
            let ts = Ts(dec.u64()?);
            let byte = dec.u8()?;
            let source_id = dec.varint(u32::MAX.into())? as u32;
            let seq = dec.varint(u64::MAX)?;
            (table, pk_len, sk_len, value_len, ts, byte & ((1 << KIND_BITS) - 1), byte >> KIND_BITS, source_id, seq)
        }
    };
    let kind = OriginKind::from_code(kind).ok_or(dec.error("unknown origin kind"))?;
    if flags & !(FLAG_TOMBSTONE | FLAG_EXPIRES) != 0 {
        return Err(dec.error("unknown entry flags"));
    }
    let expires_at_ms = if flags & FLAG_EXPIRES != 0 { Some(dec.u64()?) } else { None };
    let tombstone = flags & FLAG_TOMBSTONE != 0;
    if tombstone && (value_len != 0 || expires_at_ms.is_some()) {
        return Err(dec.error("tombstone with a value"));
    }
    let partition_key = dec.raw(pk_len)?;
    let sort_key = dec.raw(sk_len)?;
    let value = dec.raw(value_len)?;
    Ok(EntryRef {
        table,
        partition_key,
        sort_key,
        id: VersionId { ts, origin: Origin { kind, source_id, seq } },
        value: (!tombstone).then_some(value),
        expires_at_ms,
    })
}

/// Decodes one owned entry in the fixed layout.
pub fn decode_entry_owned(dec: &mut Decoder<'_>) -> Result<Entry, DecodeError> {
    decode_entry(dec).map(|e| e.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..40),
            prop::collection::vec(any::<u8>(), 0..40),
            any::<u64>(),
            0u8..3,
            any::<u32>(),
            any::<u64>(),
            prop::option::of((prop::collection::vec(any::<u8>(), 0..200), prop::option::of(any::<u64>()))),
        )
            .prop_map(|(t, pk, sk, ts, kind, src, seq, val)| Entry {
                key: Key { table: TableId(t), partition_key: pk, sort_key: sk },
                version: crate::version::Version {
                    id: VersionId {
                        ts: Ts(ts),
                        origin: Origin { kind: OriginKind::from_code(kind).expect("0..3"), source_id: src, seq },
                    },
                    payload: match val {
                        Some((value, expires_at_ms)) => Payload::Value { value, expires_at_ms },
                        None => Payload::Tombstone,
                    },
                },
            })
    }

    #[test]
    fn a_small_entry_is_a_fifth_smaller_in_the_compact_layout() {
        let value = [b'v'; 100];
        let e = EntryRef {
            table: TableId(1),
            partition_key: &[7; 16],
            sort_key: &[],
            id: VersionId {
                ts: Ts(1 << 40),
                origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: 1_000_000 },
            },
            value: Some(&value),
            expires_at_ms: None,
        };
        assert_eq!(entry_len_in(&e, EntryLayout::Fixed), 150);
        assert_eq!(entry_len_in(&e, EntryLayout::Compact), 133);
    }

    #[test]
    fn bad_varints_are_refused() {
        let refused = |bytes: &[u8], max: u64| Decoder::new(bytes).varint(max).expect_err("refused").reason;
        assert_eq!(refused(&[0x80; 11], u64::MAX), "variable-length integer longer than ten bytes");
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(refused(&over, u64::MAX), "variable-length integer overflows 64 bits");
        assert_eq!(refused(&[0x80, 0x80, 0x04], u16::MAX.into()), "variable-length integer out of range");
        assert_eq!(refused(&[0x80], u64::MAX), "truncated");
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(Decoder::new(&max).varint(u64::MAX), Ok(u64::MAX));
        // An unknown flag in the compact layout's kind-and-flags byte.
        let mut enc = Encoder::default();
        for _ in 0..4 {
            enc.varint(0);
        }
        enc.u64(1);
        enc.u8(2 | 4 << KIND_BITS);
        enc.varint(0);
        enc.varint(0);
        let mut dec = Decoder::new(&enc.bytes);
        assert_eq!(decode_entry_in(&mut dec, EntryLayout::Compact).expect_err("refused").reason, "unknown entry flags");
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn entry_round_trips(entry in arb_entry()) {
            let mut enc = Encoder::default();
            encode_entry(&mut enc, &entry.key, &entry.version.id, &entry.version.payload);
            prop_assert_eq!(enc.bytes.len(), entry_encoded_len(&entry.as_ref()));
            let mut dec = Decoder::new(&enc.bytes);
            let back = decode_entry_owned(&mut dec).expect("decodes");
            prop_assert_eq!(back, entry);
            prop_assert!(dec.finish().is_ok());
        }

        #[test]
        fn entry_round_trips_in_the_compact_layout(entry in arb_entry()) {
            let mut enc = Encoder::default();
            encode_entry_in(&mut enc, entry.as_ref(), EntryLayout::Compact);
            prop_assert_eq!(enc.bytes.len(), entry_len_in(&entry.as_ref(), EntryLayout::Compact));
            prop_assert!(enc.bytes.len() >= EntryLayout::Compact.min_bytes());
            let mut dec = Decoder::new(&enc.bytes);
            let back = decode_entry_in(&mut dec, EntryLayout::Compact).expect("decodes").to_owned();
            prop_assert_eq!(back, entry);
            prop_assert!(dec.finish().is_ok());
        }

        #[test]
        fn varints_round_trip_at_their_predicted_length(v in any::<u64>(), shift in 0u32..64) {
            for v in [v, v >> shift] {
                let mut enc = Encoder::default();
                enc.varint(v);
                prop_assert_eq!(enc.bytes.len(), varint_len(v));
                let mut dec = Decoder::new(&enc.bytes);
                prop_assert_eq!(dec.varint(u64::MAX), Ok(v));
                prop_assert!(dec.finish().is_ok());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_entry_decoder(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            for layout in [EntryLayout::Fixed, EntryLayout::Compact] {
                let mut dec = Decoder::new(&bytes);
                while dec.remaining() > 0 {
                    if decode_entry_in(&mut dec, layout).is_err() { break; }
                }
            }
        }
    }
}
