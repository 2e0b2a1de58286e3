//! The connection-level messages: the handshake, the topology a shard-aware client routes by,
//! and server statistics. Owns the protocol version this build speaks.

use crate::partitioner::partition_of;

/// The protocol version this build speaks. The first released schema is version 1.
pub const PROTOCOL_VERSION: u32 = 1;

/// The first request on every connection. Answered by [`crate::Reply::Handshake`], or by
/// [`crate::ErrorCode::ProtocolVersion`] if the server cannot speak any version the client does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The highest protocol version the client speaks.
    pub protocol_version: u32,
    /// Who is calling, for logs and metrics.
    pub client_name: String,
}

/// The server's answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeOk {
    /// The version the connection speaks from now on: at most the client's.
    pub protocol_version: u32,
    /// The server's name (`nacred`).
    pub server_name: String,
    /// The server's version.
    pub server_version: String,
    /// How partitions map to shard ports.
    pub topology: Topology,
}

/// How the server's shards split the partitions. Decoding guarantees `partition_count >= 1` and
/// one owner port per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Logical partitions, fixed when the cluster was initialised.
    pub partition_count: u32,
    /// Shards (cores) serving them.
    pub shard_count: u32,
    /// For each partition, the port of the shard that owns it, on the host the client
    /// connected to.
    pub owner_ports: Vec<u16>,
}

impl Topology {
    /// The partition of `partition_key`.
    pub fn partition_of(&self, partition_key: &[u8]) -> u32 {
        partition_of(partition_key, self.partition_count)
    }

    /// The port of the shard owning `partition_key`'s partition.
    pub fn owner_port(&self, partition_key: &[u8]) -> Option<u16> {
        let partition = usize::try_from(self.partition_of(partition_key)).ok()?;
        self.owner_ports.get(partition).copied()
    }
}

/// One counter or gauge. Names end in their unit (`_bytes`, `_total`, `_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// What it measures.
    pub name: String,
    /// The shard it describes; `None` for the whole server.
    pub shard: Option<u32>,
    /// The partition it describes; `None` for a whole shard or the server.
    pub partition: Option<u32>,
    /// The value.
    pub value: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_port_follows_the_partitioner() {
        let topology = Topology { partition_count: 4, shard_count: 2, owner_ports: vec![7000, 7001, 7000, 7001] };
        for key in [&b"a"[..], b"b", b"user:1", b""] {
            let p = partition_of(key, 4) as usize;
            assert_eq!(topology.owner_port(key), Some(topology.owner_ports[p]));
        }
    }
}
