//! A shard's compaction queue: each turn it asks the planner for every healthy partition's next
//! task, runs the one of highest priority, and waits as the shard's I/O budget requires. It runs
//! in a low-share task queue, and waits while the shard is under memory or WAL pressure, so
//! foreground requests and flushes come first. Commits go through the engine's manifest edit,
//! like a flush's.

use crate::config::CompactionConfig;
use crate::lifecycle::Lifecycle;
use crate::partitions::Partitions;
use futures_lite::FutureExt;
use nacre_storage::CompactionOptions;
use nacre_storage::compaction::{Policy, Task, plan};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A partition whose compaction failed is left alone this long before it is planned again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

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
            if !self.config.enabled {
                return;
            }
            if partitions.under_pressure() {
                self.paused_turns.set(self.paused_turns.get() + 1);
                self.sleep_unless_stopping(&life, interval).await;
                continue;
            }
            let tasks = self.plan_all(&partitions);
            self.queue_length.set(tasks.len());
            let Some((p, task)) = tasks.into_iter().next() else {
                self.sleep_unless_stopping(&life, interval).await;
                continue;
            };
            let Some(engine) = partitions.engines.get(&p).cloned() else { continue };
            let started = Instant::now();
            let result = engine.compact(&task.inputs, CompactionOptions::collect_garbage()).await;
            let elapsed = started.elapsed();
            let moved = {
                let mut stats = self.by_partition.borrow_mut();
                let entry = stats.entry(p).or_default();
                entry.micros += u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
                match &result {
                    Ok(outcome) => {
                        entry.compactions += 1;
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
                        entry.failures += 1;
                        self.failed_until.borrow_mut().insert(p, Instant::now() + RETRY_AFTER_FAILURE);
                        tracing::warn!(partition = p, error = %e, "compaction failed; the partition is left alone a while");
                        0
                    }
                }
            };
            // The I/O budget: a compaction that moved `moved` bytes owes `moved / rate` seconds.
            if self.config.io_bytes_per_sec > 0 {
                let owed = Duration::from_secs_f64(moved as f64 / self.config.io_bytes_per_sec as f64);
                if let Some(wait) = owed.checked_sub(elapsed) {
                    self.sleep_unless_stopping(&life, wait).await;
                }
            }
        }
    }

    async fn sleep_unless_stopping(&self, life: &Lifecycle, duration: Duration) {
        async {
            glommio::timer::sleep(duration).await;
        }
        .or(life.until_stopping())
        .await;
    }
}
