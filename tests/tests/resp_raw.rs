//! The RESP door byte for byte, on what redis-cli never sends: inline commands, pipelined
//! bursts, a command split across many writes, RESP3 nulls, maps and errors, QUIT. Each case
//! states the exact bytes Redis answers with; the same cases run against a real redis-server
//! (proving the expectations) and against nacred.

use nacre_tests::redis::RedisServer;
use nacre_tests::resp::{RespConnection, Value, encode_command};
use nacre_tests::server::{Server, ServerOptions};
use std::net::SocketAddr;

/// One exchange on a fresh connection: `send`, written chunk by chunk, then exactly `expect`.
struct Case {
    name: &'static str,
    /// Written in order, each chunk its own write.
    send: Vec<Vec<u8>>,
    /// Replies expected, and their exact bytes.
    replies: usize,
    expect: Vec<u8>,
}

fn case(name: &'static str, send: &[u8], replies: usize, expect: &[u8]) -> Case {
    Case { name, send: vec![send.to_vec()], replies, expect: expect.to_vec() }
}

fn cmd(args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode_command(&args)
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        case("an inline PING", b"PING\r\n", 1, b"+PONG\r\n"),
        case("an inline PING ended by LF alone", b"PING\n", 1, b"+PONG\r\n"),
        case(
            "inline SET and GET with double and single quotes",
            b"SET inline:a \"hello world\"\r\nGET inline:a\r\nSET inline:c 'a \\'b\\' c'\r\nGET inline:c\r\n",
            4,
            b"+OK\r\n$11\r\nhello world\r\n+OK\r\n$7\r\na 'b' c\r\n",
        ),
        case(
            "inline escapes in double quotes",
            b"SET inline:e \"tab\\there\\x41\\n\"\r\nGET inline:e\r\n",
            2,
            b"+OK\r\n$10\r\ntab\there\x41\n\r\n",
        ),
        case("an empty inline line is skipped", b"\r\n\r\nPING\r\n", 1, b"+PONG\r\n"),
        case("an empty multibulk is skipped", b"*0\r\n*1\r\n$4\r\nPING\r\n", 1, b"+PONG\r\n"),
        case("a lowercase command", &cmd(&["ping"]), 1, b"+PONG\r\n"),
        case(
            "an unknown inline command keeps the connection",
            b"FOO bar\r\nPING\r\n",
            2,
            b"-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n+PONG\r\n",
        ),
        case(
            "RESP2 nulls",
            &[
                cmd(&["GET", "raw:missing"]),
                cmd(&["MGET", "raw:missing", "raw:missing"]),
                cmd(&["HGET", "raw:missing", "f"]),
            ]
            .concat(),
            3,
            b"$-1\r\n*2\r\n$-1\r\n$-1\r\n$-1\r\n",
        ),
        case("QUIT answers OK", &cmd(&["QUIT"]), 1, b"+OK\r\n"),
    ];

    let mut burst = Vec::new();
    let mut expect = Vec::new();
    for i in 1..=200 {
        burst.extend_from_slice(&cmd(&["INCR", "raw:pipelined"]));
        expect.extend_from_slice(format!(":{i}\r\n").as_bytes());
    }
    burst.extend_from_slice(b"GET raw:pipelined\r\n");
    expect.extend_from_slice(b"$3\r\n200\r\n");
    cases.push(Case {
        name: "200 pipelined INCRs and an inline GET in one write",
        send: vec![burst],
        replies: 201,
        expect,
    });

    let set = [cmd(&["SET", "raw:split", "a value sent a byte at a time"]), cmd(&["GET", "raw:split"])].concat();
    cases.push(Case {
        name: "a command split into one-byte writes",
        send: set.iter().map(|b| vec![*b]).collect(),
        replies: 2,
        expect: b"+OK\r\n$29\r\na value sent a byte at a time\r\n".to_vec(),
    });
    cases
}

/// RESP3 after HELLO 3: the reply to HELLO is a map naming proto 3; then exact bytes.
fn resp3(addr: SocketAddr) {
    let mut c = RespConnection::open(addr);
    c.call(&["DEL", "raw3:h", "raw3:s"]);
    assert_eq!(c.call(&["HSET", "raw3:h", "a", "1", "b", "2"]), Value::Integer(2));
    assert_eq!(c.call(&["SET", "raw3:s", "v"]), Value::Simple("OK".into()));
    match c.call(&["HELLO", "3"]) {
        Value::Map(entries) => assert!(
            entries.contains(&(Value::Bulk(b"proto".to_vec()), Value::Integer(3))),
            "HELLO 3 on {addr}: {entries:?}"
        ),
        other => panic!("HELLO 3 on {addr} answered {other:?}"),
    }
    let requests = [
        cmd(&["GET", "raw3:missing"]),
        cmd(&["MGET", "raw3:s", "raw3:missing"]),
        cmd(&["HGETALL", "raw3:h"]),
        cmd(&["HGETALL", "raw3:missing"]),
        cmd(&["HMGET", "raw3:h", "a", "zz"]),
        cmd(&["HGET", "raw3:h", "zz"]),
        cmd(&["TTL", "raw3:s"]),
        cmd(&["NOSUCH"]),
        cmd(&["PING"]),
    ]
    .concat();
    c.send_bytes(&requests).expect("send");
    let got = c.receive_raw(9).unwrap_or_else(|e| panic!("RESP3 replies from {addr}: {e}"));
    let expect: &[u8] = b"_\r\n*2\r\n$1\r\nv\r\n_\r\n%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n%0\r\n\
*2\r\n$1\r\n1\r\n_\r\n_\r\n:-1\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n+PONG\r\n";
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(expect), "RESP3 replies from {addr}");
    match c.call(&["HELLO", "2"]) {
        Value::Array(items) => assert!(
            items.windows(2).any(|w| w[0] == Value::Bulk(b"proto".to_vec()) && w[1] == Value::Integer(2)),
            "HELLO 2 on {addr}: {items:?}"
        ),
        other => panic!("HELLO 2 on {addr} answered {other:?}"),
    }
    c.send_bytes(&cmd(&["GET", "raw3:missing"])).expect("send");
    assert_eq!(c.receive_raw(1).expect("a reply"), b"$-1\r\n", "back in RESP2 on {addr}");
}

fn exchanges(addr: SocketAddr) {
    for case in cases() {
        let mut c = RespConnection::open(addr);
        for chunk in &case.send {
            c.send_bytes(chunk).unwrap_or_else(|e| panic!("{}: sending to {addr}: {e}", case.name));
        }
        let got = c.receive_raw(case.replies).unwrap_or_else(|e| panic!("{}: {addr}: {e}", case.name));
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&case.expect), "{} on {addr}", case.name);
    }
    resp3(addr);
}

#[test]
fn raw_exchanges_on_nacred_give_redis_bytes() {
    let server = Server::start_with(ServerOptions { resp: true, ..ServerOptions::default() });
    exchanges(server.resp_addr());
}

#[test]
fn raw_exchanges_on_redis_server_give_the_stated_bytes() {
    let redis = RedisServer::start();
    exchanges(redis.addr());
}
