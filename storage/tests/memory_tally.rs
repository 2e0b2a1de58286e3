//! A shared `MemoryTally` stays equal to the memtable bytes its engines hold (active and frozen)
//! through writes, streamed batches, flushes and an engine's drop, so a shard can read it on
//! every write instead of asking each engine. Random steps, seeded (`SEED=` replays).

#[path = "support/harness.rs"]
mod harness;

use harness::{START_MS, Store, put, small_options};
use nacre_storage::io::Disk;
use nacre_storage::{Durability, ManualClock, MemoryTally};
use std::path::Path;

fn held<D: Disk>(stores: &[Store<D>]) -> usize {
    stores.iter().map(|s| s.engine.memtables_held_bytes()).sum()
}

#[test]
fn a_shared_tally_is_the_sum_of_its_engines_memtables() {
    let seed = nacre_testkit::seed("a_shared_tally_is_the_sum_of_its_engines_memtables");
    harness::run_sim(seed, |disk, root| async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        let tally = MemoryTally::default();
        let mut stores = Vec::new();
        for name in ["a", "b", "c"] {
            let clock = ManualClock::new(START_MS);
            let store = Store::create(disk.clone(), &Path::new(&root).join(name), clock, small_options()).await;
            store.engine.share_memory_tally(tally.clone());
            stores.push(store);
        }
        assert_eq!(tally.bytes(), held(&stores));
        let mut ts = 1;
        for step in 0..3_000 {
            let store = &stores[rng.usize(..stores.len())];
            match rng.u8(..100) {
                0..=69 => {
                    let value = "v".repeat(rng.usize(1..400));
                    let key = format!("k{}", rng.u32(..500));
                    let durability = if rng.bool() { Durability::Sync } else { Durability::Async };
                    store.engine.write(vec![put(&key, "", ts, &value)], durability).await.expect("write");
                }
                70..=89 => {
                    let mut batch: Vec<_> = (0..rng.usize(1..8))
                        .map(|i| put(&format!("s{}", rng.u32(..500)), "", ts + i as u64, "x"))
                        .collect();
                    store.engine.apply_streamed(&mut batch).expect("streamed");
                    ts += 8;
                }
                _ => {
                    store.engine.flush().await.expect("flush");
                }
            }
            ts += 1;
            assert_eq!(tally.bytes(), held(&stores), "step {step}, seed {seed}");
        }
        assert!(tally.bytes() > 0, "the writes left something in the memtables");
        // An engine dropped takes back what it counted.
        let gone = stores.pop().expect("three stores");
        drop(gone);
        assert_eq!(tally.bytes(), held(&stores), "after a drop, seed {seed}");
        // Moving an engine to another tally moves its bytes.
        let other = MemoryTally::default();
        let moved = stores[0].engine.memtables_held_bytes();
        stores[0].engine.share_memory_tally(other.clone());
        assert_eq!(other.bytes(), moved);
        assert_eq!(tally.bytes(), stores[1].engine.memtables_held_bytes(), "seed {seed}");
    });
}
