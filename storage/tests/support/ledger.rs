//! A ledger of the writes a crash or fault test issued, and the checks a recovered store must
//! pass against it.
//!
//! Each write is recorded with the simulated disk's op count when it was issued and when its
//! future returned `Ok`, and with the WAL's durable LSN at that moment. Against a crash image
//! taken after op `i`, the ledger says which writes must be there (a `Sync` write acknowledged
//! by op `i`, or any write at or below an LSN the WAL had reported durable by then) and which
//! cannot be (issued after op `i`). Everything else may or may not be there, but whole.

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use super::harness::{START_MS, Store, TABLE, put, small_options};
use nacre_storage::io::Disk;
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{
    Durability, Entry, Key, Lsn, ManualClock, Payload, ReadAt, ScanRequest, Version, VersionId, WriteAck,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// One write as the test issued it.
#[derive(Debug, Clone)]
pub struct Write {
    /// The batch, as passed to `Engine::write`.
    pub entries: Vec<Entry>,
    /// How it was acknowledged.
    pub durability: Durability,
    /// The disk's op count when it was issued: no image taken at or before it can hold it.
    pub issued_op: u64,
    /// The disk's op count when its future returned `Ok`, if it did.
    pub acked_op: Option<u64>,
}

/// Every write a test issued, in issue order.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// The writes.
    pub writes: Vec<Write>,
    /// `(op, lsn)`: by op `op`, the WAL reported everything up to `lsn` durable.
    durable_points: Vec<(u64, Lsn)>,
    /// The LSN each acknowledged write got, by write index.
    lsns: BTreeMap<usize, Lsn>,
}

impl Ledger {
    /// Records that the WAL reported `lsn` durable by op `op`.
    pub fn durable_point(&mut self, op: u64, lsn: Lsn) {
        self.durable_points.push((op, lsn));
    }

    /// True if write `i` must be in an image taken after op `at_op`.
    pub fn required(&self, i: usize, at_op: u64) -> bool {
        let w = &self.writes[i];
        let Some(acked) = w.acked_op else { return false };
        if acked > at_op {
            return false;
        }
        if w.durability == Durability::Sync {
            return true;
        }
        let floor = self.durable_points.iter().filter(|(op, _)| *op <= at_op).map(|(_, l)| *l).max();
        floor.is_some_and(|f| self.lsns.get(&i).is_some_and(|l| *l <= f))
    }

    /// Indices of the acknowledged writes.
    pub fn acked(&self) -> impl Iterator<Item = usize> + '_ {
        self.writes.iter().enumerate().filter(|(_, w)| w.acked_op.is_some()).map(|(i, _)| i)
    }

    /// Every key any write touched.
    pub fn keys(&self) -> BTreeSet<Key> {
        self.writes.iter().flat_map(|w| w.entries.iter().map(|e| e.key.clone())).collect()
    }
}

/// Issues one write through `store`, recording it in `ledger` with `sim`'s op counts.
pub async fn write<D: Disk>(
    ledger: &RefCell<Ledger>,
    sim: &SimDisk,
    store: &Store<D>,
    entries: Vec<Entry>,
    durability: Durability,
) -> nacre_storage::Result<WriteAck> {
    let i = {
        let mut l = ledger.borrow_mut();
        l.writes.push(Write { entries: entries.clone(), durability, issued_op: sim.op_count(), acked_op: None });
        l.writes.len() - 1
    };
    let result = store.engine.write(entries, durability).await;
    if let Ok(ack) = &result {
        let op = sim.op_count();
        let mut l = ledger.borrow_mut();
        l.writes[i].acked_op = Some(op);
        l.lsns.insert(i, ack.lsn);
        l.durable_point(op, store.wal.durable_lsn());
    }
    result
}

/// Makes everything appended so far durable and records it.
pub async fn wal_sync<D: Disk>(ledger: &RefCell<Ledger>, sim: &SimDisk, store: &Store<D>) -> nacre_storage::Result<()> {
    store.wal.sync().await?;
    ledger.borrow_mut().durable_point(sim.op_count(), store.wal.durable_lsn());
    Ok(())
}

/// Reads back everything the ledger's writes could have left in `store` and checks it is
/// consistent: every stored version of a touched key is one the ledger wrote, with its exact
/// payload and origin; every write is there whole or not at all; point reads and scans show
/// each key's greatest version. Returns the indices of the writes present.
pub async fn observe<D: Disk>(ledger: &Ledger, store: &Store<D>, context: &str) -> BTreeSet<usize> {
    let mut written: HashMap<(Key, VersionId), (usize, &Version)> = HashMap::new();
    for (i, w) in ledger.writes.iter().enumerate() {
        for e in &w.entries {
            let clash = written.insert((e.key.clone(), e.version.id), (i, &e.version));
            assert!(clash.is_none(), "{context}: the test wrote one version twice: {e:?}");
        }
    }
    let mut found_per_write: BTreeMap<usize, usize> = BTreeMap::new();
    let mut visible: BTreeMap<Key, Option<Vec<u8>>> = BTreeMap::new();
    for key in ledger.keys() {
        let history = store.engine.versions(key.as_ref()).await;
        let history = history.unwrap_or_else(|e| panic!("{context}: versions of {key:?}: {e}"));
        for v in &history.versions {
            let Some((i, expected)) = written.get(&(key.clone(), v.id)) else {
                panic!("{context}: {key:?} holds a version no write made: {v:?}");
            };
            assert_eq!(*expected, v, "{context}: {key:?} holds a changed version");
            *found_per_write.entry(*i).or_default() += 1;
        }
        // `versions` lists greatest first; with no watermarks or expiry the greatest is visible.
        let latest = history.versions.first().and_then(|v| match &v.payload {
            Payload::Value { value, .. } => Some(value.clone()),
            Payload::Tombstone => None,
        });
        let got = store.engine.get(key.as_ref(), ReadAt::Latest).await;
        let got = got.unwrap_or_else(|e| panic!("{context}: get {key:?}: {e}")).map(|r| r.value);
        assert_eq!(got, latest, "{context}: get {key:?} disagrees with its versions");
        visible.insert(key, latest);
    }
    let mut present = BTreeSet::new();
    for (i, w) in ledger.writes.iter().enumerate() {
        match found_per_write.get(&i).copied().unwrap_or(0) {
            0 => {}
            n if n == w.entries.len() => {
                present.insert(i);
            }
            n => panic!("{context}: write {i} is half applied: {n} of {} entries: {w:?}", w.entries.len()),
        }
    }
    check_scans(store, &visible, context).await;
    present
}

/// Scans every touched partition key and checks the rows are exactly the visible keys.
async fn check_scans<D: Disk>(store: &Store<D>, visible: &BTreeMap<Key, Option<Vec<u8>>>, context: &str) {
    let pks: BTreeSet<&Vec<u8>> = visible.keys().map(|k| &k.partition_key).collect();
    for pk in pks {
        let req = ScanRequest { table: TABLE, partition_key: pk.clone(), limit: 1000, ..ScanRequest::default() };
        let page = store.engine.scan(&req).await.unwrap_or_else(|e| panic!("{context}: scan {pk:?}: {e}"));
        assert_eq!(page.cursor, None, "{context}: one page holds every row");
        let rows: Vec<(Vec<u8>, Vec<u8>)> = page.rows.into_iter().map(|r| (r.sort_key, r.value)).collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = visible
            .iter()
            .filter(|(k, _)| &k.partition_key == pk)
            .filter_map(|(k, v)| v.clone().map(|v| (k.sort_key.clone(), v)))
            .collect();
        assert_eq!(rows, expected, "{context}: scan of {pk:?}");
    }
}

/// Checks a store recovered from an image taken after op `at_op`: consistent (see [`observe`]),
/// holding every write that had to survive and none issued after the image. Returns the writes
/// present.
pub async fn check_image<D: Disk>(ledger: &Ledger, store: &Store<D>, at_op: u64, context: &str) -> BTreeSet<usize> {
    let present = observe(ledger, store, context).await;
    for (i, w) in ledger.writes.iter().enumerate() {
        if present.contains(&i) {
            assert!(w.issued_op < at_op, "{context}: write {i} issued at op {} is in an earlier image", w.issued_op);
        } else {
            assert!(!ledger.required(i, at_op), "{context}: acknowledged write {i} is lost: {w:?}");
        }
    }
    present
}

/// Where every crash and fault test keeps its store.
pub fn root() -> PathBuf {
    PathBuf::from("/nacre")
}

/// Recovers the store under [`root`] in `disk`.
pub async fn recover<D: Disk>(disk: D, context: &str) -> Store<D> {
    let opened = Store::open(disk, &root(), ManualClock::new(START_MS), small_options()).await;
    opened.unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"))
}

/// Recovers `image` (taken after op `at_op`), checks it against the ledger (see
/// [`check_image`]), then writes once more, crashes again and checks that the second recovery
/// holds the same writes plus the new one: what one recovery showed, the next must keep.
pub async fn check_crash(ledger: &Ledger, image: SimDisk, at_op: u64, context: &str) {
    let store = recover(image, context).await;
    let present = check_image(ledger, &store, at_op, context).await;
    check_second_crash(ledger, store, &present, context).await;
}

/// Writes once to a recovered `store`, crashes it, recovers, and checks the writes present are
/// still `present`, plus the new one.
pub async fn check_second_crash(ledger: &Ledger, store: Store<SimDisk>, present: &BTreeSet<usize>, context: &str) {
    // Far above the ledger's versions and keys, and within the clock's skew bound.
    let marker = put("after-recovery", "", 1_050_000, "written after the first recovery");
    store.engine.write(vec![marker], Durability::Sync).await.unwrap_or_else(|e| panic!("{context}: write: {e}"));
    let image = store.disk.crash_image(true);
    drop(store);
    let context = format!("{context}, recovered twice");
    let again = recover(image, &context).await;
    assert_eq!(&observe(ledger, &again, &context).await, present, "{context}: a second crash changed what survived");
    assert_eq!(
        again.get("after-recovery", "").await.as_deref(),
        Some("written after the first recovery"),
        "{context}: a write acknowledged after recovery is lost"
    );
}

/// Random batches over a small key space, every version unique (its `ts` and origin seq are one
/// increasing counter), some tombstones, values of varied length that never hold a run of zero
/// bytes.
pub struct Batches {
    rng: fastrand::Rng,
    next_ts: u64,
    /// Distinct partition keys to draw from.
    pub partition_keys: usize,
    /// Distinct sort keys per partition key.
    pub sort_keys: usize,
}

impl Batches {
    /// A generator drawing from `rng`, starting its counter at `first_ts`.
    pub fn new(rng: fastrand::Rng, first_ts: u64) -> Self {
        Self { rng, next_ts: first_ts, partition_keys: 6, sort_keys: 4 }
    }

    /// One entry.
    pub fn entry(&mut self) -> Entry {
        let pk = format!("pk{}", self.rng.usize(..self.partition_keys));
        let sk = format!("sk{}", self.rng.usize(..self.sort_keys));
        let ts = self.next_ts;
        self.next_ts += 1;
        if self.rng.u8(..) < 30 {
            return super::harness::delete(&pk, &sk, ts);
        }
        let len = if self.rng.u8(..) < 20 { self.rng.usize(500..3000) } else { self.rng.usize(1..200) };
        let fill: String = (0..len).map(|_| self.rng.alphanumeric()).collect();
        put(&pk, &sk, ts, &format!("v{ts}:{fill}"))
    }

    /// A batch of one to `max` entries.
    pub fn batch(&mut self, max: usize) -> Vec<Entry> {
        let n = self.rng.usize(1..=max);
        (0..n).map(|_| self.entry()).collect()
    }

    /// `Sync` about two times in three.
    pub fn durability(&mut self) -> Durability {
        if self.rng.u8(..) < 170 { Durability::Sync } else { Durability::Async }
    }

    /// The generator's rng, for other random choices of the test.
    pub fn rng(&mut self) -> &mut fastrand::Rng {
        &mut self.rng
    }
}

/// The seed from `SEED=`, else a fresh one; printed either way so a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = nacre_testkit::seed(test);
    // The WAL and manifest draw their salts from the thread's generator: seed it too, so a
    // replay writes the same bytes.
    fastrand::seed(seed);
    seed
}
