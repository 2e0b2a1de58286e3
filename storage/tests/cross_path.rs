//! The cross-path property: one partition's reads depend only on the set of versions written,
//! whichever path brought them (direct writes, the Kafka stream path, bulk loads), in whatever
//! order they arrived, and whatever flush, compaction, link and restart schedule ran meanwhile
//! (DESIGN.md §2).
//!
//! A random *history* over a few contended keys, in two tables with different tie rules
//! (the default Direct > Stream > Bulk, and Stream > Bulk > Direct), holds:
//!
//! - direct write batches (puts, deletes, TTLs), some with the client's `ts` and some stamped by
//!   storage's `Hlc`. The HLC stamps at arrival, so an unstamped write's `ts` depends on when it
//!   arrives: the history stamps it once, as the client would see it acknowledged, and every
//!   schedule writes that stamped version;
//! - one or two Kafka partitions' messages (`source_id` the stream, `seq` the offset), applied
//!   through `Engine::apply_streamed` with their positions noted as a consumer does;
//! - bulk loads built by storage's own builder (`support/loads.rs`), merge or replace, with a
//!   snapshot and some records carrying their own `ts` and TTL; some rolled back, some linked a
//!   second time.
//!
//! Timestamps come from three milliseconds (logical counter mostly 0), so equal timestamps
//! across paths are the rule, not the exception.
//!
//! Each history runs under several *schedules*: the direct batches, the stream's deliveries, and
//! each load's link, second link and rollback interleaved at random (only a stream's own order and
//! a load's link, relink, rollback order kept), with flushes, compactions of random segment subsets
//! (keeping every version, or dropping only rolled-back loads' versions, which no read sees: the
//! garbage-collection contract's rule 4), checkpoints of the stream's position, restarts (clean, or
//! from the image a power cut leaves once the WAL is synced) and Kafka redeliveries (the consumer
//! rewinds; after a restart it resumes from the position the manifest committed, as nacred's does)
//! among them, and random block, cache and bloom sizes. Every schedule must read exactly what
//! [`Model`] reads: gets (latest, and as of every tie timestamp, just after and just before it) at
//! two clock readings, versions, scans both ways in pages, and each table's partition-key listing.
//! The model applies the ordering rule to the whole history at once (greatest live version under
//! `(ts, kind_rank, source_id, seq)`; a replace load is a table-wide watermark at its snapshot; a
//! rolled-back load contributes nothing), written independently of the engine's resolution
//! (`support/histories.rs`, with the histories and the reads). A second link of a linked load must
//! change no read (the engine takes it; refusing it is the daemon's load book's job).
//!
//! Not covered here: the rest of garbage collection (`max_versions`, expiry, tombstone reclaim;
//! the model test covers them), crashes mid-operation (crash.rs), async writes a power cut takes
//! (the WAL is synced before every restart, so the model stays exact), concurrent operations,
//! and several partitions.
//!
//! Each run prints `SEED=<n>`; `SEED=<n> cargo test -p nacre-storage --test cross_path`
//! replays it. `CROSS_PATH_CASES` sets the number of histories (default [`DEFAULT_CASES`]).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/histories.rs"]
mod histories;
#[path = "support/loads.rs"]
mod loads;

use harness::{START_MS, Store, run_sim, small_options};
use histories::{History, Model, Outcome, PARTS, Read, SKS, STREAMS, T2, history, key, reads, t2_rule};
use loads::BuiltLoad;
use nacre_storage::bulk::LoadVisibility;
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{
    CompactionOptions, Durability, EngineOptions, KeysRequest, ManualClock, ScanRequest, TableSettings, WalOptions,
};
use std::path::Path;
use std::time::Instant;

/// Histories per run unless `CROSS_PATH_CASES` says otherwise.
const DEFAULT_CASES: usize = 2_000;
/// Schedules each history runs under.
const SCHEDULES: usize = 3;

/// Tells the engine about [`T2`] (the harness defines `TABLE` itself).
fn define_t2(store: &Store<SimDisk>) {
    store.engine.define_table(T2, TableSettings { tie_rule: t2_rule(), ..TableSettings::default() });
}

/// Makes `reads` against the engine, setting the clock for each, and leaves it at `START_MS`.
async fn observe(store: &Store<SimDisk>, reads: &[Read]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(reads.len());
    for read in reads {
        out.push(observe_one(store, read).await);
    }
    store.clock.set(START_MS);
    out
}

async fn observe_one(store: &Store<SimDisk>, read: &Read) -> Outcome {
    let engine = &store.engine;
    match *read {
        Read::Get { pk, sk, at, now_ms } => {
            store.clock.set(now_ms);
            Outcome::Get(engine.get(key(pk, sk).as_ref(), at).await.expect("get"))
        }
        Read::Versions { pk, sk } => Outcome::Versions(engine.versions(key(pk, sk).as_ref()).await.expect("versions")),
        Read::Scan { pk, reverse, limit, at, now_ms } => {
            store.clock.set(now_ms);
            let mut req = ScanRequest {
                table: PARTS[pk].0,
                partition_key: PARTS[pk].1.to_vec(),
                from: None,
                to: None,
                limit,
                reverse,
                cursor: None,
                at,
            };
            let mut rows = Vec::new();
            for _ in 0..=SKS.len() + 1 {
                let page = engine.scan(&req).await.expect("scan");
                assert!(page.rows.len() <= limit, "a page of {} rows over its limit {limit}", page.rows.len());
                rows.extend(page.rows);
                match page.cursor {
                    None => return Outcome::Scan(rows),
                    Some(c) => req.cursor = Some(c),
                }
            }
            panic!("a scan of {} sort keys did not end", SKS.len());
        }
        Read::Keys { table, limit, now_ms } => {
            store.clock.set(now_ms);
            let mut req = KeysRequest { table, after: None, limit };
            let mut keys = Vec::new();
            for _ in 0..=PARTS.len() + 1 {
                let page = engine.partition_keys(&req).await.expect("partition keys");
                assert!(page.keys.len() <= limit, "a page of {} keys over its limit {limit}", page.keys.len());
                keys.extend(page.keys);
                match page.cursor {
                    None => return Outcome::Keys(keys),
                    Some(c) => req.after = Some(c),
                }
            }
            panic!("a listing of {} partition keys did not end", PARTS.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Direct batch `i`.
    Direct(usize, Durability),
    /// The consumer of stream `s` applies its messages from its position up to `upto`.
    Deliver {
        stream: usize,
        upto: usize,
    },
    /// The consumer of stream `s` moves back `by` messages: they are delivered again.
    Rewind {
        stream: usize,
        by: usize,
    },
    Link(usize),
    /// Load `l` linked again while linked.
    Relink(usize),
    Rollback(usize),
    Flush,
    /// Commits the noted stream positions without a flush, if no streamed version waits in
    /// memory (nacred does so periodically).
    Checkpoint,
    /// Compacts the live segments whose position has its bit set (modulo 64), or the one at
    /// `mask % count` if none has; with `true`, dropping rolled-back loads' versions.
    Compact(u64, bool),
    /// A restart: a clean one, or (`true`) a power cut, recovered from what the disk holds
    /// durably, with sectors written since their file's last sync torn at random.
    Reopen(bool),
}

/// WAL files of a few batches: the simulated disk copies a whole file at each sync, and small
/// files rotate and are deleted often.
fn tiny_wal() -> WalOptions {
    WalOptions { file_bytes: 32 << 10, async_commit_bytes: 8 << 10, pending_limit_bytes: 16 << 10 }
}

/// Engine sizes for one schedule: blocks of a few entries or of a page; no cache or a large
/// one; weak or normal blooms; manifest snapshots after every edit or every few.
fn engine_options(rng: &mut fastrand::Rng) -> EngineOptions {
    EngineOptions {
        block_target_bytes: [96, 4080][rng.usize(0..2)],
        block_cache_bytes: [0, 1 << 20][rng.usize(0..2)],
        bloom_bits_per_key: [1, 10][rng.usize(0..2)],
        manifest_snapshot_edits: [1, 8][rng.usize(0..2)],
        segment_preallocate_bytes: 8 << 10,
        ..small_options()
    }
}

fn schedule(rng: &mut fastrand::Rng, h: &History) -> Vec<Step> {
    // Chains whose own order holds; the chains interleave freely.
    let mut chains: Vec<Vec<Step>> = Vec::new();
    for i in 0..h.direct.len() {
        let durability = if rng.bool() { Durability::Sync } else { Durability::Async };
        chains.push(vec![Step::Direct(i, durability)]);
    }
    for (stream, messages) in h.streams.iter().enumerate() {
        let mut cuts: Vec<usize> = (1..=messages.len()).filter(|_| rng.u8(0..3) == 0).collect();
        cuts.push(messages.len());
        cuts.dedup();
        chains.push(cuts.into_iter().map(|upto| Step::Deliver { stream, upto }).collect());
    }
    for (l, load) in h.loads.iter().enumerate() {
        let mut chain = vec![Step::Link(l)];
        chain.extend(load.linked_twice.then_some(Step::Relink(l)));
        chain.extend(load.rolled_back.then_some(Step::Rollback(l)));
        chains.push(chain);
    }
    for chain in &mut chains {
        chain.reverse();
    }
    let maintenance_percent = [10, 30, 60][rng.usize(0..3)];
    let mut steps = Vec::new();
    loop {
        chains.retain(|c| !c.is_empty());
        if chains.is_empty() {
            break;
        }
        let i = rng.usize(0..chains.len());
        steps.push(chains[i].pop().expect("not empty"));
        while rng.u8(0..100) < maintenance_percent {
            steps.push(maintenance(rng, h));
        }
    }
    // Whatever restarts and rewinds did, every message is delivered in the end.
    steps.extend((0..h.streams.len()).map(|stream| Step::Deliver { stream, upto: h.streams[stream].len() }));
    if rng.bool() {
        steps.push(Step::Flush);
    }
    steps
}

fn maintenance(rng: &mut fastrand::Rng, h: &History) -> Step {
    match rng.u8(0..100) {
        0..40 => Step::Flush,
        40..65 => Step::Compact(if rng.u8(0..4) == 0 { u64::MAX } else { rng.u64(..) }, rng.bool()),
        65..80 => Step::Reopen(rng.bool()),
        80..85 => Step::Checkpoint,
        _ if !h.streams.is_empty() => Step::Rewind { stream: rng.usize(0..h.streams.len()), by: rng.usize(1..5) },
        _ => Step::Flush,
    }
}

// ---------------------------------------------------------------------------------------------
// Running a schedule.

struct Run<'a> {
    history: &'a History,
    built: &'a [BuiltLoad],
    store: Option<Store<SimDisk>>,
    visibility: LoadVisibility,
    /// Each stream consumer's next offset.
    positions: Vec<usize>,
}

impl Run<'_> {
    fn store(&self) -> &Store<SimDisk> {
        self.store.as_ref().expect("a store between steps")
    }

    async fn step(&mut self, step: Step) {
        match step {
            // No flush when the memtable is "full": a memtable's memory counts a whole chunk of
            // rows from its first write (about 128 KiB), past any small flush size, and flushing
            // after every write would leave no write in memory for the next steps to meet.
            // Flushes come from the schedule.
            Step::Direct(i, durability) => {
                let engine = &self.store().engine;
                engine.write(self.history.direct[i].clone(), durability).await.expect("direct write");
            }
            Step::Deliver { stream, upto } => self.deliver(stream, upto),
            Step::Rewind { stream, by } => self.positions[stream] = self.positions[stream].saturating_sub(by),
            Step::Link(l) => self.link(l).await,
            Step::Relink(l) => {
                let reads = reads();
                let before = observe(self.store(), &reads).await;
                self.link(l).await;
                let after = observe(self.store(), &reads).await;
                if let Some(i) = (0..reads.len()).find(|i| before[*i] != after[*i]) {
                    panic!(
                        "linking load {} a second time changed {:?}: {:?} before, {:?} after",
                        self.built[l].id, reads[i], before[i], after[i]
                    );
                }
            }
            Step::Rollback(l) => {
                let id = self.built[l].id;
                self.visibility.hide(id);
                self.store().engine.unlink_bulk_load(id).await.expect("unlink");
            }
            Step::Flush => {
                self.store().engine.flush().await.expect("flush");
            }
            Step::Checkpoint => {
                self.store().engine.checkpoint_source_offsets().await.expect("checkpoint");
            }
            Step::Compact(mask, drop_rolled_back) => {
                let live = self.store().engine.segment_ids();
                if live.is_empty() {
                    return;
                }
                let mut picked: Vec<_> =
                    live.iter().enumerate().filter(|(i, _)| mask & (1 << (i % 64)) != 0).map(|(_, s)| *s).collect();
                if picked.is_empty() {
                    picked.push(live[(mask % live.len() as u64) as usize]);
                }
                let options = CompactionOptions { drop_rolled_back, ..CompactionOptions::default() };
                self.store().engine.compact(&picked, options).await.expect("compact");
            }
            Step::Reopen(power_cut) => {
                let store = self.store.take().expect("a store between steps");
                // Async writes were acknowledged: make them durable, as the committer would.
                store.wal.sync().await.expect("wal sync");
                let store = if power_cut {
                    let image = store.disk.crash_image(true);
                    let (root, clock, options, wal) =
                        (store.root.clone(), store.clock.clone(), store.options.clone(), store.wal_options);
                    drop(store);
                    Store::open_with_wal(image, &root, clock, options, wal).await.expect("recover after a power cut")
                } else {
                    store.reopen().await
                };
                define_t2(&store);
                store.engine.set_load_visibility(self.visibility.clone());
                // The consumers resume where the manifest says every message before is durable.
                for (stream, (name, _)) in STREAMS.iter().enumerate().take(self.positions.len()) {
                    let committed = store.engine.committed_source_offset(name).await.unwrap_or(0);
                    self.positions[stream] = usize::try_from(committed).expect("small offsets");
                }
                self.store = Some(store);
            }
        }
    }

    /// The consumer of `stream` applies its messages from its position to `upto` in one batch
    /// and notes the position, as nacred's consumer does for a polled round.
    fn deliver(&mut self, stream: usize, upto: usize) {
        let from = self.positions[stream];
        if from >= upto {
            return;
        }
        let mut batch = self.history.streams[stream][from..upto].to_vec();
        let engine = &self.store().engine;
        engine.apply_streamed(&mut batch).expect("apply streamed");
        engine.note_source_offset(STREAMS[stream].0, upto as u64);
        self.positions[stream] = upto;
    }

    /// Links load `l` as nacred's linker does on one partition: prepare, commit hidden, show.
    /// A second link of a linked load goes through the same two steps and leaves it shown.
    async fn link(&self, l: usize) {
        let (load, built) = (&self.history.loads[l], &self.built[l]);
        let engine = &self.store().engine;
        let prepared = match &built.file {
            Some((_, info)) => Some(engine.prepare_bulk_segment(&built.sim_path(), info).await.expect("prepare")),
            None => None,
        };
        assert!(!self.visibility.is_hidden(load.id), "a load is linked only before its rollback");
        self.visibility.hide(load.id);
        engine.commit_bulk_load(load.id, prepared.as_ref(), load.watermark()).await.expect("commit");
        self.visibility.show(load.id);
    }
}

/// Runs `steps` on a fresh simulated disk and returns what `reads` read at the end.
fn run(history: &History, built: &[BuiltLoad], options: EngineOptions, steps: &[Step], reads: &[Read]) -> Vec<Outcome> {
    let mut out = None;
    let slot = &mut out;
    run_sim(0, |disk, root| async move {
        for load in built {
            load.put_on(&disk).await;
        }
        let store = Store::create_with_wal(disk, &root, ManualClock::new(START_MS), options, tiny_wal()).await;
        define_t2(&store);
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        let mut run = Run { history, built, store: Some(store), visibility, positions: vec![0; history.streams.len()] };
        for step in steps {
            run.step(*step).await;
        }
        *slot = Some(observe(run.store(), reads).await);
    });
    out.expect("the run finished")
}

/// Builds the history's loads with the builder, under `dir`.
fn build_loads(dir: &Path, h: &History) -> Vec<BuiltLoad> {
    h.loads
        .iter()
        .map(|l| loads::build(&dir.join(format!("load-{}", l.id)), l.table, l.id, l.mode, l.snapshot_ms, &l.records))
        .collect()
}

/// Runs one history under [`SCHEDULES`] schedules; on the first read that differs from the
/// model, panics naming the case, the schedule and the read.
fn check_case(case_seed: u64, dir: &Path) {
    let h = history(case_seed);
    let built = build_loads(dir, &h);
    let model = Model::of(&h);
    let reads = reads();
    let want: Vec<Outcome> = reads.iter().map(|r| model.read(r)).collect();
    let mut rng = fastrand::Rng::with_seed(case_seed ^ 0x5c4e_d01e);
    for s in 0..SCHEDULES {
        let options = engine_options(&mut rng);
        let steps = schedule(&mut rng, &h);
        let got = run(&h, &built, options.clone(), &steps, &reads);
        if let Some(i) = (0..reads.len()).find(|i| got[*i] != want[*i]) {
            panic!(
                "case seed {case_seed}, schedule {s}: {:?}\n  engine: {:?}\n  model:  {:?}\n\n\
                 history: {h:#?}\n\nschedule: {steps:?}\n\noptions: block {} B, cache {} B, bloom {} bits, \
                 manifest snapshot every {} edits",
                reads[i],
                got[i],
                want[i],
                options.block_target_bytes,
                options.block_cache_bytes,
                options.bloom_bits_per_key,
                options.manifest_snapshot_edits,
            );
        }
    }
}

/// Case `i`'s seed: the run's seed itself for the first, so `SEED=<case seed>` with
/// `CROSS_PATH_CASES=1` replays one case alone.
fn case_seed(seed: u64, i: usize) -> u64 {
    if i == 0 { seed } else { fastrand::Rng::with_seed(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).u64(..) }
}

fn cases() -> usize {
    match std::env::var("CROSS_PATH_CASES") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("CROSS_PATH_CASES={text:?} is not a count")),
        Err(_) => DEFAULT_CASES,
    }
}

#[test]
fn every_path_order_and_schedule_reads_as_the_ordering_rule_says() {
    let seed = nacre_testkit::seed("cross_path");
    println!("SEED={seed}: replay with SEED={seed} cargo test -p nacre-storage --test cross_path");
    let cases = cases();
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    for i in 0..cases {
        let case_seed = case_seed(seed, i);
        let case_dir = dir.path().join(i.to_string());
        let outcome = std::panic::catch_unwind(|| check_case(case_seed, &case_dir));
        if let Err(p) = outcome {
            let message =
                p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!(
                "SEED={seed} failed at case {i}: {}\n\nreplay the run with SEED={seed}, or the case alone with \
                 SEED={case_seed} CROSS_PATH_CASES=1",
                message.unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&case_dir);
    }
    println!("SEED={seed}: {cases} histories x {SCHEDULES} schedules in {:?}", started.elapsed());
}
