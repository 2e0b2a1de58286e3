//! The native target: one slot of a session, over the wire client. A session holds one
//! connection per shard port and sends each record to the shard that owns it, as a shard-aware
//! application does; its `--pipeline` slots each keep one request in flight. A slot sends, waits
//! for the reply, records the latency, and repeats until the plan ends.

use crate::keys::Router;
use crate::plan::{Clock, Plan};
use crate::tally::Tally;
use crate::workload::{Op, Operation};
use nacre_wire::{Client, ClientError, Durability, Get, Put, Scan};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a session's slots share: its connections and where they write.
#[derive(Clone)]
pub struct Session {
    /// One connection per shard port, in [`Router::ports`] order.
    pub connections: Arc<Vec<Client>>,
    /// Which connection owns a key.
    pub router: Arc<Router>,
    /// The table.
    pub table: Arc<str>,
    /// Write durability; `None` for the server's.
    pub durability: Option<Durability>,
}

impl Session {
    fn connection(&self, partition_key: &[u8]) -> &Client {
        &self.connections[self.router.connection_for(partition_key)]
    }

    /// Performs `operation`; counts hits, misses and scanned rows into `tally` when `record`.
    async fn perform(
        &self,
        plan: &mut Plan,
        operation: Operation,
        tally: &mut Tally,
        record: bool,
    ) -> Result<(), ClientError> {
        let key = plan.layout.key(operation.record);
        let client = self.connection(&key.partition_key);
        let get = |key| Get::new(&*self.table, key);
        match operation.op {
            Op::Read => {
                let found = client.get(get(key)).await?;
                if record {
                    count_read(tally, found.is_some());
                }
            }
            Op::Update | Op::Insert => {
                let put = Put { durability: self.durability, ..Put::new(&*self.table, key, plan.value()) };
                client.put(put).await?;
            }
            Op::Scan => {
                let scan = Scan {
                    from: Some(key.sort_key),
                    limit: operation.scan_length,
                    ..Scan::new(&*self.table, key.partition_key)
                };
                let page = client.scan(scan).await?;
                if record {
                    tally.scanned_rows += page.rows.len() as u64;
                }
            }
            Op::ReadModifyWrite => {
                let found = client.get(get(key.clone())).await?;
                if record {
                    count_read(tally, found.is_some());
                }
                let put = Put { durability: self.durability, ..Put::new(&*self.table, key, plan.value()) };
                client.put(put).await?;
            }
        }
        Ok(())
    }
}

fn count_read(tally: &mut Tally, found: bool) {
    if found {
        tally.hits += 1;
    } else {
        tally.misses += 1;
    }
}

/// Runs one slot of `session` until `plan` ends.
pub async fn run_slot(session: Session, mut plan: Plan) -> Tally {
    let mut tally = Tally::new();
    let mut clock = Clock::new(plan.schedule);
    let pacer = plan.pacer.clone();
    loop {
        if let (Some(pacer), Some(due)) = (&pacer, clock.next_due()) {
            pacer.sleep_until(due).await;
        }
        let now = Instant::now();
        let Some(start) = clock.take(now) else { continue };
        if start >= plan.until {
            return tally;
        }
        let Some(operation) = plan.next_operation() else { return tally };
        let measured = start >= plan.measure_from;
        if measured && plan.schedule.is_some() {
            tally.sent_late(u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX));
        }
        let outcome = session.perform(&mut plan, operation, &mut tally, measured).await;
        plan.completed_one();
        match outcome {
            Ok(()) if measured => {
                let latency = Instant::now().duration_since(start);
                tally.record(operation.op, u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
            }
            Ok(()) => {}
            Err(e) => {
                if measured {
                    tally.error(&e.to_string());
                }
                // A dead connection fails at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
