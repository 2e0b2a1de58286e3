//! The Nacre side of the import: reads what Nacre holds for a batch of Redis keys, decides row
//! by row (`decision.rs`), and writes what must be written at the observed time. Writes are
//! grouped by partition (`partition_of`) into batches, sent with at most
//! [`MAX_IN_FLIGHT_REQUESTS`] requests in flight; a batch that fails is retried key by key, so
//! one bad key (over a server limit) fails alone.
//!
//! Two paths: keys found by the scan are checked against their retained versions, so a value
//! imported by an earlier run that Nacre has since replaced is not written again; keys notified
//! during this run changed in Redis just now, so they are reconciled against all of Nacre's rows
//! of their partition key (missing fields and deleted keys get tombstones) and written without
//! the history check.

use super::decision::{Decision, Snapshot, SourceRow, SourceValue, decide, is_newer_than};
use super::summary::Summary;
use futures_util::{StreamExt, stream};
use nacre_wire::{BatchOp, Client, ClientError, Get, Key, KeyHistory, MultiGet, Row, Scan, Versions, WriteBatch};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Requests (multi-gets, versions, scans, write batches) in flight at once.
pub const MAX_IN_FLIGHT_REQUESTS: usize = 64;
/// Keys per multi-get.
pub const MAX_MULTI_GET_KEYS: usize = 1_000;
/// Encoded bytes per write batch, well under the server's default `max_batch_bytes` (4 MiB).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// Bytes counted per op besides its key and value (timestamps, TTL, framing).
const OP_OVERHEAD_BYTES: usize = 32;
/// Rows per scan page when reading a notified key's rows.
const SCAN_PAGE_ROWS: u32 = 1_000;

/// Writes into one Nacre table.
pub struct Sink<'a> {
    client: &'a Client,
    table: String,
    partition_count: u32,
    batch_rows: usize,
}

/// One write and the key (its index in the batch of snapshots) it belongs to.
#[derive(Debug, Clone)]
struct Planned {
    key: usize,
    op: BatchOp,
}

/// Keys of a batch that failed, with their first error.
type Failures = BTreeMap<usize, String>;

/// A partition key's visible rows in Nacre, by sort key.
type HeldRows = Vec<(Vec<u8>, Row)>;

/// A write batch's outcome: the versions written, one per op.
type Written = Result<Vec<nacre_wire::VersionId>, ClientError>;

impl<'a> Sink<'a> {
    /// A sink writing to `table`, at most `batch_rows` rows per write batch.
    pub fn new(client: &'a Client, table: String, batch_rows: usize) -> Sink<'a> {
        let partition_count = client.current_topology().partition_count;
        Sink { client, table, partition_count, batch_rows: batch_rows.max(1) }
    }

    /// Imports keys found by the scan: a row is written unless Nacre holds it already or has
    /// moved on from it (see [`decide`]).
    pub async fn import_scanned(&self, snapshots: &[Snapshot], summary: &mut Summary) {
        let mut failures = Failures::new();
        let rows = self.rows_of(snapshots, summary, &mut failures);
        let currents = self.read_currents(&rows, &mut failures).await;
        // Rows that differ from Nacre's visible row need the key's history.
        let needs_history: Vec<usize> = (0..rows.len())
            .filter(|&i| {
                let (key, row) = &rows[i];
                let (current, observed) = (currents[i].as_ref(), snapshots[*key].observed);
                !failures.contains_key(key) && decide(row, observed, current, None) == Decision::Copy
            })
            .collect();
        let histories: Vec<(usize, Result<KeyHistory, ClientError>)> = stream::iter(needs_history)
            .map(|i| {
                let request = Versions::new(self.table.clone(), rows[i].1.key.clone());
                async move { (i, self.client.versions(request).await) }
            })
            .buffered(MAX_IN_FLIGHT_REQUESTS)
            .collect()
            .await;
        let mut history_of: HashMap<usize, KeyHistory> = HashMap::with_capacity(histories.len());
        for (i, history) in histories {
            match history {
                Ok(history) => {
                    history_of.insert(i, history);
                }
                Err(e) => {
                    failures.entry(rows[i].0).or_insert_with(|| format!("reading its versions: {e}"));
                }
            }
        }
        let mut planned = Vec::new();
        for (i, (key, row)) in rows.iter().enumerate() {
            if failures.contains_key(key) {
                continue;
            }
            let snapshot = &snapshots[*key];
            match decide(row, snapshot.observed, currents[i].as_ref(), history_of.get(&i)) {
                Decision::Unchanged => summary.rows_unchanged += 1,
                Decision::NacreNewer => summary.rows_skipped_newer += 1,
                Decision::Copy => planned.push(Planned { key: *key, op: put(snapshot, row) }),
            }
        }
        self.write(snapshots, planned, failures, summary).await;
    }

    /// Imports keys notified during this run: each key's rows in Nacre are read whole; rows
    /// Redis no longer has (the key deleted, of another type now, or a field gone) are deleted
    /// at the observed time, the others copied unless unchanged (or written in Nacre at or
    /// after the observation).
    pub async fn import_notified(&self, snapshots: &[Snapshot], summary: &mut Summary) {
        let mut failures = Failures::new();
        let rows = self.rows_of(snapshots, summary, &mut failures);
        let mut rows_by_key: Vec<Vec<&SourceRow>> = vec![Vec::new(); snapshots.len()];
        for (key, row) in &rows {
            rows_by_key[*key].push(row);
        }
        // A key now of another type holds no string or hash rows: like a deleted key, its rows
        // in Nacre are deleted.
        let reconciled: Vec<usize> = (0..snapshots.len()).filter(|k| !failures.contains_key(k)).collect();
        let held: Vec<(usize, Result<HeldRows, ClientError>)> = stream::iter(reconciled)
            .map(|k| async move { (k, self.rows_in_nacre(&snapshots[k].key).await) })
            .buffered(MAX_IN_FLIGHT_REQUESTS)
            .collect()
            .await;
        let mut planned = Vec::new();
        for (k, held) in held {
            let held = match held {
                Ok(held) => held,
                Err(e) => {
                    failures.insert(k, format!("reading its rows in Nacre: {e}"));
                    continue;
                }
            };
            let snapshot = &snapshots[k];
            let held: BTreeMap<&[u8], &Row> = held.iter().map(|(sk, row)| (sk.as_slice(), row)).collect();
            for row in &rows_by_key[k] {
                match decide(row, snapshot.observed, held.get(row.key.sort_key.as_slice()).copied(), None) {
                    Decision::Unchanged => summary.rows_unchanged += 1,
                    Decision::NacreNewer => summary.rows_skipped_newer += 1,
                    Decision::Copy => planned.push(Planned { key: k, op: put(snapshot, row) }),
                }
            }
            let in_redis: BTreeSet<&[u8]> = rows_by_key[k].iter().map(|r| r.key.sort_key.as_slice()).collect();
            for (sort_key, row) in held {
                if in_redis.contains(sort_key) {
                    continue;
                }
                if is_newer_than(Some(row), snapshot.observed) {
                    summary.rows_skipped_newer += 1;
                } else {
                    let key = Key::new(snapshot.key.clone(), sort_key);
                    planned.push(Planned { key: k, op: BatchOp::Delete { key, ts: Some(snapshot.observed) } });
                }
            }
        }
        self.write(snapshots, planned, failures, summary).await;
    }

    /// Every row of the batch, with its key's index; counts gone keys, skipped types and keys
    /// whose rows cannot be formed.
    fn rows_of(
        &self,
        snapshots: &[Snapshot],
        summary: &mut Summary,
        failures: &mut Failures,
    ) -> Vec<(usize, SourceRow)> {
        let mut rows = Vec::new();
        for (k, snapshot) in snapshots.iter().enumerate() {
            match &snapshot.value {
                SourceValue::Gone => summary.keys_gone += 1,
                SourceValue::Other(type_name) => summary.skip_type(type_name),
                SourceValue::Str(_) | SourceValue::Hash(_) => match snapshot.rows() {
                    Ok(key_rows) => rows.extend(key_rows.into_iter().map(|row| (k, row))),
                    Err(e) => {
                        failures.insert(k, e.to_string());
                    }
                },
            }
        }
        rows
    }

    /// Nacre's visible row for each row, by multi-get; a multi-get that fails is retried row by
    /// row, so that one bad key fails alone.
    async fn read_currents(&self, rows: &[(usize, SourceRow)], failures: &mut Failures) -> Vec<Option<Row>> {
        let chunks: Vec<&[(usize, SourceRow)]> = rows.chunks(MAX_MULTI_GET_KEYS).collect();
        let results: Vec<Result<Vec<Option<Row>>, ClientError>> = stream::iter(chunks.iter().copied())
            .map(|chunk| {
                let keys = chunk.iter().map(|(_, row)| row.key.clone()).collect();
                self.client.multi_get(MultiGet::new(self.table.clone(), keys))
            })
            .buffered(MAX_IN_FLIGHT_REQUESTS)
            .collect()
            .await;
        let mut currents = Vec::with_capacity(rows.len());
        for (chunk, result) in chunks.into_iter().zip(results) {
            match result {
                Ok(found) => currents.extend(found),
                Err(_) => {
                    for (key, row) in chunk {
                        match self.client.get(Get::new(self.table.clone(), row.key.clone())).await {
                            Ok(found) => currents.push(found),
                            Err(e) => {
                                failures.entry(*key).or_insert_with(|| format!("reading it from Nacre: {e}"));
                                currents.push(None);
                            }
                        }
                    }
                }
            }
        }
        currents
    }

    /// Every visible row of `partition_key`, by sort key, following scan pages to the end.
    async fn rows_in_nacre(&self, partition_key: &[u8]) -> Result<HeldRows, ClientError> {
        let mut request = Scan::new(self.table.clone(), partition_key);
        request.limit = SCAN_PAGE_ROWS;
        let mut rows = Vec::new();
        loop {
            let page = self.client.scan(request.clone()).await?;
            rows.extend(
                page.rows
                    .into_iter()
                    .map(|r| (r.sort_key, Row { value: r.value, version: r.version, expires_at_ms: r.expires_at_ms })),
            );
            match page.cursor {
                Some(cursor) => request.cursor = Some(cursor),
                None => return Ok(rows),
            }
        }
    }

    /// Sends `planned` grouped by partition, counts what was written, and records failures
    /// (a failed batch is retried key by key first).
    async fn write(
        &self,
        snapshots: &[Snapshot],
        planned: Vec<Planned>,
        mut failures: Failures,
        summary: &mut Summary,
    ) {
        let planned = planned.into_iter().filter(|p| !failures.contains_key(&p.key)).collect();
        let batches = batches(planned, self.partition_count, self.batch_rows);
        let results: Vec<(Vec<Planned>, Written)> = stream::iter(batches)
            .map(|batch| async move {
                let ops = batch.iter().map(|p| p.op.clone()).collect();
                let result = self.client.write_batch(WriteBatch::new(self.table.clone(), ops)).await;
                (batch, result)
            })
            .buffered(MAX_IN_FLIGHT_REQUESTS)
            .collect()
            .await;
        for (batch, result) in results {
            if result.is_ok() {
                count_written(&batch, summary);
                continue;
            }
            let mut by_key: BTreeMap<usize, Vec<Planned>> = BTreeMap::new();
            for planned in batch {
                by_key.entry(planned.key).or_default().push(planned);
            }
            for (key, ops) in by_key {
                let batch = WriteBatch::new(self.table.clone(), ops.iter().map(|p| p.op.clone()).collect());
                match self.client.write_batch(batch).await {
                    Ok(_) => count_written(&ops, summary),
                    Err(e) => {
                        failures.entry(key).or_insert_with(|| format!("writing it to Nacre: {e}"));
                    }
                }
            }
        }
        for (key, error) in failures {
            summary.fail(&snapshots[key].key, error);
        }
    }
}

/// Splits writes into batches of one partition each, at most `batch_rows` ops and
/// [`MAX_BATCH_BYTES`] each.
fn batches(planned: Vec<Planned>, partition_count: u32, batch_rows: usize) -> Vec<Vec<Planned>> {
    let mut by_partition: BTreeMap<u32, Vec<Planned>> = BTreeMap::new();
    for p in planned {
        let partition = nacre_wire::partition_of(&p.op.key().partition_key, partition_count);
        by_partition.entry(partition).or_default().push(p);
    }
    let mut batches = Vec::new();
    for (_, ops) in by_partition {
        let mut batch = Vec::new();
        let mut bytes = 0;
        for p in ops {
            let size = op_bytes(&p.op);
            if !batch.is_empty() && (batch.len() >= batch_rows || bytes + size > MAX_BATCH_BYTES) {
                batches.push(std::mem::take(&mut batch));
                bytes = 0;
            }
            bytes += size;
            batch.push(p);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    batches
}

/// The put of `row` at the key's observed time, expiring when the Redis key does.
fn put(snapshot: &Snapshot, row: &SourceRow) -> BatchOp {
    BatchOp::Put {
        key: row.key.clone(),
        value: row.value.clone(),
        ts: Some(snapshot.observed),
        ttl_ms: snapshot.ttl_ms(),
    }
}

fn op_bytes(op: &BatchOp) -> usize {
    let key = op.key();
    let value = match op {
        BatchOp::Put { value, .. } => value.len(),
        BatchOp::Delete { .. } => 0,
    };
    key.partition_key.len() + key.sort_key.len() + value + OP_OVERHEAD_BYTES
}

fn count_written(ops: &[Planned], summary: &mut Summary) {
    for p in ops {
        match p.op {
            BatchOp::Put { .. } => summary.rows_copied += 1,
            BatchOp::Delete { .. } => summary.rows_deleted += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(key: usize, pk: &str, value_bytes: usize) -> Planned {
        Planned {
            key,
            op: BatchOp::Put { key: Key::new(pk, ""), value: vec![b'v'; value_bytes], ts: None, ttl_ms: None },
        }
    }

    #[test]
    fn batches_hold_one_partition_and_respect_row_and_byte_limits() {
        let partitions = 4;
        let mut ops: Vec<Planned> = (0..50).map(|i| planned(i, &format!("k{i}"), 10)).collect();
        ops.push(planned(50, "big1", MAX_BATCH_BYTES / 2));
        ops.push(planned(51, "big1", MAX_BATCH_BYTES / 2));
        let out = batches(ops, partitions, 7);
        let total: usize = out.iter().map(Vec::len).sum();
        assert_eq!(total, 52);
        for batch in &out {
            assert!(!batch.is_empty() && batch.len() <= 7, "{} ops", batch.len());
            let partition = nacre_wire::partition_of(&batch[0].op.key().partition_key, partitions);
            assert!(batch.iter().all(|p| nacre_wire::partition_of(&p.op.key().partition_key, partitions) == partition));
            let bytes: usize = batch.iter().map(|p| op_bytes(&p.op)).sum();
            assert!(batch.len() == 1 || bytes <= MAX_BATCH_BYTES, "{bytes} bytes");
        }
        // The two half-limit values do not fit one batch with their overhead.
        let big: Vec<_> = out.iter().filter(|b| b.iter().any(|p| p.key >= 50)).collect();
        assert_eq!(big.len(), 2);
    }
}
