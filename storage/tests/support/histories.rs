//! Histories for the cross-path test (`cross_path.rs`): what each write path brings (direct
//! batches, Kafka partitions' messages, bulk loads), drawn at random over a few keys and three
//! timestamps; the reads every schedule is checked with; and [`Model`], which reads a history
//! by applying the ordering rule (DESIGN.md §2) to all of it at once. Nothing here runs the
//! engine or shares its resolution code.

use super::harness::{START_MS, TABLE};
use nacre_storage::bulk::{BulkRecord, LoadMode};
use nacre_storage::{
    Entry, Hlc, Key, KeyHistory, ManualClock, Origin, OriginKind, Payload, ReadAt, Row, ScanRow, TableId, TieRule, Ts,
    Version, VersionId, Watermark,
};
use std::collections::BTreeMap;

/// A second table, whose tie rule ranks Stream > Bulk > Direct.
pub const T2: TableId = TableId(2);

pub fn t2_rule() -> TieRule {
    TieRule::new([OriginKind::Stream, OriginKind::Bulk, OriginKind::Direct]).expect("a permutation")
}

/// Partition keys with their tables, and sort keys: nine keys in all, so every path writes the
/// same few; the same partition key in both tables.
pub const PARTS: [(TableId, &[u8]); 3] = [(TABLE, b"a"), (TABLE, b"b"), (T2, b"a")];
pub const SKS: [&[u8]; 3] = [b"", b"x", b"y"];

/// The milliseconds every timestamp is drawn from.
pub const TICKS_MS: [u64; 3] = [START_MS - 300, START_MS - 200, START_MS - 100];
/// Expiry times of directly written and streamed values: between the ticks, and after the
/// first and second clock readings of [`NOWS_MS`].
pub const EXPIRIES_MS: [u64; 3] = [START_MS - 250, START_MS + 10, START_MS + 500];
/// Bulk records' TTLs, from their `ts`.
pub const TTLS_MS: [u64; 3] = [30, 150, 400];
/// The clock readings every read is made at.
pub const NOWS_MS: [u64; 2] = [START_MS, START_MS + 20];

/// Kafka partitions: the position's name in the manifest, and the stream's `source_id`.
pub const STREAMS: [(&[u8], u32); 2] = [(b"orders/0", 1), (b"orders/1", 2)];

pub fn key(part: usize, sk: usize) -> Key {
    Key::new(PARTS[part].0, PARTS[part].1, SKS[sk])
}

// ---------------------------------------------------------------------------------------------
// Histories.

/// One bulk load of a history.
#[derive(Debug, Clone)]
pub struct Load {
    pub id: u32,
    pub table: TableId,
    pub mode: LoadMode,
    pub snapshot_ms: u64,
    pub records: Vec<BulkRecord>,
    pub rolled_back: bool,
    pub linked_twice: bool,
}

impl Load {
    /// The versions the builder makes of the records: one input, so `seq` is the row.
    pub fn versions(&self) -> impl Iterator<Item = Entry> + '_ {
        self.records.iter().enumerate().map(|(row, r)| {
            let ts_ms = r.ts_ms.unwrap_or(self.snapshot_ms);
            let payload = match &r.value {
                Some(value) => Payload::Value { value: value.clone(), expires_at_ms: r.ttl_ms.map(|t| ts_ms + t) },
                None => Payload::Tombstone,
            };
            Entry {
                key: Key::new(self.table, r.partition_key.clone(), r.sort_key.clone()),
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

    /// A replace load's watermark on its table, as nacred's linker makes it.
    pub fn watermark(&self) -> Option<(TableId, Watermark)> {
        let point = VersionId {
            ts: Ts::from_millis(self.snapshot_ms),
            origin: Origin { kind: OriginKind::Bulk, source_id: self.id, seq: 0 },
        };
        (self.mode == LoadMode::Replace).then_some((self.table, Watermark { point }))
    }
}

/// Everything written, by path.
#[derive(Debug, Clone)]
pub struct History {
    pub direct: Vec<Vec<Entry>>,
    /// Each Kafka partition's messages, by offset.
    pub streams: Vec<Vec<Entry>>,
    pub loads: Vec<Load>,
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
        key(self.rng.usize(0..PARTS.len()), self.rng.usize(0..SKS.len()))
    }

    /// Mostly a few bytes; now and then more than a small block.
    fn value(&mut self) -> Vec<u8> {
        let len = if self.rng.u8(0..40) == 0 { self.rng.usize(100..300) } else { self.rng.usize(0..3) };
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

    fn stream(&mut self, source_id: u32, scale: usize) -> Vec<Entry> {
        (0..self.rng.u64(0..9 * scale as u64))
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
        let table = if self.rng.u8(0..3) == 0 { T2 } else { TABLE };
        let mut keys: Vec<(usize, usize)> = (0..PARTS.len())
            .filter(|p| PARTS[*p].0 == table)
            .flat_map(|p| (0..SKS.len()).map(move |s| (p, s)))
            .collect();
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
                BulkRecord { partition_key: PARTS[pk].1.to_vec(), sort_key: SKS[sk].to_vec(), value, ts_ms, ttl_ms }
            })
            .collect();
        Load {
            id,
            table,
            mode,
            snapshot_ms,
            records,
            rolled_back: self.rng.u8(0..4) == 0,
            linked_twice: self.rng.u8(0..4) == 0,
        }
    }

    /// A history; one in eight is a few times longer, so keys have long version chains.
    fn history(&mut self) -> History {
        let scale = if self.rng.u8(0..8) == 0 { 4 } else { 1 };
        let direct = (0..self.rng.usize(0..6 * scale))
            .map(|_| (0..self.rng.usize(1..4)).map(|_| self.direct()).collect())
            .collect();
        let streams =
            STREAMS[..self.rng.usize(0..3)].iter().map(|(_, source_id)| self.stream(*source_id, scale)).collect();
        // Load ids in random order of size, so the id breaks ties between loads either way.
        let mut ids = [3, 7, 11];
        self.rng.shuffle(&mut ids);
        let loads = ids[..self.rng.usize(0..4)].iter().map(|id| self.load(*id)).collect();
        History { direct, streams, loads }
    }
}

pub fn history(seed: u64) -> History {
    let mut g =
        Generator { rng: fastrand::Rng::with_seed(seed), hlc: Hlc::new(), wall: ManualClock::new(0), direct_seq: 0 };
    g.history()
}

// ---------------------------------------------------------------------------------------------
// The model: the ordering rule applied to the whole history at once.

/// Each table's tie rule, written out: the default Direct > Stream > Bulk, and [`T2`]'s
/// Stream > Bulk > Direct.
fn rank(table: TableId, kind: OriginKind) -> u8 {
    match (table == T2, kind) {
        (false, OriginKind::Direct) | (true, OriginKind::Stream) => 2,
        (false, OriginKind::Stream) | (true, OriginKind::Bulk) => 1,
        (false, OriginKind::Bulk) | (true, OriginKind::Direct) => 0,
    }
}

/// A version identity's place in `table`'s order: `(ts, kind_rank, source_id, seq)`.
fn order(table: TableId, id: &VersionId) -> (u64, u8, u32, u64) {
    (id.ts.0, rank(table, id.origin.kind), id.origin.source_id, id.origin.seq)
}

/// Every version the history leaves (each identity once), and the replace watermarks in force.
pub struct Model {
    keys: BTreeMap<Key, Vec<Version>>,
    marks: Vec<(TableId, Watermark)>,
}

impl Model {
    pub fn of(h: &History) -> Model {
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
        for (key, versions) in keys.iter_mut() {
            versions.sort_by_key(|v| std::cmp::Reverse(order(key.table, &v.id)));
        }
        Model { keys, marks: live_loads.filter_map(Load::watermark).collect() }
    }

    fn versions_of(&self, key: &Key) -> &[Version] {
        self.keys.get(key).map_or(&[], Vec::as_slice)
    }

    /// The visible row: the greatest version at or below the read's bound, unless a watermark
    /// at or below the bound is greater, or it is a tombstone, or expired when the read judges
    /// expiry (now, or the as-of time if earlier).
    pub fn get(&self, key: &Key, at: ReadAt, now_ms: u64) -> Option<Row> {
        let (bound, judged_ms) = match at {
            ReadAt::Latest => (u64::MAX, now_ms),
            ReadAt::AsOf(ts) => (ts.0, ts.millis().min(now_ms)),
        };
        let best = self.versions_of(key).iter().find(|v| v.id.ts.0 <= bound)?;
        let table = key.table;
        if self.marks_of(table).any(|m| m.point.ts.0 <= bound && order(table, &best.id) < order(table, &m.point)) {
            return None;
        }
        match &best.payload {
            Payload::Value { value, expires_at_ms } if expires_at_ms.is_none_or(|x| x > judged_ms) => {
                Some(Row { value: value.clone(), id: best.id, expires_at_ms: *expires_at_ms })
            }
            _ => None,
        }
    }

    fn marks_of(&self, table: TableId) -> impl Iterator<Item = &Watermark> {
        self.marks.iter().filter(move |(t, _)| *t == table).map(|(_, m)| m)
    }

    fn history(&self, key: &Key) -> KeyHistory {
        let watermark = self.marks_of(key.table).copied().max_by_key(|m| order(key.table, &m.point));
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

    fn partition_keys(&self, table: TableId, now_ms: u64) -> Vec<Vec<u8>> {
        let mut pks: Vec<Vec<u8>> = (0..PARTS.len())
            .filter(|p| PARTS[*p].0 == table)
            .filter(|p| (0..SKS.len()).any(|sk| self.get(&key(*p, sk), ReadAt::Latest, now_ms).is_some()))
            .map(|p| PARTS[p].1.to_vec())
            .collect();
        pks.sort();
        pks
    }

    pub fn read(&self, read: &Read) -> Outcome {
        match *read {
            Read::Get { pk, sk, at, now_ms } => Outcome::Get(self.get(&key(pk, sk), at, now_ms)),
            Read::Versions { pk, sk } => Outcome::Versions(self.history(&key(pk, sk))),
            Read::Scan { pk, reverse, limit: _, at, now_ms } => Outcome::Scan(self.scan(pk, reverse, at, now_ms)),
            Read::Keys { table, limit: _, now_ms } => Outcome::Keys(self.partition_keys(table, now_ms)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reads: the same list for the engine and the model.

#[derive(Debug, Clone, Copy)]
pub enum Read {
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
    /// A table's partition keys with a visible row, page by page.
    Keys {
        table: TableId,
        limit: usize,
        now_ms: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
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

pub fn reads() -> Vec<Read> {
    let mut reads = Vec::new();
    for pk in 0..PARTS.len() {
        for sk in 0..SKS.len() {
            reads.push(Read::Versions { pk, sk });
        }
    }
    for now_ms in NOWS_MS {
        for pk in 0..PARTS.len() {
            for sk in 0..SKS.len() {
                reads.extend(read_points().into_iter().map(|at| Read::Get { pk, sk, at, now_ms }));
            }
            for at in [ReadAt::Latest, ReadAt::AsOf(Ts::from_millis(TICKS_MS[1]))] {
                for (reverse, limit) in [(false, 1), (true, 1), (false, 10), (true, 2)] {
                    reads.push(Read::Scan { pk, reverse, limit, at, now_ms });
                }
            }
        }
        for table in [TABLE, T2] {
            reads.extend([1, 10].map(|limit| Read::Keys { table, limit, now_ms }));
        }
    }
    reads
}
