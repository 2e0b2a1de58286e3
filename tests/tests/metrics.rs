//! The HTTP endpoint, watched by a real Prometheus (Debian's `prometheus`) scraping `/metrics`:
//!
//! - N puts show as +N on `nacre_requests_total{kind="put",outcome="ok"}`, and a put to a
//!   missing table as one `unknown_table`; the partitions' memtable bytes grow; the put
//!   latency histogram counts every put;
//! - a Kafka source's lag reaches 0 once it has applied its topic, with every message counted
//!   as applied;
//! - `/ready` is 503 while a shard is held in recovery of a WAL (a restart after SIGKILL) and
//!   200 after, while `/health` answers throughout; unknown paths are 404, other methods 405;
//! - RESP commands are counted by command, and refused ones apart; each command that ran has
//!   its outcome and its latency recorded (one sample per GET sent by the `redis` crate);
//! - N puts to one key count N writes on that key's partition and nothing on any other.
//!
//! Every wait is for a condition (a query's value, a status), bounded in time.

use nacre_tests::kafka::{self, Broker, Producer, Record, end_offsets};
use nacre_tests::prometheus::Prometheus;
use nacre_tests::server::{Server, ServerOptions};
use nacre_tests::{http, runtime};
use nacre_wire::{Durability, Get, Key, Put, SourceSpec, TableSettings};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const PUTS: usize = 500;
const PUT_OK: &str = r#"sum(nacre_requests_total{kind="put",outcome="ok"})"#;

fn server_with_http(config: Option<&str>) -> Server {
    Server::start_with(ServerOptions {
        cores: 2,
        http: true,
        config: config.map(str::to_owned),
        ..ServerOptions::default()
    })
}

#[test]
fn prometheus_scrapes_requests_memory_and_kafka_lag() {
    let server = server_with_http(None);
    let prometheus = Prometheus::start(server.http_addr());
    prometheus.wait_for("nacre_ready", "1 (scraped, ready)", |v| v == 1.0);
    prometheus.wait_for("sum(nacre_shards_serving)", "2", |v| v == 2.0);
    let memtable = r#"sum(nacre_memtable_bytes)"#;
    let memtable_before = prometheus.wait_for(memtable, "reported", |_| true);
    let puts_before = prometheus.scalar(PUT_OK).unwrap_or(0.0);

    let runtime = runtime();
    runtime.block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create");
        for i in 0..PUTS {
            let put = Put::new("t", Key::new(format!("key:{i}"), ""), vec![b'v'; 100]);
            client.put(put).await.expect("put");
        }
        let missing = client.put(Put::new("no_such_table", Key::new("k", ""), "v")).await;
        assert!(missing.is_err(), "a put to a missing table is refused");
    });
    let puts = prometheus.wait_for(PUT_OK, &format!("{puts_before} + {PUTS}"), |v| v >= puts_before + PUTS as f64);
    assert_eq!(puts, puts_before + PUTS as f64, "every put counted once");
    prometheus.wait_for(r#"sum(nacre_requests_total{kind="put",outcome="unknown_table"})"#, "1", |v| v == 1.0);
    prometheus.wait_for(r#"sum(nacre_request_duration_seconds_count{kind="put"})"#, "every put", |v| {
        v == puts_before + PUTS as f64 + 1.0
    });
    let memtable_after = prometheus.wait_for(memtable, "grown", |v| v > memtable_before);
    assert!(memtable_after >= (PUTS * 100) as f64, "{PUTS} values of 100 bytes take {memtable_after} bytes?");

    // A Kafka source drains its topic: lag 0 on every partition, every message applied.
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "metered";
    broker.create_topic(topic, 4);
    let messages = 300;
    let records: Vec<Record> =
        (0..messages).map(|i| Record::new(topic, format!("m:{i}").into_bytes(), b"x".to_vec())).collect();
    Producer::new(&bootstrap).send_all(&records);
    let end = end_offsets(&bootstrap, topic);
    runtime.block_on(async {
        let client = server.client().await;
        let spec = SourceSpec {
            name: "metered".into(),
            table: "t".into(),
            topics: vec![topic.into()],
            brokers: bootstrap.clone(),
            dead_letter_topic: None,
            settings: Vec::new(),
        };
        client.add_source(spec).await.expect("add_source");
    });
    kafka::wait_caught_up(&runtime, &server, "metered", topic, &end);
    prometheus.wait_for(r#"count(nacre_kafka_lag{source="metered"})"#, "4 partitions", |v| v == 4.0);
    prometheus.wait_for(r#"max(nacre_kafka_lag{source="metered"})"#, "0", |v| v == 0.0);
    prometheus.wait_for(r#"sum(nacre_kafka_applied_total{source="metered"})"#, &messages.to_string(), |v| {
        v == messages as f64
    });

    // Every statistic the daemon reports has a catalog line: none falls back to the placeholder.
    let metrics = http::get(server.http_addr(), "/metrics", &[]).expect("an answer");
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.content_type.as_deref(), Some("application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert!(metrics.body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    let uncatalogued: Vec<&str> = metrics.body.lines().filter(|l| l.contains("nacre_uncatalogued_")).collect();
    assert!(uncatalogued.is_empty(), "statistics missing from the metric catalog: {uncatalogued:?}");
}

#[test]
fn ready_only_after_recovery_and_health_throughout() {
    // Memtables that never flush on their own: the restart recovers every write from the WAL.
    let config = "[memory]\nmemtable_budget_bytes = 268435456\nmemtable_ceiling_bytes = 536870912\n";
    let mut server = server_with_http(Some(config));
    let addr = server.http_addr();
    let answer = |path: &str| http::get(addr, path, &[]).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    assert_eq!(answer("/ready").status, 200);
    assert_eq!(answer("/health").status, 200);
    assert_eq!(answer("/nothing").status, 404);
    assert_eq!(http::post(addr, "/metrics").expect("an answer").status, 405);

    let keys = 2_000;
    runtime().block_on(async {
        let client = server.client().await;
        client.create_table("t", TableSettings::default()).await.expect("create");
        for i in 0..keys {
            let mut put = Put::new("t", Key::new(format!("key:{i}"), ""), vec![b'r'; 1000]);
            put.durability = Some(Durability::Sync);
            client.put(put).await.expect("put");
        }
    });
    server.sigkill();

    // Held in recovery until the hold file is removed.
    let hold = server.data_dir().with_file_name("hold-recovery");
    std::fs::write(&hold, b"").expect("writing the hold file");
    server.set_env(vec![("NACRE_HOLD".into(), format!("recovery:{}", hold.display()))]);
    server.spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        match http::get(addr, "/health", &[]) {
            Ok(a) => break a,
            Err(e) => {
                assert!(Instant::now() < deadline, "/health never answered: {e}\n{}", server.log_tail());
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    assert_eq!(health.status, 200, "alive while recovering");
    let ready = answer("/ready");
    assert_eq!(ready.status, 503, "ready while held in recovery: {}", ready.body);
    assert_eq!(ready.body, "not ready: 0 of 2 shards have recovered and serve\n");
    let metrics = answer("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.lines().any(|l| l == "nacre_ready 0"), "{}", metrics.body);

    std::fs::remove_file(&hold).expect("releasing the hold");
    loop {
        let ready = answer("/ready");
        if ready.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not ready after recovery: {}\n{}", ready.body, server.log_tail());
        std::thread::sleep(Duration::from_millis(20));
    }
    runtime().block_on(async {
        let client = server.client().await;
        for i in [0, keys / 2, keys - 1] {
            let got = client.get(Get::new("t", Key::new(format!("key:{i}"), ""))).await.expect("get");
            assert!(got.is_some(), "key:{i} was recovered");
        }
    });
    let status = server.sigterm_and_wait(Duration::from_secs(60));
    assert!(status.success(), "{}", server.log_tail());
}

#[test]
fn resp_commands_are_counted_by_command_and_refusals_apart() {
    let server = Server::start_with(ServerOptions { cores: 2, resp: true, ..ServerOptions::default() });
    let url = format!("redis://{}/", server.resp_addr());
    let runtime = runtime();
    runtime.block_on(async {
        let client = redis::Client::open(url.as_str()).expect("a redis URL");
        let mut con = client.get_multiplexed_async_connection().await.expect("connect");
        for i in 0..10 {
            let () = redis::cmd("SET").arg(format!("k{i}")).arg(i).query_async(&mut con).await.expect("SET");
        }
        for i in 0..3 {
            let _: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query_async(&mut con).await.expect("GET");
        }
        let refused: redis::RedisResult<()> = redis::cmd("FROBNICATE").query_async(&mut con).await;
        assert!(refused.is_err(), "an unknown command is refused");
        let stats = server.client().await.stats().await.expect("stats");
        let sum = |base: &str, labels: &[(&str, &str)]| nacre_tests::stats::stat_sum(&stats, base, labels);
        assert_eq!(sum("resp_commands_total", &[("command", "set")]), 10);
        assert_eq!(sum("resp_commands_total", &[("command", "get")]), 3);
        assert_eq!(sum("resp_commands_refused_total", &[]), 1);
        assert_eq!(sum("resp_command_duration_us_count", &[("command", "get")]), 3, "one latency sample per GET");
        assert_eq!(sum("resp_command_duration_us_count", &[("command", "set")]), 10);
        assert_eq!(sum("resp_command_outcomes_total", &[("command", "get"), ("outcome", "ok")]), 3);
        assert_eq!(sum("resp_command_outcomes_total", &[("command", "set"), ("outcome", "ok")]), 10);
        assert_eq!(sum("resp_command_outcomes_total", &[("outcome", "err")]), 0);

        // N native puts to one key: N writes on its partition, nothing anywhere else.
        let native = server.client().await;
        native.create_table("t", TableSettings::default()).await.expect("create");
        let partitions = native.topology().await.expect("topology").partition_count;
        let hot = nacre_wire::partition_of(b"hot", partitions);
        let by_partition = |stats: &[nacre_wire::Stat]| -> BTreeMap<(u32, String), u64> {
            stats
                .iter()
                .filter(|s| s.name.starts_with("partition_requests_total"))
                .map(|s| ((s.partition.expect("a partition's"), s.name.clone()), s.value))
                .collect()
        };
        let before = by_partition(&native.stats().await.expect("stats"));
        assert_eq!(before.len(), partitions as usize * 3, "three ops for every partition: {before:?}");
        let puts = 25;
        for i in 0..puts {
            native.put(Put::new("t", Key::new("hot", ""), format!("v{i}"))).await.expect("put");
        }
        let after = by_partition(&native.stats().await.expect("stats"));
        for ((partition, name), value) in &after {
            let grown = value - before[&(*partition, name.clone())];
            let expected = if *partition == hot && name.contains(r#"op="write""#) { puts } else { 0 };
            assert_eq!(grown, expected, "{name} of partition {partition} (the key's is {hot})");
        }
    });
}
