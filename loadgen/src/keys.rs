//! The key of each record, and which of a session's connections owns it. Record `i` is the row
//! (partition key `key:<i / R>`, sort key `<i % R>`), with `R` rows per partition; with `R = 1`
//! the sort key is empty and the partition key is `key:<i>`, twelve digits, as
//! `redis-benchmark -r` names its keys. Pure: ownership comes from a [`Topology`], never from
//! the network.

use nacre_wire::Topology;

/// How records map onto rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    rows_per_partition: u64,
}

impl Layout {
    /// `rows_per_partition` records (at least 1) share each partition key.
    pub fn new(rows_per_partition: u64) -> Layout {
        Layout { rows_per_partition: rows_per_partition.max(1) }
    }

    /// Record `record`'s partition key.
    pub fn partition_key(&self, record: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(REDIS_KEY_LEN);
        self.write_partition_key(record, &mut out);
        out
    }

    /// Replaces `out` with record `record`'s partition key, allocating nothing once `out` has
    /// room: what a session sends each request with.
    pub fn write_partition_key(&self, record: u64, out: &mut Vec<u8>) {
        out.clear();
        write_redis_key(out, record / self.rows_per_partition);
    }

    /// Whether records share partition keys, so sort keys are not empty.
    pub fn has_sort_keys(&self) -> bool {
        self.rows_per_partition > 1
    }

    /// Record `record`'s sort key.
    pub fn sort_key(&self, record: u64) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_sort_key(record, &mut out);
        out
    }

    /// Replaces `out` with record `record`'s sort key (empty with one row per partition).
    pub fn write_sort_key(&self, record: u64, out: &mut Vec<u8>) {
        out.clear();
        if self.has_sort_keys() {
            push_padded_decimal(out, record % self.rows_per_partition);
        }
    }
}

/// Appends record `record`'s Redis key (its partition key; RESP runs have one row per
/// partition) to `out`, allocating nothing once `out` has room.
pub fn write_redis_key(out: &mut Vec<u8>, record: u64) {
    out.extend_from_slice(b"key:");
    push_padded_decimal(out, record);
}

/// Digits of a key's number, zero-padded as `format!("{n:012}")` pads it.
const KEY_DIGITS: usize = 12;

/// Appends `n` in decimal, zero-padded to [`KEY_DIGITS`] (longer numbers in full): the bytes
/// `format!("{n:012}")` makes, without the formatting machinery, once per request.
fn push_padded_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + u8::try_from(n % 10).expect("a digit");
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at.min(digits.len() - KEY_DIGITS)..]);
}

/// The length of every Redis key below a trillion records.
pub const REDIS_KEY_LEN: usize = 16;

/// Which of a session's connections, one per shard port, owns a partition key.
#[derive(Debug, Clone)]
pub struct Router {
    topology: Topology,
    ports: Vec<u16>,
}

impl Router {
    /// The router for `topology`.
    pub fn new(topology: Topology) -> Router {
        let mut ports = topology.owner_ports.clone();
        ports.sort_unstable();
        ports.dedup();
        Router { topology, ports }
    }

    /// The shard ports, ascending: a session opens one connection to each, in this order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The index in [`Router::ports`] of the connection owning `partition_key`.
    pub fn connection_for(&self, partition_key: &[u8]) -> usize {
        let port = self.topology.owner_port(partition_key).expect("a decoded topology has an owner per partition");
        self.ports.binary_search(&port).expect("every owner port is listed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_partition_names_keys_as_redis_benchmark_does() {
        let layout = Layout::new(1);
        assert_eq!(layout.partition_key(42), b"key:000000000042");
        assert!(layout.sort_key(42).is_empty());
        let mut redis = Vec::new();
        write_redis_key(&mut redis, 42);
        assert_eq!(redis, layout.partition_key(42));
        assert_eq!(redis.len(), REDIS_KEY_LEN);
    }

    #[test]
    fn keys_are_the_formatted_numbers() {
        let seed = nacre_testkit::seed("keys_are_the_formatted_numbers");
        let mut rng = fastrand::Rng::with_seed(seed);
        let layout = Layout::new(7);
        let mut numbers = vec![0, 9, 10, 999_999_999_999, 1_000_000_000_000, u64::MAX];
        numbers.extend((0..1_000).map(|_| rng.u64(..) >> rng.u32(0..64)));
        let mut key = b"stale bytes".to_vec();
        for n in numbers {
            key.clear();
            write_redis_key(&mut key, n);
            assert_eq!(key, format!("key:{n:012}").into_bytes(), "record {n}");
            layout.write_sort_key(n, &mut key);
            assert_eq!(key, format!("{:012}", n % 7).into_bytes(), "record {n}");
            layout.write_partition_key(n, &mut key);
            assert_eq!(key, format!("key:{:012}", n / 7).into_bytes(), "record {n}");
        }
    }

    #[test]
    fn rows_share_a_partition_in_record_order() {
        let layout = Layout::new(100);
        assert_eq!(layout.partition_key(1234), b"key:000000000012");
        assert_eq!(layout.sort_key(1234), b"000000000034");
        assert_eq!(layout.partition_key(1299), layout.partition_key(1200));
        assert!(layout.sort_key(1235) > layout.sort_key(1234));
    }

    #[test]
    fn every_key_routes_to_its_owner() {
        let topology =
            Topology { partition_count: 8, shard_count: 2, owner_ports: vec![11, 12, 11, 12, 11, 12, 11, 12] };
        let router = Router::new(topology.clone());
        assert_eq!(router.ports(), [11, 12]);
        let layout = Layout::new(1);
        for record in 0..1000 {
            let key = layout.partition_key(record);
            assert_eq!(Some(router.ports()[router.connection_for(&key)]), topology.owner_port(&key));
        }
    }
}
