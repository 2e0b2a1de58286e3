//! What a shard counts of the requests each partition it owns serves: reads, writes and
//! deletes, native and RESP alike, counted on the owning shard when the request reaches the
//! partition's engine (a multi-get counts one read per key, a write batch one write, a RESP
//! command one per key it touches). A plain increment of a cell indexed by partition number: no
//! allocation, no lock, no lookup. Exported as `partition_requests_total{op}` per partition.

use std::cell::Cell;

/// What a request does to its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Get, scan, versions, explain, or a RESP read.
    Read = 0,
    /// Put or write batch, or a RESP write.
    Write = 1,
    /// Delete, or a RESP `DEL`, `HDEL` or `GETDEL`.
    Delete = 2,
}

impl Access {
    /// Labels, by [`Access`] value.
    const LABELS: [&'static str; 3] = ["read", "write", "delete"];
}

/// One shard's per-partition request counters. Touched only by its shard's thread.
pub(crate) struct PartitionRequests {
    /// By partition number (every partition of the store; only the owned ones move).
    counts: Box<[[Cell<u64>; 3]]>,
}

impl PartitionRequests {
    /// Counters for a store of `partition_count` partitions.
    pub(crate) fn new(partition_count: u32) -> Self {
        let len = usize::try_from(partition_count).expect("partition counts fit in memory");
        Self { counts: (0..len).map(|_| std::array::from_fn(|_| Cell::new(0))).collect() }
    }

    /// Counts one `access` to `partition`.
    pub(crate) fn count(&self, partition: u32, access: Access) {
        if let Some(counts) = usize::try_from(partition).ok().and_then(|p| self.counts.get(p)) {
            let count = &counts[access as usize];
            count.set(count.get() + 1);
        }
    }

    /// Appends `partition_requests_total{op}` of each partition in `owned`, zeros included (so
    /// a partition's rate reads 0, not absent).
    pub(crate) fn push_stats(
        &self,
        shard: Option<u32>,
        owned: impl Iterator<Item = u32>,
        out: &mut Vec<nacre_wire::Stat>,
    ) {
        for p in owned {
            let Some(counts) = usize::try_from(p).ok().and_then(|i| self.counts.get(i)) else { continue };
            for (label, count) in Access::LABELS.iter().zip(counts) {
                let name = nacre_wire::labelled("partition_requests_total", &[("op", label)]);
                out.push(nacre_wire::Stat { name, shard, partition: Some(p), value: count.get() });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_partition_and_access_apart() {
        let requests = PartitionRequests::new(4);
        for _ in 0..3 {
            requests.count(2, Access::Write);
        }
        requests.count(2, Access::Read);
        requests.count(0, Access::Delete);
        requests.count(9, Access::Read);
        let mut stats = Vec::new();
        requests.push_stats(Some(1), [0, 2].into_iter(), &mut stats);
        let value = |p: u32, op: &str| {
            let name = nacre_wire::labelled("partition_requests_total", &[("op", op)]);
            stats.iter().find(|s| s.partition == Some(p) && s.name == name).map(|s| s.value)
        };
        assert_eq!(stats.len(), 6, "three ops for each owned partition");
        assert_eq!(value(2, "write"), Some(3));
        assert_eq!(value(2, "read"), Some(1));
        assert_eq!(value(0, "delete"), Some(1));
        assert_eq!(value(0, "write"), Some(0));
        assert_eq!(value(1, "read"), None, "partitions not owned are not listed");
    }
}
