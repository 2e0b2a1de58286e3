//! The bulk-segment linker: `nacre bulk link`, `status` and `rollback`, run by shard 0, and each
//! shard's part of them.
//!
//! A link, in order (each step's failpoint name in brackets, see `failpoint.rs`):
//!
//! 1. **Validate** everything before touching anything (`nacre_storage::bulk::validate`, on a
//!    blocking thread): descriptor, format versions, partition count, every file's size and
//!    checksum, every block, every key's partition and order, the table (the request's
//!    `verify: Checksums` skips the blocks and entries, checking each file's metadata instead).
//!    A refusal changes nothing. Re-linking a committed load answers "already linked" and
//!    changes nothing. [`bulk-link:after-validate`]
//! 2. **Preparing record**: the load is hidden in this process, then recorded as `preparing`
//!    in the load book. [`bulk-link:after-preparing-record`]
//! 3. **Prepare**, on the shard owning each file's partition: hard-link (or copy) it into the
//!    partition's directory and fsync file and directory. [`bulk-link:after-prepare`]
//! 4. **Commit edits**: one manifest edit per partition (every partition for a replace load, which
//!    also adds its watermark). The load is still hidden. [`bulk-link:after-commit:K`, after K
//!    edits]
//! 5. **Commit record**: the book says `committed`, durably. This is the decision.
//!    [`bulk-link:after-commit-record`]
//! 6. **Show**: the load becomes visible to every read on every shard at once.
//!
//! A crash before step 5 leaves the load invisible, and recovery unlinks its segments from every
//! partition and records it `aborted`; after step 5 it is whole everywhere. A failure (not a
//! crash) before step 5 undoes what was done and records `aborted`.
//!
//! A rollback: the load is hidden, the book records `rolled-back` (the decision;
//! [`bulk-rollback:after-record`]), then each partition's edit removes the load's segments and
//! watermark [`bulk-rollback:after-unlink:K`]. Recovery finishes the unlinks of a rolled-back
//! load.

use crate::bulk_book::{LoadBook, LoadRecord, LoadState};
use crate::catalog::Catalog;
use crate::convert::{bulk_load_info, error, link_verify};
use crate::failpoint;
use crate::shard::Shard;
use nacre_storage::bulk::validate::{self, LinkTarget, LoadRejection, ValidatedLoad};
use nacre_storage::bulk::{LoadDescriptor, LoadMode};
use nacre_storage::engine::PreparedSegment;
use nacre_storage::segment::info::SegmentInfo;
use nacre_storage::{Origin, OriginKind, TableId, Ts, VersionId, Watermark};
use nacre_wire::{self as wire, ErrorCode, Reply};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

/// Threads validating one load's files.
const VALIDATE_THREADS: usize = 2;

/// Files one shard prepares: (partition, path, summary).
type ShardFiles = Vec<(u32, PathBuf, SegmentInfo)>;

fn rejected(r: &LoadRejection) -> wire::ErrorReply {
    error(ErrorCode::LoadRejected, format!("{}: {r}", r.code()))
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// What reads and compaction must know of bulk loads from the first request on, before any
/// shard starts: every load `book` does not record as committed is hidden, and every committed
/// one inside its rollback window is protected (no shard's compaction may merge it, or collect
/// what its watermark hides, before shard 0 takes over keeping the set).
pub fn visibility_at_start(book: &LoadBook, catalog: &Catalog) -> nacre_storage::bulk::LoadVisibility {
    let visibility = nacre_storage::bulk::LoadVisibility::default();
    for load in book.hidden() {
        visibility.hide(load);
    }
    visibility.set_protected(in_their_rollback_window(book.all(), catalog, now_ms()));
    visibility
}

/// The loads among `loads` inside their rollback window at `now_ms`: committed less than their
/// table's `rollback_window_ms` ago. A load targets one table (its descriptor's); if that table
/// was dropped, the load has nothing left to roll back into view and is not protected. The
/// table is the one with the load's id, not merely its name: a table created again under the
/// name is another table (ids are never reused).
fn in_their_rollback_window<'a>(
    loads: impl Iterator<Item = &'a LoadRecord>,
    catalog: &Catalog,
    now_ms: u64,
) -> BTreeSet<u32> {
    loads
        .filter(|r| r.state == LoadState::Committed)
        .filter(|r| {
            let table = catalog.get(&r.table).filter(|t| t.id == r.table_id);
            table.is_some_and(|t| r.changed_at_ms.saturating_add(t.rollback_window_ms) > now_ms)
        })
        .map(|r| r.load_id)
        .collect()
}

/// The linker's per-shard state: the load book (kept and written by shard 0; the other shards
/// never read their copy) and the lock that serialises links and rollbacks.
pub struct BulkState {
    book: RefCell<LoadBook>,
    lock: async_lock::Mutex<()>,
}

impl BulkState {
    /// The state starting from the book as it was read at start.
    pub fn new(book: LoadBook) -> BulkState {
        BulkState { book: RefCell::new(book), lock: async_lock::Mutex::new(()) }
    }

    /// Appends `bulk_loads{state}`: the recorded loads by state. Shard 0's book is the one
    /// links and rollbacks write, so only shard 0 reports.
    pub(crate) fn push_stats(&self, shard: Option<u32>, out: &mut Vec<wire::Stat>) {
        let book = self.book.borrow();
        for (state, name) in [
            (LoadState::Preparing, "preparing"),
            (LoadState::Committed, "committed"),
            (LoadState::Aborted, "aborted"),
            (LoadState::RolledBack, "rolled_back"),
        ] {
            let value = book.all().filter(|l| l.state == state).count() as u64;
            out.push(wire::Stat {
                name: wire::labelled("bulk_loads", &[("state", name)]),
                shard,
                partition: None,
                value,
            });
        }
    }
}

impl Shard {
    fn engine_of(&self, partition: u32) -> Result<&Rc<nacre_storage::Engine<nacre_storage::io::dma::DmaDisk>>, String> {
        self.partitions
            .engines
            .get(&partition)
            .ok_or_else(|| format!("shard {} does not own partition {partition}", self.id))
    }

    /// Prepares these files in the partitions (of this shard) they belong to; on a failure,
    /// discards what it prepared.
    async fn prepare_files(&self, files: ShardFiles) -> Result<Vec<(u32, PreparedSegment)>, String> {
        let mut prepared = Vec::new();
        for (partition, path, info) in files {
            let engine = self.engine_of(partition)?;
            match engine.prepare_bulk_segment(&path, &info).await {
                Ok(p) => prepared.push((partition, p)),
                Err(e) => {
                    self.discard_here(prepared).await;
                    return Err(format!("preparing {} in partition {partition}: {e}", path.display()));
                }
            }
        }
        Ok(prepared)
    }

    /// Commits load `load` in `partition`, with its prepared segment there, if any, and a
    /// replace load's watermark.
    async fn commit_load_here(
        &self,
        load: u32,
        partition: u32,
        prepared: Option<PreparedSegment>,
        watermark: Option<(TableId, Watermark)>,
    ) -> Result<(), String> {
        self.engine_of(partition)?
            .commit_bulk_load(load, prepared.as_ref(), watermark)
            .await
            .map_err(|e| format!("committing load {load} in partition {partition}: {e}"))
    }

    /// Removes prepared segments that will not be committed. Best effort: an orphan left here
    /// is deleted by the next recovery.
    async fn discard_here(&self, prepared: Vec<(u32, PreparedSegment)>) {
        for (partition, p) in prepared {
            if let Ok(engine) = self.engine_of(partition) {
                let _ = engine.discard_prepared(&p).await;
            }
        }
    }

    /// Unlinks load `load` from every partition of this shard.
    async fn unlink_here(&self, load: u32) -> Result<(), String> {
        for (partition, engine) in &self.partitions.engines {
            engine
                .unlink_bulk_load(load)
                .await
                .map_err(|e| format!("unlinking load {load} from partition {partition}: {e}"))?;
        }
        Ok(())
    }

    /// Partitions among `partitions` (of this shard) where a compaction merged some of load
    /// `load`'s versions with others.
    async fn merged_here(&self, load: u32, partitions: Vec<u32>) -> Result<Vec<u32>, String> {
        let mut merged = Vec::new();
        for p in partitions {
            if !self.engine_of(p)?.load_segments(load).await.merged.is_empty() {
                merged.push(p);
            }
        }
        Ok(merged)
    }

    /// Runs this shard's part `call` on shard `shard`; a shard that is gone is a failure too.
    async fn part_on<R, F, Fut>(&self, shard: usize, call: F) -> Result<R, String>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<R, String>> + 'static,
        R: Send + 'static,
    {
        self.mesh.invoke_on(shard, call).await.unwrap_or_else(|e| Err(e.to_string()))
    }

    /// Unlinks load `load` on shard `shard`.
    async fn unlink_on(&self, shard: usize, load: u32) -> Result<(), String> {
        self.part_on(shard, move |s| async move { s.unlink_here(load).await }).await
    }

    /// Recovery's part: unlinks, from this shard's partitions, every load the book does not
    /// record as committed (a crash before its commit record, or during its rollback).
    pub(crate) async fn reconcile_bulk_loads(&self) -> anyhow::Result<()> {
        let book = &self.process.bulk_book;
        for (partition, engine) in &self.partitions.engines {
            for load in engine.linked_loads().await.into_keys() {
                let committed = book.get(load).is_some_and(|r| r.state == LoadState::Committed);
                if !committed {
                    tracing::info!(shard = self.id, partition, load, "unlinking a bulk load that did not commit");
                    engine.unlink_bulk_load(load).await?;
                }
            }
        }
        Ok(())
    }

    /// Every load, or one.
    pub(crate) fn bulk_status(&self, load: Option<u32>) -> Result<Reply, wire::ErrorReply> {
        let book = self.bulk.book.borrow();
        match load {
            None => Ok(Reply::BulkLoads(book.all().map(bulk_load_info).collect())),
            Some(id) => match book.get(id) {
                Some(r) => Ok(Reply::BulkLoads(vec![bulk_load_info(r)])),
                None => Err(error(ErrorCode::UnknownLoad, format!("no bulk load {id} was ever linked here"))),
            },
        }
    }

    fn put_record(&self, record: LoadRecord) -> Result<(), wire::ErrorReply> {
        self.bulk
            .book
            .borrow_mut()
            .put(record)
            .map_err(|e| error(ErrorCode::Io, format!("writing the bulk-load book: {e:#}")))
    }

    /// Links the load in `dir` (shard 0), validating it as `verify` says.
    pub(crate) async fn bulk_link(
        self: &Rc<Self>,
        dir: String,
        verify: wire::LinkVerify,
    ) -> Result<Reply, wire::ErrorReply> {
        let Some(_serial) = self.bulk.lock.try_lock() else {
            return Err(error(ErrorCode::Busy, "another bulk link or rollback is running; retry when it ends"));
        };
        let started = Instant::now();
        let dir = std::fs::canonicalize(&dir)
            .map_err(|e| rejected(&LoadRejection::Descriptor(format!("cannot open load directory {dir}: {e}"))))?;
        let partition_count = self.process.partition_count;
        let descriptor = validate::read_descriptor(&dir, partition_count).map_err(|r| rejected(&r))?;
        let digest = format!("{:016x}", descriptor.digest());
        let load = descriptor.load_id;
        if let Some(done) = self.already_linked(&descriptor, &digest)? {
            return Ok(done);
        }
        let table = self.catalog.borrow().get(&descriptor.table).cloned();
        let Some(table) = table else {
            return Err(rejected(&LoadRejection::UnknownTable(descriptor.table.clone())));
        };
        let target = LinkTarget {
            partition_count,
            table_id: table.table_id(),
            limits: self.process.config.engine_limits(),
            latest_ts: self.partitions.latest_accepted(),
        };
        let verify = link_verify(verify);
        let validated = {
            // The descriptor read above is the one validated and recorded: never a second read.
            let (dir, descriptor) = (dir.clone(), descriptor.clone());
            glommio::executor()
                .spawn_blocking(move || {
                    validate::validate_files_with(&dir, descriptor, &target, VALIDATE_THREADS, verify)
                })
                .await
                .map_err(|r| rejected(&r))?
        };
        let validate_ms = ms(started);
        failpoint::hit("bulk-link:after-validate");
        let mut record = LoadRecord {
            load_id: load,
            table: descriptor.table.clone(),
            table_id: descriptor.table_id,
            mode: descriptor.mode,
            snapshot_ms: descriptor.snapshot_ms,
            digest,
            dir: dir.display().to_string(),
            files: validated.files.len() as u32,
            bytes: validated.bytes(),
            entries: validated.files.iter().map(|f| f.info.entry_count).sum(),
            partitions: validated.files.iter().map(|f| f.partition).collect(),
            state: LoadState::Preparing,
            changed_at_ms: now_ms(),
            note: None,
        };
        self.process.visibility.hide(load);
        self.put_record(record.clone())?;
        failpoint::hit("bulk-link:after-preparing-record");
        let outcome = self.prepare_and_commit(&validated, table.table_id()).await;
        let prepare_ms;
        let commit_ms;
        match outcome {
            Ok((p, c)) => {
                prepare_ms = p;
                commit_ms = c;
            }
            Err(reason) => {
                tracing::error!(load, %reason, "bulk link failed; undoing it");
                // Undo what was committed; a partition that cannot be undone now is undone by
                // the next recovery, since the book will not say committed.
                for shard in 0..self.process.shard_count {
                    if let Err(e) = self.unlink_on(shard, load).await {
                        tracing::error!(load, shard, error = %e, "undoing a failed link");
                    }
                }
                record.state = LoadState::Aborted;
                record.changed_at_ms = now_ms();
                record.note = Some(format!("link failed: {reason}"));
                self.put_record(record)?;
                return Err(error(ErrorCode::Io, format!("linking load {load} failed and was undone: {reason}")));
            }
        }
        let record_started = Instant::now();
        record.state = LoadState::Committed;
        record.changed_at_ms = now_ms();
        self.put_record(record.clone())?;
        failpoint::hit("bulk-link:after-commit-record");
        // Kept as linked for its rollback window before anything can see (and so overwrite) it.
        self.protect_loads_in_their_rollback_window();
        self.process.visibility.show(load);
        let commit_ms = commit_ms + ms(record_started);
        tracing::info!(
            load,
            files = record.files,
            bytes = record.bytes,
            verify = verify.name(),
            validate_ms,
            prepare_ms,
            commit_ms,
            "bulk load linked"
        );
        self.process.lineage.bulk_load("bulk-link", &record);
        let mut info = bulk_load_info(&record);
        info.validate_ms = validate_ms;
        info.prepare_ms = prepare_ms;
        info.commit_ms = commit_ms;
        Ok(Reply::BulkLoads(vec![info]))
    }

    /// `Some(reply)` if the load needs nothing (a re-link of a committed load); an error if its
    /// id is taken by another load or it was rolled back.
    fn already_linked(&self, d: &LoadDescriptor, digest: &str) -> Result<Option<Reply>, wire::ErrorReply> {
        let book = self.bulk.book.borrow();
        let Some(r) = book.get(d.load_id) else { return Ok(None) };
        match r.state {
            LoadState::Committed if r.digest == digest => {
                let mut info = bulk_load_info(r);
                info.note = Some("already linked: nothing changed".into());
                Ok(Some(Reply::BulkLoads(vec![info])))
            }
            LoadState::Committed => Err(rejected(&LoadRejection::LoadIdTaken(d.load_id))),
            LoadState::RolledBack => Err(rejected(&LoadRejection::RolledBack(d.load_id))),
            LoadState::Preparing | LoadState::Aborted if r.digest != digest => {
                Err(rejected(&LoadRejection::LoadIdTaken(d.load_id)))
            }
            LoadState::Preparing | LoadState::Aborted => Ok(None),
        }
    }

    /// Steps 3 and 4. Returns (prepare ms, commit ms).
    async fn prepare_and_commit(self: &Rc<Self>, v: &ValidatedLoad, table: TableId) -> Result<(u64, u64), String> {
        let load = v.descriptor.load_id;
        let started = Instant::now();
        let mut by_shard: BTreeMap<usize, ShardFiles> = BTreeMap::new();
        for f in &v.files {
            by_shard.entry(self.process.owner(f.partition)).or_default().push((
                f.partition,
                f.path.clone(),
                f.info.clone(),
            ));
        }
        // Every shard prepares its files at once.
        let prepares = by_shard
            .into_iter()
            .map(|(shard, files)| self.part_on(shard, move |s| async move { s.prepare_files(files).await }));
        let mut prepared: BTreeMap<u32, PreparedSegment> = BTreeMap::new();
        let mut failure = None;
        for outcome in futures_util::future::join_all(prepares).await {
            match outcome {
                Ok(p) => prepared.extend(p),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        if let Some(e) = failure {
            self.discard(prepared).await;
            return Err(e);
        }
        let prepare_ms = ms(started);
        failpoint::hit("bulk-link:after-prepare");
        let started = Instant::now();
        let watermark = (v.descriptor.mode == LoadMode::Replace).then(|| {
            let point = VersionId {
                ts: Ts::from_millis(v.descriptor.snapshot_ms),
                origin: Origin { kind: OriginKind::Bulk, source_id: load, seq: 0 },
            };
            (table, Watermark { point })
        });
        let partitions: Vec<u32> = match watermark {
            Some(_) => (0..self.process.partition_count).collect(),
            None => prepared.keys().copied().collect(),
        };
        // Each shard commits its partitions one by one, every shard at once; the failpoints
        // count commits as they complete, whichever shard made them.
        let mut by_shard: BTreeMap<usize, Vec<(u32, Option<PreparedSegment>)>> = BTreeMap::new();
        for partition in partitions {
            by_shard.entry(self.process.owner(partition)).or_default().push((partition, prepared.remove(&partition)));
        }
        let committed = std::cell::Cell::new(0usize);
        let failed = std::cell::Cell::new(false);
        // Each shard's part: its error, if any, and what it did not commit (to discard).
        let commits = by_shard.into_iter().map(|(shard, parts)| {
            let (committed, failed) = (&committed, &failed);
            async move {
                let mut parts = parts.into_iter();
                let mut error = None;
                while !failed.get()
                    && let Some((partition, segment)) = parts.next()
                {
                    let run = move |s: Rc<Shard>| async move {
                        s.commit_load_here(load, partition, segment, watermark).await
                    };
                    match self.part_on(shard, run).await {
                        Ok(()) => {
                            committed.set(committed.get() + 1);
                            failpoint::hit(&format!("bulk-link:after-commit:{}", committed.get()));
                        }
                        Err(e) => {
                            // The other shards stop at their next partition.
                            failed.set(true);
                            error = Some(e);
                        }
                    }
                }
                (error, parts.filter_map(|(p, segment)| segment.map(|segment| (p, segment))).collect::<Vec<_>>())
            }
        });
        let mut failure = None;
        for (error, uncommitted) in futures_util::future::join_all(commits).await {
            prepared.extend(uncommitted);
            failure = failure.or(error);
        }
        if let Some(e) = failure {
            self.discard(prepared).await;
            return Err(e);
        }
        Ok((prepare_ms, ms(started)))
    }

    async fn discard(self: &Rc<Self>, prepared: BTreeMap<u32, PreparedSegment>) {
        let mut by_shard: BTreeMap<usize, Vec<(u32, PreparedSegment)>> = BTreeMap::new();
        for (p, seg) in prepared {
            by_shard.entry(self.process.owner(p)).or_default().push((p, seg));
        }
        for (shard, segs) in by_shard {
            let _ = self.mesh.invoke_on(shard, move |s: Rc<Shard>| async move { s.discard_here(segs).await }).await;
        }
    }

    /// Rolls back load `load` (shard 0).
    pub(crate) async fn bulk_rollback(self: &Rc<Self>, load: u32) -> Result<Reply, wire::ErrorReply> {
        let Some(_serial) = self.bulk.lock.try_lock() else {
            return Err(error(ErrorCode::Busy, "another bulk link or rollback is running; retry when it ends"));
        };
        let Some(record) = self.bulk.book.borrow().get(load).cloned() else {
            return Err(error(ErrorCode::UnknownLoad, format!("no bulk load {load} was ever linked here")));
        };
        match record.state {
            LoadState::Committed => {}
            LoadState::RolledBack => {
                let mut info = bulk_load_info(&record);
                info.note = Some("already rolled back: nothing changed".into());
                return Ok(Reply::BulkLoads(vec![info]));
            }
            LoadState::Preparing | LoadState::Aborted => {
                return Err(error(
                    ErrorCode::BadRequest,
                    format!(
                        "load {load} is {}: it is visible nowhere, so there is nothing to roll back",
                        bulk_load_info(&record).state.name()
                    ),
                ));
            }
        }
        // From here no compaction merges the load's segments, so what the check below finds
        // stays true until the rollback has unlinked them.
        self.process.visibility.pin(load);
        let outcome = self.roll_back_pinned(load, record).await;
        self.process.visibility.unpin(load);
        outcome
    }

    /// The rest of [`Shard::bulk_rollback`], with the load pinned against compaction.
    async fn roll_back_pinned(self: &Rc<Self>, load: u32, mut record: LoadRecord) -> Result<Reply, wire::ErrorReply> {
        let partitions = record.partitions.clone();
        let mut merged = Vec::new();
        for shard in 0..self.process.shard_count {
            let mine: Vec<u32> = partitions.iter().copied().filter(|p| self.process.owner(*p) == shard).collect();
            match self.part_on(shard, move |s| async move { s.merged_here(load, mine).await }).await {
                Ok(p) => merged.extend(p),
                Err(e) => return Err(error(ErrorCode::Io, e)),
            }
        }
        // Where compaction merged the load, its versions are hidden by their origin; what it
        // superseded shows again where compaction kept it (always inside the rollback window,
        // which keeps the load's segments as linked).
        if !merged.is_empty() {
            record.note = Some(format!(
                "compaction had merged the load in partitions {merged:?}: its versions there are hidden by origin, \
                 and what it superseded shows again only where compaction kept it"
            ));
        }
        self.process.visibility.hide(load);
        record.state = LoadState::RolledBack;
        record.changed_at_ms = now_ms();
        self.put_record(record.clone())?;
        failpoint::hit("bulk-rollback:after-record");
        for shard in 0..self.process.shard_count {
            if let Err(e) = self.unlink_on(shard, load).await {
                // The book already says rolled back: nothing of the load is visible, and the
                // next recovery finishes the unlink.
                tracing::error!(load, shard, error = %e, "unlinking a rolled-back load");
            }
            failpoint::hit(&format!("bulk-rollback:after-unlink:{}", shard + 1));
        }
        self.process.lineage.bulk_load("bulk-rollback", &record);
        Ok(Reply::BulkLoads(vec![bulk_load_info(&record)]))
    }

    /// Keeps compaction off the segments of every load inside its rollback window (shard 0,
    /// which owns the book and the catalog; the set is the process's). Run after each link,
    /// after a table's window changes or the table is dropped, and periodically, as loads age
    /// out of their window.
    pub(crate) fn protect_loads_in_their_rollback_window(&self) {
        let recent = in_their_rollback_window(self.bulk.book.borrow().all(), &self.catalog.borrow(), now_ms());
        self.process.visibility.set_protected(recent);
    }

    /// Recovery's last bulk step (shard 0): a load still `preparing` in the book was cut short
    /// by a crash; every shard has unlinked it, so it is recorded `aborted`.
    pub(crate) fn abort_unfinished_links(&self) -> anyhow::Result<()> {
        let unfinished: Vec<LoadRecord> =
            self.bulk.book.borrow().all().filter(|r| r.state == LoadState::Preparing).cloned().collect();
        for mut r in unfinished {
            tracing::warn!(load = r.load_id, "a bulk link was cut short before its commit record: recorded aborted");
            r.state = LoadState::Aborted;
            r.changed_at_ms = now_ms();
            r.note = Some("the daemon stopped before the load's commit record; nothing of it is visible".into());
            self.bulk.book.borrow_mut().put(r)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::TableEntry;
    use nacre_storage::TableSettings;

    const HOUR_MS: u64 = 3_600_000;

    fn load(load_id: u32, table: &str, table_id: u32, state: LoadState, changed_at_ms: u64) -> LoadRecord {
        LoadRecord {
            load_id,
            table: table.into(),
            table_id,
            mode: LoadMode::Merge,
            snapshot_ms: 1,
            digest: "00".into(),
            dir: "/l".into(),
            files: 1,
            bytes: 1,
            entries: 1,
            partitions: vec![0],
            state,
            changed_at_ms,
            note: None,
        }
    }

    fn catalog(tables: &[(&str, u32, u64)]) -> Catalog {
        let mut c = Catalog::default();
        for (name, id, window_ms) in tables {
            c.tables.insert((*name).into(), TableEntry::new(*id, &TableSettings::default(), *window_ms));
        }
        c
    }

    #[test]
    fn each_load_is_protected_for_its_own_tables_window() {
        let now = 100 * HOUR_MS;
        let c = catalog(&[("day", 1, 24 * HOUR_MS), ("hour", 2, HOUR_MS), ("none", 3, 0)]);
        let loads = [
            load(1, "day", 1, LoadState::Committed, now - 2 * HOUR_MS),
            load(2, "hour", 2, LoadState::Committed, now - 2 * HOUR_MS),
            load(3, "hour", 2, LoadState::Committed, now - HOUR_MS / 2),
            load(4, "none", 3, LoadState::Committed, now),
            load(5, "day", 1, LoadState::RolledBack, now),
            load(6, "day", 1, LoadState::Preparing, now),
            load(7, "day", 1, LoadState::Committed, now - 24 * HOUR_MS),
        ];
        let protected = in_their_rollback_window(loads.iter(), &c, now);
        assert_eq!(protected, BTreeSet::from([1, 3]));
    }

    #[test]
    fn a_load_whose_table_was_dropped_is_not_protected() {
        let now = 100 * HOUR_MS;
        let loads = [load(1, "t", 1, LoadState::Committed, now)];
        assert_eq!(in_their_rollback_window(loads.iter(), &catalog(&[("t", 1, HOUR_MS)]), now), BTreeSet::from([1]));
        assert!(in_their_rollback_window(loads.iter(), &catalog(&[]), now).is_empty(), "dropped");
        let again = catalog(&[("t", 2, HOUR_MS)]);
        assert!(in_their_rollback_window(loads.iter(), &again, now).is_empty(), "dropped, then created again");
    }

    #[test]
    fn a_window_too_long_to_add_protects_for_ever() {
        let loads = [load(1, "t", 1, LoadState::Committed, 5)];
        assert_eq!(in_their_rollback_window(loads.iter(), &catalog(&[("t", 1, u64::MAX)]), u64::MAX - 1), [1].into());
    }
}
