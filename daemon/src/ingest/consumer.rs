//! One source's consumer on one shard: a librdkafka consumer with manual assignment (no group
//! rebalancing in the data path) of every Kafka partition k whose home, store partition
//! `k mod P`, this shard owns.
//!
//! It runs in rounds. Each round polls at most `poll_batch_messages` messages and
//! `poll_batch_bytes` bytes without blocking, then:
//!
//! 1. maps each message (`message.rs`); a bad one is skipped, counted, logged (rate-limited) and
//!    copied to the dead-letter topic if there is one;
//! 2. applies the messages whose key belongs to their home partition to its memtable, with no
//!    WAL record (Kafka is the log);
//! 3. forwards the others to the partition their key belongs to, as durable writes, and waits
//!    for them;
//! 4. only then notes each Kafka partition's new position in its home partition, where the next
//!    flush commits it with the versions it covers.
//!
//! A crash loses at most what no flush committed yet, and the restart replays it from the
//! committed position; replay is idempotent. Before each round, if the shard's memtables are at
//! their ceiling, the partitions are paused until flushes bring them under it, so memory stays
//! bounded whatever the backlog.

use super::dead_letter::{DeadLetters, Rejected};
use super::message::{self, Mapping, RawMessage, Skip};
use super::{ForwardError, SourceState};
use crate::catalog::SourceEntry;
use crate::shard::Shard;
use nacre_storage::{Entry, TableId, codec};
use nacre_wire as wire;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an idle consumer waits before polling again.
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long a failed setup step (metadata, a forward) waits before it is retried.
const RETRY_INTERVAL: Duration = Duration::from_millis(200);
/// Longest a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest the dead-letter producer may take to deliver its queue when the source stops.
const DEAD_LETTER_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// One assigned Kafka partition.
#[derive(Debug, Clone)]
pub struct Assigned {
    /// Its topic.
    pub topic: String,
    /// The topic's stream id.
    pub stream_id: u16,
    /// The Kafka partition.
    pub kafka_partition: i32,
    /// Its home: the store partition whose manifest holds its position.
    pub home: u32,
    /// The next offset to apply, once known (from the manifest, or the first message).
    pub next: Option<u64>,
    /// The high watermark last fetched.
    pub high_watermark: Option<u64>,
}

/// The librdkafka settings of `source`.
pub fn client_config(source: &SourceEntry, prefetch_kbytes: u64) -> ClientConfig {
    let mut config = consumer_settings(&source.brokers, &BTreeMap::new());
    config.set("queued.max.messages.kbytes", prefetch_kbytes.to_string());
    for (k, v) in &source.settings {
        config.set(k, v);
    }
    config
}

/// A consumer's librdkafka settings for `brokers`: ours first, so that `settings` (a source's
/// own) override them.
pub fn consumer_settings(brokers: &str, settings: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", "nacre")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100")
        // When the prefetch queue is over its bounds, librdkafka postpones the partition's next
        // fetch by this much (default 1 s). A shard drains its queue in milliseconds, so the
        // default left it idle most of the time: 10 ms measured 0.93x a bare consumer, 1 s 0.39x.
        .set("fetch.queue.backoff.ms", "10");
    for (k, v) in settings {
        config.set(k, v);
    }
    config
}

/// Sleeps `duration`, waking early if `stop` is set; returns true if it was.
async fn sleep_unless_stopped(duration: Duration, stop: &Cell<bool>) -> bool {
    let until = Instant::now() + duration;
    while !stop.get() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        glommio::timer::sleep(left.min(Duration::from_millis(50))).await;
    }
    true
}

/// The assignment's slots by Kafka partition, then topic: a message finds its slot without
/// allocating.
struct Slots(BTreeMap<i32, Vec<(String, usize)>>);

impl Slots {
    fn new(assigned: &[Assigned]) -> Slots {
        let mut slots: BTreeMap<i32, Vec<(String, usize)>> = BTreeMap::new();
        for (i, a) in assigned.iter().enumerate() {
            slots.entry(a.kafka_partition).or_default().push((a.topic.clone(), i));
        }
        Slots(slots)
    }

    fn find(&self, topic: &str, partition: i32) -> Option<usize> {
        self.0.get(&partition)?.iter().find(|(t, _)| t == topic).map(|(_, i)| *i)
    }
}

/// A polled message: its slot in the assignment, offset, and what it maps to.
struct Polled {
    slot: usize,
    offset: u64,
    outcome: Result<Entry, Box<Rejected>>,
}

/// The consumer loop of `name` on `shard`, until `stop` is set.
pub async fn run(shard: Rc<Shard>, name: String, source: SourceEntry, state: Rc<SourceState>, stop: Rc<Cell<bool>>) {
    let kafka = &shard.process.config.kafka;
    let client = client_config(&source, kafka.prefetch_kbytes);
    let consumer: Arc<BaseConsumer> = match client.create() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(shard = shard.id, source = %name, error = %e, "cannot create the Kafka consumer");
            return;
        }
    };
    let dead_letters = match source.dead_letter_topic.as_deref().map(|t| DeadLetters::new(&client, t)).transpose() {
        Ok(d) => d,
        Err(e) => {
            tracing::error!(shard = shard.id, source = %name, error = %e, "cannot create the dead-letter producer");
            return;
        }
    };
    let assigned = loop {
        match assign(&shard, &consumer, &source).await {
            Ok(assigned) => break assigned,
            Err(e) => {
                state.note_problem(&name, shard.id, &format!("cannot assign partitions yet: {e}"));
                if sleep_unless_stopped(RETRY_INTERVAL * 10, &stop).await {
                    return;
                }
            }
        }
    };
    tracing::info!(shard = shard.id, source = %name, partitions = assigned.len(), "consuming");
    *state.assigned.borrow_mut() = assigned;
    let mut round = Round { shard: &shard, name: &name, source: &source, state: &state, stop: &stop, dead_letters };
    round.consume(&consumer).await;
    if let Some(d) = &round.dead_letters
        && let Err(e) = d.flush(DEAD_LETTER_FLUSH_TIMEOUT).await
    {
        tracing::warn!(shard = shard.id, source = %name, error = %e, "dead-letter copies not all delivered");
    }
    // Closing a consumer waits for its broker connections; keep that off the shard's thread.
    glommio::executor()
        .spawn_blocking(move || {
            let _ = consumer.unassign();
            drop(consumer);
        })
        .await;
    tracing::info!(shard = shard.id, source = %name, "stopped consuming");
}

/// Assigns every partition of the source's topics whose home this shard owns, each at its
/// committed position (or the beginning).
async fn assign(
    shard: &Rc<Shard>,
    consumer: &Arc<BaseConsumer>,
    source: &SourceEntry,
) -> Result<Vec<Assigned>, String> {
    let mut assigned = Vec::new();
    let partitions = shard.process.partition_count;
    for topic in &source.topics {
        let (c, name) = (consumer.clone(), topic.topic.clone());
        let metadata = glommio::executor()
            .spawn_blocking(move || c.fetch_metadata(Some(&name), METADATA_TIMEOUT))
            .await
            .map_err(|e| format!("metadata of {}: {e}", topic.topic))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic.topic) else {
            return Err(format!("topic {} not in the metadata", topic.topic));
        };
        if let Some(e) = t.error() {
            return Err(format!("topic {}: {e:?}", topic.topic));
        }
        if t.partitions().is_empty() {
            return Err(format!("topic {} has no partitions", topic.topic));
        }
        for p in t.partitions() {
            let k = p.id();
            let home = u32::try_from(k).map_err(|_| format!("negative partition {k}"))? % partitions;
            if shard.process.owner(home) != shard.id {
                continue;
            }
            let engine = shard.partitions.engines.get(&home).expect("the owner has the engine");
            let next = engine.committed_source_offset(&message::position_key(topic.stream_id, k)).await;
            assigned.push(Assigned {
                topic: topic.topic.clone(),
                stream_id: topic.stream_id,
                kafka_partition: k,
                home,
                next,
                high_watermark: None,
            });
        }
    }
    let mut list = TopicPartitionList::new();
    for a in &assigned {
        let offset = a.next.map_or(Offset::Beginning, |o| Offset::Offset(i64::try_from(o).unwrap_or(i64::MAX)));
        list.add_partition_offset(&a.topic, a.kafka_partition, offset).map_err(|e| e.to_string())?;
    }
    consumer.assign(&list).map_err(|e| format!("assign: {e}"))?;
    Ok(assigned)
}

/// What one round needs.
struct Round<'a> {
    shard: &'a Rc<Shard>,
    name: &'a str,
    source: &'a SourceEntry,
    state: &'a Rc<SourceState>,
    stop: &'a Cell<bool>,
    dead_letters: Option<DeadLetters>,
}

impl Round<'_> {
    async fn consume(&mut self, consumer: &Arc<BaseConsumer>) {
        let interval = Duration::from_millis(self.shard.process.config.kafka.checkpoint_interval_ms);
        let mut last_checkpoint = Instant::now();
        let slots = Slots::new(&self.state.assigned.borrow());
        while !self.stop.get() {
            if !self.hold_back(consumer).await {
                return;
            }
            let Some(table) = self.shard.catalog.borrow().get(&self.source.table).map(|t| t.table_id()) else {
                self.state.note_problem(self.name, self.shard.id, &format!("table {} is gone", self.source.table));
                if sleep_unless_stopped(RETRY_INTERVAL * 10, self.stop).await {
                    return;
                }
                continue;
            };
            let polled = self.poll(consumer, &slots, table);
            if polled.is_empty() {
                if sleep_unless_stopped(IDLE_POLL_INTERVAL, self.stop).await {
                    return;
                }
            } else if !self.ingest(polled).await {
                return;
            }
            self.shard.partitions.observe_memory();
            if last_checkpoint.elapsed() >= interval {
                self.checkpoint(consumer).await;
                last_checkpoint = Instant::now();
            }
        }
    }

    /// Pauses the partitions while the shard's memtables are at their ceiling, until flushes
    /// bring them under it. False if the source stopped meanwhile.
    async fn hold_back(&self, consumer: &BaseConsumer) -> bool {
        let ceiling = self.shard.process.config.memory.memtable_ceiling_bytes;
        if self.shard.partitions.memtable_bytes() < ceiling {
            return true;
        }
        let paused = consumer.assignment().and_then(|list| consumer.pause(&list).map(|()| list));
        self.shard.ingest.paused_total.set(self.shard.ingest.paused_total.get() + 1);
        while self.shard.partitions.memtable_bytes() >= ceiling {
            self.shard.partitions.observe_memory();
            if sleep_unless_stopped(IDLE_POLL_INTERVAL, self.stop).await {
                return false;
            }
        }
        match paused {
            Ok(list) => {
                if let Err(e) = consumer.resume(&list) {
                    tracing::error!(shard = self.shard.id, source = %self.name, error = %e, "resume failed");
                }
            }
            Err(e) => tracing::error!(shard = self.shard.id, source = %self.name, error = %e, "pause failed"),
        }
        true
    }

    /// Takes what librdkafka has ready, up to the round's bounds, without waiting.
    fn poll(&self, consumer: &BaseConsumer, slots: &Slots, table: TableId) -> Vec<Polled> {
        let kafka = &self.shard.process.config.kafka;
        let limits = &self.shard.process.config.limits;
        let max_ts_ms = self.shard.partitions.clock.now_ms().saturating_add(limits.max_clock_skew_ms);
        let mut polled = Vec::new();
        let mut bytes = 0;
        while polled.len() < kafka.poll_batch_messages && bytes < kafka.poll_batch_bytes {
            let m = match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    self.state.note_problem(self.name, self.shard.id, &format!("consumer error: {e}"));
                    break;
                }
            };
            let Some(slot) = slots.find(m.topic(), m.partition()) else { continue };
            let stream_id = self.state.assigned.borrow()[slot].stream_id;
            bytes += m.payload_len() + m.key().map_or(0, <[u8]>::len);
            let mapping = Mapping {
                table,
                stream_id,
                max_partition_key_bytes: limits.max_partition_key_bytes,
                max_sort_key_bytes: limits.max_sort_key_bytes,
                max_value_bytes: limits.max_value_bytes,
                max_ts_ms,
            };
            let raw = raw_message(&m);
            let outcome = message::to_entry(&raw, &mapping).map_err(|skip| Box::new(rejected(&m, &raw, &skip)));
            polled.push(Polled { slot, offset: u64::try_from(m.offset()).unwrap_or(0), outcome });
        }
        polled
    }

    /// Applies a round: local versions to the memtables, the others forwarded and waited for,
    /// then the positions noted. False if the source stopped before the round was durable (its
    /// positions stay put, so the messages are read again).
    async fn ingest(&self, polled: Vec<Polled>) -> bool {
        let partition_count = self.shard.process.partition_count;
        let mut local: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
        let mut remote: BTreeMap<u32, Vec<Entry>> = BTreeMap::new();
        let mut ends: BTreeMap<usize, u64> = BTreeMap::new();
        let mut rejected = Vec::new();
        {
            let assigned = self.state.assigned.borrow();
            for p in polled {
                let end = ends.entry(p.slot).or_insert(p.offset + 1);
                *end = (*end).max(p.offset + 1);
                match p.outcome {
                    Ok(entry) => {
                        let home = assigned[p.slot].home;
                        let owner = wire::partition_of(&entry.key.partition_key, partition_count);
                        let target = if owner == home { &mut local } else { &mut remote };
                        target.entry(owner).or_default().push(entry);
                    }
                    Err(r) => rejected.push(*r),
                }
            }
        }
        let mut applied = 0u64;
        let mut replayed = 0u64;
        for (partition, entries) in local {
            let engine = self.shard.partitions.engines.get(&partition).expect("a home partition is owned").clone();
            for mut chunk in self.chunks(entries) {
                match engine.apply_streamed(&mut chunk) {
                    Ok(ack) => {
                        applied += chunk.len() as u64;
                        replayed += ack.duplicates as u64;
                    }
                    Err(_) => {
                        // One refused version refuses its batch: apply them one by one.
                        for entry in &mut chunk {
                            match engine.apply_streamed(std::slice::from_mut(entry)) {
                                Ok(ack) => {
                                    applied += 1;
                                    replayed += ack.duplicates as u64;
                                }
                                Err(e) => rejected.push(self.rejected_entry(entry, &e.to_string())),
                            }
                        }
                    }
                }
            }
        }
        let forwarded: u64 = remote.values().map(|e| e.len() as u64).sum();
        let mut sends = Vec::new();
        for (partition, entries) in remote {
            for chunk in self.chunks(entries) {
                sends.push(self.forward(partition, chunk));
            }
        }
        let mut refused = Vec::new();
        for outcome in futures_util::future::join_all(sends).await {
            match outcome {
                Some(r) => refused.extend(r),
                None => return false,
            }
        }
        applied += forwarded - refused.len() as u64;
        rejected.extend(refused);
        let counters = &self.state.counters;
        counters.applied.set(counters.applied.get() + applied);
        counters.replayed.set(counters.replayed.get() + replayed);
        counters.forwarded.set(counters.forwarded.get() + forwarded);
        for r in &rejected {
            self.skip(r);
        }
        let mut assigned = self.state.assigned.borrow_mut();
        for (slot, end) in ends {
            let a = &mut assigned[slot];
            a.next = Some(a.next.map_or(end, |n| n.max(end)));
            let engine = self.shard.partitions.engines.get(&a.home).expect("a home partition is owned");
            engine.note_source_offset(&message::position_key(a.stream_id, a.kafka_partition), end);
        }
        true
    }

    /// Splits `entries` into batches the engine accepts (entry count and encoded bytes).
    fn chunks(&self, entries: Vec<Entry>) -> Vec<Vec<Entry>> {
        let limits = &self.shard.process.config.limits;
        let mut chunks = Vec::new();
        let mut current: Vec<Entry> = Vec::new();
        let mut bytes = 0;
        for e in entries {
            let size = codec::entry_encoded_len(&e.as_ref());
            if !current.is_empty()
                && (current.len() >= limits.max_batch_entries || bytes + size > limits.max_batch_bytes)
            {
                chunks.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(e);
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }

    /// Forwards a batch until it is durable; returns the versions refused (as skipped
    /// messages), or `None` if the source (or the owner) stopped first.
    async fn forward(&self, partition: u32, mut entries: Vec<Entry>) -> Option<Vec<Rejected>> {
        loop {
            let failed = match self.shard.forward_streamed(partition, entries).await {
                Ok(()) => return Some(Vec::new()),
                Err(None) => {
                    self.state.note_problem(
                        self.name,
                        self.shard.id,
                        &format!("forward to partition {partition}: its shard is shutting down"),
                    );
                    return None;
                }
                Err(Some(failed)) => failed,
            };
            entries = failed.entries;
            match failed.error {
                ForwardError::Refused(_) if entries.len() > 1 => {
                    let mut refused = Vec::new();
                    for entry in entries {
                        refused.extend(Box::pin(self.forward(partition, vec![entry])).await?);
                    }
                    return Some(refused);
                }
                ForwardError::Refused(reason) => {
                    return Some(entries.iter().map(|e| self.rejected_entry(e, &reason)).collect());
                }
                ForwardError::Retry(reason) => {
                    self.state.note_problem(
                        self.name,
                        self.shard.id,
                        &format!("forward to partition {partition}: {reason}"),
                    );
                    if sleep_unless_stopped(RETRY_INTERVAL, self.stop).await {
                        return None;
                    }
                }
            }
        }
    }

    /// A version the store refused, as a skipped message.
    fn rejected_entry(&self, e: &Entry, reason: &str) -> Rejected {
        let payload = match &e.version.payload {
            nacre_storage::Payload::Value { value, .. } => Some(value.clone()),
            nacre_storage::Payload::Tombstone => None,
        };
        let origin = e.version.id.origin;
        let (stream_id, kafka_partition) = wire::stream_of_source_id(origin.source_id);
        let topic = self.source.topics.iter().find(|t| t.stream_id == stream_id).map_or("", |t| t.topic.as_str());
        Rejected {
            topic: topic.to_owned(),
            partition: i32::from(kafka_partition),
            offset: i64::try_from(origin.seq).unwrap_or(i64::MAX),
            key: Some(e.key.partition_key.clone()),
            payload,
            headers: vec![(message::SORT_KEY_HEADER.to_owned(), Some(e.key.sort_key.clone()))],
            reason: Skip::Refused(reason.to_owned()).to_string(),
        }
    }

    /// Counts, logs (rate-limited) and dead-letters a skipped message.
    fn skip(&self, r: &Rejected) {
        let counters = &self.state.counters;
        counters.skipped.set(counters.skipped.get() + 1);
        if self.state.may_log_skip(self.shard.process.config.kafka.skip_log_per_minute) {
            tracing::warn!(
                shard = self.shard.id,
                source = %self.name,
                topic = %r.topic,
                partition = r.partition,
                offset = r.offset,
                reason = %r.reason,
                "skipped a bad message"
            );
        }
        if let Some(d) = &self.dead_letters {
            match d.send(r) {
                Ok(()) => counters.dead_lettered.set(counters.dead_lettered.get() + 1),
                Err(e) => {
                    counters.dead_letter_failed.set(counters.dead_letter_failed.get() + 1);
                    self.state.note_problem(self.name, self.shard.id, &format!("dead-letter copy failed: {e}"));
                }
            }
        }
    }

    /// Bounds the replay a crash would cause, commits positions nothing in memory depends on,
    /// and refreshes the high watermarks. A home partition whose active memtable has held a
    /// streamed version longer than `kafka.max_replay_ms` is flushed, which commits its
    /// positions with the versions: however steadily aligned data keeps arriving (so the
    /// memtable never qualifies for a checkpoint alone), a crash replays at most about that
    /// much of its messages, plus one checkpoint interval.
    async fn checkpoint(&self, consumer: &Arc<BaseConsumer>) {
        let homes: std::collections::BTreeSet<u32> = self.state.assigned.borrow().iter().map(|a| a.home).collect();
        let max_replay_ms = self.shard.process.config.kafka.max_replay_ms;
        for home in homes {
            let Some(engine) = self.shard.partitions.engines.get(&home).cloned() else { continue };
            if engine.streamed_unflushed_for_ms().is_some_and(|waited| waited >= max_replay_ms) {
                match engine.flush().await {
                    Ok(_) => {
                        let flushes = &self.state.counters.replay_bound_flushes;
                        flushes.set(flushes.get() + 1);
                    }
                    Err(e) => {
                        self.state.note_problem(self.name, self.shard.id, &format!("flushing to bound replay: {e}"))
                    }
                }
            }
            if let Err(e) = engine.checkpoint_source_offsets().await {
                self.state.note_problem(self.name, self.shard.id, &format!("committing positions: {e}"));
            }
        }
        let wanted: Vec<(String, i32)> =
            self.state.assigned.borrow().iter().map(|a| (a.topic.clone(), a.kafka_partition)).collect();
        let c = consumer.clone();
        let highs = glommio::executor()
            .spawn_blocking(move || {
                wanted
                    .into_iter()
                    .map(|(t, k)| c.fetch_watermarks(&t, k, METADATA_TIMEOUT).ok().map(|(_, h)| h))
                    .collect()
            })
            .await;
        let highs: Vec<Option<i64>> = highs;
        for (a, high) in self.state.assigned.borrow_mut().iter_mut().zip(highs) {
            if let Some(h) = high.and_then(|h| u64::try_from(h).ok()) {
                a.high_watermark = Some(h);
            }
        }
    }
}

/// The borrowed view of a consumed message that [`message::to_entry`] maps.
fn raw_message<'a>(m: &'a BorrowedMessage<'a>) -> RawMessage<'a> {
    RawMessage {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key(),
        payload: m.payload(),
        timestamp_ms: m.timestamp().to_millis(),
        headers: m.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default(),
    }
}

fn rejected(m: &BorrowedMessage<'_>, raw: &RawMessage<'_>, skip: &Skip) -> Rejected {
    Rejected {
        topic: m.topic().to_owned(),
        partition: raw.partition,
        offset: raw.offset,
        key: raw.key.map(<[u8]>::to_vec),
        payload: raw.payload.map(<[u8]>::to_vec),
        headers: raw.headers.iter().map(|(k, v)| ((*k).to_owned(), v.map(<[u8]>::to_vec))).collect(),
        reason: skip.to_string(),
    }
}
