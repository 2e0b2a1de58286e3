//! The segment bloom filter over xxh3 key hashes, with double hashing. It holds two kinds of
//! member: whole keys `(table, partition_key, sort_key)` for point reads, and partition prefixes
//! `(table, partition_key)` for scans. Pure: no I/O.

use crate::codec::{DecodeError, Decoder, Encoder};
use crate::ids::TableId;
use crate::record::KeyRef;
use xxhash_rust::xxh3::Xxh3;

const KEY_SEED: u64 = 0x6e61_6372_656b_6579; // "nacrekey"
const PREFIX_SEED: u64 = 0x6e61_6372_6570_6678; // "nacrepfx"
const MAX_PROBES: u32 = 30;

/// The hash a whole key is filtered by.
pub fn key_hash(key: KeyRef<'_>) -> u64 {
    // Streamed, not concatenated: this runs for every segment a point read considers.
    let mut h = Xxh3::with_seed(KEY_SEED);
    h.update(&key.table.0.to_le_bytes());
    h.update(&(key.partition_key.len() as u32).to_le_bytes());
    h.update(key.partition_key);
    h.update(key.sort_key);
    h.digest()
}

/// The hash a partition prefix is filtered by.
pub fn prefix_hash(table: TableId, partition_key: &[u8]) -> u64 {
    let mut h = Xxh3::with_seed(PREFIX_SEED);
    h.update(&table.0.to_le_bytes());
    h.update(partition_key);
    h.digest()
}

/// A bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    probes: u32,
    bits: Vec<u64>,
}

impl Bloom {
    /// Builds a filter holding `hashes`, sized at `bits_per_key` bits each.
    pub fn build(hashes: &[u64], bits_per_key: usize) -> Bloom {
        let bit_count = (hashes.len() * bits_per_key).max(64);
        let words = bit_count.div_ceil(64);
        // k = ln 2 * bits per key minimises false positives.
        let probes = ((bits_per_key as f64 * 0.69) as u32).clamp(1, MAX_PROBES);
        let mut bloom = Bloom { probes, bits: vec![0; words] };
        for &h in hashes {
            bloom.for_each_bit(h, |bits, i| bits[i / 64] |= 1 << (i % 64));
        }
        bloom
    }

    fn for_each_bit(&mut self, hash: u64, mut f: impl FnMut(&mut [u64], usize)) {
        let n = self.bits.len() as u64 * 64;
        let delta = hash.rotate_left(32) | 1;
        let mut h = hash;
        for _ in 0..self.probes {
            f(&mut self.bits, (h % n) as usize);
            h = h.wrapping_add(delta);
        }
    }

    /// False if `hash` was certainly never added.
    pub fn may_contain(&self, hash: u64) -> bool {
        let n = self.bits.len() as u64 * 64;
        let delta = hash.rotate_left(32) | 1;
        let mut h = hash;
        for _ in 0..self.probes {
            let i = (h % n) as usize;
            if self.bits[i / 64] & (1 << (i % 64)) == 0 {
                return false;
            }
            h = h.wrapping_add(delta);
        }
        true
    }

    /// Encodes as `probes u32 | word_count u32 | words u64...`.
    pub fn encode(&self, enc: &mut Encoder) {
        enc.u32(self.probes);
        enc.u32(u32::try_from(self.bits.len()).expect("filters are under 32 GiB"));
        for w in &self.bits {
            enc.u64(*w);
        }
    }

    /// Decodes what [`Bloom::encode`] wrote.
    pub fn decode(dec: &mut Decoder<'_>) -> Result<Bloom, DecodeError> {
        let probes = dec.u32()?;
        if probes == 0 || probes > MAX_PROBES {
            return Err(dec.error("bloom probe count out of range"));
        }
        let words = dec.count(8)?;
        if words == 0 {
            return Err(dec.error("empty bloom filter"));
        }
        let bits = (0..words).map(|_| dec.u64()).collect::<Result<_, _>>()?;
        Ok(Bloom { probes, bits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn members_are_always_found_and_false_positives_are_rare() {
        let hashes: Vec<u64> = (0..10_000u32).map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())).collect();
        let bloom = Bloom::build(&hashes, 10);
        assert!(hashes.iter().all(|h| bloom.may_contain(*h)));
        let false_positives =
            (10_000..110_000u32).filter(|i| bloom.may_contain(xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes()))).count();
        assert!(false_positives < 2_000, "{false_positives} false positives in 100000");
        let mut enc = Encoder::default();
        bloom.encode(&mut enc);
        let mut dec = Decoder::new(&enc.bytes);
        assert_eq!(Bloom::decode(&mut dec).expect("decodes"), bloom);
    }

    #[test]
    fn key_and_prefix_hashes_differ_in_table_and_split() {
        let a = KeyRef { table: TableId(1), partition_key: b"ab", sort_key: b"c" };
        let b = KeyRef { table: TableId(1), partition_key: b"a", sort_key: b"bc" };
        assert_ne!(key_hash(a), key_hash(b));
        assert_ne!(prefix_hash(TableId(1), b"a"), prefix_hash(TableId(2), b"a"));
    }

    proptest! {
        #![proptest_config(nacre_testkit::proptest_config(module_path!(), 256))]

        #[test]
        fn arbitrary_bytes_never_panic_the_bloom_decoder(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Bloom::decode(&mut Decoder::new(&bytes));
        }
    }
}
