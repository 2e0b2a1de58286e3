//! `nacred`'s configuration: every limit and default, read from a TOML file and overridden by
//! flags. The documented default file below *is* the default: `Config::default()` parses it, so
//! `nacred --print-default-config` can never drift from what the daemon does.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The default configuration file, with every setting documented.
pub const DEFAULT_CONFIG: &str = r#"# nacred configuration. Every setting is shown with its default.

# Data directory: initialised on first start, recovered after.
data_dir = "nacre-data"

# The shared port any client may use (SO_REUSEPORT on every shard). Shard i also listens on
# its own port, listen.port + 1 + i, which shard-aware clients use directly.
listen = "127.0.0.1:7070"

# Shards (one pinned glommio executor each). 0 = one per available core.
cores = 0

# Logical partitions, fixed when the data directory is initialised (later starts read it from
# the directory and ignore this).
partitions = 64

[limits]
# Largest frame a client may send, bytes (checked before anything is allocated).
max_frame_bytes = 8388608
# Connections per shard; more are refused at accept.
max_connections_per_shard = 1024
# Requests in flight per connection; a client sending more is not read until some complete.
max_in_flight_per_connection = 128
# Request bytes (whole frames) in flight per connection, and on one shard across all its
# connections; a connection over either waits (its socket is not read) until some complete.
# A connection's share keeps one client from taking the whole shard's budget.
max_in_flight_bytes_per_connection = 33554432
max_in_flight_bytes_per_shard = 268435456
# Cross-shard calls waiting in one shard's inbound queue from each other shard (forwarding).
forward_queue_depth = 1024
# Cross-shard calls from one other shard that a shard runs at once; past it, callers wait.
forward_calls_in_flight = 256
# Largest partition key, sort key and value, bytes.
max_partition_key_bytes = 1024
max_sort_key_bytes = 1024
max_value_bytes = 1048576
# Largest write batch: entries and encoded bytes.
max_batch_entries = 10000
max_batch_bytes = 4194304
# How far in the future a client timestamp may be, milliseconds.
max_clock_skew_ms = 60000
# How far ahead of the timestamps it hands out each shard's hybrid clock persists its high-water
# mark, milliseconds (under data_dir/clock/). A restart resumes the clock above the mark, so it
# never hands out a timestamp at or below one already used, even with a wall clock set back.
# After a crash the clock may run up to this far ahead of the wall clock until it catches up;
# a clean stop stores the exact last reading. Must be below max_clock_skew_ms.
clock_persist_ahead_ms = 1000

[memory]
# Memtable bytes per shard before the largest memtable is flushed.
memtable_budget_bytes = 268435456
# Memtable bytes per shard, counting those frozen for a flush still under way, at which writes
# (and Kafka consumers) wait for a flush instead of growing memory. With kafka.poll_batch_bytes,
# at most 8 GiB (one memtable holds at most 16 GiB).
memtable_ceiling_bytes = 536870912
# How long a write waits under the ceiling before it fails with Busy, milliseconds.
write_stall_deadline_ms = 5000
# Block cache per partition, bytes.
block_cache_bytes_per_partition = 8388608

[wal]
# Every acknowledged async write is durable within this many milliseconds, plus one fdatasync
# (one periodic group commit per shard; a sync write or async_commit_bytes may make it durable
# sooner). 50 ms measured: 10 ms cost a fifth of pipelined async SET throughput, 200 ms gained
# nothing over 50. At most 1000.
async_commit_interval_ms = 50
# Pending bytes at which an async writer commits on the spot.
async_commit_bytes = 1048576
# Bytes pending plus being written per shard; writers past it wait. At most 1 GiB.
pending_limit_bytes = 67108864
# Size of one WAL file, preallocated; at least pending_limit_bytes.
file_bytes = 67108864

[compaction]
# Compact in the background: each shard keeps a queue of its partitions' planned merges and
# drains it in a low-share task queue. Off, runs pile up (for benchmarks and emergencies).
enabled = true
# Bytes per second one shard's compactions may read and write together: a merge waits whenever
# it is ahead of this rate, so its I/O is spread over its run. 0 is no limit.
io_bytes_per_sec = 67108864
# A tombstone (or expired value) is kept at least this long, milliseconds, before a bottommost
# compaction reclaims it; a write stamped before a reclaimed tombstone shows again.
tombstone_grace_ms = 86400000
# Half-life of each partition's heat (its decaying read and write rates), milliseconds.
heat_half_life_ms = 60000
# Operations per second (reads and writes) at which a partition counts as fully hot; every
# threshold below moves from its cold to its hot value as heat rises to this.
hot_ops_per_sec = 1000
# Most runs a partition keeps before a merge: hot (leveled-like) and cold (tiered-like). Of the
# windows of runs adjacent in age wide enough to get back under, the smallest merges.
hot_max_runs = 5
cold_max_runs = 12
# Fewest runs such a merge takes: cold partitions merge rarely, in big batches.
hot_merge_width = 2
cold_merge_width = 6
# Such a merge then takes in the next older run while that run is at most this percentage of
# the merge's bytes so far: a base not much bigger than the flushes above it merges with them
# at once instead of after they have been merged among themselves. 0 is never.
merge_extend_percent = 200
# Everything merges once the newer runs add up to this percentage of the oldest.
hot_size_ratio_percent = 200
cold_size_ratio_percent = 400
# A run is rewritten alone once this percentage of its versions is superseded.
space_pressure_percent = 50
# (How long a committed bulk load's segments are left as linked, so that a rollback shows
# again everything it superseded, is a table setting, rollback_window_ms: `nacre table create
# --rollback-window`, `nacre table alter --rollback-window`.)
# How often a shard with nothing queued looks for work, milliseconds.
check_interval_ms = 100

[shutdown]
# How long SIGTERM waits for in-flight requests before flushing anyway, milliseconds.
drain_deadline_ms = 10000

[diagnostics]
# Log a warning with the shard's stack whenever one of its task queues runs this long without
# yielding, milliseconds: a reactor stall, during which every request of the shard waits. 0 is
# off. On, each task queue switch arms a timer, and a stall interrupts the shard's thread with
# SIGUSR1 to sample its stack.
stall_report_ms = 0

[http]
# The HTTP endpoint's address: /metrics (OpenMetrics text), /health and /ready, served by a
# thread of its own. "" is off; for example "127.0.0.1:9464" (keep it on loopback or a private
# network: it has no authentication).
listen = ""

[lineage]
# OpenLineage RunEvents for each bulk link and rollback and each Kafka source added or removed,
# appended one JSON object per line to this file (created if missing; "" is off), for a
# metadata service's agent to ship.
file = ""
# And/or POSTed, one event a request as application/json, to this URL (an OpenLineage HTTP
# endpoint, such as Marquez's "http://127.0.0.1:5000/api/v1/lineage"; "" is off). http:// only.
url = ""
# How long one POST may take, milliseconds, before the event counts as failed.
post_timeout_ms = 5000
# The namespace of the events' jobs and datasets (the tables).
namespace = "nacre"
# Events waiting for the writer thread; past this an event is dropped and counted.
max_queued_events = 1024

[resp]
# The RESP (Redis protocol) door's address, shared by every shard (SO_REUSEPORT); "" is off.
listen = ""
# The table RESP keys live in; created at startup if missing (as are the prefix tables).
table = "redis"
# When a RESP write is acknowledged: "async" (applied, and durable within
# wal.async_commit_interval_ms) or "sync" (after the WAL's fdatasync).
durability = "async"
# Limits of one RESP command; a command over one is a protocol error that closes its connection.
max_args = 65536
max_bulk_bytes = 2097152
max_inline_bytes = 65536
max_command_bytes = 16777216
# Open SCAN cursors per shard; past this the least recently used is forgotten.
max_scan_cursors = 10000
# Encoded reply bytes one connection's pipeline may hold before they are written, and all RESP
# connections of one shard together; a connection over either waits (its socket is not read).
max_pending_reply_bytes_per_connection = 33554432
max_pending_reply_bytes_per_shard = 268435456

# Keys starting with a prefix live in that prefix's table instead (the longest prefix wins; the
# key is stored whole). For example: "session:" = "sessions"
[resp.prefixes]

[kafka]
# Messages one shard takes from a source's consumer per round, and their bytes (keys and
# values), before applying them together. A round may take a shard's memtables past their
# ceiling by at most its bytes, so this also bounds memory.
poll_batch_messages = 5000
poll_batch_bytes = 1048576
# How often a source commits positions that nothing in memory depends on, milliseconds.
checkpoint_interval_ms = 1000
# The longest a streamed version waits only in memory, milliseconds: at a checkpoint, a home
# partition holding one older than this is flushed, which commits its positions. A crash then
# replays at most about this much of a partition's messages (plus checkpoint_interval_ms).
max_replay_ms = 30000
# librdkafka's prefetch queue per consumer, KiB (its queued.max.messages.kbytes). With the
# memtable ceiling it bounds the memory a backlog can take.
prefetch_kbytes = 8192
# Skipped (bad) messages logged per source and shard per minute; the rest are only counted.
skip_log_per_minute = 60
# Sources registered at startup; `nacre source add` adds more at run time. For example:
#   [[kafka.sources]]
#   name = "clicks"                      # unique; lineage and stats name it
#   table = "clicks"                     # must exist
#   topics = ["clicks"]
#   brokers = "127.0.0.1:9092"
#   dead_letter_topic = "clicks-bad"     # optional: bad messages are copied there
#   settings = { "security.protocol" = "ssl" }   # passed to librdkafka as given
sources = []
"#;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// The shared port; shard ports follow it.
    pub listen: SocketAddr,
    /// Shards; 0 = one per core.
    pub cores: usize,
    /// Logical partitions for a new data directory.
    pub partitions: u32,
    /// Sizes and counts.
    pub limits: LimitsConfig,
    /// Memory budgets.
    pub memory: MemoryConfig,
    /// The write-ahead log.
    pub wal: WalConfig,
    /// Background compaction.
    pub compaction: CompactionConfig,
    /// Shutdown behaviour.
    pub shutdown: ShutdownConfig,
    /// What the daemon reports about itself.
    pub diagnostics: DiagnosticsConfig,
    /// The HTTP endpoint.
    pub http: HttpConfig,
    /// Lineage events.
    pub lineage: LineageConfig,
    /// The RESP door.
    pub resp: RespConfig,
    /// Kafka ingestion.
    pub kafka: KafkaConfig,
}

/// `[kafka]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct KafkaConfig {
    pub poll_batch_messages: usize,
    pub poll_batch_bytes: usize,
    pub checkpoint_interval_ms: u64,
    pub max_replay_ms: u64,
    pub prefetch_kbytes: u64,
    pub skip_log_per_minute: u32,
    pub sources: Vec<SourceConfig>,
}

/// One `[[kafka.sources]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct SourceConfig {
    pub name: String,
    pub table: String,
    pub topics: Vec<String>,
    pub brokers: String,
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, String>,
}

/// `[limits]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct LimitsConfig {
    pub max_frame_bytes: usize,
    pub max_connections_per_shard: usize,
    pub max_in_flight_per_connection: usize,
    pub max_in_flight_bytes_per_connection: usize,
    pub max_in_flight_bytes_per_shard: usize,
    pub forward_queue_depth: usize,
    pub forward_calls_in_flight: usize,
    pub max_partition_key_bytes: usize,
    pub max_sort_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_batch_entries: usize,
    pub max_batch_bytes: usize,
    pub max_clock_skew_ms: u64,
    pub clock_persist_ahead_ms: u64,
}

/// `[memory]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct MemoryConfig {
    pub memtable_budget_bytes: usize,
    pub memtable_ceiling_bytes: usize,
    pub write_stall_deadline_ms: u64,
    pub block_cache_bytes_per_partition: usize,
}

/// `[wal]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct WalConfig {
    pub async_commit_interval_ms: u64,
    pub async_commit_bytes: usize,
    pub pending_limit_bytes: usize,
    pub file_bytes: u64,
}

impl WalConfig {
    /// The WAL's options.
    pub fn options(&self) -> nacre_storage::WalOptions {
        nacre_storage::WalOptions {
            file_bytes: self.file_bytes,
            async_commit_bytes: self.async_commit_bytes,
            pending_limit_bytes: self.pending_limit_bytes,
        }
    }
}

/// `[compaction]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct CompactionConfig {
    pub enabled: bool,
    pub io_bytes_per_sec: u64,
    pub tombstone_grace_ms: u64,
    pub heat_half_life_ms: u64,
    pub hot_ops_per_sec: u64,
    pub hot_max_runs: usize,
    pub cold_max_runs: usize,
    pub hot_merge_width: usize,
    pub cold_merge_width: usize,
    pub merge_extend_percent: u32,
    pub hot_size_ratio_percent: u32,
    pub cold_size_ratio_percent: u32,
    pub space_pressure_percent: u32,
    pub check_interval_ms: u64,
}

impl CompactionConfig {
    /// The planner's policy.
    pub fn policy(&self) -> nacre_storage::compaction::Policy {
        nacre_storage::compaction::Policy {
            hot_ops_per_sec: self.hot_ops_per_sec as f64,
            hot_max_runs: self.hot_max_runs,
            cold_max_runs: self.cold_max_runs,
            hot_merge_width: self.hot_merge_width,
            cold_merge_width: self.cold_merge_width,
            merge_extend_ratio: f64::from(self.merge_extend_percent) / 100.0,
            hot_size_ratio: f64::from(self.hot_size_ratio_percent) / 100.0,
            cold_size_ratio: f64::from(self.cold_size_ratio_percent) / 100.0,
            space_pressure: f64::from(self.space_pressure_percent) / 100.0,
            ..nacre_storage::compaction::Policy::default()
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.hot_max_runs == 0 || self.cold_max_runs < self.hot_max_runs {
            return Err("compaction.hot_max_runs must be at least 1 and at most compaction.cold_max_runs".into());
        }
        if self.hot_merge_width < 2 || self.cold_merge_width < self.hot_merge_width {
            return Err("compaction.hot_merge_width must be at least 2 and at most compaction.cold_merge_width".into());
        }
        if self.hot_size_ratio_percent == 0 || self.cold_size_ratio_percent < self.hot_size_ratio_percent {
            return Err(
                "compaction.hot_size_ratio_percent must be at least 1 and at most compaction.cold_size_ratio_percent"
                    .into(),
            );
        }
        if self.space_pressure_percent == 0 || self.space_pressure_percent > 100 {
            return Err("compaction.space_pressure_percent must be between 1 and 100".into());
        }
        if self.hot_ops_per_sec == 0 || self.heat_half_life_ms == 0 || self.check_interval_ms == 0 {
            return Err("compaction.hot_ops_per_sec, heat_half_life_ms and check_interval_ms must be at least 1".into());
        }
        Ok(())
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct ShutdownConfig {
    pub drain_deadline_ms: u64,
}

/// `[diagnostics]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct DiagnosticsConfig {
    pub stall_report_ms: u64,
}

/// `[lineage]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct LineageConfig {
    pub file: String,
    pub url: String,
    pub post_timeout_ms: u64,
    pub namespace: String,
    pub max_queued_events: usize,
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct HttpConfig {
    pub listen: String,
}

impl HttpConfig {
    /// The endpoint's address, or `None` when it is off (or the address does not parse, which
    /// `Config::validate` refuses).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        if self.listen.is_empty() { None } else { self.listen.parse().ok() }
    }
}

/// `[resp]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs, reason = "documented in DEFAULT_CONFIG")]
pub struct RespConfig {
    pub listen: String,
    pub table: String,
    pub durability: String,
    pub max_args: usize,
    pub max_bulk_bytes: usize,
    pub max_inline_bytes: usize,
    pub max_command_bytes: usize,
    pub max_scan_cursors: usize,
    pub max_pending_reply_bytes_per_connection: usize,
    pub max_pending_reply_bytes_per_shard: usize,
    pub prefixes: std::collections::BTreeMap<String, String>,
}

impl RespConfig {
    /// The door's address, or `None` when it is off (or the address does not parse, which
    /// `Config::validate` refuses).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        if self.listen.is_empty() { None } else { self.listen.parse().ok() }
    }

    /// Every table the door's keys may live in: the default, then each prefix's, each once.
    pub fn table_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = vec![self.table.as_str()];
        for table in self.prefixes.values() {
            if !names.contains(&table.as_str()) {
                names.push(table);
            }
        }
        names
    }

    /// The durability of RESP writes.
    pub fn durability(&self) -> nacre_storage::Durability {
        if self.durability == "sync" { nacre_storage::Durability::Sync } else { nacre_storage::Durability::Async }
    }

    /// The request limits.
    pub fn limits(&self) -> crate::resp::parser::RespLimits {
        crate::resp::parser::RespLimits {
            max_args: self.max_args,
            max_bulk_bytes: self.max_bulk_bytes,
            max_inline_bytes: self.max_inline_bytes,
            max_command_bytes: self.max_command_bytes,
        }
    }

    fn validate(&self) -> Result<(), String> {
        if !self.listen.is_empty() && self.listen.parse::<SocketAddr>().is_err() {
            return Err(format!("resp.listen {:?} is not an address like 127.0.0.1:6379", self.listen));
        }
        if !matches!(self.durability.as_str(), "sync" | "async") {
            return Err(format!("resp.durability must be \"sync\" or \"async\", not {:?}", self.durability));
        }
        if self.max_args == 0 || self.max_bulk_bytes == 0 || self.max_inline_bytes == 0 || self.max_command_bytes == 0 {
            return Err("resp limits must be at least 1".into());
        }
        if self.table.is_empty() || self.prefixes.iter().any(|(p, t)| p.is_empty() || t.is_empty()) {
            return Err("resp.table and every resp.prefixes entry need a non-empty prefix and table".into());
        }
        at_most("resp.max_bulk_bytes", self.max_bulk_bytes, "resp.max_command_bytes", self.max_command_bytes)?;
        at_most(
            "resp.max_command_bytes",
            self.max_command_bytes,
            "resp.max_pending_reply_bytes_per_connection",
            self.max_pending_reply_bytes_per_connection,
        )?;
        at_most(
            "resp.max_pending_reply_bytes_per_connection",
            self.max_pending_reply_bytes_per_connection,
            "resp.max_pending_reply_bytes_per_shard",
            self.max_pending_reply_bytes_per_shard,
        )
    }
}

impl Default for Config {
    fn default() -> Self {
        toml::from_str(DEFAULT_CONFIG).expect("the built-in default configuration parses")
    }
}

impl Config {
    /// Reads a configuration file; settings it omits keep their defaults, and a setting it does
    /// not know is refused (a removed one, saying what took its place).
    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        let mut merged: toml::Table = toml::from_str(DEFAULT_CONFIG).expect("the default parses");
        let given: toml::Table = toml::from_str(text)?;
        if given.get("compaction").and_then(|c| c.get("bulk_rollback_window_ms")).is_some() {
            return Err(serde::de::Error::custom(
                "compaction.bulk_rollback_window_ms is no longer a daemon setting: each table has its own \
                 rollback_window_ms (default 24 h; `nacre table alter TABLE --rollback-window DURATION`); \
                 remove it from the configuration",
            ));
        }
        merge(&mut merged, given);
        // The path names the setting at fault: `memory.memtable_budget_bytes: invalid type ...`.
        serde_path_to_error::deserialize(toml::Value::Table(merged))
            .map_err(|e| serde::de::Error::custom(format!("{}: {}", e.path(), e.inner())))
    }

    /// The port of shard `shard`.
    pub fn shard_port(&self, shard: usize) -> u16 {
        let port = usize::from(self.listen.port()) + 1 + shard;
        u16::try_from(port).expect("validated: shard ports fit below 65536")
    }

    /// The engine limits the configuration sets.
    pub fn engine_limits(&self) -> nacre_storage::Limits {
        let l = &self.limits;
        nacre_storage::Limits {
            max_partition_key_bytes: l.max_partition_key_bytes,
            max_sort_key_bytes: l.max_sort_key_bytes,
            max_value_bytes: l.max_value_bytes,
            max_batch_bytes: l.max_batch_bytes,
            max_batch_entries: l.max_batch_entries,
        }
    }

    /// How the cross-shard mesh is bounded.
    pub fn mesh_limits(&self) -> crate::mesh::MeshLimits {
        crate::mesh::MeshLimits {
            queue_depth: self.limits.forward_queue_depth,
            calls_in_flight_per_peer: self.limits.forward_calls_in_flight,
        }
    }

    /// Checks settings that depend on each other, naming the settings at fault.
    pub fn validate(&self, shards: usize) -> Result<(), String> {
        self.validate_sizes()?;
        if usize::from(self.listen.port()) + shards >= usize::from(u16::MAX) {
            return Err(format!("listen port {} leaves no room for {shards} shard ports after it", self.listen.port()));
        }
        if self.partitions == 0 {
            return Err("partitions must be at least 1".into());
        }
        if self.memory.memtable_ceiling_bytes < self.memory.memtable_budget_bytes {
            return Err("memory.memtable_ceiling_bytes must be at least memory.memtable_budget_bytes".into());
        }
        // One partition's memtable can take all of its shard's ceiling, and a Kafka round up to
        // its bytes past it.
        let most = nacre_storage::memtable::MAX_MEMTABLE_BYTES / 2;
        if self.memory.memtable_ceiling_bytes.saturating_add(self.kafka.poll_batch_bytes) > most {
            return Err(format!(
                "memory.memtable_ceiling_bytes plus kafka.poll_batch_bytes must be at most {most} (8 GiB): one \
                 memtable holds at most {} bytes",
                nacre_storage::memtable::MAX_MEMTABLE_BYTES
            ));
        }
        if self.limits.max_partition_key_bytes > usize::from(u16::MAX)
            || self.limits.max_sort_key_bytes > usize::from(u16::MAX)
        {
            return Err("keys are at most 65535 bytes".into());
        }
        self.resp.validate()?;
        if self.lineage.namespace.is_empty() || self.lineage.max_queued_events == 0 {
            return Err("lineage.namespace must not be empty and lineage.max_queued_events must be at least 1".into());
        }
        if !self.lineage.url.is_empty() && !self.lineage.url.starts_with("http://") {
            return Err(format!("lineage.url {:?} must be an http:// URL (https is not supported)", self.lineage.url));
        }
        if self.lineage.post_timeout_ms == 0 {
            return Err("lineage.post_timeout_ms must be at least 1".into());
        }
        if !self.http.listen.is_empty() && self.http.listen_addr().is_none() {
            return Err(format!("http.listen {:?} is not an address like 127.0.0.1:9464", self.http.listen));
        }
        self.compaction.validate()?;
        if self.kafka.poll_batch_messages == 0
            || self.kafka.poll_batch_bytes == 0
            || self.kafka.checkpoint_interval_ms == 0
            || self.kafka.max_replay_ms == 0
        {
            return Err(
                "kafka.poll_batch_messages, poll_batch_bytes, checkpoint_interval_ms and max_replay_ms must be at least 1".into()
            );
        }
        if let Some(resp) = self.resp.listen_addr()
            && (resp.port() == self.listen.port() || (1..=shards).any(|i| self.shard_port(i - 1) == resp.port()))
            && (resp.ip() == self.listen.ip() || resp.ip().is_unspecified() || self.listen.ip().is_unspecified())
        {
            return Err(format!("resp.listen {resp} collides with the native ports {} and after", self.listen));
        }
        Ok(())
    }
}

impl Config {
    /// value <= batch <= frame <= a connection's bytes in flight <= a shard's; batch <= the
    /// WAL's pending limit <= its file; every count at least 1.
    fn validate_sizes(&self) -> Result<(), String> {
        let l = &self.limits;
        at_most("limits.max_value_bytes", l.max_value_bytes, "limits.max_batch_bytes", l.max_batch_bytes)?;
        at_most("limits.max_batch_bytes", l.max_batch_bytes, "limits.max_frame_bytes", l.max_frame_bytes)?;
        at_most(
            "limits.max_frame_bytes",
            l.max_frame_bytes,
            "limits.max_in_flight_bytes_per_connection",
            l.max_in_flight_bytes_per_connection,
        )?;
        at_most(
            "limits.max_in_flight_bytes_per_connection",
            l.max_in_flight_bytes_per_connection,
            "limits.max_in_flight_bytes_per_shard",
            l.max_in_flight_bytes_per_shard,
        )?;
        at_most("limits.max_batch_bytes", l.max_batch_bytes, "wal.pending_limit_bytes", self.wal.pending_limit_bytes)?;
        for (name, value) in [
            ("limits.max_connections_per_shard", l.max_connections_per_shard),
            ("limits.max_in_flight_per_connection", l.max_in_flight_per_connection),
            ("limits.forward_queue_depth", l.forward_queue_depth),
            ("limits.forward_calls_in_flight", l.forward_calls_in_flight),
            ("limits.max_batch_entries", l.max_batch_entries),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if l.clock_persist_ahead_ms < 10 || l.clock_persist_ahead_ms >= l.max_clock_skew_ms {
            return Err(format!(
                "limits.clock_persist_ahead_ms ({}) must be at least 10 and below limits.max_clock_skew_ms ({}): a \
                 clock resumed after a crash runs up to that far ahead, and its writes must pass the skew bound",
                l.clock_persist_ahead_ms, l.max_clock_skew_ms
            ));
        }
        if !(1..=MAX_ASYNC_COMMIT_INTERVAL_MS).contains(&self.wal.async_commit_interval_ms) {
            return Err(format!(
                "wal.async_commit_interval_ms must be 1 to {MAX_ASYNC_COMMIT_INTERVAL_MS}, not {}",
                self.wal.async_commit_interval_ms
            ));
        }
        self.wal.options().validate().map_err(|e| format!("wal: {e}"))
    }
}

/// The longest durability window an async write may be given, milliseconds.
pub const MAX_ASYNC_COMMIT_INTERVAL_MS: u64 = 1_000;

/// `Err` naming both settings unless `small <= large`.
fn at_most(small_name: &str, small: usize, large_name: &str, large: usize) -> Result<(), String> {
    if small <= large { Ok(()) } else { Err(format!("{small_name} ({small}) must be at most {large_name} ({large})")) }
}

fn merge(base: &mut toml::Table, given: toml::Table) {
    for (k, v) in given {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(g)) => merge(b, g),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_packaged_configuration_parses_and_is_valid() {
        let config = Config::from_toml(include_str!("../../packaging/nacred.toml")).expect("parses");
        assert_eq!(config.data_dir, std::path::PathBuf::from("/var/lib/nacre"));
        assert_eq!(config.http.listen_addr(), Some("127.0.0.1:9464".parse().expect("an address")));
        config.validate(2).expect("valid");
    }

    #[test]
    fn a_bad_http_address_is_named() {
        let config = Config::from_toml("[http]\nlisten = \"localhost\"\n").expect("parses");
        let refused = config.validate(1).expect_err("refused");
        assert!(refused.contains("http.listen \"localhost\""), "{refused}");
    }

    #[test]
    fn the_default_file_is_the_default_and_partial_files_keep_defaults() {
        let c = Config::default();
        assert_eq!(c.partitions, 64);
        assert_eq!(c.listen.port(), 7070);
        let partial = Config::from_toml("cores = 2\n[memory]\nwrite_stall_deadline_ms = 10\n").expect("parses");
        assert_eq!(partial.cores, 2);
        assert_eq!(partial.memory.write_stall_deadline_ms, 10);
        assert_eq!(partial.memory.memtable_budget_bytes, c.memory.memtable_budget_bytes);
        assert!(Config::from_toml("no_such_setting = 1").is_err(), "unknown settings are refused");
    }

    #[test]
    fn the_removed_rollback_window_setting_is_refused_naming_the_table_setting() {
        let e = Config::from_toml("[compaction]\nbulk_rollback_window_ms = 0\n").expect_err("removed").to_string();
        assert!(e.contains("compaction.bulk_rollback_window_ms") && e.contains("rollback_window_ms"), "{e}");
        assert!(e.contains("--rollback-window"), "{e}");
    }

    #[test]
    fn the_default_configuration_is_valid_and_bad_relations_name_their_settings() {
        Config::default().validate(2).expect("the default is valid");
        let refused = |text: &str, names: &[&str]| {
            let c = Config::from_toml(text).expect("parses");
            let e = c.validate(2).expect_err(text);
            for name in names {
                assert!(e.contains(name), "{text}: {e:?} does not name {name}");
            }
        };
        refused("[limits]\nmax_value_bytes = 5000000\n", &["limits.max_value_bytes", "limits.max_batch_bytes"]);
        refused("[limits]\nmax_frame_bytes = 1000\n", &["limits.max_batch_bytes", "limits.max_frame_bytes"]);
        refused(
            "[limits]\nmax_in_flight_bytes_per_shard = 1000000\n",
            &["limits.max_in_flight_bytes_per_connection", "limits.max_in_flight_bytes_per_shard"],
        );
        refused("[wal]\npending_limit_bytes = 1000\n", &["limits.max_batch_bytes", "wal.pending_limit_bytes"]);
        refused("[memory]\nmemtable_ceiling_bytes = 17179869184\n", &["memory.memtable_ceiling_bytes", "8 GiB"]);
        refused("[wal]\nasync_commit_interval_ms = 0\n", &["wal.async_commit_interval_ms"]);
        refused("[wal]\nasync_commit_interval_ms = 5000\n", &["wal.async_commit_interval_ms"]);
        refused("[wal]\nfile_bytes = 1048576\n", &["wal:", "file_bytes"]);
        refused("[limits]\nforward_calls_in_flight = 0\n", &["limits.forward_calls_in_flight"]);
        refused(
            "[resp]\nmax_pending_reply_bytes_per_shard = 1\n",
            &["resp.max_pending_reply_bytes_per_connection", "resp.max_pending_reply_bytes_per_shard"],
        );
    }

    #[test]
    fn kafka_sources_come_from_an_array_of_tables_with_optional_fields() {
        let text = "[[kafka.sources]]\nname = \"a\"\ntable = \"t\"\ntopics = [\"x\", \"y\"]\nbrokers = \"b:9092\"\n\
                    [kafka.sources.settings]\n\"security.protocol\" = \"ssl\"\n\
                    [[kafka.sources]]\nname = \"b\"\ntable = \"t\"\ntopics = [\"z\"]\nbrokers = \"b:9092\"\n\
                    dead_letter_topic = \"bad\"\n";
        let c = Config::from_toml(text).expect("parses");
        assert_eq!(c.kafka.sources.len(), 2);
        assert_eq!(c.kafka.sources[0].topics, ["x", "y"]);
        assert_eq!(c.kafka.sources[0].settings.get("security.protocol").map(String::as_str), Some("ssl"));
        assert_eq!(c.kafka.sources[1].dead_letter_topic.as_deref(), Some("bad"));
        assert_eq!(c.kafka.poll_batch_messages, Config::default().kafka.poll_batch_messages);
        assert!(Config::default().kafka.sources.is_empty());
        assert!(Config::from_toml("[[kafka.sources]]\nname = \"a\"\n").is_err(), "a source needs its fields");
    }
}
