//! The Kafka harness: a real Apache Kafka broker for a test, and the tools the Kafka ingestion
//! tests use to feed it and to check what `nacred` made of it.
//!
//! - [`Broker`] runs a single-node KRaft broker (`kafka/broker.sh run`) on free loopback ports
//!   and a fresh directory, creates topics, and leaves no JVM behind.
//! - [`expected_version`], [`newest_first`] and [`visible`] are the contract's model of
//!   ingestion: which version a message becomes, how versions order, what a read sees.
//! - [`Producer`] sends [`Record`]s with librdkafka (idempotent, `acks=all`) and hands back
//!   every message's assigned partition and offset from the delivery reports, in send order:
//!   the position a streamed version's origin must name.
//! - [`read_topic`] reads a whole topic back (the dead-letter topic's contents); [`end_offsets`]
//!   are a topic's high watermarks; [`kcat`] runs kcat, the independent producer and reader.
//! - [`SourceConfig`] writes a source's configuration file section and [`restart_with_sources`]
//!   restarts a daemon with it; [`nacre`], [`source_list`] and [`active_source`] drive
//!   `nacre source ...`; [`stream_source_id`] is the origin's `source_id` rule.
//! - [`wait_caught_up`] waits, on a condition and never on time, until the daemon has applied
//!   a topic up to given end offsets, read from its `kafka_next_offset` statistics (the
//!   other statistics are read with `crate::stats`).
//!
//! The broker needs Java and the jars `kafka/broker.sh fetch` caches; kcat is Debian's `kcat`.

mod broker;
mod model;
mod producer;
mod reader;
mod source;
mod stats;

pub use broker::{BROKER_START_TIMEOUT, Broker};
pub use model::{
    SORT_KEY_HEADER, TS_HEADER, TTL_HEADER, expected_version, message_key, newest_first, now_ms, rank, visible,
};
pub use producer::{Delivered, Producer, Record};
pub use reader::{Consumed, READ_TIMEOUT, read_topic};
pub use source::{
    SourceConfig, SourceInfo, active_source, nacre, restart_with_sources, source_list, start_with_table_and_sources,
    stream_source_id,
};
pub use stats::{CATCH_UP_TIMEOUT, next_offsets, wait_caught_up};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::process::{Command, Output};
use std::time::Duration;

/// Longest one metadata or watermark request waits for the broker.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest a kcat run may take.
pub const KCAT_TIMEOUT: Duration = Duration::from_secs(60);

/// A consumer for metadata and watermark requests only: it joins no group and commits nothing.
pub(crate) fn metadata_client(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "nacre-tests-metadata")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a librdkafka metadata client")
}

/// How many partitions `topic` has.
///
/// # Panics
///
/// If the broker does not answer within [`METADATA_TIMEOUT`] or does not know the topic.
pub fn partition_count(bootstrap: &str, topic: &str) -> usize {
    let client = metadata_client(bootstrap);
    let metadata = client
        .fetch_metadata(Some(topic), METADATA_TIMEOUT)
        .unwrap_or_else(|e| panic!("metadata of topic {topic} from {bootstrap}: {e}"));
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    let topic_metadata = found.unwrap_or_else(|| panic!("the broker at {bootstrap} does not list topic {topic}"));
    assert!(topic_metadata.error().is_none(), "topic {topic}: {:?}", topic_metadata.error());
    topic_metadata.partitions().len()
}

/// The high watermark of every partition of `topic`, by partition number: the offset the next
/// message of each partition will get, so a consumer that applied everything produced so far
/// has `next offset == end offset` on every partition.
///
/// # Panics
///
/// If the broker does not answer within [`METADATA_TIMEOUT`].
pub fn end_offsets(bootstrap: &str, topic: &str) -> Vec<i64> {
    let client = metadata_client(bootstrap);
    (0..partition_count(bootstrap, topic))
        .map(|p| {
            let partition = i32::try_from(p).expect("few partitions");
            let (_low, high) = client
                .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                .unwrap_or_else(|e| panic!("watermarks of {topic}/{partition}: {e}"));
            high
        })
        .collect()
}

/// Runs kcat with `args` and `stdin`, at most [`KCAT_TIMEOUT`]. The caller checks the status.
///
/// # Panics
///
/// If kcat is missing (Debian: `apt-get install kcat`) or runs longer than the timeout.
pub fn kcat(args: &[&str], stdin: &[u8]) -> Output {
    crate::program::run(Command::new("kcat").args(args), stdin, KCAT_TIMEOUT)
}
