//! Interleavings on one executor: group commit batches concurrent writers into few fdatasyncs
//! and acknowledges none before its bytes are durable; a flush lets writes and reads go on, with
//! reads seeing the frozen memtable while it is being written.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/yielding.rs"]
mod yielding;

use harness::*;
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{Durability, ManualClock};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use yielding::{YieldingDisk, join_all, yield_now};

/// A write's future, yielding the crash image taken at its acknowledgement.
type AckedImage<'a> = Pin<Box<dyn Future<Output = (u64, SimDisk)> + 'a>>;

#[test]
fn concurrent_sync_writers_share_fdatasyncs_and_each_ack_is_durable() {
    futures_lite::future::block_on(async {
        let sim = SimDisk::new(3);
        let disk = YieldingDisk::new(sim.clone());
        let root = Path::new("/nacre");
        let store = Store::create(disk.clone(), root, ManualClock::new(START_MS), small_options()).await;
        let writers = 32u64;
        let before = disk.syncs.get();
        let sim_ref = &sim;
        let store_ref = &store;
        let futures: Vec<AckedImage<'_>> = (0..writers)
            .map(|i| {
                let f: AckedImage<'_> = Box::pin(async move {
                    store_ref
                        .engine
                        .write(vec![put(&format!("k{i}"), "", i + 1, &format!("v{i}"))], Durability::Sync)
                        .await
                        .expect("write");
                    // What a power cut right at the acknowledgement would leave.
                    (i, sim_ref.crash_image(false))
                });
                f
            })
            .collect();
        let acked = join_all(futures).await;
        let syncs = disk.syncs.get() - before;
        assert!(syncs >= 1 && syncs <= writers / 4, "{writers} concurrent writers took {syncs} fdatasyncs");
        for (i, image) in acked {
            let recovered =
                Store::open(image, root, ManualClock::new(START_MS), small_options()).await.expect("recover");
            assert_eq!(
                recovered.get(&format!("k{i}"), "").await,
                Some(format!("v{i}")),
                "write {i} was acknowledged before it was durable"
            );
        }
    });
}

#[test]
fn reads_see_the_frozen_memtable_and_writes_go_on_while_a_flush_runs() {
    futures_lite::future::block_on(async {
        let disk = YieldingDisk::new(SimDisk::new(4));
        let store = Store::create(disk, Path::new("/nacre"), ManualClock::new(START_MS), small_options()).await;
        for i in 0..200u64 {
            store
                .engine
                .write(vec![put(&format!("k{i:03}"), "", i + 1, "before")], Durability::Async)
                .await
                .expect("write");
        }
        let flush = async {
            let written = store.engine.flush().await.expect("flush");
            assert_eq!(written.len(), 1);
        };
        let meanwhile = async {
            yield_now().await;
            let stats = store.engine.stats();
            assert_eq!((stats.frozen_memtables, stats.segment_count), (1, 0), "the flush is under way");
            assert_eq!(store.get("k007", "").await.as_deref(), Some("before"), "reads see the frozen memtable");
            store
                .engine
                .write(vec![put("k007", "", 1_000, "during")], Durability::Sync)
                .await
                .expect("write during flush");
            assert_eq!(store.get("k007", "").await.as_deref(), Some("during"));
        };
        futures_lite::future::zip(flush, meanwhile).await;
        let stats = store.engine.stats();
        assert_eq!((stats.frozen_memtables, stats.segment_count, stats.memtable_entries), (0, 1, 1));
        assert_eq!(store.get("k199", "").await.as_deref(), Some("before"));
        let store = store.reopen().await;
        assert_eq!(store.get("k007", "").await.as_deref(), Some("during"));
        assert_eq!(store.get("k000", "").await.as_deref(), Some("before"));
    });
}

#[test]
fn a_commit_abandoned_half_way_poisons_instead_of_hanging_its_followers() {
    futures_lite::future::block_on(async {
        let disk = YieldingDisk::new(SimDisk::new(5));
        let store = Store::create(disk, Path::new("/nacre"), ManualClock::new(START_MS), small_options()).await;
        let mut leader = Box::pin(store.engine.write(vec![put("a", "", 1, "leader")], Durability::Sync));
        let mut follower = Box::pin(store.engine.write(vec![put("b", "", 2, "follower")], Durability::Sync));
        // One poll each: the leader is now inside its batch's write, the follower waits on it.
        assert!(futures_lite::future::poll_once(leader.as_mut()).await.is_none());
        assert!(futures_lite::future::poll_once(follower.as_mut()).await.is_none());
        drop(leader);
        let outcome = follower.await;
        assert!(matches!(outcome, Err(nacre_storage::Error::Poisoned { .. })), "{outcome:?}");
        let later = store.engine.write(vec![put("c", "", 3, "later")], Durability::Sync).await;
        assert!(matches!(later, Err(nacre_storage::Error::Poisoned { .. })), "{later:?}");
    });
}

/// A sync writer that leads a group commit is acknowledged once its own batch is durable, even
/// while other writers keep the WAL busy behind it (the leader once looped until nothing was
/// pending, so under sustained writes it waited out the whole busy period).
#[test]
fn a_group_commit_leader_is_acknowledged_after_its_own_batch_not_after_the_busy_period() {
    futures_lite::future::block_on(async {
        let disk = YieldingDisk::new(SimDisk::new(5));
        let store = Store::create(disk, Path::new("/nacre"), ManualClock::new(START_MS), small_options()).await;
        let store_ref = &store;
        let rounds = 20u64;
        let leader: Pin<Box<dyn Future<Output = u64> + '_>> = Box::pin(async move {
            store_ref.engine.write(vec![put("leader", "", 1, "v")], Durability::Sync).await.expect("write");
            store_ref.wal.batches_written()
        });
        let others: Vec<Pin<Box<dyn Future<Output = u64> + '_>>> = (0..4u64)
            .map(|w| {
                let f: Pin<Box<dyn Future<Output = u64> + '_>> = Box::pin(async move {
                    for r in 0..rounds {
                        let ts = 10 + w * rounds + r;
                        let e = put(&format!("w{w}"), "", ts, "v");
                        store_ref.engine.write(vec![e], Durability::Sync).await.expect("write");
                    }
                    store_ref.wal.batches_written()
                });
                f
            })
            .collect();
        let mut all = vec![leader];
        all.extend(others);
        let done = join_all(all).await;
        let total = store.wal.batches_written();
        assert!(total > 10, "the writers kept the WAL busy for {total} batches");
        assert!(done[0] <= 2, "the leader was acknowledged after {} of {total} batches, not its own", done[0]);
    });
}

/// Concurrent writers far past the WAL's pending limit wait instead of growing the batch: the
/// most ever pending stays within the limit, and every acknowledged sync write survives a power
/// cut taken right at its acknowledgement.
#[test]
fn writers_past_the_pending_limit_wait_and_every_acknowledged_write_is_durable() {
    futures_lite::future::block_on(async {
        let sim = SimDisk::new(6);
        let disk = YieldingDisk::new(sim.clone());
        let root = Path::new("/nacre");
        let store = Store::create(disk, root, ManualClock::new(START_MS), small_options()).await;
        let limit = small_wal().pending_limit_bytes;
        let value = "x".repeat(12 << 10);
        let (store_ref, sim_ref, value_ref) = (&store, &sim, &value);
        let writers = 24u64;
        let futures: Vec<AckedImage<'_>> = (0..writers)
            .map(|i| {
                let f: AckedImage<'_> = Box::pin(async move {
                    let durability = if i % 3 == 0 { Durability::Async } else { Durability::Sync };
                    let e = put(&format!("k{i}"), "", i + 1, value_ref);
                    store_ref.engine.write(vec![e], durability).await.expect("write");
                    if durability == Durability::Async {
                        store_ref.wal.sync().await.expect("sync");
                    }
                    (i, sim_ref.crash_image(false))
                });
                f
            })
            .collect();
        let acked = join_all(futures).await;
        let written = writers as usize * value.len();
        assert!(written > 2 * limit, "the writers offered {written} bytes against a limit of {limit}");
        let peak = store.wal.pending_peak_bytes();
        assert!(peak <= limit, "{peak} bytes were pending at once, over the limit of {limit}");
        for (i, image) in acked {
            let recovered =
                Store::open(image, root, ManualClock::new(START_MS), small_options()).await.expect("recover");
            assert_eq!(recovered.get(&format!("k{i}"), "").await.as_deref(), Some(value.as_str()), "write {i} lost");
        }
    });
}

/// The periodic committer's wait: pending while nothing is queued, ready once a record is.
#[test]
fn waiting_for_pending_records_returns_once_one_is_appended() {
    futures_lite::future::block_on(async {
        let disk = YieldingDisk::new(SimDisk::new(7));
        let store = Store::create(disk, Path::new("/nacre"), ManualClock::new(START_MS), small_options()).await;
        let wait = std::pin::pin!(store.wal.wait_for_pending());
        let mut wait = wait;
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        assert!(wait.as_mut().poll(&mut cx).is_pending(), "nothing is pending yet");
        store.engine.write(vec![put("k", "", 1, "v")], Durability::Async).await.expect("write");
        assert!(wait.as_mut().poll(&mut cx).is_ready(), "an async write is pending");
        store.wal.sync().await.expect("sync");
        assert_eq!(store.wal.pending_bytes(), 0);
        assert!(std::pin::pin!(store.wal.wait_for_pending()).poll(&mut cx).is_pending(), "synced: nothing pending");
    });
}

/// The WAL's exposure and commit accounting: an async write waits undurable (its lag grows from
/// its append) until a commit, after which the lag is zero and the batch's bytes and time are
/// counted.
#[test]
fn an_async_write_shows_as_durability_lag_until_its_batch_commits() {
    futures_lite::future::block_on(async {
        let disk = YieldingDisk::new(SimDisk::new(7));
        let store = Store::create(disk, Path::new("/nacre"), ManualClock::new(START_MS), small_options()).await;
        assert_eq!(store.wal.durability_lag(), std::time::Duration::ZERO, "nothing written");
        store.engine.write(vec![put("a", "", 1, "async")], Durability::Async).await.expect("write");
        let (batches, bytes) = (store.wal.batches_written(), store.wal.bytes_written());
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(store.wal.durability_lag() >= std::time::Duration::from_millis(2), "{:?}", store.wal.durability_lag());
        store.wal.sync().await.expect("sync");
        assert_eq!(store.wal.durability_lag(), std::time::Duration::ZERO, "all durable");
        assert_eq!(store.wal.batches_written(), batches + 1);
        assert!(store.wal.bytes_written() > bytes, "the batch's bytes are counted");
    });
}
