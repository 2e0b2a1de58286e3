//! A shard: one glommio executor pinned to one core, owning the engines of its partitions, one
//! shared WAL, a copy of the catalog and its mesh ends. No state is shared with other shards;
//! everything crosses through the mesh.

use crate::budget::ByteBudget;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::mesh::Mesh;
use anyhow::{Context, Result};
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{Clock, Engine, EngineOptions, Hlc, Limits, PartitionId, SystemClock, Wal};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};

/// What every shard shares, read-only, with the process.
#[derive(Debug)]
pub struct Process {
    /// The configuration.
    pub config: Config,
    /// The data directory.
    pub root: PathBuf,
    /// Logical partitions.
    pub partition_count: u32,
    /// Shards.
    pub shard_count: usize,
    /// Set by SIGTERM/SIGINT.
    pub stop: Arc<AtomicBool>,
    /// Shards that have drained their connections and wait to flush.
    pub drained: Arc<AtomicUsize>,
    /// Bulk loads reads must not see (linking, aborted, rolled back), shared by every engine.
    pub visibility: nacre_storage::bulk::LoadVisibility,
    /// The bulk-load book as it was at start (each shard's recovery reconciles against it).
    pub bulk_book: crate::bulk_book::LoadBook,
    /// The catalog as it was at start (each shard starts from a copy).
    pub catalog: Catalog,
}

impl Process {
    /// The shard owning `partition`.
    pub fn owner(&self, partition: u32) -> usize {
        partition as usize % self.shard_count
    }
}

/// One shard's state.
pub struct Shard {
    /// Index of this shard.
    pub id: usize,
    /// Process-wide facts.
    pub process: Arc<Process>,
    /// Engines of the partitions this shard owns.
    pub engines: BTreeMap<u32, Rc<Engine<DmaDisk>>>,
    /// The shard's WAL.
    pub wal: Rc<Wal<DmaDisk>>,
    /// This shard's copy of the catalog.
    pub catalog: RefCell<Catalog>,
    /// Serialises catalog changes (on shard 0).
    pub admin: async_lock::Mutex<()>,
    /// Direct-write timestamps.
    pub hlc: Hlc,
    /// Wall clock.
    pub clock: Rc<dyn Clock>,
    /// Per-shard counter for direct-write origins.
    pub seq: Cell<u64>,
    /// The mesh to other shards.
    pub mesh: Rc<Mesh<Shard>>,
    /// Set once this shard stops accepting work.
    pub stopping: Cell<bool>,
    /// Notified when `stopping` is set.
    pub stop_event: event_listener::Event,
    /// Requests being executed on behalf of this shard's connections.
    pub active_requests: Cell<usize>,
    /// Open client connections.
    pub connections: Cell<usize>,
    /// The RESP door's state on this shard.
    pub resp: crate::resp::ShardState,
    /// Kafka ingestion on this shard.
    pub ingest: crate::ingest::Ingest,
    /// The most memtable bytes seen (by ingestion rounds and the flush loop) since start.
    pub memtable_peak: Cell<usize>,
    /// The bulk-load book that shard 0 keeps and writes (other shards never read their copy).
    pub bulk_book: RefCell<crate::bulk_book::LoadBook>,
    /// Serialises bulk links and rollbacks (on shard 0).
    pub bulk_lock: async_lock::Mutex<()>,
    /// Native request bytes in flight on this shard, all connections together.
    pub request_bytes: Rc<ByteBudget>,
    /// RESP reply bytes computed and not yet written, all connections together.
    pub resp_reply_bytes: Rc<ByteBudget>,
    /// Partitions whose engine is poisoned, once the flush loop has said so.
    pub poisoned_partitions: RefCell<BTreeSet<u32>>,
}

/// The engine limits the configuration sets.
pub fn limits(config: &Config) -> Limits {
    let l = &config.limits;
    Limits {
        max_partition_key_bytes: l.max_partition_key_bytes,
        max_sort_key_bytes: l.max_sort_key_bytes,
        max_value_bytes: l.max_value_bytes,
        max_batch_bytes: l.max_batch_bytes,
        max_batch_entries: l.max_batch_entries,
    }
}

fn engine_options(config: &Config, owned_partitions: usize) -> EngineOptions {
    let l = &config.limits;
    EngineOptions {
        limits: limits(config),
        // One partition alone never needs more than the shard's budget; the shard's flush loop
        // picks the largest when the sum is over.
        memtable_flush_bytes: config.memory.memtable_budget_bytes / owned_partitions.max(1),
        block_cache_bytes: config.memory.block_cache_bytes_per_partition,
        max_clock_skew_ms: l.max_clock_skew_ms,
        ..EngineOptions::default()
    }
}

impl Shard {
    /// Recovers (or creates) the shard's WAL and every partition it owns.
    pub async fn open(id: usize, process: Arc<Process>, mesh: Rc<Mesh<Shard>>) -> Result<Shard> {
        let root = process.root.clone();
        let disk = DmaDisk::new(&root).await.context("preparing direct I/O")?;
        let clock: Rc<dyn Clock> = Rc::new(SystemClock);
        let wal_dir = root.join("wal").join(format!("shard-{id:02}"));
        let (wal, recovered) = if wal_dir.join("LOCK").exists() {
            Wal::recover(disk.clone(), &wal_dir, process.config.wal.options()).await.context("recovering the WAL")?
        } else {
            (
                Wal::create(disk.clone(), &wal_dir, process.config.wal.options()).await.context("creating the WAL")?,
                Default::default(),
            )
        };
        let catalog = process.catalog.clone();
        let owned: Vec<u32> = (0..process.partition_count).filter(|p| process.owner(*p) == id).collect();
        let options = engine_options(&process.config, owned.len());
        let mut engines = BTreeMap::new();
        for p in owned {
            let dir = partition_dir(&root, p);
            let engine = if dir.join("CURRENT").exists() {
                Engine::open(
                    disk.clone(),
                    &dir,
                    PartitionId(p),
                    wal.clone(),
                    &recovered,
                    options.clone(),
                    clock.clone(),
                )
                .await
            } else {
                Engine::create(disk.clone(), &dir, PartitionId(p), wal.clone(), options.clone(), clock.clone()).await
            }
            .with_context(|| format!("opening partition {p}"))?;
            for table in catalog.tables.values() {
                engine.define_table(table.table_id(), table.settings());
            }
            engine.set_load_visibility(process.visibility.clone());
            engines.insert(p, Rc::new(engine));
        }
        // Flush what recovery replayed before serving, so the WAL files it came from are retired.
        // Otherwise every crash-restart leaves its files behind (preallocated, and each read
        // whole by every later recovery) until a budget flush, and a crash loop grows the disk
        // and the time of each recovery without bound.
        if !recovered.records.is_empty() {
            for (p, engine) in &engines {
                engine.flush().await.with_context(|| format!("flushing partition {p}'s recovered writes"))?;
            }
        }
        wal.retire_unneeded().await.context("retiring recovered WAL files")?;
        // Writes recovered from a WAL written under another shard layout would belong to
        // partitions this shard may not own; datadir refuses such a start.
        let hlc = Hlc::new();
        let first = hlc.next(clock.as_ref());
        let resp = crate::resp::ShardState::new(process.config.resp.max_scan_cursors);
        let bulk_book = process.bulk_book.clone();
        let request_bytes = ByteBudget::new(process.config.limits.max_in_flight_bytes_per_shard);
        let resp_reply_bytes = ByteBudget::new(process.config.resp.max_pending_reply_bytes_per_shard);
        Ok(Shard {
            id,
            process,
            engines,
            wal,
            catalog: RefCell::new(catalog),
            admin: async_lock::Mutex::new(()),
            hlc,
            clock,
            seq: Cell::new(first.0),
            mesh,
            stopping: Cell::new(false),
            stop_event: event_listener::Event::new(),
            active_requests: Cell::new(0),
            connections: Cell::new(0),
            resp,
            ingest: crate::ingest::Ingest::default(),
            memtable_peak: Cell::new(0),
            bulk_book: RefCell::new(bulk_book),
            bulk_lock: async_lock::Mutex::new(()),
            request_bytes,
            resp_reply_bytes,
            poisoned_partitions: RefCell::new(BTreeSet::new()),
        })
    }

    /// Memtable bytes of every engine of this shard.
    pub fn memtable_bytes(&self) -> usize {
        self.engines.values().map(|e| e.stats().memtable_bytes).sum()
    }

    /// Records the memtable bytes now, for `memtable_peak_bytes`; returns them.
    pub fn observe_memory(&self) -> usize {
        let now = self.memtable_bytes();
        self.memtable_peak.set(self.memtable_peak.get().max(now));
        now
    }

    /// Flushes the largest healthy memtable while the shard's healthy memtables are over their
    /// budget (or one needs a flush). Runs in the `flush` task queue, so foreground requests keep
    /// their share of the core. A poisoned engine is skipped, said once in the log and in stats
    /// (`partition_poisoned`): its memtable can never shrink, and retrying it would starve the
    /// healthy partitions' flushes.
    pub async fn flush_loop(self: Rc<Self>) {
        let budget = self.process.config.memory.memtable_budget_bytes;
        loop {
            if self.stopping.get() {
                return;
            }
            self.observe_memory();
            self.note_poisoned();
            let candidates: Vec<FlushCandidate> = self
                .engines
                .iter()
                .map(|(p, e)| FlushCandidate {
                    partition: *p,
                    memtable_bytes: e.stats().memtable_bytes,
                    poisoned: e.check_poisoned().is_err(),
                    needs_flush: e.needs_flush(),
                })
                .collect();
            let engine = flush_pick(&candidates, budget).and_then(|p| self.engines.get(&p).cloned());
            match engine {
                Some(engine) => {
                    if let Err(e) = engine.flush().await {
                        // A failed flush poisons its engine: the next turn skips it.
                        tracing::debug!(shard = self.id, partition = engine.partition().0, error = %e, "flush failed");
                    }
                }
                None => glommio::timer::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    /// Logs each newly poisoned engine once, and remembers it for stats.
    fn note_poisoned(&self) {
        for (p, engine) in &self.engines {
            if let Err(e) = engine.check_poisoned()
                && self.poisoned_partitions.borrow_mut().insert(*p)
            {
                tracing::error!(shard = self.id, partition = p, error = %e, "partition poisoned: no longer flushed");
            }
        }
    }

    /// Makes every acknowledged async write durable within `wal.async_commit_interval_ms` of
    /// its acknowledgement (plus the fdatasync itself): after the first record arrives in an
    /// empty batch it waits one interval, letting more join, then commits everything pending.
    /// An idle WAL wakes nobody. A failed commit poisons the WAL (and so the shard's engines).
    pub async fn wal_committer(self: Rc<Self>) {
        use futures_lite::FutureExt;
        let interval = std::time::Duration::from_millis(self.process.config.wal.async_commit_interval_ms);
        loop {
            let pending = async {
                self.wal.wait_for_pending().await;
                true
            }
            .or(async {
                crate::server::until_stopping(&self).await;
                false
            });
            if !pending.await {
                // A stopping shard's last step, `flush_all`, syncs what is left.
                return;
            }
            glommio::timer::sleep(interval).await;
            if let Err(e) = self.wal.sync().await {
                tracing::error!(shard = self.id, error = %e, "WAL commit failed: the shard is poisoned");
                return;
            }
        }
    }

    /// Flushes every engine and syncs the WAL: the last step of a clean shutdown.
    pub async fn flush_all(&self) -> Result<()> {
        for (p, engine) in &self.engines {
            engine.flush().await.with_context(|| format!("flushing partition {p}"))?;
        }
        self.wal.sync().await.context("syncing the WAL")?;
        Ok(())
    }

    /// The next direct-write origin sequence number.
    pub fn next_seq(&self) -> u64 {
        let s = self.seq.get();
        self.seq.set(s + 1);
        s
    }
}

/// What the flush loop knows of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushCandidate {
    /// The partition.
    pub partition: u32,
    /// Its active memtable's bytes.
    pub memtable_bytes: usize,
    /// Its engine refuses work.
    pub poisoned: bool,
    /// Its engine asks for a flush on its own.
    pub needs_flush: bool,
}

/// Which partition to flush now: the largest healthy memtable, when the healthy ones together
/// are over `budget_bytes` or it asks for a flush; never a poisoned one.
pub fn flush_pick(candidates: &[FlushCandidate], budget_bytes: usize) -> Option<u32> {
    let healthy = candidates.iter().filter(|c| !c.poisoned);
    let over = healthy.clone().map(|c| c.memtable_bytes).sum::<usize>() > budget_bytes;
    let largest = healthy.max_by_key(|c| c.memtable_bytes)?;
    (over || largest.needs_flush).then_some(largest.partition)
}

/// Partition `p`'s directory under `root`.
pub fn partition_dir(root: &Path, p: u32) -> PathBuf {
    root.join("partitions").join(format!("{p:04}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(partition: u32, memtable_bytes: usize, poisoned: bool) -> FlushCandidate {
        FlushCandidate { partition, memtable_bytes, poisoned, needs_flush: false }
    }

    #[test]
    fn the_flush_loop_skips_a_poisoned_engine_and_flushes_the_largest_healthy_one() {
        let shard = [candidate(1, 900, true), candidate(2, 300, false), candidate(3, 200, false)];
        assert_eq!(flush_pick(&shard, 400), Some(2), "the healthy ones are over the budget without the poisoned one");
        assert_eq!(flush_pick(&shard, 600), None, "only the poisoned memtable is over the budget");
        let asks = [candidate(1, 900, true), FlushCandidate { needs_flush: true, ..candidate(2, 10, false) }];
        assert_eq!(flush_pick(&asks, 1 << 20), Some(2));
        assert_eq!(flush_pick(&[candidate(1, 900, true)], 0), None, "nothing healthy to flush");
    }
}
