//! The one checksum every stored unit carries: xxh3-64, optionally seeded with a per-file salt so
//! stale or foreign bytes can never pass as this file's.

/// xxh3-64 of `bytes` with `seed`.
pub fn checksum(bytes: &[u8], seed: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(bytes, seed)
}
