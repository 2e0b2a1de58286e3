//! Gets the owning shard answers in place, in its request loop, with no task and no copy of the
//! request: a pipelined get still sees the async writes read before it on its connection (each
//! request starts when it is read), a get that needs the disk still answers, and a get costs at
//! most two allocations.

use nacre_tests::raw::{RawConnection, Received};
use nacre_tests::server::Server;
use nacre_tests::stats::per_shard;
use nacre_wire::{Durability, Get, Key, Put, Reply, Request, TableSettings, Topology, encode_request};
use std::collections::HashMap;

/// Partition keys shard 0 owns, as `topology` maps them: gets sent to shard 0's own port about
/// them run where they arrive.
fn owned_by_shard_0(server: &Server, topology: &Topology, prefix: &str, count: usize) -> Vec<String> {
    let port = server.shard_addr(0).port();
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|pk| topology.owner_port(pk.as_bytes()) == Some(port))
        .take(count)
        .collect()
}

/// Sends `requests` in one write (a pipeline) and returns their replies in the order sent.
fn pipelined(raw: &mut RawConnection, first_id: u64, requests: &[Request]) -> Vec<Reply> {
    let mut bytes = Vec::new();
    for (i, request) in requests.iter().enumerate() {
        bytes.extend_from_slice(&encode_request(first_id + i as u64, request));
    }
    raw.send_bytes(&bytes).expect("send the pipeline");
    let mut replies: HashMap<u64, Reply> = HashMap::new();
    while replies.len() < requests.len() {
        match raw.receive().expect("a reply") {
            Received::Reply(id, reply) => assert!(replies.insert(id, reply).is_none(), "one reply per request"),
            Received::Closed => panic!("the server closed the connection"),
        }
    }
    (0..requests.len()).map(|i| replies.remove(&(first_id + i as u64)).expect("every id answered")).collect()
}

fn value_of(reply: &Reply) -> Option<&[u8]> {
    match reply {
        Reply::Get(row) => row.as_ref().map(|r| r.value.as_slice()),
        other => panic!("expected a get reply, got {other:?}"),
    }
}

fn put(pk: &str, value: &str) -> Request {
    let mut put = Put::new("t", Key::new(pk, ""), value);
    put.durability = Some(Durability::Async);
    Request::Put(put)
}

fn get(pk: &str) -> Request {
    Request::Get(Get::new("t", Key::new(pk, "")))
}

#[test]
fn a_pipelined_get_sees_the_async_writes_read_before_it_on_its_connection() {
    let server = Server::start();
    let topology = nacre_tests::runtime().block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create_table");
        client.topology().await.expect("topology")
    });
    let mut raw = RawConnection::open(server.shard_addr(0));
    let mut id = 1_000;
    // Each round: put, get, overwrite, get, get. The writes run as tasks, which start when they
    // are read; a get answered in place ahead of them would read the older value.
    for pk in owned_by_shard_0(&server, &topology, "pipelined", 200) {
        let requests = [put(&pk, "first"), get(&pk), put(&pk, "second"), get(&pk), get(&pk)];
        let replies = pipelined(&mut raw, id, &requests);
        id += requests.len() as u64;
        assert!(matches!(replies[0], Reply::Written(_)), "{pk}: {:?}", replies[0]);
        assert_eq!(value_of(&replies[1]), Some(&b"first"[..]), "{pk}: the get after the first put");
        assert_eq!(value_of(&replies[3]), Some(&b"second"[..]), "{pk}: the get after the overwrite");
        assert_eq!(value_of(&replies[4]), Some(&b"second"[..]), "{pk}: the get after that");
    }
}

#[test]
fn gets_answer_from_memory_and_from_disk_at_two_allocations_or_fewer_each() {
    let mut server = Server::start();
    let pks = nacre_tests::runtime().block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create_table");
        let topology = client.topology().await.expect("topology");
        let pks = owned_by_shard_0(&server, &topology, "counted", 500);
        for pk in &pks {
            client.put(Put::new("t", Key::new(pk.as_str(), ""), format!("value of {pk}"))).await.expect("put");
        }
        pks
    });
    // Restarted, every key lives in a segment and no block is cached: the first get of each
    // needs the disk, and goes the usual way.
    server.sigterm_and_wait(std::time::Duration::from_secs(30));
    server.restart();
    let mut raw = RawConnection::open(server.shard_addr(0));
    let gets: Vec<Request> = pks.iter().map(|pk| get(pk)).collect();
    let expected = |replies: &[Reply]| {
        for (pk, reply) in pks.iter().zip(replies) {
            assert_eq!(value_of(reply), Some(format!("value of {pk}").as_bytes()), "{pk}");
        }
    };
    expected(&pipelined(&mut raw, 1, &gets));
    let allocations = || {
        let stats = nacre_tests::runtime().block_on(async { server.client().await.stats().await.expect("stats") });
        per_shard(&stats, "allocations_total")[&0]
    };
    let before = allocations();
    const ROUNDS: u64 = 40;
    for round in 0..ROUNDS {
        expected(&pipelined(&mut raw, 10_000 + round * gets.len() as u64, &gets));
    }
    let per_get = (allocations() - before) as f64 / (ROUNDS * gets.len() as u64) as f64;
    println!("{per_get:.2} allocations a get on shard 0 (its share of two stats requests included)");
    assert!(per_get <= 2.0, "{per_get:.2} allocations a get");
}
