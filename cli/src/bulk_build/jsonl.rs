//! The JSON Lines reader: one JSON object per line, blank lines skipped, read line by line.
//!
//! Every named column must be a field of every object (`null` is allowed where null means
//! something: a tombstone value, a ts that takes the snapshot, no ttl), so a misspelt
//! `--value` fails on the first line instead of turning every record into a tombstone. A
//! string is text, an integer is an integer, `true`/`false` are booleans, and an object, an
//! array or a non-integer number is JSON (a value gets its compact text); see [`super::column`].

use super::column::{Cell, Columns, Row};
use super::input::{Location, OnBytes, ReadError, RecordSink, open_counted};
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The longest line, newline included, bytes: a value at the store's 1 MiB limit, escaped at up
/// to six bytes per byte, plus keys. Bounds a reader's memory on a file with no newlines.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// Read buffer, bytes.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// Reads the JSON Lines file at `path` into `sink`.
pub fn read(
    path: &Path,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, open_counted(path, on_bytes)?);
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let at = Location::Line(number);
        let bad = |reason: String| ReadError::BadRow { path: path.to_path_buf(), at, reason };
        if n as u64 > MAX_LINE_BYTES {
            return Err(bad(format!("the line is longer than {MAX_LINE_BYTES} bytes")));
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let object = parse_object(&line).map_err(bad)?;
        let record = row(&object, columns).and_then(|r| r.record(columns)).map_err(bad)?;
        sink.push(record).map_err(|source| ReadError::Record { path: path.to_path_buf(), at, source })?;
    }
}

/// The line as a JSON object.
fn parse_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(format!("expected a JSON object, found {}", kind(&other))),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

/// The cells of the named columns in `object`.
fn row<'a>(object: &'a Map<String, Value>, columns: &Columns) -> Result<Row<'a>, String> {
    let field = |name: &str| object.get(name).map(cell).ok_or_else(|| format!("no field {name:?}"));
    let optional = |name: &Option<String>| name.as_deref().map(field).transpose();
    Ok(Row {
        key: field(&columns.key)?,
        sort_key: optional(&columns.sort_key)?,
        value: field(&columns.value)?,
        ts: optional(&columns.ts)?,
        ttl: optional(&columns.ttl)?,
    })
}

/// What a JSON value is, as a cell.
fn cell(value: &Value) -> Cell<'_> {
    match value {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Bool(*b),
        Value::String(s) => Cell::Text(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cell::Int(i.into()),
            (None, Some(u)) => Cell::Int(u.into()),
            (None, None) => Cell::Json(value),
        },
        Value::Array(_) | Value::Object(_) => Cell::Json(value),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{columns, read_text, records};
    use super::*;
    use nacre_storage::bulk::BulkRecord;

    fn read_str(text: &str, columns: &Columns) -> Result<Vec<BulkRecord>, ReadError> {
        read_text("in.jsonl", text, |path, sink| read(path, columns, sink, &|_| {}))
    }
    #[test]
    fn every_json_type_converts_by_the_rules_and_blank_lines_are_skipped() {
        let text = concat!(
            r#"{"k": "a", "s": 1, "v": "text", "ts": 5, "ttl": 100}"#,
            "\n\n   \n",
            r#"{"k": -7, "s": true, "v": {"x": [1, 2.5]}, "ts": null, "ttl": null}"#,
            "\n",
            r#"{"k": "b", "s": "", "v": null, "ts": 6, "ttl": null, "other": 1}"#,
            "\n",
            r#"{"k": "c", "s": false, "v": 2.5, "ts": 7, "ttl": 1}"#,
        );
        let got = records(read_str(text, &columns()).expect("reads"));
        assert_eq!(
            got,
            [
                (b"a".to_vec(), b"1".to_vec(), Some(b"text".to_vec()), Some(5), Some(100)),
                (b"-7".to_vec(), b"true".to_vec(), Some(br#"{"x":[1,2.5]}"#.to_vec()), None, None),
                (b"b".to_vec(), b"".to_vec(), None, Some(6), None),
                (b"c".to_vec(), b"false".to_vec(), Some(b"2.5".to_vec()), Some(7), Some(1)),
            ]
        );
    }

    #[test]
    fn a_bad_line_is_an_error_naming_the_file_and_line() {
        for (text, expect) in [
            (
                "{\"k\": \"a\", \"s\": 1, \"v\": 1, \"ts\": 1, \"ttl\": 1}\n\n{\"s\": 1, \"v\": 1, \"ts\": 1, \"ttl\": 1}\n",
                "line 3: no field \"k\"",
            ),
            (
                "{\"k\": null, \"s\": 1, \"v\": 1, \"ts\": 1, \"ttl\": 1}\n",
                "line 1: column \"k\": a key cannot be null",
            ),
            ("{\"k\": \"a\", \"s\": 1, \"v\": 1, \"ts\": -5, \"ttl\": 1}\n", "line 1: column \"ts\": -5 is negative"),
            (
                "{\"k\": \"a\", \"s\": 1, \"v\": 1, \"ts\": 1.5, \"ttl\": 1}\n",
                "line 1: column \"ts\": 1.5 is not an integer",
            ),
            (
                "{\"k\": \"a\", \"s\": 1, \"v\": 1, \"ts\": 1, \"ttl\": \"9\"}\n",
                "line 1: column \"ttl\": \"9\" is not an integer",
            ),
            ("[1, 2]\n", "line 1: expected a JSON object, found an array"),
            ("{\"k\": \n", "line 1: not JSON"),
        ] {
            let e = read_str(text, &columns()).expect_err(expect).to_string();
            assert!(e.contains("in.jsonl, ") && e.contains(expect), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_missing_optional_column_is_not_read() {
        let c = Columns { sort_key: None, ts: None, ttl: None, ..columns() };
        let got = records(read_str("{\"k\": \"a\", \"v\": \"x\"}\n", &c).expect("reads"));
        assert_eq!(got, [(b"a".to_vec(), Vec::new(), Some(b"x".to_vec()), None, None)]);
    }
}
