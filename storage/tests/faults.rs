//! Fault tests on the simulated disk: a failed fsync poisons (the failing call gets the I/O error,
//! every later write `Poisoned`, nothing is retried) and loses nothing acknowledged; a bit flip
//! anywhere in a segment or in a written WAL batch is a checksum or corruption error, never a
//! wrong value or a silently dropped record; a short read is a typed I/O error; and a failure
//! injected at any single op of a small workload gives typed errors only, never a panic, and
//! recovers every acknowledged write. `SEED=` replays the random parts.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/ledger.rs"]
mod ledger;
#[path = "support/probe.rs"]
mod probe;
#[path = "support/yielding.rs"]
mod yielding;

use harness::{START_MS, Store, TABLE, put, small_options};
use ledger::{Batches, Ledger, check_crash, check_image, check_second_crash, recover, root};
use nacre_storage::io::sim::SimDisk;
use nacre_storage::io::{ALIGN, Disk, DiskFile, IoBuf, OpenMode, align_up};
use nacre_storage::{
    CompactionOptions, Durability, Error, Key, ManualClock, Origin, OriginKind, ReadAt, VersionId, Watermark,
};
use probe::ProbeDisk;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use yielding::{YieldingDisk, join_all};

fn block_on<T>(f: impl Future<Output = T>) -> T {
    futures_lite::future::block_on(f)
}

/// The store on `disk`'s files, or the error recovery gave.
async fn open<D: Disk>(disk: D) -> nacre_storage::Result<Store<D>> {
    Store::open(disk, &root(), ManualClock::new(START_MS), small_options()).await
}

fn is_sync_failure_of(result: &nacre_storage::Result<()>, needle: &str) -> bool {
    matches!(result, Err(Error::Io { op: "sync", path, .. }) if path.to_string_lossy().contains(needle))
}

// ---- fsync failure poisons ------------------------------------------------------------------

/// The operation that runs into the failing sync.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Three sync writers joined: the WAL leader's commit fails.
    SyncWrites,
    /// A flush (repeated, one write before each, until one fails: the snapshot rewrite syncs
    /// CURRENT only every few edits).
    Flush,
    /// A compaction of every segment.
    Compaction,
}

/// A store with two segments and a memtable of acknowledged writes, on a yielding probe disk.
async fn poisoning_setup(seed: u64) -> (Store<YieldingDisk<ProbeDisk>>, RefCell<Ledger>, Batches) {
    let disk = YieldingDisk::new(ProbeDisk::new(seed));
    let store = Store::create(disk, &root(), ManualClock::new(START_MS), small_options()).await;
    let ledger = RefCell::default();
    let mut batches = Batches::new(fastrand::Rng::with_seed(seed), 1);
    for i in 0..12 {
        let (batch, durability) = (batches.batch(3), batches.durability());
        ledger::write(&ledger, &store.disk.inner.sim, &store, batch, durability).await.expect("write");
        if i % 4 == 3 {
            store.engine.flush().await.expect("flush");
        }
    }
    (store, ledger, batches)
}

/// Runs `step` into a sync of a file whose path contains `needle`, failed once, and checks the
/// engine is poisoned, never retried, still reads, and recovers (from crash images and from
/// the same disk) every acknowledged write.
async fn failed_sync_poisons(seed: u64, needle: &str, step: Step) {
    let context = format!("{step:?} into a failed sync of {needle}, SEED={seed}");
    let (store, ledger, mut batches) = poisoning_setup(seed).await;
    let probe = store.disk.inner.clone();
    let sim = probe.sim.clone();
    probe.fail_next_sync_of(needle);
    match step {
        Step::SyncWrites => {
            let writers: Vec<Pin<Box<dyn Future<Output = nacre_storage::Result<()>>>>> = (0..3)
                .map(|_| batches.batch(3))
                .map(|batch| -> Pin<Box<dyn Future<Output = _>>> {
                    let (ledger, sim, store) = (&ledger, &sim, &store);
                    Box::pin(async move { ledger::write(ledger, sim, store, batch, Durability::Sync).await.map(drop) })
                })
                .collect();
            let results = join_all(writers).await;
            assert!(is_sync_failure_of(&results[0], needle), "{context}: the leader gets the sync error: {results:?}");
            for r in &results[1..] {
                assert!(matches!(r, Err(Error::Poisoned { .. })), "{context}: a queued writer: {r:?}");
            }
        }
        Step::Flush => {
            let mut outcome = Ok(());
            for _ in 0..10 {
                ledger::write(&ledger, &sim, &store, batches.batch(2), Durability::Sync).await.expect("write");
                outcome = store.engine.flush().await.map(drop);
                if outcome.is_err() {
                    break;
                }
            }
            assert!(is_sync_failure_of(&outcome, needle), "{context}: {outcome:?}");
        }
        Step::Compaction => {
            let ids = store.engine.segment_ids();
            let outcome = store.engine.compact(&ids, CompactionOptions::default()).await.map(drop);
            assert!(is_sync_failure_of(&outcome, needle), "{context}: {outcome:?}");
        }
    }
    // Never retried: nothing was synced after the failure.
    let syncs = probe.syncs();
    let failed = syncs.iter().position(|(_, ok)| !ok).expect("a sync failed");
    assert_eq!(syncs.len(), failed + 1, "{context}: synced again after the failure: {:?}", &syncs[failed..]);
    // Every later change is refused up front, without touching the disk.
    let ops = sim.op_count();
    let mark = Watermark { point: VersionId { ts: put("w", "", 1, "").version.id.ts, origin: direct_origin() } };
    let ids = store.engine.segment_ids();
    let refused = [
        store.engine.write(vec![put("late", "", 900_000, "x")], Durability::Sync).await.map(drop),
        store.engine.write(vec![put("late", "", 900_001, "x")], Durability::Async).await.map(drop),
        store.engine.flush().await.map(drop),
        store.engine.compact(&ids, CompactionOptions::default()).await.map(drop),
        store.engine.add_watermark(TABLE, mark).await,
    ];
    for r in &refused {
        assert!(matches!(r, Err(Error::Poisoned { .. })), "{context}: after the failure: {r:?}");
    }
    if matches!(step, Step::SyncWrites) {
        let r = store.wal.sync().await;
        assert!(matches!(r, Err(Error::Poisoned { .. })), "{context}: a poisoned WAL claimed durability: {r:?}");
    }
    assert_eq!(sim.op_count(), ops, "{context}: a refused call did I/O");
    let ledger = ledger.into_inner();
    // Reads still serve everything acknowledged.
    let at_op = sim.op_count();
    check_image(&ledger, &store, at_op, &format!("{context}, the poisoned engine")).await;
    // Recovery: from a power cut, untorn and torn, and from the same disk after a restart.
    for torn in [false, true] {
        let image = sim.crash_image(torn);
        check_crash(&ledger, image, at_op, &format!("{context}, crash image (torn: {torn})")).await;
    }
    drop(store);
    let context = format!("{context}, reopened on the same disk");
    let reopened = recover(sim, &context).await;
    let present = check_image(&ledger, &reopened, at_op, &context).await;
    check_second_crash(&ledger, reopened, &present, &context).await;
}

fn direct_origin() -> Origin {
    Origin { kind: OriginKind::Direct, source_id: 1, seq: 1 }
}

#[test]
fn a_failed_wal_sync_fails_the_write_and_poisons_every_later_one() {
    let seed = ledger::seed("wal sync");
    block_on(failed_sync_poisons(seed, ".wal", Step::SyncWrites));
}

#[test]
fn a_failed_segment_sync_fails_the_flush_and_poisons() {
    let seed = ledger::seed("flush segment sync");
    block_on(failed_sync_poisons(seed, ".seg", Step::Flush));
}

#[test]
fn a_failed_manifest_sync_fails_the_flush_and_poisons() {
    let seed = ledger::seed("flush manifest sync");
    block_on(failed_sync_poisons(seed, "MANIFEST", Step::Flush));
}

#[test]
fn a_failed_current_sync_during_a_manifest_snapshot_poisons() {
    let seed = ledger::seed("manifest snapshot CURRENT sync");
    block_on(failed_sync_poisons(seed, "CURRENT", Step::Flush));
}

#[test]
fn a_failed_segment_sync_fails_the_compaction_and_poisons() {
    let seed = ledger::seed("compaction segment sync");
    block_on(failed_sync_poisons(seed, ".seg", Step::Compaction));
}

#[test]
fn a_failed_manifest_sync_fails_the_compaction_and_poisons() {
    let seed = ledger::seed("compaction manifest sync");
    block_on(failed_sync_poisons(seed, "MANIFEST", Step::Compaction));
}

/// Regression: `Wal::sync` answered `Ok` once its failed batch had been taken from the pending
/// queue, claiming durable the async writes that batch carried.
#[test]
fn a_poisoned_wal_never_claims_durability() {
    block_on(async {
        let disk = ProbeDisk::new(4);
        let store = Store::create(disk.clone(), &root(), ManualClock::new(START_MS), small_options()).await;
        store
            .engine
            .write(vec![put("async", "", 1, "rides the failing batch")], Durability::Async)
            .await
            .expect("write");
        disk.fail_next_sync_of(".wal");
        let r = store.engine.write(vec![put("sync", "", 2, "fails")], Durability::Sync).await.map(drop);
        assert!(is_sync_failure_of(&r, ".wal"), "{r:?}");
        let r = store.wal.sync().await;
        assert!(matches!(r, Err(Error::Poisoned { .. })), "the async write is not durable: {r:?}");
    });
}

// ---- bit flips ------------------------------------------------------------------------------

/// One framed block of a segment: where it is and what it holds (FORMAT.md, "Block").
#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    len: u64,
    payload_len: u64,
    kind: u8,
}

/// The blocks of a segment file, walked by their framing.
fn segment_blocks(bytes: &[u8]) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let payload_len = u32::from_le_bytes(bytes[offset + 12..offset + 16].try_into().expect("4 bytes")) as usize;
        let len = align_up(16 + payload_len);
        blocks.push(Block {
            offset: offset as u64,
            len: len as u64,
            payload_len: payload_len as u64,
            kind: bytes[offset + 8],
        });
        offset += len;
    }
    assert_eq!(offset, bytes.len(), "the blocks tile the segment");
    blocks
}

const DATA: u8 = 1;

/// Byte positions worth flipping in a block: its checksum, kind, length, first and last payload
/// byte, and padding.
fn landmarks(offset: u64, header: &[u64], payload_start: u64, payload_len: u64, len: u64) -> Vec<u64> {
    let mut at: Vec<u64> = header.iter().map(|h| offset + h).collect();
    at.push(offset + payload_start);
    at.push(offset + payload_start + payload_len.max(1) - 1);
    if payload_start + payload_len < len {
        at.push(offset + len - 1);
    }
    at
}

fn file_named(sim: &SimDisk, suffix: &str) -> Vec<PathBuf> {
    sim.live_paths().into_iter().filter(|p| p.to_string_lossy().ends_with(suffix)).collect()
}

#[test]
fn a_bit_flip_anywhere_in_a_segment_is_a_checksum_error_never_a_wrong_value() {
    let seed = ledger::seed("segment bit flips");
    block_on(async {
        let mut rng = fastrand::Rng::with_seed(seed);
        let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
        let sim = store.disk.clone();
        let ledger = RefCell::new(Ledger::default());
        for i in 0..80u64 {
            let value: String = (0..rng.usize(100..400)).map(|_| rng.alphanumeric()).collect();
            let w = vec![put(&format!("key{i:03}"), "", i + 1, &value), put(&format!("key{i:03}"), "x", i + 1, "2")];
            ledger::write(&ledger, &sim, &store, w, Durability::Sync).await.expect("write");
        }
        store.engine.flush().await.expect("flush");
        drop(store);
        let [segment] = file_named(&sim, ".seg").try_into().expect("one segment");
        let bytes = sim.read_live(&segment).expect("segment bytes");
        let blocks = segment_blocks(&bytes);
        let kinds: Vec<u8> = blocks.iter().map(|b| b.kind).collect();
        assert!(kinds.len() >= 7 && kinds[..kinds.len() - 4].iter().all(|k| *k == DATA), "{kinds:?}");
        assert_eq!(kinds[kinds.len() - 4..], [2, 3, 4, 5], "index, bloom, meta, footer");
        // What every key reads without a flip.
        let ledger = ledger.into_inner();
        let clean = recover(sim.crash_image(false), "no flip").await;
        check_image(&ledger, &clean, u64::MAX, "no flip").await;
        let mut expected: BTreeMap<Key, Option<Vec<u8>>> = BTreeMap::new();
        for key in ledger.keys() {
            let row = clean.engine.get(key.as_ref(), ReadAt::Latest).await.expect("get");
            expected.insert(key, row.map(|r| r.value));
        }
        drop(clean);
        let mut positions: Vec<u64> =
            blocks.iter().flat_map(|b| landmarks(b.offset, &[0, 7, 8, 12], 16, b.payload_len, b.len)).collect();
        positions.extend((0..300).map(|_| rng.u64(..bytes.len() as u64)));
        let mut detected: BTreeMap<u8, usize> = BTreeMap::new();
        for (n, byte) in positions.into_iter().enumerate() {
            let bit = (n % 8) as u8;
            let block = *blocks.iter().find(|b| (b.offset..b.offset + b.len).contains(&byte)).expect("in a block");
            let context = format!("bit {bit} of byte {byte} in {block:?}, SEED={seed}");
            let image = sim.crash_image(false);
            image.flip_bit(&segment, byte, bit);
            let opened = open(image).await;
            let is_this_block = |e: &Error| matches!(e, Error::ChecksumMismatch { file, offset, .. } if *file == segment && *offset == block.offset);
            if block.kind != DATA {
                // Index, bloom, metadata and footer are verified when the segment is opened.
                match opened {
                    Err(e) if is_this_block(&e) => {}
                    Err(e) => panic!("{context}: recovery failed, but not at this block: {e}"),
                    Ok(_) => panic!("{context}: recovery accepted a damaged segment"),
                }
            } else {
                let store = opened.unwrap_or_else(|e| panic!("{context}: data blocks are read lazily: {e}"));
                let mut errors = 0;
                for (key, value) in &expected {
                    match store.engine.get(key.as_ref(), ReadAt::Latest).await {
                        Ok(row) => assert_eq!(&row.map(|r| r.value), value, "{context}: a wrong value for {key:?}"),
                        Err(e) if is_this_block(&e) => errors += 1,
                        Err(e) => panic!("{context}: reading {key:?}: {e}"),
                    }
                }
                assert!(errors > 0, "{context}: no read of the damaged block failed");
            }
            *detected.entry(block.kind).or_default() += 1;
        }
        println!("flips detected, by block kind (1 data .. 5 footer): {detected:?}");
    });
}

/// The written extent of a log file: its header page and its batches (FORMAT.md, "Log file"),
/// with landmark positions in each.
fn log_extent(bytes: &[u8]) -> (u64, Vec<u64>) {
    let mut marks = landmarks(0, &[0, 7, 8, 12], 16, 29, ALIGN as u64);
    let mut offset = ALIGN;
    while bytes.get(offset + 8..offset + 12) == Some(&b"NLOG"[..]) {
        let payload_len = u32::from_le_bytes(bytes[offset + 12..offset + 16].try_into().expect("4 bytes")) as u64;
        let len = align_up(32 + payload_len as usize);
        marks.extend(landmarks(offset as u64, &[0, 7, 8, 12, 16, 24], 32, payload_len, len as u64));
        offset += len;
    }
    (offset as u64, marks)
}

#[test]
fn a_bit_flip_in_a_written_wal_batch_fails_recovery_and_never_drops_or_changes_a_record() {
    let seed = ledger::seed("wal bit flips");
    block_on(async {
        let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
        let sim = store.disk.clone();
        let ledger = RefCell::new(Ledger::default());
        let mut batches = Batches::new(fastrand::Rng::with_seed(seed), 1);
        for _ in 0..10 {
            // Async writes ride in the next sync write's batch; large values span pages.
            let (batch, durability) = (batches.batch(4), batches.durability());
            ledger::write(&ledger, &sim, &store, batch, durability).await.expect("write");
        }
        ledger::wal_sync(&ledger, &sim, &store).await.expect("wal sync");
        // Recovery starts a second WAL file; the first stays, still needed.
        let store = store.reopen().await;
        for _ in 0..5 {
            ledger::write(&ledger, &sim, &store, batches.batch(4), Durability::Sync).await.expect("write");
        }
        drop(store);
        let wal_files = file_named(&sim, ".wal");
        assert_eq!(wal_files.len(), 2, "{wal_files:?}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut flips = 0;
        for path in &wal_files {
            let bytes = sim.read_live(path).expect("wal bytes");
            let (extent, mut positions) = log_extent(&bytes);
            assert!(extent > 2 * ALIGN as u64, "{path:?} holds batches");
            positions.extend((0..150).map(|_| rng.u64(..extent)));
            for (n, byte) in positions.into_iter().enumerate() {
                let bit = (n % 8) as u8;
                let context = format!("bit {bit} of byte {byte} of {path:?}, SEED={seed}");
                let image = sim.crash_image(false);
                image.flip_bit(path, byte, bit);
                match open(image).await {
                    Err(Error::ChecksumMismatch { file, .. } | Error::Corrupt { file, .. }) if file == *path => {}
                    Err(e) => panic!("{context}: recovery failed, but not for this file: {e}"),
                    Ok(_) => panic!("{context}: recovery accepted a damaged WAL"),
                }
                flips += 1;
            }
        }
        println!("{flips} WAL bit flips, each refused by recovery");
    });
}

// ---- short reads ----------------------------------------------------------------------------

fn is_short_read_of(e: &Error, needle: &str) -> bool {
    matches!(e, Error::Io { op: "read", path, source }
        if source.kind() == ErrorKind::UnexpectedEof && path.to_string_lossy().contains(needle))
}

#[test]
fn a_short_read_is_a_typed_io_error_and_changes_nothing() {
    block_on(async {
        let disk = ProbeDisk::new(5);
        let sim = disk.sim.clone();
        let store = Store::create(disk.clone(), &root(), ManualClock::new(START_MS), small_options()).await;
        let ledger = RefCell::new(Ledger::default());
        let write = async |store: &Store<ProbeDisk>, pk: &str, ts: u64| {
            let w = vec![put(pk, "", ts, &format!("{pk}@{ts}"))];
            ledger::write(&ledger, &sim, store, w, Durability::Sync).await.expect("write");
        };
        for ts in 1..=6 {
            write(&store, &format!("flushed{ts}"), ts).await;
            if ts % 3 == 0 {
                store.engine.flush().await.expect("flush");
            }
        }
        write(&store, "unflushed", 7).await;
        // A point read of a segment's data block.
        let store = store.reopen().await;
        disk.short_read_next_of(".seg");
        let key = Key::new(TABLE, "flushed1", "");
        let err = store.engine.get(key.as_ref(), ReadAt::Latest).await.expect_err("the read fails");
        assert!(is_short_read_of(&err, ".seg"), "{err}");
        assert_eq!(store.get("flushed1", "").await.as_deref(), Some("flushed1@1"), "the next read succeeds");
        // A flush that cannot read back the segment it wrote fails, unpoisoned; the next one
        // succeeds.
        write(&store, "second", 8).await;
        disk.short_read_next_of(".seg");
        let err = store.engine.flush().await.expect_err("the flush fails");
        assert!(is_short_read_of(&err, ".seg"), "{err}");
        store.engine.flush().await.expect("the next flush");
        // Likewise a compaction.
        let ids = store.engine.segment_ids();
        disk.short_read_next_of(".seg");
        let err = store.engine.compact(&ids, CompactionOptions::default()).await.expect_err("compaction fails");
        assert!(is_short_read_of(&err, ".seg"), "{err}");
        store.engine.compact(&ids, CompactionOptions::default()).await.expect("the next compaction");
        write(&store, "third", 9).await;
        let ledger = ledger.into_inner();
        check_image(&ledger, &store, sim.op_count(), "after short reads").await;
        // Recovery, whichever file it cannot read, fails with the read error; the next succeeds.
        drop(store);
        for needle in [".wal", "CURRENT", "MANIFEST", ".seg"] {
            disk.short_read_next_of(needle);
            match open(disk.clone()).await {
                Err(e) => assert!(is_short_read_of(&e, needle), "recovery reading {needle}: {e}"),
                Ok(_) => panic!("recovery never read {needle}"),
            }
            let store = recover(disk.clone(), needle).await;
            check_image(&ledger, &store, sim.op_count(), &format!("recovered after a short read of {needle}")).await;
        }
    });
}

// ---- a failure at every op ------------------------------------------------------------------

/// A small workload touching every write path, run on whatever the disk does; returns the
/// errors it met. Writes that fail are recorded in the ledger unacknowledged.
async fn workload(store: &Store<SimDisk>, ledger: &RefCell<Ledger>, seed: u64) -> Vec<Error> {
    let sim = &store.disk;
    let mut batches = Batches::new(fastrand::Rng::with_seed(seed), 1);
    let mut errors = Vec::new();
    let mut outcome = |r: nacre_storage::Result<()>| errors.extend(r.err());
    for round in 0..3 {
        for _ in 0..4 {
            let (batch, durability) = (batches.batch(3), batches.durability());
            outcome(ledger::write(ledger, sim, store, batch, durability).await.map(drop));
        }
        outcome(store.engine.flush().await.map(drop));
        if round == 2 {
            let ids = store.engine.segment_ids();
            outcome(store.engine.compact(&ids, CompactionOptions::default()).await.map(drop));
        }
    }
    for pk in 0..3 {
        let key = Key::new(TABLE, format!("pk{pk}"), "sk0");
        outcome(store.engine.get(key.as_ref(), ReadAt::Latest).await.map(drop));
    }
    outcome(ledger::write(ledger, sim, store, batches.batch(3), Durability::Async).await.map(drop));
    outcome(ledger::wal_sync(ledger, sim, store).await);
    errors
}

/// Runs the workload with op `n` failing (none if `None`); checks every error is typed and the
/// store recovers every acknowledged write. Returns the workload's op count and error count.
async fn workload_with_failure_at(seed: u64, n: Option<u64>) -> (u64, usize) {
    let context = format!("fail_op_after({n:?}), SEED={seed}");
    let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
    let sim = store.disk.clone();
    let ledger = RefCell::new(Ledger::default());
    let start = sim.op_count();
    if let Some(n) = n {
        sim.fail_op_after(n);
    }
    let errors = workload(&store, &ledger, seed).await;
    let ops = sim.op_count() - start;
    assert!(n.is_none_or(|n| n <= ops), "{context}: the fault never fired in {ops} ops");
    for e in &errors {
        let typed = match e {
            Error::Io { source, .. } => source.to_string() == "injected fault",
            Error::Poisoned { .. } => true,
            _ => false,
        };
        assert!(typed, "{context}: an error that is neither the injected fault nor poisoned: {e:?}");
    }
    let at_op = sim.op_count();
    let ledger = ledger.into_inner();
    check_crash(&ledger, sim.crash_image(true), at_op, &format!("{context}, crash image")).await;
    drop(store);
    let context = format!("{context}, reopened on the same disk");
    let reopened = recover(sim, &context).await;
    let present = check_image(&ledger, &reopened, at_op, &context).await;
    check_second_crash(&ledger, reopened, &present, &context).await;
    (ops, errors.len())
}

#[test]
fn a_failure_at_any_op_of_a_workload_gives_typed_errors_and_loses_nothing_acknowledged() {
    let seed = ledger::seed("fail_op_after");
    let (ops, errors) = block_on(workload_with_failure_at(seed, None));
    assert_eq!(errors, 0, "the workload runs clean without a fault");
    let mut failing_runs = 0;
    for n in 1..=ops {
        let run = std::panic::catch_unwind(|| block_on(workload_with_failure_at(seed, Some(n))));
        match run {
            Ok((_, errors)) => failing_runs += usize::from(errors > 0),
            Err(panic) => {
                eprintln!("fail_op_after({n}) panicked, SEED={seed}");
                std::panic::resume_unwind(panic);
            }
        }
    }
    println!("{ops} ops, each failed once: {failing_runs} runs surfaced an error");
    assert!(failing_runs * 2 > ops as usize, "most injected faults surface: {failing_runs} of {ops}");
}

#[test]
fn a_failure_at_any_op_of_recovery_is_a_typed_error_and_the_next_recovery_recovers_everything() {
    let seed = ledger::seed("fail_op_after in recovery");
    block_on(async {
        let store = Store::create(SimDisk::new(seed), &root(), ManualClock::new(START_MS), small_options()).await;
        let sim = store.disk.clone();
        let ledger = RefCell::new(Ledger::default());
        let errors = workload(&store, &ledger, seed).await;
        assert!(errors.is_empty(), "{errors:?}");
        let at_op = sim.op_count();
        let ledger = ledger.into_inner();
        // Orphans for recovery to delete: a manifest file CURRENT never named, a segment no edit
        // listed. (Both names are past anything the store wrote.)
        let base = sim.crash_image(false);
        drop(store);
        for orphan in ["/nacre/p7/MANIFEST-000099", "/nacre/p7/0000000000000099.seg"] {
            let f = base.open(Path::new(orphan), OpenMode::CreateNew).await.expect("orphan");
            f.write_at(0, IoBuf::zeroed(ALIGN)).await.expect("orphan bytes");
            f.sync().await.expect("orphan sync");
        }
        base.sync_dir(Path::new("/nacre/p7")).await.expect("sync_dir");
        let clean = base.crash_image(false);
        drop(recover(clean.clone(), "clean recovery").await);
        let ops = clean.op_count();
        let mut failed = 0;
        for n in 1..=ops {
            let context = format!("recovery with fail_op_after({n}), SEED={seed}");
            let image = base.crash_image(false);
            image.fail_op_after(n);
            match open(image.clone()).await {
                Err(Error::Io { source, .. }) if source.to_string() == "injected fault" => failed += 1,
                Err(e) => panic!("{context}: not the injected fault: {e}"),
                Ok(store) => {
                    check_image(&ledger, &store, at_op, &context).await;
                    continue;
                }
            }
            // A power cut right after the failed recovery, and a retry on the same disk.
            check_crash(&ledger, image.crash_image(true), at_op, &format!("{context}, crash")).await;
            let retried = recover(image, &context).await;
            let present = check_image(&ledger, &retried, at_op, &format!("{context}, retry")).await;
            check_second_crash(&ledger, retried, &present, &format!("{context}, retry")).await;
        }
        println!("recovery: {ops} ops, each failed once: {failed} recoveries failed");
        assert_eq!(failed, ops, "every op of recovery is essential: none of its failures may pass unnoticed");
    });
}

/// A run holding only a dropped table is removed by the edit alone: a flipped bit in its first
/// data block fails a merge that reads it (the table still live), and does not fail one that
/// removes it unread (the table dropped).
#[test]
fn a_run_of_a_dropped_table_alone_is_removed_without_being_read() {
    block_on(async {
        for drop_it in [false, true] {
            let sim = SimDisk::new(1);
            let store = Store::create(sim.clone(), &root(), ManualClock::new(START_MS), small_options()).await;
            let table = nacre_storage::TableId(2);
            store.engine.define_table(table, nacre_storage::TableSettings::default());
            let batch = (0..100u64)
                .map(|i| {
                    let mut e = put("", "", i + 1, &"v".repeat(200));
                    e.key = Key::new(table, format!("key{i:03}"), Vec::new());
                    e
                })
                .collect();
            store.engine.write(batch, Durability::Sync).await.expect("write");
            store.engine.flush().await.expect("flush");
            let [segment] = file_named(&sim, ".seg").try_into().expect("one segment");
            sim.flip_bit(&segment, 64, 3);
            if drop_it {
                store.engine.drop_table(table);
            }
            let ids = store.engine.segment_ids();
            let out = store.engine.compact(&ids, CompactionOptions::collect_garbage()).await;
            if drop_it {
                let out = out.expect("removed unread");
                assert_eq!((out.output, out.garbage_versions), (None, 100));
                assert!(store.engine.segment_ids().is_empty());
            } else {
                assert!(matches!(out, Err(Error::ChecksumMismatch { .. } | Error::Corrupt { .. })), "{out:?}");
            }
        }
    });
}
