//! nacre-loadgen's writing targets against the real parts: the kafka target producing to a real
//! broker (every record once, each in the Kafka partition Nacre's partitioner names, sort keys in
//! their header), and the bulk target's file built by `nacre bulk build` into a load that a real
//! `nacred` links and serves. It checks what was written, never how fast.

use nacre_tests::kafka::{Broker, SORT_KEY_HEADER, read_topic};
use nacre_tests::server::{Server, nacre_binary, test_dir};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::Duration;

/// Longest one run may take.
const DEADLINE: Duration = Duration::from_secs(120);

fn run(program: &str, args: &[&str]) -> Output {
    let output = nacre_tests::program::run(Command::new(program).args(args), b"", DEADLINE);
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{program} {args:?} failed: {}\n{text}", output.status);
    println!("{text}");
    output
}

fn loadgen(args: &[&str]) -> Output {
    run(env!("CARGO_BIN_EXE_nacre-loadgen"), &[args, &["--progress-interval", "0s", "--seed", "7"]].concat())
}

#[test]
fn the_kafka_target_produces_every_record_where_nacre_would_put_it() {
    let broker = Broker::start();
    broker.create_topic("aligned", 4);
    let bootstrap = broker.bootstrap();
    let common = ["--target", "kafka", "--addr", &bootstrap, "--phase", "load", "--keys", "3000"];
    loadgen(&[&common[..], &["--topic", "aligned", "--connections", "3", "--pipeline", "16"]].concat());
    let messages = read_topic(&bootstrap, "aligned");
    assert_eq!(messages.len(), 3000);
    let mut keys = BTreeSet::new();
    for m in &messages {
        let key = m.key.clone().expect("every message has a key");
        assert_eq!(m.partition, nacre_wire::kafka_partition_of(&key, 4), "{:?}", String::from_utf8_lossy(&key));
        assert_eq!(m.payload.as_ref().map(Vec::len), Some(100));
        keys.insert(key);
    }
    let expected: BTreeSet<Vec<u8>> = (0..3000).map(|i| format!("key:{i:012}").into_bytes()).collect();
    assert_eq!(keys, expected, "every record once");

    // Rows sharing partition keys carry their sort key in the header nacred reads.
    broker.create_topic("rows", 2);
    loadgen(&[&common[..], &["--topic", "rows", "--rows-per-partition", "10", "--partitioner", "kafka"]].concat());
    let messages = read_topic(&bootstrap, "rows");
    assert_eq!(messages.len(), 3000);
    let last = messages.iter().find(|m| m.key.as_deref() == Some(b"key:000000000299")).expect("partition 299");
    let sort = last.headers.iter().find(|(name, _)| name == SORT_KEY_HEADER).and_then(|(_, v)| v.clone());
    assert!(sort.is_some_and(|s| s.len() == 12), "{:?}", last.headers);
}

#[test]
fn the_bulk_target_writes_an_input_the_builder_turns_into_a_served_load() {
    let server = Server::start();
    let dir = test_dir("loadgen-bulk-");
    let input = dir.path().join("records.parquet");
    let input_arg = input.display().to_string();
    loadgen(&["--target", "bulk", "--phase", "load", "--keys", "5000", "--value-size", "20", "--out", &input_arg]);
    let addr = server.addr().to_string();
    let nacre = nacre_binary().display().to_string();
    run(&nacre, &["--addr", &addr, "table", "create", "bulk"]);
    let load = dir.path().join("load").display().to_string();
    run(
        &nacre,
        &[
            "--addr",
            &addr,
            "bulk",
            "build",
            "--from-server",
            "--table",
            "bulk",
            "--mode",
            "merge",
            "--snapshot-ts",
            "1000",
            "--format",
            "parquet",
            "--key",
            "key",
            "--value",
            "value",
            "--no-progress",
            "--out",
            &load,
            &input_arg,
        ],
    );
    run(&nacre, &["--addr", &addr, "bulk", "link", &load]);
    // The loadgen reads what it wrote: every get of the 5,000 records hits.
    let output = loadgen(&[
        "--addr",
        &addr,
        "--table",
        "bulk",
        "--workload",
        "get",
        "--keys",
        "5000",
        "--duration",
        "1s",
        "--warmup",
        "0s",
    ]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(" 0 misses"), "{text}");
    assert!(!text.contains("errors: ") || text.contains("errors: 0"), "{text}");
}
