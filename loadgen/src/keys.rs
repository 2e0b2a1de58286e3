//! The key space: key `i` of `0..keys`, and which shard port owns each, so every connection
//! sends only keys its shard owns. Pure: it learns ownership from a [`Topology`], never from
//! the network.

use nacre_wire::{Key, Topology};

/// The partition key of key number `i` (the sort key is empty).
pub fn partition_key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// Key number `i`.
pub fn key(i: u64) -> Key {
    Key { partition_key: partition_key(i), sort_key: Vec::new() }
}

/// The key numbers each shard port owns, ports ascending; ports that own none are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpace {
    /// `(port, key numbers)`.
    pub by_port: Vec<(u16, Vec<u64>)>,
}

impl KeySpace {
    /// Splits `0..keys` by owning port under `topology`.
    pub fn split(topology: &Topology, keys: u64) -> KeySpace {
        let mut ports: Vec<u16> = topology.owner_ports.clone();
        ports.sort_unstable();
        ports.dedup();
        let mut by_port: Vec<(u16, Vec<u64>)> = ports.into_iter().map(|p| (p, Vec::new())).collect();
        for i in 0..keys {
            let port = topology.owner_port(&partition_key(i)).expect("decoding guarantees an owner per partition");
            let at = by_port.binary_search_by_key(&port, |(p, _)| *p).expect("every owner port is listed");
            by_port[at].1.push(i);
        }
        by_port.retain(|(_, keys)| !keys.is_empty());
        KeySpace { by_port }
    }

    /// The port and keys of connection number `connection` (round-robin over ports).
    pub fn for_connection(&self, connection: usize) -> &(u16, Vec<u64>) {
        &self.by_port[connection % self.by_port.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lands_with_its_owner_once() {
        let topology =
            Topology { partition_count: 8, shard_count: 2, owner_ports: vec![11, 12, 11, 12, 11, 12, 11, 12] };
        let space = KeySpace::split(&topology, 1000);
        assert_eq!(space.by_port.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [11, 12]);
        let mut all: Vec<u64> = space.by_port.iter().flat_map(|(_, k)| k.iter().copied()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        for (port, keys) in &space.by_port {
            assert!(keys.iter().all(|i| topology.owner_port(&partition_key(*i)) == Some(*port)));
        }
        assert_eq!(space.for_connection(0).0, 11);
        assert_eq!(space.for_connection(3).0, 12);
    }

    #[test]
    fn a_port_owning_no_key_gets_no_connection() {
        let topology = Topology { partition_count: 2, shard_count: 3, owner_ports: vec![5, 6] };
        let space = KeySpace::split(&topology, 1);
        assert_eq!(space.by_port.len(), 1);
        assert_eq!(space.for_connection(7).1, vec![0]);
    }
}
