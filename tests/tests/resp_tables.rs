//! Where the RESP door keeps what it is sent, and that it keeps it: keys matching a configured
//! prefix live in that prefix's table (created at startup), other keys in the default table,
//! strings at the empty sort key and hash fields at their own; Nacre's own protocol reads the
//! same rows; SCAN lists the keys of every door table; and with `durability = "sync"` every
//! acknowledged RESP write, counter increments included, survives SIGKILL.

use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::{Get, Key};
use redis::aio::ConnectionManager;
use std::collections::BTreeSet;

const CONFIG: &str = r#"
[resp]
durability = "sync"

[resp.prefixes]
"session:" = "sessions"
"session:admin:" = "admins"
"#;

/// INCRs sent before the kill; every one was acknowledged, so every one must count.
const INCRS: i64 = 200;

async fn manager(server: &Server) -> ConnectionManager {
    let url = format!("redis://{}/", server.resp_addr());
    let client = redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("{url}: {e}"));
    client.get_connection_manager().await.unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
}

/// The value of `(table, pk, sk)` read through Nacre's own protocol.
async fn row(server: &Server, table: &str, pk: &str, sk: &str) -> Option<Vec<u8>> {
    let client = server.client().await;
    let get = Get { table: table.into(), key: Key::new(pk.as_bytes(), sk.as_bytes()), as_of: None };
    client.get(get).await.unwrap_or_else(|e| panic!("get {table}/{pk}/{sk}: {e}")).map(|r| r.value)
}

async fn scan_all(con: &mut ConnectionManager) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut cursor: u64 = 0;
    for _ in 0..10_000 {
        let (next, page): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(2).query_async(con).await.expect("SCAN");
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
    panic!("SCAN did not finish");
}

async fn check(server: &Server, con: &mut ConnectionManager, when: &str) {
    assert_eq!(row(server, "sessions", "session:1", "").await.as_deref(), Some(&b"a"[..]), "{when}: sessions string");
    assert_eq!(row(server, "sessions", "session:2", "f").await.as_deref(), Some(&b"v"[..]), "{when}: hash field");
    assert_eq!(
        row(server, "admins", "session:admin:7", "").await.as_deref(),
        Some(&b"root"[..]),
        "{when}: longest prefix"
    );
    assert_eq!(row(server, "redis", "user:1", "").await.as_deref(), Some(&b"b"[..]), "{when}: default table");
    assert_eq!(row(server, "redis", "session:1", "").await, None, "{when}: a prefixed key is not in the default table");
    let counter: i64 = redis::cmd("GET").arg("counter").query_async(con).await.expect("GET counter");
    assert_eq!(counter, INCRS, "{when}: every acknowledged INCR counts");
    let want: BTreeSet<String> =
        ["counter", "session:1", "session:2", "session:admin:7", "user:1"].iter().map(|s| s.to_string()).collect();
    assert_eq!(scan_all(con).await, want, "{when}: SCAN lists every door table's keys once");
}

#[test]
fn prefixes_pick_tables_and_sync_writes_survive_sigkill() {
    let mut server =
        Server::start_with(ServerOptions { config: Some(CONFIG.into()), resp: true, ..Default::default() });
    let rt = nacre_tests::runtime();
    rt.block_on(async {
        let mut con = manager(&server).await;
        let () = redis::cmd("SET").arg("session:1").arg("a").query_async(&mut con).await.expect("SET");
        let () = redis::cmd("SET").arg("session:admin:7").arg("root").query_async(&mut con).await.expect("SET");
        let () = redis::cmd("SET").arg("user:1").arg("b").query_async(&mut con).await.expect("SET");
        let added: i64 =
            redis::cmd("HSET").arg("session:2").arg("f").arg("v").query_async(&mut con).await.expect("HSET");
        assert_eq!(added, 1);
        for i in 1..=INCRS {
            let n: i64 = redis::cmd("INCR").arg("counter").query_async(&mut con).await.expect("INCR");
            assert_eq!(n, i);
        }
        check(&server, &mut con, "before the kill").await;
    });
    server.sigkill();
    server.restart();
    rt.block_on(async {
        let mut con = manager(&server).await;
        check(&server, &mut con, "after SIGKILL and restart").await;
    });
}
