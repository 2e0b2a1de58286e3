//! The cross-path property: one partition's reads depend only on the set of versions written,
//! whichever path brought them (direct writes, the Kafka stream path, bulk loads), in whatever
//! order they arrived, and whatever flush, compaction, link and restart schedule ran meanwhile
//! (DESIGN.md §2).
//!
//! A random *history* over a few contended keys holds:
//!
//! - direct write batches (puts, deletes, TTLs), some with the client's `ts` and some stamped by
//!   an [`Hlc`]. The HLC stamps at arrival, so an unstamped write's `ts` depends on when it
//!   arrives: the history stamps it once, as the client would see it acknowledged, and every
//!   schedule writes that stamped version;
//! - one or two Kafka partitions' messages (`source_id` the stream, `seq` the offset), applied
//!   through `Engine::apply_streamed` with their positions noted as a consumer does;
//! - bulk loads built by storage's own builder (`support/loads.rs`), merge or replace, with a
//!   snapshot and some records carrying their own `ts` and TTL; some rolled back, some linked a
//!   second time.
//!
//! Timestamps come from three milliseconds (logical counter mostly 0), so equal timestamps
//! across paths are the rule, not the exception.
//!
//! Each history runs under several *schedules*: the direct batches, the stream's deliveries,
//! and each load's link, second link and rollback interleaved at random (only a stream's own
//! order and a load's link, relink, rollback order kept), with flushes, compactions of random
//! segment subsets (keeping every version: no garbage collection), restarts and Kafka
//! redeliveries (the consumer rewinds; after a restart it resumes from the position the
//! manifest committed, as nacred's does) among them, and random block, cache and bloom sizes.
//! Every schedule must read exactly what [`Model`] reads: gets (latest, and as of every tie
//! timestamp, just after and just before it) at two clock readings, versions, scans both ways
//! in pages, and the partition-key listing. The model applies the ordering rule to the whole
//! history at once (greatest live version under `(ts, kind_rank, source_id, seq)`; a replace
//! load is a table-wide watermark at its snapshot; a rolled-back load contributes nothing),
//! written here independently of the engine's resolution. A second link of a linked load must
//! change no read (the engine takes it; refusing it is the daemon's load book's job).
//!
//! Not covered here: garbage-collecting compactions (the model test covers the GC contract),
//! other tie rules than the default, crashes mid-operation (crash.rs), and several partitions.
//!
//! Each run prints `SEED=<n>`; `SEED=<n> cargo test -p nacre-storage --test cross_path`
//! replays it. `CROSS_PATH_CASES` sets the number of histories (default [`DEFAULT_CASES`]).

#[path = "support/harness.rs"]
mod harness;
#[path = "support/loads.rs"]
mod loads;

use harness::{START_MS, Store, TABLE, run_sim, small_options};
use loads::BuiltLoad;
use nacre_storage::bulk::{BulkRecord, LoadMode, LoadVisibility};
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{
    CompactionOptions, Durability, EngineOptions, Entry, Hlc, Key, KeyHistory, KeysRequest, ManualClock, Origin,
    OriginKind, Payload, ReadAt, Row, ScanRequest, ScanRow, Ts, Version, VersionId, Watermark,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Histories per run unless `CROSS_PATH_CASES` says otherwise.
const DEFAULT_CASES: usize = 1_000;
/// Schedules each history runs under.
const SCHEDULES: usize = 3;

/// Partition keys and sort keys: six keys in all, so every path writes the same few.
const PKS: [&[u8]; 2] = [b"a", b"b"];
const SKS: [&[u8]; 3] = [b"", b"x", b"y"];

/// The milliseconds every timestamp is drawn from.
const TICKS_MS: [u64; 3] = [START_MS - 300, START_MS - 200, START_MS - 100];
/// Expiry times of directly written and streamed values: between the ticks, and after the
/// first and second clock readings of [`NOWS_MS`].
const EXPIRIES_MS: [u64; 3] = [START_MS - 250, START_MS + 10, START_MS + 500];
/// Bulk records' TTLs, from their `ts`.
const TTLS_MS: [u64; 3] = [30, 150, 400];
/// The clock readings every read is made at.
const NOWS_MS: [u64; 2] = [START_MS, START_MS + 20];

/// Kafka partitions: the position's name in the manifest, and the stream's `source_id`.
const STREAMS: [(&[u8], u32); 2] = [(b"orders/0", 1), (b"orders/1", 2)];

fn key(pk: usize, sk: usize) -> Key {
    Key::new(TABLE, PKS[pk], SKS[sk])
}

// ---------------------------------------------------------------------------------------------
// Histories.

/// One bulk load of a history.
#[derive(Debug, Clone)]
struct Load {
    id: u32,
    mode: LoadMode,
    snapshot_ms: u64,
    records: Vec<BulkRecord>,
    rolled_back: bool,
    linked_twice: bool,
}

impl Load {
    /// The versions the builder makes of the records: one input, so `seq` is the row.
    fn versions(&self) -> impl Iterator<Item = Entry> + '_ {
        self.records.iter().enumerate().map(|(row, r)| {
            let ts_ms = r.ts_ms.unwrap_or(self.snapshot_ms);
            let payload = match &r.value {
                Some(value) => Payload::Value { value: value.clone(), expires_at_ms: r.ttl_ms.map(|t| ts_ms + t) },
                None => Payload::Tombstone,
            };
            Entry {
                key: Key::new(TABLE, r.partition_key.clone(), r.sort_key.clone()),
                version: Version {
                    id: VersionId {
                        ts: Ts::from_millis(ts_ms),
                        origin: Origin { kind: OriginKind::Bulk, source_id: self.id, seq: row as u64 },
                    },
                    payload,
                },
            }
        })
    }

    /// A replace load's watermark, as nacred's linker makes it.
    fn watermark(&self) -> Option<Watermark> {
        (self.mode == LoadMode::Replace).then(|| Watermark {
            point: VersionId {
                ts: Ts::from_millis(self.snapshot_ms),
                origin: Origin { kind: OriginKind::Bulk, source_id: self.id, seq: 0 },
            },
        })
    }
}

/// Everything written, by path.
#[derive(Debug, Clone)]
struct History {
    direct: Vec<Vec<Entry>>,
    /// Each Kafka partition's messages, by offset.
    streams: Vec<Vec<Entry>>,
    loads: Vec<Load>,
}

struct Generator {
    rng: fastrand::Rng,
    /// The HLC that stamps direct writes without a client `ts`, read against `wall`.
    hlc: Hlc,
    wall: ManualClock,
    direct_seq: u64,
}

impl Generator {
    fn tick(&mut self) -> u64 {
        TICKS_MS[self.rng.usize(0..TICKS_MS.len())]
    }

    fn key(&mut self) -> Key {
        key(self.rng.usize(0..PKS.len()), self.rng.usize(0..SKS.len()))
    }

    fn value(&mut self) -> Vec<u8> {
        let len = self.rng.usize(0..3);
        (0..len).map(|_| [b'p', b'q', 0, 0xff][self.rng.usize(0..4)]).collect()
    }

    fn payload(&mut self) -> Payload {
        match self.rng.u8(0..10) {
            0..2 => Payload::Tombstone,
            2..4 => Payload::Value {
                value: self.value(),
                expires_at_ms: Some(EXPIRIES_MS[self.rng.usize(0..EXPIRIES_MS.len())]),
            },
            _ => Payload::Value { value: self.value(), expires_at_ms: None },
        }
    }

    /// A direct write: the client's `ts` (at a tick, sometimes one logical step past it), or
    /// the HLC's reading of a wall clock that wanders over the ticks.
    fn direct(&mut self) -> Entry {
        let ts = if self.rng.bool() {
            Ts::from_parts(self.tick(), u16::from(self.rng.u8(0..4) == 0))
        } else {
            let wall = self.tick();
            self.wall.set(wall);
            self.hlc.next(&self.wall)
        };
        self.direct_seq += 1;
        let origin = Origin { kind: OriginKind::Direct, source_id: self.rng.u32(1..3), seq: self.direct_seq };
        Entry { key: self.key(), version: Version { id: VersionId { ts, origin }, payload: self.payload() } }
    }

    fn stream(&mut self, source_id: u32) -> Vec<Entry> {
        (0..self.rng.u64(0..9))
            .map(|offset| {
                let ts = Ts::from_millis(self.tick());
                let origin = Origin { kind: OriginKind::Stream, source_id, seq: offset };
                Entry { key: self.key(), version: Version { id: VersionId { ts, origin }, payload: self.payload() } }
            })
            .collect()
    }

    fn load(&mut self, id: u32) -> Load {
        let mode = if self.rng.bool() { LoadMode::Replace } else { LoadMode::Merge };
        let snapshot_ms = self.tick();
        let mut keys: Vec<(usize, usize)> = (0..PKS.len()).flat_map(|p| (0..SKS.len()).map(move |s| (p, s))).collect();
        self.rng.shuffle(&mut keys);
        // A replace load may hold no record: its watermark alone.
        let least = usize::from(mode == LoadMode::Merge || self.rng.u8(0..6) != 0);
        keys.truncate(self.rng.usize(least..5));
        let records = keys
            .into_iter()
            .map(|(pk, sk)| {
                let value = (self.rng.u8(0..6) != 0).then(|| self.value());
                // A replace load's records are at or after its snapshot.
                let ts_ms = (self.rng.u8(0..3) == 0)
                    .then(|| self.tick())
                    .filter(|t| mode == LoadMode::Merge || *t >= snapshot_ms);
                let ttl_ms =
                    (value.is_some() && self.rng.u8(0..4) == 0).then(|| TTLS_MS[self.rng.usize(0..TTLS_MS.len())]);
                BulkRecord { partition_key: PKS[pk].to_vec(), sort_key: SKS[sk].to_vec(), value, ts_ms, ttl_ms }
            })
            .collect();
        Load {
            id,
            mode,
            snapshot_ms,
            records,
            rolled_back: self.rng.u8(0..4) == 0,
            linked_twice: self.rng.u8(0..4) == 0,
        }
    }

    fn history(&mut self) -> History {
        let direct =
            (0..self.rng.usize(0..6)).map(|_| (0..self.rng.usize(1..4)).map(|_| self.direct()).collect()).collect();
        let streams = STREAMS[..self.rng.usize(0..3)].iter().map(|(_, source_id)| self.stream(*source_id)).collect();
        // Load ids in random order of size, so the id breaks ties between loads either way.
        let mut ids = [3, 7, 11];
        self.rng.shuffle(&mut ids);
        let loads = ids[..self.rng.usize(0..4)].iter().map(|id| self.load(*id)).collect();
        History { direct, streams, loads }
    }
}

fn history(seed: u64) -> History {
    let mut g =
        Generator { rng: fastrand::Rng::with_seed(seed), hlc: Hlc::new(), wall: ManualClock::new(0), direct_seq: 0 };
    g.history()
}

// ---------------------------------------------------------------------------------------------
// The model: the ordering rule applied to the whole history at once.

/// The default tie rule, written out: Direct > Stream > Bulk.
fn rank(kind: OriginKind) -> u8 {
    match kind {
        OriginKind::Direct => 2,
        OriginKind::Stream => 1,
        OriginKind::Bulk => 0,
    }
}

/// A version identity's place in the order: `(ts, kind_rank, source_id, seq)`.
fn order(id: &VersionId) -> (u64, u8, u32, u64) {
    (id.ts.0, rank(id.origin.kind), id.origin.source_id, id.origin.seq)
}

/// Every version the history leaves (each identity once), and the replace watermarks in force.
struct Model {
    keys: BTreeMap<Key, Vec<Version>>,
    marks: Vec<Watermark>,
}

impl Model {
    fn of(h: &History) -> Model {
        let live_loads = h.loads.iter().filter(|l| !l.rolled_back);
        let entries = h
            .direct
            .iter()
            .flatten()
            .cloned()
            .chain(h.streams.iter().flatten().cloned())
            .chain(live_loads.clone().flat_map(Load::versions));
        let mut keys: BTreeMap<Key, Vec<Version>> = BTreeMap::new();
        for e in entries {
            let versions = keys.entry(e.key).or_default();
            assert!(versions.iter().all(|v| v.id != e.version.id), "the generator makes each identity once");
            versions.push(e.version);
        }
        for versions in keys.values_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(order(&v.id)));
        }
        Model { keys, marks: live_loads.filter_map(Load::watermark).collect() }
    }

    fn versions_of(&self, key: &Key) -> &[Version] {
        self.keys.get(key).map_or(&[], Vec::as_slice)
    }

    /// The visible row: the greatest version at or below the read's bound, unless a watermark
    /// at or below the bound is greater, or it is a tombstone, or expired when the read judges
    /// expiry (now, or the as-of time if earlier).
    fn get(&self, key: &Key, at: ReadAt, now_ms: u64) -> Option<Row> {
        let (bound, judged_ms) = match at {
            ReadAt::Latest => (u64::MAX, now_ms),
            ReadAt::AsOf(ts) => (ts.0, ts.millis().min(now_ms)),
        };
        let best = self.versions_of(key).iter().find(|v| v.id.ts.0 <= bound)?;
        if self.marks.iter().any(|m| m.point.ts.0 <= bound && order(&best.id) < order(&m.point)) {
            return None;
        }
        match &best.payload {
            Payload::Value { value, expires_at_ms } if expires_at_ms.is_none_or(|x| x > judged_ms) => {
                Some(Row { value: value.clone(), id: best.id, expires_at_ms: *expires_at_ms })
            }
            _ => None,
        }
    }

    fn history(&self, key: &Key) -> KeyHistory {
        let watermark = self.marks.iter().copied().max_by_key(|m| order(&m.point));
        KeyHistory { versions: self.versions_of(key).to_vec(), watermark }
    }

    fn scan(&self, pk: usize, reverse: bool, at: ReadAt, now_ms: u64) -> Vec<ScanRow> {
        let mut rows: Vec<ScanRow> = (0..SKS.len())
            .filter_map(|sk| {
                self.get(&key(pk, sk), at, now_ms).map(|r| ScanRow {
                    sort_key: SKS[sk].to_vec(),
                    value: r.value,
                    id: r.id,
                    expires_at_ms: r.expires_at_ms,
                })
            })
            .collect();
        if reverse {
            rows.reverse();
        }
        rows
    }

    fn partition_keys(&self, now_ms: u64) -> Vec<Vec<u8>> {
        (0..PKS.len())
            .filter(|pk| (0..SKS.len()).any(|sk| self.get(&key(*pk, sk), ReadAt::Latest, now_ms).is_some()))
            .map(|pk| PKS[pk].to_vec())
            .collect()
    }

    fn read(&self, read: &Read) -> Outcome {
        match *read {
            Read::Get { pk, sk, at, now_ms } => Outcome::Get(self.get(&key(pk, sk), at, now_ms)),
            Read::Versions { pk, sk } => Outcome::Versions(self.history(&key(pk, sk))),
            Read::Scan { pk, reverse, limit: _, at, now_ms } => Outcome::Scan(self.scan(pk, reverse, at, now_ms)),
            Read::Keys { limit: _, now_ms } => Outcome::Keys(self.partition_keys(now_ms)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads: the same list for the engine and the model.

#[derive(Debug, Clone, Copy)]
enum Read {
    Get {
        pk: usize,
        sk: usize,
        at: ReadAt,
        now_ms: u64,
    },
    Versions {
        pk: usize,
        sk: usize,
    },
    /// A whole scan of a partition key, followed page by page.
    Scan {
        pk: usize,
        reverse: bool,
        limit: usize,
        at: ReadAt,
        now_ms: u64,
    },
    /// The partition keys with a visible row, page by page.
    Keys {
        limit: usize,
        now_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Get(Option<Row>),
    Versions(KeyHistory),
    Scan(Vec<ScanRow>),
    Keys(Vec<Vec<u8>>),
}

/// Latest, and as of each tick, one logical step after it, and just before it.
fn read_points() -> Vec<ReadAt> {
    let mut points = vec![ReadAt::Latest];
    for ms in TICKS_MS {
        let tick = Ts::from_millis(ms);
        points.extend([tick, Ts::from_parts(ms, 1), Ts(tick.0 - 1)].map(ReadAt::AsOf));
    }
    points
}

fn reads() -> Vec<Read> {
    let mut reads = Vec::new();
    for pk in 0..PKS.len() {
        for sk in 0..SKS.len() {
            reads.push(Read::Versions { pk, sk });
        }
    }
    for now_ms in NOWS_MS {
        for pk in 0..PKS.len() {
            for sk in 0..SKS.len() {
                reads.extend(read_points().into_iter().map(|at| Read::Get { pk, sk, at, now_ms }));
            }
            for at in [ReadAt::Latest, ReadAt::AsOf(Ts::from_millis(TICKS_MS[1]))] {
                for (reverse, limit) in [(false, 1), (true, 1), (false, 10), (true, 2)] {
                    reads.push(Read::Scan { pk, reverse, limit, at, now_ms });
                }
            }
        }
        reads.extend([1, 10].map(|limit| Read::Keys { limit, now_ms }));
    }
    reads
}

/// Makes `reads` against the engine, setting the clock for each, and leaves it at `START_MS`.
async fn observe(store: &Store<SimDisk>, reads: &[Read]) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(reads.len());
    for read in reads {
        out.push(observe_one(store, read).await);
    }
    store.clock.set(START_MS);
    out
}

async fn observe_one(store: &Store<SimDisk>, read: &Read) -> Outcome {
    let engine = &store.engine;
    match *read {
        Read::Get { pk, sk, at, now_ms } => {
            store.clock.set(now_ms);
            Outcome::Get(engine.get(key(pk, sk).as_ref(), at).await.expect("get"))
        }
        Read::Versions { pk, sk } => Outcome::Versions(engine.versions(key(pk, sk).as_ref()).await.expect("versions")),
        Read::Scan { pk, reverse, limit, at, now_ms } => {
            store.clock.set(now_ms);
            let mut req = ScanRequest {
                table: TABLE,
                partition_key: PKS[pk].to_vec(),
                from: None,
                to: None,
                limit,
                reverse,
                cursor: None,
                at,
            };
            let mut rows = Vec::new();
            for _ in 0..=SKS.len() + 1 {
                let page = engine.scan(&req).await.expect("scan");
                assert!(page.rows.len() <= limit, "a page of {} rows over its limit {limit}", page.rows.len());
                rows.extend(page.rows);
                match page.cursor {
                    None => return Outcome::Scan(rows),
                    Some(c) => req.cursor = Some(c),
                }
            }
            panic!("a scan of {} sort keys did not end", SKS.len());
        }
        Read::Keys { limit, now_ms } => {
            store.clock.set(now_ms);
            let mut req = KeysRequest { table: TABLE, after: None, limit };
            let mut keys = Vec::new();
            for _ in 0..=PKS.len() + 1 {
                let page = engine.partition_keys(&req).await.expect("partition keys");
                assert!(page.keys.len() <= limit, "a page of {} keys over its limit {limit}", page.keys.len());
                keys.extend(page.keys);
                match page.cursor {
                    None => return Outcome::Keys(keys),
                    Some(c) => req.after = Some(c),
                }
            }
            panic!("a listing of {} partition keys did not end", PKS.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Schedules.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Direct batch `i`.
    Direct(usize, Durability),
    /// The consumer of stream `s` applies its messages from its position up to `upto`.
    Deliver {
        stream: usize,
        upto: usize,
    },
    /// The consumer of stream `s` moves back `by` messages: they are delivered again.
    Rewind {
        stream: usize,
        by: usize,
    },
    Link(usize),
    /// Load `l` linked again while linked.
    Relink(usize),
    Rollback(usize),
    Flush,
    /// Compacts the live segments whose position has its bit set (modulo 64), or the one at
    /// `mask % count` if none has.
    Compact(u64),
    Reopen,
}

/// Engine sizes for one schedule: blocks of a few entries or of a page; no cache or a large
/// one; weak or normal blooms; manifest snapshots after every edit or every few.
fn engine_options(rng: &mut fastrand::Rng) -> EngineOptions {
    EngineOptions {
        block_target_bytes: [96, 4080][rng.usize(0..2)],
        block_cache_bytes: [0, 1 << 20][rng.usize(0..2)],
        bloom_bits_per_key: [1, 10][rng.usize(0..2)],
        manifest_snapshot_edits: [1, 8][rng.usize(0..2)],
        ..small_options()
    }
}

fn schedule(rng: &mut fastrand::Rng, h: &History) -> Vec<Step> {
    // Chains whose own order holds; the chains interleave freely.
    let mut chains: Vec<Vec<Step>> = Vec::new();
    for i in 0..h.direct.len() {
        let durability = if rng.bool() { Durability::Sync } else { Durability::Async };
        chains.push(vec![Step::Direct(i, durability)]);
    }
    for (stream, messages) in h.streams.iter().enumerate() {
        let mut cuts: Vec<usize> = (1..=messages.len()).filter(|_| rng.u8(0..3) == 0).collect();
        cuts.push(messages.len());
        cuts.dedup();
        chains.push(cuts.into_iter().map(|upto| Step::Deliver { stream, upto }).collect());
    }
    for (l, load) in h.loads.iter().enumerate() {
        let mut chain = vec![Step::Link(l)];
        chain.extend(load.linked_twice.then_some(Step::Relink(l)));
        chain.extend(load.rolled_back.then_some(Step::Rollback(l)));
        chains.push(chain);
    }
    for chain in &mut chains {
        chain.reverse();
    }
    let maintenance_percent = [10, 30, 60][rng.usize(0..3)];
    let mut steps = Vec::new();
    loop {
        chains.retain(|c| !c.is_empty());
        if chains.is_empty() {
            break;
        }
        let i = rng.usize(0..chains.len());
        steps.push(chains[i].pop().expect("not empty"));
        while rng.u8(0..100) < maintenance_percent {
            steps.push(maintenance(rng, h));
        }
    }
    // Whatever restarts and rewinds did, every message is delivered in the end.
    steps.extend((0..h.streams.len()).map(|stream| Step::Deliver { stream, upto: h.streams[stream].len() }));
    if rng.bool() {
        steps.push(Step::Flush);
    }
    steps
}

fn maintenance(rng: &mut fastrand::Rng, h: &History) -> Step {
    match rng.u8(0..100) {
        0..40 => Step::Flush,
        40..65 => Step::Compact(if rng.u8(0..4) == 0 { u64::MAX } else { rng.u64(..) }),
        65..85 => Step::Reopen,
        _ if !h.streams.is_empty() => Step::Rewind { stream: rng.usize(0..h.streams.len()), by: rng.usize(1..5) },
        _ => Step::Flush,
    }
}

// ---------------------------------------------------------------------------------------------
// Running a schedule.

struct Run<'a> {
    history: &'a History,
    built: &'a [BuiltLoad],
    store: Option<Store<SimDisk>>,
    visibility: LoadVisibility,
    /// Each stream consumer's next offset.
    positions: Vec<usize>,
}

impl Run<'_> {
    fn store(&self) -> &Store<SimDisk> {
        self.store.as_ref().expect("a store between steps")
    }

    async fn step(&mut self, step: Step) {
        match step {
            Step::Direct(i, durability) => {
                let engine = &self.store().engine;
                engine.write(self.history.direct[i].clone(), durability).await.expect("direct write");
                if engine.needs_flush() {
                    engine.flush().await.expect("flush when full");
                }
            }
            Step::Deliver { stream, upto } => self.deliver(stream, upto),
            Step::Rewind { stream, by } => self.positions[stream] = self.positions[stream].saturating_sub(by),
            Step::Link(l) => self.link(l).await,
            Step::Relink(l) => {
                let reads = reads();
                let before = observe(self.store(), &reads).await;
                self.link(l).await;
                let after = observe(self.store(), &reads).await;
                if let Some(i) = (0..reads.len()).find(|i| before[*i] != after[*i]) {
                    panic!(
                        "linking load {} a second time changed {:?}: {:?} before, {:?} after",
                        self.built[l].id, reads[i], before[i], after[i]
                    );
                }
            }
            Step::Rollback(l) => {
                let id = self.built[l].id;
                self.visibility.hide(id);
                self.store().engine.unlink_bulk_load(id).await.expect("unlink");
            }
            Step::Flush => {
                self.store().engine.flush().await.expect("flush");
            }
            Step::Compact(mask) => {
                let live = self.store().engine.segment_ids();
                if live.is_empty() {
                    return;
                }
                let mut picked: Vec<_> =
                    live.iter().enumerate().filter(|(i, _)| mask & (1 << (i % 64)) != 0).map(|(_, s)| *s).collect();
                if picked.is_empty() {
                    picked.push(live[(mask % live.len() as u64) as usize]);
                }
                self.store().engine.compact(&picked, CompactionOptions::default()).await.expect("compact");
            }
            Step::Reopen => {
                let store = self.store.take().expect("a store between steps");
                // Async writes were acknowledged: make them durable, as the committer would.
                store.wal.sync().await.expect("wal sync");
                let store = store.reopen().await;
                store.engine.set_load_visibility(self.visibility.clone());
                // The consumers resume where the manifest says every message before is durable.
                for (stream, (name, _)) in STREAMS.iter().enumerate().take(self.positions.len()) {
                    let committed = store.engine.committed_source_offset(name).await.unwrap_or(0);
                    self.positions[stream] = usize::try_from(committed).expect("small offsets");
                }
                self.store = Some(store);
            }
        }
    }

    /// The consumer of `stream` applies its messages from its position to `upto` in one batch
    /// and notes the position, as nacred's consumer does for a polled round.
    fn deliver(&mut self, stream: usize, upto: usize) {
        let from = self.positions[stream];
        if from >= upto {
            return;
        }
        let mut batch = self.history.streams[stream][from..upto].to_vec();
        let engine = &self.store().engine;
        engine.apply_streamed(&mut batch).expect("apply streamed");
        engine.note_source_offset(STREAMS[stream].0, upto as u64);
        self.positions[stream] = upto;
    }

    /// Links load `l` as nacred's linker does on one partition: prepare, commit hidden, show.
    /// A second link of a linked load goes through the same two steps and leaves it shown.
    async fn link(&self, l: usize) {
        let (load, built) = (&self.history.loads[l], &self.built[l]);
        let engine = &self.store().engine;
        let prepared = match &built.file {
            Some((_, info)) => Some(engine.prepare_bulk_segment(&built.sim_path(), info).await.expect("prepare")),
            None => None,
        };
        let was_hidden = self.visibility.is_hidden(load.id);
        self.visibility.hide(load.id);
        let watermark = load.watermark().map(|m| (TABLE, m));
        engine.commit_bulk_load(load.id, prepared.as_ref(), watermark).await.expect("commit");
        assert!(!was_hidden, "a load is linked only while shown or before its first link");
        self.visibility.show(load.id);
    }
}

/// Runs `steps` on a fresh simulated disk and returns what `reads` read at the end.
fn run(history: &History, built: &[BuiltLoad], options: EngineOptions, steps: &[Step], reads: &[Read]) -> Vec<Outcome> {
    let mut out = None;
    let slot = &mut out;
    run_sim(0, |disk, root| async move {
        for load in built {
            load.put_on(&disk).await;
        }
        let store = Store::create(disk, &root, ManualClock::new(START_MS), options).await;
        let visibility = LoadVisibility::default();
        store.engine.set_load_visibility(visibility.clone());
        let mut run = Run { history, built, store: Some(store), visibility, positions: vec![0; history.streams.len()] };
        for step in steps {
            run.step(*step).await;
        }
        *slot = Some(observe(run.store(), reads).await);
    });
    out.expect("the run finished")
}

/// Builds the history's loads with the builder, under `dir`.
fn build_loads(dir: &Path, h: &History) -> Vec<BuiltLoad> {
    h.loads
        .iter()
        .map(|l| loads::build(&dir.join(format!("load-{}", l.id)), l.id, l.mode, l.snapshot_ms, &l.records))
        .collect()
}

/// Runs one history under [`SCHEDULES`] schedules; on the first read that differs from the
/// model, panics naming the case, the schedule and the read.
fn check_case(case_seed: u64, dir: &Path) {
    let h = history(case_seed);
    let built = build_loads(dir, &h);
    let model = Model::of(&h);
    let reads = reads();
    let want: Vec<Outcome> = reads.iter().map(|r| model.read(r)).collect();
    let mut rng = fastrand::Rng::with_seed(case_seed ^ 0x5c4e_d01e);
    for s in 0..SCHEDULES {
        let options = engine_options(&mut rng);
        let steps = schedule(&mut rng, &h);
        let got = run(&h, &built, options.clone(), &steps, &reads);
        if let Some(i) = (0..reads.len()).find(|i| got[*i] != want[*i]) {
            panic!(
                "case seed {case_seed}, schedule {s}: {:?}\n  engine: {:?}\n  model:  {:?}\n\n\
                 history: {h:#?}\n\nschedule: {steps:?}\n\noptions: block {} B, cache {} B, bloom {} bits, \
                 manifest snapshot every {} edits",
                reads[i],
                got[i],
                want[i],
                options.block_target_bytes,
                options.block_cache_bytes,
                options.bloom_bits_per_key,
                options.manifest_snapshot_edits,
            );
        }
    }
}

/// Case `i`'s seed: the run's seed itself for the first, so `SEED=<case seed>` with
/// `CROSS_PATH_CASES=1` replays one case alone.
fn case_seed(seed: u64, i: usize) -> u64 {
    if i == 0 { seed } else { fastrand::Rng::with_seed(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).u64(..) }
}

fn cases() -> usize {
    match std::env::var("CROSS_PATH_CASES") {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("CROSS_PATH_CASES={text:?} is not a count")),
        Err(_) => DEFAULT_CASES,
    }
}

#[test]
fn every_path_order_and_schedule_reads_as_the_ordering_rule_says() {
    let seed = nacre_testkit::seed("cross_path");
    println!("SEED={seed}: replay with SEED={seed} cargo test -p nacre-storage --test cross_path");
    let cases = cases();
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    for i in 0..cases {
        let case_seed = case_seed(seed, i);
        let case_dir = dir.path().join(i.to_string());
        let outcome = std::panic::catch_unwind(|| check_case(case_seed, &case_dir));
        if let Err(p) = outcome {
            let message =
                p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            panic!(
                "SEED={seed} failed at case {i}: {}\n\nreplay the run with SEED={seed}, or the case alone with \
                 SEED={case_seed} CROSS_PATH_CASES=1",
                message.unwrap_or_default()
            );
        }
        let _ = std::fs::remove_dir_all(&case_dir);
    }
    println!("SEED={seed}: {cases} histories x {SCHEDULES} schedules in {:?}", started.elapsed());
}
