//! The partitioner: which logical partition a partition key belongs to. The daemon, the client,
//! the bulk builder and Kafka producers that want the fast path must all use this one function;
//! changing it moves every key, so it never changes.

use xxhash_rust::xxh3::xxh3_64;

/// The partition of `partition_key` among `partition_count`: `xxh3_64(partition_key) %
/// partition_count`, with xxh3's default seed.
///
/// # Panics
///
/// If `partition_count` is 0: a cluster always has at least one partition, and a topology that
/// says otherwise is rejected when it is decoded.
pub fn partition_of(partition_key: &[u8], partition_count: u32) -> u32 {
    assert!(partition_count > 0, "a cluster has at least one partition");
    let partition = xxh3_64(partition_key) % u64::from(partition_count);
    u32::try_from(partition).expect("a remainder of a u32 divisor fits in u32")
}

/// The Kafka partition an aligned producer gives a message with key `key`, for a topic of
/// `topic_partitions` partitions: [`partition_of`]. When the topic has as many partitions as the
/// store, every message lands on the shard that owns its key and is applied with no second log
/// (docs/kafka.md, "Producing aligned").
///
/// # Panics
///
/// If `topic_partitions` is not positive.
pub fn kafka_partition_of(key: &[u8], topic_partitions: i32) -> i32 {
    let count = u32::try_from(topic_partitions).expect("a topic has at least one partition");
    i32::try_from(partition_of(key, count)).expect("a remainder of an i32 divisor fits in i32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kafka_partition_is_the_store_partition() {
        for key in [&b""[..], b"user:1", b"a", b"nacre"] {
            assert_eq!(kafka_partition_of(key, 64), i32::try_from(partition_of(key, 64)).expect("small"));
        }
    }

    /// Fixed vectors, hashed by the reference C implementation (`xxhsum -H3`): if one of these
    /// changes, every stored key moves partition.
    #[test]
    fn partition_of_matches_fixed_vectors() {
        let hashes: &[(&[u8], u64)] = &[
            (b"", 0x2d06_8005_38d3_94c2),
            (b"user:1", 0x3b57_7afd_7fed_9501),
            (b"a", 0xe6c6_32b6_1e96_4e1f),
            (b"nacre", 0x27c0_5a6b_6c52_94bc),
        ];
        for (key, hash) in hashes {
            assert_eq!(xxh3_64(key), *hash, "key {key:?}");
        }
        let cases: &[(&[u8], u32, u32)] = &[
            (b"", 64, 2),
            (b"user:1", 64, 1),
            (b"a", 64, 31),
            (b"nacre", 64, 60),
            (b"", 7, 4),
            (b"user:1", 7, 5),
            (b"a", 7, 1),
            (b"nacre", 7, 6),
            (b"nacre", 1, 0),
        ];
        for (key, count, expected) in cases {
            assert_eq!(partition_of(key, *count), *expected, "key {key:?} among {count}");
        }
    }

    #[test]
    fn every_partition_is_reachable_and_in_range() {
        let mut seen = [false; 16];
        for i in 0..1_000u32 {
            let p = partition_of(&i.to_le_bytes(), 16);
            seen[p as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
