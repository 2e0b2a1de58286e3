//! The Parquet reader: only the named columns are decoded (a projection), in record batches of
//! [`BATCH_ROWS`] rows, through the `parquet` crate's Arrow reader.
//!
//! Column types, by use:
//! - key, sort key, value: Utf8, LargeUtf8, Utf8View (text); Binary, LargeBinary, BinaryView
//!   (raw bytes); Int8..Int64, UInt8..UInt64 (decimal text); Boolean; a dictionary of any of
//!   these;
//! - ts: an integer type, milliseconds, or a Timestamp of any unit, converted to milliseconds
//!   (seconds multiplied, micro- and nanoseconds truncated);
//! - ttl: an integer type, milliseconds;
//! - a column of type Null is all nulls, for any use.
//!
//! Any other type is refused before the first row is read, naming the column and its type.
//! Nulls follow [`super::column`]: a null key is an error, a null value a tombstone.

use super::column::{Cell, Columns, Row};
use super::input::{Location, OnBytes, ReadError, RecordSink};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Int8Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, BinaryViewArray, BooleanArray, GenericBinaryArray, GenericStringArray, RecordBatch, StringViewArray,
};
use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::path::Path;

/// Rows per record batch: bounds the reader's memory to about this many rows of the projected
/// columns.
pub const BATCH_ROWS: usize = 8192;

/// What a column is used as, which decides the types it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Key,
    Value,
    Ts,
    Ttl,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Key => "key",
            Role::Value => "value",
            Role::Ts => "ts",
            Role::Ttl => "ttl",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Role::Key | Role::Value => {
                "Utf8, LargeUtf8, Utf8View, Binary, LargeBinary, BinaryView, an integer type, Boolean, or a dictionary of these"
            }
            Role::Ts => "an integer type (milliseconds) or Timestamp",
            Role::Ttl => "an integer type (milliseconds)",
        }
    }
}

/// Reads the Parquet file at `path` into `sink`. Progress is reported as the share of the
/// file's bytes matching the share of its rows read.
pub fn read(
    path: &Path,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    read_rows(path, None, columns, sink, on_bytes)
}

/// The row groups of the Parquet file at `path`, as (index, the file's record number of its
/// first row), from its footer alone.
pub fn row_groups(path: &Path) -> Result<Vec<(usize, u64)>, ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|source| ReadError::Parquet { path: path.to_path_buf(), source })?;
    let mut first_row = 0u64;
    let mut groups = Vec::new();
    for (i, group) in builder.metadata().row_groups().iter().enumerate() {
        groups.push((i, first_row));
        first_row += u64::try_from(group.num_rows()).unwrap_or(0);
    }
    Ok(groups)
}

/// Reads row group `row_group` of the Parquet file at `path` (every row group if `None`) into
/// `sink`, its records numbered as in the whole file. Progress is reported as the share of the
/// file's bytes matching the share of its rows read, so the row groups of a file add up to it.
pub fn read_rows(
    path: &Path,
    row_group: Option<usize>,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    let parquet_error = |source| ReadError::Parquet { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?;
    let file_bytes = file.metadata().map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_error)?;
    let total_rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let group_rows = |g: &parquet::file::metadata::RowGroupMetaData| u64::try_from(g.num_rows()).unwrap_or(0);
    let (first_row, end_row) = match row_group {
        None => (0, total_rows),
        Some(i) => {
            let groups = builder.metadata().row_groups();
            let Some(group) = groups.get(i) else {
                return Err(parquet_error(parquet::errors::ParquetError::General(format!(
                    "no row group {i}: the file has {}",
                    groups.len()
                ))));
            };
            let first: u64 = groups[..i].iter().map(group_rows).sum();
            (first, first + group_rows(group))
        }
    };
    // The file's bytes in proportion to its rows up to `row`.
    let bytes_at = |row: u64| {
        (u128::from(file_bytes) * u128::from(row.min(total_rows)))
            .checked_div(u128::from(total_rows))
            .map_or(file_bytes, |b| u64::try_from(b).unwrap_or(file_bytes))
    };
    let roots = check_schema(path, builder.schema(), columns)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let builder = match row_group {
        Some(i) => builder.with_row_groups(vec![i]),
        None => builder,
    };
    let reader = builder.with_projection(mask).with_batch_size(BATCH_ROWS).build().map_err(parquet_error)?;
    let mut row = first_row;
    let mut reported = bytes_at(first_row);
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(e.into()))?;
        read_batch(path, &batch, columns, row, sink)?;
        row += batch.num_rows() as u64;
        let read = bytes_at(row);
        on_bytes(read.saturating_sub(reported));
        reported = reported.max(read);
    }
    let end = if row_group.is_none() { file_bytes } else { bytes_at(end_row) };
    on_bytes(end.saturating_sub(reported));
    Ok(())
}

/// Checks every named column is in the file with a usable type; returns their root indices.
fn check_schema(path: &Path, schema: &Schema, columns: &Columns) -> Result<Vec<usize>, ReadError> {
    let mut roots = Vec::new();
    for (name, role) in roles(columns) {
        let Ok(index) = schema.index_of(name) else {
            return Err(ReadError::MissingColumn {
                path: path.to_path_buf(),
                column: name.to_owned(),
                available: schema.fields().iter().map(|f| f.name().clone()).collect(),
            });
        };
        let data_type = schema.field(index).data_type();
        if view(arrow_array::new_empty_array(data_type).as_ref(), role).is_none() {
            return Err(ReadError::UnsupportedType {
                path: path.to_path_buf(),
                column: name.to_owned(),
                data_type: data_type.to_string(),
                role: role.name(),
                expected: role.expected(),
            });
        }
        roots.push(index);
    }
    Ok(roots)
}

/// Each named column and its use.
fn roles(columns: &Columns) -> impl Iterator<Item = (&str, Role)> {
    [
        Some((&columns.key, Role::Key)),
        columns.sort_key.as_ref().map(|c| (c, Role::Key)),
        Some((&columns.value, Role::Value)),
        columns.ts.as_ref().map(|c| (c, Role::Ts)),
        columns.ttl.as_ref().map(|c| (c, Role::Ttl)),
    ]
    .into_iter()
    .flatten()
    .map(|(name, role)| (name.as_str(), role))
}

/// Pushes every row of `batch`; `first_row` is the record number of its first row.
fn read_batch(
    path: &Path,
    batch: &RecordBatch,
    columns: &Columns,
    first_row: u64,
    sink: &mut impl RecordSink,
) -> Result<(), ReadError> {
    let column = |name: &str, role: Role| {
        let array = batch.column_by_name(name).expect("the projection holds every named column");
        view(array.as_ref(), role).expect("check_schema accepted the column's type")
    };
    let optional = |name: &Option<String>, role| name.as_deref().map(|n| column(n, role));
    let key = column(&columns.key, Role::Key);
    let sort_key = optional(&columns.sort_key, Role::Key);
    let value = column(&columns.value, Role::Value);
    let ts = optional(&columns.ts, Role::Ts);
    let ttl = optional(&columns.ttl, Role::Ttl);
    for i in 0..batch.num_rows() {
        let at = Location::Record(first_row + i as u64);
        let row = Row {
            key: key.cell(i),
            sort_key: sort_key.as_ref().map(|c| c.cell(i)),
            value: value.cell(i),
            ts: ts.as_ref().map(|c| c.cell(i)),
            ttl: ttl.as_ref().map(|c| c.cell(i)),
        };
        let record =
            row.record(columns).map_err(|reason| ReadError::BadRow { path: path.to_path_buf(), at, reason })?;
        sink.push(record).map_err(|source| ReadError::Record { path: path.to_path_buf(), at, source })?;
    }
    Ok(())
}

/// A typed view of one column of a batch.
enum Column<'a> {
    /// Every row null.
    Null,
    Utf8(&'a GenericStringArray<i32>),
    LargeUtf8(&'a GenericStringArray<i64>),
    Utf8View(&'a StringViewArray),
    Binary(&'a GenericBinaryArray<i32>),
    LargeBinary(&'a GenericBinaryArray<i64>),
    BinaryView(&'a BinaryViewArray),
    Bool(&'a BooleanArray),
    /// An integer column and how to read its row as an i128, then as milliseconds.
    Int {
        array: &'a dyn Array,
        get: fn(&dyn Array, usize) -> i128,
        unit: Unit,
    },
    /// A dictionary: its (normalized) keys and a view of its values.
    Dictionary {
        array: &'a dyn Array,
        keys: Vec<usize>,
        values: Box<Column<'a>>,
    },
}

/// How an integer column's values become the cell's integer.
#[derive(Debug, Clone, Copy)]
enum Unit {
    /// As they are.
    Plain,
    /// Multiplied by this many (seconds to milliseconds).
    Times(i128),
    /// Divided by this many, rounding down (micro- and nanoseconds to milliseconds).
    Per(i128),
}

/// A view of `array` for `role`, or `None` if its type cannot be used there.
fn view(array: &dyn Array, role: Role) -> Option<Column<'_>> {
    let bytes_ok = matches!(role, Role::Key | Role::Value);
    let int = |get: fn(&dyn Array, usize) -> i128| Some(Column::Int { array, get, unit: Unit::Plain });
    let time =
        |get: fn(&dyn Array, usize) -> i128, unit| (role == Role::Ts).then_some(Column::Int { array, get, unit });
    match array.data_type() {
        DataType::Null => Some(Column::Null),
        DataType::Int8 => int(integer::<Int8Type>),
        DataType::Int16 => int(integer::<Int16Type>),
        DataType::Int32 => int(integer::<Int32Type>),
        DataType::Int64 => int(integer::<Int64Type>),
        DataType::UInt8 => int(integer::<UInt8Type>),
        DataType::UInt16 => int(integer::<UInt16Type>),
        DataType::UInt32 => int(integer::<UInt32Type>),
        DataType::UInt64 => int(integer::<UInt64Type>),
        DataType::Timestamp(TimeUnit::Second, _) => time(integer::<TimestampSecondType>, Unit::Times(1000)),
        DataType::Timestamp(TimeUnit::Millisecond, _) => time(integer::<TimestampMillisecondType>, Unit::Plain),
        DataType::Timestamp(TimeUnit::Microsecond, _) => time(integer::<TimestampMicrosecondType>, Unit::Per(1000)),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => time(integer::<TimestampNanosecondType>, Unit::Per(1_000_000)),
        _ if !bytes_ok => None,
        DataType::Utf8 => array.as_string_opt().map(Column::Utf8),
        DataType::LargeUtf8 => array.as_string_opt().map(Column::LargeUtf8),
        DataType::Utf8View => array.as_string_view_opt().map(Column::Utf8View),
        DataType::Binary => array.as_binary_opt().map(Column::Binary),
        DataType::LargeBinary => array.as_binary_opt().map(Column::LargeBinary),
        DataType::BinaryView => array.as_binary_view_opt().map(Column::BinaryView),
        DataType::Boolean => array.as_boolean_opt().map(Column::Bool),
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary_opt()?;
            let values = view(dictionary.values().as_ref(), role)?;
            // normalized_keys panics on empty values; then every key is null.
            let keys = if dictionary.values().is_empty() { Vec::new() } else { dictionary.normalized_keys() };
            Some(Column::Dictionary { array, keys, values: Box::new(values) })
        }
        _ => None,
    }
}

/// Row `i` of primitive array `array` of type `T`, widened.
fn integer<T: ArrowPrimitiveType>(array: &dyn Array, i: usize) -> i128
where
    T::Native: Into<i128>,
{
    array.as_primitive::<T>().value(i).into()
}

impl<'a> Column<'a> {
    /// Row `i` as a cell.
    fn cell(&self, i: usize) -> Cell<'a> {
        match self {
            Column::Null => Cell::Null,
            Column::Utf8(a) => nullable(*a, i, |a, i| Cell::Text(a.value(i))),
            Column::LargeUtf8(a) => nullable(*a, i, |a, i| Cell::Text(a.value(i))),
            Column::Utf8View(a) => nullable(*a, i, |a, i| Cell::Text(a.value(i))),
            Column::Binary(a) => nullable(*a, i, |a, i| Cell::Bytes(a.value(i))),
            Column::LargeBinary(a) => nullable(*a, i, |a, i| Cell::Bytes(a.value(i))),
            Column::BinaryView(a) => nullable(*a, i, |a, i| Cell::Bytes(a.value(i))),
            Column::Bool(a) => nullable(*a, i, |a, i| Cell::Bool(a.value(i))),
            Column::Int { array, get, unit } => nullable(*array, i, |a, i| {
                let v = get(a, i);
                Cell::Int(match unit {
                    Unit::Plain => v,
                    Unit::Times(n) => v * n,
                    Unit::Per(n) => v.div_euclid(*n),
                })
            }),
            Column::Dictionary { array, keys, values } => match keys.get(i) {
                Some(&key) if !array.is_null(i) => values.cell(key),
                _ => Cell::Null,
            },
        }
    }
}

/// `Cell::Null` if row `i` of `array` is null, else `f(array, i)`.
fn nullable<'a, A: Array + ?Sized>(array: &'a A, i: usize, f: impl FnOnce(&'a A, usize) -> Cell<'a>) -> Cell<'a> {
    if array.is_null(i) { Cell::Null } else { f(array, i) }
}

#[cfg(test)]
mod tests {
    use super::super::testing::records;
    use super::*;
    use arrow_array::builder::StringDictionaryBuilder;
    use arrow_array::{
        ArrayRef, BinaryArray, Float64Array, Int8Array, Int32Array, Int64Array, LargeBinaryArray, LargeStringArray,
        NullArray, StringArray, TimestampMicrosecondArray, TimestampNanosecondArray, TimestampSecondArray, UInt64Array,
    };
    use nacre_storage::bulk::BulkRecord;
    use parquet::arrow::ArrowWriter;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Writes `columns` as a Parquet file with the real Arrow writer, small row groups.
    fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
        let batch =
            RecordBatch::try_from_iter_with_nullable(columns.into_iter().map(|(n, a)| (n, a, true))).expect("batch");
        let file = std::fs::File::create(path).expect("create");
        let props =
            parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(5000)).build();
        let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(props)).expect("writer");
        writer.write(&batch).expect("write");
        writer.close().expect("close");
    }

    fn read_file(path: &Path, columns: &Columns) -> Result<Vec<BulkRecord>, ReadError> {
        let mut sink = Vec::new();
        read(path, columns, &mut sink, &|_| {}).map(|()| sink)
    }

    fn with(key: &str, value: &str) -> Columns {
        Columns { key: key.into(), sort_key: None, value: value.into(), ts: None, ttl: None }
    }

    fn dictionary(values: &[Option<&str>]) -> ArrayRef {
        let mut b = StringDictionaryBuilder::<Int32Type>::new();
        for v in values {
            b.append_option(*v);
        }
        Arc::new(b.finish())
    }

    #[test]
    fn every_supported_type_converts_by_the_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.parquet");
        write(
            &path,
            vec![
                ("utf8", Arc::new(StringArray::from(vec!["a", "é"])) as ArrayRef),
                ("large_utf8", Arc::new(LargeStringArray::from(vec!["b", "c"]))),
                ("utf8_view", Arc::new(StringViewArray::from(vec!["a string longer than twelve bytes", "d"]))),
                ("binary", Arc::new(BinaryArray::from(vec![&[0u8, 255][..], b"e"]))),
                ("large_binary", Arc::new(LargeBinaryArray::from(vec![&b"f"[..], &[1u8][..]]))),
                ("binary_view", Arc::new(BinaryViewArray::from(vec![&b"g"[..], &[2u8, 3][..]]))),
                ("int8", Arc::new(Int8Array::from(vec![-8, 8]))),
                ("uint64", Arc::new(UInt64Array::from(vec![u64::MAX, 0]))),
                ("bool", Arc::new(BooleanArray::from(vec![true, false]))),
                ("dict", dictionary(&[Some("p"), Some("p")])),
                ("v", Arc::new(StringArray::from(vec![Some("value"), None]))),
                ("dict_v", dictionary(&[None, Some("q")])),
                ("ts_s", Arc::new(TimestampSecondArray::from(vec![Some(2), None]))),
                ("ts_us", Arc::new(TimestampMicrosecondArray::from(vec![3_999, 4_000]))),
                ("ts_ns", Arc::new(TimestampNanosecondArray::from(vec![5_999_999, 0]))),
                ("ttl", Arc::new(Int32Array::from(vec![Some(10), None]))),
            ],
        );
        let file = std::fs::File::open(&path).expect("open");
        let schema = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet").schema().clone();
        let types: Vec<String> = ["dict", "utf8_view", "binary_view", "ts_ns"]
            .iter()
            .map(|c| schema.field_with_name(c).expect("column").data_type().to_string())
            .collect();
        assert_eq!(types, ["Dictionary(Int32, Utf8)", "Utf8View", "BinaryView", "Timestamp(ns)"], "types read back");
        let keys = |column: &str| {
            let got = read_file(&path, &with(column, "v")).expect(column);
            got.into_iter().map(|r| r.partition_key).collect::<Vec<_>>()
        };
        assert_eq!(keys("utf8"), [b"a".to_vec(), "é".as_bytes().to_vec()]);
        assert_eq!(keys("large_utf8"), [b"b".to_vec(), b"c".to_vec()]);
        assert_eq!(keys("utf8_view"), [b"a string longer than twelve bytes".to_vec(), b"d".to_vec()]);
        assert_eq!(keys("binary"), [vec![0, 255], b"e".to_vec()]);
        assert_eq!(keys("large_binary"), [b"f".to_vec(), vec![1]]);
        assert_eq!(keys("binary_view"), [b"g".to_vec(), vec![2, 3]]);
        assert_eq!(keys("int8"), [b"-8".to_vec(), b"8".to_vec()]);
        assert_eq!(keys("uint64"), [b"18446744073709551615".to_vec(), b"0".to_vec()]);
        assert_eq!(keys("bool"), [b"true".to_vec(), b"false".to_vec()]);
        assert_eq!(keys("dict"), [b"p".to_vec(), b"p".to_vec()]);

        let all = Columns {
            sort_key: Some("int8".into()),
            ts: Some("ts_s".into()),
            ttl: Some("ttl".into()),
            ..with("utf8", "v")
        };
        assert_eq!(
            records(read_file(&path, &all).expect("reads")),
            [
                (b"a".to_vec(), b"-8".to_vec(), Some(b"value".to_vec()), Some(2000), Some(10)),
                ("é".as_bytes().to_vec(), b"8".to_vec(), None, None, None),
            ]
        );
        let ts = |column: &str| {
            let c = Columns { ts: Some(column.into()), ..with("utf8", "dict_v") };
            read_file(&path, &c).expect(column).into_iter().map(|r| (r.value, r.ts_ms)).collect::<Vec<_>>()
        };
        assert_eq!(ts("ts_us"), [(None, Some(3)), (Some(b"q".to_vec()), Some(4))]);
        assert_eq!(ts("ts_ns"), [(None, Some(5)), (Some(b"q".to_vec()), Some(0))]);
        let negative = Columns { ts: Some("int8".into()), ..with("utf8", "v") };
        let e = read_file(&path, &negative).expect_err("int8 -8 is a negative ts").to_string();
        assert!(e.contains("record 0: column \"int8\": -8 is negative"), "{e}");
    }

    #[test]
    fn a_missing_column_lists_the_files_columns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.parquet");
        write(
            &path,
            vec![
                ("k", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                ("other", Arc::new(Int64Array::from(vec![1]))),
            ],
        );
        let e = read_file(&path, &with("k", "v")).expect_err("no v").to_string();
        assert!(e.contains("in.parquet: no column \"v\"; its columns are k, other"), "{e}");
    }

    #[test]
    fn an_unsupported_type_is_refused_naming_the_column_and_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.parquet");
        write(
            &path,
            vec![
                ("k", Arc::new(StringArray::from(vec!["a"])) as ArrayRef),
                ("f", Arc::new(Float64Array::from(vec![1.5]))),
                ("t", Arc::new(TimestampSecondArray::from(vec![1]))),
            ],
        );
        for (columns, expect) in [
            (with("k", "f"), "column \"f\" has type Float64, which cannot be a value"),
            (Columns { ts: Some("k".into()), ..with("k", "k") }, "column \"k\" has type Utf8, which cannot be a ts"),
            (
                Columns { ttl: Some("t".into()), ..with("k", "k") },
                "column \"t\" has type Timestamp(s), which cannot be a ttl",
            ),
            (with("t", "k"), "column \"t\" has type Timestamp(s), which cannot be a key"),
        ] {
            let e = read_file(&path, &columns).expect_err(expect).to_string();
            assert!(e.contains(expect), "{e}");
        }
    }

    #[test]
    fn a_bad_cell_is_an_error_naming_the_file_and_record_across_batches() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.parquet");
        let rows = 3 * BATCH_ROWS;
        let keys: Vec<Option<String>> = (0..rows).map(|i| (i != 20_000).then(|| format!("k{i}"))).collect();
        let ts: Vec<i64> = (0..rows as i64).map(|i| if i == 17_000 { -1 } else { i }).collect();
        write(
            &path,
            vec![
                ("k", Arc::new(StringArray::from(keys)) as ArrayRef),
                ("v", Arc::new(NullArray::new(rows))),
                ("ts", Arc::new(Int64Array::from(ts))),
            ],
        );
        let e = read_file(&path, &with("k", "v")).expect_err("null key").to_string();
        assert!(e.contains("in.parquet, record 20000: column \"k\": a key cannot be null"), "{e}");
        let e = read_file(&path, &Columns { ts: Some("ts".into()), ..with("k", "v") }).expect_err("ts").to_string();
        assert!(e.contains("in.parquet, record 17000: column \"ts\": -1 is negative"), "{e}");
    }

    #[test]
    fn progress_adds_up_to_the_file_size_and_every_row_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.parquet");
        let rows = 2 * BATCH_ROWS + 5;
        write(
            &path,
            vec![
                ("k", Arc::new(StringArray::from_iter_values((0..rows).map(|i| format!("k{i}")))) as ArrayRef),
                ("v", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
            ],
        );
        let read_bytes = AtomicU64::new(0);
        let mut sink = Vec::new();
        read(&path, &with("k", "v"), &mut sink, &|n| {
            read_bytes.fetch_add(n, Ordering::Relaxed);
        })
        .expect("reads");
        assert_eq!(read_bytes.into_inner(), std::fs::metadata(&path).expect("stat").len());
        assert_eq!(sink.len(), rows);
        assert_eq!(sink[rows - 1].value.as_deref(), Some(format!("{}", rows - 1).as_bytes()));
    }
}
