//! The `nacre` command line: every command, flag and default, as clap derive types. Owns
//! parsing only; running a command is `command.rs`'s job.

use super::time::{parse_as_of, parse_duration_ms, parse_duration_or_zero_ms, parse_ts};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use nacre_wire::Ts;
use std::time::Duration;

/// `nacre`: talk to a running `nacred`.
#[derive(Parser, Debug)]
#[command(
    name = "nacre",
    version,
    about = "Command-line client for nacred",
    after_help = "TS is RFC 3339 (2026-11-26T10:00:00Z), integer milliseconds since the Unix epoch, or \
                  MS.LOGICAL as printed by reads. DURATION is 30s, 15m, 7d, 1h30m, ...\n\
                  Exit status: 0 success, 1 not found (get, versions), 2 any error."
)]
pub struct Cli {
    /// The server: its shared port, or any shard's port.
    #[arg(long, global = true, default_value = "127.0.0.1:7070")]
    pub addr: String,
    /// Longest to wait for connecting and for each reply.
    #[arg(long, global = true, default_value = "5s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A `nacre` command.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create, list or drop tables.
    #[command(subcommand)]
    Table(TableCommand),
    /// Add, list or remove Kafka sources (topics consumed into a table).
    #[command(subcommand)]
    Source(SourceCommand),
    /// Build bulk loads offline, link them into the server, see their state, roll them back.
    #[command(subcommand)]
    Bulk(BulkCommand),
    /// Write a value.
    Put(PutArgs),
    /// Read a key's visible value (exit 1 if there is none).
    Get(GetArgs),
    /// Delete a key (write a tombstone).
    Del(DelArgs),
    /// Read a partition key's rows in sort-key order, following pages to the end or --limit.
    Scan(ScanArgs),
    /// Read every retained version of a key, newest first, with origins (exit 1 if none).
    Versions(VersionsArgs),
    /// Explain a key's read: the visible version or why none is, every retained version with
    /// where it lives, and the step of the ordering rule that decided (exit 0 either way).
    Explain(ExplainArgs),
    /// Server, shard and partition statistics.
    Stats(StatsArgs),
    /// Compact the partitions holding a table (all, or one) whole, under the garbage-collection
    /// contract. Partitions keep every table's data together, so each is compacted whole. A bulk
    /// load whose segments this merges can no longer be rolled back.
    Compact(CompactArgs),
    /// Copy a running Redis's strings and hashes (with TTLs) into a table, and follow its
    /// changes with --follow; safe to re-run.
    ImportRedis(ImportRedisArgs),
}

/// `nacre table ...`.
#[derive(Subcommand, Debug)]
pub enum TableCommand {
    /// Create a table.
    Create(TableCreateArgs),
    /// Change some of a table's settings (those given; the rest are kept), and print it.
    Alter(TableAlterArgs),
    /// List tables and their settings.
    List(OutputArgs),
    /// Drop a table and all its data.
    Drop {
        /// The table.
        name: String,
    },
}

/// `nacre bulk ...`.
#[derive(Subcommand, Debug)]
pub enum BulkCommand {
    /// Build a load directory from Parquet, JSON Lines or CSV files, offline (no server needed).
    Build(Box<super::bulk_build::BulkBuildArgs>),
    /// Link a built load into the server: validate every file, then commit it on every partition
    /// at once. DIR must be readable by the server (same machine). Re-linking is a no-op.
    Link(BulkLinkArgs),
    /// Show one load's state, or every load's.
    Status {
        /// The load id; all loads if absent.
        load: Option<u32>,
        /// Output.
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Withdraw a linked load: its versions and its replace watermark stop being visible, and
    /// what it superseded shows again (while retained).
    Rollback {
        /// The load id.
        load: u32,
        /// Output.
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// `nacre bulk link`.
#[derive(ClapArgs, Debug)]
pub struct BulkLinkArgs {
    /// The load directory (the builder's --out), as the server's machine names it.
    pub dir: std::path::PathBuf,
    /// Longest to wait for the link, which reads every byte of the load to validate it.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// How much of the load the server checks before it commits.
    #[arg(long, value_enum, default_value = "full")]
    pub verify: VerifyArg,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How much of a bulk load a link checks.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyArg {
    /// Every file's size and checksum, its structure, every block and every entry (the keys'
    /// partitions and order, origins, the server's limits and clock skew bound).
    Full,
    /// Every file's size and checksum and its structure, and what each file's metadata says of
    /// its entries; no entry is decoded: trusts the builder for their order, origins and limits.
    Checksums,
}

/// `nacre table create`.
#[derive(ClapArgs, Debug)]
pub struct TableCreateArgs {
    /// The new table's name.
    pub name: String,
    /// Versions of each key to keep (server default 3).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_versions: Option<u32>,
    /// Time to live of writes that carry none.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub ttl: Option<u64>,
    /// Longest a superseded version is kept.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub retention: Option<u64>,
    /// How long after its link a bulk load into the table stays out of compaction, so that a
    /// rollback shows again everything it superseded; 0 is no window (server default 24h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero_ms)]
    pub rollback_window: Option<u64>,
}

/// `nacre table alter`: at least one setting to change.
#[derive(ClapArgs, Debug)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
pub struct TableAlterArgs {
    /// The table.
    pub name: String,
    /// A new rollback window (see `table create`); 0 is none. Applies to the table's loads
    /// already linked too: a load older than the new window may be merged from then on.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_or_zero_ms, group = "change")]
    pub rollback_window: Option<u64>,
}

/// `nacre source ...`.
#[derive(Subcommand, Debug)]
pub enum SourceCommand {
    /// Start consuming Kafka topics into a table; prints the source as `list` does.
    Add(SourceAddArgs),
    /// List sources, with each topic's stream id (settings named like a password or secret are
    /// printed as <redacted>).
    List(OutputArgs),
    /// Stop consuming a source.
    Remove {
        /// The source.
        name: String,
    },
}

/// `nacre source add`.
#[derive(ClapArgs, Debug)]
pub struct SourceAddArgs {
    /// The table the records are written to (it must exist).
    pub table: String,
    /// A Kafka topic to consume; repeat for more.
    #[arg(long = "topic", value_name = "TOPIC", required = true)]
    pub topics: Vec<String>,
    /// The Kafka bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    pub brokers: String,
    /// The source's name; default TABLE.TOPIC, of the first topic.
    #[arg(long)]
    pub name: Option<String>,
    /// Where records that cannot be applied are produced; default: they are dropped.
    #[arg(long, value_name = "TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// A Kafka client (librdkafka) setting, passed through; repeat for more. The value is
    /// everything after the first `=`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    /// How to print the source.
    #[command(flatten)]
    pub output: OutputArgs,
}

impl SourceAddArgs {
    /// The source's name: `--name`, else `TABLE.TOPIC` of the first topic.
    pub fn source_name(&self) -> String {
        match (&self.name, self.topics.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(topic)) => format!("{}.{topic}", self.table),
            (None, None) => self.table.clone(),
        }
    }
}

/// A `KEY=VALUE` setting, split on the first `=`; the key must not be empty.
fn parse_setting(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some(("", _)) => Err(format!("{arg:?} has an empty key (expected KEY=VALUE)")),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("{arg:?} has no '=' (expected KEY=VALUE)")),
    }
}

/// How a read prints.
#[derive(ClapArgs, Debug, Clone, Copy, Default)]
pub struct OutputArgs {
    /// One JSON object per row instead of a table (see the module docs for the fields).
    #[arg(long)]
    pub json: bool,
}

/// A key: table, partition key, optional sort key.
#[derive(ClapArgs, Debug)]
pub struct KeyArgs {
    /// The table.
    pub table: String,
    /// The partition key (UTF-8).
    pub pk: String,
    /// The sort key (UTF-8); empty if not given.
    #[arg(long, short = 's', default_value = "")]
    pub sort_key: String,
}

/// When a write is acknowledged.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurabilityArg {
    /// After the write is durable on disk.
    Sync,
    /// After it is applied in memory; durable within the server's async commit window.
    Async,
}

/// `nacre put`.
#[derive(ClapArgs, Debug)]
pub struct PutArgs {
    /// Where.
    #[command(flatten)]
    pub key: KeyArgs,
    /// The value (UTF-8, or base64 with --base64).
    pub value: String,
    /// The value is base64 (standard alphabet, padded), for binary values.
    #[arg(long)]
    pub base64: bool,
    /// The version's timestamp; default: the server's clock.
    #[arg(long, value_name = "TS", value_parser = parse_ts)]
    pub ts: Option<Ts>,
    /// Time to live, counted from the version's timestamp; default: the table's.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub ttl: Option<u64>,
    /// When to acknowledge; default: the server's.
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
}

/// `nacre get`.
#[derive(ClapArgs, Debug)]
pub struct GetArgs {
    /// What.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Read as of this timestamp (a wall-clock TS covers its whole millisecond).
    #[arg(long, value_name = "TS", value_parser = parse_as_of)]
    pub as_of: Option<Ts>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `nacre del`.
#[derive(ClapArgs, Debug)]
pub struct DelArgs {
    /// What.
    #[command(flatten)]
    pub key: KeyArgs,
    /// The tombstone's timestamp; default: the server's clock.
    #[arg(long, value_name = "TS", value_parser = parse_ts)]
    pub ts: Option<Ts>,
    /// When to acknowledge; default: the server's.
    #[arg(long, value_enum)]
    pub durability: Option<DurabilityArg>,
}

/// `nacre scan`.
#[derive(ClapArgs, Debug)]
pub struct ScanArgs {
    /// The table.
    pub table: String,
    /// The partition key whose rows are read.
    pub pk: String,
    /// Smallest sort key, inclusive.
    #[arg(long, value_name = "SK")]
    pub from: Option<String>,
    /// Greatest sort key, inclusive.
    #[arg(long, value_name = "SK")]
    pub to: Option<String>,
    /// Most rows to print; default: all.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// Descending sort-key order.
    #[arg(long)]
    pub reverse: bool,
    /// Read as of this timestamp (a wall-clock TS covers its whole millisecond).
    #[arg(long, value_name = "TS", value_parser = parse_as_of)]
    pub as_of: Option<Ts>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `nacre versions`.
#[derive(ClapArgs, Debug)]
pub struct VersionsArgs {
    /// What.
    #[command(flatten)]
    pub key: KeyArgs,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `nacre explain`.
#[derive(ClapArgs, Debug)]
pub struct ExplainArgs {
    /// What.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Explain the read as of this timestamp (a wall-clock TS covers its whole millisecond).
    #[arg(long, value_name = "TS", value_parser = parse_as_of)]
    pub as_of: Option<Ts>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How long `nacre compact --wait` waits for its answer, at least.
pub const COMPACT_WAIT: Duration = Duration::from_secs(3600);

/// `nacre compact`.
#[derive(ClapArgs, Debug)]
pub struct CompactArgs {
    /// The table.
    pub table: String,
    /// Only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Answer once done (waiting up to an hour, or --timeout if longer), with what was read and
    /// written, instead of once queued.
    #[arg(long)]
    pub wait: bool,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `nacre stats`.
#[derive(ClapArgs, Debug)]
pub struct StatsArgs {
    /// One row per partition statistic instead of sums per shard.
    #[arg(long)]
    pub partitions: bool,
    /// Refresh in place every --interval, with each counter's rate per second since the last
    /// refresh, until interrupted (or --count refreshes).
    #[arg(long)]
    pub watch: bool,
    /// Time between --watch refreshes.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, requires = "watch")]
    pub interval: std::time::Duration,
    /// Stop --watch after this many refreshes.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), requires = "watch")]
    pub count: Option<u64>,
    /// How to print.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Most keys read per Redis transaction and rows per Nacre write batch (`--batch`).
pub const MAX_IMPORT_BATCH: u64 = 10_000;

/// `nacre import-redis`.
#[derive(ClapArgs, Debug)]
pub struct ImportRedisArgs {
    /// The source Redis, HOST:PORT ([V6]:PORT for IPv6).
    #[arg(long, value_name = "HOST:PORT")]
    pub from: String,
    /// The Nacre table to copy into (it must exist).
    #[arg(long)]
    pub table: String,
    /// The Redis logical database.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i64).range(0..))]
    pub db: i64,
    /// Copy only keys matching this SCAN pattern (notified keys are matched too).
    #[arg(long = "match", value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// SCAN's COUNT hint: keys Redis looks at per page.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub scan_count: u32,
    /// Keys per Redis read transaction, and rows per Nacre write batch.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=MAX_IMPORT_BATCH))]
    pub batch: u64,
    /// After the copy, keep copying changes until SIGINT or SIGTERM, then drain and stop.
    #[arg(long)]
    pub follow: bool,
    /// Catch-up rounds after the scan before giving up on a Redis that keeps changing.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_rounds: u32,
    /// Redis ACL user.
    #[arg(long)]
    pub user: Option<String>,
    /// Redis password (visible to other local users in the process list; prefer an ACL user
    /// with a short-lived password).
    #[arg(long)]
    pub password: Option<String>,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub quiet: bool,
    /// Print the summary as one JSON object.
    #[command(flatten)]
    pub output: OutputArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("nacre").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn put_takes_flags_anywhere_and_parses_ts_and_ttl() {
        let cli = parse(&["--addr", "h:1", "put", "t", "pk", "--sort-key", "sk", "v", "--ts", "1000", "--ttl", "30s"])
            .expect("valid");
        assert_eq!(cli.addr, "h:1");
        let Command::Put(put) = cli.command else { panic!("not a put: {:?}", cli.command) };
        assert_eq!((put.key.table.as_str(), put.key.pk.as_str(), put.key.sort_key.as_str()), ("t", "pk", "sk"));
        assert_eq!(put.value, "v");
        assert_eq!(put.ts, Some(Ts::from_millis(1000)));
        assert_eq!(put.ttl, Some(30_000));
    }

    #[test]
    fn table_create_and_alter_take_a_rollback_window_that_may_be_zero() {
        let cli = parse(&["table", "create", "t", "--rollback-window", "2h"]).expect("valid");
        let Command::Table(TableCommand::Create(create)) = cli.command else { panic!("not a create") };
        assert_eq!(create.rollback_window, Some(7_200_000));
        let cli = parse(&["table", "create", "t"]).expect("valid");
        let Command::Table(TableCommand::Create(create)) = cli.command else { panic!("not a create") };
        assert_eq!(create.rollback_window, None, "the server's default");
        let cli = parse(&["table", "alter", "t", "--rollback-window", "0"]).expect("valid");
        let Command::Table(TableCommand::Alter(alter)) = cli.command else { panic!("not an alter") };
        assert_eq!((alter.name.as_str(), alter.rollback_window), ("t", Some(0)));
    }

    #[test]
    fn bad_ts_duration_and_limits_are_usage_errors() {
        for args in [
            &["put", "t", "pk", "v", "--ts", "yesterday"][..],
            &["put", "t", "pk", "v", "--ttl", "forever"],
            &["table", "create", "t", "--max-versions", "0"],
            &["table", "create", "t", "--rollback-window", "1day2"],
            &["table", "alter", "t"],
            &["scan", "t", "pk", "--limit", "0"],
            &["get", "t"],
        ] {
            let e = parse(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn import_redis_takes_its_defaults_and_flags() {
        let cli = parse(&["import-redis", "--from", "127.0.0.1:6379", "--table", "t"]).expect("valid");
        let Command::ImportRedis(import) = cli.command else { panic!("not an import") };
        assert_eq!((import.from.as_str(), import.table.as_str(), import.db), ("127.0.0.1:6379", "t", 0));
        assert_eq!((import.scan_count, import.batch, import.max_rounds), (1000, 500, 16));
        assert!(!import.follow && !import.quiet && !import.output.json);
        assert_eq!(import.pattern, None);
        let cli = parse(&[
            "import-redis",
            "--from",
            "h:1",
            "--table",
            "t",
            "--match",
            "user:*",
            "--scan-count",
            "50",
            "--batch",
            "20",
            "--follow",
            "--db",
            "3",
            "--user",
            "u",
            "--password",
            "p",
            "--quiet",
            "--json",
        ])
        .expect("valid");
        let Command::ImportRedis(import) = cli.command else { panic!("not an import") };
        assert_eq!(import.pattern.as_deref(), Some("user:*"));
        assert_eq!((import.scan_count, import.batch, import.db), (50, 20, 3));
        assert_eq!((import.user.as_deref(), import.password.as_deref()), (Some("u"), Some("p")));
        assert!(import.follow && import.quiet && import.output.json);
    }

    #[test]
    fn import_redis_refuses_missing_and_out_of_range_flags() {
        for args in [
            &["import-redis", "--table", "t"][..],
            &["import-redis", "--from", "h:1"],
            &["import-redis", "--from", "h:1", "--table", "t", "--batch", "0"],
            &["import-redis", "--from", "h:1", "--table", "t", "--batch", "10001"],
            &["import-redis", "--from", "h:1", "--table", "t", "--scan-count", "0"],
            &["import-redis", "--from", "h:1", "--table", "t", "--db", "-1"],
        ] {
            let e = parse(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn source_add_repeats_topics_and_settings_and_names_itself_after_the_first_topic() {
        let cli = parse(&[
            "source",
            "add",
            "orders",
            "--topic",
            "orders-eu",
            "--brokers",
            "k1:9092,k2:9092",
            "--topic",
            "orders-us",
            "--set",
            "security.protocol=SASL_SSL",
            "--set",
            "sasl.jaas.config=a=b;c=d",
            "--set",
            "empty=",
        ])
        .expect("valid");
        let Command::Source(SourceCommand::Add(add)) = cli.command else { panic!("not a source add") };
        assert_eq!(add.table, "orders");
        assert_eq!(add.topics, ["orders-eu", "orders-us"]);
        assert_eq!(add.brokers, "k1:9092,k2:9092");
        assert_eq!(add.source_name(), "orders.orders-eu");
        assert_eq!(add.dead_letter_topic, None);
        let settings: Vec<(&str, &str)> = add.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            settings,
            [("security.protocol", "SASL_SSL"), ("sasl.jaas.config", "a=b;c=d"), ("empty", "")],
            "split on the first '=' only"
        );
        assert!(!add.output.json);

        let cli = parse(&[
            "source",
            "add",
            "t",
            "--topic",
            "x",
            "--brokers",
            "b",
            "--name",
            "mine",
            "--dead-letter-topic",
            "x-dlq",
            "--json",
        ])
        .expect("valid");
        let Command::Source(SourceCommand::Add(add)) = cli.command else { panic!("not a source add") };
        assert_eq!(add.source_name(), "mine");
        assert_eq!(add.dead_letter_topic.as_deref(), Some("x-dlq"));
        assert!(add.settings.is_empty() && add.output.json);
    }

    #[test]
    fn source_add_refuses_a_setting_without_a_key_and_value_and_needs_a_topic_and_brokers() {
        for args in [
            &["source", "add", "t", "--topic", "x", "--brokers", "b", "--set", "no-equals"][..],
            &["source", "add", "t", "--topic", "x", "--brokers", "b", "--set", "=v"],
            &["source", "add", "t", "--brokers", "b"],
            &["source", "add", "t", "--topic", "x"],
            &["source", "add", "--topic", "x", "--brokers", "b"],
            &["source", "remove"],
        ] {
            let e = parse(args).expect_err("refused");
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn source_list_and_remove_parse() {
        let cli = parse(&["source", "list", "--json"]).expect("valid");
        assert!(matches!(cli.command, Command::Source(SourceCommand::List(OutputArgs { json: true }))));
        let cli = parse(&["source", "remove", "orders.orders-eu"]).expect("valid");
        let Command::Source(SourceCommand::Remove { name }) = cli.command else { panic!("not a source remove") };
        assert_eq!(name, "orders.orders-eu");
    }

    #[test]
    fn global_flags_follow_the_command_too() {
        let cli =
            parse(&["get", "t", "pk", "--addr", "h:2", "--json", "--as-of", "2026-11-26T10:00:00Z"]).expect("valid");
        assert_eq!(cli.addr, "h:2");
        let Command::Get(get) = cli.command else { panic!("not a get") };
        assert!(get.output.json);
        assert_eq!(get.as_of, Some(Ts((1_795_687_200_000 << 16) | 0xffff)));
    }
}
