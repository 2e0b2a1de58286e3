//! Replace loads against direct writes: a replace load at snapshot T supersedes everything older
//! than T and keeps what is newer, whether the writes come before or after the link; a rollback
//! restores the previous state.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, test_dir};
use nacre_wire::{Client, Get, Key, OriginKind, Put, TableSettings, Ts, VersionId};
use std::path::Path;

/// Keys and what happens to them around a replace load at T:
/// - `in-load-older`: written at T-1s, and in the load: the load's value wins;
/// - `in-load-newer`: written at T+1s, and in the load: the write survives;
/// - `gone`: written at T-1s only, not in the load: superseded, reads as not found;
/// - `newer-only`: written at T+1s only: survives;
/// - `load-only`: only in the load.
const KEYS: [&str; 5] = ["in-load-older", "in-load-newer", "gone", "newer-only", "load-only"];

fn load_rows() -> Vec<Row> {
    ["in-load-older", "in-load-newer", "load-only"].iter().map(|k| Row::new(*k, "", format!("bulk-{k}"))).collect()
}

async fn put_writes(client: &Client, snapshot_ms: u64) {
    for (key, offset) in [("in-load-older", -1000i64), ("in-load-newer", 1000), ("gone", -1000), ("newer-only", 1000)] {
        let ts = Ts::from_millis(snapshot_ms.checked_add_signed(offset).expect("in range"));
        let put = Put {
            table: "t".into(),
            key: Key::new(key.as_bytes(), b""),
            value: format!("put-{key}").into_bytes(),
            ts: Some(ts),
            ttl_ms: None,
            durability: None,
        };
        client.put(put).await.expect("put");
    }
}

async fn state(client: &Client) -> Vec<Option<(String, VersionId)>> {
    let mut out = Vec::new();
    for key in KEYS {
        let row = client.get(Get::new("t", Key::new(key.as_bytes(), b""))).await.expect("get");
        out.push(row.map(|r| (String::from_utf8(r.value).expect("utf8"), r.version)));
    }
    out
}

fn values(state: &[Option<(String, VersionId)>]) -> Vec<Option<&str>> {
    state.iter().map(|s| s.as_ref().map(|(v, _)| v.as_str())).collect()
}

/// Starts a server with table `t` (id 1), and builds the replace load for it once.
fn server_and_load(work: &Path, snapshot_ms: u64) -> (Server, String) {
    let server = Server::start();
    let out = work.join("load");
    let partitions = runtime().block_on(async {
        let client = server.client().await;
        let info = client.create_table("t", TableSettings::default()).await.expect("create");
        assert_eq!(info.id, 1, "the first table of a fresh store");
        client.topology().await.expect("topology").partition_count
    });
    if !out.exists() {
        let input = work.join("rows.jsonl");
        bulk::write_jsonl(&input, &load_rows());
        let snapshot = snapshot_ms.to_string();
        bulk::build(
            "t",
            1,
            partitions,
            &[&input],
            &out,
            &["--format", "jsonl", "--mode", "replace", "--snapshot-ts", &snapshot],
        );
    }
    (server, out.display().to_string())
}

#[test]
fn a_replace_load_keeps_exactly_the_newer_writes_in_either_order_and_rolls_back() {
    let work = test_dir("nacre-bulk-");
    let snapshot_ms = bulk::now_ms() - 600_000;

    let (writes_first, dir) = server_and_load(work.path(), snapshot_ms);
    let (before, after, rolled_back) = runtime().block_on(async {
        let client = writes_first.client().await;
        put_writes(&client, snapshot_ms).await;
        let before = state(&client).await;
        let load = client.bulk_link(&dir).await.expect("link");
        let after = state(&client).await;
        client.bulk_rollback(load.load_id).await.expect("rollback");
        (before, after, state(&client).await)
    });
    drop(writes_first);
    assert_eq!(
        values(&after),
        vec![
            Some("bulk-in-load-older"),
            Some("put-in-load-newer"),
            None,
            Some("put-newer-only"),
            Some("bulk-load-only")
        ]
    );
    assert_eq!(rolled_back, before, "the rollback restores every key, versions included");

    let (link_first, dir) = server_and_load(work.path(), snapshot_ms);
    let linked_first = runtime().block_on(async {
        let client = link_first.client().await;
        client.bulk_link(&dir).await.expect("link");
        put_writes(&client, snapshot_ms).await;
        state(&client).await
    });
    // Direct writes' origins carry a per-process counter, so compare what the ordering rule
    // decides on: value, ts and origin kind.
    let decided = |s: &[Option<(String, VersionId)>]| -> Vec<Option<(String, Ts, OriginKind)>> {
        s.iter().map(|o| o.as_ref().map(|(v, id)| (v.clone(), id.ts, id.origin.kind))).collect()
    };
    assert_eq!(
        decided(&linked_first),
        decided(&after),
        "the same writes and load give the same reads, whatever the order"
    );
}
