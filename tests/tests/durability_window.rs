//! The async durability window: an acknowledged async write is durable within
//! `wal.async_commit_interval_ms` (plus one fdatasync), with no later sync write, flush or
//! shutdown to carry it. Writes through the RESP door (async by default) and async puts through
//! the native protocol, then an idle wait of many intervals, then SIGKILL: after the restart
//! every acknowledged write reads back. Before the per-shard committer, all of them were lost.

use nacre_tests::resp::{RespConnection, Value};
use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::{Durability, Get, Key, Put, TableSettings};
use std::time::Duration;

/// The window under test, milliseconds, and the idle wait before the kill: twenty windows,
/// so only an fdatasync slower than about a second could make the check fail.
const INTERVAL_MS: u64 = 50;
const IDLE: Duration = Duration::from_millis(20 * INTERVAL_MS);
const KEYS: usize = 200;

#[test]
fn async_writes_are_durable_within_the_commit_interval_without_a_later_sync() {
    let config = format!("[wal]\nasync_commit_interval_ms = {INTERVAL_MS}\n");
    let mut server = Server::start_with(ServerOptions { config: Some(config), resp: true, ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let client = runtime.block_on(server.client());
    runtime.block_on(client.create_table("native", TableSettings::default())).expect("create_table");
    let mut resp = RespConnection::open(server.resp_addr());
    for i in 0..KEYS {
        let reply = resp.call(&["SET", &format!("window:{i}"), &format!("value-{i}")]);
        assert_eq!(reply, Value::Simple("OK".into()), "SET {i}");
    }
    runtime.block_on(async {
        for i in 0..KEYS {
            let mut put = Put::new("native", Key::new(format!("k{i}"), ""), format!("v{i}"));
            put.durability = Some(Durability::Async);
            client.put(put).await.expect("async put");
        }
    });
    drop((resp, client));
    std::thread::sleep(IDLE);
    server.sigkill();
    server.restart();

    let mut resp = RespConnection::open(server.resp_addr());
    let lost: Vec<usize> = (0..KEYS)
        .filter(|i| resp.call(&["GET", &format!("window:{i}")]) != Value::Bulk(format!("value-{i}").into_bytes()))
        .collect();
    assert!(lost.is_empty(), "{} of {KEYS} acknowledged RESP SETs were lost: {lost:?}", lost.len());
    let client = runtime.block_on(server.client());
    runtime.block_on(async {
        for i in 0..KEYS {
            let row = client.get(Get::new("native", Key::new(format!("k{i}"), ""))).await.expect("get");
            assert_eq!(row.map(|r| r.value), Some(format!("v{i}").into_bytes()), "async put {i} was lost");
        }
    });
}
