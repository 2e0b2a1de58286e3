//! The `nacre` command-line client: parses a command, runs it against a `nacred` over the wire
//! client, and prints what it read. It is a client only: it names wire types, never storage
//! or the daemon's shards. The one exception is [`bulk_build`], which runs offline and drives
//! storage's bulk builder.
//!
//! Exit status: 0 on success, 1 when a read key has no visible value (`get`) or no versions
//! (`versions`), with a message on stderr (`explain` exits 0 either way: its verdict says why),
//! and 2 on any error (usage, connection, or a server
//! error, printed with the server's code and message) and when `import-redis` did not copy
//! everything (failed keys, interrupted, Redis still changing). Output formats are described in
//! [`render`].

pub mod args;
pub mod bulk;
pub mod bulk_build;
pub mod command;
pub mod import_redis;
pub mod render;
pub mod time;

pub use args::Cli;
pub use command::{CliError, Outcome, run};

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status when the key read does not exist.
pub const EXIT_NOT_FOUND: i32 = 1;
/// Exit status for every error.
pub const EXIT_ERROR: i32 = 2;
