//! A shard, and the composition root of its per-core services: the one file that names them
//! all. [`run`] constructs them in start order (mesh, partitions, bulk reconciliation, task
//! queues, the mesh's receive loops, flush, compaction and WAL committer, native door, RESP door, Kafka
//! ingestion) and stops them in reverse. No state is shared with other shards; everything
//! crosses through the mesh.

use crate::bulk_link::BulkState;
use crate::catalog::Catalog;
use crate::compactor::Compactor;
use crate::config::Config;
use crate::ingest::Ingest;
use crate::lifecycle::Lifecycle;
use crate::mesh::{Mesh, MeshEnds};
use crate::partitions::{Partitions, PartitionsSpec};
use crate::resp::RespDoor;
use crate::server::NativeDoor;
use anyhow::Result;
use glommio::{Latency, Shares};
use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What every shard shares, read-only, with the process.
#[derive(Debug)]
pub struct Process {
    /// The configuration.
    pub config: Config,
    /// The data directory.
    pub root: PathBuf,
    /// Logical partitions.
    pub partition_count: u32,
    /// Shards.
    pub shard_count: usize,
    /// Set by SIGTERM/SIGINT.
    pub stop: Arc<AtomicBool>,
    /// Shards that have drained their connections and wait to flush.
    pub drained: Arc<AtomicUsize>,
    /// Shards that have recovered, opened their doors and serve (readiness).
    pub serving: AtomicUsize,
    /// Lineage events (bulk links and rollbacks), written by a thread of their own.
    pub lineage: Arc<crate::lineage::Lineage>,
    /// Where shard 0 takes the HTTP endpoint's requests for statistics from.
    pub stats_inbox: crate::http::stats_bridge::StatsInbox,
    /// Bulk loads reads must not see (linking, aborted, rolled back), shared by every engine.
    pub visibility: nacre_storage::bulk::LoadVisibility,
    /// The bulk-load book as it was at start (each shard's recovery reconciles against it).
    pub bulk_book: crate::bulk_book::LoadBook,
    /// The catalog as it was at start (each shard starts from a copy).
    pub catalog: Catalog,
    /// The wall clock every shard reads.
    pub wall_clock: crate::wall_clock::WallClock,
    /// The greatest clock high-water mark persisted before this start (every shard's clock
    /// resumes above it), read before any shard starts.
    pub clock_floor: Option<nacre_storage::Ts>,
}

impl Process {
    /// The shard owning `partition`.
    pub fn owner(&self, partition: u32) -> usize {
        partition as usize % self.shard_count
    }
}

/// One shard: its services, each owning its own state.
pub struct Shard {
    /// Index of this shard.
    pub(crate) id: usize,
    /// Process-wide facts.
    pub(crate) process: Arc<Process>,
    /// Stopping, and the connections and requests being served.
    pub(crate) life: Rc<Lifecycle>,
    /// The engines of the partitions this shard owns, their WAL, clock and flushes.
    pub(crate) partitions: Rc<Partitions>,
    /// The compaction queue.
    pub(crate) compactor: Rc<Compactor>,
    /// This shard's copy of the catalog.
    pub(crate) catalog: RefCell<Catalog>,
    /// Serialises catalog changes (on shard 0).
    pub(crate) admin: async_lock::Mutex<()>,
    /// Typed calls to the other shards.
    pub(crate) mesh: Rc<Mesh<Shard>>,
    /// The native protocol's door.
    pub(crate) native: NativeDoor,
    /// The RESP door.
    pub(crate) resp: RespDoor,
    /// Kafka ingestion.
    pub(crate) ingest: Ingest,
    /// Bulk links and rollbacks.
    pub(crate) bulk: BulkState,
    /// Connections by door.
    pub(crate) doors: crate::listener::DoorCounts,
    /// Native requests served, by kind and outcome, and their latency.
    pub(crate) requests: crate::request_metrics::RequestMetrics,
    /// Requests each owned partition served, by access.
    pub(crate) partition_requests: crate::partition_requests::PartitionRequests,
}

/// Counts this shard as drained exactly once, even when it fails before it gets there, so the
/// other shards' shutdown barrier never waits for a shard that is gone.
struct DrainedMark {
    process: Arc<Process>,
    marked: std::cell::Cell<bool>,
}

impl DrainedMark {
    fn mark(&self) {
        if !self.marked.replace(true) {
            self.process.drained.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Drop for DrainedMark {
    fn drop(&mut self) {
        if !self.marked.get() {
            // A shard that fails stops the whole process: the others drain and flush.
            self.process.stop.store(true, Ordering::SeqCst);
            self.mark();
        }
    }
}

/// The task queues a shard's services run in, by what they do.
struct Queues {
    foreground: glommio::TaskQueueHandle,
    flush: glommio::TaskQueueHandle,
    compaction: glommio::TaskQueueHandle,
    ingestion: glommio::TaskQueueHandle,
}

impl Queues {
    fn create() -> Queues {
        let executor = glommio::executor();
        Queues {
            foreground: executor.create_task_queue(
                Shares::Static(1000),
                Latency::Matters(Duration::from_millis(1)),
                "foreground",
            ),
            flush: executor.create_task_queue(Shares::Static(100), Latency::NotImportant, "flush"),
            // Below flushes: a compaction that falls behind costs reads; a flush, writes.
            compaction: executor.create_task_queue(Shares::Static(50), Latency::NotImportant, "compaction"),
            ingestion: executor.create_task_queue(
                Shares::Static(500),
                Latency::Matters(Duration::from_millis(10)),
                "ingestion",
            ),
        }
    }
}

fn spawn_into(
    queue: glommio::TaskQueueHandle,
    what: &str,
    task: impl std::future::Future<Output = ()> + 'static,
) -> Result<()> {
    glommio::spawn_local_into(task, queue).map_err(|e| anyhow::anyhow!("spawning the {what} task: {e}"))?.detach();
    Ok(())
}

/// Runs shard `id` until the process is told to stop, then drains, flushes and returns. If the
/// shard fails, it stops the process.
pub async fn run(id: usize, process: Arc<Process>, ends: MeshEnds<Shard>) -> Result<()> {
    let drained = DrainedMark { process: process.clone(), marked: std::cell::Cell::new(false) };
    // Start, in order.
    let (mesh, inbound) = Mesh::connect(id, ends, process.config.mesh_limits()).await;
    let owned: Vec<u32> = (0..process.partition_count).filter(|p| process.owner(*p) == id).collect();
    let spec = PartitionsSpec {
        shard: id,
        config: &process.config,
        root: &process.root,
        owned,
        catalog: &process.catalog,
        visibility: &process.visibility,
        clock: Rc::new(process.wall_clock),
        clock_floor: process.clock_floor,
    };
    crate::failpoint::hold("recovery").await;
    let partitions = Rc::new(Partitions::open(spec).await?);
    let config = &process.config;
    let shard = Rc::new(Shard {
        id,
        life: Rc::new(Lifecycle::default()),
        partitions,
        compactor: Rc::new(Compactor::new(&config.compaction)),
        catalog: RefCell::new(process.catalog.clone()),
        admin: async_lock::Mutex::new(()),
        mesh,
        native: NativeDoor::new(config),
        resp: RespDoor::new(config),
        ingest: Ingest::default(),
        bulk: BulkState::new(process.bulk_book.clone()),
        doors: crate::listener::DoorCounts::default(),
        requests: crate::request_metrics::RequestMetrics::default(),
        partition_requests: crate::partition_requests::PartitionRequests::new(process.partition_count),
        process: process.clone(),
    });
    shard.reconcile_bulk_loads().await?;
    if id == 0 {
        shard.abort_unfinished_links()?;
        shard.protect_loads_in_their_rollback_window();
    }
    let queues = Queues::create();
    shard.ingest.set_queue(queues.ingestion);
    shard.mesh.serve(&shard, inbound, queues.foreground);
    spawn_into(queues.flush, "flush", shard.partitions.clone().flush_loop(shard.life.clone()))?;
    shard.compactor.set_queue(queues.compaction);
    if id == 0 {
        spawn_into(queues.compaction, "rollback window", rollback_window_loop(shard.clone()))?;
    }
    let compacting = glommio::spawn_local_into(
        shard.compactor.clone().run(shard.partitions.clone(), shard.life.clone()),
        queues.compaction,
    )
    .map_err(|e| anyhow::anyhow!("spawning the compaction task: {e}"))?;
    spawn_into(queues.foreground, "WAL committer", shard.partitions.clone().wal_committer(shard.life.clone()))?;
    spawn_into(queues.foreground, "clock keeper", shard.partitions.clone().clock_keeper(shard.life.clone()))?;
    let mut accepting = crate::server::open_native_door(&shard, queues.foreground)?;
    accepting.extend(crate::resp::open_door(&shard, queues.foreground).await?);
    // Shard 0 registers the configuration file's Kafka sources (installing the catalog on every
    // shard); every shard starts the consumers its catalog names.
    if id == 0 {
        shard.register_configured_sources().await?;
    }
    let catalog = shard.catalog.borrow().clone();
    shard.sync_sources(&catalog).await;
    if id == 0
        && let Some(asks) = process.stats_inbox.take()
    {
        spawn_into(queues.foreground, "statistics for the HTTP endpoint", shard.clone().answer_stats_asks(asks))?;
    }
    process.serving.fetch_add(1, Ordering::SeqCst);

    wait_for_stop(&process).await;
    process.serving.fetch_sub(1, Ordering::SeqCst);

    // Stop, in reverse.
    shard.life.stop();
    // Consumers stop first: what they applied is flushed below with their positions.
    shard.ingest.stop_all().await;
    for task in accepting {
        task.await;
    }
    let deadline = Instant::now() + Duration::from_millis(process.config.shutdown.drain_deadline_ms);
    while shard.life.active_requests() > 0 && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    // A compaction under way finishes (its output commits or is discarded) before the flush.
    let compaction_deadline = Duration::from_millis(process.config.shutdown.drain_deadline_ms);
    futures_lite::FutureExt::or(compacting, async move {
        glommio::timer::sleep(compaction_deadline).await;
        tracing::warn!(shard = id, "a compaction outlasted the drain deadline; its output is left to recovery");
    })
    .await;
    // Keep answering peers until every shard has drained its own clients.
    drained.mark();
    while process.drained.load(Ordering::SeqCst) < process.shard_count {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    shard.partitions.flush_all().await?;
    tracing::info!(shard = id, "flushed and stopped");
    Ok(())
}

/// Lets loads out of their rollback window as they age (shard 0).
async fn rollback_window_loop(shard: Rc<Shard>) {
    while !shard.life.is_stopping() {
        shard.protect_loads_in_their_rollback_window();
        shard.life.sleep_unless_stopping(Duration::from_secs(1)).await;
    }
}

async fn wait_for_stop(process: &Process) {
    while !process.stop.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}
