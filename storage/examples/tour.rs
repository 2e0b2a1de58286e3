//! A five-minute tour of the storage engine on real files with direct I/O: writes from three
//! origins, the ordering rule, a flush, a restart, lineage, an as-of read, and a scan.
//!
//! Run: `cargo run -p nacre-storage --example tour [DIR]` (DIR defaults to a fresh directory
//! under /var/tmp; it must be on a filesystem with O_DIRECT, such as ext4 or xfs).

use nacre_storage::io::dma::DmaDisk;
use nacre_storage::{
    Clock, Durability, Engine, EngineOptions, Entry, Hlc, Key, Origin, OriginKind, PartitionId, Payload, ReadAt,
    ScanRequest, SystemClock, TableId, TableSettings, Ts, Version, VersionId, Wal, WalOptions,
};
use std::path::{Path, PathBuf};
use std::rc::Rc;

const TABLE: TableId = TableId(1);

fn entry(pk: &str, sk: &str, ts: Ts, kind: OriginKind, source_id: u32, seq: u64, value: &str) -> Entry {
    Entry {
        key: Key::new(TABLE, pk.as_bytes(), sk.as_bytes()),
        version: Version {
            id: VersionId { ts, origin: Origin { kind, source_id, seq } },
            payload: Payload::Value { value: value.as_bytes().to_vec(), expires_at_ms: None },
        },
    }
}

async fn open(root: &Path, create: bool) -> nacre_storage::Result<(Rc<Wal<DmaDisk>>, Engine<DmaDisk>)> {
    let disk = DmaDisk::new(root).await?;
    let clock: Rc<dyn Clock> = Rc::new(SystemClock);
    let (wal, engine) = if create {
        let wal = Wal::create(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
        let engine =
            Engine::create(disk, &root.join("p0"), PartitionId(0), wal.clone(), EngineOptions::default(), clock)
                .await?;
        (wal, engine)
    } else {
        let (wal, recovered) = Wal::recover(disk.clone(), &root.join("wal"), WalOptions::default()).await?;
        let engine = Engine::open(
            disk,
            &root.join("p0"),
            PartitionId(0),
            wal.clone(),
            &recovered,
            EngineOptions::default(),
            clock,
        )
        .await?;
        (wal, engine)
    };
    engine.define_table(TABLE, TableSettings::default());
    Ok((wal, engine))
}

async fn tour(root: PathBuf) -> nacre_storage::Result<()> {
    let (wal, engine) = open(&root, true).await?;
    let hlc = Hlc::new();
    let now = hlc.next(&SystemClock);
    let snapshot = Ts::from_millis(now.millis() - 60_000);
    println!(
        "1. Three writes to one key: a bulk load as of a minute ago, then a stream and a direct write at the same ts."
    );
    engine
        .write(vec![entry("user:42", "", snapshot, OriginKind::Bulk, 7, 0, "bulk: tier=silver")], Durability::Sync)
        .await?;
    engine
        .write(vec![entry("user:42", "", now, OriginKind::Stream, 3, 1_001, "stream: tier=gold")], Durability::Sync)
        .await?;
    engine
        .write(vec![entry("user:42", "", now, OriginKind::Direct, 0, 1, "direct: tier=platinum")], Durability::Sync)
        .await?;
    let key = Key::new(TABLE, &b"user:42"[..], &b""[..]);
    let row = engine.get(key.as_ref(), ReadAt::Latest).await?.expect("just written");
    println!("   visible: {:?} (on equal ts, Direct > Stream > Bulk)", String::from_utf8_lossy(&row.value));
    for i in 0..5u64 {
        let sk = format!("2026-11-{:02}", 20 + i);
        engine
            .write(
                vec![entry("user:42:logins", &sk, now, OriginKind::Direct, 0, 10 + i, &format!("login #{i}"))],
                Durability::Sync,
            )
            .await?;
    }
    println!("2. Flush the memtable to a segment (direct I/O), then restart from disk.");
    let flushed = engine.flush().await?;
    println!(
        "   wrote {} segment(s): {:?}",
        flushed.len(),
        flushed.iter().map(|s| (s.id, s.entry_count, s.size_bytes)).collect::<Vec<_>>()
    );
    drop(engine);
    drop(wal);
    let (_wal, engine) = open(&root, false).await?;
    println!("3. Lineage after the restart: every version with its origin, greatest first.");
    for v in engine.versions(key.as_ref()).await?.versions {
        let value = match &v.payload {
            Payload::Value { value, .. } => String::from_utf8_lossy(value).into_owned(),
            Payload::Tombstone => "<deleted>".into(),
        };
        println!(
            "   ts={} origin={:?}/{}/{} value={value:?}",
            v.id.ts, v.id.origin.kind, v.id.origin.source_id, v.id.origin.seq
        );
    }
    let past = engine.get(key.as_ref(), ReadAt::AsOf(Ts(now.0 - 1))).await?.expect("the bulk value");
    println!("4. As of just before the stream write: {:?}", String::from_utf8_lossy(&past.value));
    println!("5. Scan the logins of user:42, newest sort key first, two per page:");
    let mut cursor = None;
    loop {
        let page = engine
            .scan(&ScanRequest {
                table: TABLE,
                partition_key: b"user:42:logins".to_vec(),
                limit: 2,
                reverse: true,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await?;
        for r in &page.rows {
            println!("   {} -> {}", String::from_utf8_lossy(&r.sort_key), String::from_utf8_lossy(&r.value));
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    println!("Done. Data is in {}", root.display());
    Ok(())
}

fn main() {
    let root = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        PathBuf::from(format!("/var/tmp/nacre-tour-{stamp}"))
    });
    let executor = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(1 << 20).make();
    let executor = match executor {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "cannot start a glommio executor: {e}\nglommio locks memory for io_uring: raise the locked-memory limit (ulimit -l, or LimitMEMLOCK= in a systemd unit) to at least 4 MiB."
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = executor.run(tour(root)) {
        eprintln!("tour failed: {e}");
        std::process::exit(1);
    }
}
