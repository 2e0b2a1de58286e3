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
