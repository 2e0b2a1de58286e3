//! A v1 client against the current `nacred`: the suite that keeps protocol version 1 working on
//! every commit. It speaks only through `nacre-v1-client` (built from the frozen schema); the
//! harness just starts and stops the daemon. If a test here fails, the server broke v1 clients:
//! fix the server (or the shim in daemon/src/compat.rs), never this suite or the frozen schema.
//!
//! The requests use the documented defaults a legacy client relies on: no timestamp (the server
//! assigns one), no durability (the server's default), no TTL (the table's default).

use nacre_tests::server::{Server, ServerOptions};
use nacre_v1_client::{
    AlterTable, BatchOp, Durability, Error, ErrorCode, Key, Options, OriginKind, ScanRange, TableSettings, V1Client,
    Version, WriteOptions,
};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The value limit the daemon runs with here, so "over the limit" is cheap to send.
const MAX_VALUE_BYTES: usize = 4096;
/// A table's default TTL in these tests: long enough that nothing expires during a run.
const TABLE_TTL_MS: u64 = 3_600_000;

fn start() -> Server {
    let config = format!("[limits]\nmax_value_bytes = {MAX_VALUE_BYTES}\n");
    Server::start_with(ServerOptions { config: Some(config), ..ServerOptions::default() })
}

fn connect(server: &Server, addr: SocketAddr) -> V1Client {
    let options = Options { client_name: "v1-suite".to_owned(), ..Options::default() };
    V1Client::connect(addr, options).unwrap_or_else(|e| panic!("connecting to {addr}: {e}\n{}", server.log_tail()))
}

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit in u64")
}

/// The code of a refused request, or a panic naming what came instead.
fn code<T: std::fmt::Debug>(result: Result<T, Error>, case: &str) -> ErrorCode {
    match result {
        Err(Error::Server(e)) => e.code,
        other => panic!("{case}: expected a typed server error, got {other:?}"),
    }
}

#[test]
fn the_handshake_negotiates_version_1_on_every_port() {
    let server = start();
    let shard_ports: Vec<u16> = (0..server.cores()).map(|s| server.shard_addr(s).port()).collect();
    for addr in server.ports() {
        let mut client = connect(&server, addr);
        let greeting = client.greeting().clone();
        assert_eq!(greeting.protocol_version, 1, "port {addr}");
        assert_eq!(greeting.server_name, "nacred");
        let t = &greeting.topology;
        assert!(t.partition_count >= 1, "{t:?}");
        assert_eq!(t.owner_ports.len(), t.partition_count as usize, "one owner per partition");
        assert!(t.owner_ports.iter().all(|p| shard_ports.contains(p)), "{t:?} vs shard ports {shard_ports:?}");
        assert_eq!(usize::try_from(t.shard_count).expect("small"), server.cores());
        assert_eq!(client.topology().expect("topology"), greeting.topology, "handshake and GetTopology agree");
    }
}

/// The handshake names the highest version a client speaks; the server answers
/// `min(asked, its highest)`. A v1 client never sees more than it asked for.
#[test]
fn a_higher_version_is_answered_with_the_servers_highest() {
    let server = start();
    let ask = |version: u32| {
        let client = V1Client::connect_asking(server.addr(), Options::default(), version)
            .unwrap_or_else(|e| panic!("handshake asking {version}: {e}\n{}", server.log_tail()));
        client.greeting().protocol_version
    };
    let highest = ask(u32::MAX);
    assert!((1..u32::MAX).contains(&highest), "the server's highest version is {highest}");
    for asked in [highest, highest + 1, highest.saturating_add(1000)] {
        assert_eq!(ask(asked), highest, "asking {asked}");
    }
    assert_eq!(ask(1), 1, "a v1 client gets v1");
    let zero = V1Client::connect_asking(server.addr(), Options::default(), 0);
    assert_eq!(code(zero, "version 0"), ErrorCode::ProtocolVersion);
}

#[test]
fn tables_are_created_listed_altered_and_dropped() {
    let server = start();
    let mut c = connect(&server, server.addr());
    let settings = TableSettings { max_versions: 5, version_retention_ms: Some(60_000), ..TableSettings::default() };
    let created = c.create_table("b-table", &settings).expect("create_table");
    assert_eq!(created.name, "b-table");
    assert_eq!((created.settings.max_versions, created.settings.version_retention_ms), (5, Some(60_000)));
    assert_eq!(created.settings.default_ttl_ms, None);
    c.create_table("a-table", &TableSettings::default()).expect("create_table with the schema's defaults");
    assert_eq!(code(c.create_table("a-table", &settings), "create twice"), ErrorCode::TableExists);

    let tables = c.list_tables().expect("list_tables");
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a-table", "b-table"], "name order");
    assert_eq!(tables[0].settings.max_versions, 3, "the schema's default max_versions");

    let rule = [OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct];
    let alter = AlterTable {
        name: "b-table".into(),
        default_ttl_ms: Some(TABLE_TTL_MS),
        clear_version_retention: true,
        tie_rule: Some(rule),
        ..AlterTable::default()
    };
    let altered = c.alter_table(&alter).expect("alter_table");
    assert_eq!(altered.settings.default_ttl_ms, Some(TABLE_TTL_MS));
    assert_eq!(altered.settings.version_retention_ms, None);
    assert_eq!(altered.settings.max_versions, 5, "an absent setting is kept");
    assert_eq!(altered.settings.tie_rule, Some(rule));

    c.drop_table("a-table").expect("drop_table");
    let names: Vec<String> = c.list_tables().expect("list_tables").into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["b-table"]);
    assert_eq!(code(c.drop_table("a-table"), "drop twice"), ErrorCode::UnknownTable);
}

/// Put, get, delete, batch, multi-get and versions, with the defaults a legacy client leaves to
/// the server, through every port (whatever a port does not own it forwards).
#[test]
fn writes_and_reads_round_trip_with_the_documented_defaults() {
    let server = start();
    let mut admin = connect(&server, server.addr());
    admin.create_table("plain", &TableSettings::default()).expect("create plain");
    let ttl = TableSettings { default_ttl_ms: Some(TABLE_TTL_MS), ..TableSettings::default() };
    admin.create_table("ttl", &ttl).expect("create ttl");
    for (i, addr) in server.ports().into_iter().enumerate() {
        let mut c = connect(&server, addr);
        let case = format!("port {addr}");
        point_writes(&mut c, &format!("p{i}"), &case);
        batches_and_multi_get(&mut c, &format!("p{i}"), &case);
    }
}

fn point_writes(c: &mut V1Client, prefix: &str, case: &str) {
    let key = Key::new(format!("{prefix}-user"), "profile");
    let before_ms = now_ms();
    let v1 = c.put("plain", &key, b"one", &WriteOptions::default()).expect("put");
    assert!(v1.millis() >= before_ms, "{case}: a server timestamp comes from the server's clock: {v1:?}");
    assert_eq!(v1.origin.kind, OriginKind::Direct, "{case}");
    let row = c.get("plain", &key, None).expect("get").expect("the row is visible");
    assert_eq!((row.value.as_slice(), row.version, row.expires_at_ms), (&b"one"[..], v1, None), "{case}");

    // The table's default TTL applies to a put that carries none; an explicit one wins.
    let expiring = c.put("ttl", &key, b"soon", &WriteOptions::default()).expect("put in the TTL table");
    let row = c.get("ttl", &key, None).expect("get").expect("visible until it expires");
    assert_eq!(row.expires_at_ms, Some(expiring.millis() + TABLE_TTL_MS), "{case}: the table's default TTL");
    let own = WriteOptions { ttl_ms: Some(10 * TABLE_TTL_MS), ..WriteOptions::default() };
    let v = c.put("ttl", &key, b"later", &own).expect("put with a TTL");
    let row = c.get("ttl", &key, None).expect("get").expect("visible");
    assert_eq!(row.expires_at_ms, Some(v.millis() + 10 * TABLE_TTL_MS), "{case}: an explicit TTL");

    // Every durability is served; the default is what a legacy client sends.
    let sync = WriteOptions { durability: Durability::Sync, ..WriteOptions::default() };
    let v2 = c.put("plain", &key, b"two", &sync).expect("put, sync");
    let asynchronous = WriteOptions { durability: Durability::Async, ..WriteOptions::default() };
    let v3 = c.put("plain", &key, b"three", &asynchronous).expect("put, async");
    assert!(v1.ts < v2.ts && v2.ts < v3.ts, "{case}: server timestamps increase: {v1:?} {v2:?} {v3:?}");
    let explicit = WriteOptions { ts: Some(v3.ts + 1), ..WriteOptions::default() };
    let v4 = c.put("plain", &key, b"four", &explicit).expect("put with a ts");
    assert_eq!(v4.ts, v3.ts + 1, "{case}: a client timestamp is kept");

    let old = c.get("plain", &key, Some(v2.ts)).expect("get as of").expect("visible then");
    assert_eq!(old.value, b"two", "{case}: as_of reads the past");
    let gone = c.delete("plain", &key, &WriteOptions::default()).expect("delete");
    assert!(gone.ts > v4.ts, "{case}");
    assert_eq!(c.get("plain", &key, None).expect("get"), None, "{case}: deleted");

    // Greatest first: the tombstone, then the puts. max_versions (3, the default) is a floor on
    // what is kept; older versions go when the server trims them, not necessarily yet.
    let history = c.versions("plain", &key).expect("versions");
    let ids: Vec<Version> = history.versions.iter().map(|e| e.version).collect();
    let written = [gone, v4, v3, v2, v1];
    assert!(ids.len() >= 3 && written.starts_with(&ids), "{case}: {ids:?} is not a prefix of {written:?}");
    let tombstones: Vec<bool> = history.versions.iter().map(|e| e.tombstone).take(3).collect();
    assert_eq!(tombstones, [true, false, false], "{case}");
    assert_eq!(history.versions[1].value, b"four", "{case}");
}

fn batches_and_multi_get(c: &mut V1Client, prefix: &str, case: &str) {
    let pk = format!("{prefix}-batch");
    let ops: Vec<BatchOp> = (0..5)
        .map(|i| BatchOp::Put {
            key: Key::new(pk.clone(), format!("s{i}")),
            value: vec![b'a' + i],
            ts: None,
            ttl_ms: None,
        })
        .chain([BatchOp::Delete { key: Key::new(pk.clone(), "s0"), ts: None }])
        .collect();
    let versions = c.write_batch("ttl", &ops, Durability::Default).expect("write_batch");
    assert_eq!(versions.len(), ops.len(), "{case}: one version per op");
    assert!(versions.windows(2).all(|w| w[0].ts < w[1].ts), "{case}: in op order: {versions:?}");
    let row = c.get("ttl", &Key::new(pk.clone(), "s3"), None).expect("get").expect("written by the batch");
    assert_eq!(row.value, b"d", "{case}");
    assert_eq!(row.expires_at_ms, Some(versions[3].millis() + TABLE_TTL_MS), "{case}: a batch op gets the table TTL");

    // Keys across many partitions (so across shards), one never written, one deleted.
    let mut keys: Vec<Key> = (0..20).map(|i| Key::new(format!("{prefix}-mg-{i}"), "")).collect();
    for (i, key) in keys.iter().enumerate() {
        c.put("plain", key, format!("v{i}").as_bytes(), &WriteOptions::default()).expect("put");
    }
    keys.push(Key::new(format!("{prefix}-never"), ""));
    keys.push(Key::new(pk, "s0"));
    let rows = c.multi_get("ttl", &keys[20..], None).expect("multi_get in ttl");
    assert_eq!(rows, [None, None], "{case}: never written, deleted in the batch");
    let rows = c.multi_get("plain", &keys, None).expect("multi_get");
    assert_eq!(rows.len(), keys.len(), "{case}");
    for (i, row) in rows.iter().take(20).enumerate() {
        let row = row.as_ref().unwrap_or_else(|| panic!("{case}: key {i} is missing"));
        assert_eq!(row.value, format!("v{i}").as_bytes(), "{case}: results follow the keys' order");
    }
    assert!(rows[20..].iter().all(Option::is_none), "{case}");
}

#[test]
fn scans_page_through_cursors_in_both_directions() {
    let server = start();
    let mut c = connect(&server, server.addr());
    c.create_table("rows", &TableSettings::default()).expect("create");
    let sort_keys: Vec<String> = (0..25).map(|i| format!("row-{i:02}")).collect();
    for sk in &sort_keys {
        c.put("rows", &Key::new("pk", sk.as_str()), sk.as_bytes(), &WriteOptions::default()).expect("put");
    }
    c.put("rows", &Key::new("other-pk", "row-00"), b"elsewhere", &WriteOptions::default()).expect("put");
    let got = |rows: &[nacre_v1_client::ScanRow]| -> Vec<String> {
        rows.iter().map(|r| String::from_utf8(r.sort_key.clone()).expect("utf-8")).collect()
    };

    let range = ScanRange { limit: 7, ..ScanRange::default() };
    let first = c.scan("rows", b"pk", &range, None).expect("scan");
    assert!(first.rows.len() <= 7 && first.cursor.is_some(), "a page holds at most limit rows: {first:?}");
    let (rows, pages) = c.scan_all("rows", b"pk", &range, 100).expect("scan_all");
    assert_eq!(got(&rows), sort_keys, "every row once, in order, only this partition key");
    assert!(pages >= 4, "25 rows at 7 a page take at least 4 pages, took {pages}");
    assert!(rows.iter().all(|r| r.value == r.sort_key && r.expires_at_ms.is_none()));

    let reverse = ScanRange { limit: 10, reverse: true, ..ScanRange::default() };
    let (rows, _) = c.scan_all("rows", b"pk", &reverse, 100).expect("reverse scan");
    let mut descending = sort_keys.clone();
    descending.reverse();
    assert_eq!(got(&rows), descending);

    let bounded =
        ScanRange { from: Some(b"row-05".to_vec()), to: Some(b"row-09".to_vec()), limit: 2, ..ScanRange::default() };
    let (rows, _) = c.scan_all("rows", b"pk", &bounded, 100).expect("bounded scan");
    assert_eq!(got(&rows), sort_keys[5..=9], "from and to are inclusive");

    // Limit 0 asks for the server's default page size, which holds these 25 rows at once.
    let page = c.scan("rows", b"pk", &ScanRange::default(), None).expect("default page");
    assert_eq!((page.rows.len(), page.cursor), (25, None));
}

#[test]
fn stats_are_served() {
    let server = start();
    let mut c = connect(&server, server.addr());
    let stats = c.stats().expect("stats");
    let connections: Vec<_> = stats.iter().filter(|s| s.name == "connections").collect();
    assert_eq!(connections.len(), server.cores(), "one connections gauge per shard: {stats:?}");
    assert!(connections.iter().map(|s| s.value).sum::<u64>() >= 1, "this connection is counted");
    assert!(stats.iter().any(|s| s.partition.is_some()), "partition stats are there");
}

/// Refusals come back as typed errors under the request's id, and the connection keeps serving.
#[test]
fn errors_come_back_typed() {
    let server = start();
    let mut c = connect(&server, server.addr());
    c.create_table("t", &TableSettings::default()).expect("create");
    let key = Key::new("k", "");
    let none = WriteOptions::default();

    assert_eq!(code(c.put("missing", &key, b"v", &none), "put"), ErrorCode::UnknownTable);
    assert_eq!(code(c.get("missing", &key, None), "get"), ErrorCode::UnknownTable);
    assert_eq!(code(c.delete("missing", &key, &none), "delete"), ErrorCode::UnknownTable);
    assert_eq!(code(c.multi_get("missing", std::slice::from_ref(&key), None), "multi_get"), ErrorCode::UnknownTable);
    assert_eq!(code(c.scan("missing", b"k", &ScanRange::default(), None), "scan"), ErrorCode::UnknownTable);
    assert_eq!(code(c.versions("missing", &key), "versions"), ErrorCode::UnknownTable);
    let op = BatchOp::Put { key: key.clone(), value: b"v".to_vec(), ts: None, ttl_ms: None };
    let batch = c.write_batch("missing", std::slice::from_ref(&op), Durability::Default);
    assert_eq!(code(batch, "write_batch"), ErrorCode::UnknownTable);

    c.put("t", &key, &vec![7u8; MAX_VALUE_BYTES], &none).expect("a value at the limit is accepted");
    let over = c.put("t", &key, &vec![7u8; MAX_VALUE_BYTES + 1], &none);
    assert_eq!(code(over, "a value one byte over the limit"), ErrorCode::ValueTooLarge);
    let big = vec![7u8; MAX_VALUE_BYTES + 1];
    let big_op = BatchOp::Put { key: key.clone(), value: big, ts: None, ttl_ms: None };
    assert_eq!(code(c.write_batch("t", &[big_op], Durability::Default), "batch value"), ErrorCode::ValueTooLarge);
    assert_eq!(code(c.put("t", &Key::new(vec![1u8; 1025], ""), b"v", &none), "long key"), ErrorCode::KeyTooLarge);

    let spread: Vec<BatchOp> = (0..16)
        .map(|i| BatchOp::Put {
            key: Key::new(format!("spread-{i}"), ""),
            value: b"v".to_vec(),
            ts: None,
            ttl_ms: None,
        })
        .collect();
    let cross = c.write_batch("t", &spread, Durability::Default);
    assert_eq!(code(cross, "a batch over 16 partition keys"), ErrorCode::CrossPartitionBatch);
    assert_eq!(code(c.write_batch("t", &[], Durability::Default), "an empty batch"), ErrorCode::BadRequest);
    let zero_versions = TableSettings { max_versions: 0, ..TableSettings::default() };
    assert_eq!(code(c.create_table("u", &zero_versions), "max_versions 0"), ErrorCode::BadRequest);

    // Nothing refused was written, and the connection still serves.
    let row = c.get("t", &key, None).expect("get").expect("the accepted put");
    assert_eq!(row.value.len(), MAX_VALUE_BYTES);
    assert_eq!(c.multi_get("t", &[Key::new("spread-0", "")], None).expect("multi_get"), [None]);
}
