//! Lineage events: each bulk link and rollback is reported as an OpenLineage `RunEvent` (the
//! job: the load; the dataset: the table; facets: the load's id, mode, snapshot, files, bytes
//! and rows), appended as one JSON line to `[lineage] file`, which a metadata service's agent
//! (Marquez, DataHub, OpenMetadata) can ship. Events go through a bounded queue to a writer
//! thread of their own, so a slow disk never holds a shard: past `max_queued_events` an event is
//! dropped and counted (`lineage_events_dropped_total`), never waited for.

use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

/// What events say produced them (a URI, as OpenLineage requires).
pub const PRODUCER: &str = concat!("urn:nacre:nacred:", env!("CARGO_PKG_VERSION"));
/// The OpenLineage schema version the events follow.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Names the version of the run facet describing a bulk load (no published schema: a URN).
const LOAD_FACET_SCHEMA_URL: &str = "urn:nacre:facet:NacreBulkLoadRunFacet:1";

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

    /// Starts the writer thread appending to `file`, opened (created if missing) here so a bad
    /// path stops the start; events queue up to `max_queued` before they are dropped.
    pub fn to_file(
        file: &Path,
        namespace: &str,
        max_queued: usize,
    ) -> anyhow::Result<(Arc<Lineage>, std::thread::JoinHandle<()>)> {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .map_err(|e| anyhow::anyhow!("cannot open the lineage file {} (lineage.file): {e}", file.display()))?;
        let (sender, events) = std::sync::mpsc::sync_channel::<String>(max_queued);
        let lineage = Arc::new(Lineage {
            queue: Mutex::new(Some(sender)),
            namespace: namespace.to_owned(),
            ..Lineage::default()
        });
        let writer = lineage.clone();
        let path: PathBuf = file.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("lineage".into())
            .spawn(move || {
                for line in events {
                    let written = out.write_all(line.as_bytes()).and_then(|()| out.flush());
                    if let Err(e) = written {
                        writer.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(file = %path.display(), error = %e, "a lineage event was not written");
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!("starting the lineage thread: {e}"))?;
        Ok((lineage, thread))
    }

    /// Closes the queue: the writer thread writes what is queued and ends.
    pub fn close(&self) {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
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
        if self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_none() {
            return;
        }
        let facet = json!({
            "_producer": PRODUCER,
            "_schemaURL": LOAD_FACET_SCHEMA_URL,
            "loadId": load.load_id,
            "mode": load.mode,
            "snapshotMs": load.snapshot_ms,
            "files": load.files,
            "bytes": load.bytes,
            "rowCount": load.entries,
            "state": load.state,
        });
        let event = json!({
            "eventType": "COMPLETE",
            "eventTime": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            "producer": PRODUCER,
            "schemaURL": SCHEMA_URL,
            "run": { "runId": uuid::Uuid::new_v4().to_string(), "facets": { "nacre_bulkLoad": facet } },
            "job": { "namespace": self.namespace, "name": format!("{job}:{}", load.load_id) },
            "inputs": [],
            "outputs": [{ "namespace": self.namespace, "name": load.table }],
        });
        self.emit(&event);
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
}
