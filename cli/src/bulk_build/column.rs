//! The columns a bulk build reads and the one set of rules that turns a cell of any input
//! format into a record's bytes. The readers only say what a cell is ([`Cell`]); what it
//! becomes is decided here, so Parquet, JSON Lines and CSV agree.
//!
//! The rules:
//! - key, sort key and value: UTF-8 text → its bytes; binary → the raw bytes; an integer → its
//!   decimal text; a boolean → `true` / `false`;
//! - value only: a JSON object, array or non-integer number → its compact JSON text; null → a
//!   tombstone;
//! - a null (partition or sort) key, or a JSON object, array or non-integer number as a key, is
//!   an error;
//! - ts and ttl: a non-negative integer, milliseconds; a null ts takes the snapshot and a null
//!   ttl means none; anything else (negative, fractional, text, boolean) is an error.

use nacre_storage::bulk::BulkRecord;

/// The column names a build reads, from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// The partition key's column.
    pub key: String,
    /// The sort key's column; `None` gives every record an empty sort key.
    pub sort_key: Option<String>,
    /// The value's column.
    pub value: String,
    /// The record timestamp's column, if any.
    pub ts: Option<String>,
    /// The time-to-live's column, if any.
    pub ttl: Option<String>,
}

impl Columns {
    /// Every column read, in a fixed order (key, sort key, value, ts, ttl), absent ones left out.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [Some(&self.key), self.sort_key.as_ref(), Some(&self.value), self.ts.as_ref(), self.ttl.as_ref()]
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// One cell of an input, as its format typed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Null (JSON `null`, a Parquet null).
    Null,
    /// UTF-8 text.
    Text(&'a str),
    /// Raw bytes (a Parquet binary column, a CSV field).
    Bytes(&'a [u8]),
    /// An integer of any width and sign.
    Int(i128),
    /// A boolean.
    Bool(bool),
    /// A JSON object, array or non-integer number.
    Json(&'a serde_json::Value),
}

/// The cells of one row, one per column in [`Columns`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The partition key.
    pub key: Cell<'a>,
    /// The sort key; `None` if no sort-key column was named.
    pub sort_key: Option<Cell<'a>>,
    /// The value.
    pub value: Cell<'a>,
    /// The timestamp; `None` if no ts column was named.
    pub ts: Option<Cell<'a>>,
    /// The time to live; `None` if no ttl column was named.
    pub ttl: Option<Cell<'a>>,
}

impl Row<'_> {
    /// The record this row makes, or what is wrong with it, naming the column.
    pub fn record(&self, columns: &Columns) -> Result<BulkRecord, String> {
        let named = |name: &str, reason: String| format!("column {name:?}: {reason}");
        let partition_key = key_bytes(self.key).map_err(|e| named(&columns.key, e))?;
        let sort_key = match (self.sort_key, &columns.sort_key) {
            (Some(cell), Some(name)) => key_bytes(cell).map_err(|e| named(name, e))?,
            _ => Vec::new(),
        };
        let value = value_bytes(self.value).map_err(|e| named(&columns.value, e))?;
        let ts_ms = match (self.ts, &columns.ts) {
            (Some(cell), Some(name)) => millis(cell).map_err(|e| named(name, e))?,
            _ => None,
        };
        let ttl_ms = match (self.ttl, &columns.ttl) {
            (Some(cell), Some(name)) => millis(cell).map_err(|e| named(name, e))?,
            _ => None,
        };
        Ok(BulkRecord { partition_key, sort_key, value, ts_ms, ttl_ms })
    }
}

/// A key's bytes. Null and JSON compounds are refused.
pub fn key_bytes(cell: Cell<'_>) -> Result<Vec<u8>, String> {
    match cell {
        Cell::Null => Err("a key cannot be null".into()),
        Cell::Json(v) => Err(format!("a key cannot be a JSON object, array or non-integer number (found {v})")),
        other => Ok(scalar_bytes(other).expect("null and JSON are handled above")),
    }
}

/// A value's bytes; `None` (a tombstone) for null.
pub fn value_bytes(cell: Cell<'_>) -> Result<Option<Vec<u8>>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Json(v) => serde_json::to_vec(v).map(Some).map_err(|e| format!("cannot write JSON: {e}")),
        other => Ok(scalar_bytes(other)),
    }
}

/// The bytes of a text, binary, integer or boolean cell.
fn scalar_bytes(cell: Cell<'_>) -> Option<Vec<u8>> {
    match cell {
        Cell::Text(s) => Some(s.as_bytes().to_vec()),
        Cell::Bytes(b) => Some(b.to_vec()),
        Cell::Int(i) => Some(i.to_string().into_bytes()),
        Cell::Bool(b) => Some(if b { b"true".to_vec() } else { b"false".to_vec() }),
        Cell::Null | Cell::Json(_) => None,
    }
}

/// A ts or ttl in milliseconds; `None` for null.
pub fn millis(cell: Cell<'_>) -> Result<Option<u64>, String> {
    match cell {
        Cell::Null => Ok(None),
        Cell::Int(i) if i < 0 => Err(format!("{i} is negative; milliseconds are at least 0")),
        Cell::Int(i) => u64::try_from(i).map(Some).map_err(|_| format!("{i} is out of range")),
        Cell::Text(s) => Err(format!("{s:?} is not an integer number of milliseconds")),
        Cell::Bytes(b) => Err(format!("{:?} is not an integer number of milliseconds", String::from_utf8_lossy(b))),
        Cell::Bool(b) => Err(format!("{b} is not an integer number of milliseconds")),
        Cell::Json(v) => Err(format!("{v} is not an integer number of milliseconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::columns;
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_values_follow_the_conversion_rules() {
        assert_eq!(key_bytes(Cell::Text("é")), Ok("é".as_bytes().to_vec()));
        assert_eq!(key_bytes(Cell::Bytes(&[0, 255])), Ok(vec![0, 255]));
        assert_eq!(key_bytes(Cell::Int(-42)), Ok(b"-42".to_vec()));
        assert_eq!(key_bytes(Cell::Int(u64::MAX.into())), Ok(b"18446744073709551615".to_vec()));
        assert_eq!(key_bytes(Cell::Bool(true)), Ok(b"true".to_vec()));
        assert_eq!(key_bytes(Cell::Bool(false)), Ok(b"false".to_vec()));
        assert!(key_bytes(Cell::Null).is_err());
        let object = json!({"a": [1, 2]});
        assert!(key_bytes(Cell::Json(&object)).is_err());
        assert_eq!(value_bytes(Cell::Json(&object)), Ok(Some(br#"{"a":[1,2]}"#.to_vec())));
        assert_eq!(value_bytes(Cell::Json(&json!(1.5))), Ok(Some(b"1.5".to_vec())));
        assert_eq!(value_bytes(Cell::Null), Ok(None));
        assert_eq!(value_bytes(Cell::Text("")), Ok(Some(Vec::new())));
    }

    #[test]
    fn ts_and_ttl_are_non_negative_integers_or_null() {
        assert_eq!(millis(Cell::Int(0)), Ok(Some(0)));
        assert_eq!(millis(Cell::Int(1_700_000_000_000)), Ok(Some(1_700_000_000_000)));
        assert_eq!(millis(Cell::Null), Ok(None));
        for bad in [
            Cell::Int(-1),
            Cell::Int(i128::from(u64::MAX) + 1),
            Cell::Text("5"),
            Cell::Bytes(b"5"),
            Cell::Bool(true),
            Cell::Json(&json!(1.5)),
        ] {
            assert!(millis(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_row_becomes_a_record_and_an_error_names_its_column() {
        let row = Row {
            key: Cell::Text("k1"),
            sort_key: Some(Cell::Int(7)),
            value: Cell::Null,
            ts: Some(Cell::Int(5)),
            ttl: Some(Cell::Null),
        };
        let r = row.record(&columns()).expect("valid");
        assert_eq!(
            r,
            BulkRecord {
                partition_key: b"k1".to_vec(),
                sort_key: b"7".to_vec(),
                value: None,
                ts_ms: Some(5),
                ttl_ms: None
            }
        );
        let e = Row { ts: Some(Cell::Int(-3)), ..row }.record(&columns()).expect_err("negative ts");
        assert!(e.starts_with("column \"ts\": ") && e.contains("-3"), "{e}");
        let e = Row { sort_key: Some(Cell::Null), ..row }.record(&columns()).expect_err("null sort key");
        assert!(e.starts_with("column \"s\": "), "{e}");
    }

    #[test]
    fn names_lists_only_the_columns_given() {
        let c = Columns { sort_key: None, ts: None, ..columns() };
        assert_eq!(c.names().collect::<Vec<_>>(), ["k", "v", "ttl"]);
    }
}
