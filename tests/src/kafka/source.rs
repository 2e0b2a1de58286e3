//! Kafka sources as the daemon knows them: the configuration file's `[[kafka.sources]]`
//! section a test writes, `nacre source ...` run against a server, `source list --json` parsed,
//! and the rule that turns a stream id and a Kafka partition into a version's `source_id`.

use crate::server::{Server, ServerOptions, nacre_binary};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Output};
use std::time::Duration;

/// Longest a SIGTERMed daemon may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest one `nacre` command may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The `fetch.wait.max.ms` every test source sets: the longest a fetch waits for more data, so
/// a test waiting for a small tail is not held up by librdkafka's 500 ms default.
const FETCH_WAIT_MAX_MS: &str = "50";

/// One `[[kafka.sources]]` entry of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// The source's unique name.
    pub name: String,
    /// The table it feeds.
    pub table: String,
    /// The topics it consumes.
    pub topics: Vec<String>,
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Where bad messages are copied, if anywhere.
    pub dead_letter_topic: Option<String>,
}

impl SourceConfig {
    /// A source `name` feeding `table` from `topics` on `brokers`, with no dead-letter topic.
    pub fn new(name: &str, table: &str, topics: &[&str], brokers: &str) -> SourceConfig {
        SourceConfig {
            name: name.to_owned(),
            table: table.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            brokers: brokers.to_owned(),
            dead_letter_topic: None,
        }
    }

    /// The same with a dead-letter topic.
    pub fn dead_letter_topic(mut self, topic: &str) -> SourceConfig {
        self.dead_letter_topic = Some(topic.to_owned());
        self
    }

    /// Its TOML: the `[[kafka.sources]]` table and its `settings`, to append to a file that
    /// names no other `kafka.sources` after it.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        let topics: Vec<String> = self.topics.iter().map(|t| quoted(t)).collect();
        let _ = writeln!(out, "[[kafka.sources]]");
        let _ = writeln!(out, "name = {}", quoted(&self.name));
        let _ = writeln!(out, "table = {}", quoted(&self.table));
        let _ = writeln!(out, "topics = [{}]", topics.join(", "));
        let _ = writeln!(out, "brokers = {}", quoted(&self.brokers));
        if let Some(topic) = &self.dead_letter_topic {
            let _ = writeln!(out, "dead_letter_topic = {}", quoted(topic));
        }
        let _ = writeln!(out, "[kafka.sources.settings]");
        let _ = writeln!(out, "\"fetch.wait.max.ms\" = {}", quoted(FETCH_WAIT_MAX_MS));
        out
    }
}

/// A TOML basic string: JSON's string syntax is a subset of it for the plain names tests use.
fn quoted(text: &str) -> String {
    assert!(text.chars().all(|c| c.is_ascii_graphic() && c != '\\'), "a plain name: {text:?}");
    Value::String(text.to_owned()).to_string()
}

/// One source as `nacre source list --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Its unique name.
    pub name: String,
    /// The table it feeds.
    pub table: String,
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Each topic with its stream id.
    pub topics: Vec<(String, u32)>,
    /// The dead-letter topic, if any.
    pub dead_letter_topic: Option<String>,
    /// The librdkafka settings it passes on.
    pub settings: BTreeMap<String, String>,
    /// Removed: listed only so old lineage still resolves.
    pub retired: bool,
}

impl SourceInfo {
    /// Parses one line of `source list --json`.
    ///
    /// # Panics
    ///
    /// If a field is missing or of the wrong type.
    pub fn from_json(line: &Value) -> SourceInfo {
        let text = |field: &str| -> String {
            line[field].as_str().unwrap_or_else(|| panic!("{field} is not a string in {line}")).to_owned()
        };
        let topics = line["topics"]
            .as_array()
            .unwrap_or_else(|| panic!("topics is not an array in {line}"))
            .iter()
            .map(|t| {
                let topic = t["topic"].as_str().unwrap_or_else(|| panic!("a topic without a name in {line}"));
                let id = t["stream_id"].as_u64().unwrap_or_else(|| panic!("a topic without a stream_id in {line}"));
                (topic.to_owned(), u32::try_from(id).expect("stream ids are small"))
            })
            .collect();
        let dead_letter_topic = match &line["dead_letter_topic"] {
            Value::Null => None,
            Value::String(t) => Some(t.clone()),
            other => panic!("dead_letter_topic is {other} in {line}"),
        };
        let settings = line["settings"]
            .as_object()
            .unwrap_or_else(|| panic!("settings is not an object in {line}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_else(|| panic!("setting {k} is {v}")).to_owned()))
            .collect();
        let retired = line["retired"].as_bool().unwrap_or_else(|| panic!("retired is not a bool in {line}"));
        SourceInfo {
            name: text("name"),
            table: text("table"),
            brokers: text("brokers"),
            topics,
            dead_letter_topic,
            settings,
            retired,
        }
    }

    /// The stream id of `topic`.
    ///
    /// # Panics
    ///
    /// If the source does not consume `topic`.
    pub fn stream_id(&self, topic: &str) -> u32 {
        let found = self.topics.iter().find(|(t, _)| t == topic);
        found.unwrap_or_else(|| panic!("source {} does not consume {topic}: {self:?}", self.name)).1
    }
}

/// The `source_id` of a version streamed from Kafka partition `kafka_partition` of the topic
/// with stream id `stream_id`: `(stream_id << 16) | kafka_partition`.
///
/// # Panics
///
/// If either part does not fit its 16 bits.
pub fn stream_source_id(stream_id: u32, kafka_partition: i32) -> u32 {
    let partition = u32::try_from(kafka_partition).expect("a partition number");
    assert!(stream_id < 1 << 16 && partition < 1 << 16, "stream {stream_id}, partition {partition}");
    (stream_id << 16) | partition
}

/// Starts nacred with the configuration file `base`, creates `table` with `settings` through
/// it, then restarts it with `sources` appended ([`restart_with_sources`]): a daemon whose
/// sources feed a table it created itself.
///
/// # Panics
///
/// If the daemon does not start, refuses the table, or does not come back.
pub fn start_with_table_and_sources(
    base: &str,
    table: &str,
    settings: nacre_wire::TableSettings,
    sources: &[SourceConfig],
) -> Server {
    let mut server = Server::start_with(ServerOptions { config: Some(base.to_owned()), ..ServerOptions::default() });
    crate::runtime()
        .block_on(async { server.client().await.create_table(table, settings).await.expect("create_table") });
    restart_with_sources(&mut server, base, sources);
    server
}

/// Restarts `server` (SIGTERM, then a start) with the configuration file `base` followed by
/// `sources`: how a test gives the daemon sources that feed tables it first created through
/// the daemon itself.
///
/// # Panics
///
/// If the daemon does not stop cleanly or does not come back.
pub fn restart_with_sources(server: &mut Server, base: &str, sources: &[SourceConfig]) {
    let mut text = base.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for source in sources {
        text.push_str(&source.toml());
    }
    server.set_config(Some(text));
    let status = server.sigterm_and_wait(STOP_TIMEOUT);
    assert!(status.success(), "nacred exited with {status} on SIGTERM\n{}", server.log_tail());
    server.restart();
}

/// Runs the `nacre` CLI against `server` with `args`. The caller checks the status.
///
/// # Panics
///
/// If the binary is missing or the command runs longer than a minute.
pub fn nacre(server: &Server, args: &[&str]) -> Output {
    let addr = server.addr().to_string();
    let mut command = Command::new(nacre_binary());
    command.args(["--addr", &addr, "--timeout", "30s"]).args(args).env("NO_COLOR", "1");
    crate::program::run(&mut command, b"", CLI_TIMEOUT)
}

/// Every source `nacre source list --json` prints, retired ones included.
///
/// # Panics
///
/// If the command fails or prints something else than one source object per line.
pub fn source_list(server: &Server) -> Vec<SourceInfo> {
    let out = nacre(server, &["source", "list", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "nacre source list: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("source list line {line:?}: {e}"));
            SourceInfo::from_json(&value)
        })
        .collect()
}

/// The one source named `name` that is not retired.
///
/// # Panics
///
/// If there is none, or more than one.
pub fn active_source(server: &Server, name: &str) -> SourceInfo {
    let sources = source_list(server);
    let mut active = sources.iter().filter(|s| s.name == name && !s.retired);
    let found = active.next().unwrap_or_else(|| panic!("no active source {name}: {sources:#?}")).clone();
    assert!(active.next().is_none(), "two active sources named {name}: {sources:#?}");
    found
}
