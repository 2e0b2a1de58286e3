//! The engine scenarios on glommio with real files and direct I/O.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/scenarios.rs"]
mod scenarios;

macro_rules! on_dma {
    ($name:ident) => {
        #[test]
        fn $name() {
            harness::run_dma(|disk, root| scenarios::$name(disk, root));
        }
    };
}

for_each_scenario!(on_dma);

/// A compaction of inputs many times the engine's memory budget streams: it holds one block per
/// input and one key's versions, and writes as it goes.
#[test]
fn a_compaction_of_inputs_many_times_memory_streams_with_bounded_buffers() {
    use nacre_storage::{CompactionOptions, Durability, ManualClock};
    harness::run_dma(|disk, root| async move {
        let options = nacre_storage::EngineOptions {
            memtable_flush_bytes: 1 << 20,
            block_cache_bytes: 256 << 10,
            ..harness::small_options()
        };
        let s = harness::Store::create(disk, &root, ManualClock::new(harness::START_MS), options.clone()).await;
        let value = |round: u64, i: u64| format!("{round}:{i:06}:{}", "v".repeat(1_000));
        const KEYS: u64 = 10_000;
        for round in 1..=2u64 {
            for chunk in (0..KEYS).collect::<Vec<_>>().chunks(500) {
                let batch = chunk
                    .iter()
                    .map(|i| harness::put(&format!("k{i:06}"), "", round * 10, &value(round, *i)))
                    .collect();
                s.engine.write(batch, Durability::Sync).await.expect("write");
                if s.engine.needs_flush() {
                    s.engine.flush().await.expect("flush");
                }
            }
        }
        s.engine.flush().await.expect("flush");
        let ids = s.engine.segment_ids();
        assert!(ids.len() >= 8, "many inputs: {ids:?}");
        let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
        let memory = options.block_cache_bytes as u64 + options.memtable_flush_bytes as u64;
        assert!(out.bytes_in >= 10 * memory, "inputs {} are many times memory {memory}", out.bytes_in);
        let per_input = nacre_storage::engine::READ_AHEAD_BYTES as u64 + 4096;
        assert!(
            out.peak_buffered_bytes <= ids.len() as u64 * per_input + (16 << 10)
                && out.peak_buffered_bytes * 4 < out.bytes_in,
            "buffers held one read-ahead per input and one key: peak {} for {} inputs",
            out.peak_buffered_bytes,
            ids.len()
        );
        assert_eq!((out.versions_in, out.versions_out), (2 * KEYS, 2 * KEYS), "max_versions 3 keeps both");
        assert_eq!(s.engine.segment_ids().len(), 1);
        for i in (0..KEYS).step_by(97) {
            assert_eq!(s.get(&format!("k{i:06}"), "").await, Some(value(2, i)));
        }
        let s = s.reopen().await;
        assert_eq!(s.get("k000042", "").await, Some(value(2, 42)));
    });
}
