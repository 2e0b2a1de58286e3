//! nacred's Kafka ingestion against a bare librdkafka consumer, same broker, same topic, same
//! run. One topic is produced once (by default 5,000,000 messages of 16-byte keys and 100-byte
//! values, partitioned with Nacre's partitioner over as many Kafka partitions as the store has),
//! then:
//!
//! 1. a bare rdkafka `BaseConsumer`, assigned every partition from the beginning, reads it all
//!    and discards it;
//! 2. nacred (release build, fresh data directory) gets the topic as a source of a table, through
//!    `nacre source add`, and ingests it: timed until every partition's applied offset reaches
//!    the end (lag 0), and again until a clean stop has flushed it all to segment files.
//!
//! Both rates and Nacre/bare are printed; the target is at least 0.8. The machine is shared
//! with the broker and the producer, so only the ratio within one run means anything.
//!
//! The broker is `kafka/broker.sh` on loopback (fetched and started here) unless `--brokers`
//! names one. nacred and nacre are the release binaries next to this one
//! (`cargo build --release -p nacre-daemon -p nacre-bench`).

use anyhow::{Context, Result, bail};
use clap::Parser;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "nacred's Kafka ingestion vs a bare librdkafka consumer, same topic, same run")]
struct Args {
    /// Messages to produce.
    #[arg(long, default_value_t = 5_000_000)]
    messages: u64,
    /// Key size, bytes.
    #[arg(long, default_value_t = 16)]
    key_bytes: usize,
    /// Value size, bytes.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Kafka partitions of the topic, and the store's partition count (aligned).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// nacred's shards (--cores); 0 = one per core.
    #[arg(long, default_value_t = 0)]
    cores: usize,
    /// An existing broker; default: start kafka/broker.sh on a free loopback port.
    #[arg(long)]
    brokers: Option<String>,
    /// Working directory (broker data, nacred data; ext4 or xfs for O_DIRECT); emptied first.
    #[arg(long, default_value = "/var/tmp/nacre-bench-kafka")]
    dir: PathBuf,
    /// nacred's own protocol address (it also takes the next `cores` ports).
    #[arg(long, default_value = "127.0.0.1:27270")]
    listen: SocketAddr,
    /// nacred's `kafka.prefetch_kbytes` (librdkafka's `queued.max.messages.kbytes` per consumer);
    /// default: nacred's own default.
    #[arg(long)]
    prefetch_kbytes: Option<u64>,
    /// A librdkafka setting for nacred's source (`nacre source add --set KEY=VALUE`); repeatable.
    #[arg(long = "source-set")]
    source_settings: Vec<String>,
    /// Longest either side may take to read the topic.
    #[arg(long, default_value = "20m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The topic and table.
const TOPIC: &str = "bench";

/// A child process killed when dropped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            // Fails only if it already exited.
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The broker script's broker, stopped when dropped.
struct Broker {
    script: PathBuf,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(&self.script).arg("stop").arg(&self.dir).status();
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let here = std::env::current_exe()?.parent().context("this binary's directory")?.to_path_buf();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir).with_context(|| format!("emptying {}", args.dir.display()))?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let script = repo.join("kafka").join("broker.sh");
    let (brokers, _broker) = match &args.brokers {
        Some(b) => (b.clone(), None),
        None => {
            let (port, controller) = (free_port()?, free_port()?);
            let dir = args.dir.join("broker");
            let status = Command::new("bash")
                .arg(&script)
                .args(["start", &dir.display().to_string(), &port.to_string(), &controller.to_string()])
                .stdout(Stdio::null())
                .status()?;
            if !status.success() {
                bail!("kafka/broker.sh start failed ({status})");
            }
            (format!("127.0.0.1:{port}"), Some(Broker { script: script.clone(), dir }))
        }
    };
    let created = Command::new("bash")
        .arg(&script)
        .args(["topics", "--bootstrap-server", &brokers, "--create", "--topic", TOPIC])
        .args(["--partitions", &args.partitions.to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !created.success() {
        bail!("creating topic {TOPIC} failed ({created})");
    }
    let produced = produce(&args, &brokers)?;
    println!(
        "produced {} messages ({}-byte keys, {}-byte values) to {} partitions in {:.1}s",
        args.messages,
        args.key_bytes,
        args.value_bytes,
        args.partitions,
        produced.as_secs_f64()
    );
    let bare = bare_consumer(&args, &brokers)?;
    let bare_rate = args.messages as f64 / bare.as_secs_f64();
    println!("bare rdkafka BaseConsumer: {:.1}s, {bare_rate:.0} msg/s", bare.as_secs_f64());
    let (caught_up, flushed) = nacred_ingest(&args, &here, &brokers)?;
    let caught_up_rate = args.messages as f64 / caught_up.as_secs_f64();
    let flushed_rate = args.messages as f64 / flushed.as_secs_f64();
    println!("nacred, until lag 0: {:.1}s, {caught_up_rate:.0} msg/s", caught_up.as_secs_f64());
    println!("nacred, until flushed (clean stop): {:.1}s, {flushed_rate:.0} msg/s", flushed.as_secs_f64());
    println!();
    println!("| | msg/s | Nacre/bare |");
    println!("| --- | --- | --- |");
    println!("| bare rdkafka BaseConsumer | {bare_rate:.0} | 1.00 |");
    println!("| nacred until lag 0 | {caught_up_rate:.0} | {:.2} |", caught_up_rate / bare_rate);
    println!("| nacred until flushed | {flushed_rate:.0} | {:.2} |", flushed_rate / bare_rate);
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Produces the topic: key `i` (zero-padded to the key size) to Nacre's partition of it.
fn produce(args: &Args, brokers: &str) -> Result<Duration> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("acks", "1")
        .create()?;
    let value: Vec<u8> = (0..args.value_bytes).map(|i| b'a' + (i % 26) as u8).collect();
    let start = Instant::now();
    for i in 0..args.messages {
        let key = format!("{i:0width$}", width = args.key_bytes);
        let partition = nacre_wire::kafka_partition_of(key.as_bytes(), i32::try_from(args.partitions)?);
        let mut record = BaseRecord::to(TOPIC).key(key.as_bytes()).payload(value.as_slice()).partition(partition);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => bail!("producing: {e}"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    Ok(start.elapsed())
}

/// Reads the whole topic with a bare BaseConsumer, discarding it.
fn bare_consumer(args: &Args, brokers: &str) -> Result<Duration> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-bare")
        // The same fetch tuning nacred's consumers use, so the peer is not handicapped.
        .set("fetch.queue.backoff.ms", "10")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut list = TopicPartitionList::new();
    for k in 0..args.partitions {
        list.add_partition_offset(TOPIC, i32::try_from(k)?, Offset::Beginning)?;
    }
    let start = Instant::now();
    consumer.assign(&list)?;
    let (mut count, mut bytes) = (0u64, 0usize);
    while count < args.messages {
        if start.elapsed() > args.timeout {
            bail!("the bare consumer read {count} of {} messages in {:?}", args.messages, args.timeout);
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

/// Runs nacred on a fresh directory, adds the topic as a source, and times it until every
/// partition is applied, then until a clean stop has flushed it.
fn nacred_ingest(args: &Args, here: &Path, brokers: &str) -> Result<(Duration, Duration)> {
    let data = args.dir.join("nacred");
    let config = args.dir.join("nacred.toml");
    let mut text = format!("partitions = {}\n", args.partitions);
    if let Some(k) = args.prefetch_kbytes {
        text.push_str(&format!("[kafka]\nprefetch_kbytes = {k}\n"));
    }
    std::fs::write(&config, text)?;
    let log = std::fs::File::create(args.dir.join("nacred.log"))?;
    let mut nacred = Guard(Some(
        Command::new(here.join("nacred"))
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", &args.listen.to_string(), "--cores", &args.cores.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting nacred")?,
    ));
    let nacre = |rest: &[&str]| -> Result<String> {
        let out = Command::new(here.join("nacre")).args(["--addr", &args.listen.to_string()]).args(rest).output()?;
        if !out.status.success() {
            bail!("nacre {rest:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let up = Instant::now();
    while nacre(&["table", "create", TOPIC]).is_err() {
        if up.elapsed() > Duration::from_secs(30) {
            bail!("nacred did not come up; see {}", args.dir.join("nacred.log").display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    let mut add = vec!["source", "add", TOPIC, "--topic", TOPIC, "--brokers", brokers];
    for setting in &args.source_settings {
        add.extend(["--set", setting.as_str()]);
    }
    nacre(&add)?;
    let ends: u64 = args.messages;
    loop {
        if start.elapsed() > args.timeout {
            bail!("nacred did not catch up within {:?}", args.timeout);
        }
        let stats = nacre(&["stats", "--json", "--partitions"])?;
        let applied: u64 = stats
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["name"].as_str().is_some_and(|n| n.starts_with("kafka_next_offset{")))
            .filter_map(|v| v["value"].as_u64())
            .sum();
        if applied >= ends {
            break;
        }
        // Each look is a `nacre` process: looking too often would take CPU from nacred.
        std::thread::sleep(Duration::from_millis(100));
    }
    let caught_up = start.elapsed();
    let child = nacred.0.as_mut().context("nacred")?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(child.id())?), nix::sys::signal::Signal::SIGTERM)?;
    let status = child.wait()?;
    let flushed = start.elapsed();
    nacred.0 = None;
    if !status.success() {
        bail!("nacred's clean stop failed ({status})");
    }
    Ok((caught_up, flushed))
}
