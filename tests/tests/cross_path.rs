//! The ordering rule across all three paths, end to end: one random history of direct writes,
//! Kafka messages and bulk loads (merge and replace, with per-record timestamps, and sometimes a
//! rollback), with timestamps drawn from three values so versions tie across paths on purpose,
//! is applied to two real `nacred`s, one after the other, under two different schedules, with a real Kafka broker and
//! real `nacre bulk build` and link:
//!
//! - **stream first**: the Kafka source is added and caught up, then the loads are linked, then
//!   the direct writes are made, then the rollback;
//! - **direct first**: the direct writes, a full compaction, the replace load, a restart, the
//!   merge load (linked twice), the rollback, then the Kafka source; once caught up the daemon
//!   is SIGKILLed and restarted, so it consumes again from its last durable position (Kafka
//!   redelivery of whatever was not flushed).
//!
//! Both then compact fully, and every get (latest, and as of each of the three timestamps),
//! every key's versions and every partition key's scan must be byte-identical between the two,
//! and equal to a model that applies DESIGN.md §2 to the whole history at once. A direct
//! version's `seq` is the shard's counter, which depends on arrival order, and its `source_id`
//! the owning shard, so both are compared as 0: the history never writes one key twice at one
//! `ts` directly, so no read depends on them.
//!
//! Each run prints `SEED=<n>`; `SEED=<n> cargo test -p nacre-tests --test cross_path` replays it.
//!
//! A second test asks `nacre explain` about a three-way tie (Kafka, direct and bulk at one `ts`).

use nacre_tests::bulk::{self, Row as BulkRow};
use nacre_tests::kafka::{
    self, Broker, Producer, Record, SORT_KEY_HEADER, SourceConfig, TS_HEADER, TTL_HEADER, active_source, end_offsets,
    restart_with_sources,
};
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{
    Client, Compact, Delete, Get, Key, Origin, OriginKind, Payload, Put, Scan, TableSettings, Ts, VersionEntry,
    VersionId, Versions,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TABLE: &str = "cross";
const SOURCE: &str = "cross";
const TOPIC_PARTITIONS: usize = 2;
const BASE_CONFIG: &str = "partitions = 8\n";
const PKS: [&str; 2] = ["p", "q"];
const SKS: [&str; 3] = ["a", "b", "c"];
const MERGE_LOAD: u32 = 7;
const REPLACE_LOAD: u32 = 8;
/// A TTL that has long run out (the history is an hour old), and one that has not.
const TTLS: [u64; 2] = [1_000, 86_400_000];

/// One write of the history, as the model sees it.
#[derive(Debug, Clone)]
struct Write {
    key: Key,
    id: VersionId,
    payload: Payload,
}

/// A random history and what each path must be sent.
struct History {
    /// The three timestamps every version takes one of, milliseconds.
    times: [u64; 3],
    direct: Vec<Write>,
    messages: Vec<Record>,
    merge_rows: Vec<BulkRow>,
    replace_rows: Vec<BulkRow>,
    /// The merge load's and the replace load's snapshots, milliseconds.
    merge_snapshot: u64,
    replace_snapshot: u64,
    rollback: Option<u32>,
}

fn keys() -> Vec<Key> {
    PKS.iter().flat_map(|pk| SKS.iter().map(move |sk| Key::new(*pk, *sk))).collect()
}

fn history(rng: &mut fastrand::Rng, now: u64, topic: &str) -> History {
    let base = now - 3_600_000;
    let times = [base, base + 1_000, base + 2_000];
    let keys = keys();
    let pick_ts = |rng: &mut fastrand::Rng| times[rng.usize(..times.len())];
    // Direct: at most one write per (key, ts), so the order-dependent seq never decides.
    let mut direct = Vec::new();
    for key in &keys {
        for &ts in &times {
            if rng.u8(..3) == 0 {
                let payload = match rng.u8(..4) {
                    0 => Payload::Tombstone,
                    1 => Payload::Value {
                        value: format!("direct-{ts}").into_bytes(),
                        expires_at_ms: Some(ts + TTLS[rng.usize(..2)]),
                    },
                    _ => Payload::Value { value: format!("direct-{ts}").into_bytes(), expires_at_ms: None },
                };
                let origin = Origin { kind: OriginKind::Direct, source_id: 0, seq: 0 };
                direct.push(Write { key: key.clone(), id: VersionId { ts: Ts::from_millis(ts), origin }, payload });
            }
        }
    }
    let mut messages = Vec::new();
    for i in 0..rng.usize(6..14) {
        let key = &keys[rng.usize(..keys.len())];
        let ts = pick_ts(rng);
        let pk = key.partition_key.clone();
        let mut record = if rng.u8(..5) == 0 {
            Record::tombstone(topic, pk)
        } else {
            let r = Record::new(topic, pk, format!("kafka-{i}").into_bytes());
            if rng.bool() { r.header(TTL_HEADER, TTLS[rng.usize(..2)].to_string()) } else { r }
        };
        record = record
            .header(SORT_KEY_HEADER, key.sort_key.clone())
            .header(TS_HEADER, ts.to_string())
            .partition(rng.i32(0..TOPIC_PARTITIONS as i32));
        messages.push(record);
    }
    let load_rows = |rng: &mut fastrand::Rng, tag: &str, min_ts: u64| -> Vec<BulkRow> {
        let mut rows = Vec::new();
        for key in &keys {
            if rng.bool() {
                let value = format!("{tag}-{}", String::from_utf8_lossy(&key.sort_key));
                let pk = String::from_utf8_lossy(&key.partition_key).into_owned();
                let sk = String::from_utf8_lossy(&key.sort_key).into_owned();
                let ts = if rng.bool() { None } else { Some(pick_ts(rng).max(min_ts)) };
                rows.push(BulkRow { ts, ..BulkRow::new(pk, sk, value) });
            }
        }
        rows
    };
    let merge_snapshot = pick_ts(rng);
    let replace_snapshot = times[rng.usize(..2)];
    let merge_rows = load_rows(rng, "merge", 0);
    // A replace load's records may not be older than its snapshot.
    let replace_rows = load_rows(rng, "replace", replace_snapshot);
    let rollback = match rng.u8(..3) {
        0 => Some(MERGE_LOAD),
        1 => Some(REPLACE_LOAD),
        _ => None,
    };
    History { times, direct, messages, merge_rows, replace_rows, merge_snapshot, replace_snapshot, rollback }
}

/// The versions a load's rows become: record `i` of input 0 has seq `i`.
fn load_writes(rows: &[BulkRow], load: u32, snapshot: u64) -> Vec<Write> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| Write {
            key: Key::new(r.pk.as_str(), r.sk.as_str()),
            id: VersionId {
                ts: Ts::from_millis(r.ts.unwrap_or(snapshot)),
                origin: Origin { kind: OriginKind::Bulk, source_id: load, seq: i as u64 },
            },
            payload: Payload::Value { value: r.value.clone().expect("a value").into_bytes(), expires_at_ms: None },
        })
        .collect()
}

/// What the model and each daemon answer, in one comparable form.
type Observations = Vec<String>;

/// The model: every write of the history at once, resolved by DESIGN.md §2, as it reads once
/// compacted: an expired value is a tombstone of the same identity (ARCHITECTURE.md, "Garbage
/// collection"), for as-of reads too.
struct Model {
    writes: Vec<Write>,
    /// The replace load's watermark point, unless rolled back.
    watermark: Option<VersionId>,
    now: u64,
}

impl Model {
    fn new(mut writes: Vec<Write>, watermark: Option<VersionId>, now: u64) -> Model {
        for w in &mut writes {
            if let Payload::Value { expires_at_ms: Some(at), .. } = w.payload
                && at <= now
            {
                w.payload = Payload::Tombstone;
            }
        }
        Model { writes, watermark, now }
    }

    fn versions(&self, key: &Key) -> Vec<VersionEntry> {
        let mut out: Vec<VersionEntry> = self
            .writes
            .iter()
            .filter(|w| &w.key == key)
            .map(|w| VersionEntry { version: w.id, payload: w.payload.clone() })
            .collect();
        kafka::newest_first(&mut out);
        out
    }

    fn get(&self, key: &Key, as_of: Option<u64>) -> Option<(Vec<u8>, VersionId, Option<u64>)> {
        let bound = as_of.map_or(Ts(u64::MAX), |ms| Ts(Ts::from_millis(ms + 1).0 - 1));
        let history: Vec<VersionEntry> = self.versions(key).into_iter().filter(|v| v.version.ts <= bound).collect();
        let best = history.first()?;
        if let Some(point) = self.watermark
            && point.ts <= bound
            && kafka::rank(&best.version) < kafka::rank(&point)
        {
            return None;
        }
        let at = as_of.map_or(self.now, |ms| ms.min(self.now));
        let row = kafka::visible(&history, at)?;
        Some((row.value, row.version, row.expires_at_ms))
    }

    fn observe(&self, times: &[u64; 3]) -> Observations {
        let mut out = Vec::new();
        for key in keys() {
            for as_of in [None, Some(times[0]), Some(times[1]), Some(times[2])] {
                out.push(format!("get {key:?} as of {as_of:?}: {:?}", self.get(&key, as_of)));
            }
            out.push(format!("versions {key:?}: {:?}", self.versions(&key)));
        }
        for pk in PKS {
            let rows: Vec<_> = SKS
                .iter()
                .filter_map(|sk| self.get(&Key::new(pk, *sk), None).map(|row| (sk.as_bytes().to_vec(), row)))
                .collect();
            out.push(format!("scan {pk}: {rows:?}"));
        }
        out
    }
}

/// A version as compared: a direct version's source is the shard that owns its key and its
/// seq the shard's arrival counter, neither of which the model knows, so both read as 0.
fn normalised(mut id: VersionId) -> VersionId {
    if id.origin.kind == OriginKind::Direct {
        id.origin.source_id = 0;
        id.origin.seq = 0;
    }
    id
}

async fn observe(client: &Client, times: &[u64; 3]) -> Observations {
    let mut out = Vec::new();
    for key in keys() {
        for as_of in [None, Some(times[0]), Some(times[1]), Some(times[2])] {
            let get = Get { as_of: as_of.map(|ms| Ts(Ts::from_millis(ms + 1).0 - 1)), ..Get::new(TABLE, key.clone()) };
            let row = client.get(get).await.expect("get").map(|r| (r.value, normalised(r.version), r.expires_at_ms));
            out.push(format!("get {key:?} as of {as_of:?}: {row:?}"));
        }
        let history = client.versions(Versions::new(TABLE, key.clone())).await.expect("versions");
        let versions: Vec<VersionEntry> = history
            .versions
            .into_iter()
            .map(|v| VersionEntry { version: normalised(v.version), payload: v.payload })
            .collect();
        out.push(format!("versions {key:?}: {versions:?}"));
    }
    for pk in PKS {
        let page = client.scan(Scan::new(TABLE, pk)).await.expect("scan");
        assert!(page.cursor.is_none(), "three rows fit one page");
        let rows: Vec<_> =
            page.rows.into_iter().map(|r| (r.sort_key, (r.value, normalised(r.version), r.expires_at_ms))).collect();
        out.push(format!("scan {pk}: {rows:?}"));
    }
    out
}

/// A daemon with the table, one shard per core of the test's default.
fn start(runtime: &tokio::runtime::Runtime) -> (Server, u32, u32) {
    let server = Server::start_with(ServerOptions { config: Some(BASE_CONFIG.to_owned()), ..ServerOptions::default() });
    let settings = TableSettings { max_versions: 1_000, rollback_window_ms: 0, ..TableSettings::default() };
    let (table_id, partitions) = runtime.block_on(async {
        let client = server.client().await;
        let table = client.create_table(TABLE, settings).await.expect("create_table");
        (table.id, client.topology().await.expect("topology").partition_count)
    });
    (server, table_id, partitions)
}

async fn write_direct(client: &Client, writes: &[Write]) {
    for w in writes {
        match &w.payload {
            Payload::Tombstone => {
                let delete = Delete { ts: Some(w.id.ts), ..Delete::new(TABLE, w.key.clone()) };
                client.delete(delete).await.expect("delete");
            }
            Payload::Value { value, expires_at_ms } => {
                let mut put = Put::new(TABLE, w.key.clone(), value.clone());
                put.ts = Some(w.id.ts);
                put.ttl_ms = expires_at_ms.map(|at| at - w.id.ts.millis());
                client.put(put).await.expect("put");
            }
        }
    }
}

fn link(runtime: &tokio::runtime::Runtime, server: &Server, dir: &Path) {
    runtime.block_on(async { server.client().await.bulk_link(&dir.display().to_string()).await.expect("link") });
}

fn rollback(runtime: &tokio::runtime::Runtime, server: &Server, load: Option<u32>) {
    if let Some(load) = load {
        runtime.block_on(async { server.client().await.bulk_rollback(load).await.expect("rollback") });
    }
}

fn compact(runtime: &tokio::runtime::Runtime, server: &Server) {
    let compact = Compact { table: TABLE.into(), partition: None, wait: true };
    runtime.block_on(async { server.client().await.compact(compact).await.expect("compact") });
}

/// Adds the Kafka source and waits until every message is applied; returns its stream id.
fn consume(runtime: &tokio::runtime::Runtime, server: &mut Server, bootstrap: &str, topic: &str) -> u32 {
    restart_with_sources(server, BASE_CONFIG, &[SourceConfig::new(SOURCE, TABLE, &[topic], bootstrap)]);
    kafka::wait_caught_up(runtime, server, SOURCE, topic, &end_offsets(bootstrap, topic));
    active_source(server, SOURCE).stream_id(topic)
}

/// Builds one load with a fixed id, once, for both daemons.
fn build_load(
    work: &Path,
    name: &str,
    rows: &[BulkRow],
    load: u32,
    snapshot: u64,
    mode: &str,
    ids: (u32, u32),
) -> PathBuf {
    let input = work.join(format!("{name}.jsonl"));
    // Every line names `ts` (null: the snapshot), so the column exists whatever the rows hold.
    let lines: Vec<String> = rows
        .iter()
        .map(|r| serde_json::json!({"id": r.pk, "sk": r.sk, "val": r.value, "ts": r.ts}).to_string())
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").expect("writing the load's input");
    let out = work.join(name);
    let (snapshot, load) = (snapshot.to_string(), load.to_string());
    let args = ["--format", "jsonl", "--ts", "ts", "--mode", mode, "--snapshot-ts", &snapshot, "--load-id", &load];
    bulk::build(TABLE, ids.0, ids.1, &[&input], &out, &args);
    out
}

#[test]
fn every_schedule_of_one_cross_path_history_reads_the_same_and_as_the_model() {
    let seed = nacre_tests::seed::seed("every_schedule_of_one_cross_path_history_reads_the_same_and_as_the_model");
    let mut rng = fastrand::Rng::with_seed(seed);
    let runtime = nacre_tests::runtime();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let work = test_dir("nacre-cross-path-");
    for round in 0..5 {
        // A topic of its own per round: each round's daemons consume it from the start.
        let topic = format!("cross-{round}");
        broker.create_topic(&topic, TOPIC_PARTITIONS);
        let h = history(&mut rng, kafka::now_ms(), &topic);
        let delivered = Producer::new(&bootstrap).send_all(&h.messages);
        // One daemon at a time (a test process runs one): the loads are built once, for the
        // table id and partition count both daemons give.
        let dir = work.path().join(format!("round-{round}"));
        std::fs::create_dir_all(&dir).expect("mkdir");

        // Stream first: Kafka, the loads, the direct writes, the rollback.
        let (mut server, table_id, partitions) = start(&runtime);
        let ids = (table_id, partitions);
        let merge = build_load(&dir, "merge", &h.merge_rows, MERGE_LOAD, h.merge_snapshot, "merge", ids);
        let replace = build_load(&dir, "replace", &h.replace_rows, REPLACE_LOAD, h.replace_snapshot, "replace", ids);
        let stream_id = consume(&runtime, &mut server, &bootstrap, &topic);
        link(&runtime, &server, &merge);
        link(&runtime, &server, &replace);
        runtime.block_on(async { write_direct(&server.client().await, &h.direct).await });
        rollback(&runtime, &server, h.rollback);
        compact(&runtime, &server);
        let got_stream = runtime.block_on(async { observe(&server.client().await, &h.times).await });
        server.sigterm_and_wait(Duration::from_secs(30));
        drop(server);

        // Direct first: the direct writes, a compaction, the replace load, a restart, the merge
        // load twice, the rollback, Kafka, a SIGKILL and a replay.
        let (mut server, table_id2, partitions2) = start(&runtime);
        assert_eq!((table_id2, partitions2), ids, "both daemons give the table one id and one partition count");
        runtime.block_on(async { write_direct(&server.client().await, &h.direct).await });
        compact(&runtime, &server);
        link(&runtime, &server, &replace);
        let status = server.sigterm_and_wait(Duration::from_secs(30));
        assert!(status.success(), "a clean stop: {status:?}");
        server.restart();
        link(&runtime, &server, &merge);
        link(&runtime, &server, &merge);
        rollback(&runtime, &server, h.rollback);
        assert_eq!(consume(&runtime, &mut server, &bootstrap, &topic), stream_id, "one stream id on both");
        server.sigkill();
        server.restart();
        kafka::wait_caught_up(&runtime, &server, SOURCE, &topic, &end_offsets(&bootstrap, &topic));
        compact(&runtime, &server);
        let got_direct = runtime.block_on(async { observe(&server.client().await, &h.times).await });
        server.sigterm_and_wait(Duration::from_secs(30));
        drop(server);

        let mut writes = h.direct.clone();
        assert_eq!(delivered.len(), h.messages.len(), "every message delivered");
        for (record, d) in h.messages.iter().zip(&delivered) {
            let expected = kafka::expected_version(record, d, stream_id);
            writes.push(Write { key: kafka::message_key(record), id: expected.version, payload: expected.payload });
        }
        let merge_writes = load_writes(&h.merge_rows, MERGE_LOAD, h.merge_snapshot);
        let replace_writes = load_writes(&h.replace_rows, REPLACE_LOAD, h.replace_snapshot);
        if h.rollback != Some(MERGE_LOAD) {
            writes.extend(merge_writes);
        }
        let watermark = (h.rollback != Some(REPLACE_LOAD)).then(|| VersionId {
            ts: Ts::from_millis(h.replace_snapshot),
            origin: Origin { kind: OriginKind::Bulk, source_id: REPLACE_LOAD, seq: 0 },
        });
        if h.rollback != Some(REPLACE_LOAD) {
            writes.extend(replace_writes);
        }
        let model = Model::new(writes, watermark, kafka::now_ms());
        let want = model.observe(&h.times);
        let diff = |got: &Observations| -> Vec<String> {
            got.iter().zip(&want).filter(|(g, w)| g != w).map(|(g, w)| format!("  got  {g}\n  want {w}")).collect()
        };
        let (a, b) = (diff(&got_stream), diff(&got_direct));
        assert!(
            a.is_empty() && b.is_empty() && got_stream.len() == want.len() && got_direct.len() == want.len(),
            "SEED={seed} round {round} (rollback {:?}): stream-first differs from the model in {}, \
             direct-first in {}:\nstream first:\n{}\ndirect first:\n{}",
            h.rollback,
            a.len(),
            b.len(),
            a.join("\n"),
            b.join("\n")
        );
        assert_eq!(got_stream, got_direct, "SEED={seed} round {round}: the two schedules differ");
        eprintln!("round {round}: {} observations agree across both schedules and the model", want.len());
    }
}

/// `nacre explain` on a three-way tie: one key at one `ts` from a Kafka message, a direct put
/// and a merge load. The direct version wins by the tie rule, and every candidate is listed with
/// its origin, in the JSON a user reads.
#[test]
fn explain_shows_a_three_way_tie_on_equal_ts_decided_by_the_tie_rule() {
    let runtime = nacre_tests::runtime();
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = "tie";
    broker.create_topic(topic, 1);
    let (mut server, table_id, partitions) = start(&runtime);
    let ts_ms = kafka::now_ms() - 60_000;
    let message = Record::new(topic, "user:42", "stream-silver").header(TS_HEADER, ts_ms.to_string()).partition(0);
    let delivered = Producer::new(&bootstrap).send_all(std::slice::from_ref(&message));
    let stream_id = consume(&runtime, &mut server, &bootstrap, topic);
    let work = test_dir("nacre-tie-");
    let row = BulkRow { ts: None, ..BulkRow::new("user:42", "", "bulk-bronze") };
    let load = build_load(work.path(), "tie", &[row], MERGE_LOAD, ts_ms, "merge", (table_id, partitions));
    link(&runtime, &server, &load);
    let direct = Write {
        key: Key::new("user:42", ""),
        id: VersionId { ts: Ts::from_millis(ts_ms), origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: 0 } },
        payload: Payload::Value { value: b"direct-gold".to_vec(), expires_at_ms: None },
    };
    runtime.block_on(async { write_direct(&server.client().await, std::slice::from_ref(&direct)).await });

    let out = kafka::nacre(&server, &["explain", TABLE, "user:42", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nacre explain: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let e: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{stdout}: {err}"));
    assert_eq!(e["verdict"], "visible", "{e}");
    assert_eq!(e["deciding_step"], "tie_rule", "{e}");
    let candidates = e["candidates"].as_array().expect("candidates");
    let seen: Vec<(&str, &str, &str, u64)> = candidates
        .iter()
        .map(|c| {
            (
                c["standing"].as_str().expect("a standing"),
                c["origin"]["kind"].as_str().expect("a kind"),
                c["value"].as_str().expect("a value"),
                c["ts"]["ms"].as_u64().expect("ms"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("winner", "direct", "direct-gold", ts_ms),
            ("superseded", "stream", "stream-silver", ts_ms),
            ("superseded", "bulk", "bulk-bronze", ts_ms),
        ],
        "{e}"
    );
    let stream = &candidates[1]["origin"];
    assert_eq!((stream["topic"].as_str(), stream["offset"].as_i64()), (Some(topic), Some(delivered[0].offset)), "{e}");
    assert_eq!(stream["source_id"].as_u64(), Some(u64::from(kafka::stream_source_id(stream_id, 0))), "{e}");
    assert_eq!(candidates[2]["origin"]["source_id"].as_u64(), Some(u64::from(MERGE_LOAD)), "{e}");
    server.sigterm_and_wait(Duration::from_secs(30));
}
