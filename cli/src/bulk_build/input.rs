//! One input file of a bulk build: its format, what went wrong reading it (always naming the
//! file and where in it), and the dispatch to the format's reader. A reader streams its file
//! into one [`InputSink`] and reports the bytes it reads; it never holds the whole file.

use super::column::Columns;
use super::{csv, jsonl, parquet};
use nacre_storage::bulk::{BuildError, BulkRecord, InputSink};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The format of the input files.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Apache Parquet.
    Parquet,
    /// JSON Lines: one JSON object per line.
    Jsonl,
    /// CSV with a header row.
    Csv,
}

/// Called with the number of input bytes just read (a delta, not a total).
pub type OnBytes<'a> = &'a (dyn Fn(u64) + Sync);

/// Where in an input something is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// A line of a text file, counting from 1.
    Line(u64),
    /// A record of a Parquet file, counting from 0 (the builder's record number).
    Record(u64),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("reading {}: {source}", path.display())]
    Io {
        /// The input.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The Parquet file could not be decoded.
    #[error("reading parquet {}: {source}", path.display())]
    Parquet {
        /// The input.
        path: PathBuf,
        /// The cause.
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    /// The CSV file is malformed (a row with the wrong number of fields, bad quoting).
    #[error("reading csv {}: {source}", path.display())]
    Csv {
        /// The input.
        path: PathBuf,
        /// The cause, with its line.
        #[source]
        source: ::csv::Error,
    },
    /// A named column is not in the file.
    #[error("{}: no column {column:?}; its columns are {}", path.display(), available.join(", "))]
    MissingColumn {
        /// The input.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns the file has.
        available: Vec<String>,
    },
    /// A column's type cannot be converted to what it is used as.
    #[error("{}: column {column:?} has type {data_type}, which cannot be a {role} (expected {expected})", path.display())]
    UnsupportedType {
        /// The input.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its type, as the format names it.
        data_type: String,
        /// What it was named for: key, value, ts, ttl.
        role: &'static str,
        /// The types that are accepted there.
        expected: &'static str,
    },
    /// A row is malformed or a cell breaks the conversion rules.
    #[error("{}, {at}: {reason}", path.display())]
    BadRow {
        /// The input.
        path: PathBuf,
        /// Where.
        at: Location,
        /// What is wrong.
        reason: String,
    },
    /// The builder refused a record (a limit, an empty key, a ts before a replace snapshot).
    #[error("{}, {at}: {source}", path.display())]
    Record {
        /// The input.
        path: PathBuf,
        /// Where.
        at: Location,
        /// The builder's reason.
        #[source]
        source: BuildError,
    },
}

/// Reads the input at `path` in `format` into `sink`.
pub fn read(
    format: Format,
    path: &Path,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    match format {
        Format::Parquet => parquet::read(path, columns, sink, on_bytes),
        Format::Jsonl => jsonl::read(path, columns, sink, on_bytes),
        Format::Csv => csv::read(path, columns, sink, on_bytes),
    }
}

/// A part of an input that one thread reads: a Parquet file's row group, or a whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The input's number (its position on the command line).
    pub input: usize,
    /// The row group, for Parquet; `None` is the whole file.
    pub row_group: Option<usize>,
    /// The input's record number of the piece's first record.
    pub first_row: u64,
}

/// The pieces of input number `input` at `path`: a Parquet file's row groups (so one large file
/// is read by every thread), or the whole file for the text formats. The pieces depend on the
/// file alone, never on the thread count, so the build and its load id do not either.
pub fn pieces(format: Format, input: usize, path: &Path) -> Result<Vec<Piece>, ReadError> {
    Ok(match format {
        Format::Parquet => parquet::row_groups(path)?
            .into_iter()
            .map(|(group, first_row)| Piece { input, row_group: Some(group), first_row })
            .collect(),
        Format::Jsonl | Format::Csv => vec![Piece { input, row_group: None, first_row: 0 }],
    })
}

/// Reads `piece` of the input at `path` in `format` into `sink`.
pub fn read_piece(
    format: Format,
    path: &Path,
    piece: Piece,
    columns: &Columns,
    sink: &mut impl RecordSink,
    on_bytes: OnBytes<'_>,
) -> Result<(), ReadError> {
    match piece.row_group {
        Some(group) => parquet::read_rows(path, Some(group), columns, sink, on_bytes),
        None => read(format, path, columns, sink, on_bytes),
    }
}

/// Where a reader puts records: the builder's [`InputSink`], or a plain vector in tests.
pub trait RecordSink {
    /// Takes the next record.
    fn push(&mut self, record: BulkRecord) -> Result<(), BuildError>;
}

impl RecordSink for InputSink<'_> {
    fn push(&mut self, record: BulkRecord) -> Result<(), BuildError> {
        InputSink::push(self, record)
    }
}

impl RecordSink for Vec<BulkRecord> {
    fn push(&mut self, record: BulkRecord) -> Result<(), BuildError> {
        Vec::push(self, record);
        Ok(())
    }
}

/// Opens `path` for reading, counting the bytes read through `on_bytes`.
pub fn open_counted<'a>(path: &Path, on_bytes: OnBytes<'a>) -> Result<Counted<'a, std::fs::File>, ReadError> {
    let file = std::fs::File::open(path).map_err(|source| ReadError::Io { path: path.to_path_buf(), source })?;
    Ok(Counted { inner: file, on_bytes })
}

/// A reader that reports every byte it reads.
pub struct Counted<'a, R> {
    inner: R,
    on_bytes: OnBytes<'a>,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}
