//! A real single-node Apache Kafka broker (KRaft, no ZooKeeper) for one test: started by
//! `kafka/broker.sh run` on two free loopback ports (the client listener and the controller)
//! and a fresh directory, ready once a metadata request lists it, and SIGKILLed with its whole
//! process group on drop, so no JVM outlives the test.
//!
//! The directory sits under `$NACRE_TEST_DIR`, like the daemon's. It holds the broker's own
//! directory `broker/` (its data and `broker.log`, which the JVM writes) and `run.log` (what the
//! script and the JVM print). It is removed when the test passes and kept when it fails; a
//! start or a test that fails prints the tails of both logs.
//!
//! One broker at a time per test binary (a process-wide lock, as for `Server`): a JVM is heavy
//! on the 2-core CI machine. A test starts its broker before its server, so the two locks are
//! always taken in the same order.

use super::{METADATA_TIMEOUT, metadata_client};
use crate::server::free_ports;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Longest a broker start may take: a cold JVM formats its storage and elects itself
/// controller, which takes tens of seconds on a loaded 2-core machine.
pub const BROKER_START_TIMEOUT: Duration = Duration::from_secs(90);

/// Longest a topic takes to be created and to have a leader for every partition.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

static SERIAL: Mutex<()> = Mutex::new(());

/// A running broker.
pub struct Broker {
    child: Option<Child>,
    /// Holds the directory; `None` once it was kept.
    dir: Option<tempfile::TempDir>,
    port: u16,
    _serial: MutexGuard<'static, ()>,
}

impl Broker {
    /// Starts a broker on free loopback ports and waits until it answers a metadata request.
    ///
    /// # Panics
    ///
    /// If `kafka/broker.sh` is missing, or the broker exits or is not ready within
    /// [`BROKER_START_TIMEOUT`] (the panic carries its log's tail).
    pub fn start() -> Broker {
        let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
        let script = repo_root().join("kafka").join("broker.sh");
        assert!(script.is_file(), "{} is missing: the Kafka tests start their broker with it", script.display());
        let dir = crate::server::test_dir("kafka-e2e-");
        let data = dir.path().join("broker");
        std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("creating {}: {e}", data.display()));
        // Two consecutive free ports: the client listener, then the controller's.
        let port = free_ports(1).port();
        let log_path = dir.path().join("run.log");
        let log = File::create(&log_path).unwrap_or_else(|e| panic!("creating {}: {e}", log_path.display()));
        let child = Command::new("bash")
            .arg(&script)
            .arg("run")
            .arg(&data)
            .arg(port.to_string())
            .arg((port + 1).to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("duplicating the log file"))
            .stderr(log)
            // Its own process group, so drop kills the script and the JVM together.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning bash {}: {e}", script.display()));
        let mut broker = Broker { child: Some(child), dir: Some(dir), port, _serial: serial };
        broker.wait_ready();
        broker
    }

    /// The `bootstrap.servers` value: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates `topic` with `partitions` partitions (replication 1) and waits until every
    /// partition has a leader.
    ///
    /// # Panics
    ///
    /// If the broker refuses, or the partitions have no leader within 30 s.
    pub fn create_topic(&self, topic: &str, partitions: usize) {
        let count = i32::try_from(partitions).expect("few partitions");
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().expect("a librdkafka admin client");
        let new = NewTopic::new(topic, count, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT)).request_timeout(Some(TOPIC_TIMEOUT));
        // The admin client polls on its own thread; any executor can wait for its answer.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let results = runtime
            .block_on(admin.create_topics([&new], &options))
            .unwrap_or_else(|e| panic!("creating topic {topic}: {e}\n{}", self.log_tail()));
        for result in results {
            if let Err((name, code)) = result {
                panic!("creating topic {name}: {code}\n{}", self.log_tail());
            }
        }
        self.wait_for_leaders(topic, partitions);
    }

    fn wait_for_leaders(&self, topic: &str, partitions: usize) {
        let client = metadata_client(&self.bootstrap());
        let deadline = Instant::now() + TOPIC_TIMEOUT;
        loop {
            let led = client.fetch_metadata(Some(topic), METADATA_TIMEOUT).ok().and_then(|metadata| {
                let t = metadata.topics().iter().find(|t| t.name() == topic)?;
                let ready = t.error().is_none()
                    && t.partitions().len() == partitions
                    && t.partitions().iter().all(|p| p.error().is_none() && p.leader() >= 0);
                ready.then_some(())
            });
            if led.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "topic {topic}'s {partitions} partitions have no leader after {TOPIC_TIMEOUT:?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a metadata request lists a broker, failing early if the process exits.
    fn wait_ready(&mut self) {
        let client = metadata_client(&self.bootstrap());
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("the broker was started");
            if let Some(status) = child.try_wait().expect("polling the broker") {
                self.child = None;
                panic!("the Kafka broker exited during start with {status}\n{}", self.log_tail());
            }
            let listed = client
                .fetch_metadata(None, Duration::from_secs(2))
                .is_ok_and(|metadata| !metadata.brokers().is_empty());
            if listed {
                return;
            }
            if Instant::now() >= deadline {
                self.kill();
                panic!("the Kafka broker was not ready within {BROKER_START_TIMEOUT:?}\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines of the broker's log and of what the script printed, headed by where
    /// each whole log is.
    pub fn log_tail(&self) -> String {
        let Some(dir) = &self.dir else { return String::new() };
        let mut out = String::new();
        for (path, lines) in [(dir.path().join("broker").join("broker.log"), 30), (dir.path().join("run.log"), 10)] {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = all[all.len().saturating_sub(lines)..].join("\n");
            out.push_str(&format!("--- last lines of {} ---\n{tail}\n", path.display()));
        }
        out.push_str("---");
        out
    }

    /// SIGKILLs the script's process group (the JVM included) and reaps the script.
    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let group = Pid::from_raw(i32::try_from(child.id()).expect("pids fit in i32"));
        // Fails only if the group is already gone.
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let tail = self.log_tail();
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("nacre-tests: keeping {} for inspection\n{tail}", kept.display());
            }
        }
    }
}

/// The repository's root: the directory above this crate's.
fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}
