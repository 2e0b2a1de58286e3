//! Bounds that must bound: the cross-shard mesh runs at most `forward_calls_in_flight` calls
//! from a peer at once however many connections forward to it; concurrent large sync writes far
//! past the WAL's pending limit wait instead of growing a batch, and lose nothing acknowledged;
//! a connection flooding a shard with large requests is held to its share of the shard's
//! request-byte budget, while another connection's requests go on. Every figure is read from the
//! daemon's own stats.

use nacre_tests::server::{Server, ServerOptions, client_options};
use nacre_wire::{BatchOp, Client, ClientOptions, Durability, Get, Key, Put, Stat, TableSettings, WriteBatch};
use std::sync::Arc;

const TABLE: &str = "bounded";

/// A client that sends everything to shard 0's own port, so every key shard 1 owns is
/// forwarded through the mesh.
async fn unaware_client(server: &Server) -> Client {
    let options = ClientOptions { shard_aware: false, ..client_options() };
    Client::connect(server.shard_addr(0), options).await.expect("connect")
}

fn stat(stats: &[Stat], name: &str, shard: u32) -> u64 {
    stats
        .iter()
        .find(|s| s.name == name && s.shard == Some(shard) && s.partition.is_none())
        .unwrap_or_else(|| panic!("no stat {name} for shard {shard}"))
        .value
}

#[test]
fn a_flood_of_forwarded_requests_runs_at_most_the_configured_calls_at_once() {
    const BOUND: u64 = 4;
    let config = format!("[limits]\nforward_calls_in_flight = {BOUND}\nforward_queue_depth = 8\n");
    let server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        server.client().await.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let mut tasks = Vec::new();
        for c in 0..16 {
            let client = Arc::new(unaware_client(&server).await);
            for w in 0..8 {
                let client = client.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..40 {
                        let key = Key::new(format!("c{c}w{w}k{i}"), "");
                        let mut put = Put::new(TABLE, key, format!("{c}-{w}-{i}"));
                        put.durability = Some(Durability::Sync);
                        client.put(put).await.expect("a forwarded put");
                    }
                }));
            }
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let stats = server.client().await.stats().await.expect("stats");
        let peak = stat(&stats, "forward_calls_in_flight_peak", 1);
        let sent = stat(&stats, "forward_calls_sent_total", 0);
        assert_eq!(stat(&stats, "forward_calls_in_flight_limit", 1), BOUND);
        assert!(sent > 1_000, "shard 0 forwarded only {sent} calls");
        assert!((1..=BOUND).contains(&peak), "shard 1 ran {peak} forwarded calls at once; the bound is {BOUND}");
        let check = unaware_client(&server).await;
        for c in [0, 15] {
            let row = check.get(Get::new(TABLE, Key::new(format!("c{c}w7k39"), ""))).await.expect("get");
            assert_eq!(row.map(|r| r.value), Some(format!("{c}-7-39").into_bytes()));
        }
    });
}

#[test]
fn large_sync_writes_far_past_the_wal_limit_wait_and_survive_sigkill() {
    const LIMIT: u64 = 8 << 20;
    let config = format!("[wal]\npending_limit_bytes = {LIMIT}\n");
    let mut server = Server::start_with(ServerOptions { config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let value = vec![b'x'; 1_000_000];
    let (writers, rounds, per_batch) = (16usize, 4usize, 3usize);
    runtime.block_on(async {
        let client = Arc::new(server.client().await);
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (client, value) = (client.clone(), value.clone());
            tasks.push(tokio::spawn(async move {
                for r in 0..rounds {
                    let ops = (0..per_batch)
                        .map(|i| BatchOp::Put {
                            key: Key::new(format!("w{w}"), format!("r{r}i{i}")),
                            value: value.clone(),
                            ts: None,
                            ttl_ms: None,
                        })
                        .collect();
                    let batch = WriteBatch { durability: Some(Durability::Sync), ..WriteBatch::new(TABLE, ops) };
                    client.write_batch(batch).await.expect("a large sync batch");
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer");
        }
        let stats = client.stats().await.expect("stats");
        let offered = (writers * rounds * per_batch * value.len()) as u64;
        for shard in 0..server.cores() as u32 {
            let peak = stat(&stats, "wal_pending_peak_bytes", shard);
            assert!(peak <= LIMIT, "shard {shard} had {peak} WAL bytes pending; the limit is {LIMIT}");
        }
        assert!(offered > 10 * LIMIT, "offered {offered} bytes");
    });
    server.sigkill();
    server.restart();
    runtime.block_on(async {
        let client = server.client().await;
        for w in 0..writers {
            for r in 0..rounds {
                for i in 0..per_batch {
                    let key = Key::new(format!("w{w}"), format!("r{r}i{i}"));
                    let row = client.get(Get::new(TABLE, key)).await.expect("get");
                    assert_eq!(row.map(|r| r.value.len()), Some(value.len()), "w{w} r{r} i{i} was lost");
                }
            }
        }
    });
}

#[test]
fn a_connection_flooding_large_requests_is_held_to_its_share_while_another_goes_on() {
    const SHARE: u64 = 8 << 20;
    const SHARD: u64 = 32 << 20;
    let config =
        format!("[limits]\nmax_in_flight_bytes_per_connection = {SHARE}\nmax_in_flight_bytes_per_shard = {SHARD}\n");
    let server = Server::start_with(ServerOptions { cores: 1, config: Some(config), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        let greedy = Arc::new(unaware_client(&server).await);
        greedy.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let value = vec![b'g'; 1_000_000];
        let mut flood = Vec::new();
        for i in 0..96 {
            let (greedy, value) = (greedy.clone(), value.clone());
            flood.push(tokio::spawn(async move {
                let mut put = Put::new(TABLE, Key::new(format!("big{i}"), ""), value);
                put.durability = Some(Durability::Sync);
                greedy.put(put).await.expect("a large put")
            }));
        }
        let other = unaware_client(&server).await;
        for i in 0..200 {
            let mut put = Put::new(TABLE, Key::new(format!("small{i}"), ""), "s");
            put.durability = Some(Durability::Sync);
            other.put(put).await.expect("the other connection's put");
        }
        for f in flood {
            f.await.expect("flooder");
        }
        let stats = other.stats().await.expect("stats");
        let peak = stat(&stats, "request_bytes_in_flight_peak", 0);
        // The flooder alone offered 96 MB at once; it held at most its share, the other
        // connection at most one small request more.
        assert!(peak > 1_000_000, "the flood never reached the shard ({peak} bytes)");
        assert!(peak <= SHARE + (1 << 20), "{peak} request bytes were in flight; one connection's share is {SHARE}");
        let row = other.get(Get::new(TABLE, Key::new("big95", ""))).await.expect("get");
        assert_eq!(row.map(|r| r.value.len()), Some(1_000_000));
    });
}
