//! A shard's compaction queue: each turn it runs a full compaction an operator asked for
//! (`nacre compact`), or else asks the planner for every healthy partition's next task and runs
//! the one of highest priority, its reads and writes paced by the shard's I/O budget
//! ([`IoBudget`]) as it merges. It runs in a low-share task queue, and planned work waits while the shard is under memory or WAL pressure,
//! so foreground requests and flushes come first. Commits go through the engine's manifest edit,
//! like a flush's. With `compaction.enabled = false` nothing is planned, but asked-for
//! compactions still run.

use crate::config::CompactionConfig;
use crate::io_budget::IoBudget;
use crate::lifecycle::Lifecycle;
use crate::partitions::Partitions;
use nacre_storage::compaction::{Policy, Task, plan};
use nacre_storage::{CompactionOptions, CompactionOutcome};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A partition whose compaction failed is left alone this long before it is planned again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);
/// A full compaction whose inputs changed under it (the background merged some first) starts
/// again from the partition's new runs, at most this many times.
const FULL_COMPACTION_ATTEMPTS: usize = 4;

/// What the queue did for one partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCompactions {
    /// Compactions committed.
    pub compactions: u64,
    /// Compactions that failed.
    pub failures: u64,
    /// Time spent compacting, microseconds.
    pub micros: u64,
}

/// One shard's compaction queue.
pub struct Compactor {
    config: CompactionConfig,
    policy: Policy,
    /// Tasks planned at the last turn.
    queue_length: Cell<usize>,
    /// Turns that waited because the shard was under pressure.
    paused_turns: Cell<u64>,
    by_partition: RefCell<BTreeMap<u32, PartitionCompactions>>,
    failed_until: RefCell<BTreeMap<u32, Instant>>,
    /// Partitions an operator asked to compact whole, not yet begun.
    requested: RefCell<BTreeSet<u32>>,
    /// The `compaction` task queue, once the shard made it.
    queue: Cell<Option<glommio::TaskQueueHandle>>,
}

/// What full compactions of some partitions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FullCompactions {
    /// Compactions committed.
    pub compactions: u32,
    /// Segment bytes read.
    pub bytes_in: u64,
    /// Segment bytes written.
    pub bytes_out: u64,
}

impl Compactor {
    /// A queue under `config`.
    pub fn new(config: &CompactionConfig) -> Compactor {
        Compactor {
            config: config.clone(),
            policy: config.policy(),
            queue_length: Cell::new(0),
            paused_turns: Cell::new(0),
            by_partition: RefCell::new(BTreeMap::new()),
            failed_until: RefCell::new(BTreeMap::new()),
            requested: RefCell::new(BTreeSet::new()),
            queue: Cell::new(None),
        }
    }

    /// Where asked-for compactions that are waited for run: the shard's `compaction` queue.
    pub fn set_queue(&self, queue: glommio::TaskQueueHandle) {
        self.queue.set(Some(queue));
    }

    /// Queues a full compaction of each of `partitions`, run before any planned task.
    pub fn request(&self, partitions: &[u32]) {
        self.requested.borrow_mut().extend(partitions.iter().copied());
    }

    /// Compacts each of `partitions` whole now, in the `compaction` task queue, and returns what
    /// that did (no I/O budget: an operator asked and waits). The first failure ends it.
    pub async fn compact_now(
        self: Rc<Self>,
        partitions: Rc<Partitions>,
        which: Vec<u32>,
    ) -> Result<FullCompactions, String> {
        let queue = self.queue.get().ok_or("the compaction queue is not running yet")?;
        let work = async move {
            let mut done = FullCompactions::default();
            for p in which {
                if let Some(outcome) = self.compact_fully(&partitions, p).await? {
                    done.compactions += 1;
                    done.bytes_in += outcome.bytes_in;
                    done.bytes_out += outcome.bytes_out;
                }
            }
            Ok(done)
        };
        glommio::spawn_local_into(work, queue).map_err(|e| format!("spawning a compaction: {e}"))?.await
    }

    /// Compacts partition `p` whole: flushes its memtable first (as RocksDB's `CompactRange`
    /// does), so what was written before the request is compacted too, then merges every run but
    /// those of loads kept apart (linking, rolled back, or pinned by a rollback). `None` if it
    /// has no runs.
    async fn compact_fully(&self, partitions: &Partitions, p: u32) -> Result<Option<CompactionOutcome>, String> {
        let engine =
            partitions.engines.get(&p).cloned().ok_or_else(|| format!("partition {p} is not on this shard"))?;
        engine.flush().await.map_err(|e| format!("flushing partition {p} before its compaction: {e}"))?;
        for _ in 0..FULL_COMPACTION_ATTEMPTS {
            let inputs: Vec<_> = engine.compaction_snapshot().runs.iter().map(|r| r.id).collect();
            if inputs.is_empty() {
                return Ok(None);
            }
            let started = Instant::now();
            let result = engine.compact(&inputs, CompactionOptions::collect_garbage()).await;
            self.record(p, started.elapsed(), result.as_ref().ok());
            match result {
                Ok(outcome) => return Ok(Some(outcome)),
                Err(nacre_storage::Error::UnknownSegment(_)) => continue,
                Err(e) => return Err(format!("compacting partition {p}: {e}")),
            }
        }
        Err(format!("partition {p}'s runs kept changing under its compaction; try again"))
    }

    fn record(&self, p: u32, elapsed: Duration, outcome: Option<&CompactionOutcome>) {
        let mut stats = self.by_partition.borrow_mut();
        let entry = stats.entry(p).or_default();
        entry.micros += u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        match outcome {
            Some(_) => entry.compactions += 1,
            None => entry.failures += 1,
        }
    }

    /// Tasks planned at the last turn.
    pub fn queue_length(&self) -> usize {
        self.queue_length.get()
    }

    /// Turns that waited for memory or WAL pressure to pass.
    pub fn paused_turns(&self) -> u64 {
        self.paused_turns.get()
    }

    /// What the queue did for partition `p`.
    pub fn of_partition(&self, p: u32) -> PartitionCompactions {
        self.by_partition.borrow().get(&p).copied().unwrap_or_default()
    }

    /// Plans every healthy partition and returns the tasks, highest priority first.
    pub fn plan_all(&self, partitions: &Partitions) -> Vec<(u32, Task)> {
        let now = Instant::now();
        let failed = self.failed_until.borrow();
        let mut tasks: Vec<(u32, Task)> = partitions
            .engines
            .iter()
            .filter(|(p, e)| e.check_poisoned().is_ok() && failed.get(p).is_none_or(|until| *until <= now))
            .filter_map(|(p, e)| plan(&e.compaction_snapshot(), e.heat(), &self.policy).map(|t| (*p, t)))
            .collect();
        tasks.sort_by(|a, b| b.1.priority.total_cmp(&a.1.priority).then(a.0.cmp(&b.0)));
        tasks
    }

    /// Drains the queue until the shard stops.
    pub async fn run(self: Rc<Self>, partitions: Rc<Partitions>, life: Rc<Lifecycle>) {
        let interval = Duration::from_millis(self.config.check_interval_ms);
        while !life.is_stopping() {
            let asked = self.requested.borrow_mut().pop_first();
            if let Some(p) = asked {
                if let Err(e) = self.compact_fully(&partitions, p).await {
                    tracing::warn!(partition = p, error = %e, "an asked-for compaction failed");
                }
                continue;
            }
            if !self.config.enabled {
                life.sleep_unless_stopping(interval).await;
                continue;
            }
            if partitions.under_pressure() {
                self.paused_turns.set(self.paused_turns.get() + 1);
                life.sleep_unless_stopping(interval).await;
                continue;
            }
            let tasks = self.plan_all(&partitions);
            self.queue_length.set(tasks.len());
            let Some((p, task)) = tasks.into_iter().next() else {
                life.sleep_unless_stopping(interval).await;
                continue;
            };
            let Some(engine) = partitions.engines.get(&p).cloned() else { continue };
            let started = Instant::now();
            let budget = IoBudget::start(self.config.io_bytes_per_sec, life.clone());
            let result = engine.compact_paced(&task.inputs, CompactionOptions::collect_garbage(), &budget).await;
            let elapsed = started.elapsed();
            self.record(p, elapsed, result.as_ref().ok());
            let moved = match &result {
                Ok(outcome) => {
                    tracing::debug!(
                        partition = p,
                        reason = task.reason.name(),
                        inputs = task.inputs.len(),
                        bytes_in = outcome.bytes_in,
                        bytes_out = outcome.bytes_out,
                        ms = elapsed.as_millis() as u64,
                        "compacted"
                    );
                    outcome.bytes_in + outcome.bytes_out
                }
                Err(e) => {
                    self.failed_until.borrow_mut().insert(p, Instant::now() + RETRY_AFTER_FAILURE);
                    tracing::warn!(partition = p, error = %e, "compaction failed; the partition is left alone a while");
                    0
                }
            };
            // What the pacing left owing (the output's last chunk, its index and bloom) is
            // waited for before the next task.
            let wait = crate::io_budget::owed(self.config.io_bytes_per_sec, moved, elapsed);
            if !wait.is_zero() {
                life.sleep_unless_stopping(wait).await;
            }
        }
    }
}
