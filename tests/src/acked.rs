//! The client-side log of acknowledged writes, the writer load that fills it, and the check a
//! restarted daemon must pass against it.
//!
//! The invariant checked is the crash tests' one, seen from a client: *recovered state = every
//! acknowledged write, plus possibly some unacknowledged ones*. Concretely, for every key with an
//! acknowledged write, the visible row after a restart is either the greatest acknowledged
//! version with its value, or a greater version carrying a value that was sent to that key (an
//! unacknowledged write that made it). What a restart shows becomes known-durable in turn, so a
//! value that survives one restart and vanishes at the next is caught too.
//!
//! Every value sent is unique, so a value names the one write that carried it.

use nacre_wire::{BatchOp, Client, ClientError, Durability, Key, MultiGet, Put, VersionId, WriteBatch};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What the client knows about the writes it made.
#[derive(Debug, Default)]
pub struct AckLog {
    /// For each key, the greatest version known durable (acknowledged, or read back after a
    /// restart) and its value.
    known: HashMap<Key, (VersionId, Vec<u8>)>,
    /// Every value sent, with the key it was sent to.
    sent: HashMap<Vec<u8>, Key>,
    /// Every acknowledged value, with the version the daemon said it wrote.
    acked: HashMap<Vec<u8>, (VersionId, Durability)>,
}

impl AckLog {
    /// Records that `value` is about to be sent to `key`.
    pub fn sending(&mut self, key: &Key, value: &[u8]) {
        let previous = self.sent.insert(value.to_vec(), key.clone());
        assert!(previous.is_none(), "the load sent a value twice");
    }

    /// Records that the daemon acknowledged `value` at `key` as `version`.
    pub fn acknowledged(&mut self, key: &Key, value: &[u8], version: VersionId, durability: Durability) {
        self.acked.insert(value.to_vec(), (version, durability));
        let newer = self.known.get(key).is_none_or(|(known, _)| version.ts > known.ts);
        if newer {
            self.known.insert(key.clone(), (version, value.to_vec()));
        }
    }

    /// Acknowledged writes so far.
    pub fn acked_count(&self) -> usize {
        self.acked.len()
    }

    /// Acknowledged writes so far, `Sync` ones only.
    pub fn acked_sync_count(&self) -> usize {
        self.acked.values().filter(|(_, d)| *d == Durability::Sync).count()
    }

    /// Keys with a known-durable value.
    pub fn key_count(&self) -> usize {
        self.known.len()
    }
}

/// A shared log.
pub type SharedLog = Arc<Mutex<AckLog>>;

fn lock(log: &SharedLog) -> std::sync::MutexGuard<'_, AckLog> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads every key of `log` from the daemon and checks it against the log (see the module
/// docs); then marks what it read as known-durable. Returns the keys checked.
///
/// # Panics
///
/// On a lost or wrong value, with the key, what was expected and what was read.
pub async fn verify(client: &Client, table: &str, log: &SharedLog) -> usize {
    let keys: Vec<Key> = lock(log).known.keys().cloned().collect();
    for chunk in keys.chunks(256) {
        let rows = client
            .multi_get(MultiGet::new(table, chunk.to_vec()))
            .await
            .unwrap_or_else(|e| panic!("multi_get of {} keys after restart: {e}", chunk.len()));
        assert_eq!(rows.len(), chunk.len(), "multi_get answers one row per key");
        let mut log = lock(log);
        for (key, row) in chunk.iter().zip(rows) {
            let (known_version, known_value) = log.known[key].clone();
            let Some(row) = row else {
                panic!("lost: {key:?} reads as absent, but {known_version:?} = {:?} was durable", show(&known_value));
            };
            if row.version == known_version {
                assert_eq!(row.value, known_value, "{key:?} at {known_version:?} reads back another value");
                continue;
            }
            assert!(
                row.version.ts > known_version.ts,
                "lost: {key:?} reads {:?} = {:?}, older than durable {known_version:?} = {:?}",
                row.version,
                show(&row.value),
                show(&known_value)
            );
            assert_eq!(
                log.sent.get(&row.value),
                Some(key),
                "{key:?} reads {:?}, a value never sent to it",
                show(&row.value)
            );
            if let Some((acked_version, _)) = log.acked.get(&row.value) {
                assert_eq!(
                    *acked_version, row.version,
                    "{key:?}: an acknowledged value reads back under another version"
                );
            }
            log.known.insert(key.clone(), (row.version, row.value));
        }
    }
    keys.len()
}

fn show(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.chars().take(40).collect()
}

/// What a writer load does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The table written.
    pub table: String,
    /// Concurrent writers on the one client, each with one request in flight: the client
    /// pipelines them over its connections.
    pub writers: usize,
    /// Partition keys drawn from (`key-00000` ..), so keys are overwritten across rounds.
    pub key_space: u32,
    /// Send `Async` writes too (half of them), not only `Sync` ones.
    pub mixed_durability: bool,
    /// Prefix making this load's values unique across loads.
    pub tag: String,
}

/// A running load.
pub struct Load {
    stop: Arc<AtomicBool>,
    expect_errors: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<String>>>,
    writers: JoinSet<()>,
}

impl Load {
    /// Starts `options.writers` writers on `client`, logging into `log`. Must run inside a
    /// tokio runtime.
    pub fn start(client: Arc<Client>, log: SharedLog, options: LoadOptions, seed: u64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let expect_errors = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicUsize::new(0));
        let failure = Arc::new(Mutex::new(None));
        let mut writers = JoinSet::new();
        for w in 0..options.writers {
            let writer = Writer {
                id: w,
                rng: fastrand::Rng::with_seed(seed.wrapping_add(w as u64)),
                client: client.clone(),
                log: log.clone(),
                options: options.clone(),
                stop: stop.clone(),
                expect_errors: expect_errors.clone(),
                acks: acks.clone(),
                failure: failure.clone(),
            };
            writers.spawn(writer.run());
        }
        Load { stop, expect_errors, acks, failure, writers }
    }

    /// Writes acknowledged by this load so far.
    pub fn acks(&self) -> usize {
        self.acks.load(Ordering::SeqCst)
    }

    /// Waits until this load has `n` acknowledgements.
    ///
    /// # Panics
    ///
    /// If they do not come within `timeout`, or a writer failed.
    pub async fn wait_for_acks(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.acks() < n {
            self.check_failure();
            assert!(Instant::now() < deadline, "the load got {} of {n} acknowledgements in {timeout:?}", self.acks());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    fn check_failure(&self) {
        if let Some(e) = self.failure.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            panic!("a writer failed while the daemon was up: {e}");
        }
    }

    /// From now on a failed request ends its writer quietly (the daemon is about to die);
    /// before this, any failure fails the test.
    pub fn expect_errors(&self) {
        self.expect_errors.store(true, Ordering::SeqCst);
    }

    /// Stops the writers and waits for them.
    ///
    /// # Panics
    ///
    /// If a writer failed before [`Load::expect_errors`].
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        while let Some(ended) = self.writers.join_next().await {
            if let Err(e) = ended {
                panic!("a writer panicked: {e}");
            }
        }
        self.check_failure();
    }
}

struct Writer {
    id: usize,
    rng: fastrand::Rng,
    client: Arc<Client>,
    log: SharedLog,
    options: LoadOptions,
    stop: Arc<AtomicBool>,
    expect_errors: Arc<AtomicBool>,
    acks: Arc<AtomicUsize>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Writer {
    /// Writes until stopped or a request fails: quietly once errors are expected, else
    /// recording the failure for [`Load`] to report.
    async fn run(mut self) {
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let durability =
                if self.options.mixed_durability && self.rng.bool() { Durability::Async } else { Durability::Sync };
            let outcome =
                if self.rng.u32(..8) == 0 { self.batch(n, durability).await } else { self.put(n, durability).await };
            if let Err(e) = outcome {
                if !self.expect_errors.load(Ordering::SeqCst) {
                    let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
                    failure.get_or_insert(format!("writer {}: {e}", self.id));
                }
                return;
            }
        }
    }

    fn value(&mut self, n: u64, part: usize) -> Vec<u8> {
        let mut value = format!("{}-w{}-n{n}-{part}|", self.options.tag, self.id).into_bytes();
        let filler = self.rng.usize(..200);
        value.extend((0..filler).map(|i| b'a' + (i % 26) as u8));
        value
    }

    fn key(&mut self, sort_key: &str) -> Key {
        let k = self.rng.u32(..self.options.key_space);
        Key::new(format!("key-{k:05}"), sort_key)
    }

    async fn put(&mut self, n: u64, durability: Durability) -> Result<(), ClientError> {
        let key = self.key("");
        let value = self.value(n, 0);
        lock(&self.log).sending(&key, &value);
        let mut put = Put::new(&self.options.table, key.clone(), value.clone());
        put.durability = Some(durability);
        let version = self.client.put(put).await?;
        lock(&self.log).acknowledged(&key, &value, version, durability);
        self.acks.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Three puts under one partition key, atomically.
    async fn batch(&mut self, n: u64, durability: Durability) -> Result<(), ClientError> {
        let pk = self.key("").partition_key;
        let writes: Vec<(Key, Vec<u8>)> =
            (0..3).map(|i| (Key::new(pk.clone(), format!("s{i}")), self.value(n, i))).collect();
        {
            let mut log = lock(&self.log);
            for (key, value) in &writes {
                log.sending(key, value);
            }
        }
        let ops = writes
            .iter()
            .map(|(key, value)| BatchOp::Put { key: key.clone(), value: value.clone(), ts: None, ttl_ms: None })
            .collect();
        let mut batch = WriteBatch::new(&self.options.table, ops);
        batch.durability = Some(durability);
        let versions = self.client.write_batch(batch).await?;
        let mut log = lock(&self.log);
        for ((key, value), version) in writes.iter().zip(versions) {
            log.acknowledged(key, value, version, durability);
        }
        self.acks.fetch_add(writes.len(), Ordering::SeqCst);
        Ok(())
    }
}
