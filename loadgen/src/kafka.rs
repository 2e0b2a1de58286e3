//! The kafka target: every write of the workload is a message produced to a topic, for a
//! nacred source (or anything else) to consume. The message key is the record's partition key,
//! its sort key (if any) goes in the `nacre-sort-key` header, and the payload is the value, as
//! nacred's ingestion reads them.
//!
//! One producer serves every session (librdkafka batches per partition across them). A session
//! is one task keeping up to `--pipeline` messages awaiting their delivery report, each timed
//! from its send (closed loop) or due time (open loop) to the broker's acknowledgement
//! (`acks=all`). With Nacre's partitioner each message goes to the Kafka partition numbered as
//! the store's partition of its key (the aligned case nacred ingests without forwarding); with
//! Kafka's, librdkafka's `murmur2_random` places it as the Java producer's default would.

use crate::args::PartitionerArg;
use crate::plan::{Clock, Plan};
use crate::tally::Tally;
use crate::workload::{Op, Operation};
use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use std::time::{Duration, Instant};

/// Where a kafka run produces.
pub struct Target {
    producer: FutureProducer,
    topic: String,
    /// The topic's partition count, with Nacre's partitioner; `None` leaves it to librdkafka.
    aligned_partitions: Option<i32>,
}

impl Target {
    /// A producer for `topic` at `brokers` holding at most `in_flight` unacknowledged messages,
    /// after checking that the topic exists.
    ///
    /// # Errors
    ///
    /// If the producer cannot be made, the brokers do not answer within `timeout`, or the topic
    /// is missing.
    pub fn connect(
        brokers: &str,
        topic: &str,
        partitioner: PartitionerArg,
        in_flight: usize,
        timeout: Duration,
    ) -> Result<Target> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            // The sessions' own bound (--connections x --pipeline) is what limits the messages
            // awaiting acknowledgement; a message leaves librdkafka's count just after its
            // report, so the queue gets room for twice that before it refuses one.
            .set("queue.buffering.max.messages", (2 * in_flight + 1024).to_string())
            .set("message.timeout.ms", timeout.as_millis().to_string())
            .set("partitioner", "murmur2_random")
            .create()
            .context("creating the Kafka producer")?;
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| format!("asking {brokers} about topic {topic:?}"))?;
        let partitions = match metadata.topics().first() {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => i32::try_from(t.partitions().len())?,
            _ => bail!("topic {topic:?} does not exist at {brokers}; create it first (kafka-topics.sh --create)"),
        };
        let aligned_partitions = (partitioner == PartitionerArg::Nacre).then_some(partitions);
        Ok(Target { producer, topic: topic.to_owned(), aligned_partitions })
    }

    /// The topic's partition count, if Nacre's partitioner places messages.
    pub fn aligned_partitions(&self) -> Option<i32> {
        self.aligned_partitions
    }
}

/// Hands `record` to librdkafka, waiting while its queue is full (reports not yet reaped).
async fn send(producer: &FutureProducer, record: FutureRecord<'_, [u8], [u8]>) -> Result<DeliveryFuture, KafkaError> {
    let mut record = record;
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                record = returned;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// A message sent and not yet acknowledged: its operation and when its latency counts from.
type Sent = (Operation, Instant);

/// Runs one session until `plan` ends and every message it sent is acknowledged or failed.
pub async fn run_session(target: std::sync::Arc<Target>, plan: Plan, pipeline: usize) -> Tally {
    let mut plan = plan;
    let mut tally = Tally::new();
    let value = plan.value();
    let mut clock = Clock::new(plan.schedule);
    let pacer = plan.pacer.clone();
    let mut in_flight = FuturesUnordered::new();
    let mut sending = true;
    loop {
        while sending && in_flight.len() < pipeline {
            let now = Instant::now();
            let Some(start) = clock.take(now) else { break };
            let operation = match plan.next_operation() {
                Some(operation) if start < plan.until => operation,
                _ => {
                    sending = false;
                    break;
                }
            };
            if plan.schedule.is_some() && start >= plan.measure_from {
                tally.sent_late(u64::try_from(now.duration_since(start).as_nanos()).unwrap_or(u64::MAX));
            }
            let key = plan.layout.partition_key(operation.record);
            let sort_key = plan.layout.sort_key(operation.record);
            let mut record = FutureRecord::to(&target.topic).key(key.as_slice()).payload(value.as_slice());
            if !sort_key.is_empty() {
                record = record.headers(
                    OwnedHeaders::new().insert(Header { key: "nacre-sort-key", value: Some(sort_key.as_slice()) }),
                );
            }
            if let Some(partitions) = target.aligned_partitions {
                record = record.partition(nacre_wire::kafka_partition_of(&key, partitions));
            }
            match send(&target.producer, record).await {
                Ok(delivery) => in_flight.push(async move { (delivery.await, (operation, start)) }),
                Err(e) => {
                    plan.completed_one();
                    if start >= plan.measure_from {
                        tally.error(&format!("producing: {e}"));
                    }
                }
            }
        }
        if !sending && in_flight.is_empty() {
            return tally;
        }
        let wake_to_send = if sending && in_flight.len() < pipeline { clock.next_due() } else { None };
        tokio::select! {
            Some((delivered, sent)) = in_flight.next(), if !in_flight.is_empty() => {
                let (operation, start): Sent = sent;
                plan.completed_one();
                if start < plan.measure_from {
                    continue;
                }
                match delivered {
                    Ok(Ok(_)) => {
                        let op = if operation.op == Op::Insert { Op::Insert } else { Op::Update };
                        let latency = Instant::now().duration_since(start);
                        tally.record(op, u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
                    }
                    Ok(Err((e, _))) => tally.error(&format!("delivery: {e}")),
                    Err(_) => tally.error("the producer dropped a delivery report"),
                }
            }
            () = crate::pacer::sleep_until_or_forever(pacer.as_ref(), wake_to_send) => {}
        }
    }
}
