//! Shard-aware routing: which port serves a request, the lazily opened connection per port
//! (reopened on next use once it has ended), and the split of a multi-get by owner. It knows
//! the partitioner and the topology; it does not encode, time or retry anything.

use super::connection::Connection;
use super::error::ClientError;
use super::{ClientOptions, open};
use crate::request::Request;
use crate::types::{Key, MultiGet, Row, Topology, WriteBatch};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

/// One port's connection, opened on first use. The async lock makes concurrent first users wait
/// for one connect instead of racing several.
type Slot = Arc<tokio::sync::Mutex<Option<Arc<Connection>>>>;

pub(super) struct Router {
    /// The address first connected to: its host serves every shard port.
    primary: SocketAddr,
    shard_aware: bool,
    topology: RwLock<Topology>,
    slots: Mutex<HashMap<u16, Slot>>,
}

/// The part of a multi-get bound for one port.
pub(super) struct Group {
    pub(super) port: u16,
    /// Where each of its keys sits in the caller's list.
    pub(super) indices: Vec<usize>,
    pub(super) request: Request,
}

impl Router {
    pub(super) fn new(first: Arc<Connection>, topology: Topology, shard_aware: bool) -> Router {
        let primary = first.addr();
        let slots = HashMap::from([(primary.port(), Arc::new(tokio::sync::Mutex::new(Some(first))))]);
        Router { primary, shard_aware, topology: RwLock::new(topology), slots: Mutex::new(slots) }
    }

    pub(super) fn topology(&self) -> Topology {
        self.topology.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(super) fn set_topology(&self, topology: Topology) {
        *self.topology.write().unwrap_or_else(PoisonError::into_inner) = topology;
    }

    /// The port to send a request with this partition key to: its owner's, or the first
    /// connection's for requests without one (and when not shard-aware).
    pub(super) fn port_for(&self, partition_key: Option<&[u8]>) -> u16 {
        let owner = match partition_key {
            Some(pk) if self.shard_aware => self.topology.read().unwrap_or_else(PoisonError::into_inner).owner_port(pk),
            _ => None,
        };
        owner.unwrap_or(self.primary.port())
    }

    /// The live connection to `port`, opening (or reopening) it if needed.
    pub(super) async fn connection(&self, port: u16, options: &ClientOptions) -> Result<Arc<Connection>, ClientError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(slots.entry(port).or_default())
        };
        let mut slot = slot.lock().await;
        if let Some(connection) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(connection));
        }
        let (connection, _hello) = open(SocketAddr::new(self.primary.ip(), port), options).await?;
        let connection = Arc::new(connection);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    /// Refuses a batch whose ops fall in more than one partition.
    pub(super) fn check_one_partition(&self, batch: &WriteBatch) -> Result<(), ClientError> {
        let topology = self.topology.read().unwrap_or_else(PoisonError::into_inner);
        let mut partitions = batch.ops.iter().map(|op| topology.partition_of(&op.key().partition_key));
        let Some(first) = partitions.next() else { return Ok(()) };
        match partitions.find(|p| *p != first) {
            Some(other) => Err(ClientError::CrossPartitionBatch { first, other }),
            None => Ok(()),
        }
    }

    /// Splits a multi-get into one request per owning port, keys in their original order
    /// within each.
    pub(super) fn split_multi_get(&self, multi_get: MultiGet) -> Vec<Group> {
        let MultiGet { table, keys, as_of } = multi_get;
        let mut by_port: Vec<(u16, Vec<usize>, Vec<Key>)> = Vec::new();
        for (index, key) in keys.into_iter().enumerate() {
            let port = self.port_for(Some(&key.partition_key));
            let at = match by_port.iter().position(|(p, ..)| *p == port) {
                Some(at) => at,
                None => {
                    by_port.push((port, Vec::new(), Vec::new()));
                    by_port.len() - 1
                }
            };
            let (_, indices, group_keys) = &mut by_port[at];
            indices.push(index);
            group_keys.push(key);
        }
        by_port
            .into_iter()
            .map(|(port, indices, keys)| Group {
                port,
                indices,
                request: Request::MultiGet(MultiGet { table: table.clone(), keys, as_of }),
            })
            .collect()
    }
}

/// Puts the groups' results back in the order of the original keys.
pub(super) fn reassemble(groups: &[Group], parts: Vec<Vec<Option<Row>>>) -> Result<Vec<Option<Row>>, ClientError> {
    let total = groups.iter().map(|g| g.indices.len()).sum();
    let mut out = vec![None; total];
    for (group, rows) in groups.iter().zip(parts) {
        if rows.len() != group.indices.len() {
            return Err(ClientError::UnexpectedReply { request: "multi_get", reply: "multi_get" });
        }
        for (index, row) in group.indices.iter().zip(rows) {
            out[*index] = row;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Origin, OriginKind, Ts, VersionId};

    fn row(n: u8) -> Option<Row> {
        let version = VersionId { ts: Ts(1), origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: 0 } };
        Some(Row { value: vec![n], version, expires_at_ms: None })
    }

    fn group(port: u16, indices: Vec<usize>) -> Group {
        Group { port, indices, request: Request::Stats }
    }

    #[test]
    fn reassemble_restores_key_order_and_checks_counts() {
        let groups = [group(1, vec![0, 3]), group(2, vec![1, 2])];
        let out = reassemble(&groups, vec![vec![row(0), None], vec![row(1), row(2)]]).expect("counts match");
        assert_eq!(out, vec![row(0), row(1), row(2), None]);
        let short = reassemble(&groups, vec![vec![row(0)], vec![row(1), row(2)]]);
        assert!(matches!(short, Err(ClientError::UnexpectedReply { .. })));
    }
}
