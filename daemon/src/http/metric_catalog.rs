//! Every statistic the daemon reports, as a Prometheus metric: its stable name, type, unit and
//! help. A statistic's name is the daemon's (`nacre stats`); the metric's is `nacre_`, then
//! `metric`, then `_` and the unit, then `_total` for a counter. Scaled statistics (`_milli`, `_micros`, `_us`)
//! become metrics in base units. The same statistic name may be both a shard's and each of its
//! partitions' (`memtable_bytes`), and then they are two metrics, so that summing one never
//! counts a byte twice.

/// A metric's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Only goes up (until a restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le}`), `_count` and `_sum` statistics.
    Histogram,
}

/// A metric's unit, appended to its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A count, or a ratio: no suffix.
    None,
    /// `_bytes`.
    Bytes,
    /// `_seconds`.
    Seconds,
}

/// Whether the statistic is a shard's or one of its partitions'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Reported once per shard.
    Shard,
    /// Reported per partition (with the partition's number).
    Partition,
}

/// One statistic's metric.
#[derive(Debug)]
pub(crate) struct MetricSpec {
    /// The statistic's base name (before any labels; a histogram's, before `_bucket`).
    pub stat: &'static str,
    /// Shard or partition.
    pub scope: Scope,
    /// The metric's name without the `nacre_` prefix, the unit and `_total`.
    pub metric: &'static str,
    /// Type.
    pub kind: Kind,
    /// Unit.
    pub unit: Unit,
    /// Statistic units per metric unit: the statistic's value is divided by it (1e6 for a
    /// statistic in microseconds of a metric in seconds).
    pub per_unit: f64,
    /// Help text.
    pub help: &'static str,
}

const fn spec(
    stat: &'static str,
    scope: Scope,
    metric: &'static str,
    kind: Kind,
    unit: Unit,
    help: &'static str,
) -> MetricSpec {
    MetricSpec { stat, scope, metric, kind, unit, per_unit: 1.0, help }
}

const fn scaled(spec: MetricSpec, per_unit: f64) -> MetricSpec {
    MetricSpec { per_unit, ..spec }
}

use Kind::{Counter, Gauge, Histogram};
use Scope::{Partition, Shard};

/// The catalog. Adding a statistic means adding its line here; the metrics test fails on a
/// statistic without one.
pub(crate) const CATALOG: &[MetricSpec] = &[
    // Requests and connections.
    spec(
        "connections",
        Shard,
        "connections",
        Gauge,
        Unit::None,
        "Open client connections of the shard, native and RESP.",
    ),
    spec(
        "door_connections",
        Shard,
        "door_connections",
        Gauge,
        Unit::None,
        "Open client connections of the shard, by door (native, resp).",
    ),
    spec(
        "connections_refused_total",
        Shard,
        "connections_refused",
        Counter,
        Unit::None,
        "Connections closed at the door because the shard had limits.max_connections_per_shard open, by door.",
    ),
    spec(
        "requests_total",
        Shard,
        "requests",
        Counter,
        Unit::None,
        "Native requests the shard's clients sent, by kind and outcome (ok or the error code).",
    ),
    scaled(
        spec(
            "request_duration_us",
            Shard,
            "request_duration",
            Histogram,
            Unit::Seconds,
            "Time from a native request's decoding to its reply, by kind, on the shard the client is connected to (forwarding included).",
        ),
        1e6,
    ),
    spec(
        "resp_commands_total",
        Shard,
        "resp_commands",
        Counter,
        Unit::None,
        "RESP commands run, by command (a name counts its variants: ttl counts PTTL).",
    ),
    spec(
        "resp_command_outcomes_total",
        Shard,
        "resp_command_outcomes",
        Counter,
        Unit::None,
        "RESP commands that ran, by command and outcome (ok, or the error reply's code: err, noproto, wrongpass, other).",
    ),
    scaled(
        spec(
            "resp_command_duration_us",
            Shard,
            "resp_command_duration",
            Histogram,
            Unit::Seconds,
            "Time from a RESP command's parsing to its reply being ready, by command, on the shard the client is connected to (the owning shard's work and, in a pipeline, the commands ahead of it included).",
        ),
        1e6,
    ),
    spec(
        "resp_commands_refused_total",
        Shard,
        "resp_commands_refused",
        Counter,
        Unit::None,
        "RESP commands refused before running: unknown, or with bad arguments.",
    ),
    spec(
        "request_bytes_in_flight",
        Shard,
        "request_in_flight",
        Gauge,
        Unit::Bytes,
        "Bytes of native requests read and not yet answered.",
    ),
    spec(
        "request_bytes_in_flight_peak",
        Shard,
        "request_in_flight_peak",
        Gauge,
        Unit::Bytes,
        "Peak of request_in_flight_bytes since start.",
    ),
    spec(
        "resp_reply_bytes_pending",
        Shard,
        "resp_reply_pending",
        Gauge,
        Unit::Bytes,
        "Encoded RESP reply bytes not yet written.",
    ),
    spec(
        "resp_reply_bytes_pending_peak",
        Shard,
        "resp_reply_pending_peak",
        Gauge,
        Unit::Bytes,
        "Peak of resp_reply_pending_bytes since start.",
    ),
    spec(
        "forward_calls_in_flight",
        Shard,
        "forward_calls_in_flight",
        Gauge,
        Unit::None,
        "Calls from other shards running on this shard now.",
    ),
    spec(
        "forward_calls_in_flight_peak",
        Shard,
        "forward_calls_in_flight_peak",
        Gauge,
        Unit::None,
        "Most calls from one peer shard that ran at once since start.",
    ),
    spec(
        "forward_calls_in_flight_limit",
        Shard,
        "forward_calls_in_flight_limit",
        Gauge,
        Unit::None,
        "Calls from one peer shard allowed to run at once (limits.forward_calls_in_flight).",
    ),
    spec(
        "forward_calls_sent_total",
        Shard,
        "forward_calls_sent",
        Counter,
        Unit::None,
        "Calls this shard sent to other shards.",
    ),
    spec("allocations_total", Shard, "allocations", Counter, Unit::None, "Heap allocations on the shard's thread."),
    // Memory and the WAL.
    spec(
        "memtable_bytes",
        Shard,
        "shard_memtable",
        Gauge,
        Unit::Bytes,
        "Memtable bytes of all the shard's partitions.",
    ),
    spec(
        "memtable_peak_bytes",
        Shard,
        "shard_memtable_peak",
        Gauge,
        Unit::Bytes,
        "Peak of shard_memtable_bytes since start.",
    ),
    spec(
        "wal_pending_bytes",
        Shard,
        "wal_pending",
        Gauge,
        Unit::Bytes,
        "WAL bytes appended and not yet written and synced.",
    ),
    spec(
        "wal_pending_peak_bytes",
        Shard,
        "wal_pending_peak",
        Gauge,
        Unit::Bytes,
        "Peak of wal_pending_bytes since start.",
    ),
    spec(
        "wal_batches_total",
        Shard,
        "wal_batches",
        Counter,
        Unit::None,
        "WAL group commits written (each one write and one fdatasync).",
    ),
    spec(
        "wal_bytes_total",
        Shard,
        "wal_written",
        Counter,
        Unit::Bytes,
        "WAL batch bytes written; over wal_batches_total, the mean group-commit size.",
    ),
    scaled(
        spec(
            "wal_commit_micros_total",
            Shard,
            "wal_commit_duration",
            Counter,
            Unit::Seconds,
            "Time spent writing and fdatasyncing WAL batches; over wal_batches_total, the mean commit latency.",
        ),
        1e6,
    ),
    scaled(
        spec(
            "wal_durability_lag_micros",
            Shard,
            "wal_durability_lag",
            Gauge,
            Unit::Seconds,
            "How long the oldest WAL record not yet durable has waited (0 when all are): what a crash now would lose of async writes.",
        ),
        1e6,
    ),
    spec(
        "wal_durable_lsn",
        Shard,
        "wal_durable_lsn",
        Gauge,
        Unit::None,
        "The shard's greatest WAL sequence number known durable.",
    ),
    // Compaction, per shard.
    spec(
        "compaction_queue_length",
        Shard,
        "compaction_queue_length",
        Gauge,
        Unit::None,
        "Compactions planned and waiting on the shard.",
    ),
    spec(
        "compaction_paused_turns_total",
        Shard,
        "compaction_paused_turns",
        Counter,
        Unit::None,
        "Compaction turns that waited for memory or WAL pressure to pass.",
    ),
    // Bulk loads (link and rollback durations: request_duration_seconds{kind="bulk_link"}).
    spec(
        "bulk_loads",
        Shard,
        "bulk_loads",
        Gauge,
        Unit::None,
        "Bulk loads recorded, by state (preparing, committed, aborted, rolled_back); shard 0 reports.",
    ),
    spec(
        "lineage_events_total",
        Shard,
        "lineage_events",
        Counter,
        Unit::None,
        "Lineage events queued for the lineage file and URL (shard 0 reports the process's).",
    ),
    spec(
        "lineage_events_dropped_total",
        Shard,
        "lineage_events_dropped",
        Counter,
        Unit::None,
        "Lineage events dropped because lineage.max_queued_events were waiting.",
    ),
    spec(
        "lineage_events_failed_total",
        Shard,
        "lineage_events_failed",
        Counter,
        Unit::None,
        "Lineage events the writer could not deliver: the lineage file refused the write or the lineage URL the POST.",
    ),
    // Kafka.
    spec(
        "kafka_paused_total",
        Shard,
        "kafka_paused",
        Counter,
        Unit::None,
        "Times the shard paused its Kafka partitions at the memtable ceiling.",
    ),
    spec("kafka_applied_total", Shard, "kafka_applied", Counter, Unit::None, "Kafka messages applied, by source."),
    spec(
        "kafka_skipped_total",
        Shard,
        "kafka_skipped",
        Counter,
        Unit::None,
        "Kafka messages skipped as bad (logged, counted, dead-lettered if configured), by source.",
    ),
    spec(
        "kafka_dead_lettered_total",
        Shard,
        "kafka_dead_lettered",
        Counter,
        Unit::None,
        "Bad Kafka messages copied to the source's dead-letter topic.",
    ),
    spec(
        "kafka_dead_letter_failed_total",
        Shard,
        "kafka_dead_letter_failed",
        Counter,
        Unit::None,
        "Bad Kafka messages the dead-letter topic did not take.",
    ),
    spec(
        "kafka_forwarded_total",
        Shard,
        "kafka_forwarded",
        Counter,
        Unit::None,
        "Kafka messages applied on another shard (their key's partition lives there).",
    ),
    spec(
        "kafka_replayed_total",
        Shard,
        "kafka_replayed",
        Counter,
        Unit::None,
        "Kafka messages re-applied after a restart (already applied before it).",
    ),
    spec(
        "kafka_replay_bound_flushes_total",
        Shard,
        "kafka_replay_bound_flushes",
        Counter,
        Unit::None,
        "Flushes made so a crash replays at most kafka.max_replay_ms of a partition.",
    ),
    spec(
        "kafka_next_offset",
        Shard,
        "kafka_next_offset",
        Gauge,
        Unit::None,
        "The next offset the source will apply, by topic and Kafka partition.",
    ),
    spec(
        "kafka_lag",
        Shard,
        "kafka_lag",
        Gauge,
        Unit::None,
        "Messages between the source's next offset and the partition's high watermark.",
    ),
    // Partitions.
    spec("memtable_bytes", Partition, "memtable", Gauge, Unit::Bytes, "The partition's memtable bytes."),
    spec("segment_count", Partition, "segments", Gauge, Unit::None, "The partition's live segment files."),
    spec("segment_bytes", Partition, "segment", Gauge, Unit::Bytes, "Bytes of the partition's live segment files."),
    spec("flush_bytes_total", Partition, "flush", Counter, Unit::Bytes, "Bytes of segments written by flushes."),
    spec("compaction_bytes_read_total", Partition, "compaction_read", Counter, Unit::Bytes, "Bytes compactions read."),
    spec(
        "compaction_bytes_written_total",
        Partition,
        "compaction_written",
        Counter,
        Unit::Bytes,
        "Bytes compactions wrote.",
    ),
    spec(
        "compaction_reclaimed_bytes_total",
        Partition,
        "compaction_reclaimed",
        Counter,
        Unit::Bytes,
        "Bytes compactions removed from disk (inputs minus output).",
    ),
    spec(
        "compaction_garbage_versions_total",
        Partition,
        "compaction_garbage_versions",
        Counter,
        Unit::None,
        "Versions compactions purged as garbage by table and load alone (dropped tables, collectable watermarks).",
    ),
    spec("compactions_total", Partition, "compactions", Counter, Unit::None, "Compactions committed."),
    spec(
        "compaction_failures_total",
        Partition,
        "compaction_failures",
        Counter,
        Unit::None,
        "Compactions that failed (their output discarded).",
    ),
    scaled(
        spec(
            "compaction_micros_total",
            Partition,
            "compaction_duration",
            Counter,
            Unit::Seconds,
            "Time spent compacting.",
        ),
        1e6,
    ),
    scaled(
        spec(
            "write_amplification_milli",
            Partition,
            "write_amplification",
            Gauge,
            Unit::None,
            "Bytes written to segments (flushes and compactions) per byte flushed.",
        ),
        1e3,
    ),
    spec(
        "read_amplification",
        Partition,
        "read_amplification",
        Gauge,
        Unit::None,
        "Sorted runs a point read may consult.",
    ),
    scaled(
        spec(
            "space_amplification_milli",
            Partition,
            "space_amplification",
            Gauge,
            Unit::None,
            "Segment bytes per byte of live data, as the planner estimates it.",
        ),
        1e3,
    ),
    spec("compaction_debt_bytes", Partition, "compaction_debt", Gauge, Unit::Bytes, "Bytes compaction could reclaim."),
    scaled(
        spec(
            "heat_ops_per_sec_milli",
            Partition,
            "heat_ops_per_second",
            Gauge,
            Unit::None,
            "Recent reads and writes per second, decayed: what the planner calls heat.",
        ),
        1e3,
    ),
    spec(
        "cache_hits_total",
        Partition,
        "block_cache_hits",
        Counter,
        Unit::None,
        "Block reads served by the block cache.",
    ),
    spec("cache_misses_total", Partition, "block_cache_misses", Counter, Unit::None, "Block reads that went to disk."),
    spec(
        "partition_requests_total",
        Partition,
        "partition_requests",
        Counter,
        Unit::None,
        "Requests that reached the partition on its shard, by op (read, write, delete), native and RESP alike (a multi-get counts one read per key).",
    ),
    spec(
        "partition_poisoned",
        Partition,
        "partition_poisoned",
        Gauge,
        Unit::None,
        "1 if the partition refuses writes after a failed fsync, until a restart.",
    ),
];

/// The catalog's line for statistic `stat` reported at `scope`.
pub(crate) fn lookup(stat: &str, scope: Scope) -> Option<&'static MetricSpec> {
    CATALOG.iter().find(|s| s.stat == stat && s.scope == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut seen = std::collections::BTreeSet::new();
        for s in CATALOG {
            assert!(seen.insert((s.stat, s.scope == Scope::Shard)), "{} is listed twice at one scope", s.stat);
            assert!(
                s.metric.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{}",
                s.metric
            );
            assert!(
                !s.metric.ends_with("_total") && !s.metric.ends_with("_bytes"),
                "{}: the suffix comes from its type and unit",
                s.metric
            );
            assert!(s.help.ends_with('.'), "{}: help is a sentence", s.stat);
        }
        let metrics: std::collections::BTreeSet<_> = CATALOG.iter().map(|s| (s.metric, s.unit as u8)).collect();
        assert_eq!(metrics.len(), CATALOG.len(), "two statistics share a metric");
    }

    /// The metric's full name as Prometheus shows it (a histogram's family name).
    fn exposed_name(s: &MetricSpec) -> String {
        let unit = match s.unit {
            Unit::None => "",
            Unit::Bytes => "_bytes",
            Unit::Seconds => "_seconds",
        };
        let total = if s.kind == Kind::Counter { "_total" } else { "" };
        format!("nacre_{}{unit}{total}", s.metric)
    }

    #[test]
    fn the_operations_guide_lists_every_metric() {
        let guide = include_str!("../../../docs/operations.md");
        for s in CATALOG {
            let name = format!("| `{}` |", exposed_name(s));
            assert!(guide.contains(&name), "docs/operations.md has no row for {name}");
        }
    }
}
