//! The write path: validate, append to the WAL, wait for durability (for `Sync`), apply to the
//! memtable, acknowledge. A record is applied only after its WAL bytes are durable, so a reader
//! never sees a sync write that a crash could take back.

use super::Engine;
use crate::clock::latest_accepted;
use crate::codec;
use crate::error::{Error, Limit, Result};
use crate::ids::Lsn;
use crate::io::Disk;
use crate::memtable::Inserted;
use crate::options::Durability;
use crate::record::Entry;
use crate::version::Payload;

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteAck {
    /// The WAL record that carries it.
    pub lsn: Lsn,
    /// Versions that were new.
    pub applied: usize,
    /// Versions already present (an idempotent re-apply).
    pub duplicates: usize,
}

impl<D: Disk> Engine<D> {
    /// Writes a batch of versions atomically: all become visible together, and after a crash
    /// either all or none are recovered. Versions must carry their timestamps and origins (see
    /// [`crate::clock::Hlc`] for direct writes); values without an expiry get the table's
    /// default TTL, counted from the version's own `ts` so re-applying stays deterministic.
    pub async fn write(&self, mut batch: Vec<Entry>, durability: Durability) -> Result<WriteAck> {
        self.write_borrowed(&mut batch, durability).await
    }

    /// [`Engine::write`] of a batch the caller keeps: on an error it still holds the versions
    /// (default TTLs filled in), to retry or report them without a copy made in advance.
    pub async fn write_borrowed(&self, batch: &mut [Entry], durability: Durability) -> Result<WriteAck> {
        self.check_poisoned()?;
        let encoded_bytes = self.validate(batch)?;
        // Waits while the shard's WAL has its limit pending; no await between this and append.
        self.wal.reserve(encoded_bytes).await?;
        self.check_poisoned()?;
        let lsn = self.wal.append(self.partition, batch)?;
        let first_need = {
            let mut mem = self.mem.borrow_mut();
            mem.last_lsn = lsn;
            // LSNs grow: the new one moves the partition's oldest need only if it had none.
            let first_need = mem.oldest_need().is_none();
            mem.inflight.insert(lsn);
            first_need
        };
        if first_need {
            self.report_wal_needs();
        }
        let durable = match durability {
            Durability::Sync => self.wal.commit(lsn).await,
            Durability::Async => Ok(()),
        };
        if let Err(e) = durable {
            self.mem.borrow_mut().inflight.remove(&lsn);
            self.poison("wal commit");
            return Err(e);
        }
        let (applied, duplicates) = self.apply(lsn, batch);
        self.heat.borrow_mut().record_write(batch.len() as u64, encoded_bytes as u64, self.clock.now_ms());
        if durability == Durability::Async
            && let Err(e) = self.wal.commit_if_over_threshold().await
        {
            // The records are in the memtable but their batch never became durable: a flush
            // must not make them durable behind the failure's back.
            self.poison("wal commit");
            return Err(e);
        }
        Ok(WriteAck { lsn, applied, duplicates })
    }

    /// Applies a durable (or async) record to the active memtable.
    pub(super) fn apply(&self, lsn: Lsn, batch: &[Entry]) -> (usize, usize) {
        let mut mem = self.mem.borrow_mut();
        mem.inflight.remove(&lsn);
        mem.active_oldest = Some(mem.active_oldest.map_or(lsn, |o| o.min(lsn)));
        let mut applied = 0;
        for e in batch {
            if mem.active.insert(e.as_ref()) != Inserted::Duplicate {
                applied += 1;
            }
        }
        drop(mem);
        self.recount_memory();
        (applied, batch.len() - applied)
    }

    /// Checks `batch` against the limits and fills in default TTLs; returns its encoded bytes.
    pub(super) fn validate(&self, batch: &mut [Entry]) -> Result<usize> {
        let limits = self.options.limits;
        if batch.is_empty() {
            return Err(Error::InvalidArgument("a write batch holds at least one entry"));
        }
        if batch.len() > limits.max_batch_entries {
            return Err(Error::LimitExceeded {
                what: Limit::BatchEntries,
                size: batch.len(),
                max: limits.max_batch_entries,
            });
        }
        let max_ts = latest_accepted(self.clock.now_ms(), self.options.max_clock_skew_ms);
        let mut total = 0usize;
        for e in batch.iter_mut() {
            let settings = self.table(e.key.table)?;
            let check = |what, size: usize, max: usize| {
                if size > max { Err(Error::LimitExceeded { what, size, max }) } else { Ok(()) }
            };
            check(
                Limit::PartitionKey,
                e.key.partition_key.len(),
                limits.max_partition_key_bytes.min(u16::MAX as usize),
            )?;
            check(Limit::SortKey, e.key.sort_key.len(), limits.max_sort_key_bytes.min(u16::MAX as usize))?;
            if let Payload::Value { value, expires_at_ms } = &mut e.version.payload {
                check(Limit::Value, value.len(), limits.max_value_bytes)?;
                if expires_at_ms.is_none() {
                    *expires_at_ms = settings.default_ttl_ms.map(|ttl| e.version.id.ts.millis().saturating_add(ttl));
                }
            }
            if e.version.id.ts > max_ts {
                return Err(Error::TimestampTooFarInFuture { ts: e.version.id.ts, max: max_ts });
            }
            total += codec::entry_encoded_len(&e.as_ref());
        }
        if total > limits.max_batch_bytes {
            return Err(Error::LimitExceeded { what: Limit::Batch, size: total, max: limits.max_batch_bytes });
        }
        Ok(total)
    }
}
