//! The `nacre` CLI against a real `nacred`: every command, in both output forms, with the exit
//! statuses the CLI promises (0 done, 1 not found, 2 error with the server's code). The CLI's
//! parsing of timestamps and durations is unit-tested in `daemon/src/cli/time.rs`; here each
//! form is checked to reach the server as the right value.

use nacre_tests::server::{Server, nacre_binary};
use nacre_wire::{Key, Put, TableSettings};
use serde_json::Value;
use std::process::Command;
use std::sync::Arc;

/// 2026-11-26T10:00:00Z in Unix milliseconds.
const NOV_26_MS: u64 = 1_795_687_200_000;

/// What one `nacre` run printed and how it exited.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> String {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        self.stdout
    }

    /// The stdout lines, each parsed as one JSON object.
    fn json(self) -> Vec<Value> {
        self.ok()
            .lines()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"));
                assert!(v.is_object(), "{line:?} is not an object");
                v
            })
            .collect()
    }
}

/// Runs `nacre --addr <server> args...`.
fn nacre(server: &Server, args: &[&str]) -> Run {
    nacre_at(&server.addr().to_string(), args)
}

fn nacre_at(addr: &str, args: &[&str]) -> Run {
    let output = Command::new(nacre_binary())
        .arg("--addr")
        .arg(addr)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running nacre {args:?}: {e}"));
    Run {
        code: output.status.code().expect("nacre exits, it is not killed"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs an async block against the server's client.
fn with_client<T>(server: &Server, f: impl AsyncFnOnce(Arc<nacre_wire::Client>) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let client = Arc::new(server.client().await);
        f(client).await
    })
}

#[test]
fn table_create_alter_list_and_drop() {
    let server = Server::start();
    let created = nacre(&server, &["table", "create", "users", "--max-versions", "5", "--ttl", "7d"]).ok();
    assert!(created.contains("created table users"), "{created}");
    nacre(&server, &["table", "create", "events", "--retention", "15m", "--rollback-window", "0"]).ok();

    let rows = nacre(&server, &["table", "list", "--json"]).json();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0]["name"], "events");
    assert_eq!(rows[0]["max_versions"], 3);
    assert_eq!(rows[0]["version_retention_ms"], 900_000);
    assert_eq!(rows[0]["default_ttl_ms"], Value::Null);
    assert_eq!(rows[0]["rollback_window_ms"], 0);
    assert_eq!(rows[1]["name"], "users");
    assert_eq!(rows[1]["max_versions"], 5);
    assert_eq!(rows[1]["default_ttl_ms"], 7 * 86_400_000_u64);
    assert_eq!(rows[1]["tie_rule"], serde_json::json!(["direct", "stream", "bulk"]));
    assert_eq!(rows[1]["rollback_window_ms"], 86_400_000, "the server's default");

    let text = nacre(&server, &["table", "list"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("NAME") && lines[2].starts_with("users") && lines[2].contains("7days"), "{text}");
    assert!(lines[0].ends_with("ROLLBACK_WINDOW") && lines[2].ends_with("1day"), "{text}");

    let altered = nacre(&server, &["table", "alter", "users", "--rollback-window", "2h"]).ok();
    assert!(altered.contains("altered table users") && altered.contains("rollback window 2h"), "{altered}");
    let rows = nacre(&server, &["table", "list", "--json"]).json();
    assert_eq!((rows[1]["rollback_window_ms"].as_u64(), rows[1]["max_versions"].as_u64()), (Some(7_200_000), Some(5)));
    let unknown = nacre(&server, &["table", "alter", "nobody", "--rollback-window", "1h"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("UnknownTable"), "{}", unknown.stderr);

    let again = nacre(&server, &["table", "create", "users"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("TableExists"), "{}", again.stderr);

    nacre(&server, &["table", "drop", "users"]).ok();
    let rows = nacre(&server, &["table", "list", "--json"]).json();
    assert_eq!(rows.iter().map(|r| r["name"].as_str().expect("a name")).collect::<Vec<_>>(), ["events"]);
    let gone = nacre(&server, &["table", "drop", "users"]);
    assert_eq!(gone.code, 2);
    assert!(gone.stderr.contains("UnknownTable"), "{}", gone.stderr);
}

#[test]
fn put_get_and_del_round_trip_with_ts_ttl_and_as_of() {
    let server = Server::start();
    nacre(&server, &["table", "create", "t"]).ok();

    // --ts in RFC 3339, then a later one in milliseconds: the later wins.
    nacre(&server, &["put", "t", "user:1", "first", "--ts", "2026-11-26T10:00:00Z"]).ok();
    let later = (NOV_26_MS + 1000).to_string();
    let written = nacre(&server, &["put", "t", "user:1", "second", "--ts", &later]).ok();
    assert_eq!(written.trim(), format!("ok {later}.0"));

    let rows = nacre(&server, &["get", "t", "user:1", "--json"]).json();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["value"], "second");
    assert_eq!(row["value_encoding"], "utf8");
    assert_eq!(
        (row["table"].as_str(), row["partition_key"].as_str(), row["sort_key"].as_str()),
        (Some("t"), Some("user:1"), Some(""))
    );
    assert_eq!(row["ts"]["ms"], NOV_26_MS + 1000);
    assert_eq!(row["ts"]["logical"], 0);
    assert_eq!(row["ts"]["hlc"], (NOV_26_MS + 1000) << 16);
    assert_eq!(row["ts"]["rfc3339"], "2026-11-26T10:00:01Z");
    assert_eq!(row["origin"]["kind"], "direct");
    assert!(row["origin"]["source_id"].is_u64() && row["origin"]["seq"].is_u64(), "{row}");
    assert_eq!(row["expires_at_ms"], Value::Null);

    // --as-of, in both forms, sees the first value; the readable form shows it too.
    for as_of in ["2026-11-26T10:00:00.500Z", "1795687200500"] {
        let rows = nacre(&server, &["get", "t", "user:1", "--as-of", as_of, "--json"]).json();
        assert_eq!(rows[0]["value"], "first", "as of {as_of}");
    }
    let text = nacre(&server, &["get", "t", "user:1", "--as-of", "2026-11-26T10:00:00Z"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("VALUE") && lines[0].contains("ORIGIN"), "{text}");
    assert!(lines[1].starts_with("first") && lines[1].contains("2026-11-26T10:00:00Z"), "{text}");
    let before = nacre(&server, &["get", "t", "user:1", "--as-of", "2026-11-26T09:00:00Z"]);
    assert_eq!(before.code, 1, "{}", before.stderr);

    // A sort key, a TTL (expiry = ts + ttl) and a binary value through --base64.
    nacre(&server, &["put", "t", "user:1", "--sort-key", "bin", "/wAQ", "--base64", "--ttl", "30s"]).ok();
    let rows = nacre(&server, &["get", "t", "user:1", "-s", "bin", "--json"]).json();
    assert_eq!(rows[0]["value"], "/wAQ");
    assert_eq!(rows[0]["value_encoding"], "base64");
    assert_eq!(rows[0]["sort_key"], "bin");
    let ts_ms = rows[0]["ts"]["ms"].as_u64().expect("ms");
    assert_eq!(rows[0]["expires_at_ms"].as_u64(), Some(ts_ms + 30_000));
    let text = nacre(&server, &["get", "t", "user:1", "--sort-key", "bin"]).ok();
    assert!(text.contains("base64:/wAQ"), "{text}");

    // Delete: then get is not found, exit 1 with the message on stderr and nothing on stdout.
    nacre(&server, &["del", "t", "user:1"]).ok();
    let missing = nacre(&server, &["get", "t", "user:1", "--json"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert!(missing.stderr.contains("not found") && missing.stderr.contains("t/user:1"), "{}", missing.stderr);
    let never = nacre(&server, &["get", "t", "nobody"]);
    assert_eq!(never.code, 1);
    // The delete touched only the empty sort key.
    assert_eq!(nacre(&server, &["get", "t", "user:1", "-s", "bin", "--json"]).json().len(), 1);
}

#[test]
fn scan_follows_cursors_to_the_limit_or_the_end() {
    let server = Server::start();
    nacre(&server, &["table", "create", "s"]).ok();
    // More rows than one page holds, written pipelined through the client.
    const ROWS: usize = 2_345;
    with_client(&server, async |client| {
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..ROWS {
            let client = Arc::clone(&client);
            writes.spawn(async move {
                let put = Put::new("s", Key::new("p", format!("sk{i:05}")), format!("v{i}"));
                client.put(put).await.expect("put")
            });
        }
        while let Some(done) = writes.join_next().await {
            done.expect("the put task finishes");
        }
    });

    let all = nacre(&server, &["scan", "s", "p", "--json"]).json();
    assert_eq!(all.len(), ROWS);
    for (i, row) in all.iter().enumerate() {
        assert_eq!(row["sort_key"], format!("sk{i:05}"));
        assert_eq!(row["value"], format!("v{i}"));
    }

    let limited = nacre(&server, &["scan", "s", "p", "--limit", "1500", "--json"]).json();
    assert_eq!(limited.len(), 1500);
    assert_eq!(limited[1499]["sort_key"], "sk01499");

    let reverse = nacre(&server, &["scan", "s", "p", "--reverse", "--limit", "3", "--json"]).json();
    let keys: Vec<&str> = reverse.iter().map(|r| r["sort_key"].as_str().expect("utf8")).collect();
    assert_eq!(keys, ["sk02344", "sk02343", "sk02342"]);

    let range = nacre(&server, &["scan", "s", "p", "--from", "sk00010", "--to", "sk00012", "--json"]).json();
    let keys: Vec<&str> = range.iter().map(|r| r["sort_key"].as_str().expect("utf8")).collect();
    assert_eq!(keys, ["sk00010", "sk00011", "sk00012"]);

    let text = nacre(&server, &["scan", "s", "p", "--from", "sk00010", "--to", "sk00011"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("SORT_KEY") && lines[1].starts_with("sk00010") && lines[2].contains("v11"), "{text}");

    // An empty range is not an error: no rows, exit 0.
    assert!(nacre(&server, &["scan", "s", "nobody", "--json"]).json().is_empty());
}

#[test]
fn versions_lists_history_with_origins_and_tombstones() {
    let server = Server::start();
    nacre(&server, &["table", "create", "v", "--max-versions", "5"]).ok();
    nacre(&server, &["put", "v", "k", "one", "--ts", "1795687200000"]).ok();
    nacre(&server, &["put", "v", "k", "two", "--ts", "1795687201000"]).ok();
    nacre(&server, &["del", "v", "k", "--ts", "1795687202000"]).ok();

    let rows = nacre(&server, &["versions", "v", "k", "--json"]).json();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["tombstone"], true);
    assert_eq!(rows[0]["value"], Value::Null);
    assert_eq!(rows[0]["ts"]["ms"], NOV_26_MS + 2000);
    assert_eq!((rows[1]["value"].as_str(), rows[2]["value"].as_str()), (Some("two"), Some("one")));
    assert_eq!(rows[1]["tombstone"], false);
    for row in &rows {
        assert_eq!(row["origin"]["kind"], "direct");
        assert_eq!(row["watermark"], Value::Null);
    }
    // Direct writes of one shard count up.
    assert!(rows[1]["origin"]["seq"].as_u64() > rows[2]["origin"]["seq"].as_u64(), "{rows:?}");

    // An exact MS.LOGICAL from the output reads back the state at that version.
    let exact = format!("{}.{}", rows[1]["ts"]["ms"], rows[1]["ts"]["logical"]);
    assert_eq!(nacre(&server, &["get", "v", "k", "--as-of", &exact, "--json"]).json()[0]["value"], "two");

    let text = nacre(&server, &["versions", "v", "k"]).ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].starts_with("(tombstone)") && lines[3].starts_with("one"), "{text}");
    assert!(lines[3].contains("direct/"), "{text}");

    let none = nacre(&server, &["versions", "v", "other"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("no versions"), "{}", none.stderr);
}

#[test]
fn stats_sum_per_shard_and_list_partitions() {
    let server = Server::start();
    with_client(&server, async |client| {
        client.create_table("st", TableSettings::default()).await.expect("create");
        client.put(Put::new("st", Key::new("a", ""), "x")).await.expect("put");
    });
    let rows = nacre(&server, &["stats", "--json"]).json();
    let shards: std::collections::BTreeSet<u64> = rows.iter().filter_map(|r| r["shard"].as_u64()).collect();
    assert_eq!(shards, [0, 1].into_iter().collect());
    assert!(rows.iter().all(|r| r["partition"].is_null()), "{rows:?}");
    let memtable: u64 =
        rows.iter().filter(|r| r["name"] == "memtable_bytes").map(|r| r["value"].as_u64().expect("u64")).sum();
    assert!(memtable > 0, "a put is in some memtable: {rows:?}");

    let partitions = nacre(&server, &["stats", "--partitions", "--json"]).json();
    let distinct: std::collections::BTreeSet<u64> = partitions.iter().filter_map(|r| r["partition"].as_u64()).collect();
    assert_eq!(distinct.len(), 64, "every partition reports");

    let text = nacre(&server, &["stats"]).ok();
    assert!(text.starts_with("NAME") && text.contains("segment_count"), "{text}");

    // --watch: refreshes (not a terminal here: one after another), each counter with a rate
    // from the second on; the stats requests themselves make requests_total{kind="stats"} grow.
    let watched = nacre(&server, &["stats", "--watch", "--count", "3", "--interval", "50ms", "--json"]).json();
    let frames = watched.iter().filter(|r| r["name"] == "allocations_total" && r["shard"] == 0).count();
    assert_eq!(frames, 3, "three refreshes");
    let stats_rates: Vec<f64> = watched
        .iter()
        .filter(|r| r["name"] == r#"requests_total{kind="stats",outcome="ok"}"#)
        .filter_map(|r| r["per_second"].as_f64())
        .collect();
    assert!(stats_rates.iter().any(|r| *r > 0.0), "the stats requests counted between refreshes: {watched:?}");
    let gauge = watched.iter().find(|r| r["name"] == "memtable_bytes").expect("memtable_bytes");
    assert!(gauge["per_second"].is_null(), "a gauge has no rate: {gauge}");
}

#[test]
fn errors_exit_2_with_the_servers_code_and_any_port_serves() {
    let server = Server::start();
    let unknown = nacre(&server, &["put", "nope", "k", "v"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("UnknownTable") && unknown.stderr.contains("nope"), "{}", unknown.stderr);
    let unknown = nacre(&server, &["get", "nope", "k"]);
    assert_eq!(unknown.code, 2, "an unknown table is an error, not a missing key");

    nacre(&server, &["table", "create", "t"]).ok();

    let usage = nacre(&server, &["put", "t", "k", "v", "--ttl", "forever"]);
    assert_eq!(usage.code, 2);
    assert!(usage.stderr.contains("forever"), "{}", usage.stderr);

    // Every shard's own port serves every command (the CLI routes or the server forwards).
    for shard in 0..server.cores() {
        let addr = server.shard_addr(shard).to_string();
        for i in 0..4 {
            let pk = format!("k{shard}-{i}");
            nacre_at(&addr, &["put", "t", &pk, "v"]).ok();
            assert_eq!(nacre_at(&addr, &["get", "t", &pk, "--json"]).json()[0]["value"], "v");
        }
    }
    let future = nacre(&server, &["put", "t", "k", "v", "--ts", "2999-01-01T00:00:00Z"]);
    assert_eq!(future.code, 2);
    assert!(future.stderr.contains("TimestampTooFarInFuture"), "{}", future.stderr);

    // Nothing listens on port 1: a connection error, exit 2.
    let refused = nacre_at("127.0.0.1:1", &["table", "list"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("connect"), "{}", refused.stderr);
}

/// Regression: a refused client ts once reached the shard's HLC before the skew check, so every
/// later server-stamped write on that shard was refused too (fixed in b63a883).
#[test]
fn a_refused_future_ts_leaves_the_servers_clock_alone() {
    let server = Server::start();
    nacre(&server, &["table", "create", "t"]).ok();
    let future = nacre(&server, &["put", "t", "k", "v", "--ts", "2999-01-01T00:00:00Z"]);
    assert_eq!(future.code, 2, "{}", future.stderr);
    let after = nacre(&server, &["put", "t", "k", "v"]);
    assert_eq!(after.code, 0, "a write stamped by the server after the refusal: {}", after.stderr);
    let rows = nacre(&server, &["get", "t", "k", "--json"]).json();
    assert!(rows[0]["ts"]["rfc3339"].as_str().is_some_and(|t| t.starts_with("20")), "{rows:?}");
    assert!(rows[0]["ts"]["ms"].as_u64() < Some(4_102_444_800_000), "before 2100: {rows:?}");
}
