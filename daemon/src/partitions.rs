//! A shard's partitions: the engines of the partitions it owns, their shared WAL and its
//! periodic committer, the hybrid clock that stamps direct writes (with its persisted
//! high-water mark, kept ahead of it by the clock keeper), memory accounting against
//! the shard's memtable budget and ceiling, and the flush loop. It names storage and nothing of
//! sockets, protocols, Kafka or bulk loads: every service reaches the engines through here.

use crate::catalog::Catalog;
use crate::config::Config;
use crate::lifecycle::Lifecycle;
use anyhow::{Context, Result};
use futures_lite::FutureExt;
use nacre_storage::clock::high_water::{self, HighWater};
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, Engine, EngineOptions, Hlc, MemoryTally, Origin, OriginKind, PartitionId, Ts, VersionId, Wal,
};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// An engine on real files.
pub type DmaEngine = Engine<DmaDisk>;

/// Writes wait this long at most while the memtables are at their ceiling; see
/// [`Partitions::wait_for_memory`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("memtables are at their ceiling and flushes have not caught up within {deadline_ms} ms")]
pub struct MemoryBusy {
    /// The stall deadline.
    pub deadline_ms: u64,
}

/// What the partitions need of the configuration.
#[derive(Debug, Clone, Copy)]
struct Budgets {
    memtable_budget_bytes: usize,
    memtable_ceiling_bytes: usize,
    write_stall_deadline_ms: u64,
    max_clock_skew_ms: u64,
    clock_persist_ahead_ms: u64,
    async_commit_interval_ms: u64,
    wal_pending_limit_bytes: usize,
}

/// One shard's partitions.
pub struct Partitions {
    shard: usize,
    budgets: Budgets,
    /// Engines of the partitions this shard owns, by partition.
    pub engines: BTreeMap<u32, Rc<DmaEngine>>,
    /// The shard's WAL, shared by its engines.
    pub wal: Rc<Wal<DmaDisk>>,
    /// Wall clock.
    pub clock: Rc<dyn Clock>,
    hlc: Hlc,
    /// The HLC's persisted high-water mark: no timestamp above it is acknowledged.
    high_water: HighWater<DmaDisk>,
    seq: Cell<u64>,
    /// Memtable bytes of every engine here, kept by the engines as they change: read on every
    /// write, in constant time.
    memory: MemoryTally,
    memtable_peak: Cell<usize>,
    poisoned: RefCell<BTreeSet<u32>>,
}

fn engine_options(config: &Config, owned_partitions: usize) -> EngineOptions {
    let l = &config.limits;
    EngineOptions {
        limits: config.engine_limits(),
        // One partition alone never needs more than the shard's budget; the shard's flush loop
        // picks the largest when the sum is over.
        memtable_flush_bytes: config.memory.memtable_budget_bytes / owned_partitions.max(1),
        block_cache_bytes: config.memory.block_cache_bytes_per_partition,
        max_clock_skew_ms: l.max_clock_skew_ms,
        tombstone_grace_ms: config.compaction.tombstone_grace_ms,
        heat_half_life_ms: config.compaction.heat_half_life_ms,
        // Compactions collect garbage under the same contract; a flush applies its first rule.
        retain_on_flush: true,
        ..EngineOptions::default()
    }
}

/// Partition `p`'s directory under `root`.
pub fn partition_dir(root: &Path, p: u32) -> PathBuf {
    root.join("partitions").join(format!("{p:04}"))
}

/// Where a shard's partitions live and what they start with.
pub struct PartitionsSpec<'a> {
    /// The shard.
    pub shard: usize,
    /// The configuration.
    pub config: &'a Config,
    /// The data directory.
    pub root: &'a Path,
    /// The partitions the shard owns.
    pub owned: Vec<u32>,
    /// The catalog the engines start with.
    pub catalog: &'a Catalog,
    /// Bulk loads reads must not see, shared by every engine of the process.
    pub visibility: &'a nacre_storage::bulk::LoadVisibility,
    /// The wall clock.
    pub clock: Rc<dyn Clock>,
    /// The greatest high-water mark any shard's clock persisted before this start, read before
    /// any shard started: the HLC resumes above it.
    pub clock_floor: Option<Ts>,
}

impl Partitions {
    /// Recovers (or creates) the shard's WAL and every partition it owns, and flushes what the
    /// WAL replayed before anything is served.
    pub async fn open(spec: PartitionsSpec<'_>) -> Result<Partitions> {
        let PartitionsSpec { shard, config, root, owned, catalog, visibility, clock, clock_floor } = spec;
        let disk = DmaDisk::new(root).await.context("preparing direct I/O")?;
        let wal_dir = root.join("wal").join(format!("shard-{shard:02}"));
        let (wal, recovered) = if wal_dir.join("LOCK").exists() {
            Wal::recover(disk.clone(), &wal_dir, config.wal.options()).await.context("recovering the WAL")?
        } else {
            let wal = Wal::create(disk.clone(), &wal_dir, config.wal.options()).await.context("creating the WAL")?;
            (wal, Default::default())
        };
        let options = engine_options(config, owned.len());
        let mut engines = BTreeMap::new();
        let memory = MemoryTally::default();
        for p in owned {
            let dir = partition_dir(root, p);
            let (id, wal, clock, options) = (PartitionId(p), wal.clone(), clock.clone(), options.clone());
            let engine = if dir.join("CURRENT").exists() {
                Engine::open(disk.clone(), &dir, id, wal, &recovered, options, clock).await
            } else {
                Engine::create(disk.clone(), &dir, id, wal, options, clock).await
            }
            .with_context(|| format!("opening partition {p}"))?;
            catalog.install_on(&engine);
            engine.set_load_visibility(visibility.clone());
            engine.share_memory_tally(memory.clone());
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
        let name = format!("shard-{shard:02}{}", high_water::SUFFIX);
        let high_water = HighWater::open(&disk, &crate::datadir::clock_dir(root), &name)
            .await
            .context("opening the clock's high-water file")?;
        let hlc = Hlc::resume_above(clock_floor.unwrap_or_default().max(high_water.bound()));
        let first = hlc.next(clock.as_ref());
        let budgets = Budgets {
            memtable_budget_bytes: config.memory.memtable_budget_bytes,
            memtable_ceiling_bytes: config.memory.memtable_ceiling_bytes,
            write_stall_deadline_ms: config.memory.write_stall_deadline_ms,
            max_clock_skew_ms: config.limits.max_clock_skew_ms,
            clock_persist_ahead_ms: config.limits.clock_persist_ahead_ms,
            async_commit_interval_ms: config.wal.async_commit_interval_ms,
            wal_pending_limit_bytes: config.wal.pending_limit_bytes,
        };
        let partitions = Partitions {
            shard,
            budgets,
            engines,
            wal,
            clock,
            hlc,
            high_water,
            seq: Cell::new(first.0),
            memory,
            memtable_peak: Cell::new(0),
            poisoned: RefCell::new(BTreeSet::new()),
        };
        // Before anything is served: the first reading, and a lease ahead of it, are durable.
        let lease_ms = partitions.budgets.clock_persist_ahead_ms;
        partitions.high_water.raise(later(first, lease_ms)).await.context("persisting the clock's high-water mark")?;
        Ok(partitions)
    }

    /// Memtable bytes of every engine of this shard, frozen memtables still being flushed
    /// included, so the ceiling bounds what the shard really holds.
    pub fn memtable_bytes(&self) -> usize {
        self.memory.bytes()
    }

    /// Records the memtable bytes now, for `memtable_peak_bytes`; returns them.
    pub fn observe_memory(&self) -> usize {
        let now = self.memtable_bytes();
        self.memtable_peak.set(self.memtable_peak.get().max(now));
        now
    }

    /// The most memtable bytes seen (by ingestion rounds, the flush loop and stats) since start.
    pub fn memtable_peak_bytes(&self) -> usize {
        self.observe_memory();
        self.memtable_peak.get()
    }

    /// True while the shard's memtables are past halfway from their budget to their ceiling
    /// (flushes are falling behind; at the budget itself they are merely keeping up) or its WAL
    /// holds over half its pending limit: background work that can wait, waits.
    pub fn under_pressure(&self) -> bool {
        let b = self.budgets;
        let halfway = b.memtable_budget_bytes + (b.memtable_ceiling_bytes - b.memtable_budget_bytes) / 2;
        self.memtable_bytes() > halfway || self.wal.pending_bytes() * 2 > b.wal_pending_limit_bytes
    }

    /// True once the flush loop found partition `p`'s engine poisoned (and said so).
    pub fn is_poisoned(&self, p: u32) -> bool {
        self.poisoned.borrow().contains(&p)
    }

    /// Waits while the shard's memtables are over the hard ceiling, up to the stall deadline.
    pub async fn wait_for_memory(&self) -> Result<(), MemoryBusy> {
        let b = self.budgets;
        let start = Instant::now();
        while self.memtable_bytes() > b.memtable_ceiling_bytes {
            if start.elapsed() > Duration::from_millis(b.write_stall_deadline_ms) {
                return Err(MemoryBusy { deadline_ms: b.write_stall_deadline_ms });
            }
            glommio::timer::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// A direct write's version at the client's `ts`, or from the server's clock. Only a
    /// timestamp within the skew bound moves the clock: one the engine is about to refuse must
    /// not drag every later server timestamp past the bound with it.
    pub fn version(&self, ts: Option<Ts>) -> VersionId {
        let ts = match ts {
            Some(t) => {
                if t <= self.latest_accepted() {
                    self.hlc.observe(t);
                }
                t
            }
            None => self.hlc.next(self.clock.as_ref()),
        };
        self.direct_id(ts)
    }

    /// A direct write's version from the server's clock, after `after` when given: a write that
    /// depends on a version it read supersedes it.
    pub fn direct_version(&self, after: Option<Ts>) -> VersionId {
        if let Some(seen) = after {
            self.hlc.observe(seen);
        }
        self.direct_id(self.hlc.next(self.clock.as_ref()))
    }

    /// The latest timestamp a write may carry now, under the skew bound (as the engine checks).
    pub fn latest_accepted(&self) -> Ts {
        nacre_storage::clock::latest_accepted(self.clock.now_ms(), self.budgets.max_clock_skew_ms)
    }

    /// Makes the clock's persisted high-water mark cover the timestamps of `entries` (direct
    /// writes, stamped by the server or by a client) before they are applied, so no restart
    /// hands out a timestamp at or below them. Free while they are under the mark, which the
    /// clock keeper keeps ahead of the wall clock; a timestamp past the skew bound moves
    /// nothing, since the engine refuses it. A failed write of the mark poisons it: this and
    /// later writes past it fail with the error.
    pub async fn cover(&self, entries: &[nacre_storage::Entry]) -> nacre_storage::Result<()> {
        let Some(ts) = entries.iter().map(|e| e.version.id.ts).max() else { return Ok(()) };
        if ts <= self.high_water.bound() {
            return Ok(());
        }
        let latest = self.latest_accepted();
        if ts > latest {
            return Ok(());
        }
        // A lease ahead of `ts`, but never past what the skew bound accepts now: a clock
        // resumed there must still pass the engine's check.
        self.high_water.raise(later(ts, self.budgets.clock_persist_ahead_ms).min(latest)).await
    }

    /// Keeps the clock's persisted high-water mark at least half a lease ahead of the wall
    /// clock and of every timestamp issued or observed, so writes rarely wait for it. Runs in
    /// the foreground queue beside the WAL committer: a write past the mark waits for it.
    pub async fn clock_keeper(self: Rc<Self>, life: Rc<Lifecycle>) {
        let lease_ms = self.budgets.clock_persist_ahead_ms;
        let period = Duration::from_millis((lease_ms / 4).max(1));
        loop {
            life.sleep_unless_stopping(period).await;
            if life.is_stopping() {
                return;
            }
            let latest = Ts::from_millis(self.clock.now_ms()).max(self.hlc.last());
            if later(latest, lease_ms / 2) <= self.high_water.bound() {
                continue;
            }
            if let Err(e) = self.high_water.raise(later(latest, lease_ms)).await {
                tracing::error!(shard = self.shard, error = %e, "the clock's high-water mark failed to persist: writes past it fail");
                return;
            }
        }
    }

    fn direct_id(&self, ts: Ts) -> VersionId {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        let source_id = u32::try_from(self.shard).expect("shard ids are small");
        VersionId { ts, origin: Origin { kind: OriginKind::Direct, source_id, seq } }
    }

    /// Flushes the largest healthy memtable while the shard's healthy memtables are over their
    /// budget (or one needs a flush), until the shard stops. Runs in the `flush` task queue, so
    /// foreground requests keep their share of the core. A poisoned engine is skipped, said once
    /// in the log and in stats (`partition_poisoned`): its memtable can never shrink, and
    /// retrying it would starve the healthy partitions' flushes.
    pub async fn flush_loop(self: Rc<Self>, life: Rc<Lifecycle>) {
        loop {
            if life.is_stopping() {
                return;
            }
            self.observe_memory();
            self.note_poisoned();
            let candidates: Vec<FlushCandidate> = self
                .engines
                .iter()
                .map(|(p, e)| FlushCandidate {
                    partition: *p,
                    memtable_bytes: e.memtable_bytes(),
                    poisoned: e.check_poisoned().is_err(),
                    needs_flush: e.needs_flush(),
                })
                .collect();
            match flush_pick(&candidates, self.budgets.memtable_budget_bytes)
                .and_then(|p| self.engines.get(&p).cloned())
            {
                Some(engine) => {
                    if let Err(e) = engine.flush().await {
                        // A failed flush poisons its engine: the next turn says so and skips it.
                        tracing::debug!(shard = self.shard, partition = engine.partition().0, error = %e, "flush failed");
                    }
                }
                None => glommio::timer::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Logs each newly poisoned engine once, and remembers it for stats.
    fn note_poisoned(&self) {
        for (p, engine) in &self.engines {
            if let Err(e) = engine.check_poisoned()
                && self.poisoned.borrow_mut().insert(*p)
            {
                tracing::error!(shard = self.shard, partition = p, error = %e, "partition poisoned: no longer flushed");
            }
        }
    }

    /// Makes every acknowledged async write durable within `wal.async_commit_interval_ms` of
    /// its acknowledgement (plus the fdatasync itself): after the first record arrives in an
    /// empty batch it waits one interval, letting more join, then commits everything pending.
    /// An idle WAL wakes nobody. A failed commit poisons the WAL (and so the shard's engines).
    pub async fn wal_committer(self: Rc<Self>, life: Rc<Lifecycle>) {
        let interval = Duration::from_millis(self.budgets.async_commit_interval_ms);
        loop {
            let pending = async {
                self.wal.wait_for_pending().await;
                true
            }
            .or(async {
                life.until_stopping().await;
                false
            });
            if !pending.await {
                // A stopping shard's last step, `flush_all`, syncs what is left.
                return;
            }
            glommio::timer::sleep(interval).await;
            if let Err(e) = self.wal.sync().await {
                tracing::error!(shard = self.shard, error = %e, "WAL commit failed: the shard is poisoned");
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
        // Nothing is stamped after this: the exact last reading lets the next start resume
        // where this one stopped rather than a lease ahead of it.
        let last = self.hlc.last();
        if last <= self.high_water.bound() {
            self.high_water.store_exact(last).await.context("storing the clock's high-water mark")?;
        }
        Ok(())
    }
}

/// `ts` plus `ms` milliseconds.
fn later(ts: Ts, ms: u64) -> Ts {
    Ts(ts.0.saturating_add(ms << Ts::LOGICAL_BITS))
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
