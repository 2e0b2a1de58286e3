//! Lineage events: each bulk link and rollback, and each Kafka source added or removed, is
//! reported as an OpenLineage `RunEvent` (`event.rs`), appended as one JSON line to
//! `[lineage] file` and/or POSTed to `[lineage] url` (`sink.rs`), so a metadata service
//! (Marquez, DataHub, OpenMetadata) or its agent learns of it. Events go through a bounded queue
//! to a writer thread of their own, so a slow disk or endpoint never holds a shard: past
//! `max_queued_events` an event is dropped and counted (`lineage_events_dropped_total`), never
//! waited for; one a destination refuses is counted as failed.

mod event;
mod sink;

pub(crate) use event::SourceFacts;
pub use event::{PRODUCER, SCHEMA_URL};

use crate::config::LineageConfig;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The lineage emitter a process shares: counters, and the queue to the writer when on.
#[derive(Debug, Default)]
pub struct Lineage {
    queue: Mutex<Option<SyncSender<String>>>,
    namespace: String,
    emitted: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

impl Lineage {
    /// An emitter that writes nothing (lineage off).
    pub fn off() -> Arc<Lineage> {
        Arc::new(Lineage::default())
    }

    /// The emitter `config` asks for: off when it names neither a file nor a URL; otherwise
    /// with its writer thread started, the file opened (created if missing) here so a bad path
    /// stops the start. Events queue up to `max_queued_events` before they are dropped.
    pub fn start(config: &LineageConfig) -> anyhow::Result<(Arc<Lineage>, Option<std::thread::JoinHandle<()>>)> {
        let file = Some(config.file.as_str()).filter(|f| !f.is_empty()).map(std::path::Path::new);
        let url = Some(config.url.as_str()).filter(|u| !u.is_empty());
        if file.is_none() && url.is_none() {
            return Ok((Lineage::off(), None));
        }
        let mut sink = sink::Sink::open(file, url, Duration::from_millis(config.post_timeout_ms))?;
        let (sender, events) = std::sync::mpsc::sync_channel::<String>(config.max_queued_events);
        let lineage = Arc::new(Lineage {
            queue: Mutex::new(Some(sender)),
            namespace: config.namespace.clone(),
            ..Lineage::default()
        });
        let writer = lineage.clone();
        let thread = std::thread::Builder::new()
            .name("lineage".into())
            .spawn(move || {
                for line in events {
                    if !sink.deliver(&line) {
                        writer.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the lineage thread: {e}"))?;
        Ok((lineage, Some(thread)))
    }

    /// Closes the queue: the writer thread delivers what is queued and ends.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }

    fn is_on(&self) -> bool {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// Queues `event` for the writer, or counts it dropped when the queue is full; nothing when
    /// lineage is off.
    fn emit(&self, event: &Value) {
        let queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(sender) = queue.as_ref() else { return };
        let mut line = event.to_string();
        line.push('\n');
        match sender.try_send(line) {
            Ok(()) => {
                self.emitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Reports a bulk load's link (`job` "bulk-link") or rollback ("bulk-rollback") as complete.
    pub(crate) fn bulk_load(&self, job: &str, load: &crate::bulk_book::LoadRecord) {
        if self.is_on() {
            self.emit(&event::bulk_load(&self.namespace, job, load));
        }
    }

    /// Reports a source's addition (`job` "source-add") or removal ("source-remove") as
    /// complete.
    pub(crate) fn source(&self, job: &str, source: SourceFacts<'_>) {
        if self.is_on() {
            self.emit(&event::source(&self.namespace, job, source));
        }
    }

    /// Appends `lineage_events_total`, `lineage_events_dropped_total` and
    /// `lineage_events_failed_total` (the process's, reported by shard 0).
    pub(crate) fn push_stats(&self, shard: Option<u32>, out: &mut Vec<nacre_wire::Stat>) {
        for (name, counter) in [
            ("lineage_events_total", &self.emitted),
            ("lineage_events_dropped_total", &self.dropped),
            ("lineage_events_failed_total", &self.failed),
        ] {
            out.push(nacre_wire::Stat {
                name: name.into(),
                shard,
                partition: None,
                value: counter.load(Ordering::Relaxed),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (sender, events) = std::sync::mpsc::sync_channel::<String>(1);
        let lineage = Lineage { queue: Mutex::new(Some(sender)), namespace: "nacre".into(), ..Lineage::default() };
        for _ in 0..3 {
            lineage.emit(&json!({"n": 1}));
        }
        assert_eq!(lineage.emitted.load(Ordering::Relaxed), 1);
        assert_eq!(lineage.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(events.try_recv().expect("one queued"), "{\"n\":1}\n");
        lineage.close();
        lineage.emit(&json!({"n": 2}));
        assert_eq!(lineage.emitted.load(Ordering::Relaxed), 1, "closed: nothing more is queued");
    }

    #[test]
    fn an_unreachable_url_counts_failures_and_the_writer_keeps_going() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
        let config = LineageConfig {
            file: String::new(),
            url: format!("http://127.0.0.1:{port}/api/v1/lineage"),
            namespace: "nacre".into(),
            max_queued_events: 8,
            post_timeout_ms: 2_000,
        };
        let (lineage, writer) = Lineage::start(&config).expect("started");
        lineage.emit(&json!({"n": 1}));
        lineage.emit(&json!({"n": 2}));
        lineage.close();
        writer.expect("a writer").join().expect("the writer ends");
        assert_eq!(lineage.emitted.load(Ordering::Relaxed), 2);
        assert_eq!(lineage.failed.load(Ordering::Relaxed), 2);
    }
}
