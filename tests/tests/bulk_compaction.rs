//! Bulk loads and compaction, on a table that keeps one version per key: inside its rollback
//! window (the table's `rollback_window_ms`) a load's segments stay as linked through any
//! compaction, so a rollback after link, overwrite, restart and a full compaction shows what
//! the load superseded again. With no window the compaction merges the load and drops what it
//! superseded; a rollback still hides every version of the load by its origin, and says so. The
//! protection follows the table's setting: a window altered to 0 after the link lets the
//! compaction merge the load.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{AlterTable, Client, Compact, Key, Put, TableSettings, Ts};
use std::time::Duration;

const KEYS: usize = 50;
/// Keys overwritten after the link.
const OVERWRITTEN: usize = 10;

fn key(i: usize) -> String {
    format!("k{i:02}")
}

async fn put_at(client: &Client, i: usize, value: &str, ts_ms: u64) {
    let put = Put {
        table: "t".into(),
        key: Key::new(key(i).into_bytes(), b""),
        value: value.as_bytes().to_vec(),
        ts: Some(Ts::from_millis(ts_ms)),
        ttl_ms: None,
        durability: None,
    };
    client.put(put).await.expect("put");
}

async fn values(client: &Client) -> Vec<String> {
    bulk::values_of(client, "t", (0..KEYS).map(key), "-").await
}

fn expected(overwritten: &str, rest: &str) -> Vec<String> {
    (0..KEYS)
        .map(|i| if i < OVERWRITTEN { format!("{overwritten}-{}", key(i)) } else { format!("{rest}-{}", key(i)) })
        .collect()
}

/// Old values, a merge load over them, newer writes over part of it, a restart (everything in
/// segments), a full compaction; returns the server, the load id and the compaction's report.
/// The table is created with rollback window `window_ms`, and altered to `altered_to_ms`, if
/// given, after the restart, just before the compaction.
fn link_overwrite_compact(window_ms: u64, altered_to_ms: Option<u64>) -> (Server, u32, nacre_wire::CompactionReport) {
    let work = test_dir("nacre-bulk-compaction-");
    let config = Some("partitions = 4\n".to_owned());
    let mut server = Server::start_with(ServerOptions { cores: 2, config, ..ServerOptions::default() });
    let now = bulk::now_ms();
    let load = runtime().block_on(async {
        let client = server.client().await;
        let created = client.create_table("t", created_with(window_ms)).await.expect("create");
        assert_eq!((created.id, created.settings), (1, created_with(window_ms)));
        for i in 0..KEYS {
            put_at(&client, i, &format!("old-{}", key(i)), now - 20_000).await;
        }
        let input = work.path().join("rows.jsonl");
        let rows: Vec<Row> = (0..KEYS).map(|i| Row::new(key(i), "", format!("bulk-{}", key(i)))).collect();
        bulk::write_jsonl(&input, &rows);
        let out = work.path().join("load");
        let snapshot = (now - 10_000).to_string();
        bulk::build("t", 1, 4, &[&input], &out, &["--format", "jsonl", "--mode", "merge", "--snapshot-ts", &snapshot]);
        let load = client.bulk_link(&out.display().to_string()).await.expect("link").load_id;
        for i in 0..OVERWRITTEN {
            put_at(&client, i, &format!("new-{}", key(i)), now).await;
        }
        assert_eq!(values(&client).await, expected("new", "bulk"));
        load
    });
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success(), "{}", server.log_tail());
    server.restart();
    let report = runtime().block_on(async {
        let client = server
            .client_with(nacre_wire::ClientOptions {
                timeout: Duration::from_secs(120),
                ..nacre_tests::server::client_options()
            })
            .await;
        if let Some(window_ms) = altered_to_ms {
            let alter = AlterTable { name: "t".into(), rollback_window_ms: Some(window_ms), ..AlterTable::default() };
            let altered = client.alter_table(alter).await.expect("alter");
            assert_eq!(altered.settings, created_with(window_ms), "only the window changed");
        }
        let report = client.compact(Compact { table: "t".into(), partition: None, wait: true }).await.expect("compact");
        assert_eq!(values(&client).await, expected("new", "bulk"), "a compaction changes no read");
        report
    });
    drop(work);
    (server, load, report)
}

/// Table "t"'s settings: one version per key, rollback window `window_ms`.
fn created_with(window_ms: u64) -> TableSettings {
    TableSettings { max_versions: 1, rollback_window_ms: window_ms, ..TableSettings::default() }
}

/// A rollback of a load the compaction merged: it says so, newer writes stay, and no bulk value
/// shows (what it superseded was dropped by the merge).
fn assert_a_rollback_hides_the_merged_load(server: &Server, load: u32) {
    runtime().block_on(async {
        let client = server.client().await;
        let rolled_back = client.bulk_rollback(load).await.expect("a rollback of a merged load");
        let note = rolled_back.note.clone().unwrap_or_default();
        assert!(note.contains("merged"), "the reply says compaction had merged the load: {rolled_back:?}");
        let mut want = expected("new", "-");
        want[OVERWRITTEN..].iter_mut().for_each(|v| *v = "-".to_owned());
        assert_eq!(values(&client).await, want, "newer writes stay; no bulk value shows");
    });
}

#[test]
fn a_rollback_inside_its_window_survives_compaction_and_shows_the_superseded_values_again() {
    let (server, load, report) = link_overwrite_compact(TableSettings::DEFAULT_ROLLBACK_WINDOW_MS, None);
    assert!(report.compactions > 0, "the old and new runs merged: {report:?}");
    runtime().block_on(async {
        let client = server.client().await;
        client.bulk_rollback(load).await.expect("a rollback inside the window");
        assert_eq!(values(&client).await, expected("new", "old"), "what the load superseded shows again");
    });
}

#[test]
fn with_no_rollback_window_a_rollback_after_compaction_hides_the_load_and_what_gc_dropped_stays_gone() {
    let (server, load, report) = link_overwrite_compact(0, None);
    assert!(report.compactions > 0, "{report:?}");
    assert_a_rollback_hides_the_merged_load(&server, load);
}

#[test]
fn a_window_altered_to_zero_after_the_link_lets_compaction_merge_the_load() {
    let (server, load, report) = link_overwrite_compact(TableSettings::DEFAULT_ROLLBACK_WINDOW_MS, Some(0));
    assert!(report.compactions > 0, "{report:?}");
    assert_a_rollback_hides_the_merged_load(&server, load);
}

/// GC rule 6 through nacred: two tables with the same old values and the same replace load over
/// a fifth of their keys, one with no rollback window, one with the default. With no grace
/// period, a full compaction drops what the first table's watermark hides and keeps the
/// second's (its load is inside its window, so a rollback could still show it); latest reads of
/// both are unchanged.
#[test]
fn a_replace_loads_watermark_past_its_window_and_grace_lets_compaction_drop_what_it_hides() {
    const ALL: usize = 200;
    let work = test_dir("nacre-bulk-compaction-");
    let config = Some("partitions = 4\n[compaction]\nenabled = false\ntombstone_grace_ms = 0\n".to_owned());
    let mut server = Server::start_with(ServerOptions { cores: 2, config, ..ServerOptions::default() });
    let now = bulk::now_ms();
    let old = "o".repeat(1_000);
    let tables = [("gone", 0), ("kept", TableSettings::DEFAULT_ROLLBACK_WINDOW_MS)];
    runtime().block_on(async {
        let client = server.client().await;
        for (id, (table, window_ms)) in tables.iter().enumerate() {
            let settings = TableSettings { rollback_window_ms: *window_ms, ..TableSettings::default() };
            assert_eq!(client.create_table(table, settings).await.expect("create").id, id as u32 + 1);
            for i in 0..ALL {
                let mut put = Put::new(*table, Key::new(key(i).into_bytes(), b""), old.clone().into_bytes());
                put.ts = Some(Ts::from_millis(now - 20_000));
                client.put(put).await.expect("put");
            }
            let input = work.path().join(format!("{table}.jsonl"));
            let rows: Vec<Row> = (0..ALL / 5).map(|i| Row::new(key(i), "", format!("bulk-{}", key(i)))).collect();
            bulk::write_jsonl(&input, &rows);
            let out = work.path().join(format!("{table}-load"));
            let snapshot = (now - 10_000).to_string();
            let args = ["--format", "jsonl", "--mode", "replace", "--snapshot-ts", &snapshot];
            bulk::build(table, id as u32 + 1, 4, &[&input], &out, &args);
            client.bulk_link(&out.display().to_string()).await.expect("link");
        }
    });
    // A clean restart flushes every memtable: the old values are in runs of their own.
    assert!(server.sigterm_and_wait(Duration::from_secs(30)).success(), "{}", server.log_tail());
    server.restart();
    runtime().block_on(async {
        let client = server.client().await;
        let before: Vec<usize> = vec![history_len(&client, "gone", 150).await, history_len(&client, "kept", 150).await];
        assert_eq!(before, [1, 1], "a key the load did not hold keeps its old version, hidden");
        for table in ["gone", "kept"] {
            let report = client.compact(Compact { table: table.into(), partition: None, wait: true }).await;
            assert!(report.expect("compact").compactions > 0);
        }
        assert_eq!(history_len(&client, "gone", 150).await, 0, "collected under the watermark");
        assert_eq!(history_len(&client, "kept", 150).await, 1, "the load is in its window: kept");
        for table in ["gone", "kept"] {
            let keys = (0..ALL).map(key);
            let got = bulk::values_of(&client, table, keys, "-").await;
            let want: Vec<String> =
                (0..ALL).map(|i| if i < ALL / 5 { format!("bulk-{}", key(i)) } else { "-".into() }).collect();
            assert_eq!(got, want, "{table}: latest reads are unchanged");
        }
    });
    drop(work);
}

/// How many versions key `i` of `table` holds.
async fn history_len(client: &Client, table: &str, i: usize) -> usize {
    let versions = nacre_wire::Versions::new(table, Key::new(key(i).into_bytes(), b""));
    client.versions(versions).await.expect("versions").versions.len()
}
