//! The CSV reader (RFC 4180, through the `csv` crate): the first row names the columns, and
//! every row must have as many fields as the header. Read record by record.
//!
//! Every field is text, so CSV cannot express null: a key, sort key or value is the field's
//! bytes as they are (an empty value field is an empty value, never a tombstone), and a ts or
//! ttl field is an integer number of milliseconds, or empty for "none" (the snapshot, no ttl).

use super::column::{Cell, Columns, Row};
use super::input::{Location, OnBytes, ReadError, RecordSink, open_counted};
use csv::ByteRecord;
use std::path::Path;

/// Read buffer, bytes.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// Field positions of the named columns.
struct Positions {
    key: usize,
    sort_key: Option<usize>,
    value: usize,
    ts: Option<usize>,
    ttl: Option<usize>,
}

/// Reads the CSV file at `path` into `sink`.
pub fn read(
    path: &Path,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    let csv_error = |source| ReadError::Csv { path: path.to_path_buf(), source };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .buffer_capacity(READ_BUFFER_BYTES)
        .from_reader(open_counted(path, on_bytes)?);
    let positions = positions(path, reader.byte_headers().map_err(csv_error)?, columns)?;
    let mut record = ByteRecord::new();
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let at = Location::Line(record.position().map_or(0, csv::Position::line));
        let field = |i: usize| record.get(i).expect("csv checks every record has the header's field count");
        let integer = |i: Option<usize>| i.map(|i| integer_cell(field(i)));
        let row = Row {
            key: Cell::Bytes(field(positions.key)),
            sort_key: positions.sort_key.map(|i| Cell::Bytes(field(i))),
            value: Cell::Bytes(field(positions.value)),
            ts: integer(positions.ts),
            ttl: integer(positions.ttl),
        };
        let record =
            row.record(columns).map_err(|reason| ReadError::BadRow { path: path.to_path_buf(), at, reason })?;
        sink.push(record).map_err(|source| ReadError::Record { path: path.to_path_buf(), at, source })?;
    }
    Ok(())
}

/// Finds each named column in the header.
fn positions(path: &Path, header: &ByteRecord, columns: &Columns) -> Result<Positions, ReadError> {
    let find = |name: &str| {
        header.iter().position(|h| h == name.as_bytes()).ok_or_else(|| ReadError::MissingColumn {
            path: path.to_path_buf(),
            column: name.to_owned(),
            available: header.iter().map(|h| String::from_utf8_lossy(h).into_owned()).collect(),
        })
    };
    let optional = |name: &Option<String>| name.as_deref().map(find).transpose();
    Ok(Positions {
        key: find(&columns.key)?,
        sort_key: optional(&columns.sort_key)?,
        value: find(&columns.value)?,
        ts: optional(&columns.ts)?,
        ttl: optional(&columns.ttl)?,
    })
}

/// A ts or ttl field: empty is null, an integer is an integer, anything else stays bytes (and
/// is refused by the conversion rules).
fn integer_cell(field: &[u8]) -> Cell<'_> {
    if field.is_empty() {
        return Cell::Null;
    }
    match std::str::from_utf8(field).ok().and_then(|s| s.parse::<i128>().ok()) {
        Some(i) => Cell::Int(i),
        None => Cell::Bytes(field),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{columns, read_text, records};
    use super::*;
    use nacre_storage::bulk::BulkRecord;

    fn read_str(text: &str, columns: &Columns) -> Result<Vec<BulkRecord>, ReadError> {
        read_text("in.csv", text, |path, sink| read(path, columns, sink, &|_| {}))
    }

    #[test]
    fn fields_are_bytes_and_ts_ttl_are_integers_or_empty() {
        let text = "ttl,v,k,other,s,ts\n100,hello,a,x,1,5\n,,b,x,,\n7,\"quoted, with comma\",c,x,s,0\n";
        let got = records(read_str(text, &columns()).expect("reads"));
        assert_eq!(
            got,
            [
                (b"a".to_vec(), b"1".to_vec(), Some(b"hello".to_vec()), Some(5), Some(100)),
                (b"b".to_vec(), Vec::new(), Some(Vec::new()), None, None),
                (b"c".to_vec(), b"s".to_vec(), Some(b"quoted, with comma".to_vec()), Some(0), Some(7)),
            ]
        );
    }

    #[test]
    fn a_missing_column_lists_the_header() {
        let e = read_str("k,v,ts\na,b,1\n", &columns()).expect_err("no s column").to_string();
        assert!(e.contains("in.csv: no column \"s\"; its columns are k, v, ts"), "{e}");
    }

    #[test]
    fn a_bad_row_is_an_error_naming_the_file_and_line() {
        for (text, expect) in [
            ("k,s,v,ts,ttl\na,1,v,5,1\nb,1,v,-5,1\n", "line 3: column \"ts\": -5 is negative"),
            ("k,s,v,ts,ttl\na,1,v,5.5,1\n", "line 2: column \"ts\": \"5.5\" is not an integer"),
            ("k,s,v,ts,ttl\na,1,v,5,soon\n", "line 2: column \"ttl\": \"soon\" is not an integer"),
            ("k,s,v,ts,ttl\na,1,v,5\n", "line: 2"),
        ] {
            let e = read_str(text, &columns()).expect_err(expect).to_string();
            assert!(e.contains("in.csv") && e.contains(expect), "{text:?}: {e}");
        }
    }
}
