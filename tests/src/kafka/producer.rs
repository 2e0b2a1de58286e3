//! A Kafka producer for tests: librdkafka's `BaseProducer`, idempotent with `acks=all`, that
//! records every message's delivery report. [`Producer::flush`] waits for all of them and
//! returns where each message landed (partition, offset), in send order, so a test can model
//! exactly which versions the daemon must write and with which origin.
//!
//! Idempotence matters here: a retried batch is never written twice, so every message sent
//! appears in the topic exactly once and the test's model matches the topic.

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Longest librdkafka keeps trying to deliver one message; a failure then fails the flush.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a flush waits for every outstanding delivery report.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a send waits for room in librdkafka's queue.
const QUEUE_FULL_TIMEOUT: Duration = Duration::from_secs(60);

/// One message to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The topic.
    pub topic: String,
    /// The Kafka partition; `None` leaves it to librdkafka's default partitioner.
    pub partition: Option<i32>,
    /// The key; `None` sends a message without one.
    pub key: Option<Vec<u8>>,
    /// The payload; `None` sends a NULL payload (a tombstone), which is not an empty one.
    pub payload: Option<Vec<u8>>,
    /// The message timestamp, Unix milliseconds; `None` lets librdkafka stamp the send time.
    pub timestamp_ms: Option<i64>,
    /// Headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A message with `key` and `payload`.
    pub fn new(topic: &str, key: impl Into<Vec<u8>>, payload: impl Into<Vec<u8>>) -> Record {
        Record {
            topic: topic.to_owned(),
            partition: None,
            key: Some(key.into()),
            payload: Some(payload.into()),
            timestamp_ms: None,
            headers: Vec::new(),
        }
    }

    /// A message with `key` and a NULL payload.
    pub fn tombstone(topic: &str, key: impl Into<Vec<u8>>) -> Record {
        Record { payload: None, ..Record::new(topic, key, Vec::new()) }
    }

    /// A message with no key at all.
    pub fn keyless(topic: &str, payload: impl Into<Vec<u8>>) -> Record {
        Record { key: None, ..Record::new(topic, Vec::new(), payload) }
    }

    /// Sends it to Kafka partition `partition`.
    pub fn partition(mut self, partition: i32) -> Record {
        self.partition = Some(partition);
        self
    }

    /// Gives it the message timestamp `ms`.
    pub fn timestamp_ms(mut self, ms: i64) -> Record {
        self.timestamp_ms = Some(ms);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Record {
        self.headers.push((key.to_owned(), value.into()));
        self
    }

    /// The value of header `key`, the last if it repeats (a repeated header counts by its
    /// last value).
    pub fn header_value(&self, key: &str) -> Option<&[u8]> {
        self.headers.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }
}

/// Where a message landed, from its delivery report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// The topic.
    pub topic: String,
    /// The Kafka partition.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The message timestamp the broker stored (the one sent, or librdkafka's send time).
    pub timestamp_ms: Option<i64>,
}

/// The delivery reports received so far, each with the send's ticket.
#[derive(Default)]
struct Reports {
    received: Mutex<Vec<(usize, Result<Delivered, String>)>>,
}

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, ticket: usize) {
        let report = match result {
            Ok(m) => Ok(Delivered {
                topic: m.topic().to_owned(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp_ms: m.timestamp().to_millis(),
            }),
            Err((e, m)) => Err(format!("{e} (topic {}, partition {})", m.topic(), m.partition())),
        };
        self.received.lock().unwrap_or_else(PoisonError::into_inner).push((ticket, report));
    }
}

/// An idempotent producer that records where every message landed.
pub struct Producer {
    inner: BaseProducer<Reports>,
    /// The ticket of the next send.
    next: usize,
    /// The ticket of the first send not yet returned by a flush.
    unflushed: usize,
}

impl Producer {
    /// A producer for the broker at `bootstrap`: `acks=all`, idempotent, 5 ms linger, large
    /// batches, each message delivered within a minute or failed.
    ///
    /// # Panics
    ///
    /// If librdkafka refuses the configuration.
    pub fn new(bootstrap: &str) -> Producer {
        let inner = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .set("batch.num.messages", "100000")
            .set("queue.buffering.max.messages", "1000000")
            .set("message.timeout.ms", MESSAGE_TIMEOUT.as_millis().to_string())
            .create_with_context(Reports::default())
            .expect("a librdkafka producer");
        Producer { inner, next: 0, unflushed: 0 }
    }

    /// Queues `record`, waiting for room if librdkafka's queue is full.
    ///
    /// # Panics
    ///
    /// If librdkafka refuses the message, or its queue stays full for a minute.
    pub fn send(&mut self, record: &Record) {
        let ticket = self.next;
        let mut message = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&record.topic, ticket);
        if let Some(partition) = record.partition {
            message = message.partition(partition);
        }
        if let Some(key) = &record.key {
            message = message.key(key.as_slice());
        }
        if let Some(payload) = &record.payload {
            message = message.payload(payload.as_slice());
        }
        if let Some(ms) = record.timestamp_ms {
            message = message.timestamp(ms);
        }
        if !record.headers.is_empty() {
            let headers = record.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
                headers.insert(Header { key: key.as_str(), value: Some(value.as_slice()) })
            });
            message = message.headers(headers);
        }
        let deadline = Instant::now() + QUEUE_FULL_TIMEOUT;
        loop {
            match self.inner.send(message) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    assert!(Instant::now() < deadline, "librdkafka's queue stayed full for {QUEUE_FULL_TIMEOUT:?}");
                    self.inner.poll(Duration::from_millis(50));
                    message = back;
                }
                Err((e, _)) => panic!("producing to {}: {e}", record.topic),
            }
        }
        self.next += 1;
        // Serves delivery reports as they come, so they never pile up in librdkafka.
        self.inner.poll(Duration::ZERO);
    }

    /// Waits until every message sent since the last flush is delivered, and returns where
    /// each landed, in send order.
    ///
    /// # Panics
    ///
    /// If a delivery failed or the flush times out.
    pub fn flush(&mut self) -> Vec<Delivered> {
        self.inner.flush(FLUSH_TIMEOUT).unwrap_or_else(|e| panic!("flushing the producer: {e}"));
        let mut reports =
            std::mem::take(&mut *self.inner.context().received.lock().unwrap_or_else(PoisonError::into_inner));
        reports.sort_by_key(|(ticket, _)| *ticket);
        let tickets: Vec<usize> = reports.iter().map(|(ticket, _)| *ticket).collect();
        let expected: Vec<usize> = (self.unflushed..self.next).collect();
        assert_eq!(tickets, expected, "one delivery report for each message sent since the last flush");
        self.unflushed = self.next;
        let failed: Vec<String> = reports.iter().filter_map(|(_, r)| r.as_ref().err().cloned()).collect();
        assert!(failed.is_empty(), "{} deliveries failed, first: {:?}", failed.len(), &failed[..failed.len().min(5)]);
        reports.into_iter().map(|(_, r)| r.expect("failures were rejected above")).collect()
    }

    /// Sends `records` and flushes: where each landed, in order.
    pub fn send_all(&mut self, records: &[Record]) -> Vec<Delivered> {
        for record in records {
            self.send(record);
        }
        self.flush()
    }
}
