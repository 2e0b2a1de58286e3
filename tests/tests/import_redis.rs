//! `nacre import-redis` against a real `redis-server` and the real `nacred`: 100,000 mixed keys
//! (strings and hashes, a fifth with TTLs of minutes) are copied while a writer keeps changing
//! Redis (SET, HSET, DEL, PEXPIRE, PERSIST) and the importer follows; after SIGINT every Redis
//! key must match Nacre (values, every hash field, expiry within a tolerance, deleted keys
//! absent). Then rows written to Nacre directly (puts and deletes, newer than the import) must
//! survive a second import, which must change nothing else at all.
//!
//! The source of truth at the end is Redis itself, read after the writer stopped. Needs
//! `redis-server` on the PATH (Debian: `apt-get install redis-server`).

use futures_util::{StreamExt, stream};
use nacre_cli::import_redis::notify::Watch;
use nacre_tests::seed::seed;
use nacre_tests::server::{Server, free_ports, nacre_binary};
use nacre_wire::{Client, Delete, Key, Put, Scan, TableSettings, VersionId};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use redis::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TABLE: &str = "redis";
/// Keys filled before the import.
const KEYS: u64 = 100_000;
/// The writer also creates keys above `KEYS`, up to this many.
const NEW_KEYS: u64 = 10_000;
/// Commands the writer sends while the import runs, in pipelines of `WRITER_PIPELINE`.
const WRITER_OPS: usize = 20_000;
const WRITER_PIPELINE: usize = 20;
const FILL_PIPELINE: usize = 1_000;
/// Rows written to Nacre directly between the two imports.
const DIRECT_WRITES: usize = 300;
/// How far Nacre's `expires_at` may be from Redis's `PEXPIRETIME`: the importer computes it
/// from `TIME` and `PTTL`, which read the clock microseconds apart.
const EXPIRY_TOLERANCE_MS: u64 = 2;
/// Longest an import may take (the first one includes 100,000 keys on a debug build).
const IMPORT_TIMEOUT: Duration = Duration::from_secs(150);
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(10);
/// Nacre requests the test keeps in flight while it reads everything back.
const READ_CONCURRENCY: usize = 64;

/// Key `i`'s name: its type is fixed by its number, so the writer never changes a key's type.
fn key_name(i: u64) -> String {
    if is_hash(i) { format!("h:{i}") } else { format!("s:{i}") }
}

fn is_hash(i: u64) -> bool {
    i % 10 >= 7
}

fn value(rng: &mut fastrand::Rng) -> String {
    let len = rng.usize(8..64);
    (0..len).map(|_| rng.alphanumeric()).collect()
}

fn ttl_ms(rng: &mut fastrand::Rng) -> i64 {
    rng.i64(300_000..900_000)
}

/// A `redis-server` on a free loopback port with no persistence, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts one with extra command-line settings.
    fn start_with(settings: &[&str]) -> RedisServer {
        let base = std::env::var_os("NACRE_TEST_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        std::fs::create_dir_all(&base).expect("creating the test directory");
        let dir = tempfile::Builder::new().prefix("redis-e2e-").tempdir_in(&base).expect("a redis directory");
        let port = free_ports(0).port();
        let child = Command::new("redis-server")
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(settings)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting redis-server ({e}); install it: apt-get install redis-server"));
        let server = RedisServer { child, port, _dir: dir };
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        loop {
            let ping = server.try_connection().and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ping.is_ok() {
                return server;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer within {REDIS_START_TIMEOUT:?}: {ping:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://{}/", self.addr()))?.get_connection_with_timeout(Duration::from_secs(5))
    }

    fn connection(&self) -> redis::Connection {
        self.try_connection().expect("connecting to redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // It may already have exited; wait reports either way.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fills keys `0..KEYS`: strings, and hashes of 2 to 5 fields, a fifth with a TTL.
fn fill(redis: &mut redis::Connection, rng: &mut fastrand::Rng) {
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        let key = key_name(i);
        if is_hash(i) {
            let fields: Vec<(String, String)> = (0..rng.usize(2..=5)).map(|f| (format!("f{f}"), value(rng))).collect();
            pipe.hset_multiple(&key, &fields).ignore();
        } else {
            pipe.set(&key, value(rng)).ignore();
        }
        if rng.u8(..100) < 20 {
            pipe.pexpire(&key, ttl_ms(rng)).ignore();
        }
        if pipe.len() >= FILL_PIPELINE {
            pipe.exec(redis).expect("filling redis");
            pipe.clear();
        }
    }
    pipe.exec(redis).expect("filling redis");
}

/// Changes Redis while the import runs: sets, field sets, deletes, TTL changes, new keys.
fn write_while_importing(mut redis: redis::Connection, mut rng: fastrand::Rng) {
    for _ in 0..WRITER_OPS / WRITER_PIPELINE {
        let mut pipe = redis::pipe();
        for _ in 0..WRITER_PIPELINE {
            let i = rng.u64(0..KEYS + NEW_KEYS);
            let key = key_name(i);
            match rng.u8(..100) {
                0..10 => pipe.del(&key),
                10..25 => pipe.pexpire(&key, ttl_ms(&mut rng)),
                25..30 => pipe.persist(&key),
                _ if is_hash(i) => pipe.hset(&key, format!("f{}", rng.u8(0..7)), value(&mut rng)),
                30..45 => pipe.pset_ex(&key, value(&mut rng), u64::try_from(ttl_ms(&mut rng)).expect("positive")),
                _ => pipe.set(&key, value(&mut rng)),
            }
            .ignore();
        }
        pipe.exec(&mut redis).expect("writing to redis");
    }
}

/// What Redis holds for a key: its rows (sort key, value) in sort-key order, and when it
/// expires (`PEXPIRETIME`, Redis 7.0 and later).
#[derive(Debug, PartialEq)]
struct Expected {
    rows: Vec<(Vec<u8>, Vec<u8>)>,
    expires_at_ms: Option<u64>,
}

fn redis_state(redis: &mut redis::Connection, keys: &[u64]) -> Vec<Expected> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(FILL_PIPELINE) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let key = key_name(i);
            if is_hash(i) {
                pipe.cmd("HGETALL").arg(&key)
            } else {
                pipe.cmd("GET").arg(&key)
            };
            pipe.cmd("PEXPIRETIME").arg(&key);
        }
        let replies: Vec<Value> = pipe.query(redis).expect("reading redis");
        for (&i, pair) in chunk.iter().zip(replies.chunks(2)) {
            let mut rows = match &pair[0] {
                Value::Nil => Vec::new(),
                Value::BulkString(v) if !is_hash(i) => vec![(Vec::new(), v.clone())],
                Value::Array(items) if is_hash(i) => items
                    .chunks(2)
                    .map(|fv| match fv {
                        [Value::BulkString(f), Value::BulkString(v)] => (f.clone(), v.clone()),
                        other => panic!("HGETALL {i}: {other:?}"),
                    })
                    .collect(),
                other => panic!("reading key {i}: {other:?}"),
            };
            rows.sort();
            let expires_at_ms = match pair[1] {
                Value::Int(ms) if ms >= 0 => Some(u64::try_from(ms).expect("positive")),
                Value::Int(_) => None,
                ref other => panic!("PEXPIRETIME {i}: {other:?}"),
            };
            out.push(Expected { rows, expires_at_ms });
        }
    }
    out
}

/// A row as Nacre holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    sort_key: Vec<u8>,
    value: Vec<u8>,
    expires_at_ms: Option<u64>,
    version: VersionId,
}

/// Every visible row of every key, read with scans (so extra rows show up too).
async fn nacre_state(client: &Client, keys: &[u64]) -> Vec<Vec<Held>> {
    stream::iter(keys.iter().map(|&i| key_name(i)))
        .map(|pk| async move {
            let mut request = Scan::new(TABLE, pk.as_bytes());
            let mut rows = Vec::new();
            loop {
                let page = client.scan(request.clone()).await.unwrap_or_else(|e| panic!("scanning {pk}: {e}"));
                rows.extend(page.rows.into_iter().map(|r| Held {
                    sort_key: r.sort_key,
                    value: r.value,
                    expires_at_ms: r.expires_at_ms,
                    version: r.version,
                }));
                match page.cursor {
                    Some(cursor) => request.cursor = Some(cursor),
                    None => return rows,
                }
            }
        })
        .buffered(READ_CONCURRENCY)
        .collect()
        .await
}

/// Keys whose Nacre rows differ from Redis's, described.
fn mismatches(keys: &[u64], expected: &[Expected], held: &[Vec<Held>]) -> Vec<String> {
    let mut out = Vec::new();
    for ((&i, want), got) in keys.iter().zip(expected).zip(held) {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = got.iter().map(|h| (h.sort_key.clone(), h.value.clone())).collect();
        if rows != want.rows {
            out.push(format!("{}: redis {:?}, nacre {:?}", key_name(i), want.rows, rows));
            continue;
        }
        for h in got {
            let close = match (h.expires_at_ms, want.expires_at_ms) {
                (None, None) => true,
                (Some(a), Some(b)) => a.abs_diff(b) <= EXPIRY_TOLERANCE_MS,
                _ => false,
            };
            if !close {
                out.push(format!(
                    "{}: expires redis {:?}, nacre {:?}",
                    key_name(i),
                    want.expires_at_ms,
                    h.expires_at_ms
                ));
            }
        }
    }
    out
}

/// A running `nacre import-redis`, its stderr read line by line on a thread.
struct Import {
    child: Child,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Import {
    fn spawn(server: &Server, redis: &RedisServer, follow: bool) -> Import {
        let mut command = Command::new(nacre_binary());
        command
            .args(["--addr", &server.addr().to_string(), "--timeout", "30s", "import-redis", "--from", &redis.addr()])
            .args(["--table", TABLE, "--json"]);
        if follow {
            command.arg("--follow");
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("starting nacre import-redis");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Import { child, stderr: receiver, seen: Vec::new() }
    }

    /// Waits until the importer prints a line containing `needle` on stderr.
    fn wait_for(&mut self, needle: &str) {
        let deadline = Instant::now() + IMPORT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(needle);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("import-redis never printed {needle:?} ({e}); stderr: {:#?}", self.seen);
                }
            }
        }
    }

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pids fit in i32"));
        kill(pid, signal).expect("signalling the importer");
    }

    /// Waits for the importer to exit successfully, at most `IMPORT_TIMEOUT`, and returns its
    /// summary.
    fn finish(self) -> serde_json::Value {
        let (code, summary, stderr) = self.finish_any();
        assert_eq!(code, Some(0), "import-redis failed; stderr: {stderr:#?}");
        summary
    }

    /// Waits for the importer to exit, at most `IMPORT_TIMEOUT`: its exit code, summary and
    /// stderr lines.
    fn finish_any(mut self) -> (Option<i32>, serde_json::Value, Vec<String>) {
        let deadline = Instant::now() + IMPORT_TIMEOUT;
        while self.child.try_wait().expect("polling the importer").is_none() {
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("import-redis did not finish within {IMPORT_TIMEOUT:?}; stderr: {:#?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let Output { status, stdout, .. } = self.child.wait_with_output().expect("reading the importer's output");
        self.seen.extend(self.stderr.try_iter());
        let stdout = String::from_utf8_lossy(&stdout);
        let last = stdout.lines().last().unwrap_or_else(|| panic!("no summary ({status}); stderr: {:#?}", self.seen));
        let summary = serde_json::from_str(last).unwrap_or_else(|e| panic!("summary {last:?}: {e}"));
        (status.code(), summary, self.seen)
    }
}

fn count(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or_else(|| panic!("{field} in {summary}"))
}

#[test]
fn import_copies_a_changing_redis_then_keeps_newer_nacre_writes() {
    let seed = seed("import_copies_a_changing_redis_then_keeps_newer_nacre_writes");
    let mut rng = fastrand::Rng::with_seed(seed);
    let redis = RedisServer::start();
    let mut source = redis.connection();
    fill(&mut source, &mut rng);
    let server = Server::start();
    let runtime = nacre_tests::runtime();
    let client = runtime.block_on(server.client());
    runtime.block_on(client.create_table(TABLE, TableSettings::default())).expect("creating the table");

    // The first import follows while the writer changes Redis; SIGINT once the writer is done
    // and the importer follows (so the signal finds its handler installed).
    let mut importer = Import::spawn(&server, &redis, true);
    let writer = {
        let (connection, rng) = (redis.connection(), fastrand::Rng::with_seed(rng.u64(..)));
        std::thread::spawn(move || write_while_importing(connection, rng))
    };
    writer.join().expect("the writer");
    importer.wait_for("following changes");
    importer.signal(Signal::SIGINT);
    let first = importer.finish();
    eprintln!("first import: {first}");
    assert_eq!(count(&first, "keys_failed"), 0, "{first}");
    assert!(count(&first, "rows_copied") >= KEYS, "{first}");
    assert!(!first["changes_may_be_missed"].as_bool().expect("a bool"), "{first}");
    let flags: Vec<String> =
        redis::cmd("CONFIG").arg("GET").arg("notify-keyspace-events").query(&mut source).expect("CONFIG GET");
    assert_eq!(flags.get(1).map(String::as_str), Some(""), "the notification setting is restored");

    // Every key of Redis, and every key the writer deleted, matches Nacre.
    let keys: Vec<u64> = (0..KEYS + NEW_KEYS).collect();
    let expected = redis_state(&mut source, &keys);
    let held = runtime.block_on(nacre_state(&client, &keys));
    let wrong = mismatches(&keys, &expected, &held);
    assert!(wrong.is_empty(), "{} keys differ, first: {:#?}", wrong.len(), &wrong[..wrong.len().min(10)]);
    let total_rows: usize = expected.iter().map(|e| e.rows.len()).sum();

    // The service writes to Nacre directly: puts and deletes, newer than anything imported.
    let mut direct = BTreeSet::new();
    while direct.len() < DIRECT_WRITES {
        let k = rng.usize(..keys.len());
        if let Some((sort_key, _)) = expected[k].rows.get(rng.usize(..expected[k].rows.len().max(1))) {
            direct.insert((keys[k], sort_key.clone()));
        }
    }
    runtime.block_on(async {
        for (n, (i, sort_key)) in direct.iter().enumerate() {
            let key = Key::new(key_name(*i), sort_key.clone());
            if n % 3 == 0 {
                client.delete(Delete::new(TABLE, key)).await.expect("a direct delete");
            } else {
                client.put(Put::new(TABLE, key, format!("nacre-{n}"))).await.expect("a direct put");
            }
        }
    });
    let before = runtime.block_on(nacre_state(&client, &keys));

    // A second import keeps Nacre's newer rows and changes nothing else.
    let second = Import::spawn(&server, &redis, false).finish();
    eprintln!("second import: {second}");
    assert_eq!(count(&second, "keys_failed"), 0, "{second}");
    assert_eq!(count(&second, "rows_skipped_newer"), DIRECT_WRITES as u64, "{second}");
    assert_eq!(count(&second, "rows_unchanged"), (total_rows - DIRECT_WRITES) as u64, "{second}");
    assert_eq!((count(&second, "rows_copied"), count(&second, "rows_deleted")), (0, 0), "{second}");
    let after = runtime.block_on(nacre_state(&client, &keys));
    let changed: Vec<String> = keys
        .iter()
        .zip(before.iter().zip(&after))
        .filter(|(_, (b, a))| b != a)
        .map(|(i, (b, a))| format!("{}: before {b:?}, after {a:?}", key_name(*i)))
        .collect();
    assert!(changed.is_empty(), "{} keys changed, first: {:#?}", changed.len(), &changed[..changed.len().min(5)]);
}

/// Without `CONFIG` (as on managed Redis) the import warns that changes may be missed and still
/// copies what it scans; other types are counted by type; a hash with an empty field name fails
/// its key alone, and the exit status says so.
#[test]
fn import_without_notifications_warns_counts_types_and_fails_bad_keys_alone() {
    let redis = RedisServer::start_with(&["--rename-command", "CONFIG", ""]);
    let mut source = redis.connection();
    redis::pipe()
        .set("s:1", "one")
        .pset_ex("s:2", "two", 600_000)
        .hset_multiple("h:1", &[("a", "1"), ("b", "2")])
        .hset("h:bad", "", "empty field")
        .rpush("list", "x")
        .sadd("set", "x")
        .zadd("zset", "x", 1)
        .exec(&mut source)
        .expect("filling redis");
    let server = Server::start();
    let runtime = nacre_tests::runtime();
    let client = runtime.block_on(server.client());
    runtime.block_on(client.create_table(TABLE, TableSettings::default())).expect("creating the table");

    let (code, summary, stderr) = Import::spawn(&server, &redis, false).finish_any();
    assert_eq!(code, Some(2), "a failed key fails the run: {summary}");
    assert!(stderr.iter().any(|l| l.contains("changes made during the copy may be missed")), "{stderr:#?}");
    assert_eq!(summary["changes_may_be_missed"], true, "{summary}");
    assert_eq!(count(&summary, "keys_scanned"), 7, "{summary}");
    assert_eq!(count(&summary, "rows_copied"), 4, "{summary}");
    assert_eq!(count(&summary, "keys_failed"), 1, "{summary}");
    assert!(summary["errors"][0].as_str().is_some_and(|e| e.starts_with("h:bad: ")), "{summary}");
    assert_eq!(summary["keys_skipped_by_type"], serde_json::json!({"list": 1, "set": 1, "zset": 1}));

    let rows = runtime.block_on(async {
        let mut rows = Vec::new();
        for pk in ["s:1", "s:2", "h:1", "h:bad", "list"] {
            let page = client.scan(Scan::new(TABLE, pk)).await.expect("a scan");
            rows.extend(page.rows.into_iter().map(|r| (pk, r.sort_key, r.value, r.expires_at_ms.is_some())));
        }
        rows
    });
    let expected = vec![
        ("s:1", b"".to_vec(), b"one".to_vec(), false),
        ("s:2", b"".to_vec(), b"two".to_vec(), true),
        ("h:1", b"a".to_vec(), b"1".to_vec(), false),
        ("h:1", b"b".to_vec(), b"2".to_vec(), false),
    ];
    assert_eq!(rows, expected);
}

/// The barrier every catch-up round relies on: after it, every notification of a command Redis
/// ran before it is in the pending set, however long the backlog. (A backlog longer than
/// tokio's cooperative budget was once left half-drained, so a follow run's last catch-up
/// missed the writer's last changes.)
#[test]
fn a_notification_barrier_drains_a_whole_backlog() {
    const CHANGED: usize = 5_000;
    let redis = RedisServer::start();
    nacre_tests::runtime().block_on(async {
        let client = redis::Client::open(format!("redis://{}/", redis.addr())).expect("a redis client");
        let mut connection = client.get_multiplexed_async_connection().await.expect("connecting to redis-server");
        let mut watch = Watch::start(&client, &mut connection, 0, "*").await.expect("subscribing");
        let mut pipe = redis::pipe();
        for i in 0..CHANGED {
            pipe.set(format!("k{i}"), i).ignore();
        }
        pipe.query_async::<()>(&mut connection).await.expect("writing the keys");
        watch.barrier().await.expect("the barrier");
        let pending = watch.take();
        assert!(!pending.overflowed);
        assert_eq!(pending.keys.len(), CHANGED, "keys notified before the barrier but not drained by it");
        watch.barrier().await.expect("the second barrier");
        assert!(watch.take().is_empty(), "nothing changed after the first barrier");
        watch.stop(&mut connection).await.expect("unsubscribing");
    });
}
