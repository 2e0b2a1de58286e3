//! Compaction in nacred under sustained overwrites of the same few thousand keys. With skewed
//! heat (90% of the writes to 10% of the partitions), once the compaction queues are idle, hot
//! partitions hold fewer runs and have compacted more than cold ones, and every partition's runs
//! stay bounded. Under the default policy, a million overwrites leave segment bytes within a
//! stated factor of what the GC contract keeps. Every key reads its last value. Every figure is
//! read from the daemon's own stats. `nacre compact` reclaims expired values and deleted keys
//! at once, reports what it read and wrote, and refuses bad requests having changed nothing.

use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::{BatchOp, Durability, Get, Key, Put, Stat, TableSettings, WriteBatch};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TABLE: &str = "features";
const PARTITIONS: u32 = 20;
const HOT: [u32; 2] = [3, 12];
const KEYS_PER_PARTITION: usize = 100;
const VALUE_BYTES: usize = 100;
const BATCH: usize = 50;
/// Versions written by each test.
const WRITES: usize = 1_000_000;
/// Segment bytes may be this many times what the GC contract keeps (three versions a key): a
/// partition's newer runs may add up to its cold size ratio (4x) of its oldest before a merge,
/// and blocks are padded to pages.
const SPACE_FACTOR: u64 = 8;

/// What the GC contract keeps of `keys` keys: three versions each (each about key + value + 60
/// bytes of identity and framing).
fn contract_bytes(keys: usize) -> u64 {
    keys as u64 * 3 * (VALUE_BYTES as u64 + 60)
}

fn per_partition(stats: &[Stat], name: &str) -> BTreeMap<u32, u64> {
    stats.iter().filter(|s| s.name == name).filter_map(|s| Some((s.partition?, s.value))).collect()
}

/// Stat `name` summed over every partition of `server`.
fn partition_sum(runtime: &tokio::runtime::Runtime, server: &Server, name: &str) -> u64 {
    runtime.block_on(async {
        let stats = server.client().await.stats().await.expect("stats");
        per_partition(&stats, name).values().sum::<u64>()
    })
}

fn per_shard_sum(stats: &[Stat], name: &str) -> u64 {
    stats.iter().filter(|s| s.name == name && s.partition.is_none()).map(|s| s.value).sum()
}

fn mean(values: impl Iterator<Item = u64>) -> f64 {
    let values: Vec<u64> = values.collect();
    values.iter().sum::<u64>() as f64 / values.len().max(1) as f64
}

/// `KEYS_PER_PARTITION` partition keys for each partition.
fn keys_by_partition() -> BTreeMap<u32, Vec<String>> {
    let mut keys: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    let mut i = 0u64;
    while keys.len() < PARTITIONS as usize || keys.values().any(|k| k.len() < KEYS_PER_PARTITION) {
        let key = format!("entity-{i:08}");
        let p = nacre_wire::partition_of(key.as_bytes(), PARTITIONS);
        let of = keys.entry(p).or_default();
        if of.len() < KEYS_PER_PARTITION {
            of.push(key);
        }
        i += 1;
    }
    keys
}

/// Writes `batches(p)` batches of `BATCH` versions to each partition `p`'s keys, round robin, one
/// writer per partition (so each key's last value is known), async; returns the last values.
/// Writers are paced by the batches written in all: one with a tenth of the most batches writes
/// its next batch only once a tenth of all have been written, so the skew holds throughout the
/// run rather than the smaller writers finishing first.
async fn overwrite(
    client: &Arc<nacre_wire::Client>,
    keys: &BTreeMap<u32, Vec<String>>,
    batches: impl Fn(u32) -> usize,
) -> BTreeMap<String, Vec<u8>> {
    let started = Instant::now();
    let total: usize = keys.keys().map(|p| batches(*p)).sum();
    let written = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (p, ks) in keys {
        let (client, ks, p, batches, written) = (client.clone(), ks.clone(), *p, batches(*p), written.clone());
        tasks.push(tokio::spawn(async move {
            let mut last: BTreeMap<String, Vec<u8>> = BTreeMap::new();
            for b in 0..batches {
                // Batch b of n is due once b/n of all batches are written (less a margin, so
                // writers never wait on one another at the end).
                let due = (b * total / batches).saturating_sub(total / 20);
                while written.load(Ordering::Relaxed) < due {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let ops = (0..BATCH)
                    .map(|j| {
                        let key = &ks[(b * BATCH + j) % ks.len()];
                        let mut value = format!("{key}:{b}:{j}:").into_bytes();
                        value.resize(VALUE_BYTES, b'.');
                        last.insert(key.clone(), value.clone());
                        BatchOp::Put { key: Key::new(key.clone(), ""), value, ts: None, ttl_ms: None }
                    })
                    .collect();
                let mut batch = WriteBatch::new(TABLE, ops);
                batch.durability = Some(Durability::Async);
                client.write_batch(batch).await.unwrap_or_else(|e| panic!("partition {p} batch {b}: {e}"));
                written.fetch_add(1, Ordering::Relaxed);
            }
            last
        }));
    }
    let mut last = BTreeMap::new();
    for t in tasks {
        last.extend(t.await.expect("writer"));
    }
    println!("wrote {WRITES} versions of {} keys in {:?}", last.len(), started.elapsed());
    last
}

/// Stats once every shard's queue is idle with nothing more to plan (bounded wait).
async fn idle_stats(client: &nacre_wire::Client) -> Vec<Stat> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = client.stats().await.expect("stats");
        let queued = per_shard_sum(&stats, "compaction_queue_length");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let again = client.stats().await.expect("stats");
        let settled = per_partition(&stats, "compactions_total") == per_partition(&again, "compactions_total");
        if queued == 0 && per_shard_sum(&again, "compaction_queue_length") == 0 && settled {
            return again;
        }
        assert!(Instant::now() < deadline, "compaction queues still busy: {queued} queued");
    }
}

async fn every_key_reads_its_last_value(client: &nacre_wire::Client, last: &BTreeMap<String, Vec<u8>>) {
    for (key, value) in last {
        let row = client.get(Get::new(TABLE, Key::new(key.clone(), ""))).await.expect("get");
        assert_eq!(row.map(|r| r.value).as_ref(), Some(value), "{key}");
    }
}

#[test]
fn skewed_overwrites_compact_hot_partitions_eagerly_and_keep_every_partitions_runs_bounded() {
    // Small memtables so partitions flush often; a cold size ratio so high that only the run
    // count (whose threshold moves with heat) decides cold partitions' merges; heat that stays
    // saturated in hot partitions for the whole test.
    let config = format!(
        "partitions = {PARTITIONS}\n[memory]\nmemtable_budget_bytes = 262144\n\
         [compaction]\ncold_size_ratio_percent = 100000\nheat_half_life_ms = 600000\nhot_ops_per_sec = 500\n"
    );
    let server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let keys = keys_by_partition();
    runtime.block_on(async {
        let client = Arc::new(server.client().await);
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        // A hot partition's writer writes 81 batches for each of a cold partition's (90% to 10%).
        let batches_total = WRITES / BATCH;
        let hot_batches = batches_total * 9 / 10 / HOT.len();
        let cold_batches = batches_total / 10 / (PARTITIONS as usize - HOT.len());
        let last = overwrite(&client, &keys, |p| if HOT.contains(&p) { hot_batches } else { cold_batches }).await;
        let stats = idle_stats(&client).await;
        let runs = per_partition(&stats, "segment_count");
        let compactions = per_partition(&stats, "compactions_total");
        let bytes = per_partition(&stats, "segment_bytes");
        let is_hot = |p: &u32| HOT.contains(p);
        let hot_runs = mean(runs.iter().filter(|(p, _)| is_hot(p)).map(|(_, v)| *v));
        let cold_runs = mean(runs.iter().filter(|(p, _)| !is_hot(p)).map(|(_, v)| *v));
        let hot_compactions = mean(compactions.iter().filter(|(p, _)| is_hot(p)).map(|(_, v)| *v));
        let cold_compactions = mean(compactions.iter().filter(|(p, _)| !is_hot(p)).map(|(_, v)| *v));
        println!("runs: hot {hot_runs:.1} cold {cold_runs:.1}; compactions: hot {hot_compactions:.1} cold {cold_compactions:.1}");
        println!("runs {runs:?}\ncompactions {compactions:?}\nsegment bytes {bytes:?}");
        println!(
            "flushed {:?}\npaused turns {}",
            per_partition(&stats, "flush_bytes_total"),
            per_shard_sum(&stats, "compaction_paused_turns_total")
        );
        assert_eq!(runs.len(), PARTITIONS as usize, "every partition reports");
        assert!(hot_runs < cold_runs, "hot partitions keep fewer runs: {hot_runs} vs {cold_runs}");
        assert!(hot_compactions > cold_compactions, "hot partitions compact more: {hot_compactions} vs {cold_compactions}");
        assert!(runs.values().all(|r| *r <= 13), "runs stay bounded by the cold limit: {runs:?}");
        let hot_bytes: u64 = bytes.iter().filter(|(p, _)| is_hot(p)).map(|(_, v)| *v).sum();
        let hot_contract = contract_bytes(HOT.len() * KEYS_PER_PARTITION);
        assert!(
            hot_bytes <= SPACE_FACTOR * hot_contract,
            "hot partitions took 90% of {WRITES} writes and hold {hot_bytes} bytes; the contract keeps {hot_contract}"
        );
        every_key_reads_its_last_value(&client, &last).await;
    });
}

#[test]
fn a_million_overwrites_under_the_default_policy_keep_segment_bytes_near_what_gc_keeps() {
    let config = format!("partitions = {PARTITIONS}\n[memory]\nmemtable_budget_bytes = 1048576\n");
    let server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let keys = keys_by_partition();
    runtime.block_on(async {
        let client = Arc::new(server.client().await);
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let per_partition_batches = WRITES / BATCH / PARTITIONS as usize;
        let last = overwrite(&client, &keys, |_| per_partition_batches).await;
        let stats = idle_stats(&client).await;
        let runs = per_partition(&stats, "segment_count");
        let total: u64 = per_partition(&stats, "segment_bytes").values().sum();
        let flushed: u64 = per_partition(&stats, "flush_bytes_total").values().sum();
        let compacted: u64 = per_partition(&stats, "compaction_bytes_written_total").values().sum();
        let contract = contract_bytes(last.len());
        println!(
            "segment bytes {total}, GC contract about {contract}, flushed {flushed}, compacted {compacted}, \
             write amplification {:.2}, runs {runs:?}",
            (flushed + compacted) as f64 / flushed.max(1) as f64
        );
        // Flushes leave out what their own memtable pushes past three versions, so what they
        // write depends on how many overwrites each memtable held; a few times the contract is
        // the least a million overwrites through a small memtable budget can flush.
        assert!(flushed > 4 * contract, "the run flushed several copies of what it keeps: flushed {flushed}");
        assert!(
            total <= SPACE_FACTOR * contract,
            "segment bytes {total} over {SPACE_FACTOR}x the contract's {contract}"
        );
        assert!(runs.values().all(|r| *r <= 13), "runs stay bounded: {runs:?}");
        every_key_reads_its_last_value(&client, &last).await;
    });
}

/// Runs the `nacre` command line against `server`; returns (exit code, stdout, stderr).
fn nacre(server: &Server, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(nacre_tests::server::nacre_binary())
        .arg("--addr")
        .arg(server.addr().to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running nacre {args:?}: {e}"));
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (output.status.code().expect("nacre exits"), text(output.stdout), text(output.stderr))
}

#[test]
fn nacre_compact_reclaims_expired_values_and_deleted_keys_at_once_and_says_what_it_did() {
    // Background compaction off: only the asked-for one runs. No grace: a delete's tombstone is
    // reclaimable as soon as it is written.
    let config = "partitions = 4\n[compaction]\nenabled = false\ntombstone_grace_ms = 0\n".to_owned();
    let mut server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let value = vec![b'v'; 1_000];
    let key = |kind: &str, i: usize| Key::new(format!("{kind}{i:04}"), "");
    runtime.block_on(async {
        let client = server.client().await;
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as u64;
        for i in 0..300 {
            client.put(Put::new(TABLE, key("live", i), value.clone())).await.expect("live");
            // Stamped ten seconds ago with a five-second TTL: expired as it is written.
            let mut expired = Put::new(TABLE, key("expired", i), value.clone());
            expired.ts = Some(nacre_wire::Ts::from_millis(now_ms - 10_000));
            expired.ttl_ms = Some(5_000);
            client.put(expired).await.expect("expired");
            client.put(Put::new(TABLE, key("deleted", i), value.clone())).await.expect("deleted");
            client.delete(nacre_wire::Delete::new(TABLE, key("deleted", i))).await.expect("delete");
        }
        let get = |k: Key| client.get(Get::new(TABLE, k));
        assert!(get(key("expired", 7)).await.expect("get").is_none(), "an expired value is never returned");
        assert!(get(key("deleted", 7)).await.expect("get").is_none());
    });
    // A clean restart flushes the memtables: everything is in segments now.
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success(), "{}", server.log_tail());
    server.restart();
    let segment_bytes = |server: &Server| partition_sum(&runtime, server, "segment_bytes");
    let before = segment_bytes(&server);

    let (code, stdout, stderr) = nacre(&server, &["compact", "nothere", "--wait"]);
    assert_eq!(code, 2, "an unknown table is an error: {stdout} {stderr}");
    assert!(stderr.contains("nothere"), "{stderr}");
    let (code, _, stderr) = nacre(&server, &["compact", TABLE, "--partition", "4"]);
    assert_eq!(code, 2, "partition 4 of 4 does not exist: {stderr}");
    assert_eq!(segment_bytes(&server), before, "refused requests changed nothing");

    let (code, stdout, stderr) = nacre(&server, &["compact", TABLE, "--wait", "--json"]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(report["partitions"], 4, "{report}");
    assert_eq!(report["waited"], true);
    let (bytes_in, bytes_out) =
        (report["bytes_in"].as_u64().expect("bytes_in"), report["bytes_out"].as_u64().expect("bytes_out"));
    assert_eq!(bytes_in, before, "every segment was an input: {report}");
    let after = segment_bytes(&server);
    assert_eq!(after, bytes_out, "what was written is what is left");
    // Two thirds of the values (the expired and the deleted) are gone; a third stays.
    assert!(after * 2 < before, "reclaimed: {before} -> {after}");
    assert!(after > 300 * 1_000, "the live values stay: {after}");
    runtime.block_on(async {
        let client = server.client().await;
        for i in [0, 150, 299] {
            let live = client.get(Get::new(TABLE, key("live", i))).await.expect("get");
            assert_eq!(live.map(|r| r.value), Some(value.clone()));
            assert!(client.get(Get::new(TABLE, key("expired", i))).await.expect("get").is_none());
            let history = client.versions(nacre_wire::Versions::new(TABLE, key("deleted", i))).await.expect("versions");
            assert!(history.versions.is_empty(), "the deleted key is reclaimed whole: {history:?}");
        }
    });
    // Writes still in memtables are flushed first and compacted with the rest: one run a
    // partition, nothing left in memory.
    runtime.block_on(async {
        let client = server.client().await;
        for i in 0..100 {
            client.put(Put::new(TABLE, key("fresh", i), value.clone())).await.expect("fresh");
        }
    });
    let (code, stdout, stderr) = nacre(&server, &["compact", TABLE, "--wait", "--json"]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert!(report["bytes_in"].as_u64().expect("bytes_in") > after + 100 * 1_000, "the fresh writes went in: {report}");
    runtime.block_on(async {
        let stats = server.client().await.stats().await.expect("stats");
        let memtables = per_partition(&stats, "memtable_bytes");
        assert!(memtables.values().all(|b| *b == 0), "every memtable flushed: {memtables:?}");
        let runs = per_partition(&stats, "segment_count");
        assert!(runs.values().all(|n| *n == 1), "one run a partition: {runs:?}");
    });
    // Without --wait it is queued, and says so.
    let (code, stdout, _) = nacre(&server, &["compact", TABLE, "--partition", "1"]);
    assert_eq!((code, stdout.trim()), (0, "queued a full compaction of 1 partitions"));
}

#[test]
fn a_dropped_tables_bytes_are_purged_by_compaction_after_a_restart() {
    let config = "partitions = 4\n[compaction]\nenabled = false\n".to_owned();
    let mut server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let value = vec![b'v'; 1_000];
    let key = |i: usize| Key::new(format!("entity{i:04}"), "");
    runtime.block_on(async {
        let client = server.client().await;
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        client.create_table("gone", TableSettings::default()).await.expect("create_table");
        for i in 0..300 {
            client.put(Put::new(TABLE, key(i), value.clone())).await.expect("live");
            for _ in 0..2 {
                client.put(Put::new("gone", key(i), value.clone())).await.expect("to be dropped");
            }
        }
        client.drop_table("gone").await.expect("drop_table");
    });
    // A clean restart flushes every memtable: the dropped table's versions share each
    // partition's run with the live table's, and the engines learn of the drop from the catalog.
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success(), "{}", server.log_tail());
    server.restart();
    let segment_bytes = |server: &Server| partition_sum(&runtime, server, "segment_bytes");
    let before = segment_bytes(&server);
    assert!(before > 900 * 1_000, "every version is on disk: {before}");
    let (code, stdout, stderr) = nacre(&server, &["compact", TABLE, "--wait", "--json"]);
    assert_eq!(code, 0, "{stdout} {stderr}");
    let after = segment_bytes(&server);
    assert!(after * 2 < before, "the dropped table's two thirds are purged: {before} -> {after}");
    let garbage = partition_sum(&runtime, &server, "compaction_garbage_versions_total");
    assert_eq!(garbage, 600, "both versions of each of the dropped table's 300 keys");
    assert!(after > 300 * 1_000, "the live table's values stay: {after}");
    runtime.block_on(async {
        let client = server.client().await;
        for i in [0, 150, 299] {
            let live = client.get(Get::new(TABLE, key(i))).await.expect("get");
            assert_eq!(live.map(|r| r.value), Some(value.clone()));
        }
        // A table created now takes a new id: nothing of the dropped one shows under it.
        client.create_table("gone", TableSettings::default()).await.expect("create again");
        assert!(client.get(Get::new("gone", key(7))).await.expect("get").is_none());
    });
}
