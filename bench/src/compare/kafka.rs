//! Section 5: Kafka ingestion against a bare librdkafka consumer, same broker, same topic, same
//! run. Two topics are produced once by `nacre-loadgen --target kafka`: one with Nacre's
//! partitioner (each Kafka partition one of the store's: the aligned case) and one with
//! Kafka's default (murmur2: most messages belong to another shard's partition and are
//! forwarded). Then, per round and topic, a bare `BaseConsumer` assigned every partition reads
//! the topic and discards it, and a fresh nacred given the topic as a source (`nacre source
//! add`) ingests it, timed until every partition is applied (lag 0) and until a clean stop has
//! flushed it to segment files.
//!
//! The broker is `kafka/broker.sh` (Java and Kafka's jars; the section is skipped, saying so,
//! without them), on loopback, sharing the cores with both consumers: only the ratio means
//! anything.

use crate::compare::context::Context;
use crate::compare::loadgen;
use crate::compare::report::{Row, Section};
use crate::compare::servers::Nacred;
use crate::process::free_port;
use anyhow::{Context as _, Result, bail};
use nacre_wire::LabelledName;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Kafka partitions of each topic, and the store's partition count.
const PARTITIONS: u32 = 8;
/// Bytes of each value (keys are loadgen's 16 bytes).
const VALUE_BYTES: &str = "100";
/// The table both topics are ingested into.
const TABLE: &str = "events";
/// Longest either side may take to read a topic.
const READ_TIMEOUT: Duration = Duration::from_secs(1200);

/// Runs the section, or says why it cannot.
///
/// # Errors
///
/// If the broker, a producer, a consumer or nacred fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let messages: u64 = if ctx.quick { 50_000 } else { 4_000_000 };
    let mut section = Section::new(
        5,
        "kafka",
        "Kafka ingestion against a bare librdkafka consumer",
        format!(
            "{messages} messages (16-byte keys, {VALUE_BYTES}-byte values) in a topic of {PARTITIONS} partitions, \
             produced once by nacre-loadgen --target kafka with Nacre's partitioner (aligned) and once with Kafka's \
             default (murmur2). Per round and topic: a bare rdkafka BaseConsumer assigned every partition reads it \
             all; then a fresh nacred ({PARTITIONS} partitions) ingests it as a source, timed until every partition \
             is applied (lag 0). One broker (kafka/broker.sh) on loopback, sharing the cores."
        ),
    );
    let broker = match Broker::start(&ctx.work.join("broker")) {
        Ok(broker) => broker,
        Err(why) => return Ok(section.skip(format!("{why:#}"))),
    };
    let topics = [
        ("aligned", "nacre", "aligned producer (Nacre's partitioner)"),
        ("default", "kafka", "murmur2 producer (Kafka's default)"),
    ];
    for (topic, partitioner, label) in topics {
        broker.create_topic(topic)?;
        let summary = loadgen::produce(
            &ctx.loadgen,
            &[
                "--target",
                "kafka",
                "--addr",
                &broker.bootstrap,
                "--topic",
                topic,
                "--partitioner",
                partitioner,
                "--phase",
                "load",
                "--keys",
                &messages.to_string(),
                "--value-size",
                VALUE_BYTES,
                "--connections",
                "4",
                "--pipeline",
                "1024",
                "--seed",
                &ctx.seed.to_string(),
            ],
            &ctx.work,
        )?;
        let rate = summary["load"]["operations"]["all"]["ops_per_second"].as_f64().unwrap_or(f64::NAN);
        section
            .notes
            .push(format!("{label}: nacre-loadgen produced {messages} messages at {rate:.0} msg/s (acks=all)"));
    }
    let mut rates: BTreeMap<&str, Rates> = BTreeMap::new();
    for round in 0..ctx.rounds {
        for (topic, _, _) in topics {
            let bare = bare_consumer(&broker.bootstrap, topic, messages)?;
            let dir = ctx.work.join(format!("nacred-{topic}-{round}"));
            std::fs::create_dir_all(&dir)?;
            let (applied, flushed) = ingest(ctx, &dir, &broker.bootstrap, topic, messages)?;
            let _ = std::fs::remove_dir_all(&dir);
            let rate = |d: Duration| messages as f64 / d.as_secs_f64();
            eprintln!(
                "  {topic}: bare {:.0} msg/s, nacred {:.0} msg/s applied, {:.0} msg/s flushed",
                rate(bare),
                rate(applied),
                rate(flushed)
            );
            let entry = rates.entry(topic).or_default();
            entry.bare.push(rate(bare));
            entry.applied.push(rate(applied));
            entry.flushed.push(rate(flushed));
        }
    }
    for (topic, _, label) in topics {
        let Rates { bare, applied, flushed } = rates.remove(topic).context("every topic ran")?;
        let row = |what: &str, values: Vec<f64>| Row {
            measure: format!("{label}, {what}"),
            unit: "msg/s".to_owned(),
            peer: "bare BaseConsumer".to_owned(),
            peer_values: bare.clone(),
            nacre: "nacred source".to_owned(),
            nacre_values: values,
            higher_is_better: true,
        };
        section.rows.push(row("until applied (lag 0)", applied));
        section.rows.push(row("until flushed (clean stop)", flushed));
    }
    Ok(section)
}

/// One topic's rates, messages a second, per round.
#[derive(Default)]
struct Rates {
    bare: Vec<f64>,
    applied: Vec<f64>,
    flushed: Vec<f64>,
}

/// `kafka/broker.sh`: the repository's script for a real single-node broker.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("kafka").join("broker.sh")
}

/// A broker started by `kafka/broker.sh`, stopped when dropped.
struct Broker {
    dir: PathBuf,
    bootstrap: String,
}

impl Broker {
    /// Fetches Kafka's jars if needed and starts a broker in `dir`.
    fn start(dir: &Path) -> Result<Broker> {
        let fetched = Command::new("bash").arg(script()).arg("fetch").stdout(Stdio::null()).output()?;
        if !fetched.status.success() {
            bail!(
                "kafka/broker.sh fetch failed (it needs Java 17+ and Maven; Debian: apt-get install \
                 default-jre-headless maven): {}",
                String::from_utf8_lossy(&fetched.stderr).lines().last().unwrap_or_default()
            );
        }
        let (port, controller) = (free_port()?.port(), free_port()?.port());
        let started = Command::new("bash")
            .arg(script())
            .args(["start", &dir.display().to_string(), &port.to_string(), &controller.to_string()])
            .stdout(Stdio::null())
            .output()?;
        let broker = Broker { dir: dir.to_path_buf(), bootstrap: format!("127.0.0.1:{port}") };
        if !started.status.success() {
            bail!("kafka/broker.sh start failed: {}", String::from_utf8_lossy(&started.stderr));
        }
        Ok(broker)
    }

    fn create_topic(&self, topic: &str) -> Result<()> {
        let created = Command::new("bash")
            .arg(script())
            .args(["topics", "--bootstrap-server", &self.bootstrap, "--create", "--topic", topic])
            .args(["--partitions", &PARTITIONS.to_string()])
            .stdout(Stdio::null())
            .output()?;
        if !created.status.success() {
            bail!("creating topic {topic}: {}", String::from_utf8_lossy(&created.stderr));
        }
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).stdout(Stdio::null()).status();
    }
}

/// Reads the whole topic with a bare BaseConsumer, discarding it; the time from assignment to
/// the last message.
fn bare_consumer(bootstrap: &str, topic: &str, messages: u64) -> Result<Duration> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "nacre-bench-bare")
        // The fetch tuning nacred's consumers use, so the peer is not handicapped.
        .set("fetch.queue.backoff.ms", "10")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut list = TopicPartitionList::new();
    for k in 0..PARTITIONS {
        list.add_partition_offset(topic, i32::try_from(k)?, Offset::Beginning)?;
    }
    let start = Instant::now();
    consumer.assign(&list)?;
    let (mut count, mut bytes) = (0u64, 0usize);
    while count < messages {
        if start.elapsed() > READ_TIMEOUT {
            bail!("the bare consumer read {count} of {messages} messages of {topic} in {READ_TIMEOUT:?}");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m?;
            bytes += m.payload_len() + m.key().map_or(0, <[u8]>::len);
            count += 1;
        }
    }
    let elapsed = start.elapsed();
    std::hint::black_box(bytes);
    Ok(elapsed)
}

/// A fresh nacred in `dir` ingests `topic` as a source: the time until every partition is
/// applied, and until a clean stop after it has flushed everything.
fn ingest(ctx: &Context, dir: &Path, bootstrap: &str, topic: &str, messages: u64) -> Result<(Duration, Duration)> {
    let mut nacred = Nacred::start_configured(&ctx.nacred, dir, Some(&format!("partitions = {PARTITIONS}\n")))?;
    let nacre = |args: &[&str]| -> Result<()> {
        let out = Command::new(&ctx.nacre).args(["--addr", &nacred.native.to_string()]).args(args).output()?;
        if !out.status.success() {
            bail!("nacre {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    nacre(&["table", "create", TABLE])?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = runtime.block_on(nacred.client())?;
    let start = Instant::now();
    nacre(&["source", "add", TABLE, "--topic", topic, "--brokers", bootstrap])?;
    loop {
        let stats = runtime.block_on(client.stats())?;
        if applied(&stats) >= messages {
            break;
        }
        if start.elapsed() > READ_TIMEOUT {
            bail!("nacred applied {} of {messages} messages of {topic} in {READ_TIMEOUT:?}", applied(&stats));
        }
        // One stats request on an open connection: fifty a second cost nacred little and time
        // the catch-up to within 1% of a full run's few seconds.
        std::thread::sleep(Duration::from_millis(20));
    }
    let applied_after = start.elapsed();
    drop(client);
    nacred.stop().with_context(|| format!("nacred's log: {}", dir.join("nacred.log").display()))?;
    Ok((applied_after, start.elapsed()))
}

/// Messages applied: every Kafka partition's furthest `kafka_next_offset`, summed (one source,
/// one topic, offsets from 0).
fn applied(stats: &[nacre_wire::Stat]) -> u64 {
    let mut furthest: BTreeMap<String, u64> = BTreeMap::new();
    for stat in stats {
        let Some(name) = LabelledName::parse(&stat.name) else { continue };
        if name.base != "kafka_next_offset" {
            continue;
        }
        let partition = name.labels.get("kafka_partition").cloned().unwrap_or_default();
        let entry = furthest.entry(partition).or_default();
        *entry = (*entry).max(stat.value);
    }
    furthest.values().sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::Stat;

    fn stat(name: &str, value: u64) -> Stat {
        Stat { name: name.to_owned(), shard: Some(0), partition: None, value }
    }

    #[test]
    fn applied_sums_each_partitions_furthest_offset() {
        let stats = [
            stat(r#"kafka_next_offset{source="events.a",topic="a",kafka_partition="0"}"#, 10),
            // A stale report of partition 0 (another shard's, before a reassignment).
            stat(r#"kafka_next_offset{source="events.a",topic="a",kafka_partition="0"}"#, 4),
            stat(r#"kafka_next_offset{source="events.a",topic="a",kafka_partition="1"}"#, 7),
            stat(r#"kafka_lag{source="events.a",topic="a",kafka_partition="1"}"#, 1000),
            stat("writes_total", 99),
        ];
        assert_eq!(applied(&stats), 17);
        assert_eq!(applied(&[]), 0);
    }
}
