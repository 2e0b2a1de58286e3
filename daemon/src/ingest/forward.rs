//! Forwarded stream writes. A message whose key belongs to another partition than its Kafka
//! partition's home (a misaligned producer) is written where it belongs, through the WAL with
//! `Sync` durability: it counts as durable only once that write is, and only then may the home
//! partition's position move past it. On this shard that is a local write; otherwise the owner
//! does it when asked through the mesh.

use crate::shard::Shard;
use nacre_storage::{Durability, Entry, Error};
use std::rc::Rc;

/// Why a forwarded write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardError {
    /// It may succeed later (memory at its ceiling, a shard stopping, a failed disk): retry.
    Retry(String),
    /// It never will (a limit, an unknown table): the messages are skipped as bad.
    Refused(String),
}

/// A forwarded batch that failed: why, and its versions.
#[derive(Debug)]
pub struct Forwarded {
    /// Why.
    pub error: ForwardError,
    /// The versions, as the owner had them.
    pub entries: Vec<Entry>,
}

fn classify(e: &Error) -> ForwardError {
    match e {
        Error::LimitExceeded { .. }
        | Error::InvalidArgument(_)
        | Error::UnknownTable(_)
        | Error::TimestampTooFarInFuture { .. } => ForwardError::Refused(e.to_string()),
        _ => ForwardError::Retry(e.to_string()),
    }
}

impl Shard {
    /// Writes streamed versions to `partition`, which this shard owns, and returns once they
    /// are durable. On failure the versions come back with the reason, to retry or report.
    pub(crate) async fn write_forwarded(&self, partition: u32, mut entries: Vec<Entry>) -> Result<(), Forwarded> {
        let Some(engine) = self.partitions.engines.get(&partition).cloned() else {
            let reason = format!("partition {partition} is not on shard {}", self.id);
            return Err(Forwarded { error: ForwardError::Refused(reason), entries });
        };
        if let Err(e) = self.partitions.wait_for_memory().await {
            return Err(Forwarded { error: ForwardError::Retry(e.to_string()), entries });
        }
        match engine.write_borrowed(&mut entries, Durability::Sync).await {
            Ok(_) => Ok(()),
            Err(e) => Err(Forwarded { error: classify(&e), entries }),
        }
    }

    /// Has `partition`'s owner write `entries` durably, and waits for it. The versions travel
    /// to the owner and back only if they failed: no copy is kept for a retry. `Err(None)`: the
    /// owner is shutting down, and the versions are gone with it (the caller's positions must
    /// not move past them).
    pub(crate) async fn forward_streamed(
        self: &Rc<Self>,
        partition: u32,
        entries: Vec<Entry>,
    ) -> Result<(), Option<Forwarded>> {
        let owner = self.process.owner(partition);
        let write = move |s: Rc<Shard>| async move { s.write_forwarded(partition, entries).await };
        match self.mesh.invoke_on(owner, write).await {
            Ok(written) => written.map_err(Some),
            Err(_closed) => Err(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_storage::{Limit, TableId};

    #[test]
    fn only_errors_that_can_never_succeed_are_refusals() {
        let refused = [
            Error::LimitExceeded { what: Limit::Value, size: 2, max: 1 },
            Error::UnknownTable(TableId(9)),
            Error::InvalidArgument("empty"),
        ];
        for e in refused {
            assert!(matches!(classify(&e), ForwardError::Refused(_)), "{e}");
        }
        assert!(matches!(classify(&Error::Poisoned { op: "wal commit" }), ForwardError::Retry(_)));
    }
}
