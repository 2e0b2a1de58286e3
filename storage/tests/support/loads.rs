//! Bulk loads for tests on the simulated disk: records built by storage's own offline builder
//! (real files, one partition), validated as a link validates them, and the segment file's
//! bytes put on a `SimDisk`, where `Engine::prepare_bulk_segment` links them like any file.

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use nacre_storage::bulk::validate::{self, LinkTarget};
use nacre_storage::bulk::{BuildOptions, Builder, BulkRecord, LoadMode};
use nacre_storage::io::sim::SimDisk;
use nacre_storage::io::{Disk, DiskFile, IoBuf, OpenMode};
use nacre_storage::segment::info::SegmentInfo;
use nacre_storage::segment::writer::SegmentLayout;
use nacre_storage::{Limits, TableId, Ts};
use std::path::{Path, PathBuf};

/// A built and validated load: its id, and its one segment file (none for a load without
/// records, which only a replace load makes sense as: its watermark alone).
#[derive(Debug, Clone)]
pub struct BuiltLoad {
    pub id: u32,
    pub file: Option<(Vec<u8>, SegmentInfo)>,
}

impl BuiltLoad {
    /// Where [`BuiltLoad::put_on`] puts the file on the simulated disk.
    pub fn sim_path(&self) -> PathBuf {
        PathBuf::from(format!("/loads/{}.seg", self.id))
    }

    /// Writes the load's file on `disk`, durably, at [`BuiltLoad::sim_path`].
    pub async fn put_on(&self, disk: &SimDisk) {
        let Some((bytes, _)) = &self.file else { return };
        let path = self.sim_path();
        let dir = path.parent().expect("a file in a directory");
        disk.create_dir_all(dir).await.expect("create the loads directory");
        let file = disk.open(&path, OpenMode::CreateNew).await.expect("create the load file");
        file.write_at(0, IoBuf::from_padded(bytes.clone())).await.expect("write the load file");
        file.truncate(bytes.len() as u64).await.expect("truncate the load file");
        file.sync().await.expect("sync the load file");
        file.close().await.expect("close the load file");
        disk.sync_dir(dir).await.expect("sync the loads directory");
    }
}

/// Builds `records` (one input, so record `i` has `seq = i`) as load `id` of `table` in a store
/// of one partition, under `dir` (which must not exist yet), and validates it.
pub fn build(
    dir: &Path,
    table: TableId,
    id: u32,
    mode: LoadMode,
    snapshot_ms: u64,
    records: &[BulkRecord],
) -> BuiltLoad {
    if records.is_empty() {
        return BuiltLoad { id, file: None };
    }
    let options = BuildOptions {
        table: "t".into(),
        table_id: table,
        mode,
        snapshot_ms,
        partition_count: 1,
        latest_ts_ms: None,
        load_id: Some(id),
        memory_limit_bytes: 4 << 20,
        threads: 1,
        fail_on_duplicate: true,
        limits: Limits::default(),
        // Small blocks, so even a few records span blocks.
        layout: SegmentLayout {
            block_target_bytes: 96,
            bloom_bits_per_key: 10,
            preallocate_bytes: 64 << 10,
            keep_blocks_bytes: 0,
        },
        out_dir: dir.to_path_buf(),
        spill_dir: None,
    };
    let builder = Builder::new(options).expect("builder");
    let mut sink = builder.sink(0);
    for r in records {
        sink.push(r.clone()).expect("push a record");
    }
    sink.finish().expect("finish the input");
    let descriptor = builder.finish(&|_| {}).expect("build").descriptor;
    assert_eq!(descriptor.load_id, id);
    let target = LinkTarget { partition_count: 1, table_id: table, limits: Limits::default(), latest_ts: Ts(u64::MAX) };
    let load = validate::validate(dir, &target, 1).expect("the built load validates");
    let [file] = <[_; 1]>::try_from(load.files).expect("one partition, one file");
    let bytes = std::fs::read(&file.path).expect("read the load file");
    BuiltLoad { id, file: Some((bytes, file.info)) }
}
