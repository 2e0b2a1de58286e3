//! Hostile and broken input: each case gets a typed error reply or a closed connection, never a
//! hang, a crash or a wrong answer, and the daemon keeps serving a well-behaved client
//! throughout. Then a fuzz-style run sends at least 10,000 random and mutated frames and checks
//! the daemon still serves correct reads and has let every connection go.

use nacre_tests::raw::{RawConnection, Received, length_prefix};
use nacre_tests::server::Server;
use nacre_wire::{
    BatchOp, Client, Delete, ErrorCode, Get, Handshake, Key, MultiGet, PROTOCOL_VERSION, Put, Reply, Request,
    TableSettings, Ts, WriteBatch, encode_request,
};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis()).expect("fits")
}

/// The daemon still serves a well-behaved client: a fresh write reads back, with a server
/// timestamp close to now.
async fn still_serving(client: &Client, case: &str) {
    let key = Key::new(format!("healthy-after-{case}"), "");
    let put = Put::new("t", key.clone(), case.as_bytes().to_vec());
    let version = client.put(put).await.unwrap_or_else(|e| panic!("after {case}: put failed: {e}"));
    let drift = i128::from(version.ts.millis()) - i128::from(now_ms());
    assert!(drift.abs() < 60_000, "after {case}: the server's clock is {drift} ms off");
    let row = client.get(Get::new("t", key)).await.unwrap_or_else(|e| panic!("after {case}: get failed: {e}"));
    assert_eq!(row.map(|r| r.value), Some(case.as_bytes().to_vec()), "after {case}");
}

/// Sends `bytes`, ends the stream if `finish`, and expects only connection-level error replies
/// (id 0, or under the id of the frame that broke a rule) before the server closes.
fn expect_refused_and_closed(
    addr: SocketAddr,
    handshake: bool,
    bytes: &[u8],
    finish: bool,
    case: &str,
) -> Vec<ErrorCode> {
    let mut raw = if handshake { RawConnection::open(addr) } else { RawConnection::connect(addr).expect("connect") };
    // The server may close before reading everything; a failed write is then expected.
    let _ = raw.send_bytes(bytes);
    if finish {
        raw.finish_sending();
    }
    let replies = raw.receive_until_closed().unwrap_or_else(|e| panic!("{case}: {e}"));
    replies
        .into_iter()
        .map(|(_, reply)| match reply {
            Reply::Error(e) => e.code,
            other => panic!("{case}: answered with {other:?}"),
        })
        .collect()
}

/// Sends one request on a greeted connection, expects an error reply with `code` under its id,
/// and then a normal answer on the same connection.
fn expect_error_and_connection_kept(raw: &mut RawConnection, request: &Request, code: ErrorCode, case: &str) {
    match raw.call(request) {
        Reply::Error(e) => assert_eq!(e.code, code, "{case}: {}", e.message),
        other => panic!("{case}: answered with {other:?}"),
    }
    assert!(matches!(raw.call(&Request::Topology), Reply::Topology(_)), "{case}: the connection is still served");
}

#[test]
fn each_bad_input_gets_a_typed_error_or_a_closed_connection() {
    let mut server = Server::start();
    let runtime = nacre_tests::runtime();
    let client = runtime.block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create_table");
        client
    });
    let seed = nacre_tests::seed::seed("each_bad_input_gets_a_typed_error_or_a_closed_connection");
    let mut rng = fastrand::Rng::with_seed(seed);
    let addrs = server.ports();

    for (i, addr) in addrs.iter().enumerate() {
        // Random bytes, before and after a handshake.
        for greeted in [false, true] {
            let noise: Vec<u8> = (0..rng.usize(1..256)).map(|_| rng.u8(..)).collect();
            let case = format!("random bytes on port {i} (greeted {greeted})");
            let codes = expect_refused_and_closed(*addr, greeted, &noise, true, &case);
            assert!(codes.len() <= 1, "{case}: {codes:?}");
            runtime.block_on(still_serving(&client, &case));
        }

        // A frame cut short, then the end of the stream: closed, without a reply to it.
        let frame = encode_request(2, &Request::Put(Put::new("t", Key::new("cut", ""), vec![7u8; 100])));
        for cut in [2, 4, 5, frame.len() / 2, frame.len() - 1] {
            let case = format!("a frame truncated to {cut} of {} bytes on port {i}", frame.len());
            let codes = expect_refused_and_closed(*addr, true, &frame[..cut], true, &case);
            assert!(codes.is_empty(), "{case}: {codes:?}");
            runtime.block_on(still_serving(&client, &case));
        }

        // An oversized length prefix: refused before anything is allocated, and closed by the
        // server itself (the stream is not ended here).
        for len in [u32::MAX, 8 << 20 | 1] {
            let case = format!("a length prefix of {len} on port {i}");
            let mut bytes = length_prefix(len).to_vec();
            bytes.extend_from_slice(&[0u8; 64]);
            let codes = expect_refused_and_closed(*addr, true, &bytes, false, &case);
            assert_eq!(codes, [ErrorCode::FrameTooLarge], "{case}");
            runtime.block_on(still_serving(&client, &case));
        }
        let case = format!("an empty frame on port {i}");
        let codes = expect_refused_and_closed(*addr, true, &length_prefix(0), false, &case);
        assert!(codes.iter().all(|c| *c == ErrorCode::BadRequest), "{case}: {codes:?}");
        runtime.block_on(still_serving(&client, &case));

        // A request under id 0, which is reserved for errors about the connection.
        let case = format!("a request with id 0 on port {i}");
        let codes = expect_refused_and_closed(*addr, true, &encode_request(0, &Request::Topology), false, &case);
        assert_eq!(codes, [ErrorCode::BadRequest], "{case}");

        // No handshake first: refused and closed.
        let get = encode_request(1, &Request::Get(Get::new("t", Key::new("k", ""))));
        let case = format!("a request before the handshake on port {i}");
        let codes = expect_refused_and_closed(*addr, false, &get, false, &case);
        assert_eq!(codes, [ErrorCode::ProtocolVersion], "{case}");
    }
    protocol_versions(addrs[0]);

    // Valid frames that break a rule: a typed error under the request's id, and the connection
    // keeps serving.
    let mut raw = RawConnection::open(server.shard_addr(0));
    let unknown = Request::Get(Get::new("no-such-table", Key::new("k", "")));
    expect_error_and_connection_kept(&mut raw, &unknown, ErrorCode::UnknownTable, "an unknown table");
    let unknown = Request::Put(Put::new("no-such-table", Key::new("k", ""), "v"));
    expect_error_and_connection_kept(&mut raw, &unknown, ErrorCode::UnknownTable, "a put to an unknown table");

    let big = Request::Put(Put::new("t", Key::new("big", ""), vec![0u8; (1 << 20) + 1]));
    expect_error_and_connection_kept(&mut raw, &big, ErrorCode::ValueTooLarge, "a value over the limit");
    let long_key = Request::Put(Put::new("t", Key::new(vec![b'k'; 1025], ""), "v"));
    expect_error_and_connection_kept(&mut raw, &long_key, ErrorCode::KeyTooLarge, "a key over the limit");
    let ops =
        (0..10_001).map(|i| BatchOp::Delete { key: Key::new("many", format!("{i}")), ts: None }).collect::<Vec<_>>();
    let many = Request::WriteBatch(WriteBatch::new("t", ops));
    expect_error_and_connection_kept(&mut raw, &many, ErrorCode::BatchTooLarge, "a batch over the entry limit");
    let empty = Request::WriteBatch(WriteBatch::new("t", Vec::new()));
    expect_error_and_connection_kept(&mut raw, &empty, ErrorCode::BadRequest, "an empty batch");
    runtime.block_on(still_serving(&client, "rules broken"));

    // Timestamps beyond the skew bound (60 s by default), by each write kind: refused, and the
    // server's own clock is not dragged along (still_serving checks the next server ts).
    for ahead_ms in [120_000, 3_600_000, 1 << 40] {
        let ts = Ts::from_millis(now_ms() + ahead_ms);
        let mut put = Put::new("t", Key::new("future", ""), "v");
        put.ts = Some(ts);
        let case = format!("a put {ahead_ms} ms in the future");
        expect_error_and_connection_kept(&mut raw, &Request::Put(put), ErrorCode::TimestampTooFarInFuture, &case);
        runtime.block_on(still_serving(&client, &case));
        let mut delete = Delete::new("t", Key::new("future", ""));
        delete.ts = Some(ts);
        let case = format!("a delete {ahead_ms} ms in the future");
        expect_error_and_connection_kept(&mut raw, &Request::Delete(delete), ErrorCode::TimestampTooFarInFuture, &case);
        runtime.block_on(still_serving(&client, &case));
        let op = BatchOp::Put { key: Key::new("future", "b"), value: b"v".to_vec(), ts: Some(ts), ttl_ms: None };
        let case = format!("a batch {ahead_ms} ms in the future");
        let batch = Request::WriteBatch(WriteBatch::new("t", vec![op]));
        expect_error_and_connection_kept(&mut raw, &batch, ErrorCode::TimestampTooFarInFuture, &case);
        runtime.block_on(still_serving(&client, &case));
    }
    let mut put = Put::new("t", Key::new("future", ""), "v");
    put.ts = Some(Ts(u64::MAX));
    expect_error_and_connection_kept(&mut raw, &Request::Put(put), ErrorCode::TimestampTooFarInFuture, "ts u64::MAX");
    runtime.block_on(still_serving(&client, "the largest ts"));
    let rows =
        runtime.block_on(client.multi_get(MultiGet::new("t", vec![Key::new("future", ""), Key::new("future", "b")])));
    assert_eq!(rows.expect("multi_get"), vec![None, None], "no refused write was applied");
    assert!(server.is_running(), "nacred is alive");
}

/// A handshake names the highest version the client speaks: a newer client is answered in the
/// version this server speaks, a later handshake is answered like the first, and version 0 is
/// refused, with the connection closed when it comes first.
fn protocol_versions(addr: SocketAddr) {
    let mut raw = RawConnection::connect(addr).expect("connect");
    let newer = Request::Handshake(Handshake { protocol_version: PROTOCOL_VERSION + 5, client_name: "future".into() });
    match raw.call(&newer) {
        Reply::Handshake(ok) => assert_eq!(ok.protocol_version, PROTOCOL_VERSION),
        other => panic!("a newer client's handshake answered with {other:?}"),
    }
    assert!(matches!(raw.call(&Request::Topology), Reply::Topology(_)));
    // A later handshake is answered like the first; a refused one keeps the connection and the
    // version it had.
    let again = Request::Handshake(Handshake { protocol_version: 1, client_name: "again".into() });
    match raw.call(&again) {
        Reply::Handshake(ok) => assert_eq!(ok.protocol_version, 1),
        other => panic!("a second handshake answered with {other:?}"),
    }
    let zero_later = Request::Handshake(Handshake { protocol_version: 0, client_name: "zero".into() });
    match raw.call(&zero_later) {
        Reply::Error(e) => assert_eq!(e.code, ErrorCode::ProtocolVersion),
        other => panic!("a later version-0 handshake answered with {other:?}"),
    }
    assert!(matches!(raw.call(&Request::Topology), Reply::Topology(_)), "still served after a refused later one");

    let mut raw = RawConnection::connect(addr).expect("connect");
    let zero = encode_request(1, &Request::Handshake(Handshake { protocol_version: 0, client_name: "old".into() }));
    let topology = encode_request(2, &Request::Topology);
    raw.send_bytes(&[zero, topology].concat()).expect("send");
    match raw.receive().expect("a reply") {
        Received::Reply(1, Reply::Error(e)) => assert_eq!(e.code, ErrorCode::ProtocolVersion),
        other => panic!("a version-0 handshake answered with {other:?}"),
    }
    let after = raw.receive_until_closed().expect("closed");
    assert!(after.is_empty(), "nothing is served after a refused handshake: {after:?}");
}
