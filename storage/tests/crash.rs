//! Crash tests on the simulated disk: the image a power cut would leave after every mutating I/O
//! op of a burst of writes, a flush, a compaction, a WAL rotation and a manifest snapshot
//! rewrite, each torn at sector granularity, is recovered and checked against the ledger of
//! writes: every acknowledged write is there, whole; nothing half-applied; nothing no write made.
//! Each recovered store then takes one more write, crashes again and is recovered again, and must
//! still hold all it held; and a recovery itself is crashed at each of its mutating ops. `SEED=`
//! replays a run.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/ledger.rs"]
mod ledger;
#[path = "support/probe.rs"]
mod probe;
#[path = "support/yielding.rs"]
mod yielding;

use harness::{START_MS, Store, put, small_options};
use ledger::{Batches, Ledger, check_crash, recover, root};
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{CompactionOptions, Durability, EngineOptions, Entry, ManualClock, Payload, Version};
use probe::ProbeDisk;
use std::cell::RefCell;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use yielding::{YieldingDisk, join_all};

/// One crash-test run: a store on a yielding probe disk, its ledger and its batch generator.
struct Run {
    seed: u64,
    store: Store<YieldingDisk<ProbeDisk>>,
    ledger: RefCell<Ledger>,
    batches: Batches,
    images_checked: usize,
}

type Task<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

impl Run {
    async fn new(seed: u64) -> Run {
        // Every op yields once, so joined writers meet in the WAL's group commit.
        let disk = YieldingDisk::new(ProbeDisk::new(seed));
        let store = Store::create(disk, &root(), ManualClock::new(START_MS), small_options()).await;
        let batches = Batches::new(fastrand::Rng::with_seed(seed), 1);
        Run { seed, store, ledger: RefCell::default(), batches, images_checked: 0 }
    }

    /// The writes so far, owned, so a check can await without holding a borrow of the ledger.
    fn snapshot(&self) -> Ledger {
        self.ledger.borrow().clone()
    }

    fn sim(&self) -> &SimDisk {
        &self.store.disk.inner.sim
    }

    /// `count` random batches, each with its durability.
    fn plan(&mut self, count: usize, max_entries: usize) -> Vec<(Vec<Entry>, Durability)> {
        (0..count).map(|_| (self.batches.batch(max_entries), self.batches.durability())).collect()
    }

    /// A task issuing one write, which must be acknowledged.
    fn writer(&self, (batch, durability): (Vec<Entry>, Durability)) -> Task<'_> {
        Box::pin(async move {
            ledger::write(&self.ledger, &self.store.disk.inner.sim, &self.store, batch, durability)
                .await
                .expect("write");
        })
    }

    /// `count` writers joined, so the WAL can carry several in one group commit.
    async fn write_concurrently(&mut self, count: usize) {
        let plan = self.plan(count, 4);
        join_all(plan.into_iter().map(|w| self.writer(w)).collect()).await;
    }

    async fn flush(&self) {
        self.store.engine.flush().await.expect("flush");
    }

    /// Checks every image captured since capture was turned on.
    async fn check_captured(&mut self, phase: &str) -> usize {
        self.sim().set_capture(false);
        let images = self.sim().take_captured();
        assert!(!images.is_empty(), "{phase}: no image was captured");
        let ledger = self.snapshot();
        for (op, image) in &images {
            let context = format!("{phase}, torn image after op {op}, SEED={}", self.seed);
            check_crash(&ledger, image.clone(), *op, &context).await;
        }
        self.images_checked += images.len();
        images.len()
    }

    /// Checks the image an untorn power cut right now would leave.
    async fn check_now(&mut self, phase: &str) {
        let op = self.sim().op_count();
        let image = self.sim().crash_image(false);
        let context = format!("{phase}, untorn image at op {op}, SEED={}", self.seed);
        check_crash(&self.snapshot(), image, op, &context).await;
        self.images_checked += 1;
    }

    /// Rounds of one to four concurrent writers, with an occasional explicit WAL sync.
    async fn burst(&mut self) {
        let wal_syncs =
            |disk: &ProbeDisk| disk.syncs().iter().filter(|(p, _)| p.extension() == Some("wal".as_ref())).count();
        let syncs_before = wal_syncs(&self.store.disk.inner);
        self.sim().set_capture(true);
        for round in 0..24 {
            if round < 2 {
                // Four sync writers at once: the leader commits the first, the other three
                // queue behind it and share the next commit.
                let plan = self.plan(4, 4).into_iter().map(|(batch, _)| (batch, Durability::Sync)).collect::<Vec<_>>();
                join_all(plan.into_iter().map(|w| self.writer(w)).collect()).await;
                if round == 1 {
                    // Counted over these rounds alone: later rounds add explicit WAL syncs,
                    // which would hide a commit shared by several writers.
                    let commits = wal_syncs(&self.store.disk.inner) - syncs_before;
                    assert!(commits < 8, "group commit never carried two writers: {commits} commits of 8 sync writes");
                }
                continue;
            }
            let writers = self.batches.rng().usize(1..=4);
            self.write_concurrently(writers).await;
            if round % 6 == 5 {
                ledger::wal_sync(&self.ledger, self.sim(), &self.store).await.expect("wal sync");
            }
            if round == 12 {
                self.check_now("burst").await;
            }
        }
        let n = self.check_captured("burst").await;
        let commits = wal_syncs(&self.store.disk.inner) - syncs_before;
        println!("burst: {n} torn images, {commits} WAL syncs");
    }

    /// A flush while writers keep writing (into the next memtable, or waiting on the WAL).
    async fn flush_under_writes(&mut self) {
        self.write_concurrently(3).await;
        let plan = self.plan(3, 3);
        self.sim().set_capture(true);
        let mut tasks: Vec<Task<'_>> = vec![Box::pin(async { drop(self.store.engine.flush().await.expect("flush")) })];
        tasks.extend(plan.into_iter().map(|w| self.writer(w)));
        join_all(tasks).await;
        let n = self.check_captured("flush").await;
        self.check_now("flush").await;
        println!("flush: {n} torn images");
    }

    /// A compaction of every segment while writers keep writing.
    async fn compaction_under_writes(&mut self) {
        for _ in 0..2 {
            self.write_concurrently(3).await;
            self.flush().await;
        }
        let ids = self.store.engine.segment_ids();
        assert!(ids.len() >= 3, "compaction needs segments to merge: {ids:?}");
        let plan = self.plan(3, 3);
        self.sim().set_capture(true);
        let engine = &self.store.engine;
        let mut tasks: Vec<Task<'_>> = vec![Box::pin(async move {
            let out = engine.compact(&ids, CompactionOptions::default()).await.expect("compact");
            assert_eq!(out.versions_in, out.versions_out, "keep-all compaction drops nothing");
        })];
        tasks.extend(plan.into_iter().map(|w| self.writer(w)));
        join_all(tasks).await;
        let n = self.check_captured("compaction").await;
        self.check_now("compaction").await;
        println!("compaction: {n} torn images");
    }

    /// Writes until the WAL rotates to a new file, then flushes, which makes the older file
    /// unneeded and retires it (a rotation retires too, once its first batch is durable);
    /// checks the images of each rotating write and of each retiring flush.
    async fn wal_rotation(&mut self) {
        let mut rotations = 0;
        let mut deleted = false;
        for _ in 0..400 {
            let before = self.store.wal.file_numbers();
            self.sim().set_capture(true);
            self.write_concurrently(1).await;
            let after = self.store.wal.file_numbers();
            if before.last() == after.last() {
                self.sim().set_capture(false);
                drop(self.sim().take_captured());
                continue;
            }
            rotations += 1;
            deleted |= after.first() != before.first();
            let n = self.check_captured("wal rotation").await;
            println!("wal rotation {before:?} -> {after:?}: {n} torn images");
            if deleted {
                break;
            }
            self.sim().set_capture(true);
            self.flush().await;
            let retired = self.store.wal.file_numbers();
            deleted |= retired.first() != after.first();
            let n = self.check_captured("wal retirement").await;
            println!("flush retiring {after:?} -> {retired:?}: {n} torn images");
            if deleted {
                break;
            }
        }
        assert!(rotations > 0 && deleted, "the WAL rotated {rotations} times and deleted a file: {deleted}");
        self.check_now("wal rotation").await;
    }

    /// Flushes until the manifest is rewritten as a snapshot under a new file; checks the
    /// images of the flush that rewrote it.
    async fn manifest_snapshot(&mut self) {
        let manifests = |sim: &SimDisk| -> Vec<PathBuf> {
            sim.live_paths().into_iter().filter(|p| file_name(p).starts_with("MANIFEST-")).collect()
        };
        for _ in 0..20 {
            self.write_concurrently(2).await;
            let before = manifests(self.sim());
            self.sim().set_capture(true);
            self.flush().await;
            if manifests(self.sim()) == before {
                self.sim().set_capture(false);
                drop(self.sim().take_captured());
                continue;
            }
            let n = self.check_captured("manifest snapshot").await;
            println!("manifest snapshot {before:?} -> {:?}: {n} torn images", manifests(self.sim()));
            self.check_now("manifest snapshot").await;
            return;
        }
        panic!("twenty flushes never rewrote the manifest");
    }

    /// Crashes again at every mutating op of a recovery: of images taken mid-commit and
    /// mid-flush (an orphan segment to delete, a torn WAL tail to drop), each recovery's own
    /// images must recover everything the first image had to hold.
    async fn crash_during_recovery(&mut self) {
        self.sim().set_capture(true);
        self.write_concurrently(2).await;
        self.flush().await;
        self.sim().set_capture(false);
        let bases = self.sim().take_captured();
        let picks = [0, bases.len() / 3, 2 * bases.len() / 3, bases.len() - 1];
        let ledger = self.snapshot();
        let mut n = 0;
        for (op, base) in picks.iter().map(|i| &bases[*i]) {
            let context = format!("recovery of the torn image after op {op}, SEED={}", self.seed);
            base.set_capture(true);
            drop(recover(base.clone(), &context).await);
            for (recovery_op, image) in base.take_captured() {
                check_crash(&ledger, image, *op, &format!("{context}, crashed after its op {recovery_op}")).await;
                n += 1;
            }
        }
        self.images_checked += n;
        println!("recovery: {n} torn images of {} recoveries", picks.len());
    }
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

#[test]
fn every_crash_image_of_writes_flush_compaction_rotation_and_snapshot_recovers_every_acknowledged_write() {
    let seed = ledger::seed("crash");
    let started = std::time::Instant::now();
    let mut images = 0;
    // Three runs from one seed: torn images differ each time, and a replay repeats all three.
    for run_seed in [seed, seed.wrapping_add(1), seed.wrapping_add(2)] {
        images += futures_lite::future::block_on(async {
            let mut run = Run::new(run_seed).await;
            run.burst().await;
            run.flush_under_writes().await;
            run.compaction_under_writes().await;
            run.wal_rotation().await;
            run.manifest_snapshot().await;
            run.crash_during_recovery().await;
            let acked = run.ledger.borrow().acked().count();
            println!("run {run_seed}: {} images checked, {acked} writes acknowledged", run.images_checked);
            run.images_checked
        });
    }
    println!("{images} images checked in {:?}, SEED={seed}", started.elapsed());
}

/// Versions a garbage-collecting compaction has to drop, over `KEYS` keys in three flushed
/// segments: by key number mod 4, five versions (`max_versions` 3 keeps three), a value under an
/// expired one (it turns into a tombstone and, past the grace, the key goes), a value under an old
/// delete (the key goes), and a value under a recent delete (kept).
const GC_KEYS: u64 = 24;

fn gc_round(round: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    for k in 0..GC_KEYS {
        let pk = format!("gc{k:02}");
        let ts = 10_000 * (round + 1) + k;
        match (k % 4, round) {
            (0, _) => {
                out.push(put(&pk, "", ts, &format!("v{round}")));
                out.push(put(&pk, "", ts + 1_000, &format!("v{round}b")));
            }
            (1, 0) | (2, 0) | (3, 0) => out.push(put(&pk, "", ts, "first")),
            (1, 1) => {
                let expired = Payload::Value { value: b"expired".to_vec(), expires_at_ms: Some(START_MS - 1) };
                out.push(harness::entry(&pk, "", ts, nacre_storage::OriginKind::Direct, expired));
            }
            (2, 1) => out.push(harness::delete(&pk, "", ts)),
            (3, 2) => out.push(harness::delete(&pk, "", 990_000 + k)),
            _ => {}
        }
    }
    out
}

/// Each key's latest row and its history (versions, greatest first).
async fn gc_reads<D: nacre_storage::io::Disk>(store: &Store<D>) -> Vec<(Option<Vec<u8>>, Vec<Version>)> {
    let mut out = Vec::new();
    for k in 0..GC_KEYS {
        let key = nacre_storage::Key::new(harness::TABLE, format!("gc{k:02}").into_bytes(), b"".to_vec());
        let row = store.engine.get(key.as_ref(), nacre_storage::ReadAt::Latest).await.expect("get");
        let history = store.engine.versions(key.as_ref()).await.expect("versions");
        out.push((row.map(|r| r.value), history.versions));
    }
    out
}

#[test]
fn every_crash_image_of_a_garbage_collecting_compaction_recovers_its_inputs_or_its_output() {
    let seed = ledger::seed("crash-gc");
    futures_lite::future::block_on(async {
        // Deletes older than 500 s before the clock are past their grace.
        let options = EngineOptions { tombstone_grace_ms: 500_000, ..small_options() };
        let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), options).await;
        for round in 0..3 {
            store.engine.write(gc_round(round), Durability::Sync).await.expect("write");
            store.engine.flush().await.expect("flush");
        }
        let inputs = store.engine.segment_ids();
        assert_eq!(inputs.len(), 3);
        let before = gc_reads(&store).await;
        store.disk.set_capture(true);
        let out = store.engine.compact(&inputs, CompactionOptions::collect_garbage()).await.expect("compact");
        store.disk.set_capture(false);
        let output = out.output.as_ref().expect("something is kept").id;
        assert!(out.tombstones_reclaimed >= GC_KEYS / 4 * 2, "both kinds of dead key went: {out:?}");
        assert!(out.versions_out < out.versions_in, "{out:?}");
        let after = gc_reads(&store).await;
        assert_ne!(before, after, "the compaction dropped versions");
        let latest = |reads: &[(Option<Vec<u8>>, Vec<Version>)]| reads.iter().map(|r| r.0.clone()).collect::<Vec<_>>();
        assert_eq!(latest(&before), latest(&after), "garbage collection changes no latest read");
        let images = store.disk.take_captured();
        assert!(images.len() > 3, "the compaction's I/O was captured: {}", images.len());
        let (mut as_inputs, mut as_output) = (0, 0);
        for (op, image) in images {
            let context = format!("torn image after op {op}, SEED={seed}");
            let recovered = recover(image, &context).await;
            let live = recovered.engine.segment_ids();
            let reads = gc_reads(&recovered).await;
            if live == [output] {
                assert_eq!(reads, after, "{context}: the output, as written");
                as_output += 1;
            } else {
                let mut sorted = live.clone();
                sorted.sort();
                let mut want = inputs.clone();
                want.sort();
                assert_eq!(sorted, want, "{context}: the inputs or the output, never a mix");
                assert_eq!(reads, before, "{context}: the inputs, as they were");
                as_inputs += 1;
            }
        }
        println!("{as_inputs} images recovered the inputs, {as_output} the output, SEED={seed}");
        assert!(as_inputs > 0 && as_output > 0, "images on both sides of the commit");
    });
}

/// A dead run's removal (GC rule 5, a dropped table's run, removed unread) is one manifest edit:
/// every crash image recovers with the run still live or gone, and the live table's reads as
/// they were.
#[test]
fn every_crash_image_of_a_dead_runs_removal_recovers_with_the_run_or_without_it() {
    let seed = ledger::seed("crash-dead-run");
    futures_lite::future::block_on(async {
        let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
        let dropped = nacre_storage::TableId(2);
        store.engine.define_table(dropped, nacre_storage::TableSettings::default());
        let of_dropped: Vec<_> = (0..50u64)
            .map(|i| {
                let mut e = put("", "", i + 1, "gone");
                e.key = nacre_storage::Key::new(dropped, format!("d{i:02}").into_bytes(), Vec::new());
                e
            })
            .collect();
        store.engine.write(of_dropped, Durability::Sync).await.expect("write");
        store.engine.flush().await.expect("flush");
        let dead = store.engine.segment_ids();
        store.engine.write(gc_round(0), Durability::Sync).await.expect("write");
        store.engine.flush().await.expect("flush");
        let live: Vec<_> = store.engine.segment_ids().into_iter().filter(|id| !dead.contains(id)).collect();
        let before = gc_reads(&store).await;
        store.engine.drop_table(dropped);
        // The removal's first op is its manifest edit: the image before it is the one with the run.
        let before_removal = store.disk.crash_image(false);
        store.disk.set_capture(true);
        let out = store.engine.compact(&dead, CompactionOptions::collect_garbage()).await.expect("compact");
        store.disk.set_capture(false);
        assert_eq!((out.output, out.garbage_versions), (None, 50));
        let mut images = store.disk.take_captured();
        assert!(!images.is_empty(), "the removal's I/O was captured");
        images.insert(0, (0, before_removal));
        let (mut with, mut without) = (0, 0);
        for (op, image) in images {
            let context = format!("torn image after op {op}, SEED={seed}");
            let recovered = recover(image, &context).await;
            let mut ids = recovered.engine.segment_ids();
            ids.sort();
            let mut all = [dead.clone(), live.clone()].concat();
            all.sort();
            if ids == all {
                with += 1;
            } else {
                assert_eq!(ids, live, "{context}: the dead run live or gone, nothing else");
                without += 1;
            }
            assert_eq!(gc_reads(&recovered).await, before, "{context}: the live table reads as it did");
        }
        println!("{with} images recovered the dead run, {without} without it, SEED={seed}");
        assert!(with > 0 && without > 0, "images on both sides of the commit");
    });
}

/// A fresh store on a plain SimDisk and an empty ledger, for the named regressions below.
async fn plain_store(seed: u64) -> (Store<SimDisk>, RefCell<Ledger>) {
    let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
    (store, RefCell::default())
}

/// Regression: a flush writes the memtable, async writes included, and records the WAL
/// position it covers, though the async writes' WAL batch may never become durable. Recovery
/// then restarted LSNs after the last durable WAL record, at or below that position, so the
/// next acknowledged write got an LSN the following recovery skipped as already flushed.
#[test]
fn a_write_after_recovering_an_async_write_flushed_before_its_wal_batch_survives_the_next_crash() {
    futures_lite::future::block_on(async {
        let (store, ledger) = plain_store(1).await;
        let sim = store.disk.clone();
        ledger::write(&ledger, &sim, &store, vec![put("a", "", 1, "sync")], Durability::Sync).await.expect("write");
        ledger::write(&ledger, &sim, &store, vec![put("b", "", 2, "async")], Durability::Async).await.expect("write");
        store.engine.flush().await.expect("flush");
        let op = sim.op_count();
        let ledger = ledger.into_inner();
        check_crash(&ledger, sim.crash_image(false), op, "async write flushed, WAL batch lost").await;
    });
}

/// Regression: a rotation deletes every older WAL file no partition needs before the batch
/// that caused it is durable. A crash in between left a WAL with no records, so recovery
/// restarted LSNs at 1, below the position the manifest covers, and the next recovery skipped
/// the writes made after the first as already flushed.
#[test]
fn a_write_after_recovering_a_wal_rotation_that_deleted_every_older_file_survives_the_next_crash() {
    futures_lite::future::block_on(async {
        let (store, ledger) = plain_store(2).await;
        let sim = store.disk.clone();
        // A 256 KiB WAL file holds its header page and 63 one-page batches.
        for ts in 1..=63 {
            let w = ledger::write(&ledger, &sim, &store, vec![put("k", "", ts, "v")], Durability::Sync).await;
            w.expect("write");
        }
        assert_eq!(store.wal.file_numbers(), vec![1]);
        store.engine.flush().await.expect("flush");
        sim.set_capture(true);
        ledger::write(&ledger, &sim, &store, vec![put("k", "", 64, "v")], Durability::Sync).await.expect("write");
        sim.set_capture(false);
        assert_eq!(store.wal.file_numbers(), vec![2], "the write rotated and the flushed file was deleted");
        let ledger = ledger.into_inner();
        for (op, image) in sim.take_captured() {
            let context = format!("rotation that deleted every older file, image after op {op}");
            check_crash(&ledger, image, op, &context).await;
        }
    });
}

/// The checks above pass only if they can fail: a recovered store missing an acknowledged write,
/// holding half a batch, or holding a version no write made must each be caught.
#[test]
fn the_crash_check_catches_a_lost_write_a_half_applied_batch_and_a_foreign_version() {
    let caught = |case: &str, body: &dyn Fn()| {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        assert!(outcome.is_err(), "the check missed {case}");
    };
    caught("a lost acknowledged write", &|| {
        futures_lite::future::block_on(async {
            let (store, ledger) = plain_store(3).await;
            let before = store.disk.crash_image(false);
            ledger::write(&ledger, &store.disk, &store, vec![put("a", "", 1, "v")], Durability::Sync).await.expect("w");
            let at_op = store.disk.op_count();
            // The image from before the write, claimed to be from after its acknowledgement.
            ledger::check_image(&ledger.into_inner(), &recover(before, "lost").await, at_op, "lost").await;
        });
    });
    caught("a half-applied batch", &|| {
        futures_lite::future::block_on(async {
            let (store, ledger) = plain_store(4).await;
            ledger::write(&ledger, &store.disk, &store, vec![put("a", "", 1, "v")], Durability::Sync).await.expect("w");
            // The ledger believes the batch held a second entry the store never got.
            let mut ledger = ledger.into_inner();
            ledger.writes[0].entries.push(put("b", "", 2, "never written"));
            ledger::observe(&ledger, &store, "half").await;
        });
    });
    caught("a version no write made", &|| {
        futures_lite::future::block_on(async {
            let (store, ledger) = plain_store(5).await;
            ledger::write(&ledger, &store.disk, &store, vec![put("a", "", 1, "v")], Durability::Sync).await.expect("w");
            store.engine.write(vec![put("a", "", 2, "foreign")], Durability::Sync).await.expect("w");
            ledger::observe(&ledger.into_inner(), &store, "foreign").await;
        });
    });
}
