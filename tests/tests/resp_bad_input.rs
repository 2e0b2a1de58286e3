//! Bad RESP closes only the connection that sent it: random bytes, a huge bulk length, a huge
//! array count, an unterminated array, an over-long inline line, unbalanced quotes. Where Redis
//! answers with `-ERR Protocol error...` the door must too, and then close; a connection opened
//! before them all keeps working (PING, SET, GET) and the server stays up. An unknown command,
//! by contrast, keeps its connection open.
//!
//! The same cases run against a real redis-server, which proves the expectations are Redis's.

use nacre_tests::redis::RedisServer;
use nacre_tests::resp::{RespConnection, Value, encode_command};
use nacre_tests::server::{Server, ServerOptions};
use std::net::SocketAddr;

/// Random-bytes connections per run.
const RANDOM_CASES: usize = 200;

/// Sends `bytes` (then ends the stream if `finish`) and returns every reply until the server
/// closes. The server may close before reading everything, so a failed write is expected.
fn replies_until_closed(addr: SocketAddr, bytes: &[u8], finish: bool, case: &str) -> Vec<Value> {
    let mut c = RespConnection::open(addr);
    let _ = c.send_bytes(bytes);
    if finish {
        c.finish_sending();
    }
    c.receive_until_closed().unwrap_or_else(|e| panic!("{case}: {e}"))
}

/// The one reply is a protocol error, and the server closed the connection after it (the
/// stream was not ended here, so the close is the server's).
fn expect_protocol_error_and_close(addr: SocketAddr, bytes: &[u8], case: &str) {
    let replies = replies_until_closed(addr, bytes, false, case);
    match replies.as_slice() {
        [Value::Error(e)] => assert!(e.starts_with("ERR Protocol error"), "{case}: {e}"),
        other => panic!("{case}: expected one protocol error then a close, got {other:?}"),
    }
}

/// A connection opened before the bad input still serves, and so does a new one.
fn still_serving(healthy: &mut RespConnection, addr: SocketAddr, case: &str) {
    assert_eq!(healthy.call(&["PING"]), Value::Simple("PONG".into()), "after {case}");
    let key = format!("healthy:{case}");
    assert_eq!(healthy.call(&["SET", &key, case]), Value::Simple("OK".into()), "after {case}");
    assert_eq!(healthy.call(&["GET", &key]), Value::Bulk(case.as_bytes().to_vec()), "after {case}");
    let mut fresh = RespConnection::open(addr);
    assert_eq!(fresh.call(&["GET", &key]), Value::Bulk(case.as_bytes().to_vec()), "a new connection after {case}");
}

fn bad_input(addr: SocketAddr, mut alive: impl FnMut() -> bool) {
    let mut healthy = RespConnection::open(addr);
    assert_eq!(healthy.call(&["PING"]), Value::Simple("PONG".into()));

    let protocol_errors: &[(&str, &[u8])] = &[
        ("a huge bulk length", b"*1\r\n$9999999999\r\n"),
        ("a negative bulk length", b"*1\r\n$-5\r\n"),
        ("a huge array count", b"*99999999999\r\n$3\r\nGET\r\n"),
        ("an array count that is not a number", b"*x\r\n"),
        ("an array element that is not a bulk string", b"*1\r\n+PING\r\n"),
        ("unbalanced double quotes inline", b"SET k \"abc\r\n"),
        ("unbalanced single quotes inline", b"SET k 'it''s'\r\n"),
    ];
    for (case, bytes) in protocol_errors {
        expect_protocol_error_and_close(addr, bytes, case);
        still_serving(&mut healthy, addr, case);
    }

    // An over-long inline line: a protocol error, or, if the server closes before reading
    // all of it, a reset that loses the error; never an answer or an open connection.
    let case = "a 1 MiB inline line";
    let replies = replies_until_closed(addr, &vec![b'a'; 1 << 20], false, case);
    assert!(
        replies.iter().all(|r| matches!(r, Value::Error(e) if e.starts_with("ERR Protocol error")))
            && replies.len() <= 1,
        "{case}: {replies:?}"
    );
    still_serving(&mut healthy, addr, case);

    // An unterminated array, then the end of the stream: closed without a reply, and the
    // partial command is not executed.
    let case = "an unterminated array";
    let partial = b"*3\r\n$3\r\nSET\r\n$14\r\nunterminated:k\r\n$5\r\nval";
    let replies = replies_until_closed(addr, partial, true, case);
    assert!(replies.is_empty(), "{case}: {replies:?}");
    assert_eq!(healthy.call(&["GET", "unterminated:k"]), Value::Null, "{case}: the partial SET ran");
    still_serving(&mut healthy, addr, case);

    // Random bytes, seeded: any replies are errors, and the connection closes when the stream
    // ends (or at once, on a protocol error).
    let seed = nacre_tests::seed::seed("resp_bad_input");
    let mut rng = fastrand::Rng::with_seed(seed);
    for i in 0..RANDOM_CASES {
        let noise: Vec<u8> = (0..rng.usize(1..512)).map(|_| rng.u8(..)).collect();
        let case = format!("random bytes #{i} (SEED={seed})");
        let replies = replies_until_closed(addr, &noise, true, &case);
        assert!(replies.iter().all(|r| matches!(r, Value::Error(_))), "{case}: {noise:?} got {replies:?}");
    }
    still_serving(&mut healthy, addr, "random bytes");

    // An unknown command is an error reply, and the connection lives on.
    let mut c = RespConnection::open(addr);
    let unknown = [encode_command(&[b"NOSUCHCOMMAND", b"x"]), encode_command(&[b"PING"])].concat();
    c.send_bytes(&unknown).expect("send");
    let replies = c.receive_raw(2).expect("two replies");
    assert_eq!(
        String::from_utf8_lossy(&replies),
        "-ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' \r\n+PONG\r\n"
    );
    assert!(alive(), "the server is still running");
}

#[test]
fn bad_resp_on_nacred_closes_only_its_connection() {
    let mut server = Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() });
    let addr = server.resp_addr();
    bad_input(addr, || server.is_running());
}

/// The door's own limits (docs/resp.md, `[resp]`), set small here: a request exactly at a limit is
/// served; one byte or one argument over is a protocol error that closes only its connection.
/// Redis has no such limits at these sizes, so this runs against nacred only.
#[test]
fn requests_over_the_doors_limits_close_only_their_connection() {
    let config = "[resp]\nmax_args = 8\nmax_bulk_bytes = 2048\nmax_inline_bytes = 256\nmax_command_bytes = 8192\n\
                  [limits]\nmax_value_bytes = 1500\n";
    let mut server =
        Server::start_with(ServerOptions { resp: true, config: Some(config.to_owned()), ..ServerOptions::default() });
    let addr = server.resp_addr();
    let mut healthy = RespConnection::open(addr);

    let at_limit = "e".repeat(2048);
    assert_eq!(healthy.call(&["ECHO", &at_limit]), Value::Bulk(at_limit.clone().into_bytes()), "a 2048-byte bulk");
    let over: Vec<u8> = encode_command(&[b"ECHO", &[b'e'; 2049]]);
    expect_protocol_error_and_close(addr, &over, "a 2049-byte bulk");
    still_serving(&mut healthy, addr, "a bulk over the limit");

    // Data over the storage limits (value, key, hash field) is an error reply, not a protocol
    // error: the connection lives on and nothing is written.
    let value = "v".repeat(1500);
    assert_eq!(healthy.call(&["SET", "limits:value", &value]), Value::Simple("OK".into()), "a 1500-byte value");
    let too_big = "w".repeat(1501);
    let long_key = "k".repeat(1025);
    for (command, case) in [
        (vec!["SET", "limits:value", too_big.as_str()], "a value over max_value_bytes"),
        (vec!["SET", long_key.as_str(), "v"], "a key over max_partition_key_bytes"),
        (vec!["HSET", "limits:hash", long_key.as_str(), "v"], "a field over max_sort_key_bytes"),
        (vec!["MSET", "limits:m1", "v", "limits:m2", too_big.as_str()], "an MSET with one value too big"),
    ] {
        let reply = healthy.call(&command);
        assert!(matches!(&reply, Value::Error(e) if e.starts_with("ERR ")), "{case}: {reply:?}");
        still_serving(&mut healthy, addr, case);
    }
    assert_eq!(
        healthy.call(&["GET", "limits:value"]),
        Value::Bulk(value.into_bytes()),
        "the refused SET wrote nothing"
    );
    // A refused MSET writes none of its pairs (each is checked before any is written).
    for key in ["limits:hash", "limits:m1", "limits:m2"] {
        assert_eq!(healthy.call(&["EXISTS", key]), Value::Integer(0), "{key}: a refused command wrote nothing");
    }

    let seven_keys = ["DEL", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];
    assert_eq!(healthy.call(&seven_keys), Value::Integer(0), "a command of 8 arguments");
    let nine: Vec<&[u8]> = std::iter::once(&b"DEL"[..]).chain([&b"k"[..]; 8]).collect();
    expect_protocol_error_and_close(addr, &encode_command(&nine), "a command of 9 arguments");
    still_serving(&mut healthy, addr, "too many arguments");

    let five_bulks: Vec<&[u8]> = std::iter::once(&b"MGET"[..]).chain([&[b'k'; 2000][..]; 5]).collect();
    expect_protocol_error_and_close(addr, &encode_command(&five_bulks), "a 10 kB command");
    still_serving(&mut healthy, addr, "a command over the byte limit");

    let inline_ok = format!("ECHO {}\r\n", "i".repeat(200));
    let mut c = RespConnection::open(addr);
    c.send_bytes(inline_ok.as_bytes()).expect("send");
    assert_eq!(c.receive_raw(1).expect("a reply"), format!("$200\r\n{}\r\n", "i".repeat(200)).into_bytes());
    let inline_over = format!("ECHO {}\r\n", "i".repeat(300));
    expect_protocol_error_and_close(addr, inline_over.as_bytes(), "a 305-byte inline line");
    still_serving(&mut healthy, addr, "an inline line over the limit");
    assert!(server.is_running());
}

#[test]
fn bad_resp_on_redis_server_closes_only_its_connection() {
    let mut redis = RedisServer::start();
    let addr = redis.addr();
    bad_input(addr, || redis.is_running());
}
