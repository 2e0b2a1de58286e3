//! `nacre import-redis`: copies a running Redis's strings and hashes (with their TTLs) into a
//! Nacre table while Redis keeps serving, then catches up with what changed during the copy,
//! and with `--follow` keeps copying changes until SIGINT or SIGTERM.
//!
//! Every row is written at the time Redis's own clock showed when the key was read, so
//! Nacre's ordering rule decides between an imported value and a write the service made to
//! Nacre directly; a value Nacre has moved on from is not written again (`decision.rs`). A run
//! holds no state between runs: re-running starts over, and changes nothing already copied.
//!
//! The phases, each bounded:
//! 1. subscribe to keyspace notifications (`notify.rs`), enabling them if needed;
//! 2. `SCAN` the whole keyspace, reading keys in transactions (`source.rs`) and writing them
//!    (`sink.rs`);
//! 3. catch-up rounds: a barrier drains every notification so far, and the notified keys are
//!    read and reconciled again, until a round finds nothing (at most `--max-rounds`);
//! 4. with `--follow`, copy notified keys as they come until a signal, then one more catch-up;
//! 5. unsubscribe, restore the notification setting, print the summary (`summary.rs`).

mod decision;
pub mod notify;
mod progress;
mod sink;
mod source;
mod summary;

pub use summary::Summary;

use super::args::ImportRedisArgs;
use super::command::{CliError, Outcome};
use decision::Snapshot;
use nacre_wire::Client;
use notify::{Pending, Watch};
use progress::Progress;
use sink::Sink;
use source::{Source, SourceOptions};
use std::io::Write;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How often `--follow` looks for notified keys.
const FOLLOW_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why an import stopped before its summary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// `--from` is not `HOST:PORT`.
    #[error("not a HOST:PORT address: {0:?}")]
    BadAddress(String),
    /// The table does not exist.
    #[error("no table {0:?} (create it first: nacre table create {0})")]
    NoTable(String),
    /// A Redis command failed as a whole (connection, authentication, `SCAN`, `EXEC`).
    #[error("redis {op}: {source}")]
    Redis {
        /// The command.
        op: &'static str,
        /// The cause.
        #[source]
        source: redis::RedisError,
    },
    /// A read transaction answered with the wrong number of replies.
    #[error("a redis transaction returned {got} replies, expected {expected}")]
    TransactionShape {
        /// Replies expected.
        expected: usize,
        /// Replies received.
        got: usize,
    },
    /// The subscription connection ended: later changes would be missed.
    #[error("the keyspace notification connection closed; changes made since may be missed")]
    NotificationsLost,
    /// Signal handlers could not be installed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// Signals received so far, counted by a task that owns the handlers.
struct Stop {
    count: tokio::sync::watch::Receiver<u32>,
}

impl Stop {
    fn install() -> Result<Stop, ImportError> {
        let mut interrupt = signal(SignalKind::interrupt()).map_err(ImportError::Signals)?;
        let mut terminate = signal(SignalKind::terminate()).map_err(ImportError::Signals)?;
        let (sender, count) = tokio::sync::watch::channel(0u32);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                sender.send_modify(|n| *n += 1);
            }
        });
        Ok(Stop { count })
    }

    fn received(&self) -> u32 {
        *self.count.borrow()
    }

    async fn wait(&mut self) {
        // The sender lives as long as the runtime; an error would mean it is gone, so stop.
        let _ = self.count.wait_for(|n| *n > 0).await;
    }
}

/// True if `signals` received abort the copy: the first one without `--follow`, the second
/// one with it (the first one only ends following, after the copy and its catch-up).
fn aborts(signals: u32, follow: bool) -> bool {
    signals >= 2 || signals >= 1 && !follow
}

/// One import run's state.
struct Importer<'a> {
    args: ImportRedisArgs,
    source: Source,
    sink: Sink<'a>,
    watch: Option<Watch>,
    progress: Progress,
    stop: Stop,
    summary: Summary,
}

/// How the phases ended, short of an error.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// Everything was copied and every notified change caught up.
    Complete,
    /// Redis still changed after the last catch-up round.
    StillChanging,
    /// A signal aborted the copy.
    Interrupted,
}

/// Runs `nacre import-redis` against `client`'s server, printing the summary to `out`.
pub async fn run(
    client: Client,
    args: ImportRedisArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<Outcome, CliError> {
    let tables = client.list_tables().await?;
    if !tables.iter().any(|t| t.name == args.table) {
        return Err(ImportError::NoTable(args.table).into());
    }
    let options = SourceOptions {
        addr: args.from.clone(),
        db: args.db,
        user: args.user.clone(),
        password: args.password.clone(),
    };
    let redis = source::client(&options)?;
    let mut source = Source::connect(&redis, timeout).await?;
    let stop = Stop::install()?;
    let progress = Progress::new(source.key_count().await?, args.quiet);
    let mut summary = Summary::default();
    let pattern = args.pattern.clone().unwrap_or_else(|| "*".to_owned());
    let watch = match Watch::start(&redis, source.connection(), args.db, &pattern).await {
        Ok(watch) => Some(watch),
        Err(e) => {
            progress.warn(&format!("warning: {e}; changes made during the copy may be missed"));
            summary.changes_may_be_missed = true;
            None
        }
    };
    let batch_rows = usize::try_from(args.batch).unwrap_or(usize::MAX);
    let sink = Sink::new(&client, args.table.clone(), batch_rows);
    let json = args.output.json;
    let mut importer = Importer { args, source, sink, watch, progress, stop, summary };
    let ended = importer.run_phases().await;
    let stopped = match importer.watch.take() {
        Some(watch) => watch.stop(importer.source.connection()).await,
        None => Ok(()),
    };
    importer.progress.finish();
    let end = ended?;
    if let Err(e) = stopped {
        importer.progress.warn(&format!("warning: {e}"));
    }
    let mut summary = importer.summary;
    summary.still_changing = end == End::StillChanging;
    let text = if json { summary.to_json() } else { summary.to_text() };
    out.write_all(text.as_bytes())?;
    Ok(match end {
        End::Interrupted => Outcome::Incomplete("interrupted before the copy finished; re-run to finish".to_owned()),
        _ if summary.keys_failed > 0 => Outcome::Incomplete(format!("{} keys failed", summary.keys_failed)),
        End::StillChanging | End::Complete => Outcome::Done,
    })
}

impl Importer<'_> {
    async fn run_phases(&mut self) -> Result<End, ImportError> {
        if !self.copy_all().await? {
            return Ok(End::Interrupted);
        }
        let mut settled = self.catch_up().await?;
        if self.args.follow && self.watch.is_none() {
            self.progress.warn("warning: --follow needs keyspace notifications; stopping after the copy");
        } else if self.args.follow && !self.aborted() {
            settled = self.follow().await?;
        }
        if self.aborted() {
            return Ok(End::Interrupted);
        }
        Ok(if settled { End::Complete } else { End::StillChanging })
    }

    fn aborted(&self) -> bool {
        aborts(self.stop.received(), self.args.follow)
    }

    /// Scans the whole keyspace; false if a signal aborted it.
    async fn copy_all(&mut self) -> Result<bool, ImportError> {
        self.progress.phase("scan".to_owned());
        let mut cursor = 0;
        loop {
            if self.aborted() {
                return Ok(false);
            }
            let (next, keys) =
                self.source.scan_page(cursor, self.args.pattern.as_deref(), self.args.scan_count).await?;
            for chunk in keys.chunks(self.batch_keys()) {
                let snapshots = self.read(chunk).await?;
                self.sink.import_scanned(&snapshots, &mut self.summary).await;
                self.progress.read(chunk.len() as u64);
            }
            // Keeps the notification queue short while the scan runs.
            if let Some(watch) = &mut self.watch {
                watch.drain_ready().await?;
            }
            if next == 0 {
                return Ok(true);
            }
            cursor = next;
        }
    }

    /// Rounds of: barrier, then copy the notified keys; true once a round finds nothing.
    async fn catch_up(&mut self) -> Result<bool, ImportError> {
        for _ in 0..self.args.max_rounds {
            let Some(watch) = &mut self.watch else { return Ok(true) };
            watch.barrier().await?;
            let pending = watch.take();
            if pending.is_empty() {
                return Ok(true);
            }
            if self.aborted() {
                return Ok(false);
            }
            self.copy_pending(pending).await?;
        }
        Ok(false)
    }

    /// Copies notified keys as they come until a signal, then catches up one last time.
    async fn follow(&mut self) -> Result<bool, ImportError> {
        self.progress.warn("following changes; SIGINT or SIGTERM stops after a last catch-up");
        self.progress.phase("following".to_owned());
        while self.stop.received() == 0 {
            tokio::select! {
                _ = self.stop.wait() => break,
                _ = tokio::time::sleep(FOLLOW_POLL_INTERVAL) => {}
            }
            let Some(watch) = &mut self.watch else { break };
            watch.drain_ready().await?;
            if watch.has_pending() {
                let pending = watch.take();
                self.copy_pending(pending).await?;
            }
        }
        self.catch_up().await
    }

    /// One catch-up round: reads the notified keys again and reconciles them, or rescans
    /// everything if too many were notified to hold.
    async fn copy_pending(&mut self, pending: Pending) -> Result<(), ImportError> {
        self.summary.catch_up_rounds += 1;
        self.progress.phase(format!("catch-up round {}", self.summary.catch_up_rounds));
        if pending.overflowed {
            self.copy_all().await?;
            return Ok(());
        }
        let keys: Vec<Vec<u8>> = pending.keys.into_iter().collect();
        for chunk in keys.chunks(self.batch_keys()) {
            let snapshots = self.read(chunk).await?;
            self.sink.import_notified(&snapshots, &mut self.summary).await;
            if let Some(watch) = &mut self.watch {
                watch.drain_ready().await?;
            }
        }
        Ok(())
    }

    /// Reads `keys` from Redis; a key that cannot be read is counted failed and left out.
    async fn read(&mut self, keys: &[Vec<u8>]) -> Result<Vec<Snapshot>, ImportError> {
        let results = self.source.read(keys).await?;
        let mut snapshots = Vec::with_capacity(results.len());
        for (key, result) in keys.iter().zip(results) {
            self.summary.keys_scanned += 1;
            match result {
                Ok(snapshot) => snapshots.push(snapshot),
                Err(e) => self.summary.fail(key, e),
            }
        }
        Ok(snapshots)
    }

    fn batch_keys(&self) -> usize {
        usize::try_from(self.args.batch).unwrap_or(usize::MAX).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_aborts_a_plain_import_but_only_ends_following() {
        assert!(!aborts(0, false) && !aborts(0, true));
        assert!(aborts(1, false));
        assert!(!aborts(1, true));
        assert!(aborts(2, true));
    }
}
