//! The dead-letter topic: a copy of each skipped message, with why and where it came from, for
//! a source that names one. Sending never blocks the shard: librdkafka's own thread delivers,
//! its queue is bounded (`queue.buffering.max.messages`), and a copy that cannot be queued is
//! counted and logged, never retried in the data path.

use rdkafka::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::sync::Arc;
use std::time::Duration;

/// Header carrying why the message was skipped.
pub const ERROR_HEADER: &str = "nacre-error";
/// Headers naming where the message came from.
pub const TOPIC_HEADER: &str = "nacre-source-topic";
/// See [`TOPIC_HEADER`].
pub const PARTITION_HEADER: &str = "nacre-source-partition";
/// See [`TOPIC_HEADER`].
pub const OFFSET_HEADER: &str = "nacre-source-offset";

/// A skipped message, copied out of the consumer's buffer.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The topic it was read from.
    pub topic: String,
    /// Its Kafka partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload.
    pub payload: Option<Vec<u8>>,
    /// Its headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Why it was skipped.
    pub reason: String,
}

/// A producer to one dead-letter topic.
pub struct DeadLetters {
    topic: String,
    producer: Arc<ThreadedProducer<DefaultProducerContext>>,
}

impl DeadLetters {
    /// A producer for `topic` with the source's client settings.
    pub fn new(client: &ClientConfig, topic: &str) -> KafkaResult<DeadLetters> {
        let producer = client.clone().set("queue.buffering.max.messages", "100000").create()?;
        Ok(DeadLetters { topic: topic.to_owned(), producer: Arc::new(producer) })
    }

    /// Queues a copy of `rejected`; an error means it could not be queued.
    pub fn send(&self, rejected: &Rejected) -> KafkaResult<()> {
        let (partition, offset) = (rejected.partition.to_string(), rejected.offset.to_string());
        let mut headers = OwnedHeaders::new_with_capacity(rejected.headers.len() + 4);
        for (key, value) in &rejected.headers {
            headers = headers.insert(Header { key, value: value.as_deref() });
        }
        headers = headers
            .insert(Header { key: ERROR_HEADER, value: Some(rejected.reason.as_bytes()) })
            .insert(Header { key: TOPIC_HEADER, value: Some(rejected.topic.as_bytes()) })
            .insert(Header { key: PARTITION_HEADER, value: Some(partition.as_bytes()) })
            .insert(Header { key: OFFSET_HEADER, value: Some(offset.as_bytes()) });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(key) = &rejected.key {
            record = record.key(key.as_slice());
        }
        if let Some(payload) = &rejected.payload {
            record = record.payload(payload.as_slice());
        }
        self.producer.send(record).map_err(|(e, _)| e)
    }

    /// Waits (on a blocking thread, at most `timeout`) until every queued copy is delivered.
    pub async fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        let producer = self.producer.clone();
        glommio::executor().spawn_blocking(move || producer.flush(timeout)).await
    }
}
