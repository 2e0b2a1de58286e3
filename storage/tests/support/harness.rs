//! Shared test harness: builds a WAL plus one engine on any disk, makes entries, and runs an
//! async test body on the simulated disk or on glommio with real files.

#![allow(dead_code, reason = "each test crate uses a different part of the harness")]

use nacre_storage::io::Disk;
use nacre_storage::io::dma::DmaDisk;
use nacre_storage::io::sim::SimDisk;
use nacre_storage::{
    Clock, Durability, Engine, EngineOptions, Entry, Key, ManualClock, Origin, OriginKind, PartitionId, Payload,
    TableId, TableSettings, Ts, Version, VersionId, Wal, WalOptions,
};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The table every test writes to.
pub const TABLE: TableId = TableId(1);
/// The partition every test's engine serves.
pub const PARTITION: PartitionId = PartitionId(7);
/// The clock's starting time: 2026-11-26T00:00:00Z.
pub const START_MS: u64 = 1_795_651_200_000;

/// Small sizes so tests exercise many blocks, segments and WAL files.
pub fn small_options() -> EngineOptions {
    EngineOptions {
        memtable_flush_bytes: 64 << 10,
        block_cache_bytes: 256 << 10,
        segment_preallocate_bytes: 64 << 10,
        manifest_snapshot_edits: 8,
        ..EngineOptions::default()
    }
}

/// Small WAL files so rotation and deletion happen.
pub fn small_wal() -> WalOptions {
    WalOptions { file_bytes: 256 << 10, async_commit_bytes: 16 << 10, pending_limit_bytes: 128 << 10 }
}

/// An engine, its WAL, and where they live.
pub struct Store<D: Disk> {
    pub disk: D,
    pub root: PathBuf,
    pub clock: ManualClock,
    pub options: EngineOptions,
    pub engine: Engine<D>,
    pub wal: Rc<Wal<D>>,
    pub wal_options: WalOptions,
}

pub fn wal_dir(root: &Path) -> PathBuf {
    root.join("wal")
}

pub fn partition_dir(root: &Path) -> PathBuf {
    root.join("p7")
}

impl<D: Disk> Store<D> {
    /// A new WAL ([`small_wal`]) and partition under `root`.
    pub async fn create(disk: D, root: &Path, clock: ManualClock, options: EngineOptions) -> Store<D> {
        Store::create_with_wal(disk, root, clock, options, small_wal()).await
    }

    /// A new WAL with `wal_options` and partition under `root`.
    pub async fn create_with_wal(
        disk: D,
        root: &Path,
        clock: ManualClock,
        options: EngineOptions,
        wal_options: WalOptions,
    ) -> Store<D> {
        let wal = Wal::create(disk.clone(), &wal_dir(root), wal_options).await.expect("create wal");
        let clock_rc: Rc<dyn Clock> = Rc::new(clock.clone());
        let engine =
            Engine::create(disk.clone(), &partition_dir(root), PARTITION, wal.clone(), options.clone(), clock_rc)
                .await
                .expect("create engine");
        engine.define_table(TABLE, TableSettings::default());
        Store { disk, root: root.to_path_buf(), clock, options, engine, wal, wal_options }
    }

    /// Recovers the WAL ([`small_wal`]) and partition under `root` on `disk`.
    pub async fn open(
        disk: D,
        root: &Path,
        clock: ManualClock,
        options: EngineOptions,
    ) -> nacre_storage::Result<Store<D>> {
        Store::open_with_wal(disk, root, clock, options, small_wal()).await
    }

    /// Recovers the WAL (with `wal_options`) and partition under `root` on `disk`.
    pub async fn open_with_wal(
        disk: D,
        root: &Path,
        clock: ManualClock,
        options: EngineOptions,
        wal_options: WalOptions,
    ) -> nacre_storage::Result<Store<D>> {
        let (wal, recovered) = Wal::recover(disk.clone(), &wal_dir(root), wal_options).await?;
        let clock_rc: Rc<dyn Clock> = Rc::new(clock.clone());
        let engine = Engine::open(
            disk.clone(),
            &partition_dir(root),
            PARTITION,
            wal.clone(),
            &recovered,
            options.clone(),
            clock_rc,
        )
        .await?;
        engine.define_table(TABLE, TableSettings::default());
        Ok(Store { disk, root: root.to_path_buf(), clock, options, engine, wal, wal_options })
    }

    /// Drops this store (releasing its locks) and recovers it from the same disk.
    pub async fn reopen(self) -> Store<D> {
        let Store { disk, root, clock, options, engine, wal, wal_options } = self;
        drop(engine);
        drop(wal);
        Store::open_with_wal(disk, &root, clock, options, wal_options).await.expect("reopen")
    }

    pub async fn put(&self, pk: &str, sk: &str, ts: u64, value: &str) -> nacre_storage::WriteAck {
        self.engine.write(vec![put(pk, sk, ts, value)], Durability::Sync).await.expect("put")
    }

    pub async fn get(&self, pk: &str, sk: &str) -> Option<String> {
        let key = Key::new(TABLE, pk.as_bytes(), sk.as_bytes());
        self.engine
            .get(key.as_ref(), nacre_storage::ReadAt::Latest)
            .await
            .expect("get")
            .map(|r| String::from_utf8(r.value).expect("utf8 values in tests"))
    }
}

/// A direct put of `value` at `ts` (milliseconds), its origin seq the same number.
pub fn put(pk: &str, sk: &str, ts: u64, value: &str) -> Entry {
    entry(pk, sk, ts, OriginKind::Direct, Payload::Value { value: value.as_bytes().to_vec(), expires_at_ms: None })
}

/// A direct delete at `ts`.
pub fn delete(pk: &str, sk: &str, ts: u64) -> Entry {
    entry(pk, sk, ts, OriginKind::Direct, Payload::Tombstone)
}

pub fn entry(pk: &str, sk: &str, ts: u64, kind: OriginKind, payload: Payload) -> Entry {
    Entry {
        key: Key::new(TABLE, pk.as_bytes(), sk.as_bytes()),
        version: Version {
            id: VersionId {
                ts: Ts::from_millis(START_MS - 1_000_000 + ts),
                origin: Origin { kind, source_id: 1, seq: ts },
            },
            payload,
        },
    }
}

/// Runs `body` on a fresh simulated disk.
pub fn run_sim<F, Fut>(seed: u64, body: F)
where
    F: FnOnce(SimDisk, PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    futures_lite::future::block_on(body(SimDisk::new(seed), PathBuf::from("/nacre")));
}

/// Runs `body` inside a glommio executor on real files with direct I/O, in a fresh temporary
/// directory on the same filesystem as the target dir (tmpfs would disable direct I/O).
pub fn run_dma<F, Fut>(body: F)
where
    F: FnOnce(DmaDisk, PathBuf) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let base = std::env::var_os("NACRE_TEST_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    std::fs::create_dir_all(&base).expect("test dir");
    let dir = tempfile::tempdir_in(base).expect("tempdir");
    let root = dir.path().to_path_buf();
    let _serial = DMA_SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .make()
        .expect("glommio executor (is locked memory at least 2 MiB?)")
        .run(async move {
            let disk = DmaDisk::new(&root).await.expect("dma disk");
            body(disk, root).await;
        });
    drop(dir);
}

/// glommio executors lock memory; one at a time keeps tests under the locked-memory limit.
static DMA_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
