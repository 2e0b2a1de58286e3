//! Engine scenarios written once over any [`Disk`], run on the simulated disk and on glommio
//! with real files and direct I/O.

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use super::harness::*;
use nacre_storage::io::Disk;
use nacre_storage::{
    CompactionOptions, Durability, Error, Key, KeyRef, Limit, ManualClock, Origin, OriginKind, Payload, ReadAt,
    ScanRequest, TableId, TableSettings, Ts, VersionId, Watermark,
};
use std::path::PathBuf;

fn key(pk: &str, sk: &str) -> Key {
    Key::new(TABLE, pk.as_bytes(), sk.as_bytes())
}

async fn history<D: Disk>(s: &Store<D>, pk: &str, sk: &str) -> Vec<(Ts, OriginKind, Option<Vec<u8>>)> {
    let k = key(pk, sk);
    s.engine
        .versions(k.as_ref())
        .await
        .expect("versions")
        .versions
        .into_iter()
        .map(|v| {
            let value = match v.payload {
                Payload::Value { value, .. } => Some(value),
                Payload::Tombstone => None,
            };
            (v.id.ts, v.id.origin.kind, value)
        })
        .collect()
}

pub async fn put_get_overwrite_delete_survive_flush_and_reopen<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.put("user1", "", 10, "a").await;
    s.put("user1", "", 20, "b").await;
    s.put("user2", "x", 10, "c").await;
    assert_eq!(s.get("user1", "").await.as_deref(), Some("b"));
    s.engine.flush().await.expect("flush");
    s.put("user1", "", 15, "older, arrives late").await;
    s.engine.write(vec![delete("user2", "x", 11)], Durability::Sync).await.expect("delete");
    assert_eq!(s.get("user1", "").await.as_deref(), Some("b"), "a late older write does not win");
    assert_eq!(s.get("user2", "x").await, None);
    let s = s.reopen().await;
    assert_eq!(s.get("user1", "").await.as_deref(), Some("b"));
    assert_eq!(s.get("user2", "x").await, None);
    assert_eq!(history(&s, "user1", "").await.len(), 3);
    s.engine.flush().await.expect("flush");
    let s = s.reopen().await;
    assert_eq!(s.get("user2", "x").await, None);
    assert_eq!(s.get("user1", "").await.as_deref(), Some("b"));
    assert_eq!(s.get("nobody", "").await, None);
}

/// [`nacre_storage::Engine::get_cached`] of `pk`, its value as text.
fn cached<D: Disk>(s: &Store<D>, pk: &str) -> Option<Option<String>> {
    s.engine
        .get_cached(key(pk, "").as_ref(), ReadAt::Latest)
        .map(|row| row.expect("get_cached").map(|r| String::from_utf8(r.value).expect("utf-8")))
}

pub async fn a_read_without_io_answers_as_a_read_does_and_declines_what_needs_the_disk<D: Disk>(
    disk: D,
    root: PathBuf,
) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.put("in-memory", "", 10, "a").await;
    assert_eq!(cached(&s, "in-memory"), Some(Some("a".to_owned())), "a memtable hit needs no I/O");
    assert_eq!(cached(&s, "nobody"), Some(None), "nothing anywhere: answered, absent");
    s.put("flushed", "", 10, "b").await;
    s.engine.flush().await.expect("flush");
    // Reopened, the cache is empty and both keys live in a segment.
    let s = s.reopen().await;
    let misses = s.engine.stats().cache_misses;
    assert_eq!(cached(&s, "flushed"), None, "its block is not cached: declined");
    assert_eq!(s.engine.stats().cache_misses, misses, "declining counts no miss: the read that follows does");
    assert_eq!(s.get("flushed", "").await.as_deref(), Some("b"));
    assert_eq!(s.engine.stats().cache_misses, misses + 1);
    let hits = s.engine.stats().cache_hits;
    assert_eq!(cached(&s, "flushed"), Some(Some("b".to_owned())), "its block is cached now");
    assert_eq!(s.engine.stats().cache_hits, hits + 1);
    s.put("flushed", "", 20, "newer, in memory").await;
    assert_eq!(cached(&s, "flushed"), Some(Some("newer, in memory".to_owned())));
    s.engine.write(vec![delete("in-memory", "", 11)], Durability::Sync).await.expect("delete");
    assert_eq!(cached(&s, "in-memory"), Some(None), "a tombstone in memory hides the value in the segment");
}

pub async fn reapplying_a_version_is_a_no_op_even_across_flush_and_reopen<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let first = s.put("k", "", 5, "v").await;
    assert_eq!((first.applied, first.duplicates), (1, 0));
    let again = s.put("k", "", 5, "v").await;
    assert_eq!((again.applied, again.duplicates), (0, 1));
    s.engine.flush().await.expect("flush");
    s.put("k", "", 5, "v").await;
    let s = s.reopen().await;
    s.put("k", "", 5, "v").await;
    s.engine.flush().await.expect("flush");
    let ids = s.engine.segment_ids();
    s.engine.compact(&ids, CompactionOptions::default()).await.expect("compact");
    assert_eq!(history(&s, "k", "").await.len(), 1, "one version, however often it was applied");
}

pub async fn tie_rule_orders_equal_timestamps_by_origin<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let v = |kind, value: &str| entry("k", "", 50, kind, Payload::Value { value: value.into(), expires_at_ms: None });
    s.engine.write(vec![v(OriginKind::Bulk, "bulk")], Durability::Sync).await.expect("w");
    s.engine.flush().await.expect("flush");
    s.engine.write(vec![v(OriginKind::Direct, "direct")], Durability::Sync).await.expect("w");
    s.engine.flush().await.expect("flush");
    s.engine.write(vec![v(OriginKind::Stream, "stream")], Durability::Sync).await.expect("w");
    assert_eq!(s.get("k", "").await.as_deref(), Some("direct"));
    let bulk_first =
        nacre_storage::TieRule::new([OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct]).expect("a permutation");
    s.engine.define_table(TABLE, TableSettings { tie_rule: bulk_first, ..TableSettings::default() });
    assert_eq!(s.get("k", "").await.as_deref(), Some("bulk"), "the rule is applied at read time");
    let kinds: Vec<_> = history(&s, "k", "").await.into_iter().map(|h| h.1).collect();
    assert_eq!(kinds, vec![OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct]);
}

pub async fn as_of_reads_see_the_past<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.put("k", "", 10, "ten").await;
    s.engine.flush().await.expect("flush");
    s.put("k", "", 20, "twenty").await;
    s.engine.write(vec![delete("k", "", 30)], Durability::Sync).await.expect("delete");
    let at = |ms| ReadAt::AsOf(put("k", "", ms, "").version.id.ts);
    let get = |r| {
        let k = key("k", "");
        let engine = &s.engine;
        async move { engine.get(k.as_ref(), r).await.expect("get").map(|row| row.value) }
    };
    assert_eq!(get(at(9)).await, None);
    assert_eq!(get(at(10)).await, Some(b"ten".to_vec()));
    assert_eq!(get(at(25)).await, Some(b"twenty".to_vec()));
    assert_eq!(get(at(30)).await, None);
    assert_eq!(get(ReadAt::Latest).await, None);
}

pub async fn expiry_hides_values_without_exposing_older_ones<D: Disk>(disk: D, root: PathBuf) {
    let clock = ManualClock::new(START_MS);
    let s = Store::create(disk, &root, clock.clone(), small_options()).await;
    s.put("k", "", 10, "old").await;
    let mut e = put("k", "", 20, "short-lived");
    e.version.payload = Payload::Value { value: b"short-lived".to_vec(), expires_at_ms: Some(START_MS + 1_000) };
    s.engine.write(vec![e], Durability::Sync).await.expect("write");
    assert_eq!(s.get("k", "").await.as_deref(), Some("short-lived"));
    clock.advance(1_000);
    assert_eq!(s.get("k", "").await, None, "expired, and the older value stays hidden");
    s.engine.flush().await.expect("flush");
    let ids = s.engine.segment_ids();
    s.engine.compact(&ids, CompactionOptions { expire_values: true, ..Default::default() }).await.expect("compact");
    assert_eq!(s.get("k", "").await, None, "compaction turned it into a tombstone, still hiding the old value");
    s.engine.define_table(TABLE, TableSettings { default_ttl_ms: Some(500), ..TableSettings::default() });
    s.put("ttl", "", 1_001_000, "defaulted").await;
    assert_eq!(s.get("ttl", "").await.as_deref(), Some("defaulted"));
    clock.advance(500);
    assert_eq!(s.get("ttl", "").await, None, "the table's default TTL counts from the version's ts");
}

pub async fn scans_page_forward_and_reverse_across_memtable_and_segments<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    for i in 0..30u64 {
        s.put("p", &format!("{i:03}"), 10, &format!("v{i}")).await;
        if i % 7 == 0 {
            s.engine.flush().await.expect("flush");
        }
    }
    s.put("p", "005", 20, "newer").await;
    s.engine.write(vec![delete("p", "006", 20)], Durability::Sync).await.expect("delete");
    s.put("q", "000", 10, "other partition key").await;
    s.put("o", "999", 10, "other partition key").await;
    for reverse in [false, true] {
        let mut seen = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let req = ScanRequest {
                table: TABLE,
                partition_key: b"p".to_vec(),
                from: Some(b"002".to_vec()),
                to: Some(b"025".to_vec()),
                limit: 4,
                reverse,
                cursor: cursor.clone(),
                at: ReadAt::Latest,
            };
            let page = s.engine.scan(&req).await.expect("scan");
            seen.extend(
                page.rows.iter().map(|r| (String::from_utf8(r.sort_key.clone()).expect("utf8"), r.value.clone())),
            );
            pages += 1;
            assert!(pages < 100, "scan must terminate");
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut expected: Vec<(String, Vec<u8>)> = (2..=25u64)
            .filter(|i| *i != 6)
            .map(|i| (format!("{i:03}"), if i == 5 { b"newer".to_vec() } else { format!("v{i}").into_bytes() }))
            .collect();
        if reverse {
            expected.reverse();
        }
        assert_eq!(seen, expected, "reverse={reverse}");
    }
}

pub async fn compaction_preserves_versions_and_origins_and_drops_only_what_options_allow<D: Disk>(
    disk: D,
    root: PathBuf,
) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    for ts in 1..=5u64 {
        s.put("k", "", ts * 10, &format!("v{ts}")).await;
        s.put(&format!("other{ts}"), "", ts, "x").await;
        s.engine.flush().await.expect("flush");
    }
    let before = history(&s, "k", "").await;
    assert_eq!(before.len(), 5);
    let ids = s.engine.segment_ids();
    let out = s.engine.compact(&ids, CompactionOptions::default()).await.expect("compact");
    assert_eq!((out.versions_in, out.versions_out), (10, 10));
    assert_eq!(s.engine.segment_ids().len(), 1);
    assert_eq!(history(&s, "k", "").await, before, "keep-all compaction keeps every version");
    let ids = s.engine.segment_ids();
    s.engine.compact(&ids, CompactionOptions { enforce_retention: true, ..Default::default() }).await.expect("compact");
    let after = history(&s, "k", "").await;
    assert_eq!(after, before[..3].to_vec(), "max_versions = 3 keeps the three greatest");
    let s = s.reopen().await;
    assert_eq!(history(&s, "k", "").await, after);
    assert_eq!(s.get("other3", "").await.as_deref(), Some("x"));
}

/// A merge of overwrites whose inputs are several times the block cache, but whose output (one
/// version a key) fits it, leaves that output cached: reads after it do not all miss.
pub async fn a_compaction_output_that_fits_the_cache_stays_cached_whatever_its_inputs_size<D: Disk>(
    disk: D,
    root: PathBuf,
) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.engine.define_table(TABLE, TableSettings { max_versions: 1, ..TableSettings::default() });
    const KEYS: u64 = 300;
    let value = |round: u64, i: u64| format!("{round}:{i:04}:{}", "v".repeat(300));
    for round in 1..=10u64 {
        let batch = (0..KEYS).map(|i| put(&format!("k{i:04}"), "", round * 10, &value(round, i))).collect();
        s.engine.write(batch, Durability::Sync).await.expect("write");
        s.engine.flush().await.expect("flush");
    }
    let ids = s.engine.segment_ids();
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    let cache = small_options().block_cache_bytes as u64;
    assert!(out.bytes_in > 4 * cache, "inputs {} are several times the cache {cache}", out.bytes_in);
    assert!(out.bytes_out < cache, "the output {} fits the cache {cache}", out.bytes_out);
    let misses = s.engine.stats().cache_misses;
    for i in 0..KEYS {
        assert_eq!(s.get(&format!("k{i:04}"), "").await, Some(value(10, i)));
    }
    assert_eq!(s.engine.stats().cache_misses, misses, "every read of the output hit the cache");
}

pub async fn tombstones_and_expired_values_are_reclaimed_only_bottommost_and_after_their_grace<D: Disk>(
    disk: D,
    root: PathBuf,
) {
    let clock = ManualClock::new(START_MS);
    // Test versions are stamped 1,000,000 ms before START_MS and after: a grace of twice that
    // keeps every tombstone until the clock moves.
    let options = nacre_storage::EngineOptions { tombstone_grace_ms: 2_000_000, ..small_options() };
    let s = Store::create(disk, &root, clock.clone(), options).await;
    let ttl = |pk: &str, ts: u64, expires_at_ms: u64| {
        entry(
            pk,
            "",
            ts,
            OriginKind::Direct,
            Payload::Value { value: vec![b'x'; 2_000], expires_at_ms: Some(expires_at_ms) },
        )
    };
    for i in 0..50u64 {
        let pk = format!("gone{i:02}");
        s.put(&pk, "", 10, "v").await;
        s.engine.write(vec![delete(&pk, "", 20)], Durability::Sync).await.expect("delete");
        s.engine.write(vec![ttl(&format!("ttl{i:02}"), 30, START_MS + 1_000)], Durability::Sync).await.expect("ttl");
    }
    s.put("kept", "", 40, "here").await;
    s.engine.flush().await.expect("flush");
    // An older run elsewhere in the key space, and one over it: a merge of only the first
    // is not bottommost.
    let ids = s.engine.segment_ids();
    s.put("zzz", "", 5, "far").await;
    s.engine.flush().await.expect("flush");
    let before = s.engine.stats().segment_bytes;
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    assert!(out.bottommost, "nothing else holds gone*..ttl*: {out:?}");
    assert_eq!(out.tombstones_reclaimed, 0, "within the grace period nothing is reclaimed");
    assert_eq!(s.get("gone07", "").await, None);
    assert_eq!(s.get("ttl07", "").await.as_deref(), Some(&*"x".repeat(2_000)), "not expired yet");

    // The values expire: at once unreadable, and their bytes go at the next compaction (their
    // tombstones stay: still inside the grace period).
    clock.advance(1_000);
    assert_eq!(s.get("ttl07", "").await, None, "expired values stop being returned at once");
    let ids = s.engine.segment_ids();
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!(out.tombstones_reclaimed, 0);
    let after_expiry = s.engine.stats().segment_bytes;
    assert!(after_expiry < before / 2, "the expired values' bytes are reclaimed: {before} -> {after_expiry}");
    assert_eq!(s.get("ttl07", "").await, None);

    // Past the grace period, a merge that is not bottommost keeps the tombstones...
    clock.advance(2_000_000);
    s.put("aaa", "", 50, "under everything").await;
    s.put("zzzz", "", 50, "over everything").await;
    s.engine.flush().await.expect("flush");
    let wide = *s.engine.segment_ids().first().expect("the new flush");
    let rest: Vec<_> = s.engine.segment_ids().into_iter().filter(|id| *id != wide).collect();
    let out = s.engine.compact(&rest, CompactionOptions::collect_garbage()).await.expect("compact");
    assert!(!out.bottommost && out.tombstones_reclaimed == 0, "{out:?}");
    // ... and a bottommost one reclaims them, each key gone whole (the value under a delete
    // with it).
    let ids = s.engine.segment_ids();
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    assert!(out.bottommost);
    assert_eq!(out.tombstones_reclaimed, 100, "50 deletes and 50 expired values: {out:?}");
    assert_eq!(out.versions_out, 4, "kept, zzz, aaa, zzzz");
    assert_eq!(history(&s, "gone07", "").await, Vec::new());
    assert_eq!(s.get("gone07", "").await, None);
    assert_eq!(s.get("kept", "").await.as_deref(), Some("here"));
    let s = s.reopen().await;
    assert_eq!(s.get("kept", "").await.as_deref(), Some("here"));
    assert_eq!(s.get("ttl07", "").await, None);
}

pub async fn a_tombstone_is_kept_while_a_memtable_holds_its_key<D: Disk>(disk: D, root: PathBuf) {
    let clock = ManualClock::new(START_MS);
    let options = nacre_storage::EngineOptions { tombstone_grace_ms: 0, ..small_options() };
    let s = Store::create(disk, &root, clock, options).await;
    s.engine.write(vec![delete("k", "", 20)], Durability::Sync).await.expect("delete");
    s.engine.flush().await.expect("flush");
    // A late write stamped before the tombstone, still in memory: the tombstone must hide it.
    s.put("k", "", 10, "older").await;
    let ids = s.engine.segment_ids();
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!(out.tombstones_reclaimed, 0, "{out:?}");
    assert_eq!(s.get("k", "").await, None, "the tombstone still hides the older write");
}

/// A put of `pk` into `table` (the harness's other helpers write to [`TABLE`]).
fn put_in(table: TableId, pk: &str, ts: u64, value: &str) -> nacre_storage::Entry {
    let mut e = put(pk, "", ts, value);
    e.key = Key::new(table, pk.as_bytes(), b"");
    e
}

/// GC rule 5: once the engine is told a table is dropped, writes of it are refused, the planner
/// removes a run holding only that table first, without reading it, and a merge purges its
/// versions from a run it shares with live tables. After a restart the engine must be told
/// again: a merge meeting a table it knows neither way fails with a typed error and changes
/// nothing.
pub async fn a_dropped_tables_versions_are_purged_and_its_own_runs_removed_unread<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let (dropped, other) = (TableId(2), TableId(3));
    s.engine.define_table(dropped, TableSettings::default());
    s.engine.define_table(other, TableSettings::default());
    let value = "d".repeat(500);
    let alone: Vec<_> = (0..200).map(|i| put_in(dropped, &format!("a{i:03}"), 10, &value)).collect();
    s.engine.write(alone, Durability::Sync).await.expect("write");
    s.engine.flush().await.expect("flush");
    let only_dropped = s.engine.segment_ids();
    let mut shared: Vec<_> = (0..100).map(|i| put(&format!("live{i:03}"), "", 20, "kept")).collect();
    shared.extend((0..100).map(|i| put_in(dropped, &format!("b{i:03}"), 20, &value)));
    shared.extend((0..50).map(|i| put_in(other, &format!("c{i:03}"), 20, "other")));
    s.engine.write(shared, Durability::Sync).await.expect("write");
    s.engine.flush().await.expect("flush");
    let mixed: Vec<_> = s.engine.segment_ids().into_iter().filter(|id| !only_dropped.contains(id)).collect();
    assert_eq!((only_dropped.len(), mixed.len()), (1, 1));
    let live_debt = s.engine.compaction_snapshot().debt();

    s.engine.drop_table(dropped);
    let refused = s.engine.write(vec![put_in(dropped, "late", 30, "x")], Durability::Sync).await;
    assert!(matches!(refused, Err(Error::UnknownTable(t)) if t == dropped), "{refused:?}");
    let snapshot = s.engine.compaction_snapshot();
    let debt = snapshot.debt();
    assert!(debt.reclaimable_bytes > live_debt.reclaimable_bytes, "{live_debt:?} -> {debt:?}");
    let task = nacre_storage::compaction::plan(
        &snapshot,
        nacre_storage::compaction::HeatRates::default(),
        &nacre_storage::compaction::Policy::default(),
    )
    .expect("a run of a dropped table alone is planned");
    assert_eq!((task.reason, task.inputs.clone()), (nacre_storage::compaction::Reason::DeadRuns, only_dropped));
    let before = s.engine.stats().segment_bytes;
    let out = s.engine.compact(&task.inputs, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!((out.output.is_none(), out.versions_in, out.garbage_versions), (true, 200, 200), "{out:?}");
    assert_eq!(s.engine.segment_ids(), mixed, "the dead run is gone");
    assert!(s.engine.stats().segment_bytes < before / 2, "its bytes are reclaimed");

    let out = s.engine.compact(&mixed, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!((out.versions_out, out.garbage_versions), (150, 100), "{out:?}");
    assert_eq!(s.get("live042", "").await.as_deref(), Some("kept"));

    // A restart forgets what the engine was told; table 3 is neither defined nor dropped.
    let s = s.reopen().await;
    let ids = s.engine.segment_ids();
    let unknown = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await;
    assert!(matches!(unknown, Err(Error::UnknownTable(t)) if t == other), "{unknown:?}");
    assert_eq!(s.engine.segment_ids(), ids, "the failed merge changed nothing");
    s.engine.drop_table(dropped);
    s.engine.drop_table(other);
    let out = s.engine.compact(&ids, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!((out.versions_out, out.garbage_versions), (100, 50), "{out:?}");
    let s = s.reopen().await;
    assert_eq!(s.get("live042", "").await.as_deref(), Some("kept"));
}

/// GC rule 6: what a watermark hides is collected once the watermark is older than the
/// tombstone grace period and its load is not kept apart (pinned, protected, hidden): a run
/// wholly under it goes unread, a merge drops the hidden versions of a run it shares with newer
/// ones, and every latest read is as before. The watermark stays, so a late write under it
/// stays hidden; as-of reads before its point lose what it hid.
pub async fn versions_under_a_watermark_are_collected_after_its_grace_unless_its_load_is_kept_apart<D: Disk>(
    disk: D,
    root: PathBuf,
) {
    let clock = ManualClock::new(START_MS);
    let options = nacre_storage::EngineOptions { tombstone_grace_ms: 2_000_000, ..small_options() };
    let s = Store::create(disk, &root, clock.clone(), options).await;
    let visibility = nacre_storage::bulk::LoadVisibility::default();
    s.engine.set_load_visibility(visibility.clone());
    let old: Vec<_> = (0..100).map(|i| put(&format!("a{i:03}"), "", 10, "old")).collect();
    s.engine.write(old, Durability::Sync).await.expect("write");
    s.engine.flush().await.expect("flush");
    let under = s.engine.segment_ids();
    let mut mixed: Vec<_> = (0..50).map(|i| put(&format!("b{i:03}"), "", 10, "old")).collect();
    mixed.extend((0..10).map(|i| put(&format!("a{i:03}"), "", 30, "new")));
    s.engine.write(mixed, Durability::Sync).await.expect("write");
    s.engine.flush().await.expect("flush");
    let shared: Vec<_> = s.engine.segment_ids().into_iter().filter(|id| !under.contains(id)).collect();
    // A replace load 9 at ts 20: everything older is hidden from latest reads.
    let point = VersionId {
        ts: Ts::from_millis(START_MS - 1_000_000 + 20),
        origin: Origin { kind: OriginKind::Bulk, source_id: 9, seq: 0 },
    };
    s.engine.add_watermark(TABLE, Watermark { point }).await.expect("watermark");
    assert_eq!(s.get("a050", "").await, None);
    assert_eq!(s.get("a005", "").await.as_deref(), Some("new"));
    let as_of_15 = ReadAt::AsOf(Ts::from_millis(START_MS - 1_000_000 + 15));
    let old_a050 = s.engine.get(key("a050", "").as_ref(), as_of_15).await.expect("get");
    assert_eq!(old_a050.map(|r| r.value), Some(b"old".to_vec()), "before the point, the old value shows");

    let plan = |s: &Store<D>| {
        nacre_storage::compaction::plan(
            &s.engine.compaction_snapshot(),
            nacre_storage::compaction::HeatRates::default(),
            &nacre_storage::compaction::Policy::default(),
        )
    };
    assert!(s.engine.compaction_snapshot().garbage.is_empty(), "inside the grace period nothing is garbage");
    assert_eq!(plan(&s), None);
    clock.advance(2_000_000);
    visibility.pin(9);
    assert!(s.engine.compaction_snapshot().garbage.is_empty(), "a load kept apart keeps what it hides");
    visibility.unpin(9);
    let task = plan(&s).expect("a dead run");
    assert_eq!((task.reason, task.inputs.clone()), (nacre_storage::compaction::Reason::DeadRuns, under));
    let out = s.engine.compact(&task.inputs, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!((out.output.is_none(), out.garbage_versions), (true, 100), "{out:?}");
    let out = s.engine.compact(&shared, CompactionOptions::collect_garbage()).await.expect("compact");
    assert_eq!((out.versions_out, out.garbage_versions), (10, 50), "{out:?}");
    assert_eq!(s.get("a050", "").await, None);
    assert_eq!(s.get("b010", "").await, None);
    assert_eq!(s.get("a005", "").await.as_deref(), Some("new"));
    assert_eq!(s.engine.get(key("a050", "").as_ref(), as_of_15).await.expect("get"), None, "collected");

    // The watermark outlives what it hid: a late write under it stays hidden, after a restart too.
    let s = s.reopen().await;
    s.put("a077", "", 15, "late").await;
    assert_eq!(s.get("a077", "").await, None);
    assert_eq!(s.get("a005", "").await.as_deref(), Some("new"));
}

/// Records what a merge reports to its pacer.
#[derive(Default)]
struct RecordingPacer(std::cell::RefCell<Vec<u64>>);

impl nacre_storage::Pacer for RecordingPacer {
    fn pace(&self, bytes: u64) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>> {
        self.0.borrow_mut().push(bytes);
        Box::pin(std::future::ready(()))
    }
}

/// A paced merge reports its bytes read and written as it goes, a step apart, so a pacer can
/// spread them over time: not once at the end.
pub async fn a_paced_merge_reports_its_io_to_the_pacer_step_by_step<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let value = |round: u64, i: u64| format!("{round}:{i:04}:{}", "v".repeat(1_000));
    for round in 1..=4u64 {
        let batch = (0..300).map(|i| put(&format!("k{i:04}"), "", round * 10, &value(round, i))).collect();
        s.engine.write(batch, Durability::Sync).await.expect("write");
        s.engine.flush().await.expect("flush");
    }
    let ids = s.engine.segment_ids();
    let pacer = RecordingPacer::default();
    let out = s.engine.compact_paced(&ids, CompactionOptions::default(), &pacer).await.expect("compact");
    let calls = pacer.0.into_inner();
    let step = nacre_storage::PACE_STEP_BYTES;
    let moved = out.bytes_in + out.bytes_out;
    assert!(moved > 8 * step, "enough I/O for several steps: {out:?}");
    assert!(calls.len() as u64 >= moved / step / 2, "{} calls for {moved} bytes: {calls:?}", calls.len());
    assert!(calls.windows(2).all(|w| w[1] >= w[0] + step), "a step apart: {calls:?}");
    assert!(calls.last().is_some_and(|last| *last <= moved), "{calls:?} {moved}");
    assert_eq!(s.get("k0042", "").await, Some(value(4, 42)));
}

pub async fn watermarks_supersede_older_versions_until_withdrawn<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.put("before", "", 10, "old").await;
    s.put("after", "", 30, "new").await;
    s.engine.flush().await.expect("flush");
    let point = VersionId {
        ts: put("x", "", 20, "").version.id.ts,
        origin: Origin { kind: OriginKind::Bulk, source_id: 9, seq: 0 },
    };
    let mark = Watermark { point };
    s.engine.add_watermark(TABLE, mark).await.expect("watermark");
    s.engine
        .write(
            vec![entry(
                "loaded",
                "",
                20,
                OriginKind::Bulk,
                Payload::Value { value: b"bulk".to_vec(), expires_at_ms: None },
            )],
            Durability::Sync,
        )
        .await
        .expect("w");
    assert_eq!(s.get("before", "").await, None, "superseded by the watermark");
    assert_eq!(s.get("after", "").await.as_deref(), Some("new"), "newer than the watermark survives");
    assert_eq!(s.get("loaded", "").await, None, "source 1 < source 9 at equal ts and kind: below the mark");
    let s = s.reopen().await;
    assert_eq!(s.get("before", "").await, None, "the watermark is durable");
    s.engine.remove_watermark(TABLE, mark).await.expect("withdraw");
    assert_eq!(s.get("before", "").await.as_deref(), Some("old"), "withdrawn: the old value shows again");
    let s = s.reopen().await;
    assert_eq!(s.get("before", "").await.as_deref(), Some("old"));
}

pub async fn bad_input_gets_typed_errors_and_changes_nothing<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let limits = s.options.limits;
    let big = "x".repeat(limits.max_value_bytes + 1);
    let err = s.engine.write(vec![put("k", "", 1, "fine"), put("k2", "", 1, &big)], Durability::Sync).await;
    assert!(matches!(err, Err(Error::LimitExceeded { what: Limit::Value, .. })), "{err:?}");
    assert_eq!(s.get("k", "").await, None, "a rejected batch changes nothing");
    let long_key = "k".repeat(limits.max_partition_key_bytes + 1);
    let err = s.engine.write(vec![put(&long_key, "", 1, "v")], Durability::Sync).await;
    assert!(matches!(err, Err(Error::LimitExceeded { what: Limit::PartitionKey, .. })), "{err:?}");
    let mut future = put("k", "", 1, "v");
    future.version.id.ts = Ts::from_millis(START_MS + 3_600_000);
    let err = s.engine.write(vec![future], Durability::Sync).await;
    assert!(matches!(err, Err(Error::TimestampTooFarInFuture { .. })), "{err:?}");
    let mut other = put("k", "", 1, "v");
    other.key.table = TableId(99);
    let err = s.engine.write(vec![other], Durability::Sync).await;
    assert!(matches!(err, Err(Error::UnknownTable(TableId(99)))), "{err:?}");
    let err = s.engine.get(KeyRef { table: TableId(99), partition_key: b"k", sort_key: b"" }, ReadAt::Latest).await;
    assert!(matches!(err, Err(Error::UnknownTable(_))), "{err:?}");
    let err = s.engine.write(vec![], Durability::Sync).await;
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    assert_eq!(s.engine.stats().memtable_entries, 0);
    s.put("k", "", 1, "ok").await;
    assert_eq!(s.get("k", "").await.as_deref(), Some("ok"), "still serving");
}

pub async fn a_second_engine_on_the_same_directory_is_refused<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk.clone(), &root, ManualClock::new(START_MS), small_options()).await;
    let second = Store::open(disk.clone(), &root, ManualClock::new(START_MS), small_options()).await;
    assert!(matches!(second, Err(Error::Locked { .. })), "{:?}", second.as_ref().err());
    drop(s);
    let reopened = Store::open(disk, &root, ManualClock::new(START_MS), small_options()).await;
    assert!(reopened.is_ok(), "the lock is released with the engine");
}

pub async fn many_writes_rotate_and_retire_wal_files_and_recover<D: Disk>(disk: D, root: PathBuf) {
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    let value = "v".repeat(900);
    for i in 0..1500u64 {
        let durability = if i % 3 == 0 { Durability::Sync } else { Durability::Async };
        s.engine.write(vec![put(&format!("key{i:05}"), "", i + 1, &value)], durability).await.expect("write");
        if s.engine.needs_flush() {
            s.engine.flush().await.expect("flush");
        }
    }
    s.wal.sync().await.expect("wal sync");
    assert!(s.engine.stats().segment_count >= 10, "{:?}", s.engine.stats());
    let files = s.wal.file_numbers();
    assert!(files.len() < 6 && files[0] > 1, "flushed WAL files are retired: {files:?}");
    let s = s.reopen().await;
    for i in (0..1500u64).step_by(37) {
        assert_eq!(s.get(&format!("key{i:05}"), "").await.as_deref(), Some(value.as_str()), "key{i:05}");
    }
    s.engine.flush().await.expect("flush");
    let ids = s.engine.segment_ids();
    s.engine.compact(&ids, CompactionOptions::default()).await.expect("compact");
    let s = s.reopen().await;
    assert_eq!(s.engine.stats().segment_entries, 1500);
    assert_eq!(s.get("key01499", "").await.as_deref(), Some(value.as_str()));
}

/// A streamed version (Kafka's, with no WAL record).
fn streamed(pk: &str, ts: u64, value: &str, offset: u64) -> nacre_storage::Entry {
    let mut e = entry(pk, "", ts, OriginKind::Stream, Payload::Value { value: value.into(), expires_at_ms: None });
    e.version.id.origin.seq = offset;
    e
}

pub async fn streamed_versions_and_their_source_position_become_durable_together<D: Disk>(disk: D, root: PathBuf) {
    const SOURCE: &[u8] = b"kafka:1:0";
    let s = Store::create(disk, &root, ManualClock::new(START_MS), small_options()).await;
    s.engine.apply_streamed(&mut [streamed("a", 10, "a0", 0), streamed("b", 11, "b1", 1)]).expect("apply");
    s.engine.note_source_offset(SOURCE, 2);
    assert_eq!(s.get("a", "").await.as_deref(), Some("a0"), "visible at once");
    // No WAL record: a crash before the flush loses the versions and keeps the old position, so
    // the source replays them.
    let s = s.reopen().await;
    assert_eq!(s.get("a", "").await, None);
    assert_eq!(s.engine.committed_source_offset(SOURCE).await, None);
    s.engine.apply_streamed(&mut [streamed("a", 10, "a0", 0), streamed("b", 11, "b1", 1)]).expect("replay");
    s.engine.note_source_offset(SOURCE, 2);
    s.engine.note_source_offset(SOURCE, 1);
    s.engine.flush().await.expect("flush");
    assert_eq!(s.engine.committed_source_offset(SOURCE).await, Some(2), "a lower note never moves it back");
    // Replaying what the flush covered is idempotent.
    let ack = s.engine.apply_streamed(&mut [streamed("a", 10, "a0", 0)]).expect("re-apply");
    assert_eq!((ack.applied, ack.duplicates), (1, 0), "new to the fresh memtable");
    let s = s.reopen().await;
    assert_eq!(s.get("b", "").await.as_deref(), Some("b1"));
    assert_eq!(s.engine.committed_source_offset(SOURCE).await, Some(2));
    assert_eq!(history(&s, "a", "").await.len(), 1, "the replayed version is not doubled");
    // A position with nothing in memory behind it commits on its own; one with streamed versions
    // in memory waits for their flush.
    s.engine.note_source_offset(SOURCE, 5);
    assert!(s.engine.checkpoint_source_offsets().await.expect("checkpoint"));
    assert!(!s.engine.checkpoint_source_offsets().await.expect("nothing moved"));
    s.engine.apply_streamed(&mut [streamed("c", 12, "c5", 5)]).expect("apply");
    s.engine.note_source_offset(SOURCE, 6);
    assert!(!s.engine.checkpoint_source_offsets().await.expect("checkpoint"));
    let s = s.reopen().await;
    assert_eq!(s.engine.committed_source_offset(SOURCE).await, Some(5));
    assert_eq!(s.get("c", "").await, None);
    // Bad input is refused whole, like a write.
    let mut big = streamed("d", 13, "", 6);
    big.version.payload = Payload::Value { value: vec![0; s.options.limits.max_value_bytes + 1], expires_at_ms: None };
    let refused = s.engine.apply_streamed(&mut [streamed("e", 13, "e", 7), big]);
    assert!(matches!(refused, Err(Error::LimitExceeded { what: Limit::Value, .. })), "{refused:?}");
    assert_eq!(s.get("e", "").await, None, "nothing of a refused batch is applied");
}

#[macro_export]
/// Every scenario, by name, for the backends' test files.
macro_rules! for_each_scenario {
    ($run:ident) => {
        $run!(put_get_overwrite_delete_survive_flush_and_reopen);
        $run!(a_read_without_io_answers_as_a_read_does_and_declines_what_needs_the_disk);
        $run!(reapplying_a_version_is_a_no_op_even_across_flush_and_reopen);
        $run!(tie_rule_orders_equal_timestamps_by_origin);
        $run!(as_of_reads_see_the_past);
        $run!(expiry_hides_values_without_exposing_older_ones);
        $run!(scans_page_forward_and_reverse_across_memtable_and_segments);
        $run!(compaction_preserves_versions_and_origins_and_drops_only_what_options_allow);
        $run!(a_compaction_output_that_fits_the_cache_stays_cached_whatever_its_inputs_size);
        $run!(tombstones_and_expired_values_are_reclaimed_only_bottommost_and_after_their_grace);
        $run!(a_tombstone_is_kept_while_a_memtable_holds_its_key);
        $run!(a_paced_merge_reports_its_io_to_the_pacer_step_by_step);
        $run!(a_dropped_tables_versions_are_purged_and_its_own_runs_removed_unread);
        $run!(versions_under_a_watermark_are_collected_after_its_grace_unless_its_load_is_kept_apart);
        $run!(watermarks_supersede_older_versions_until_withdrawn);
        $run!(bad_input_gets_typed_errors_and_changes_nothing);
        $run!(a_second_engine_on_the_same_directory_is_refused);
        $run!(many_writes_rotate_and_retire_wal_files_and_recover);
        $run!(streamed_versions_and_their_source_position_become_durable_together);
    };
}
