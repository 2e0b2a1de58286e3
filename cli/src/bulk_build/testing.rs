//! Helpers for the bulk build's tests: the usual columns, inputs written to a temporary
//! directory, and records as comparable tuples.

use super::column::Columns;
use super::input::ReadError;
use nacre_storage::bulk::BulkRecord;
use std::path::Path;

/// A record as (partition key, sort key, value, ts, ttl).
pub type Tuple = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<u64>, Option<u64>);

/// Columns `k`, `s`, `v`, `ts`, `ttl`.
pub fn columns() -> Columns {
    Columns {
        key: "k".into(),
        sort_key: Some("s".into()),
        value: "v".into(),
        ts: Some("ts".into()),
        ttl: Some("ttl".into()),
    }
}

/// The records as tuples.
pub fn records(records: Vec<BulkRecord>) -> Vec<Tuple> {
    records.into_iter().map(|r| (r.partition_key, r.sort_key, r.value, r.ts_ms, r.ttl_ms)).collect()
}

/// Writes `text` to a file `name` in a temporary directory and reads it with `read`.
pub fn read_text(
    name: &str,
    text: &str,
    read: impl FnOnce(&Path, &mut Vec<BulkRecord>) -> Result<(), ReadError>,
) -> Result<Vec<BulkRecord>, ReadError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write input");
    let mut sink = Vec::new();
    read(&path, &mut sink).map(|()| sink)
}

/// An entry of a built segment: (partition key, sort key, value, ts ms, expiry ms, seq).
pub type SegmentEntry = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, u64, Option<u64>, u64);

/// Every entry of the bulk segment at `path`, in file order.
pub fn segment_entries(path: &Path) -> Vec<SegmentEntry> {
    use nacre_storage::io::std_fs::StdDisk;
    use nacre_storage::io::{Disk, OpenMode};
    use nacre_storage::segment::reader::SegmentReader;
    futures_lite::future::block_on(async {
        let size = std::fs::metadata(path).expect("segment exists").len();
        let file = StdDisk.open(path, OpenMode::Existing).await.expect("open segment");
        let reader = SegmentReader::open_as_written(file, path, size).await.expect("a valid segment");
        let mut out = Vec::new();
        for i in 0..reader.block_count() {
            let payload = reader.block(i, None).await.expect("read block");
            for e in reader.decode_block(i, &payload).expect("decode block") {
                out.push((
                    e.partition_key.to_vec(),
                    e.sort_key.to_vec(),
                    e.value.map(<[u8]>::to_vec),
                    e.id.ts.millis(),
                    e.expires_at_ms,
                    e.id.origin.seq,
                ));
            }
        }
        out
    })
}
