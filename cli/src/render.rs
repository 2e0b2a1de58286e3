//! How the CLI prints what it read: aligned tables for people, one JSON object per line for
//! programs. Owns the byte-to-text rules; it does no I/O and never talks to the server.
//!
//! Bytes (values, sort keys) become text by one rule. In JSON, `value` (and `sort_key`) is the
//! UTF-8 text when the bytes are valid UTF-8, else standard padded base64, and
//! `value_encoding` (`sort_key_encoding`) says which: `"utf8"` or `"base64"`. In tables, valid
//! UTF-8 prints as is (control characters escaped as `\n`, `\u{7f}`, ...), anything else as
//! `base64:` followed by the base64.
//!
//! A timestamp prints as `{"hlc": raw, "ms": ..., "logical": ..., "rfc3339": ...}` in JSON and
//! as `MS.LOGICAL` plus its RFC 3339 instant in tables; `MS.LOGICAL` is accepted back by every
//! `TS` argument. An origin prints as `{"kind": "direct"|"stream"|"bulk", "source_id", "seq"}`,
//! or `kind/source_id/seq` in tables. A stream origin's `source_id` is `stream_id << 16 | Kafka
//! partition` and its `seq` the offset, so in JSON it also carries `"topic"` (the stream's
//! topic, from the server's sources, or null when none names it), `"kafka_partition"` and
//! `"offset"`; in tables it prints as `stream/TOPIC/PARTITION@OFFSET` when the topic is known.
//!
//! A source prints as `{"name", "table", "brokers", "topics": [{"topic", "stream_id"}],
//! "dead_letter_topic", "settings": {KEY: VALUE}, "retired"}` in JSON, and in tables with its
//! topics as `TOPIC#STREAM_ID` and its settings as `KEY=VALUE`. The value of a setting whose
//! key contains `password` or `secret` (any case) always prints as `<redacted>`: the server
//! returns settings as given.

mod explain;

pub use explain::{ExplainedKey, explanation};

use super::time::{human_ms, rfc3339, rfc3339_millis};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nacre_wire::{
    CompactionReport, KeyHistory, OriginKind, Payload, Row, ScanRow, SourceInfo, Stat, TableInfo, VersionId,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Which of the two forms to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An aligned table with a header line.
    Table,
    /// One JSON object per row, one per line.
    Json,
}

/// Bytes as JSON: the text and the name of its encoding.
pub fn json_bytes(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_owned(), "utf8"),
        Err(_) => (STANDARD.encode(bytes), "base64"),
    }
}

/// Bytes for a table cell.
pub fn text_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if text.chars().any(char::is_control) => {
            text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
        }
        Ok(text) => text.to_owned(),
        Err(_) => format!("base64:{}", STANDARD.encode(bytes)),
    }
}

fn kind_name(kind: OriginKind) -> &'static str {
    match kind {
        OriginKind::Bulk => "bulk",
        OriginKind::Stream => "stream",
        OriginKind::Direct => "direct",
    }
}

/// The topic of each stream id, from the server's sources (retired ones included), to name the
/// topic a streamed version came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamTopics(BTreeMap<u32, String>);

impl StreamTopics {
    /// None known: every stream origin prints unresolved.
    pub const NONE: StreamTopics = StreamTopics(BTreeMap::new());

    /// The stream ids of every topic of `sources`.
    pub fn new(sources: &[SourceInfo]) -> StreamTopics {
        StreamTopics(sources.iter().flat_map(|s| &s.topics).map(|t| (t.stream_id, t.topic.clone())).collect())
    }

    fn topic(&self, stream_id: u32) -> Option<&str> {
        self.0.get(&stream_id).map(String::as_str)
    }
}

/// Where a streamed version was read from Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamPosition {
    stream_id: u32,
    kafka_partition: u32,
    offset: u64,
}

/// A stream origin's position (`source_id = stream_id << 16 | Kafka partition`, `seq` = the
/// offset); `None` for any other origin.
fn stream_position(version: &VersionId) -> Option<StreamPosition> {
    let origin = &version.origin;
    let (stream_id, kafka_partition) = nacre_wire::stream_of_source_id(origin.source_id);
    (origin.kind == OriginKind::Stream).then_some(StreamPosition {
        stream_id: u32::from(stream_id),
        kafka_partition: u32::from(kafka_partition),
        offset: origin.seq,
    })
}

/// A version's `ts` and `origin` as JSON fields.
fn version_json(version: &VersionId, topics: &StreamTopics) -> (Value, Value) {
    let ts = json!({
        "hlc": version.ts.0,
        "ms": version.ts.millis(),
        "logical": version.ts.logical(),
        "rfc3339": rfc3339(version.ts),
    });
    let mut origin = json!({
        "kind": kind_name(version.origin.kind),
        "source_id": version.origin.source_id,
        "seq": version.origin.seq,
    });
    if let Some(p) = stream_position(version) {
        let fields = origin.as_object_mut().expect("built as an object");
        fields.insert("topic".into(), json!(topics.topic(p.stream_id)));
        fields.insert("kafka_partition".into(), json!(p.kafka_partition));
        fields.insert("offset".into(), json!(p.offset));
    }
    (ts, origin)
}

fn origin_text(version: &VersionId, topics: &StreamTopics) -> String {
    if let Some(p) = stream_position(version)
        && let Some(topic) = topics.topic(p.stream_id)
    {
        return format!("stream/{topic}/{}@{}", p.kafka_partition, p.offset);
    }
    format!("{}/{}/{}", kind_name(version.origin.kind), version.origin.source_id, version.origin.seq)
}

fn expires_text(expires_at_ms: Option<u64>) -> String {
    expires_at_ms.map_or_else(|| "never".to_owned(), rfc3339_millis)
}

/// One value row, whatever read produced it.
struct ValueRow<'a> {
    sort_key: &'a [u8],
    value: Option<&'a [u8]>,
    version: &'a VersionId,
    expires_at_ms: Option<u64>,
}

impl ValueRow<'_> {
    fn json(&self, table: &str, partition_key: &str, topics: &StreamTopics) -> Value {
        let (ts, origin) = version_json(self.version, topics);
        let (sort_key, sort_key_encoding) = json_bytes(self.sort_key);
        let mut row = json!({
            "table": table,
            "partition_key": partition_key,
            "sort_key": sort_key,
            "sort_key_encoding": sort_key_encoding,
        });
        let (value, value_encoding) = match self.value {
            Some(v) => {
                let (text, encoding) = json_bytes(v);
                (Value::String(text), Value::String(encoding.to_owned()))
            }
            None => (Value::Null, Value::Null),
        };
        let fields = row.as_object_mut().expect("built as an object");
        fields.insert("value".into(), value);
        fields.insert("value_encoding".into(), value_encoding);
        fields.insert("ts".into(), ts);
        fields.insert("origin".into(), origin);
        fields.insert("expires_at_ms".into(), json!(self.expires_at_ms));
        fields.insert("expires_at".into(), json!(self.expires_at_ms.map(rfc3339_millis)));
        row
    }

    fn cells(&self, with_sort_key: bool, topics: &StreamTopics) -> Vec<String> {
        let mut cells = Vec::with_capacity(6);
        if with_sort_key {
            cells.push(text_bytes(self.sort_key));
        }
        cells.push(self.value.map_or_else(|| "(tombstone)".to_owned(), text_bytes));
        cells.push(self.version.ts.to_string());
        cells.push(rfc3339(self.version.ts));
        cells.push(origin_text(self.version, topics));
        cells.push(expires_text(self.expires_at_ms));
        cells
    }
}

const VALUE_HEADERS: [&str; 5] = ["VALUE", "TS", "TIME", "ORIGIN", "EXPIRES"];

/// A `get` result.
pub fn row(
    format: Format,
    table: &str,
    partition_key: &str,
    sort_key: &str,
    row: &Row,
    topics: &StreamTopics,
) -> String {
    let value_row = ValueRow {
        sort_key: sort_key.as_bytes(),
        value: Some(&row.value),
        version: &row.version,
        expires_at_ms: row.expires_at_ms,
    };
    match format {
        Format::Json => json_lines([value_row.json(table, partition_key, topics)]),
        Format::Table => aligned(&VALUE_HEADERS, vec![value_row.cells(false, topics)]),
    }
}

/// The rows of a scan (all pages).
pub fn scan_rows(format: Format, table: &str, partition_key: &str, rows: &[ScanRow], topics: &StreamTopics) -> String {
    let value_rows = rows.iter().map(|r| ValueRow {
        sort_key: &r.sort_key,
        value: Some(&r.value),
        version: &r.version,
        expires_at_ms: r.expires_at_ms,
    });
    match format {
        Format::Json => json_lines(value_rows.map(|r| r.json(table, partition_key, topics))),
        Format::Table => {
            let headers: Vec<&str> = std::iter::once("SORT_KEY").chain(VALUE_HEADERS).collect();
            aligned(&headers, value_rows.map(|r| r.cells(true, topics)).collect())
        }
    }
}

/// A key's history. In JSON every version row also carries `tombstone` and the table's
/// `watermark` (`{"ts", "origin"}` or null); a table prints the watermark on a line of its own.
pub fn history(
    format: Format,
    table: &str,
    partition_key: &str,
    sort_key: &str,
    history: &KeyHistory,
    topics: &StreamTopics,
) -> String {
    let value_rows = history.versions.iter().map(|v| {
        let (value, expires_at_ms) = match &v.payload {
            Payload::Value { value, expires_at_ms } => (Some(value.as_slice()), *expires_at_ms),
            Payload::Tombstone => (None, None),
        };
        ValueRow { sort_key: sort_key.as_bytes(), value, version: &v.version, expires_at_ms }
    });
    match format {
        Format::Json => {
            let watermark = history.watermark.as_ref().map(|w| {
                let (ts, origin) = version_json(w, topics);
                json!({ "ts": ts, "origin": origin })
            });
            json_lines(value_rows.map(|r| {
                let mut row = r.json(table, partition_key, topics);
                let fields = row.as_object_mut().expect("built as an object");
                fields.insert("tombstone".into(), json!(r.value.is_none()));
                fields.insert("watermark".into(), json!(watermark));
                row
            }))
        }
        Format::Table => {
            let mut out = aligned(&VALUE_HEADERS, value_rows.map(|r| r.cells(false, topics)).collect());
            if let Some(w) = &history.watermark {
                let _ = writeln!(out, "watermark: {} {} {}", w.ts, rfc3339(w.ts), origin_text(w, topics));
            }
            out
        }
    }
}

/// Tables and their settings.
pub fn tables(format: Format, tables: &[TableInfo]) -> String {
    match format {
        Format::Json => json_lines(tables.iter().map(|t| {
            json!({
                "name": t.name,
                "id": t.id,
                "max_versions": t.settings.max_versions,
                "version_retention_ms": t.settings.version_retention_ms,
                "default_ttl_ms": t.settings.default_ttl_ms,
                "tie_rule": t.settings.tie_rule.iter().map(|k| kind_name(*k)).collect::<Vec<_>>(),
                "rollback_window_ms": t.settings.rollback_window_ms,
            })
        })),
        Format::Table => aligned(
            &["NAME", "ID", "MAX_VERSIONS", "RETENTION", "TTL", "TIE_RULE", "ROLLBACK_WINDOW"],
            tables.iter().map(table_cells).collect(),
        ),
    }
}

fn table_cells(t: &TableInfo) -> Vec<String> {
    let or_none = |ms: Option<u64>| ms.map_or_else(|| "-".to_owned(), human_ms);
    vec![
        t.name.clone(),
        t.id.to_string(),
        t.settings.max_versions.to_string(),
        or_none(t.settings.version_retention_ms),
        or_none(t.settings.default_ttl_ms),
        t.settings.tie_rule.iter().map(|k| kind_name(*k)).collect::<Vec<_>>().join(">"),
        human_ms(t.settings.rollback_window_ms),
    ]
}

/// One line saying what a create did.
pub fn created(table: &TableInfo) -> String {
    summary("created", table)
}

/// One line saying what an alter left.
pub fn altered(table: &TableInfo) -> String {
    summary("altered", table)
}

fn summary(done: &str, table: &TableInfo) -> String {
    let cells = table_cells(table);
    format!(
        "{done} table {} (id {}, max_versions {}, retention {}, ttl {}, rollback window {})\n",
        cells[0], cells[1], cells[2], cells[3], cells[4], cells[6]
    )
}

/// True if a source setting's value is a secret the CLI never prints.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret")
}

/// A setting's value as printed: secrets as `<redacted>`.
fn shown_setting<'a>(key: &str, value: &'a str) -> &'a str {
    if is_secret(key) { "<redacted>" } else { value }
}

/// Sources, one row each, secrets redacted.
pub fn sources(format: Format, sources: &[SourceInfo]) -> String {
    match format {
        Format::Json => json_lines(sources.iter().map(|s| {
            let settings: serde_json::Map<String, Value> =
                s.settings.iter().map(|(k, v)| (k.clone(), json!(shown_setting(k, v)))).collect();
            json!({
                "name": s.name,
                "table": s.table,
                "brokers": s.brokers,
                "topics": s.topics.iter().map(|t| json!({"topic": t.topic, "stream_id": t.stream_id})).collect::<Vec<_>>(),
                "dead_letter_topic": s.dead_letter_topic,
                "settings": settings,
                "retired": s.retired,
            })
        })),
        Format::Table => aligned(
            &["NAME", "TABLE", "TOPICS", "BROKERS", "DEAD_LETTER", "RETIRED", "SETTINGS"],
            sources.iter().map(source_cells).collect(),
        ),
    }
}

fn source_cells(s: &SourceInfo) -> Vec<String> {
    let text = |s: &str| text_bytes(s.as_bytes());
    let topics: Vec<String> = s.topics.iter().map(|t| format!("{}#{}", text(&t.topic), t.stream_id)).collect();
    let settings: Vec<String> =
        s.settings.iter().map(|(k, v)| format!("{}={}", text(k), text(shown_setting(k, v)))).collect();
    let or_dash = |cell: String| if cell.is_empty() { "-".to_owned() } else { cell };
    vec![
        text(&s.name),
        text(&s.table),
        or_dash(topics.join(",")),
        text(&s.brokers),
        s.dead_letter_topic.as_deref().map_or_else(|| "-".to_owned(), text),
        if s.retired { "yes" } else { "no" }.to_owned(),
        or_dash(settings.join(", ")),
    ]
}

/// What `nacre compact` did: queued, or (waited for) compacted with the bytes moved.
pub fn compaction(format: Format, report: &CompactionReport, waited: bool) -> String {
    match format {
        Format::Json => json_lines([json!({
            "partitions": report.partitions,
            "waited": waited,
            "compactions": report.compactions,
            "bytes_in": report.bytes_in,
            "bytes_out": report.bytes_out,
        })]),
        Format::Table if waited => format!(
            "compacted {} partitions: {} compactions read {} bytes and wrote {}\n",
            report.partitions, report.compactions, report.bytes_in, report.bytes_out
        ),
        Format::Table => format!("queued a full compaction of {} partitions\n", report.partitions),
    }
}

/// Statistics, grouped by shard and then subsystem. Unless `per_partition`, partition rows are
/// summed per shard and name (a shard's own row of the same name wins over the sum, since it
/// already covers its partitions). With `rates` (from [`StatRates`]), each row also shows its
/// rate per second, for counters (`_total`); `-` for the rest.
pub fn stats(format: Format, stats: &[Stat], per_partition: bool, rates: Option<&StatRates>) -> String {
    let mut rows = if per_partition { stats.to_vec() } else { per_shard(stats) };
    rows.sort_by(|a, b| {
        (a.shard, subsystem(&a.name), &a.name, a.partition).cmp(&(b.shard, subsystem(&b.name), &b.name, b.partition))
    });
    let rate = |s: &Stat| rates.and_then(|r| r.rate(s));
    match format {
        Format::Json => json_lines(rows.iter().map(|s| {
            let mut row = json!({
                "name": s.name, "subsystem": subsystem(&s.name), "shard": s.shard, "partition": s.partition, "value": s.value
            });
            if rates.is_some() {
                row["per_second"] = json!(rate(s));
            }
            row
        })),
        Format::Table => {
            let dash = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            let mut headers = vec!["NAME", "SUBSYSTEM", "SHARD", "PARTITION", "VALUE"];
            if rates.is_some() {
                headers.push("PER_SECOND");
            }
            aligned(
                &headers,
                rows.iter()
                    .map(|s| {
                        let mut row =
                            vec![s.name.clone(), subsystem(&s.name).to_owned(), dash(s.shard), dash(s.partition), s.value.to_string()];
                        if rates.is_some() {
                            row.push(rate(s).map_or_else(|| "-".to_owned(), |r| format!("{r:.1}")));
                        }
                        row
                    })
                    .collect(),
            )
        }
    }
}

/// The subsystem a statistic belongs to, by its name.
pub fn subsystem(name: &str) -> &'static str {
    const PREFIXES: [(&str, &str); 18] = [
        ("kafka_", "kafka"),
        ("wal_", "wal"),
        ("compaction", "compaction"),
        ("write_amplification", "compaction"),
        ("read_amplification", "compaction"),
        ("space_amplification", "compaction"),
        ("heat_", "compaction"),
        ("memtable_", "memory"),
        ("segment_", "storage"),
        ("flush_", "storage"),
        ("cache_", "storage"),
        ("partition_poisoned", "storage"),
        ("partition_requests", "requests"),
        ("request", "requests"),
        ("resp_", "resp"),
        ("bulk_", "bulk"),
        ("forward_", "mesh"),
        ("allocations", "memory"),
    ];
    PREFIXES.iter().find(|(prefix, _)| name.starts_with(prefix)).map_or("connections", |(_, s)| s)
}

/// The statistics of the previous refresh, for rates per second.
#[derive(Debug, Default)]
pub struct StatRates {
    previous: BTreeMap<(String, Option<u32>, Option<u32>), u64>,
    seconds: f64,
}

impl StatRates {
    /// Rates of `now` against `previous`, taken `seconds` apart.
    pub fn between(previous: &[Stat], seconds: f64) -> StatRates {
        let previous = previous.iter().map(|s| ((s.name.clone(), s.shard, s.partition), s.value)).collect();
        StatRates { previous, seconds }
    }

    /// A counter's rate per second; `None` for a gauge, a statistic absent before, or a counter
    /// that went down (a restart).
    fn rate(&self, stat: &Stat) -> Option<f64> {
        let base = stat.name.split('{').next().unwrap_or(&stat.name);
        if !base.ends_with("_total") || self.seconds <= 0.0 {
            return None;
        }
        let before = *self.previous.get(&(stat.name.clone(), stat.shard, stat.partition))?;
        let grown = stat.value.checked_sub(before)?;
        Some(grown as f64 / self.seconds)
    }
}

fn per_shard(stats: &[Stat]) -> Vec<Stat> {
    let mut own: BTreeMap<(String, Option<u32>), u64> = BTreeMap::new();
    let mut sums: BTreeMap<(String, Option<u32>), u64> = BTreeMap::new();
    for s in stats {
        let map = if s.partition.is_none() { &mut own } else { &mut sums };
        let slot = map.entry((s.name.clone(), s.shard)).or_default();
        *slot = slot.saturating_add(s.value);
    }
    for (key, value) in sums {
        own.entry(key).or_insert(value);
    }
    own.into_iter().map(|((name, shard), value)| Stat { name, shard, partition: None, value }).collect()
}

fn json_lines(rows: impl IntoIterator<Item = Value>) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&row.to_string());
        out.push('\n');
    }
    out
}

/// Columns padded to their widest cell, the last one unpadded.
fn aligned(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header_cells: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_cells).chain(&rows) {
        let last = row.len().saturating_sub(1);
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell}{}  ", " ".repeat(width - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::{Origin, SourceTopic, TableSettings, Ts};

    fn version(ms: u64, logical: u64, seq: u64) -> VersionId {
        VersionId { ts: Ts((ms << 16) | logical), origin: Origin { kind: OriginKind::Direct, source_id: 1, seq } }
    }

    #[test]
    fn bytes_are_utf8_when_they_can_be_else_base64() {
        assert_eq!(json_bytes(b"caf\xc3\xa9"), ("café".to_owned(), "utf8"));
        assert_eq!(json_bytes(&[0xff, 0x00, 0x10]), ("/wAQ".to_owned(), "base64"));
        assert_eq!(text_bytes(&[0xff, 0x00, 0x10]), "base64:/wAQ");
        assert_eq!(text_bytes(b"a\nb\tc"), "a\\nb\\tc");
        assert_eq!(text_bytes(b""), "");
    }

    #[test]
    fn a_get_row_in_json_carries_value_ts_and_origin() {
        let r = Row {
            value: b"v1".to_vec(),
            version: version(1_795_687_200_000, 3, 9),
            expires_at_ms: Some(1_795_687_230_000),
        };
        let out = row(Format::Json, "t", "pk", "sk", &r, &StreamTopics::NONE);
        assert_eq!(out.lines().count(), 1);
        let v: Value = serde_json::from_str(&out).expect("one JSON object");
        assert_eq!(v["value"], "v1");
        assert_eq!(v["value_encoding"], "utf8");
        assert_eq!(v["sort_key"], "sk");
        assert_eq!(v["ts"]["ms"], 1_795_687_200_000_u64);
        assert_eq!(v["ts"]["logical"], 3);
        assert_eq!(v["ts"]["hlc"], (1_795_687_200_000_u64 << 16) | 3);
        assert_eq!(v["ts"]["rfc3339"], "2026-11-26T10:00:00Z");
        assert_eq!(v["origin"], json!({"kind": "direct", "source_id": 1, "seq": 9}));
        assert_eq!(v["expires_at"], "2026-11-26T10:00:30Z");
    }

    #[test]
    fn a_table_aligns_columns() {
        let out = aligned(&["A", "BB"], vec![vec!["long".into(), "x".into()], vec!["s".into(), "yy".into()]]);
        assert_eq!(out, "A     BB\nlong  x\ns     yy\n");
    }

    #[test]
    fn history_marks_tombstones_and_the_watermark() {
        let h = KeyHistory {
            versions: vec![
                nacre_wire::VersionEntry { version: version(2, 0, 2), payload: Payload::Tombstone },
                nacre_wire::VersionEntry {
                    version: version(1, 0, 1),
                    payload: Payload::Value { value: vec![0xff], expires_at_ms: None },
                },
            ],
            watermark: Some(version(1, 5, 0)),
        };
        let lines: Vec<Value> = history(Format::Json, "t", "pk", "", &h, &StreamTopics::NONE)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tombstone"], true);
        assert_eq!(lines[0]["value"], Value::Null);
        assert_eq!(lines[1]["value"], "/w==");
        assert_eq!(lines[1]["value_encoding"], "base64");
        assert_eq!(lines[1]["watermark"]["ts"]["logical"], 5);
        let text = history(Format::Table, "t", "pk", "", &h, &StreamTopics::NONE);
        assert!(text.contains("(tombstone)") && text.contains("watermark: 1.5"), "{text}");
    }

    fn source(name: &str, topics: &[(&str, u32)], settings: &[(&str, &str)]) -> SourceInfo {
        SourceInfo {
            name: name.into(),
            table: "orders".into(),
            topics: topics
                .iter()
                .map(|(topic, stream_id)| SourceTopic { topic: (*topic).into(), stream_id: *stream_id })
                .collect(),
            brokers: "k1:9092,k2:9092".into(),
            dead_letter_topic: None,
            settings: settings.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
            retired: false,
        }
    }

    fn streamed(stream_id: u32, kafka_partition: u32, offset: u64) -> VersionId {
        let origin = Origin { kind: OriginKind::Stream, source_id: (stream_id << 16) | kafka_partition, seq: offset };
        VersionId { ts: Ts(7 << 16), origin }
    }

    #[test]
    fn stream_origins_name_their_topic_partition_and_offset_when_a_source_knows_the_stream() {
        let topics = StreamTopics::new(&[
            source("a", &[("orders-eu", 3), ("orders-us", 4)], &[]),
            SourceInfo { retired: true, ..source("old", &[("legacy", 1)], &[]) },
        ]);
        let h = KeyHistory {
            versions: vec![
                nacre_wire::VersionEntry { version: streamed(3, 2, 42), payload: Payload::Tombstone },
                nacre_wire::VersionEntry { version: streamed(9, 0, 5), payload: Payload::Tombstone },
                nacre_wire::VersionEntry { version: streamed(1, 65_535, u64::MAX), payload: Payload::Tombstone },
                nacre_wire::VersionEntry { version: version(1, 0, 8), payload: Payload::Tombstone },
            ],
            watermark: Some(streamed(4, 1, 10)),
        };
        let lines: Vec<Value> = history(Format::Json, "t", "pk", "", &h, &topics)
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(
            lines[0]["origin"],
            json!({"kind": "stream", "source_id": (3 << 16) | 2, "seq": 42, "topic": "orders-eu", "kafka_partition": 2, "offset": 42})
        );
        assert_eq!(
            lines[1]["origin"],
            json!({"kind": "stream", "source_id": 9 << 16, "seq": 5, "topic": null, "kafka_partition": 0, "offset": 5}),
            "a stream no source names"
        );
        assert_eq!(lines[2]["origin"]["topic"], "legacy", "a retired source's streams still resolve");
        assert_eq!(lines[2]["origin"]["kafka_partition"], 65_535);
        assert_eq!(lines[2]["origin"]["offset"], u64::MAX);
        assert_eq!(
            lines[3]["origin"],
            json!({"kind": "direct", "source_id": 1, "seq": 8}),
            "only streams get the fields"
        );
        assert_eq!(lines[0]["watermark"]["origin"]["topic"], "orders-us");

        let text = history(Format::Table, "t", "pk", "", &h, &topics);
        assert!(text.contains(" stream/orders-eu/2@42 "), "{text}");
        assert!(text.contains(&format!(" stream/{}/5 ", 9 << 16)), "unresolved stays kind/source_id/seq: {text}");
        assert!(text.contains(" direct/1/8 "), "{text}");
        assert!(text.ends_with(" stream/orders-us/1@10\n"), "the watermark resolves too: {text}");
        let unresolved = history(Format::Table, "t", "pk", "", &h, &StreamTopics::NONE);
        assert!(!unresolved.contains("orders-eu") && unresolved.contains(&format!("stream/{}/42", (3 << 16) | 2)));
    }

    #[test]
    fn sources_print_one_row_each_with_secrets_redacted() {
        let settings = [
            ("security.protocol", "SASL_SSL"),
            ("sasl.password", "hunter2"),
            ("ssl.key.PASSWORD", "p"),
            ("sasl.oauthbearer.client.secret", "s"),
            ("group.id", "g"),
        ];
        let mut with_dlq = source("orders.orders-eu", &[("orders-eu", 3), ("orders-us", 4)], &settings);
        with_dlq.dead_letter_topic = Some("orders-dlq".into());
        let bare = SourceInfo { retired: true, ..source("b", &[("x", 5)], &[]) };
        let all = [with_dlq, bare];

        let lines: Vec<Value> =
            sources(Format::Json, &all).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            json!({
                "name": "orders.orders-eu",
                "table": "orders",
                "brokers": "k1:9092,k2:9092",
                "topics": [{"topic": "orders-eu", "stream_id": 3}, {"topic": "orders-us", "stream_id": 4}],
                "dead_letter_topic": "orders-dlq",
                "settings": {
                    "security.protocol": "SASL_SSL",
                    "sasl.password": "<redacted>",
                    "ssl.key.PASSWORD": "<redacted>",
                    "sasl.oauthbearer.client.secret": "<redacted>",
                    "group.id": "g",
                },
                "retired": false,
            })
        );
        assert_eq!(
            (&lines[1]["dead_letter_topic"], &lines[1]["settings"], &lines[1]["retired"]),
            (&Value::Null, &json!({}), &json!(true))
        );

        let text = sources(Format::Table, &all);
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(rows[0].starts_with("NAME  ") && rows[0].ends_with("SETTINGS"), "{text}");
        assert!(rows[1].contains("orders-eu#3,orders-us#4") && rows[1].contains("orders-dlq"), "{text}");
        assert!(
            rows[1].ends_with(
                "security.protocol=SASL_SSL, sasl.password=<redacted>, ssl.key.PASSWORD=<redacted>, \
             sasl.oauthbearer.client.secret=<redacted>, group.id=g"
            ),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            rows[2].starts_with("b ")
                && rows[2].contains(" x#5 ")
                && rows[2].contains(" yes ")
                && rows[2].ends_with(" -"),
            "{text}"
        );
    }

    #[test]
    fn stats_sum_partitions_per_shard_unless_the_shard_has_its_own() {
        let s = |name: &str, shard, partition, value| Stat { name: name.into(), shard, partition, value };
        let all = vec![
            s("memtable_bytes", Some(0), None, 10),
            s("memtable_bytes", Some(0), Some(0), 4),
            s("memtable_bytes", Some(0), Some(2), 6),
            s("segment_count", Some(0), Some(0), 1),
            s("segment_count", Some(0), Some(2), 2),
            s("segment_count", Some(1), Some(1), 5),
        ];
        let rows = per_shard(&all);
        assert_eq!(
            rows,
            vec![
                s("memtable_bytes", Some(0), None, 10),
                s("segment_count", Some(0), None, 3),
                s("segment_count", Some(1), None, 5)
            ]
        );
        assert_eq!(stats(Format::Json, &all, true, None).lines().count(), 6);
    }

    #[test]
    fn stats_group_by_shard_and_subsystem_and_watch_shows_counter_rates() {
        let s = |name: &str, shard, value| Stat { name: name.into(), shard: Some(shard), partition: None, value };
        let before = vec![s("wal_batches_total", 0, 100), s("memtable_bytes", 0, 5), s("kafka_paused_total", 1, 7)];
        let now = vec![
            s("kafka_paused_total", 1, 5),
            s("wal_batches_total", 0, 150),
            s("memtable_bytes", 0, 9),
            s(r#"requests_total{kind="get",outcome="ok"}"#, 0, 40),
        ];
        let rates = StatRates::between(&before, 2.0);
        let table = stats(Format::Table, &now, false, Some(&rates));
        let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(lines[0], ["NAME", "SUBSYSTEM", "SHARD", "PARTITION", "VALUE", "PER_SECOND"]);
        // Shard 0 first, by subsystem (memory, requests, wal), then shard 1.
        assert_eq!(lines[1], ["memtable_bytes", "memory", "0", "-", "9", "-"], "a gauge has no rate");
        assert_eq!(lines[2][0], r#"requests_total{kind="get",outcome="ok"}"#);
        assert_eq!(lines[2][5], "-", "no rate for a counter not seen before");
        assert_eq!(lines[3], ["wal_batches_total", "wal", "0", "-", "150", "25.0"]);
        assert_eq!(
            lines[4],
            ["kafka_paused_total", "kafka", "1", "-", "5", "-"],
            "a counter that went down: restarted"
        );
        let json = stats(Format::Json, &now, false, Some(&rates));
        assert!(json.contains(r#""per_second":25.0"#), "{json}");
        assert!(!stats(Format::Table, &now, false, None).contains("PER_SECOND"));
    }

    #[test]
    fn tables_show_their_rollback_window() {
        let day = TableInfo { name: "t".into(), settings: TableSettings::default(), id: 1 };
        let none = TableInfo {
            name: "u".into(),
            settings: TableSettings { rollback_window_ms: 0, ..TableSettings::default() },
            id: 2,
        };
        let text = tables(Format::Table, &[day.clone(), none.clone()]);
        let rows: Vec<&str> = text.lines().collect();
        assert!(
            rows[0].ends_with("ROLLBACK_WINDOW") && rows[1].ends_with(" 1day") && rows[2].ends_with(" 0s"),
            "{text}"
        );
        let json: Vec<Value> = tables(Format::Json, &[day.clone(), none])
            .lines()
            .map(|l| serde_json::from_str(l).expect("JSON"))
            .collect();
        assert_eq!(
            (json[0]["rollback_window_ms"].as_u64(), json[1]["rollback_window_ms"].as_u64()),
            (Some(86_400_000), Some(0))
        );
        assert_eq!(altered(&day), "altered table t (id 1, max_versions 3, retention -, ttl -, rollback window 1day)\n");
    }
}
