//! `nacre compact`: a full compaction of the partitions holding a table, asked for by an
//! operator (or a benchmark). Any shard takes the request; each owning shard queues its
//! partitions ahead of planned work or, with `wait`, compacts them at once in its compaction task
//! queue and answers with what that did.

use crate::convert::error;
use crate::shard::Shard;
use nacre_wire::{self as wire, CompactionReport, ErrorCode, Reply};
use std::rc::Rc;

impl Shard {
    /// Compacts table `c.table`'s partitions, every one or one.
    pub(crate) async fn compact(self: &Rc<Self>, c: wire::Compact) -> Result<Reply, wire::ErrorReply> {
        if self.catalog.borrow().get(&c.table).is_none() {
            return Err(error(ErrorCode::UnknownTable, format!("no table {:?}", c.table)));
        }
        let count = self.process.partition_count;
        let partitions: Vec<u32> = match c.partition {
            Some(p) if p >= count => {
                return Err(error(ErrorCode::BadRequest, format!("partition {p} is not below the {count} partitions")));
            }
            Some(p) => vec![p],
            None => (0..count).collect(),
        };
        let mut report = CompactionReport { partitions: partitions.len() as u32, ..CompactionReport::default() };
        for shard in 0..self.process.shard_count {
            let mine: Vec<u32> = partitions.iter().copied().filter(|p| self.process.owner(*p) == shard).collect();
            if mine.is_empty() {
                continue;
            }
            let wait = c.wait;
            let part = self
                .mesh
                .invoke_on(shard, move |s: Rc<Shard>| async move {
                    if wait {
                        s.compactor.clone().compact_now(s.partitions.clone(), mine).await
                    } else {
                        s.compactor.request(&mine);
                        Ok(Default::default())
                    }
                })
                .await
                .map_err(|e| error(ErrorCode::ShuttingDown, e.to_string()))?
                .map_err(|e| error(ErrorCode::Io, e))?;
            report.compactions += part.compactions;
            report.bytes_in += part.bytes_in;
            report.bytes_out += part.bytes_out;
        }
        Ok(Reply::Compacted(report))
    }
}
