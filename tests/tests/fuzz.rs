//! A fuzz-style run against the real daemon: at least [`FRAMES`] random and mutated frames, in
//! bursts on raw connections to every port (a new connection per burst, since a bad frame ends
//! its connection). Every byte the daemon answers with must be a valid response frame, every
//! connection must end once its stream ends, and afterwards the daemon must still serve exactly
//! the data written before, and hold no connection open that it should have let go.

use nacre_tests::raw::RawConnection;
use nacre_tests::server::Server;
use nacre_wire::{
    AlterTable, BatchOp, Client, CreateTable, Delete, DropTable, Durability, Explain, Get, Handshake, Key, MultiGet,
    PROTOCOL_VERSION, Put, Reply, Request, Scan, TableSettings, Ts, VersionId, Versions, WriteBatch, encode_request,
};
use std::time::{Duration, Instant};

/// Frames sent in all.
const FRAMES: usize = 20_000;
/// The table the check reads; no template names it, so no mutation plausibly reaches it.
const CHECKED: &str = "checked-table-written-before-the-fuzz";

#[test]
fn fuzzed_frames_never_stop_the_daemon_serving_correct_reads() {
    let mut server = Server::start();
    let runtime = nacre_tests::runtime();
    let seed = nacre_tests::seed::seed("fuzzed_frames_never_stop_the_daemon_serving_correct_reads");
    let mut rng = fastrand::Rng::with_seed(seed);
    let client = runtime.block_on(server.client());
    let written = runtime.block_on(write_checked_data(&client));
    let baseline = runtime.block_on(open_connections(&client));

    let templates = templates();
    let ports = server.ports();
    let started = Instant::now();
    let (mut frames, mut connections, mut replies) = (0usize, 0usize, 0usize);
    while frames < FRAMES {
        let addr = ports[rng.usize(..ports.len())];
        let mut raw = RawConnection::connect(addr).unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
        let mut bytes = Vec::new();
        if rng.u8(..10) != 0 {
            bytes.extend(encode_request(rng.u64(1..), &handshake()));
        }
        let burst = rng.usize(1..=16);
        for _ in 0..burst {
            bytes.extend(mutate(&mut rng, &templates));
        }
        // The server may close before it has read everything; a failed write is expected then.
        let _ = raw.send_bytes(&bytes);
        raw.finish_sending();
        let answered = raw
            .receive_until_closed()
            .unwrap_or_else(|e| panic!("connection {connections} (SEED={seed}) to {addr}: {e}"));
        for (id, reply) in &answered {
            assert!(*id != 0 || matches!(reply, Reply::Error(_)), "id 0 carries only errors, got {reply:?}");
        }
        replies += answered.len();
        frames += burst;
        connections += 1;
        if connections % 200 == 0 {
            assert!(
                server.is_running(),
                "nacred died after {frames} fuzzed frames (SEED={seed})\n{}",
                server.log_tail()
            );
        }
    }
    eprintln!("fuzz: {frames} frames on {connections} connections, {replies} replies, in {:?}", started.elapsed());
    assert!(server.is_running(), "nacred died during the fuzz (SEED={seed})\n{}", server.log_tail());

    runtime.block_on(async {
        check_data(&client, &written).await;
        let put = client.put(Put::new(CHECKED, Key::new("after", ""), "fuzz")).await.expect("put after the fuzz");
        let row = client.get(Get::new(CHECKED, Key::new("after", ""))).await.expect("get").expect("present");
        assert_eq!((row.value.as_slice(), row.version), (&b"fuzz"[..], put));
        // Every fuzzing connection ended on the client's side; the daemon must let each go.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let open = open_connections(&client).await;
            if open <= baseline {
                break;
            }
            assert!(Instant::now() < deadline, "{open} connections still open after the fuzz, {baseline} before");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Writes the rows the end of the test checks.
async fn write_checked_data(client: &Client) -> Vec<(Key, Vec<u8>, VersionId)> {
    client.create_table(CHECKED, TableSettings::default()).await.expect("create_table");
    client.create_table("fuzz", TableSettings::default()).await.expect("create_table");
    let mut written = Vec::new();
    for i in 0..200 {
        let key = Key::new(format!("checked-{i}"), format!("{}", i % 4));
        let value = format!("value-{i}").into_bytes();
        let version = client.put(Put::new(CHECKED, key.clone(), value.clone())).await.expect("put");
        written.push((key, value, version));
    }
    written
}

async fn check_data(client: &Client, written: &[(Key, Vec<u8>, VersionId)]) {
    let keys = written.iter().map(|(k, ..)| k.clone()).collect();
    let rows = client.multi_get(MultiGet::new(CHECKED, keys)).await.expect("multi_get after the fuzz");
    for ((key, value, version), row) in written.iter().zip(rows) {
        let row = row.unwrap_or_else(|| panic!("{key:?} vanished during the fuzz"));
        assert_eq!((&row.value, &row.version), (value, version), "{key:?} changed during the fuzz");
    }
}

/// Client connections the daemon holds, over all shards.
async fn open_connections(client: &Client) -> u64 {
    let stats = client.stats().await.expect("stats");
    stats.iter().filter(|s| s.name == "connections" && s.partition.is_none()).map(|s| s.value).sum()
}

fn handshake() -> Request {
    Request::Handshake(Handshake { protocol_version: PROTOCOL_VERSION, client_name: "fuzz".into() })
}

/// One valid frame of every request kind, most with every optional field set.
fn templates() -> Vec<Vec<u8>> {
    let key = |pk: &str, sk: &str| Key::new(pk, sk);
    let mut put = Put::new("fuzz", key("p", "s"), vec![1u8; 40]);
    put.ttl_ms = Some(60_000);
    put.durability = Some(Durability::Async);
    let mut delete = Delete::new("fuzz", key("p", "s"));
    delete.durability = Some(Durability::Sync);
    let batch = WriteBatch {
        table: "fuzz".into(),
        ops: vec![
            BatchOp::Put { key: key("b", "1"), value: b"one".to_vec(), ts: None, ttl_ms: Some(5) },
            BatchOp::Delete { key: key("b", "2"), ts: None },
            BatchOp::Put { key: key("b", "3"), value: Vec::new(), ts: Some(Ts(1 << 40)), ttl_ms: None },
        ],
        durability: Some(Durability::Async),
    };
    let scan = Scan {
        table: "fuzz".into(),
        partition_key: b"b".to_vec(),
        from: Some(b"1".to_vec()),
        to: Some(b"9".to_vec()),
        limit: 2,
        reverse: true,
        cursor: Some(b"5".to_vec()),
        as_of: Some(Ts(u64::MAX >> 1)),
    };
    let requests = [
        handshake(),
        Request::Topology,
        Request::ListTables,
        Request::Stats,
        Request::CreateTable(CreateTable { name: "fuzz-new".into(), settings: TableSettings::default() }),
        Request::AlterTable(AlterTable {
            name: "fuzz".into(),
            max_versions: Some(4),
            version_retention_ms: Some(Some(1_000)),
            default_ttl_ms: Some(None),
            tie_rule: Some(TableSettings::DEFAULT_TIE_RULE),
            rollback_window_ms: Some(60_000),
        }),
        Request::DropTable(DropTable { name: "fuzz-new".into() }),
        Request::Put(put),
        Request::Delete(delete),
        Request::WriteBatch(batch),
        Request::Get(Get { table: "fuzz".into(), key: key("p", "s"), as_of: Some(Ts(12345)) }),
        Request::MultiGet(MultiGet::new("fuzz", vec![key("p", "s"), key("b", "1"), key("", "")])),
        Request::Scan(scan),
        Request::Versions(Versions::new("fuzz", key("b", "1"))),
        Request::Explain(Explain { table: "fuzz".into(), key: key("b", "1"), as_of: Some(Ts(12345)) }),
    ];
    requests.iter().enumerate().map(|(i, r)| encode_request(i as u64 + 7, r)).collect()
}

/// One frame of fuzz: a template, mutated one of several ways, or noise.
fn mutate(rng: &mut fastrand::Rng, templates: &[Vec<u8>]) -> Vec<u8> {
    let mut frame = templates[rng.usize(..templates.len())].clone();
    match rng.u8(..10) {
        // Unchanged: the daemon must keep answering valid frames amid the noise.
        0 => {}
        // Bytes of the body changed, the prefix kept true: these reach the verifier.
        1..=4 => {
            for _ in 0..rng.usize(1..=4) {
                let at = rng.usize(4..frame.len());
                frame[at] = if rng.bool() { rng.u8(..) } else { frame[at] ^ (1 << rng.u8(..8)) };
            }
        }
        // Truncated or extended, with the prefix rewritten to match.
        5 => {
            frame.truncate(rng.usize(5..frame.len()));
            fix_prefix(&mut frame);
        }
        6 => {
            frame.extend((0..rng.usize(1..64)).map(|_| rng.u8(..)));
            fix_prefix(&mut frame);
        }
        // Any byte changed, the prefix included: the stream itself may fall out of step.
        7 => {
            let at = rng.usize(..frame.len());
            frame[at] = rng.u8(..);
        }
        // A random body behind a true prefix.
        8 => {
            frame = (0..rng.usize(4..256)).map(|_| rng.u8(..)).collect();
            fix_prefix(&mut frame);
        }
        // Raw noise.
        _ => frame = (0..rng.usize(1..64)).map(|_| rng.u8(..)).collect(),
    }
    frame
}

/// Rewrites the length prefix to the frame's true body length.
fn fix_prefix(frame: &mut [u8]) {
    let len = u32::try_from(frame.len() - 4).expect("small frames");
    frame[..4].copy_from_slice(&len.to_le_bytes());
}
