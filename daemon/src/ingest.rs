//! Streaming ingestion from Kafka. Every shard runs one consumer per source (`consumer.rs`),
//! on its own core, for the Kafka partitions whose home partition it owns; messages map to
//! versions by `message.rs`, bad ones go to a dead-letter topic (`dead_letter.rs`), and
//! misaligned ones are written durably where they belong (`forward.rs`).
//!
//! The catalog says which sources exist; [`Ingest::sync`] starts and stops this shard's
//! consumers to match it, whenever a catalog is installed. Stopping a consumer waits until its
//! loop has ended, so `nacre source remove` returns only once no shard consumes the source.

mod consumer;
mod dead_letter;
mod forward;
pub mod message;

pub use consumer::{Assigned, consumer_settings};
pub use forward::ForwardError;

use crate::catalog::{Catalog, SourceEntry};
use crate::shard::Shard;
use nacre_wire as wire;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

/// Per-source, per-shard counters.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages applied (local, or forwarded and durable).
    pub applied: Cell<u64>,
    /// Messages skipped as bad.
    pub skipped: Cell<u64>,
    /// Skipped messages copied to the dead-letter topic.
    pub dead_lettered: Cell<u64>,
    /// Skipped messages whose copy could not be queued.
    pub dead_letter_failed: Cell<u64>,
    /// Messages forwarded to another partition.
    pub forwarded: Cell<u64>,
    /// Messages applied to their home partition that it already held: a replay after a restart.
    pub replayed: Cell<u64>,
    /// Home partitions flushed because a streamed version had waited in memory longer than
    /// `kafka.max_replay_ms`.
    pub replay_bound_flushes: Cell<u64>,
}

/// What a running source shares with the shard: counters, assignment and positions (for
/// stats).
#[derive(Default)]
pub struct SourceState {
    /// Counters.
    pub counters: Counters,
    /// The assigned Kafka partitions and their positions.
    pub assigned: RefCell<Vec<Assigned>>,
    /// Start of the current minute of skip logging, and lines logged in it.
    skip_log: Cell<Option<(Instant, u32)>>,
    /// The last problem logged, so a repeating one is logged once.
    last_problem: RefCell<String>,
}

impl SourceState {
    /// True if another skipped message may be logged this minute.
    fn may_log_skip(&self, per_minute: u32) -> bool {
        let now = Instant::now();
        let (start, logged) = match self.skip_log.get() {
            Some((start, logged)) if now.duration_since(start).as_secs() < 60 => (start, logged),
            _ => (now, 0),
        };
        self.skip_log.set(Some((start, logged.saturating_add(1))));
        logged < per_minute
    }

    /// Logs a problem once, until another one replaces it.
    fn note_problem(&self, source: &str, shard: usize, problem: &str) {
        if *self.last_problem.borrow() != problem {
            tracing::warn!(shard, source, problem, "Kafka source");
            *self.last_problem.borrow_mut() = problem.to_owned();
        }
    }
}

/// A source running on this shard.
struct Running {
    entry: SourceEntry,
    state: Rc<SourceState>,
    stop: Rc<Cell<bool>>,
    task: glommio::task::JoinHandle<()>,
}

/// A shard's ingestion: its running sources.
#[derive(Default)]
pub struct Ingest {
    running: RefCell<BTreeMap<String, Running>>,
    /// Times this shard paused its partitions at the memtable ceiling.
    pub paused_total: Cell<u64>,
    /// The task queue consumers run in.
    queue: Cell<Option<glommio::TaskQueueHandle>>,
    /// Serialises [`Ingest::sync`] calls.
    syncing: async_lock::Mutex<()>,
}

impl Ingest {
    /// Sets the task queue consumers run in (before the first sync).
    pub fn set_queue(&self, queue: glommio::TaskQueueHandle) {
        self.queue.set(Some(queue));
    }

    /// Stops every consumer and waits for them.
    pub async fn stop_all(&self) {
        let _serial = self.syncing.lock().await;
        let running = std::mem::take(&mut *self.running.borrow_mut());
        for (_, r) in running {
            r.stop.set(true);
            r.task.await;
        }
    }
}

impl Shard {
    /// Starts and stops this shard's consumers to match `catalog`'s active sources; a source
    /// whose settings changed is restarted.
    pub async fn sync_sources(self: &Rc<Self>, catalog: &Catalog) {
        let _serial = self.ingest.syncing.lock().await;
        if self.life.is_stopping() {
            return;
        }
        let wanted: BTreeMap<&String, &SourceEntry> = catalog.active_sources().collect();
        let stale: Vec<String> = self
            .ingest
            .running
            .borrow()
            .iter()
            .filter(|(name, r)| wanted.get(name).is_none_or(|w| **w != r.entry))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            let removed = self.ingest.running.borrow_mut().remove(&name);
            if let Some(r) = removed {
                r.stop.set(true);
                r.task.await;
            }
        }
        for (name, entry) in wanted {
            if self.ingest.running.borrow().contains_key(name) {
                continue;
            }
            let state = Rc::new(SourceState::default());
            let stop = Rc::new(Cell::new(false));
            let run = consumer::run(self.clone(), name.clone(), entry.clone(), state.clone(), stop.clone());
            let queue = self.ingest.queue.get();
            let spawned = match queue {
                Some(q) => glommio::spawn_local_into(run, q),
                None => Ok(glommio::spawn_local(run)),
            };
            match spawned {
                Ok(task) => {
                    let running = Running { entry: entry.clone(), state, stop, task: task.detach() };
                    self.ingest.running.borrow_mut().insert(name.clone(), running);
                }
                Err(e) => tracing::error!(shard = self.id, source = %name, error = %e, "cannot start the consumer"),
            }
        }
    }

    /// This shard's ingestion statistics.
    pub fn ingest_stats(&self, out: &mut Vec<wire::Stat>) {
        let shard = Some(u32::try_from(self.id).expect("small"));
        let stat = |name: String, value: u64| wire::Stat { name, shard, partition: None, value };
        out.push(stat("kafka_paused_total".into(), self.ingest.paused_total.get()));
        for (name, r) in self.ingest.running.borrow().iter() {
            let c = &r.state.counters;
            for (counter, value) in [
                ("kafka_applied_total", c.applied.get()),
                ("kafka_skipped_total", c.skipped.get()),
                ("kafka_dead_lettered_total", c.dead_lettered.get()),
                ("kafka_dead_letter_failed_total", c.dead_letter_failed.get()),
                ("kafka_forwarded_total", c.forwarded.get()),
                ("kafka_replayed_total", c.replayed.get()),
                ("kafka_replay_bound_flushes_total", c.replay_bound_flushes.get()),
            ] {
                out.push(stat(wire::labelled(counter, &[("source", name)]), value));
            }
            for a in r.state.assigned.borrow().iter() {
                let kafka_partition = a.kafka_partition.to_string();
                let labels =
                    [("source", name.as_str()), ("topic", a.topic.as_str()), ("kafka_partition", &kafka_partition)];
                if let Some(next) = a.next {
                    out.push(stat(wire::labelled("kafka_next_offset", &labels), next));
                }
                if let Some(high) = a.high_watermark {
                    out.push(stat(wire::labelled("kafka_lag", &labels), high.saturating_sub(a.next.unwrap_or(0))));
                }
            }
        }
    }
}
