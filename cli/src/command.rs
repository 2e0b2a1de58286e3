//! Runs one parsed `nacre` command against a server over the wire client and writes what it
//! read. Owns the mapping from commands to requests, scan paging, what counts as not found, and
//! looking up the topics of streamed versions; how things print is `render.rs`'s.

use super::args::{
    BulkCommand, Cli, Command, CompactArgs, DurabilityArg, KeyArgs, OutputArgs, ScanArgs, SourceCommand, StatsArgs,
    TableCommand,
};
use super::render::{self, Format, StreamTopics};
use base64::Engine as _;
use nacre_wire::{
    AlterTable, Client, ClientError, ClientOptions, Compact, Delete, Durability, Explain, Get, Key, OriginKind, Put,
    Scan, SourceSpec, TableSettings, VersionId, Versions,
};
use std::io::Write;

/// Rows asked for per scan page; the server may cap it lower.
const SCAN_PAGE_ROWS: u32 = 1000;

/// How a command that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Done,
    /// The key it read has no visible value (or no versions); the message says which.
    NotFound(String),
    /// It ran to the end but did not do all of it (an import with failed keys); the message
    /// says what is missing. Exits with the error status.
    Incomplete(String),
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Connecting, or the request, failed; a server error carries the server's code and message.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `--base64` was given and the value is not base64.
    #[error("the value is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// Writing the output failed (a closed pipe).
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// `bulk build` failed.
    #[error("bulk build: {0:#}")]
    Build(anyhow::Error),
    /// `import-redis` stopped before its summary.
    #[error("import-redis: {0}")]
    Import(#[from] super::import_redis::ImportError),
}

fn format(output: OutputArgs) -> Format {
    if output.json { Format::Json } else { Format::Table }
}

fn key(args: &KeyArgs) -> Key {
    Key::new(args.pk.as_bytes(), args.sort_key.as_bytes())
}

fn durability(arg: Option<DurabilityArg>) -> Option<Durability> {
    arg.map(|d| match d {
        DurabilityArg::Sync => Durability::Sync,
        DurabilityArg::Async => Durability::Async,
    })
}

/// The topics of the streams read versions came from, looked up with one `list_sources` the
/// first time a read returns a streamed version, and only then. A failed lookup (a server without
/// sources, say) leaves every stream origin unresolved rather than failing the read.
#[derive(Debug, Default)]
struct TopicLookup(Option<StreamTopics>);

impl TopicLookup {
    async fn resolve<'a>(&mut self, client: &Client, versions: impl IntoIterator<Item = &'a VersionId>) {
        if self.0.is_none() && versions.into_iter().any(|v| v.origin.kind == OriginKind::Stream) {
            let sources = client.list_sources().await.unwrap_or_default();
            self.0 = Some(StreamTopics::new(&sources));
        }
    }

    fn topics(&self) -> &StreamTopics {
        static UNRESOLVED: StreamTopics = StreamTopics::NONE;
        self.0.as_ref().unwrap_or(&UNRESOLVED)
    }
}

fn describe(args: &KeyArgs) -> String {
    if args.sort_key.is_empty() {
        format!("{}/{}", args.table, args.pk)
    } else {
        format!("{}/{} (sort key {:?})", args.table, args.pk, args.sort_key)
    }
}

/// Connects to `cli.addr` and runs the command, writing results to `out`.
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, CliError> {
    if let Command::Bulk(BulkCommand::Build(build)) = &cli.command
        && !build.from_server
    {
        // Offline: no server is involved.
        super::bulk_build::run(build).map_err(CliError::Build)?;
        return Ok(Outcome::Done);
    }
    // A link validates every byte of its load before answering.
    let timeout = match &cli.command {
        Command::Bulk(BulkCommand::Link(link)) => link.wait.max(cli.timeout),
        Command::Compact(CompactArgs { wait: true, .. }) => super::args::COMPACT_WAIT.max(cli.timeout),
        _ => cli.timeout,
    };
    let options = ClientOptions {
        client_name: "nacre-cli".to_owned(),
        timeout,
        connect_timeout: cli.timeout,
        ..ClientOptions::default()
    };
    let client = Client::connect(cli.addr.as_str(), options).await?;
    match cli.command {
        Command::Table(table) => run_table(&client, table, out).await,
        Command::Source(source) => run_source(&client, source, out).await,
        Command::Bulk(BulkCommand::Build(build)) => {
            let resolved = super::bulk_build::with_server_target(&build, &client).await.map_err(CliError::Build)?;
            // The build itself reads and writes local files only, as the offline one does.
            drop(client);
            super::bulk_build::run(&resolved).map_err(CliError::Build)?;
            Ok(Outcome::Done)
        }
        Command::Bulk(bulk) => super::bulk::run(&client, bulk, out).await,
        Command::Put(put) => {
            let value = if put.base64 {
                base64::engine::general_purpose::STANDARD.decode(put.value.as_bytes())?
            } else {
                put.value.into_bytes()
            };
            let request = Put {
                table: put.key.table.clone(),
                key: key(&put.key),
                value,
                ts: put.ts,
                ttl_ms: put.ttl,
                durability: durability(put.durability),
            };
            let written = client.put(request).await?;
            writeln!(out, "ok {}", written.ts)?;
            Ok(Outcome::Done)
        }
        Command::Del(del) => {
            let request = Delete {
                table: del.key.table.clone(),
                key: key(&del.key),
                ts: del.ts,
                durability: durability(del.durability),
            };
            let written = client.delete(request).await?;
            writeln!(out, "ok {}", written.ts)?;
            Ok(Outcome::Done)
        }
        Command::Get(get) => {
            let request = Get { table: get.key.table.clone(), key: key(&get.key), as_of: get.as_of };
            match client.get(request).await? {
                Some(row) => {
                    let mut lookup = TopicLookup::default();
                    lookup.resolve(&client, [&row.version]).await;
                    let (k, f) = (&get.key, format(get.output));
                    let text = render::row(f, &k.table, &k.pk, &k.sort_key, &row, lookup.topics());
                    out.write_all(text.as_bytes())?;
                    Ok(Outcome::Done)
                }
                None => Ok(Outcome::NotFound(format!("{} has no visible value", describe(&get.key)))),
            }
        }
        Command::Versions(versions) => {
            let history = client.versions(Versions::new(versions.key.table.clone(), key(&versions.key))).await?;
            if history.versions.is_empty() {
                return Ok(Outcome::NotFound(format!("{} has no versions", describe(&versions.key))));
            }
            let mut lookup = TopicLookup::default();
            lookup.resolve(&client, history.versions.iter().map(|v| &v.version).chain(&history.watermark)).await;
            let (k, f) = (&versions.key, format(versions.output));
            out.write_all(render::history(f, &k.table, &k.pk, &k.sort_key, &history, lookup.topics()).as_bytes())?;
            Ok(Outcome::Done)
        }
        Command::Explain(explain) => {
            let request = Explain { table: explain.key.table.clone(), key: key(&explain.key), as_of: explain.as_of };
            let explanation = client.explain(request).await?;
            let mut lookup = TopicLookup::default();
            let versions = explanation.candidates.iter().map(|c| &c.entry.version);
            lookup.resolve(&client, versions.chain(&explanation.watermark)).await;
            let k = &explain.key;
            let named = render::ExplainedKey { table: &k.table, partition_key: &k.pk, sort_key: &k.sort_key };
            let text = render::explanation(format(explain.output), named, &explanation, lookup.topics());
            out.write_all(text.as_bytes())?;
            Ok(Outcome::Done)
        }
        Command::Scan(scan) => run_scan(&client, scan, out).await,
        Command::ImportRedis(import) => super::import_redis::run(client, import, cli.timeout, out).await,
        Command::Stats(stats) if stats.watch => watch_stats(&client, &stats, out).await,
        Command::Stats(stats) => {
            let all = client.stats().await?;
            out.write_all(render::stats(format(stats.output), &all, stats.partitions, None).as_bytes())?;
            Ok(Outcome::Done)
        }
        Command::Compact(c) => {
            let compact = Compact { table: c.table, partition: c.partition, wait: c.wait };
            let report = client.compact(compact).await?;
            out.write_all(render::compaction(format(c.output), &report, c.wait).as_bytes())?;
            Ok(Outcome::Done)
        }
    }
}

async fn run_table(client: &Client, command: TableCommand, out: &mut dyn Write) -> Result<Outcome, CliError> {
    match command {
        TableCommand::Create(create) => {
            let defaults = TableSettings::default();
            let settings = TableSettings {
                max_versions: create.max_versions.unwrap_or(defaults.max_versions),
                version_retention_ms: create.retention,
                default_ttl_ms: create.ttl,
                tie_rule: defaults.tie_rule,
                rollback_window_ms: create.rollback_window.unwrap_or(defaults.rollback_window_ms),
            };
            let info = client.create_table(&create.name, settings).await?;
            out.write_all(render::created(&info).as_bytes())?;
        }
        TableCommand::Alter(alter) => {
            let change =
                AlterTable { name: alter.name, rollback_window_ms: alter.rollback_window, ..AlterTable::default() };
            let info = client.alter_table(change).await?;
            out.write_all(render::altered(&info).as_bytes())?;
        }
        TableCommand::List(output) => {
            let tables = client.list_tables().await?;
            out.write_all(render::tables(format(output), &tables).as_bytes())?;
        }
        TableCommand::Drop { name } => {
            client.drop_table(&name).await?;
            writeln!(out, "dropped table {name}")?;
        }
    }
    Ok(Outcome::Done)
}

async fn run_source(client: &Client, command: SourceCommand, out: &mut dyn Write) -> Result<Outcome, CliError> {
    match command {
        SourceCommand::Add(add) => {
            let spec = SourceSpec {
                name: add.source_name(),
                table: add.table,
                topics: add.topics,
                brokers: add.brokers,
                dead_letter_topic: add.dead_letter_topic,
                settings: add.settings,
            };
            let source = client.add_source(spec).await?;
            out.write_all(render::sources(format(add.output), std::slice::from_ref(&source)).as_bytes())?;
        }
        SourceCommand::List(output) => {
            let sources = client.list_sources().await?;
            out.write_all(render::sources(format(output), &sources).as_bytes())?;
        }
        SourceCommand::Remove { name } => {
            client.remove_source(&name).await?;
            writeln!(out, "removed source {name}")?;
        }
    }
    Ok(Outcome::Done)
}

/// Follows cursors until `--limit` rows or the end. JSON rows are written page by page; a
/// table is written once, aligned over every row.
async fn run_scan(client: &Client, args: ScanArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let format = format(args.output);
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    let mut request = Scan {
        table: args.table.clone(),
        partition_key: args.pk.clone().into_bytes(),
        from: args.from.map(String::into_bytes),
        to: args.to.map(String::into_bytes),
        limit: 0,
        reverse: args.reverse,
        cursor: None,
        as_of: args.as_of,
    };
    let mut collected = Vec::new();
    let mut lookup = TopicLookup::default();
    while remaining > 0 {
        request.limit = u32::try_from(remaining.min(u64::from(SCAN_PAGE_ROWS))).expect("at most SCAN_PAGE_ROWS");
        let mut page = client.scan(request.clone()).await?;
        let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(page.rows.len());
        page.rows.truncate(take);
        remaining -= take as u64;
        lookup.resolve(client, page.rows.iter().map(|r| &r.version)).await;
        match format {
            Format::Json => {
                let text = render::scan_rows(format, &args.table, &args.pk, &page.rows, lookup.topics());
                out.write_all(text.as_bytes())?;
            }
            Format::Table => collected.append(&mut page.rows),
        }
        match page.cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    if format == Format::Table {
        out.write_all(render::scan_rows(format, &args.table, &args.pk, &collected, lookup.topics()).as_bytes())?;
    }
    Ok(Outcome::Done)
}

/// `nacre stats --watch`: the statistics every `interval`, each counter with its rate per second
/// since the previous refresh. On a terminal each refresh replaces the last; otherwise refreshes
/// follow each other, tables separated by a blank line.
async fn watch_stats(client: &Client, args: &StatsArgs, out: &mut dyn Write) -> Result<Outcome, CliError> {
    let in_place = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut previous: Option<(Vec<nacre_wire::Stat>, std::time::Instant)> = None;
    let mut refreshes = 0u64;
    loop {
        let all = client.stats().await?;
        let now = std::time::Instant::now();
        let rates = previous.as_ref().map_or_else(render::StatRates::default, |(before, at)| {
            render::StatRates::between(before, now.duration_since(*at).as_secs_f64())
        });
        let shape = format(args.output);
        let frame = render::stats(shape, &all, args.partitions, Some(&rates));
        if in_place {
            // Home the cursor and clear the screen, then draw.
            out.write_all(b"\x1b[H\x1b[2J")?;
        } else if refreshes > 0 && shape == Format::Table {
            // JSON lines stay JSON lines: a refresh is just more of them.
            out.write_all(b"\n")?;
        }
        out.write_all(frame.as_bytes())?;
        out.flush()?;
        refreshes += 1;
        if args.count.is_some_and(|count| refreshes >= count) {
            return Ok(Outcome::Done);
        }
        previous = Some((all, now));
        tokio::time::sleep(args.interval).await;
    }
}
