//! Reads a whole topic back with librdkafka: every message of every partition from the start
//! up to the end offsets read when the call begins, with key, payload and headers exactly as
//! stored. Tests use it to check what the daemon wrote to Kafka (the dead-letter topic).

use super::{end_offsets, metadata_client};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Longest [`read_topic`] takes to read up to the end offsets.
pub const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One message read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    /// The Kafka partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// The key, `None` if it has none.
    pub key: Option<Vec<u8>>,
    /// The payload, `None` if NULL.
    pub payload: Option<Vec<u8>>,
    /// The message timestamp, Unix milliseconds.
    pub timestamp_ms: Option<i64>,
    /// Headers in order; a header's value may be NULL.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Every message of `topic` below the end offsets it has now, by partition then offset.
///
/// # Panics
///
/// If the broker fails, or the messages cannot be read within [`READ_TIMEOUT`].
pub fn read_topic(bootstrap: &str, topic: &str) -> Vec<Consumed> {
    let ends = end_offsets(bootstrap, topic);
    let consumer = metadata_client(bootstrap);
    let mut assignment = TopicPartitionList::new();
    for p in 0..ends.len() {
        let partition = i32::try_from(p).expect("few partitions");
        assignment.add_partition_offset(topic, partition, Offset::Beginning).expect("a valid partition");
    }
    consumer.assign(&assignment).unwrap_or_else(|e| panic!("assigning {topic}: {e}"));
    let mut read: Vec<Consumed> = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    // Done when every partition's position reached its end offset; positions (not message
    // counts) also step over offsets that hold no message, such as transaction markers.
    while !reached(&consumer, topic, &ends) {
        assert!(
            Instant::now() < deadline,
            "read {} messages of {topic} but not up to its end offsets {ends:?} in {READ_TIMEOUT:?}",
            read.len()
        );
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else { continue };
        let m = polled.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
        let end = ends[usize::try_from(m.partition()).expect("a partition number")];
        if m.offset() >= end {
            // Produced after the call began: not part of what was asked for.
            continue;
        }
        let headers = m.headers().map_or_else(Vec::new, |h| {
            h.iter().map(|header| (header.key.to_owned(), header.value.map(<[u8]>::to_vec))).collect()
        });
        read.push(Consumed {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            timestamp_ms: m.timestamp().to_millis(),
            headers,
        });
    }
    read.sort_by_key(|c| (c.partition, c.offset));
    read
}

/// True when the consumer's position in every partition of `topic` is at or past its end.
fn reached(consumer: &BaseConsumer, topic: &str, ends: &[i64]) -> bool {
    let positions = consumer.position().unwrap_or_else(|e| panic!("positions in {topic}: {e}"));
    ends.iter().enumerate().all(|(p, &end)| {
        let partition = i32::try_from(p).expect("few partitions");
        end == 0
            || positions
                .find_partition(topic, partition)
                .is_some_and(|elem| matches!(elem.offset(), Offset::Offset(at) if at >= end))
    })
}
