//! Section 7: the segment file against the disk, in-process on one glommio executor. A segment
//! is written through the engine's `SegmentWriter` (direct I/O, 256 KiB writes one at a time
//! into preallocated space, fsync at the end) against `fio` writing sequentially with the same
//! block size and queue depth. Then cold point reads: random keys looked up in the segment with
//! no block cache (each lookup reads one data block from the disk; the index and bloom filter are
//! in memory, as in a running store), `queue depth` lookups in flight, against `fio` random reads
//! of 4 KiB blocks at the same depth.

use crate::compare::context::Context;
use crate::compare::engine::on_executor;
use crate::compare::fio::{self, Job};
use crate::compare::peers::FIO;
use crate::compare::report::{Row, Section};
use anyhow::{Result, bail};
use nacre_storage::block_cache::BlockCache;
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::io::{Disk, OpenMode};
use nacre_storage::record::EntryRef;
use nacre_storage::segment::info::SegmentKind;
use nacre_storage::segment::reader::SegmentReader;
use nacre_storage::segment::writer::{SegmentLayout, SegmentWriter};
use nacre_storage::{EngineOptions, KeyRef, Origin, OriginKind, SegmentId, TableId, Ts, VersionId};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes of each value.
const VALUE_BYTES: usize = 1000;
/// The segment writer's write size (its `WRITE_CHUNK_BYTES`), fio's block size for writes.
const WRITE_BYTES: u64 = 256 << 10;
/// fio's block size for random reads: a data block.
const READ_BYTES: u64 = 4096;
/// Lookups in flight for the cold-read rows.
const QUEUE_DEPTHS: [u32; 2] = [1, 16];
/// The table every entry belongs to.
const TABLE: TableId = TableId(1);

/// Runs the section, or says why it cannot.
///
/// # Errors
///
/// If fio or the segment I/O fails.
pub fn run(ctx: &Context) -> Result<Section> {
    let mib: u64 = if ctx.quick { 64 } else { 1024 };
    let mut section = Section::new(
        7,
        "disk",
        "Segment writes and cold reads against fio",
        format!(
            "One {mib} MiB segment ({VALUE_BYTES}-byte values, default layout: 4 KiB blocks, 10 bloom bits a key) \
             written by the engine's SegmentWriter on one glommio executor, against fio --rw=write --bs=256k \
             --iodepth=1 --direct=1 --ioengine=io_uring --end_fsync=1 of the same size. Then random point lookups \
             in the segment with no block cache, at queue depths {QUEUE_DEPTHS:?}, against fio --rw=randread \
             --bs=4k at the same depth on a file of the same size, {} s each.",
            ctx.seconds()
        ),
    );
    let fio_binary = match FIO.find() {
        Ok(path) => path,
        Err(why) => return Ok(section.skip(why)),
    };
    let dir = ctx.work.join("disk");
    let records = (mib << 20) / (16 + VALUE_BYTES as u64);
    let size = mib << 20;
    let mut write_rows = (Vec::new(), Vec::new());
    let mut read_rows = vec![(Vec::new(), Vec::new()); QUEUE_DEPTHS.len()];
    for round in 0..ctx.rounds {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let job = Job { rw: "write", block_bytes: WRITE_BYTES, queue_depth: 1, size_bytes: size, seconds: 0 };
        write_rows.0.push(fio::run(&fio_binary, &dir.join("fio.dat"), &job)?.bandwidth);
        let seed = ctx.seed ^ round as u64;
        let (written, lookups) = on_executor(segment_phases(&dir, records, ctx.seconds(), seed))?;
        write_rows.1.push(written);
        for (d, depth) in QUEUE_DEPTHS.iter().enumerate() {
            let job = Job {
                rw: "randread",
                block_bytes: READ_BYTES,
                queue_depth: *depth,
                size_bytes: size,
                seconds: ctx.seconds(),
            };
            read_rows[d].0.push(fio::run(&fio_binary, &dir.join("fio.dat"), &job)?.iops);
            read_rows[d].1.push(lookups[d]);
        }
        eprintln!(
            "  write: fio {:.0} MiB/s, segment {:.0} MiB/s; cold reads {:?} lookups/s vs fio {:?} IOPS",
            write_rows.0[round] / f64::from(1 << 20),
            written / f64::from(1 << 20),
            lookups,
            read_rows.iter().map(|r| r.0[round]).collect::<Vec<_>>()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mibps = |values: Vec<f64>| values.into_iter().map(|v| v / f64::from(1 << 20)).collect();
    section.rows.push(Row {
        measure: format!("{mib} MiB segment written, durable"),
        unit: "MiB/s".to_owned(),
        peer: "fio write 256k qd1".to_owned(),
        peer_values: mibps(write_rows.0),
        nacre: "SegmentWriter".to_owned(),
        nacre_values: mibps(write_rows.1),
        higher_is_better: true,
    });
    for (d, (peer_values, nacre_values)) in read_rows.into_iter().enumerate() {
        section.rows.push(Row {
            measure: format!("cold random point reads, queue depth {}", QUEUE_DEPTHS[d]),
            unit: "reads/s".to_owned(),
            peer: format!("fio randread 4k qd{}", QUEUE_DEPTHS[d]),
            peer_values,
            nacre: "SegmentReader, no cache".to_owned(),
            nacre_values,
            higher_is_better: true,
        });
    }
    Ok(section)
}

/// Record `i`'s partition key.
fn key(i: u64) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

/// Writes the segment, then reads it cold at each queue depth: bytes written a second and
/// lookups a second per depth.
async fn segment_phases(dir: &Path, records: u64, seconds: u64, seed: u64) -> Result<(f64, Vec<f64>)> {
    let disk = DmaDisk::new(dir).await?;
    let path = dir.join("segment");
    let layout = SegmentLayout {
        block_target_bytes: EngineOptions::default().block_target_bytes,
        bloom_bits_per_key: EngineOptions::default().bloom_bits_per_key,
        preallocate_bytes: EngineOptions::default().segment_preallocate_bytes,
        keep_blocks_bytes: 0,
    };
    let mut rng = fastrand::Rng::with_seed(seed);
    let value: Vec<u8> = (0..VALUE_BYTES).map(|_| rng.alphanumeric() as u8).collect();
    let started = Instant::now();
    let mut writer = SegmentWriter::create(&disk, &path, SegmentId(1), SegmentKind::Flush, layout).await?;
    for i in 0..records {
        let partition_key = key(i);
        let id = VersionId { ts: Ts(1), origin: Origin { kind: OriginKind::Direct, source_id: 0, seq: i } };
        let entry = EntryRef {
            table: TABLE,
            partition_key: &partition_key,
            sort_key: b"",
            id,
            value: Some(&value),
            expires_at_ms: None,
        };
        writer.add(entry).await?;
    }
    let finished = writer.finish().await?;
    disk.sync_dir(dir).await?;
    let written = finished.info.size_bytes as f64 / started.elapsed().as_secs_f64();

    let file = disk.open(&path, OpenMode::Existing).await?;
    let reader = Rc::new(SegmentReader::open_as_written(file, &path, finished.info.size_bytes).await?);
    let mut rates = Vec::new();
    for depth in QUEUE_DEPTHS {
        rates.push(cold_reads(&reader, records, depth, Duration::from_secs(seconds), rng.u64(..)).await?);
    }
    Ok((written, rates))
}

/// Lookups a second of random keys, `depth` at a time, for `duration`, with no block cache.
async fn cold_reads(
    reader: &Rc<SegmentReader<<DmaDisk as Disk>::File>>,
    records: u64,
    depth: u32,
    duration: Duration,
    seed: u64,
) -> Result<f64> {
    let until = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for lane in 0..depth {
        let reader = Rc::clone(reader);
        tasks.push(glommio::spawn_local(async move {
            // A cache that holds nothing: every lookup reads its block from the disk.
            let cache = RefCell::new(BlockCache::new(0));
            let mut rng = fastrand::Rng::with_seed(seed ^ u64::from(lane));
            let mut done = 0u64;
            while Instant::now() < until {
                let partition_key = key(rng.u64(..records));
                let found = reader
                    .versions_of(KeyRef { table: TABLE, partition_key: &partition_key, sort_key: b"" }, &cache)
                    .await?;
                if found.is_empty() {
                    bail!("record {:?} is missing from the segment", String::from_utf8_lossy(&partition_key));
                }
                done += 1;
            }
            anyhow::Ok(done)
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
