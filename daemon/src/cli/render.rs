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
//! or `kind/source_id/seq` in tables.

use super::time::{human_ms, rfc3339, rfc3339_millis};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nacre_wire::{KeyHistory, OriginKind, Payload, Row, ScanRow, Stat, TableInfo, VersionId};
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

/// A version's `ts` and `origin` as JSON fields.
fn version_json(version: &VersionId) -> (Value, Value) {
    let ts = json!({
        "hlc": version.ts.0,
        "ms": version.ts.millis(),
        "logical": version.ts.logical(),
        "rfc3339": rfc3339(version.ts),
    });
    let origin = json!({
        "kind": kind_name(version.origin.kind),
        "source_id": version.origin.source_id,
        "seq": version.origin.seq,
    });
    (ts, origin)
}

fn origin_text(version: &VersionId) -> String {
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
    fn json(&self, table: &str, partition_key: &str) -> Value {
        let (ts, origin) = version_json(self.version);
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

    fn cells(&self, with_sort_key: bool) -> Vec<String> {
        let mut cells = Vec::with_capacity(6);
        if with_sort_key {
            cells.push(text_bytes(self.sort_key));
        }
        cells.push(self.value.map_or_else(|| "(tombstone)".to_owned(), text_bytes));
        cells.push(self.version.ts.to_string());
        cells.push(rfc3339(self.version.ts));
        cells.push(origin_text(self.version));
        cells.push(expires_text(self.expires_at_ms));
        cells
    }
}

const VALUE_HEADERS: [&str; 5] = ["VALUE", "TS", "TIME", "ORIGIN", "EXPIRES"];

/// A `get` result.
pub fn row(format: Format, table: &str, partition_key: &str, sort_key: &str, row: &Row) -> String {
    let value_row = ValueRow {
        sort_key: sort_key.as_bytes(),
        value: Some(&row.value),
        version: &row.version,
        expires_at_ms: row.expires_at_ms,
    };
    match format {
        Format::Json => json_lines([value_row.json(table, partition_key)]),
        Format::Table => aligned(&VALUE_HEADERS, vec![value_row.cells(false)]),
    }
}

/// The rows of a scan (all pages).
pub fn scan_rows(format: Format, table: &str, partition_key: &str, rows: &[ScanRow]) -> String {
    let value_rows = rows.iter().map(|r| ValueRow {
        sort_key: &r.sort_key,
        value: Some(&r.value),
        version: &r.version,
        expires_at_ms: r.expires_at_ms,
    });
    match format {
        Format::Json => json_lines(value_rows.map(|r| r.json(table, partition_key))),
        Format::Table => {
            let headers: Vec<&str> = std::iter::once("SORT_KEY").chain(VALUE_HEADERS).collect();
            aligned(&headers, value_rows.map(|r| r.cells(true)).collect())
        }
    }
}

/// A key's history. In JSON every version row also carries `tombstone` and the table's
/// `watermark` (`{"ts", "origin"}` or null); a table prints the watermark on a line of its own.
pub fn history(format: Format, table: &str, partition_key: &str, sort_key: &str, history: &KeyHistory) -> String {
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
                let (ts, origin) = version_json(w);
                json!({ "ts": ts, "origin": origin })
            });
            json_lines(value_rows.map(|r| {
                let mut row = r.json(table, partition_key);
                let fields = row.as_object_mut().expect("built as an object");
                fields.insert("tombstone".into(), json!(r.value.is_none()));
                fields.insert("watermark".into(), json!(watermark));
                row
            }))
        }
        Format::Table => {
            let mut out = aligned(&VALUE_HEADERS, value_rows.map(|r| r.cells(false)).collect());
            if let Some(w) = &history.watermark {
                let _ = writeln!(out, "watermark: {} {} {}", w.ts, rfc3339(w.ts), origin_text(w));
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
                "max_versions": t.settings.max_versions,
                "version_retention_ms": t.settings.version_retention_ms,
                "default_ttl_ms": t.settings.default_ttl_ms,
                "tie_rule": t.settings.tie_rule.iter().map(|k| kind_name(*k)).collect::<Vec<_>>(),
            })
        })),
        Format::Table => {
            aligned(&["NAME", "MAX_VERSIONS", "RETENTION", "TTL", "TIE_RULE"], tables.iter().map(table_cells).collect())
        }
    }
}

fn table_cells(t: &TableInfo) -> Vec<String> {
    let or_none = |ms: Option<u64>| ms.map_or_else(|| "-".to_owned(), human_ms);
    vec![
        t.name.clone(),
        t.settings.max_versions.to_string(),
        or_none(t.settings.version_retention_ms),
        or_none(t.settings.default_ttl_ms),
        t.settings.tie_rule.iter().map(|k| kind_name(*k)).collect::<Vec<_>>().join(">"),
    ]
}

/// One line saying what a create did.
pub fn created(table: &TableInfo) -> String {
    let cells = table_cells(table);
    format!("created table {} (max_versions {}, retention {}, ttl {})\n", cells[0], cells[1], cells[2], cells[3])
}

/// Statistics. Unless `per_partition`, partition rows are summed per shard and name (a shard's
/// own row of the same name wins over the sum, since it already covers its partitions).
pub fn stats(format: Format, stats: &[Stat], per_partition: bool) -> String {
    let rows = if per_partition { sorted(stats.to_vec()) } else { per_shard(stats) };
    match format {
        Format::Json => json_lines(
            rows.iter().map(|s| json!({"name": s.name, "shard": s.shard, "partition": s.partition, "value": s.value})),
        ),
        Format::Table => {
            let dash = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
            aligned(
                &["NAME", "SHARD", "PARTITION", "VALUE"],
                rows.iter()
                    .map(|s| vec![s.name.clone(), dash(s.shard), dash(s.partition), s.value.to_string()])
                    .collect(),
            )
        }
    }
}

fn sorted(mut stats: Vec<Stat>) -> Vec<Stat> {
    stats.sort_by(|a, b| (&a.name, a.shard, a.partition).cmp(&(&b.name, b.shard, b.partition)));
    stats
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
    use nacre_wire::{Origin, Ts};

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
        let out = row(Format::Json, "t", "pk", "sk", &r);
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
        let lines: Vec<Value> =
            history(Format::Json, "t", "pk", "", &h).lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["tombstone"], true);
        assert_eq!(lines[0]["value"], Value::Null);
        assert_eq!(lines[1]["value"], "/w==");
        assert_eq!(lines[1]["value_encoding"], "base64");
        assert_eq!(lines[1]["watermark"]["ts"]["logical"], 5);
        let text = history(Format::Table, "t", "pk", "", &h);
        assert!(text.contains("(tombstone)") && text.contains("watermark: 1.5"), "{text}");
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
        assert_eq!(stats(Format::Json, &all, true).lines().count(), 6);
    }
}
