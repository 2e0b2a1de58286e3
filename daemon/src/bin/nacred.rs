//! `nacred`: the Nacre daemon. One pinned glommio executor per shard, each owning its
//! partitions; see ARCHITECTURE.md.

use anyhow::{Context, Result, bail};
use clap::Parser;
use nacre_daemon::bulk_book::LoadBook;
use nacre_daemon::config::{Config, DEFAULT_CONFIG};
use nacre_daemon::datadir::DataDir;
use nacre_daemon::shard::Process;
use nacre_daemon::stall_report::StallReport;
use nacre_daemon::{mesh, shard, startup};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::Duration;
use tracing::Instrument;

/// mimalloc rather than the system allocator: a request allocates and frees many small
/// buffers, and glibc's malloc spent a fifth of a shard's time on them under load. Counted per
/// thread, so each shard reports its allocations (`allocations_total` in `nacre stats`).
#[global_allocator]
static ALLOCATOR: nacre_daemon::alloc_count::Counting<mimalloc::MiMalloc> =
    nacre_daemon::alloc_count::Counting(mimalloc::MiMalloc);

#[derive(Parser, Debug)]
#[command(name = "nacred", version, about = "The Nacre daemon: a key-value store for derived data")]
struct Args {
    /// Configuration file (TOML); see --print-default-config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory (initialised if new, recovered otherwise).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Shared listen address; shard i listens on the next port + i.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Open the RESP (Redis protocol) door on this address, e.g. 127.0.0.1:6379.
    #[arg(long)]
    resp_listen: Option<SocketAddr>,
    /// Serve /metrics, /health and /ready over HTTP on this address, e.g. 127.0.0.1:9464.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// Shards (one pinned core each); 0 = one per available core.
    #[arg(long)]
    cores: Option<usize>,
    /// Print the default configuration file, documented, and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Log lines for people (text) or one JSON object per line, with the shard and partition
    /// as fields (json). RUST_LOG filters either (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

fn main() {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).with_current_span(true).with_span_list(false).init(),
    }
    if let Err(e) = run(args) {
        eprintln!("nacred: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<()> {
    if args.print_default_config {
        print!("{DEFAULT_CONFIG}");
        return Ok(());
    }
    // Whether the file sets `partitions`: a count that differs from the data directory's is
    // then an error, not silently ignored.
    let mut partitions_given = false;
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            partitions_given = text.parse::<toml::Table>().is_ok_and(|t| t.contains_key("partitions"));
            Config::from_toml(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => Config::default(),
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(r) = args.resp_listen {
        config.resp.listen = r.to_string();
    }
    if let Some(h) = args.http_listen {
        config.http.listen = h.to_string();
    }
    if let Some(c) = args.cores {
        config.cores = c;
    }
    let available = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = if config.cores == 0 { available } else { config.cores };
    if shards > available {
        bail!("--cores {shards} is more than the {available} cores available");
    }
    config.validate(shards).map_err(anyhow::Error::msg)?;
    startup::check_locked_memory(shards)?;
    startup::check_io_uring()?;
    let data = DataDir::open_or_init(&config.data_dir, config.partitions, shards)?;
    let fixed = data.cluster().partition_count;
    if partitions_given && !data.is_fresh() && fixed != config.partitions {
        bail!(
            "the data directory {} has {fixed} partitions, fixed when it was created, but {} asks for {}: \
             a directory's partition count cannot change; remove `partitions` from the configuration \
             (or set it to {fixed}), or use a new data directory",
            data.root().display(),
            args.config.as_deref().map_or_else(|| "the configuration".into(), |p| p.display().to_string()),
            config.partitions
        );
    }
    startup::check_direct_io(data.root())?;
    let mut addrs = vec![config.listen];
    addrs.extend((0..shards).map(|i| std::net::SocketAddr::new(config.listen.ip(), config.shard_port(i))));
    addrs.extend(config.resp.listen_addr());
    addrs.extend(config.http.listen_addr());
    startup::check_ports_free(&addrs)?;
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    // Read once, before any shard starts: a corrupt book is refused here.
    let bulk_book = LoadBook::load(data.root())?;
    // Likewise the catalog: one that does not parse as written stops the start, naming the
    // file, the field and the value.
    let catalog = nacre_daemon::catalog::Catalog::load(data.root())?;
    let wall_clock = nacre_daemon::wall_clock::WallClock::from_env().map_err(anyhow::Error::msg)?;
    // Every shard's clock resumes above the greatest mark any shard persisted, whatever the
    // shard count was then; a corrupt mark stops the start, naming the file.
    let clock_dir = nacre_daemon::datadir::clock_dir(data.root());
    let clock_floor = futures_lite::future::block_on(nacre_storage::clock::high_water::recover_bound(
        &nacre_storage::io::std_fs::StdDisk,
        &clock_dir,
    ))
    .with_context(|| format!("reading the clock's high-water marks in {}", clock_dir.display()))?;
    let (lineage, lineage_writer) = nacre_daemon::lineage::Lineage::start(&config.lineage)?;
    let (stats_asker, stats_inbox) = nacre_daemon::http::stats_bridge::stats_bridge();
    let process = Arc::new(Process {
        partition_count: data.cluster().partition_count,
        shard_count: shards,
        root: data.root().to_path_buf(),
        config: config.clone(),
        stop,
        drained: Arc::new(AtomicUsize::new(0)),
        serving: AtomicUsize::new(0),
        lineage: lineage.clone(),
        stats_inbox,
        visibility: nacre_daemon::visibility_at_start(&bulk_book, &catalog),
        bulk_book,
        catalog,
        wall_clock,
        clock_floor,
    });
    tracing::info!(
        data_dir = %data.root().display(),
        fresh = data.is_fresh(),
        partitions = process.partition_count,
        shards,
        listen = %config.listen,
        "starting"
    );
    // Up before recovery, so /health answers and /ready says what it waits for.
    let http = match config.http.listen_addr() {
        Some(addr) => Some(nacre_daemon::http::HttpEndpoint::start(addr, process.clone(), stats_asker)?),
        None => None,
    };
    let mut handles = Vec::new();
    for (id, ends) in mesh::build::<nacre_daemon::shard::Shard>(shards, config.mesh_limits()).into_iter().enumerate() {
        let process = process.clone();
        let stall_report = match config.diagnostics.stall_report_ms {
            0 => None,
            ms => Some(Box::new(StallReport { threshold: Duration::from_millis(ms) }) as Box<_>),
        };
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(id))
            .name(&format!("shard-{id}"))
            .io_memory(startup::IO_MEMORY_PER_SHARD)
            .detect_stalls(stall_report)
            .spawn(move || async move {
                let span = tracing::info_span!("shard", shard = id);
                shard::run(id, process, ends).instrument(span).await.map_err(|e| format!("{e:#}"))
            })
            .map_err(|e| anyhow::anyhow!("starting shard {id}: {e}"))?;
        handles.push(handle);
    }
    let mut failed = false;
    for (id, handle) in handles.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(shard = id, error = %e, "shard failed");
                failed = true;
            }
            Err(e) => {
                tracing::error!(shard = id, error = ?e, "shard panicked");
                failed = true;
            }
        }
    }
    if let Some(http) = http {
        http.stop();
    }
    // The writer writes what is queued, then ends.
    lineage.close();
    if let Some(writer) = lineage_writer
        && writer.join().is_err()
    {
        tracing::error!("the lineage thread panicked");
    }
    drop(data);
    if failed {
        bail!("one or more shards failed; see the log above");
    }
    tracing::info!("stopped cleanly");
    Ok(())
}
