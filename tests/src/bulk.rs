//! Bulk loads from the outside: writes input files (JSON Lines, CSV, and Parquet with the
//! `parquet` crate's Arrow writer), runs `nacre bulk build` and `nacre bulk link/status/rollback`
//! with a bounded time, and lists a data directory's partition files so a test can tell that a
//! refused load changed nothing.

use crate::program;
use crate::server::nacre_binary;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

/// Longest a build or CLI call may take in a test.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(300);

/// One input row: partition key, sort key, value (`None` = null), optional ts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The partition key.
    pub pk: String,
    /// The sort key.
    pub sk: String,
    /// The value; `None` writes a null (a tombstone).
    pub value: Option<String>,
    /// The record's own ts, milliseconds.
    pub ts: Option<u64>,
}

impl Row {
    /// A row with a value and no ts.
    pub fn new(pk: impl Into<String>, sk: impl Into<String>, value: impl Into<String>) -> Row {
        Row { pk: pk.into(), sk: sk.into(), value: Some(value.into()), ts: None }
    }
}

/// Writes `rows` as JSON Lines with columns `id`, `sk`, `val`, `ts`.
pub fn write_jsonl(path: &Path, rows: &[Row]) {
    let mut text = String::new();
    for r in rows {
        let mut o = serde_json::json!({"id": r.pk, "sk": r.sk, "val": r.value});
        if let Some(ts) = r.ts {
            o["ts"] = serde_json::json!(ts);
        }
        text.push_str(&o.to_string());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Writes `rows` as CSV with a header `id,sk,val` (CSV cannot say null: values must be set).
pub fn write_csv(path: &Path, rows: &[Row]) {
    let mut text = String::from("id,sk,val\n");
    for r in rows {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let value = r.value.as_deref().expect("CSV rows carry values");
        text.push_str(&format!("{},{},{}\n", quote(&r.pk), quote(&r.sk), quote(value)));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Writes `rows` as Parquet (snappy) with the Arrow writer: `id` and `sk` as UTF-8, `val` as
/// binary (nullable), `ts` as Int64 milliseconds (nullable), in row groups of `group_rows`.
pub fn write_parquet(path: &Path, rows: &[Row], group_rows: usize) {
    use arrow_array::{ArrayRef, BinaryArray, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("sk", DataType::Utf8, false),
        Field::new("val", DataType::Binary, true),
        Field::new("ts", DataType::Int64, true),
    ]));
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props)).expect("a Parquet writer");
    for chunk in rows.chunks(group_rows.max(1)) {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.pk.as_str()))),
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|r| r.sk.as_str()))),
            Arc::new(BinaryArray::from_iter(chunk.iter().map(|r| r.value.as_deref().map(str::as_bytes)))),
            Arc::new(Int64Array::from_iter(chunk.iter().map(|r| r.ts.map(|t| t as i64)))),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("a record batch");
        writer.write(&batch).expect("writing a batch");
        writer.flush().expect("closing a row group");
    }
    writer.close().expect("closing the Parquet file");
}

/// Runs `nacre` with `args` (no `--addr`: build needs no server) and returns its output.
pub fn nacre(args: &[&str]) -> Output {
    program::run(Command::new(nacre_binary()).args(args), b"", CLI_TIMEOUT)
}

/// Runs `nacre bulk build` for table `table` (id `table_id`) with the common column names
/// (`--key id --sort-key sk --value val`) plus `extra`; panics with its stderr if it fails.
pub fn build(table: &str, table_id: u32, partitions: u32, inputs: &[&Path], out: &Path, extra: &[&str]) {
    let output = try_build(table, table_id, partitions, inputs, out, extra);
    assert!(
        output.status.success(),
        "nacre bulk build failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [`build`], returning the output whatever it is.
pub fn try_build(table: &str, table_id: u32, partitions: u32, inputs: &[&Path], out: &Path, extra: &[&str]) -> Output {
    let (id, parts) = (table_id.to_string(), partitions.to_string());
    let mut args: Vec<&str> = vec![
        "bulk",
        "build",
        "--table",
        table,
        "--table-id",
        &id,
        "--partitions",
        &parts,
        "--key",
        "id",
        "--sort-key",
        "sk",
        "--value",
        "val",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let out_text = out.display().to_string();
    args.extend(["--out", &out_text]);
    let inputs: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    args.extend(inputs.iter().map(String::as_str));
    nacre(&args)
}

/// Every file under the data directory's `partitions/` with its size: what a refused load must
/// leave as it was.
pub fn partition_files(data_dir: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let root = data_dir.join("partitions");
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(&root).expect("under the root").display().to_string();
                out.insert(name, std::fs::metadata(&path).map_or(0, |m| m.len()));
            }
        }
    }
    out
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis() as u64
}

/// Reads a load directory's descriptor as JSON, for tests that edit it.
pub fn descriptor(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("load.json")).expect("reading load.json");
    serde_json::from_str(&text).expect("load.json is JSON")
}

/// The value of each of `keys` (partition keys, empty sort key) in `table`, as text, or `absent`
/// for a key with no visible row: what bulk tests compare after each step.
pub async fn values_of(
    client: &nacre_wire::Client,
    table: &str,
    keys: impl Iterator<Item = String>,
    absent: &str,
) -> Vec<String> {
    let mut out = Vec::new();
    for key in keys {
        let row =
            client.get(nacre_wire::Get::new(table, nacre_wire::Key::new(key.into_bytes(), b""))).await.expect("get");
        out.push(row.map_or_else(|| absent.to_owned(), |r| String::from_utf8(r.value).expect("utf8")));
    }
    out
}
