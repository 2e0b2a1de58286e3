//! All or nothing: nacred is killed (SIGKILL, by a failpoint) at every step of a bulk link and of
//! a rollback across 2 shards and 8 partitions. After recovery each read sees the whole load or
//! none of it, and `bulk status` says which. A link cut short can be retried.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{BulkLoadState, Client, ClientError, ErrorCode, Key, Put, TableSettings, Ts};
use std::path::Path;
use std::time::Duration;

const PARTITIONS: u32 = 8;
const KEYS: usize = 400;

fn key(i: usize) -> String {
    format!("key-{i}")
}

/// Starts a server armed with `failpoint`, with table `t` holding an old value for every key
/// written before the snapshot.
fn armed_server(failpoint: &str, snapshot_ms: u64) -> Server {
    let server = Server::start_with(ServerOptions {
        cores: 2,
        config: Some(format!("partitions = {PARTITIONS}\n")),
        env: vec![("NACRE_FAILPOINT".into(), failpoint.into())],
        ..ServerOptions::default()
    });
    runtime().block_on(async {
        let client = server.client().await;
        let info = client.create_table("t", TableSettings::default()).await.expect("create");
        assert_eq!(info.id, 1);
        for i in 0..KEYS {
            let put = Put {
                table: "t".into(),
                key: Key::new(key(i).as_bytes(), b""),
                value: b"old".to_vec(),
                ts: Some(Ts::from_millis(snapshot_ms - 1000)),
                ttl_ms: None,
                durability: None,
            };
            client.put(put).await.expect("put");
        }
    });
    server
}

/// Every key's value: "old" (before the load) or "new" (the load's); never missing, since even
/// a replace load that is visible holds every key.
async fn values(client: &Client) -> Vec<String> {
    bulk::values_of(client, "t", (0..KEYS).map(key), "missing").await
}

fn all(value: &str) -> Vec<String> {
    vec![value.to_owned(); KEYS]
}

fn build_load(work: &Path, snapshot_ms: u64) -> String {
    let out = work.join("load");
    if !out.exists() {
        let rows: Vec<Row> = (0..KEYS).map(|i| Row::new(key(i), "", "new")).collect();
        let input = work.join("rows.jsonl");
        bulk::write_jsonl(&input, &rows);
        let snapshot = snapshot_ms.to_string();
        bulk::build(
            "t",
            1,
            PARTITIONS,
            &[&input],
            &out,
            &["--format", "jsonl", "--mode", "replace", "--snapshot-ts", &snapshot],
        );
    }
    out.display().to_string()
}

/// The load's state after recovery: `None` when no record of it exists.
async fn status(client: &Client, load: u32) -> Option<BulkLoadState> {
    match client.bulk_status(Some(load)).await {
        Ok(loads) => Some(loads[0].state),
        Err(ClientError::Server { code: ErrorCode::UnknownLoad, .. }) => None,
        Err(e) => panic!("bulk status: {e}"),
    }
}

fn load_id(dir: &str) -> u32 {
    bulk::descriptor(Path::new(dir))["load_id"].as_u64().expect("a load id") as u32
}

/// Waits for the failpoint's kill, then restarts with no failpoint armed.
fn recover_after_kill(server: &mut Server) {
    let status = server.wait_exit(Duration::from_secs(60));
    assert!(!status.success(), "the failpoint killed nacred: {status}");
    server.set_env(Vec::new());
    server.restart();
}

/// What recovery decided stays decided: another kill and recovery read the same.
fn stable_across_a_crash(server: &mut Server, failpoint: &str) {
    let before = runtime().block_on(async { values(&server.client().await).await });
    server.sigkill();
    server.restart();
    let after = runtime().block_on(async { values(&server.client().await).await });
    assert_eq!(after, before, "{failpoint}: a second recovery changes nothing");
}

#[test]
fn a_link_killed_at_any_step_recovers_to_all_or_nothing() {
    let work = test_dir("nacre-bulk-");
    let snapshot_ms = bulk::now_ms() - 600_000;
    let dir = build_load(work.path(), snapshot_ms);
    let load = load_id(&dir);
    let steps = [
        ("bulk-link:after-validate", None),
        ("bulk-link:after-preparing-record", Some(BulkLoadState::Aborted)),
        ("bulk-link:after-prepare", Some(BulkLoadState::Aborted)),
        ("bulk-link:after-commit:1", Some(BulkLoadState::Aborted)),
        ("bulk-link:after-commit:5", Some(BulkLoadState::Aborted)),
        ("bulk-link:after-commit:8", Some(BulkLoadState::Aborted)),
        ("bulk-link:after-commit-record", Some(BulkLoadState::Committed)),
    ];
    for (failpoint, expected) in steps {
        let mut server = armed_server(failpoint, snapshot_ms);
        runtime().block_on(async {
            let client = server.client().await;
            let outcome = client.bulk_link(&dir).await;
            assert!(outcome.is_err(), "{failpoint}: the daemon dies before answering: {outcome:?}");
        });
        recover_after_kill(&mut server);
        runtime().block_on(async {
            let client = server.client().await;
            let state = status(&client, load).await;
            assert_eq!(state, expected, "{failpoint}: bulk status after recovery");
            let visible = values(&client).await;
            let whole = if state == Some(BulkLoadState::Committed) { all("new") } else { all("old") };
            assert_eq!(visible, whole, "{failpoint}: every read sees the whole load or none of it");
            if state != Some(BulkLoadState::Committed) {
                let retried = client.bulk_link(&dir).await.expect("a cut-short link can be retried");
                assert_eq!(retried.state, BulkLoadState::Committed, "{failpoint}");
                assert_eq!(values(&client).await, all("new"), "{failpoint}: the retry is whole");
            }
        });
        stable_across_a_crash(&mut server, failpoint);
    }
}

#[test]
fn a_rollback_killed_at_any_step_recovers_rolled_back() {
    let work = test_dir("nacre-bulk-");
    let snapshot_ms = bulk::now_ms() - 600_000;
    let dir = build_load(work.path(), snapshot_ms);
    let load = load_id(&dir);
    for failpoint in ["bulk-rollback:after-record", "bulk-rollback:after-unlink:1"] {
        let mut server = armed_server(failpoint, snapshot_ms);
        runtime().block_on(async {
            let client = server.client().await;
            client.bulk_link(&dir).await.expect("link");
            assert_eq!(values(&client).await, all("new"));
        });
        runtime().block_on(async {
            let client = server.client().await;
            assert!(client.bulk_rollback(load).await.is_err(), "{failpoint}: the daemon dies before answering");
        });
        recover_after_kill(&mut server);
        runtime().block_on(async {
            let client = server.client().await;
            assert_eq!(status(&client, load).await, Some(BulkLoadState::RolledBack), "{failpoint}");
            assert_eq!(values(&client).await, all("old"), "{failpoint}: the rollback is whole after recovery");
        });
        stable_across_a_crash(&mut server, failpoint);
    }
}
