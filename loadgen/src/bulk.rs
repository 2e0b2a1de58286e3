//! The bulk target: the load phase's records written to a file for `nacre bulk build`, as
//! Parquet (Arrow's writer, Utf8 columns) or JSON Lines. Columns: `key` (the record's partition
//! key, as every other target names it), `sort` (its sort key, only with more than one row per
//! partition) and `value` (`--value-size` random lowercase letters, so nothing compresses it
//! away). Build it with `nacre bulk build --format parquet --key key [--sort-key sort] --value
//! value`.

use crate::args::BulkFormat;
use crate::keys::Layout;
use anyhow::{Context, Result, bail};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records generated (and written) per batch and per progress step.
const CHUNK: u64 = 65_536;
/// Bytes of records a Parquet row group holds, about.
const ROW_GROUP_BYTES: u64 = 128 << 20;

/// What a bulk file holds.
#[derive(Debug, Clone, Copy)]
pub struct Dataset {
    /// Records 0..records.
    pub records: u64,
    /// Bytes of each value.
    pub value_size: usize,
    /// How records map to rows (with sort keys, the file has a `sort` column).
    pub layout: Layout,
    /// Seed of the values.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    /// The file's size, bytes.
    pub file_bytes: u64,
    /// Key and value bytes in it.
    pub record_bytes: u64,
    /// How long writing took.
    pub elapsed: Duration,
}

/// Writes `dataset` to `path` in `format`, calling `progress` with the records written so far.
///
/// # Errors
///
/// If `path` exists or cannot be written.
pub fn write(path: &Path, format: BulkFormat, dataset: &Dataset, progress: &mut dyn FnMut(u64)) -> Result<Written> {
    if path.exists() {
        bail!("{} exists; the bulk target writes a new file", path.display());
    }
    let file = std::fs::File::create_new(path).with_context(|| format!("creating {}", path.display()))?;
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(dataset.seed);
    let mut record_bytes = 0u64;
    let mut chunk = |from: u64, rng: &mut fastrand::Rng| -> Chunk {
        let to = (from + CHUNK).min(dataset.records);
        let keys: Vec<String> = (from..to).map(|r| text(dataset.layout.partition_key(r))).collect();
        let sorts: Vec<String> = (from..to).map(|r| text(dataset.layout.sort_key(r))).collect();
        let values: Vec<String> =
            (from..to).map(|_| (0..dataset.value_size).map(|_| rng.lowercase()).collect()).collect();
        record_bytes += keys.iter().chain(&sorts).chain(&values).map(|s| s.len() as u64).sum::<u64>();
        Chunk { keys, sorts, values }
    };
    match format {
        BulkFormat::Parquet => {
            let mut fields = vec![Field::new("key", DataType::Utf8, false)];
            if dataset.layout.has_sort_keys() {
                fields.push(Field::new("sort", DataType::Utf8, false));
            }
            fields.push(Field::new("value", DataType::Utf8, false));
            let schema = Arc::new(Schema::new(fields));
            // Row groups of about 128 MiB of records, as Spark and parquet-mr write them.
            let record_bytes_each = 32 + dataset.value_size as u64;
            let group_rows = usize::try_from((ROW_GROUP_BYTES / record_bytes_each).max(1)).unwrap_or(usize::MAX);
            let props = WriterProperties::builder().set_max_row_group_row_count(Some(group_rows)).build();
            let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
            let mut from = 0;
            while from < dataset.records {
                let c = chunk(from, &mut rng);
                from += c.keys.len() as u64;
                let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from(c.keys))];
                if dataset.layout.has_sort_keys() {
                    columns.push(Arc::new(StringArray::from(c.sorts)));
                }
                columns.push(Arc::new(StringArray::from(c.values)));
                writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
                progress(from);
            }
            writer.close()?;
        }
        BulkFormat::Jsonl => {
            let mut out = BufWriter::with_capacity(1 << 20, file);
            let mut from = 0;
            while from < dataset.records {
                let c = chunk(from, &mut rng);
                from += c.keys.len() as u64;
                for ((key, sort), value) in c.keys.iter().zip(&c.sorts).zip(&c.values) {
                    // Keys are digits and letters and values lowercase letters: nothing to escape.
                    if dataset.layout.has_sort_keys() {
                        writeln!(out, r#"{{"key":"{key}","sort":"{sort}","value":"{value}"}}"#)?;
                    } else {
                        writeln!(out, r#"{{"key":"{key}","value":"{value}"}}"#)?;
                    }
                }
                progress(from);
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
    }
    let file_bytes = std::fs::metadata(path)?.len();
    Ok(Written { file_bytes, record_bytes, elapsed: started.elapsed() })
}

/// One chunk's columns.
struct Chunk {
    keys: Vec<String>,
    sorts: Vec<String>,
    values: Vec<String>,
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("keys are ASCII digits and letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(records: u64, rows_per_partition: u64) -> Dataset {
        Dataset { records, value_size: 10, layout: Layout::new(rows_per_partition), seed: 7 }
    }

    #[test]
    fn json_lines_hold_every_record_once_with_the_targets_keys() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("records.jsonl");
        let mut seen = 0;
        let written = write(&path, BulkFormat::Jsonl, &dataset(70_000, 1), &mut |n| seen = n).expect("written");
        assert_eq!(seen, 70_000);
        let text = std::fs::read_to_string(&path).expect("readable");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("a JSON object a line")).collect();
        assert_eq!(lines.len(), 70_000);
        assert_eq!(lines[69_999]["key"], "key:000000069999");
        assert_eq!(lines[0]["value"].as_str().map(str::len), Some(10));
        assert_eq!(written.record_bytes, 70_000 * (16 + 10));
        assert!(write(&path, BulkFormat::Jsonl, &dataset(1, 1), &mut |_| ()).is_err(), "overwrote the file");
    }

    #[test]
    fn parquet_has_a_sort_column_when_rows_share_partitions() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("records.parquet");
        write(&path, BulkFormat::Parquet, &dataset(1_000, 100), &mut |_| ()).expect("written");
        let reader = SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("Parquet");
        let metadata = reader.metadata();
        assert_eq!(metadata.file_metadata().num_rows(), 1_000);
        let columns: Vec<&str> = metadata.file_metadata().schema_descr().columns().iter().map(|c| c.name()).collect();
        assert_eq!(columns, ["key", "sort", "value"]);
    }
}
