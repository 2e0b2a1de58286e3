//! The stream write path: versions from a source that is its own durable log (a Kafka topic)
//! go straight to the memtable, with no WAL record. Kafka is the log.
//!
//! The source's position, "every message before offset N is in this partition's memtables or
//! durable elsewhere", is noted in the active memtable and committed by the flush that makes
//! those versions durable, in the same manifest edit (`flush.rs`). After a crash the source
//! replays from the committed position; re-applying a version is idempotent (same identity, same
//! place in the order), so nothing is lost and nothing is doubled.
//!
//! A position that covers no version in memory (every message went to other partitions, through
//! durable writes) is committed on its own by [`Engine::checkpoint_source_offsets`], so replay
//! after a crash stays short.

use super::Engine;
use crate::error::Result;
use crate::io::Disk;
use crate::manifest::ManifestEdit;
use crate::memtable::Inserted;
use crate::record::Entry;

/// What applying a streamed batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAck {
    /// Versions that were new.
    pub applied: usize,
    /// Versions already present (a replay after a restart).
    pub duplicates: usize,
}

impl<D: Disk> Engine<D> {
    /// Validates `batch` like [`Engine::write`] (limits, tables, clock skew; a value without an
    /// expiry gets the table's default TTL, in place) and applies it to the active memtable, all
    /// or nothing. The memtable copies what it keeps, so the caller keeps its batch (to retry a
    /// refused one entry by entry). The versions are visible at once and durable at the next
    /// flush; until then the source must be able to replay them.
    pub fn apply_streamed(&self, batch: &mut [Entry]) -> Result<StreamAck> {
        self.check_poisoned()?;
        let encoded_bytes = self.validate(batch)?;
        self.heat.borrow_mut().record_write(batch.len() as u64, encoded_bytes as u64, self.clock.now_ms());
        let mut mem = self.mem.borrow_mut();
        if mem.active_streamed_since_ms.is_none() {
            mem.active_streamed_since_ms = Some(self.clock.now_ms());
        }
        let mut applied = 0;
        for e in batch.iter() {
            if mem.active.insert(e.as_ref()) != Inserted::Duplicate {
                applied += 1;
            }
        }
        drop(mem);
        self.recount_memory();
        Ok(StreamAck { applied, duplicates: batch.len() - applied })
    }

    /// Notes that every message of `source` before `next_offset` is applied to this partition's
    /// memtables or durable elsewhere. The next flush commits it; a lower position than one
    /// already noted is ignored.
    pub fn note_source_offset(&self, source: &[u8], next_offset: u64) {
        let mut mem = self.mem.borrow_mut();
        match mem.active_offsets.get_mut(source) {
            Some(noted) => *noted = (*noted).max(next_offset),
            None => {
                mem.active_offsets.insert(source.to_vec(), next_offset);
            }
        }
    }

    /// How long the oldest streamed version in the active memtable has waited there, in
    /// milliseconds: what a crash now would make its source replay (its position commits with
    /// the flush that makes it durable). `None` if the active memtable holds none.
    pub fn streamed_unflushed_for_ms(&self) -> Option<u64> {
        let since = self.mem.borrow().active_streamed_since_ms?;
        Some(self.clock.now_ms().saturating_sub(since))
    }

    /// The position of `source` the manifest holds: where a replay starts.
    pub async fn committed_source_offset(&self, source: &[u8]) -> Option<u64> {
        self.manifest.lock().await.state().source_offsets.get(source).copied()
    }

    /// Commits the noted source positions without a flush, when no streamed version waits in
    /// memory for them (so each is already true of durable state) and one moved since the last
    /// commit. Returns whether it committed an edit.
    pub async fn checkpoint_source_offsets(&self) -> Result<bool> {
        self.check_poisoned()?;
        let _guard = self.maintenance.lock().await;
        let noted = {
            let mem = self.mem.borrow();
            if mem.active_streamed_since_ms.is_some() || !mem.frozen.is_empty() {
                return Ok(false);
            }
            mem.active_offsets.clone()
        };
        let moved: Vec<(Vec<u8>, u64)> = {
            let manifest = self.manifest.lock().await;
            let committed = &manifest.state().source_offsets;
            noted.into_iter().filter(|(k, v)| committed.get(k).is_none_or(|c| c < v)).collect()
        };
        if moved.is_empty() {
            return Ok(false);
        }
        self.commit_edit(ManifestEdit { source_offsets: moved, ..Default::default() }).await?;
        Ok(true)
    }
}
