//! The client against a scripted mock server on loopback (the daemon is not needed): handshake
//! and topology, routing to owner ports, pipelining with out-of-order replies, backpressure,
//! timeouts, lost connections and reconnection, server errors and protocol mismatches.

#[path = "support/mock_server.rs"]
mod mock_server;

use mock_server::Mock;
use nacre_wire::*;
use std::sync::Arc;
use std::time::Duration;

fn options() -> ClientOptions {
    ClientOptions { timeout: Duration::from_secs(5), ..ClientOptions::default() }
}

async fn connect(mock: &Mock, options: ClientOptions) -> Client {
    Client::connect(mock.addr(), options).await.expect("the mock accepts")
}

fn served_by(version: &VersionId) -> u16 {
    u16::try_from(version.origin.source_id).expect("the mock puts its port there")
}

#[tokio::test]
async fn connect_handshakes_and_learns_the_topology() {
    let mock = Mock::start().await;
    let client = connect(&mock, options()).await;
    assert_eq!(client.server().server_name, "mock");
    assert_eq!(client.server().protocol_version, PROTOCOL_VERSION);
    assert_eq!(client.current_topology(), mock.topology);
    assert_eq!(client.topology().await.expect("topology"), mock.topology);
    let (port, hello) = &mock.log()[0];
    assert_eq!(*port, mock.primary);
    assert_eq!(
        hello,
        &Request::Handshake(Handshake { protocol_version: PROTOCOL_VERSION, client_name: "nacre-wire".into() })
    );
}

#[tokio::test]
async fn keyed_requests_go_to_their_owner_port_and_the_rest_to_the_first() {
    let mock = Mock::start().await;
    let client = connect(&mock, options()).await;
    for i in 0..32 {
        let pk = format!("user:{i}");
        let owner = mock.topology.owner_ports[partition_of(pk.as_bytes(), 8) as usize];
        let written = client.put(Put::new("t", Key::new(pk.clone(), "sk"), b"v".to_vec())).await.expect("put");
        assert_eq!(served_by(&written), owner, "{pk}");
        let deleted = client.delete(Delete::new("t", Key::new(pk.clone(), ""))).await.expect("delete");
        assert_eq!(served_by(&deleted), owner);
        let row = client.get(Get::new("t", Key::new(pk.clone(), ""))).await.expect("get").expect("found");
        assert_eq!((row.value.as_slice(), served_by(&row.version)), (pk.as_bytes(), owner));
        let page = client.scan(Scan::new("t", pk.clone())).await.expect("scan");
        assert_eq!(served_by(&page.rows[0].version), owner);
        let history = client.versions(Versions::new("t", Key::new(pk.clone(), ""))).await.expect("versions");
        assert_eq!(served_by(&history.versions[0].version), owner);
        let explained = client.explain(Explain::new("t", Key::new(pk.clone(), ""))).await.expect("explain");
        assert_eq!(served_by(&explained.candidates[0].entry.version), owner);
    }
    let tables = client.list_tables().await.expect("list");
    assert_eq!(tables[0].name, format!("port-{}", mock.primary));
    let stats = client.stats().await.expect("stats");
    assert_eq!(stats[0].value, u64::from(mock.primary));
    let created = client.create_table("t", TableSettings::default()).await.expect("create");
    assert_eq!(created.name, "t");
    client
        .alter_table(AlterTable { name: "t".into(), max_versions: Some(5), ..AlterTable::default() })
        .await
        .expect("alter");
    client.drop_table("t").await.expect("drop");
    let spec = SourceSpec {
        name: "s".into(),
        table: "t".into(),
        topics: vec!["a".into(), "b".into()],
        brokers: "k:9092".into(),
        dead_letter_topic: Some("dlq".into()),
        settings: vec![("sasl.password".into(), "hunter2".into())],
    };
    let source = client.add_source(spec.clone()).await.expect("add source");
    let stream_ids: Vec<(&str, u32)> = source.topics.iter().map(|t| (t.topic.as_str(), t.stream_id)).collect();
    assert_eq!(stream_ids, [("a", 1), ("b", 2)]);
    assert_eq!((source.dead_letter_topic, source.settings), (spec.dead_letter_topic.clone(), spec.settings.clone()));
    let sources = client.list_sources().await.expect("list sources");
    assert_eq!(sources[0].name, format!("port-{}", mock.primary), "admin requests go to the first port");
    client.remove_source("s").await.expect("remove source");
    let linked = client.bulk_link("/loads/a").await.expect("bulk link");
    assert_eq!((linked.load_id, linked.dir.as_str()), (7, "/loads/a"));
    assert_eq!(client.bulk_status(None).await.expect("bulk status").len(), 2);
    let missing = client.bulk_status(Some(404)).await.expect_err("unknown load");
    assert!(matches!(missing, ClientError::Server { code: ErrorCode::UnknownLoad, .. }), "{missing:?}");
    let none = client.bulk_rollback(3).await.expect_err("a rollback answers exactly one load");
    assert!(matches!(none, ClientError::UnexpectedReply { request: "bulk_rollback", .. }), "{none:?}");
    // One connection per port: the first, and the two shards.
    assert_eq!(mock.connections(), 3);
}

#[tokio::test]
async fn a_shard_unaware_client_sends_everything_to_the_first_port() {
    let mock = Mock::start().await;
    let client = connect(&mock, ClientOptions { shard_aware: false, ..options() }).await;
    for i in 0..8 {
        let written = client.put(Put::new("t", Key::new(format!("k{i}"), ""), vec![])).await.expect("put");
        assert_eq!(served_by(&written), mock.primary);
    }
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn pipelined_requests_are_matched_to_out_of_order_replies() {
    let mock = Mock::start().await;
    let client = Arc::new(connect(&mock, ClientOptions { shard_aware: false, ..options() }).await);
    // Later requests are answered first.
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                let pk = format!("delay:{}", 200 - i * 20);
                let row = client.get(Get::new("t", Key::new(pk.clone(), ""))).await.expect("get");
                (pk, row.expect("found").value)
            })
        })
        .collect();
    for task in tasks {
        let (pk, value) = task.await.expect("task");
        assert_eq!(value, pk.as_bytes());
    }
    // Pipelined, not serialised: the mock saw many requests outstanding at once.
    assert!(mock.max_outstanding() >= 5, "at most {} in flight", mock.max_outstanding());
}

#[tokio::test]
async fn max_in_flight_bounds_what_one_connection_has_outstanding() {
    let mock = Mock::start().await;
    let options = ClientOptions { shard_aware: false, max_in_flight: 2, ..options() };
    let client = Arc::new(connect(&mock, options).await);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.get(Get::new("t", Key::new("delay:30", ""))).await.map(|r| r.is_some()) })
        })
        .collect();
    for task in tasks {
        assert!(task.await.expect("task").expect("get"));
    }
    assert_eq!(mock.max_outstanding(), 2);
}

#[tokio::test]
async fn multi_get_splits_by_owner_and_keeps_the_key_order() {
    let mock = Mock::start().await;
    let client = connect(&mock, options()).await;
    let keys: Vec<Key> = (0..20).map(|i| Key::new(format!("key-{i}"), "")).collect();
    let rows = client.multi_get(MultiGet::new("t", keys.clone())).await.expect("multi_get");
    assert_eq!(rows.len(), keys.len());
    for (key, row) in keys.iter().zip(&rows) {
        let row = row.as_ref().expect("found");
        let owner = mock.topology.owner_ports[partition_of(&key.partition_key, 8) as usize];
        assert_eq!((&row.value, served_by(&row.version)), (&key.partition_key, owner));
    }
    let parts = mock.log().into_iter().filter(|(_, r)| matches!(r, Request::MultiGet(_))).count();
    assert_eq!(parts, 2, "one request per shard");
    assert!(client.multi_get(MultiGet::new("t", Vec::new())).await.expect("empty").is_empty());
}

#[tokio::test]
async fn write_batch_goes_to_its_partition_owner_and_refuses_to_span_partitions() {
    let mock = Mock::start().await;
    let client = connect(&mock, options()).await;
    let ops = vec![
        BatchOp::Put { key: Key::new("pk", "a"), value: b"1".to_vec(), ts: None, ttl_ms: None },
        BatchOp::Delete { key: Key::new("pk", "b"), ts: Some(Ts(9)) },
    ];
    let versions = client.write_batch(WriteBatch::new("t", ops)).await.expect("batch");
    let owner = mock.topology.owner_ports[partition_of(b"pk", 8) as usize];
    assert_eq!(versions.iter().map(served_by).collect::<Vec<_>>(), vec![owner, owner]);
    let (a, b) = (0..100)
        .map(|i| format!("other-{i}"))
        .find(|k| partition_of(k.as_bytes(), 8) != partition_of(b"pk", 8))
        .map(|k| (partition_of(b"pk", 8), partition_of(k.as_bytes(), 8)))
        .expect("some key lands elsewhere");
    let other = (0..100).map(|i| format!("other-{i}")).find(|k| partition_of(k.as_bytes(), 8) == b).expect("found");
    let spanning = vec![
        BatchOp::Delete { key: Key::new("pk", ""), ts: None },
        BatchOp::Delete { key: Key::new(other, ""), ts: None },
    ];
    let sent_before = mock.log().len();
    match client.write_batch(WriteBatch::new("t", spanning)).await {
        Err(ClientError::CrossPartitionBatch { first, other }) => assert_eq!((first, other), (a, b)),
        other => panic!("expected CrossPartitionBatch, got {other:?}"),
    }
    assert_eq!(mock.log().len(), sent_before, "nothing was sent");
}

#[tokio::test]
async fn server_errors_and_wrong_reply_kinds_are_typed() {
    let mock = Mock::start().await;
    let client = connect(&mock, options()).await;
    match client.get(Get::new("missing", Key::new("k", ""))).await {
        Err(e @ ClientError::Server { .. }) => assert_eq!(e.code(), Some(ErrorCode::UnknownTable)),
        other => panic!("expected a server error, got {other:?}"),
    }
    match client.get(Get::new("t", Key::new("stats", ""))).await {
        Err(ClientError::UnexpectedReply { request: "get", reply: "stats" }) => {}
        other => panic!("expected UnexpectedReply, got {other:?}"),
    }
    match client.get(Get::new("t", Key::new("future", ""))).await {
        Err(ClientError::BadReply { source }) => {
            assert!(matches!(source, WireError::Message { problem: MessageError::UnknownKind { tag: 200 }, .. }));
        }
        other => panic!("expected BadReply, got {other:?}"),
    }
    let taken = SourceSpec { name: "taken".into(), ..SourceSpec::default() };
    match client.add_source(taken).await {
        Err(e @ ClientError::Server { .. }) => assert_eq!(e.code(), Some(ErrorCode::SourceExists)),
        other => panic!("expected a server error, got {other:?}"),
    }
    match client.remove_source("missing").await {
        Err(e @ ClientError::Server { .. }) => assert_eq!(e.code(), Some(ErrorCode::UnknownSource)),
        other => panic!("expected a server error, got {other:?}"),
    }
    // None of these failures hurt the connection.
    assert!(client.get(Get::new("t", Key::new("k", ""))).await.expect("get").is_some());
}

#[tokio::test]
async fn a_request_without_a_reply_times_out_and_the_connection_stays_usable() {
    let mock = Mock::start().await;
    let timeout = Duration::from_millis(150);
    let client = connect(&mock, ClientOptions { timeout, ..options() }).await;
    match client.get(Get::new("t", Key::new("silent", ""))).await {
        Err(ClientError::Timeout { request: "get", after }) => assert_eq!(after, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let silent_port = mock.topology.owner_ports[partition_of(b"silent", 8) as usize];
    let neighbour = (0..100)
        .map(|i| format!("n{i}"))
        .find(|k| mock.topology.owner_ports[partition_of(k.as_bytes(), 8) as usize] == silent_port)
        .expect("a key on the same shard");
    assert!(client.get(Get::new("t", Key::new(neighbour, ""))).await.expect("same connection").is_some());
}

#[tokio::test]
async fn a_lost_connection_fails_its_requests_and_the_next_call_reconnects() {
    let mock = Mock::start().await;
    let client = connect(&mock, ClientOptions { shard_aware: false, ..options() }).await;
    match client.get(Get::new("t", Key::new("close", ""))).await {
        Err(ClientError::ConnectionClosed { reason: Disconnect::ClosedByServer, .. }) => {}
        other => panic!("expected ConnectionClosed, got {other:?}"),
    }
    assert!(client.get(Get::new("t", Key::new("k", ""))).await.expect("reconnected").is_some());
    assert_eq!(mock.connections(), 2);
    let handshakes = mock.log().into_iter().filter(|(_, r)| matches!(r, Request::Handshake(_))).count();
    assert_eq!(handshakes, 2, "the new connection handshakes too");
}

#[tokio::test]
async fn handshake_failures_are_clear() {
    let mock = Mock::start().await;
    let named = |name: &str| ClientOptions { client_name: name.into(), ..options() };
    match Client::connect(mock.addr(), named("from-the-future")).await {
        Err(ClientError::ProtocolVersion { client, server }) => assert_eq!((client, server), (1, 2)),
        other => panic!("expected ProtocolVersion, got {other:?}"),
    }
    match Client::connect(mock.addr(), named("refused")).await {
        Err(ClientError::ConnectionClosed { reason: Disconnect::Refused(e), .. }) => {
            assert_eq!(e.code, ErrorCode::ProtocolVersion);
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
    match Client::connect(mock.addr(), named("garbage")).await {
        Err(ClientError::ConnectionClosed { reason: Disconnect::BadFrame(_), .. }) => {}
        other => panic!("expected a bad frame, got {other:?}"),
    }
    match Client::connect("127.0.0.1:1", options()).await {
        Err(ClientError::Connect { .. }) => {}
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_request_over_the_frame_limit_is_refused_before_sending() {
    let mock = Mock::start().await;
    let limits = nacre_wire::frame::FrameLimits { max_frame_bytes: 1024, ..Default::default() };
    let client = connect(&mock, ClientOptions { frame_limits: limits, ..options() }).await;
    match client.put(Put::new("t", Key::new("k", ""), vec![0; 2048])).await {
        Err(ClientError::RequestTooLarge { max: 1024, .. }) => {}
        other => panic!("expected RequestTooLarge, got {other:?}"),
    }
    assert!(!mock.log().iter().any(|(_, r)| matches!(r, Request::Put(_))), "nothing was sent");
}

/// Every call's future can move between threads, so callers can `tokio::spawn` them on a
/// multi-threaded runtime. Checked at compile time; never run.
#[expect(dead_code, reason = "a compile-time check, never called")]
fn client_futures_are_send(client: &Client) {
    fn send<T: Send>(_: T) {}
    send(Client::connect("127.0.0.1:1", ClientOptions::default()));
    send(client.send(Request::Stats));
    send(client.topology());
    send(client.create_table("t", TableSettings::default()));
    send(client.alter_table(AlterTable::default()));
    send(client.drop_table("t"));
    send(client.list_tables());
    send(client.put(Put::new("t", Key::default(), vec![])));
    send(client.delete(Delete::new("t", Key::default())));
    send(client.write_batch(WriteBatch::new("t", vec![])));
    send(client.get(Get::new("t", Key::default())));
    send(client.multi_get(MultiGet::new("t", vec![])));
    send(client.scan(Scan::new("t", "pk")));
    send(client.versions(Versions::new("t", Key::default())));
    send(client.explain(Explain::new("t", Key::default())));
    send(client.stats());
    send(client.add_source(SourceSpec::default()));
    send(client.list_sources());
    send(client.remove_source("s"));
}
