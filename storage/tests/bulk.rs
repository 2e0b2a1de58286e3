//! Bulk loads on one partition: the builder's output, link validation, the two commit phases,
//! visibility, replace watermarks, rollback and recovery, on glommio with real files.

#[path = "support/harness.rs"]
mod harness;

use harness::{PARTITION, START_MS, Store, TABLE};
use nacre_storage::bulk::validate::{self, LinkTarget, LoadRejection, Verify};
use nacre_storage::bulk::{BuildOptions, Builder, BulkRecord, LoadDescriptor, LoadMode, LoadVisibility};
use nacre_storage::segment::writer::SegmentLayout;
use nacre_storage::{
    Durability, EngineOptions, Key, Limits, ManualClock, Origin, OriginKind, ReadAt, TableId, Ts, VersionId, Watermark,
};
use std::path::{Path, PathBuf};

const PARTITIONS: u32 = 8;
/// The load's snapshot: within the harness's timestamps (`START_MS - 1_000_000 + ts`).
const SNAPSHOT_MS: u64 = START_MS - 500_000;

fn options(out: &Path, mode: LoadMode, threads: usize, memory: usize) -> BuildOptions {
    BuildOptions {
        table: "t".into(),
        table_id: TABLE,
        mode,
        snapshot_ms: SNAPSHOT_MS,
        partition_count: PARTITIONS,
        latest_ts_ms: None,
        load_id: None,
        memory_limit_bytes: memory,
        threads,
        fail_on_duplicate: false,
        limits: Limits::default(),
        layout: SegmentLayout {
            block_target_bytes: EngineOptions::default().block_target_bytes,
            bloom_bits_per_key: 10,
            preallocate_bytes: 1 << 20,
            keep_blocks_bytes: 0,
        },
        out_dir: out.to_path_buf(),
        spill_dir: None,
    }
}

fn record(pk: &str, sk: &str, value: &str) -> BulkRecord {
    BulkRecord {
        partition_key: pk.as_bytes().to_vec(),
        sort_key: sk.as_bytes().to_vec(),
        value: Some(value.as_bytes().to_vec()),
        ts_ms: None,
        ttl_ms: None,
    }
}

/// Builds `records`, split over two inputs filled on two threads.
fn build(options: BuildOptions, records: &[BulkRecord]) -> LoadDescriptor {
    let builder = Builder::new(options).expect("builder");
    let (a, b) = records.split_at(records.len() / 2);
    std::thread::scope(|s| {
        for (i, part) in [a, b].into_iter().enumerate() {
            let builder = &builder;
            s.spawn(move || {
                let mut sink = builder.sink(i as u32);
                for r in part {
                    sink.push(r.clone()).expect("push");
                }
                sink.finish().expect("finish");
            });
        }
    });
    builder.finish(&|_| {}).expect("finish build").descriptor
}

fn many(n: usize, value: &str) -> Vec<BulkRecord> {
    (0..n).map(|i| record(&format!("pk{}", i % 97), &format!("sk{i:06}"), &format!("{value}{i}"))).collect()
}

fn dir_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().expect("name").to_string_lossy().into_owned(), std::fs::read(&p).expect("read")))
        .collect();
    files.sort();
    files
}

#[test]
fn the_same_input_builds_byte_identical_files_whatever_the_memory_and_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = many(20_000, "value-");
    let roomy = build(options(&dir.path().join("a"), LoadMode::Merge, 2, 256 << 20), &records);
    let tight = build(options(&dir.path().join("b"), LoadMode::Merge, 1, 1 << 20), &records);
    assert_eq!(roomy, tight);
    assert_eq!(roomy.records, 20_000);
    assert!(roomy.files.len() > 1, "keys spread over partitions");
    assert_eq!(dir_bytes(&dir.path().join("a")), dir_bytes(&dir.path().join("b")));
    let other = build(options(&dir.path().join("c"), LoadMode::Merge, 2, 256 << 20), &many(20_000, "other-"));
    assert_ne!(other.load_id, roomy.load_id, "the load id follows the content");
}

#[test]
fn a_duplicate_key_keeps_the_later_record_or_fails_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let records = vec![record("k", "", "first"), record("k", "", "second"), record("j", "", "only")];
    let builder = Builder::new(options(&dir.path().join("a"), LoadMode::Merge, 1, 64 << 20)).expect("builder");
    let mut sink = builder.sink(0);
    for r in &records {
        sink.push(r.clone()).expect("push");
    }
    sink.finish().expect("finish");
    let d = builder.finish(&|_| {}).expect("build").descriptor;
    assert_eq!((d.records, d.duplicates), (3, 1));
    let target =
        LinkTarget { partition_count: PARTITIONS, table_id: TABLE, limits: Limits::default(), latest_ts: Ts::MAX };
    let load = validate::validate(&dir.path().join("a"), &target, 2).expect("valid");
    assert_eq!(load.files.iter().map(|f| f.info.entry_count).sum::<u64>(), 2);

    let mut strict = options(&dir.path().join("b"), LoadMode::Merge, 1, 64 << 20);
    strict.fail_on_duplicate = true;
    let builder = Builder::new(strict).expect("builder");
    let mut sink = builder.sink(0);
    for r in &records {
        sink.push(r.clone()).expect("push");
    }
    sink.finish().expect("finish");
    let err = builder.finish(&|_| {}).expect_err("a duplicate fails the build");
    let text = err.to_string();
    assert!(text.contains("duplicate key") && text.contains("record 1") && text.contains("record 0"), "{text}");
}

#[test]
fn a_timestamp_past_the_skew_bound_is_refused_at_build_naming_the_record_and_at_link_naming_the_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Build: a snapshot past the bound is refused outright; a record's own ts past it names the
    // record.
    let mut late = options(&dir.path().join("late"), LoadMode::Merge, 1, 64 << 20);
    late.latest_ts_ms = Some(SNAPSHOT_MS - 1);
    let err = Builder::new(late).err().expect("a snapshot past the bound is refused");
    assert!(err.to_string().contains("beyond the clock skew bound"), "{err}");
    let mut bounded = options(&dir.path().join("bounded"), LoadMode::Merge, 1, 64 << 20);
    bounded.latest_ts_ms = Some(SNAPSHOT_MS + 1_000);
    let builder = Builder::new(bounded).expect("builder");
    let mut sink = builder.sink(0);
    sink.push(BulkRecord { ts_ms: Some(SNAPSHOT_MS + 1_000), ..record("a", "", "at the bound") })
        .expect("at the bound");
    let err = sink.push(BulkRecord { ts_ms: Some(SNAPSHOT_MS + 1_001), ..record("b", "", "past") }).expect_err("past");
    let text = err.to_string();
    assert!(text.contains("input 0, record 1") && text.contains("beyond the clock skew bound"), "{text}");

    // Link: a load built without a bound (elsewhere, with another clock) is checked again
    // against the store's clock, entry by entry and snapshot first.
    let unchecked = dir.path().join("unchecked");
    let future = BulkRecord { ts_ms: Some(SNAPSHOT_MS + 5_000), ..record("k", "", "future") };
    build(options(&unchecked, LoadMode::Merge, 1, 64 << 20), &[record("j", "", "now"), future]);
    let at = |latest_ms: u64| LinkTarget { latest_ts: Ts(Ts::from_millis(latest_ms + 1).0 - 1), ..target() };
    assert!(validate::validate(&unchecked, &at(SNAPSHOT_MS + 5_000), 2).is_ok(), "every ts within the bound");
    let err = validate::validate(&unchecked, &at(SNAPSHOT_MS + 4_999), 2).map(|_| ()).expect_err("a ts past it");
    assert_eq!(err.code(), "bad-entry");
    assert!(err.to_string().contains("beyond the clock skew bound"), "{err}");
    let err = validate::validate(&unchecked, &at(SNAPSHOT_MS - 1), 2).map(|_| ()).expect_err("the snapshot past it");
    assert_eq!(err.code(), "too-far-in-future");
    assert!(err.to_string().starts_with("load "), "the rejection names the load: {err}");
}

#[test]
fn a_replace_record_older_than_the_snapshot_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let builder = Builder::new(options(dir.path(), LoadMode::Replace, 1, 64 << 20)).expect("builder");
    let mut sink = builder.sink(0);
    let old = BulkRecord { ts_ms: Some(SNAPSHOT_MS - 1), ..record("k", "", "v") };
    let err = sink.push(old).expect_err("refused");
    assert!(err.to_string().contains("before the snapshot"), "{err}");
}

fn target() -> LinkTarget {
    LinkTarget { partition_count: PARTITIONS, table_id: TABLE, limits: Limits::default(), latest_ts: Ts::MAX }
}

/// Rewrites the descriptor after `edit`, resealing it as a builder would.
fn rewrite(dir: &Path, edit: impl FnOnce(&mut LoadDescriptor)) {
    let mut d = LoadDescriptor::read(dir).expect("descriptor");
    edit(&mut d);
    d.seal();
    std::fs::write(dir.join("load.json"), d.to_file_bytes()).expect("write");
}

fn fresh_load(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    build(options(&dir, LoadMode::Merge, 2, 64 << 20), &many(5_000, "v"));
    dir
}

fn checksum_of(path: &Path) -> String {
    format!("{:016x}", nacre_storage::bulk::build::file_checksum(path).expect("checksum"))
}

#[test]
fn validation_rejects_each_defect_with_its_own_reason() {
    let root = tempfile::tempdir().expect("tempdir");
    let code = |dir: &Path, t: &LinkTarget| validate::validate(dir, t, 2).map(|_| ()).map_err(|e| e.code());

    let ok = fresh_load(root.path(), "ok");
    assert_eq!(code(&ok, &target()), Ok(()));
    let wrong_count = LinkTarget { partition_count: 16, ..target() };
    assert_eq!(code(&ok, &wrong_count), Err("partition-count"));
    let wrong_table = LinkTarget { table_id: TableId(9), ..target() };
    assert_eq!(code(&ok, &wrong_table), Err("table-refuses"));
    let small = LinkTarget { limits: Limits { max_value_bytes: 2, ..Limits::default() }, ..target() };
    assert_eq!(code(&ok, &small), Err("bad-entry"));

    let flipped = fresh_load(root.path(), "flipped");
    let file = flip_a_byte(&flipped);
    assert_eq!(code(&flipped, &target()), Err("checksum-mismatch"));
    // The same flip with the descriptor's checksum updated: the block checksum catches it.
    rewrite(&flipped, |d| d.files[0].xxh3 = checksum_of(&file));
    assert_eq!(code(&flipped, &target()), Err("corrupt-segment"));

    let edited = fresh_load(root.path(), "edited");
    let text = std::fs::read_to_string(edited.join("load.json")).expect("read");
    std::fs::write(edited.join("load.json"), text.replacen("\"records\": 5000", "\"records\": 5001", 1))
        .expect("write");
    assert_eq!(code(&edited, &target()), Err("bad-descriptor"));

    let version = fresh_load(root.path(), "version");
    rewrite(&version, |d| d.segment_format_version = 99);
    assert_eq!(code(&version, &target()), Err("format-version"));

    let moved = fresh_load(root.path(), "moved");
    rewrite(&moved, |d| {
        let (a, b) = (d.files[0].partition, d.files[1].partition);
        d.files[0].partition = b;
        d.files[1].partition = a;
    });
    assert_eq!(code(&moved, &target()), Err("key-outside-partition"));

    let truncated = fresh_load(root.path(), "truncated");
    let d = LoadDescriptor::read(&truncated).expect("descriptor");
    let file = truncated.join(&d.files[0].name);
    std::fs::write(&file, &std::fs::read(&file).expect("read")[..4096]).expect("write");
    assert_eq!(code(&truncated, &target()), Err("size-mismatch"));

    let missing = fresh_load(root.path(), "missing");
    let d = LoadDescriptor::read(&missing).expect("descriptor");
    std::fs::remove_file(missing.join(&d.files[0].name)).expect("remove");
    assert_eq!(code(&missing, &target()), Err("unreadable-file"));

    let unsorted = fresh_load(root.path(), "unsorted");
    swap_first_two_blocks(&unsorted);
    assert_eq!(code(&unsorted, &target()), Err("unsorted"));
}

/// Flips a bit in the first data block of the load's first file (the descriptor keeps the old
/// checksum); returns the file.
fn flip_a_byte(load: &Path) -> PathBuf {
    let d = LoadDescriptor::read(load).expect("descriptor");
    let file = load.join(&d.files[0].name);
    let mut bytes = std::fs::read(&file).expect("read");
    bytes[100] ^= 0x40;
    std::fs::write(&file, &bytes).expect("write");
    file
}

/// Swaps the first two (one-page) data blocks of the load's first file and records the file's new
/// checksum: each block still passes its own checksum, but keys go backwards.
fn swap_first_two_blocks(load: &Path) {
    let d = LoadDescriptor::read(load).expect("descriptor");
    let file = load.join(&d.files[0].name);
    let mut bytes = std::fs::read(&file).expect("read");
    let (first, second) = bytes.split_at_mut(4096);
    first.swap_with_slice(&mut second[..4096]);
    std::fs::write(&file, &bytes).expect("write");
    rewrite(load, |d| d.files[0].xxh3 = checksum_of(&file));
}

/// `Verify::Checksums` reads every byte for the whole-file checksum but decodes no entry: a
/// flipped byte is still refused, and so is a file in the wrong partition (by its metadata's
/// keys); an entry out of order in a file whose checksum was recomputed is refused only by
/// `Verify::Full`.
#[test]
fn checksums_verification_refuses_a_flipped_byte_and_full_verification_an_unsorted_entry() {
    let root = tempfile::tempdir().expect("tempdir");
    let code = |dir: &Path, verify: Verify| {
        let d = validate::read_descriptor(dir, PARTITIONS).map_err(|e| e.code())?;
        validate::validate_files_with(dir, d, &target(), 2, verify).map(|_| ()).map_err(|e| e.code())
    };

    let ok = fresh_load(root.path(), "ok");
    assert_eq!(code(&ok, Verify::Checksums), Ok(()));
    assert_eq!(code(&ok, Verify::Full), Ok(()));

    let flipped = fresh_load(root.path(), "flipped");
    flip_a_byte(&flipped);
    assert_eq!(code(&flipped, Verify::Checksums), Err("checksum-mismatch"));
    assert_eq!(code(&flipped, Verify::Full), Err("checksum-mismatch"));

    let moved = fresh_load(root.path(), "moved");
    rewrite(&moved, |d| {
        let (a, b) = (d.files[0].partition, d.files[1].partition);
        d.files[0].partition = b;
        d.files[1].partition = a;
    });
    assert_eq!(code(&moved, Verify::Checksums), Err("key-outside-partition"));

    let unsorted = fresh_load(root.path(), "unsorted");
    swap_first_two_blocks(&unsorted);
    assert_eq!(code(&unsorted, Verify::Full), Err("unsorted"));
    assert_eq!(code(&unsorted, Verify::Checksums), Ok(()), "checksums trusts the builder for the order");

    // A record past the store's skew bound: Full finds the entry, Checksums the metadata's ts range.
    let future = root.path().join("future");
    let late = BulkRecord { ts_ms: Some(SNAPSHOT_MS + 5_000), ..record("k", "", "late") };
    build(options(&future, LoadMode::Merge, 1, 64 << 20), &[record("j", "", "now"), late]);
    let bounded = LinkTarget { latest_ts: Ts::from_millis(SNAPSHOT_MS + 1_000), ..target() };
    for verify in [Verify::Full, Verify::Checksums] {
        let d = validate::read_descriptor(&future, PARTITIONS).expect("descriptor");
        let err = validate::validate_files_with(&future, d, &bounded, 2, verify).map(|_| ()).expect_err("refused");
        assert_eq!(err.code(), "bad-entry", "{verify:?}");
        assert!(err.to_string().contains("beyond the clock skew bound"), "{err}");
    }
}

/// The harness partition's file of a load, validated.
fn partition_file(dir: &Path) -> validate::ValidatedFile {
    let load = validate::validate(dir, &target(), 2).expect("valid");
    load.files.into_iter().find(|f| f.partition == PARTITION.0).expect("the load has records in the partition")
}

fn records_in_partition(n: usize, value: &str) -> Vec<BulkRecord> {
    (0..)
        .map(|i| format!("key{i}"))
        .filter(|pk| nacre_storage::bulk::partition_of(pk.as_bytes(), PARTITIONS) == PARTITION)
        .take(n)
        .map(|pk| record(&pk, "", value))
        .collect()
}

async fn get(store: &Store<impl nacre_storage::io::Disk>, pk: &str) -> Option<(String, VersionId)> {
    let key = Key::new(TABLE, pk.as_bytes(), b"".as_slice());
    store
        .engine
        .get(key.as_ref(), ReadAt::Latest)
        .await
        .expect("get")
        .map(|r| (String::from_utf8(r.value).expect("utf8"), r.id))
}

#[test]
fn a_linked_load_is_hidden_until_shown_survives_recovery_and_rolls_back_whole() {
    harness::run_dma(|disk, root| async move {
        let loads = tempfile::tempdir_in(&root).expect("tempdir");
        let records = records_in_partition(50, "bulk");
        let dir = loads.path().join("merge");
        let d = build(options(&dir, LoadMode::Merge, 2, 64 << 20), &records);
        let store = Store::create(disk, &root, ManualClock::new(START_MS), harness::small_options()).await;
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        let pk = String::from_utf8(records[0].partition_key.clone()).expect("utf8");

        let file = partition_file(&dir);
        let prepared = store.engine.prepare_bulk_segment(&file.path, &file.info).await.expect("prepare");
        assert!(!prepared.copied, "same filesystem: a hard link");
        visibility.hide(d.load_id);
        store.engine.commit_bulk_load(d.load_id, Some(&prepared), None).await.expect("commit");
        assert_eq!(get(&store, &pk).await, None, "hidden until shown");
        visibility.show(d.load_id);
        let (value, id) = get(&store, &pk).await.expect("visible");
        assert_eq!(value, "bulk");
        assert_eq!(id.origin.kind, OriginKind::Bulk);
        assert_eq!(id.origin.source_id, d.load_id);
        assert_eq!(id.ts, Ts::from_millis(SNAPSHOT_MS));

        let store = store.reopen().await;
        store.engine.set_load_visibility(visibility.clone());
        assert_eq!(store.engine.linked_loads().await.get(&d.load_id).map(Vec::len), Some(1));
        assert_eq!(get(&store, &pk).await.map(|(v, _)| v).as_deref(), Some("bulk"), "recovered");

        assert!(store.engine.unlink_bulk_load(d.load_id).await.expect("unlink"));
        assert_eq!(get(&store, &pk).await, None);
        let store = store.reopen().await;
        assert!(store.engine.linked_loads().await.is_empty());
        assert_eq!(get(&store, &pk).await, None, "the rollback is durable");
        assert!(!store.engine.unlink_bulk_load(d.load_id).await.expect("unlink again"), "nothing left to unlink");
    });
}

#[test]
fn a_replace_load_supersedes_older_writes_keeps_newer_ones_and_its_rollback_restores_them() {
    harness::run_dma(|disk, root| async move {
        let loads = tempfile::tempdir_in(&root).expect("tempdir");
        let keys = records_in_partition(3, "x");
        let name = |i: usize| String::from_utf8(keys[i].partition_key.clone()).expect("utf8");
        let (in_load, newer, only_old) = (name(0), name(1), name(2));
        let store = Store::create(disk, &root, ManualClock::new(START_MS), harness::small_options()).await;
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        // Harness ts are offsets from START_MS - 1_000_000; the snapshot is at offset 500_000.
        store.put(&in_load, "", 100, "old").await;
        store.put(&newer, "", 100, "old").await;
        store.put(&newer, "", 600_000, "new").await;
        store.put(&only_old, "", 100, "old").await;
        store.engine.flush().await.expect("flush");

        let dir = loads.path().join("replace");
        let d = build(
            options(&dir, LoadMode::Replace, 1, 64 << 20),
            &[record(&in_load, "", "bulk"), record(&newer, "", "bulk")],
        );
        let file = partition_file(&dir);
        let prepared = store.engine.prepare_bulk_segment(&file.path, &file.info).await.expect("prepare");
        let point = VersionId {
            ts: Ts::from_millis(SNAPSHOT_MS),
            origin: Origin { kind: OriginKind::Bulk, source_id: d.load_id, seq: 0 },
        };
        visibility.hide(d.load_id);
        store
            .engine
            .commit_bulk_load(d.load_id, Some(&prepared), Some((TABLE, Watermark { point })))
            .await
            .expect("commit");
        assert_eq!(store.get(&only_old, "").await.as_deref(), Some("old"), "the watermark waits for the load too");
        visibility.show(d.load_id);
        assert_eq!(store.get(&in_load, "").await.as_deref(), Some("bulk"));
        assert_eq!(store.get(&newer, "").await.as_deref(), Some("new"), "a newer write survives");
        assert_eq!(store.get(&only_old, "").await, None, "older data absent from the load is superseded");
        store.engine.write(vec![harness::put(&only_old, "", 700_000, "later")], Durability::Sync).await.expect("put");
        assert_eq!(store.get(&only_old, "").await.as_deref(), Some("later"));

        visibility.hide(d.load_id);
        store.engine.unlink_bulk_load(d.load_id).await.expect("unlink");
        assert_eq!(store.get(&in_load, "").await.as_deref(), Some("old"), "what the load superseded shows again");
        assert_eq!(store.get(&newer, "").await.as_deref(), Some("new"));
        assert_eq!(store.get(&only_old, "").await.as_deref(), Some("later"));
    });
}

#[test]
fn a_segment_of_a_hidden_load_is_not_compacted() {
    harness::run_dma(|disk, root| async move {
        let loads = tempfile::tempdir_in(&root).expect("tempdir");
        let dir = loads.path().join("l");
        let d = build(options(&dir, LoadMode::Merge, 1, 64 << 20), &records_in_partition(10, "v"));
        let store = Store::create(disk, &root, ManualClock::new(START_MS), harness::small_options()).await;
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        let file = partition_file(&dir);
        let prepared = store.engine.prepare_bulk_segment(&file.path, &file.info).await.expect("prepare");
        visibility.hide(d.load_id);
        store.engine.commit_bulk_load(d.load_id, Some(&prepared), None).await.expect("commit");
        let refused = store.engine.compact(&[prepared.info.id], Default::default()).await;
        assert!(refused.is_err(), "a hidden load's segment stays apart");
        visibility.show(d.load_id);
        let out = store.engine.compact(&[prepared.info.id], Default::default()).await.expect("a visible load compacts");
        let merged = out.output.expect("kept").id;
        let segments = store.engine.load_segments(d.load_id).await;
        assert_eq!((segments.own, segments.merged), (vec![], vec![merged]), "the output holds the load's versions");
    });
}

/// Old writes, a merge load over them, a newer write over part of it; everything merged into
/// one segment keeping every version; then a rollback.
#[test]
fn a_rollback_after_compaction_hides_the_loads_versions_where_they_were_merged_and_gc_then_drops_them() {
    harness::run_dma(|disk, root| async move {
        let loads = tempfile::tempdir_in(&root).expect("tempdir");
        let keys = records_in_partition(4, "x");
        let name = |i: usize| String::from_utf8(keys[i].partition_key.clone()).expect("utf8");
        let (superseded, newer, untouched, only_in_load) = (name(0), name(1), name(2), name(3));
        let store = Store::create(disk, &root, ManualClock::new(START_MS), harness::small_options()).await;
        // One version kept per key: a GC that counted the rolled-back version would drop the
        // one beneath it.
        let one_version = nacre_storage::TableSettings { max_versions: 1, ..Default::default() };
        store.engine.define_table(TABLE, one_version);
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        for k in [&superseded, &newer, &untouched] {
            store.put(k, "", 100, "old").await;
        }
        store.engine.flush().await.expect("flush");
        let dir = loads.path().join("merge");
        let loaded = [record(&superseded, "", "bulk"), record(&newer, "", "bulk"), record(&only_in_load, "", "bulk")];
        let d = build(options(&dir, LoadMode::Merge, 1, 64 << 20), &loaded);
        let file = partition_file(&dir);
        let prepared = store.engine.prepare_bulk_segment(&file.path, &file.info).await.expect("prepare");
        visibility.hide(d.load_id);
        store.engine.commit_bulk_load(d.load_id, Some(&prepared), None).await.expect("commit");
        visibility.show(d.load_id);
        store.put(&newer, "", 600_000, "new").await;
        store.engine.flush().await.expect("flush");

        let ids = store.engine.segment_ids();
        assert_eq!(ids.len(), 3);
        let merged = store.engine.compact(&ids, Default::default()).await.expect("compact").output.expect("kept").id;
        assert_eq!(store.engine.load_segments(d.load_id).await.merged, vec![merged]);
        assert_eq!(store.get(&superseded, "").await.as_deref(), Some("bulk"));

        visibility.hide(d.load_id);
        assert!(!store.engine.unlink_bulk_load(d.load_id).await.expect("unlink"), "no segment of its own is left");
        expect_rolled_back(&store, [&superseded, &newer, &untouched, &only_in_load]).await;
        let store = store.reopen().await;
        store.engine.define_table(TABLE, one_version);
        store.engine.set_load_visibility(visibility.clone());
        expect_rolled_back(&store, [&superseded, &newer, &untouched, &only_in_load]).await;

        let ids = store.engine.segment_ids();
        let gc = nacre_storage::CompactionOptions::collect_garbage();
        let out = store.engine.compact(&ids, gc).await.expect("compact with gc");
        assert_eq!(out.versions_out, 3, "the load's versions are dropped, each key's visible one kept: {out:?}");
        let segments = store.engine.load_segments(d.load_id).await;
        assert!(segments.own.is_empty() && segments.merged.is_empty(), "{segments:?}");
        expect_rolled_back(&store, [&superseded, &newer, &untouched, &only_in_load]).await;
    });
}

/// The reads after the rollback in the test above: keys `[superseded, newer, untouched,
/// only_in_load]`.
async fn expect_rolled_back(store: &Store<impl nacre_storage::io::Disk>, keys: [&String; 4]) {
    let [superseded, newer, untouched, only_in_load] = keys;
    assert_eq!(store.get(superseded, "").await.as_deref(), Some("old"), "what the load superseded shows");
    assert_eq!(store.get(newer, "").await.as_deref(), Some("new"));
    assert_eq!(store.get(untouched, "").await.as_deref(), Some("old"));
    assert_eq!(store.get(only_in_load, "").await, None, "a key only the load wrote is gone");
    let key = Key::new(TABLE, superseded.as_bytes(), b"".as_slice());
    let history = store.engine.versions(key.as_ref()).await.expect("versions");
    assert!(history.versions.iter().all(|v| v.id.origin.kind != OriginKind::Bulk), "{history:?}");
    let scan = nacre_storage::ScanRequest {
        table: TABLE,
        partition_key: superseded.clone().into_bytes(),
        from: None,
        to: None,
        limit: 10,
        reverse: false,
        cursor: None,
        at: ReadAt::Latest,
    };
    let page = store.engine.scan(&scan).await.expect("scan");
    assert_eq!(page.rows.iter().map(|r| r.value.as_slice()).collect::<Vec<_>>(), vec![b"old".as_slice()]);
    let listing = nacre_storage::KeysRequest { table: TABLE, after: None, limit: 10 };
    let mut listed = store.engine.partition_keys(&listing).await.expect("keys").keys;
    listed.sort();
    let mut want = vec![superseded.clone().into_bytes(), newer.clone().into_bytes(), untouched.clone().into_bytes()];
    want.sort();
    assert_eq!(listed, want, "the load-only key is not listed");
}

#[test]
fn a_rejection_reason_names_itself() {
    let r = LoadRejection::PartitionCount { load: 8, store: 16 };
    assert_eq!(r.code(), "partition-count");
    assert!(r.to_string().contains("8 partitions") && r.to_string().contains("16"));
}
