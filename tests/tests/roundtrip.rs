//! Every request type round-trips through the real daemon, three ways:
//!
//! 1. through a shard-aware client, many requests in flight at once on one client;
//! 2. through a shard-unaware client, so everything enters by the shared port and whatever the
//!    receiving shard does not own is forwarded;
//! 3. as raw frames sent to each shard's own port about keys the *other* shard owns, pipelined
//!    on one connection, so every answer comes through the mesh.

use nacre_tests::raw::{RawConnection, Received};
use nacre_tests::server::{Server, client_options};
use nacre_wire::{
    AlterTable, BatchOp, Client, ClientError, CreateTable, Delete, ErrorCode, Explain, ExplainVerdict, Get, Key,
    KeyHistory, MultiGet, OriginKind, Payload, Put, Reply, Request, RuleStep, Scan, ScanRow, TableInfo, TableSettings,
    Ts, VersionId, Versions, WriteBatch,
};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Keys written concurrently by each pipelined round.
const PIPELINED_KEYS: usize = 300;

#[test]
fn every_request_round_trips_through_shard_aware_and_unaware_clients() {
    let server = Server::start();
    let shard_ports: BTreeSet<u16> = (0..server.cores()).map(|s| server.shard_addr(s).port()).collect();
    nacre_tests::runtime().block_on(async {
        let aware = Arc::new(server.client().await);
        check_topology(&aware, &shard_ports).await;
        exercise(aware.clone(), "aware", &shard_ports).await;

        let unaware =
            Arc::new(server.client_with(nacre_wire::ClientOptions { shard_aware: false, ..client_options() }).await);
        exercise(unaware.clone(), "unaware", &shard_ports).await;

        // Each client reads what the other wrote: both paths reach the same owners.
        for i in 0..20 {
            let key = Key::new(format!("shared-{i}"), "");
            let written = aware.put(Put::new("unaware", key.clone(), "from aware")).await.expect("put");
            let row = unaware.get(Get::new("unaware", key)).await.expect("get").expect("present");
            assert_eq!((row.value.as_slice(), row.version), (&b"from aware"[..], written));
        }
    });
}

#[test]
fn raw_frames_to_a_non_owning_shard_port_are_forwarded_and_answered() {
    let server = Server::start();
    let topology = nacre_tests::runtime().block_on(async {
        let client = server.client().await;
        client.create_table("raw", TableSettings::default()).await.expect("create_table");
        client.topology().await.expect("topology")
    });
    for shard in 0..server.cores() {
        let addr = server.shard_addr(shard);
        let foreign: Vec<Vec<u8>> = (0..)
            .map(|i| format!("raw-{shard}-{i}").into_bytes())
            .filter(|pk| topology.owner_port(pk) != Some(addr.port()))
            .take(40)
            .collect();
        let mut raw = RawConnection::open(addr);
        raw_writes_and_reads(&mut raw, &foreign, &format!("v{shard}"));
        raw_batch_scan_versions_delete(&mut raw, &foreign[0]);
        raw_admin_and_server_requests(&mut raw, shard, topology.partition_count);
    }
    // A table created through shard 1's port (forwarded to shard 0, which owns the catalog) is
    // usable everywhere.
    nacre_tests::runtime().block_on(async {
        let client = server.client().await;
        let names: Vec<String> = client.list_tables().await.expect("list").into_iter().map(|t| t.name).collect();
        assert!(names.contains(&"raw-made-by-1".to_owned()), "{names:?}");
        client.put(Put::new("raw-made-by-1", Key::new("x", ""), "y")).await.expect("put in the forwarded table");
    });
}

/// The topology the daemon reports matches its ports and deals every partition to a shard.
async fn check_topology(client: &Client, shard_ports: &BTreeSet<u16>) {
    let topology = client.topology().await.expect("topology");
    assert_eq!(topology, client.server().topology, "handshake and Topology agree");
    assert_eq!(topology.partition_count, 64, "the default partition count");
    assert_eq!(topology.shard_count as usize, shard_ports.len());
    assert_eq!(topology.owner_ports.len(), 64);
    let used: BTreeSet<u16> = topology.owner_ports.iter().copied().collect();
    assert_eq!(&used, shard_ports, "every shard owns partitions, and only shard ports are named");
}

/// The code of a server error; panics on anything else.
fn server_code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("fits")
}

/// Every request type through `client`, on a table named `table`.
async fn exercise(client: Arc<Client>, table: &str, shard_ports: &BTreeSet<u16>) {
    tables(&client, table).await;
    pipelined_puts_gets_and_multi_get(&client, table, shard_ports).await;
    as_of_versions_delete_and_ttl(&client, table).await;
    batches_and_scans(&client, table).await;
    stats(&client, shard_ports.len()).await;
    drop_table(&client, table).await;
}

async fn tables(client: &Client, table: &str) {
    let settings = TableSettings { max_versions: 5, ..TableSettings::default() };
    let info = client.create_table(table, settings).await.expect("create_table");
    assert_eq!(info, TableInfo { name: table.to_owned(), settings, id: info.id });
    assert_ne!(info.id, 0, "a table's id is shown");
    assert_eq!(server_code(client.create_table(table, settings).await), ErrorCode::TableExists);
    assert_eq!(server_code(client.create_table("", settings).await), ErrorCode::BadRequest);
    let bad = TableSettings { max_versions: 0, ..settings };
    assert_eq!(server_code(client.create_table("zero-versions", bad).await), ErrorCode::BadRequest);

    let alter = AlterTable {
        name: table.to_owned(),
        max_versions: Some(8),
        default_ttl_ms: Some(Some(3_600_000)),
        rollback_window_ms: Some(0),
        ..AlterTable::default()
    };
    let altered = client.alter_table(alter).await.expect("alter_table");
    let expected =
        TableSettings { max_versions: 8, default_ttl_ms: Some(3_600_000), rollback_window_ms: 0, ..settings };
    assert_eq!(altered.settings, expected);
    let listed = client.list_tables().await.expect("list_tables");
    assert!(listed.contains(&altered), "{listed:?}");
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "tables are listed in name order");
    let back = AlterTable { name: table.to_owned(), default_ttl_ms: Some(None), ..AlterTable::default() };
    let back = client.alter_table(back).await.expect("alter_table").settings;
    assert_eq!((back.default_ttl_ms, back.rollback_window_ms), (None, 0), "what an alter leaves out is kept");
    let missing = AlterTable { name: "no-such-table".to_owned(), ..AlterTable::default() };
    assert_eq!(server_code(client.alter_table(missing).await), ErrorCode::UnknownTable);
}

/// Puts and gets many keys with every request in flight at once, then reads them all back
/// with one multi-get spanning every shard.
async fn pipelined_puts_gets_and_multi_get(client: &Arc<Client>, table: &str, shard_ports: &BTreeSet<u16>) {
    let keys: Vec<Key> = (0..PIPELINED_KEYS).map(|i| Key::new(format!("pk-{i}"), format!("sk-{}", i % 3))).collect();
    let owners: BTreeSet<u16> =
        keys.iter().filter_map(|k| client.current_topology().owner_port(&k.partition_key)).collect();
    assert_eq!(&owners, shard_ports, "the keys span every shard");

    let mut puts = JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        let (client, key, table) = (client.clone(), key.clone(), table.to_owned());
        puts.spawn(async move {
            let value = format!("value-{i}").into_bytes();
            let version = client.put(Put::new(table, key.clone(), value.clone())).await.expect("put");
            (key, value, version)
        });
    }
    let mut written: HashMap<Key, (Vec<u8>, VersionId)> = HashMap::new();
    while let Some(done) = puts.join_next().await {
        let (key, value, version) = done.expect("put task");
        assert_eq!(version.origin.kind, OriginKind::Direct);
        written.insert(key, (value, version));
    }
    assert_eq!(written.len(), PIPELINED_KEYS);

    let mut gets = JoinSet::new();
    for key in &keys {
        let (client, key, table) = (client.clone(), key.clone(), table.to_owned());
        gets.spawn(async move { (key.clone(), client.get(Get::new(table, key)).await.expect("get")) });
    }
    while let Some(done) = gets.join_next().await {
        let (key, row) = done.expect("get task");
        let row = row.unwrap_or_else(|| panic!("{key:?} was written but reads as absent"));
        let (value, version) = &written[&key];
        assert_eq!((&row.value, &row.version, row.expires_at_ms), (value, version, None), "{key:?}");
    }

    // One multi-get over every key, with absent keys in between, answers in request order.
    let mut asked = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        asked.push(key.clone());
        if i % 50 == 0 {
            asked.push(Key::new(format!("absent-{i}"), ""));
        }
    }
    let rows = client.multi_get(MultiGet::new(table, asked.clone())).await.expect("multi_get");
    assert_eq!(rows.len(), asked.len());
    for (key, row) in asked.iter().zip(rows) {
        match (written.get(key), row) {
            (Some((value, version)), Some(row)) => assert_eq!((&row.value, &row.version), (value, version)),
            (None, None) => {}
            (expected, got) => panic!("multi_get {key:?}: expected {expected:?}, got {got:?}"),
        }
    }
    assert_eq!(
        server_code(client.multi_get(MultiGet::new("no-such-table", vec![keys[0].clone()])).await),
        ErrorCode::UnknownTable
    );
}

async fn as_of_versions_delete_and_ttl(client: &Client, table: &str) {
    let key = Key::new("history", "row");
    let v1 = client.put(Put::new(table, key.clone(), "one")).await.expect("put one");
    let v2 = client.put(Put::new(table, key.clone(), "two")).await.expect("put two");
    assert!(v2.ts > v1.ts, "a later write gets a later timestamp: {v1:?} then {v2:?}");

    let at = |ts: Ts| Get { table: table.to_owned(), key: key.clone(), as_of: Some(ts) };
    let value_at = |row: Option<nacre_wire::Row>| row.map(|r| r.value);
    assert_eq!(value_at(client.get(at(Ts(v1.ts.0 - 1))).await.expect("get")), None, "before the first write");
    assert_eq!(value_at(client.get(at(v1.ts)).await.expect("get")), Some(b"one".to_vec()));
    assert_eq!(value_at(client.get(at(Ts(v2.ts.0 - 1))).await.expect("get")), Some(b"one".to_vec()));
    assert_eq!(value_at(client.get(at(v2.ts)).await.expect("get")), Some(b"two".to_vec()));
    let multi = MultiGet { table: table.to_owned(), keys: vec![key.clone()], as_of: Some(v1.ts) };
    assert_eq!(client.multi_get(multi).await.expect("multi_get as of")[0].as_ref().map(|r| r.version), Some(v1));

    let history = client.versions(Versions::new(table, key.clone())).await.expect("versions");
    let value = |v: &str| Payload::Value { value: v.as_bytes().to_vec(), expires_at_ms: None };
    let entries: Vec<(VersionId, Payload)> = history.versions.iter().map(|e| (e.version, e.payload.clone())).collect();
    assert_eq!(entries, vec![(v2, value("two")), (v1, value("one"))], "greatest first, with origins");
    assert_eq!(history.watermark, None);

    let gone = client.delete(Delete::new(table, key.clone())).await.expect("delete");
    assert!(gone.ts > v2.ts);
    assert_eq!(client.get(Get::new(table, key.clone())).await.expect("get"), None, "deleted");
    assert_eq!(value_at(client.get(at(v2.ts)).await.expect("get")), Some(b"two".to_vec()), "as of before the delete");
    let KeyHistory { versions, .. } = client.versions(Versions::new(table, key.clone())).await.expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!((versions[0].version, &versions[0].payload), (gone, &Payload::Tombstone));
    assert_eq!(
        client.versions(Versions::new(table, Key::new("never-written", ""))).await.expect("versions"),
        KeyHistory::default()
    );

    // A client timestamp within the skew bound is kept as given, and a TTL counts from it.
    let ts = Ts::from_millis(now_ms() - 10_000);
    let mut put = Put::new(table, Key::new("given-ts", ""), "v");
    put.ts = Some(ts);
    put.ttl_ms = Some(600_000);
    let version = client.put(put).await.expect("put with ts and ttl");
    assert_eq!(version.ts, ts);
    let row = client.get(Get::new(table, Key::new("given-ts", ""))).await.expect("get").expect("present");
    assert_eq!(row.expires_at_ms, Some(ts.millis() + 600_000));
}

async fn batches_and_scans(client: &Client, table: &str) {
    let pk = b"scanned".to_vec();
    let ops: Vec<BatchOp> = (0..25)
        .map(|i| BatchOp::Put {
            key: Key::new(pk.clone(), format!("s{i:02}")),
            value: format!("row-{i}").into_bytes(),
            ts: None,
            ttl_ms: None,
        })
        .collect();
    let versions = client.write_batch(WriteBatch::new(table, ops)).await.expect("write_batch");
    assert_eq!(versions.len(), 25);
    let ops = vec![
        BatchOp::Delete { key: Key::new(pk.clone(), "s03"), ts: None },
        BatchOp::Put { key: Key::new(pk.clone(), "s04"), value: b"row-4-again".to_vec(), ts: None, ttl_ms: None },
    ];
    let second = client.write_batch(WriteBatch::new(table, ops)).await.expect("write_batch");
    let mut expected: Vec<ScanRow> = (0..25)
        .filter(|i| *i != 3)
        .map(|i| {
            let (value, version) = if i == 4 {
                (b"row-4-again".to_vec(), second[1])
            } else {
                (format!("row-{i}").into_bytes(), versions[i])
            };
            ScanRow { sort_key: format!("s{i:02}").into_bytes(), value, version, expires_at_ms: None }
        })
        .collect();

    let all =
        scan_all(client, Scan { table: table.to_owned(), partition_key: pk.clone(), limit: 7, ..Scan::default() })
            .await;
    assert_eq!(all, expected, "forward scan, paged by cursor");
    let default_limit = Scan { table: table.to_owned(), partition_key: pk.clone(), ..Scan::default() };
    let page = client.scan(default_limit).await.expect("scan");
    assert_eq!((&page.rows, &page.cursor), (&expected, &None), "limit 0 asks for the server's default page size");
    let reversed =
        Scan { table: table.to_owned(), partition_key: pk.clone(), limit: 5, reverse: true, ..Scan::default() };
    let all_reversed = scan_all(client, reversed).await;
    expected.reverse();
    assert_eq!(all_reversed, expected, "reverse scan, paged by cursor");
    expected.reverse();
    let bounded = Scan {
        table: table.to_owned(),
        partition_key: pk.clone(),
        from: Some(b"s05".to_vec()),
        to: Some(b"s10".to_vec()),
        limit: 4,
        ..Scan::default()
    };
    let rows = scan_all(client, bounded).await;
    let sort_keys: Vec<String> = rows.iter().map(|r| String::from_utf8_lossy(&r.sort_key).into_owned()).collect();
    assert_eq!(sort_keys, ["s05", "s06", "s07", "s08", "s09", "s10"], "from and to are inclusive");
    let empty = Scan { table: table.to_owned(), partition_key: b"nothing-here".to_vec(), ..Scan::default() };
    assert_eq!(scan_all(client, empty).await, Vec::new());

    // A batch across partitions: the client refuses it before sending, the server if sent.
    let (a, b) = keys_in_two_partitions(client);
    let cross = WriteBatch::new(
        table,
        vec![
            BatchOp::Put { key: a.clone(), value: b"1".to_vec(), ts: None, ttl_ms: None },
            BatchOp::Put { key: b.clone(), value: b"2".to_vec(), ts: None, ttl_ms: None },
        ],
    );
    let refused = client.write_batch(cross.clone()).await;
    assert!(matches!(refused, Err(ClientError::CrossPartitionBatch { .. })), "{refused:?}");
    match client.send(Request::WriteBatch(cross)).await.expect("send") {
        Reply::Error(e) => assert_eq!(e.code, ErrorCode::CrossPartitionBatch, "{}", e.message),
        other => panic!("a cross-partition batch was answered with {other:?}"),
    }
    for key in [a, b] {
        assert_eq!(client.get(Get::new(table, key)).await.expect("get"), None, "the refused batch wrote nothing");
    }
}

/// Every row of a scan, following cursors; checks each page respects the limit.
async fn scan_all(client: &Client, mut scan: Scan) -> Vec<ScanRow> {
    let mut rows = Vec::new();
    for _ in 0..1_000 {
        let page = client.scan(scan.clone()).await.expect("scan");
        let within = scan.limit == 0 || page.rows.len() <= scan.limit as usize;
        assert!(within, "a page of {} rows under limit {}", page.rows.len(), scan.limit);
        rows.extend(page.rows);
        match page.cursor {
            Some(cursor) => scan.cursor = Some(cursor),
            None => return rows,
        }
    }
    panic!("a scan did not finish within 1,000 pages");
}

/// Two keys in different partitions.
fn keys_in_two_partitions(client: &Client) -> (Key, Key) {
    let topology = client.current_topology();
    let a = Key::new("cross-0", "");
    let b = (1..)
        .map(|i| Key::new(format!("cross-{i}"), ""))
        .find(|k| topology.partition_of(&k.partition_key) != topology.partition_of(&a.partition_key))
        .expect("some key lands elsewhere");
    (a, b)
}

async fn stats(client: &Client, shards: usize) {
    let stats = client.stats().await.expect("stats");
    let reporting: BTreeSet<u32> = stats.iter().filter_map(|s| s.shard).collect();
    assert_eq!(reporting.len(), shards, "every shard reports, whichever one was asked: {reporting:?}");
    let partitions: BTreeSet<u32> =
        stats.iter().filter(|s| s.name == "segment_count").filter_map(|s| s.partition).collect();
    assert_eq!(partitions, (0..64).collect(), "every partition reports");
    assert!(stats.iter().any(|s| s.name == "connections" && s.value >= 1), "this client's connection counts");
}

async fn drop_table(client: &Client, table: &str) {
    client.drop_table(table).await.expect("drop_table");
    let names: Vec<String> = client.list_tables().await.expect("list").into_iter().map(|t| t.name).collect();
    assert!(!names.contains(&table.to_owned()), "{names:?}");
    assert_eq!(server_code(client.get(Get::new(table, Key::new("pk-1", "sk-1"))).await), ErrorCode::UnknownTable);
    assert_eq!(server_code(client.drop_table(table).await), ErrorCode::UnknownTable);
    // Recreate it so the other client's checks can read what was written before: a dropped
    // table's data never reappears under the new one.
    client.create_table(table, TableSettings::default()).await.expect("create again");
    assert_eq!(client.get(Get::new(table, Key::new("pk-1", "sk-1"))).await.expect("get"), None);
}

/// Pipelined puts then gets of keys this shard does not own, matched by request id.
fn raw_writes_and_reads(raw: &mut RawConnection, foreign: &[Vec<u8>], tag: &str) {
    let mut ids = HashMap::new();
    for pk in foreign {
        let put = Put::new("raw", Key::new(pk.clone(), ""), format!("{tag}-{}", String::from_utf8_lossy(pk)));
        ids.insert(raw.send(&Request::Put(put)).expect("send put"), pk.clone());
    }
    let mut versions = HashMap::new();
    for _ in 0..foreign.len() {
        let (id, reply) = receive(raw);
        let pk = ids.remove(&id).unwrap_or_else(|| panic!("a reply to unknown request {id}"));
        match reply {
            Reply::Written(v) => versions.insert(pk, v),
            other => panic!("put of a foreign key answered with {other:?}"),
        };
    }
    for pk in foreign {
        ids.insert(raw.send(&Request::Get(Get::new("raw", Key::new(pk.clone(), "")))).expect("send get"), pk.clone());
    }
    for _ in 0..foreign.len() {
        let (id, reply) = receive(raw);
        let pk = ids.remove(&id).unwrap_or_else(|| panic!("a reply to unknown request {id}"));
        match reply {
            Reply::Get(Some(row)) => {
                assert_eq!(row.value, format!("{tag}-{}", String::from_utf8_lossy(&pk)).into_bytes());
                assert_eq!(Some(&row.version), versions.get(&pk));
            }
            other => panic!("get of a foreign key answered with {other:?}"),
        }
    }
    let keys: Vec<Key> = foreign.iter().map(|pk| Key::new(pk.clone(), "")).chain([Key::new("absent", "")]).collect();
    match raw.call(&Request::MultiGet(MultiGet::new("raw", keys.clone()))) {
        Reply::MultiGet(rows) => {
            assert_eq!(rows.len(), keys.len());
            for (key, row) in keys.iter().zip(&rows) {
                assert_eq!(row.as_ref().map(|r| r.version), versions.get(&key.partition_key).copied(), "{key:?}");
            }
        }
        other => panic!("multi_get answered with {other:?}"),
    }
}

fn raw_batch_scan_versions_delete(raw: &mut RawConnection, pk: &[u8]) {
    let ops = (0..3)
        .map(|i| BatchOp::Put { key: Key::new(pk, format!("b{i}")), value: vec![b'0' + i], ts: None, ttl_ms: None })
        .collect();
    let Reply::BatchWritten(written) = raw.call(&Request::WriteBatch(WriteBatch::new("raw", ops))) else {
        panic!("write_batch of a foreign partition was not written")
    };
    let scan =
        Scan { table: "raw".to_owned(), partition_key: pk.to_vec(), from: Some(b"b".to_vec()), ..Scan::default() };
    match raw.call(&Request::Scan(scan)) {
        Reply::Scan(page) => {
            let got: Vec<(Vec<u8>, VersionId)> = page.rows.into_iter().map(|r| (r.sort_key, r.version)).collect();
            let expected: Vec<(Vec<u8>, VersionId)> =
                (0..3).map(|i| (format!("b{i}").into_bytes(), written[i])).collect();
            assert_eq!(got, expected);
        }
        other => panic!("scan answered with {other:?}"),
    }
    let key = Key::new(pk, "b1");
    let Reply::Written(deleted) = raw.call(&Request::Delete(Delete::new("raw", key.clone()))) else {
        panic!("delete was not written")
    };
    match raw.call(&Request::Versions(Versions::new("raw", key.clone()))) {
        Reply::Versions(h) => {
            let ids: Vec<VersionId> = h.versions.iter().map(|e| e.version).collect();
            assert_eq!(ids, vec![deleted, written[1]]);
        }
        other => panic!("versions answered with {other:?}"),
    }
    match raw.call(&Request::Explain(Explain::new("raw", key))) {
        Reply::Explain(e) => {
            let ids: Vec<VersionId> = e.candidates.iter().map(|c| c.entry.version).collect();
            assert_eq!(ids, vec![deleted, written[1]]);
            assert_eq!((e.verdict, e.deciding_step), (ExplainVerdict::Tombstone, Some(RuleStep::Ts)));
        }
        other => panic!("explain answered with {other:?}"),
    }
}

fn raw_admin_and_server_requests(raw: &mut RawConnection, shard: usize, partitions: u32) {
    match raw.call(&Request::Topology) {
        Reply::Topology(t) => assert_eq!(t.partition_count, partitions),
        other => panic!("topology answered with {other:?}"),
    }
    match raw.call(&Request::Stats) {
        Reply::Stats(s) => assert!(s.iter().any(|s| s.shard == Some(0)) && s.iter().any(|s| s.shard == Some(1))),
        other => panic!("stats answered with {other:?}"),
    }
    if shard == 1 {
        let create = CreateTable { name: "raw-made-by-1".to_owned(), settings: TableSettings::default() };
        assert!(matches!(raw.call(&Request::CreateTable(create)), Reply::Table(_)));
    }
    match raw.call(&Request::Get(Get::new("no-such-table", Key::new("k", "")))) {
        Reply::Error(e) => assert_eq!(e.code, ErrorCode::UnknownTable),
        other => panic!("a get of an unknown table answered with {other:?}"),
    }
}

fn receive(raw: &mut RawConnection) -> (u64, Reply) {
    match raw.receive() {
        Ok(Received::Reply(id, reply)) => (id, reply),
        other => panic!("expected a reply from {}, got {other:?}", raw.addr()),
    }
}
