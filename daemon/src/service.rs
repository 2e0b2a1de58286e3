//! What a shard does with a request: route it to the shard that owns it (forwarding through the
//! mesh when that is another shard), and execute what it owns against its engines.

use crate::compat::ProtocolVersion;
use crate::convert::{self, error};
use crate::partition_requests::Access;
use crate::shard::Shard;
use nacre_storage as st;
use nacre_wire::{self as wire, ErrorCode, Reply, Request};
use std::rc::Rc;

/// Rows in a scan page when the request asks for the server's default (`limit` 0).
const DEFAULT_SCAN_PAGE_ROWS: usize = 1_000;
/// Most rows in a scan page, whatever the request asks.
const MAX_SCAN_PAGE_ROWS: usize = 10_000;

/// The rows of a scan page for a request's `limit`: 0 is the documented "server's default",
/// not one row.
fn scan_page_rows(limit: u32) -> usize {
    match usize::try_from(limit).unwrap_or(usize::MAX) {
        0 => DEFAULT_SCAN_PAGE_ROWS,
        n => n.min(MAX_SCAN_PAGE_ROWS),
    }
}

/// Where a request runs.
enum Route {
    /// On shard `n` (in place when that is this one).
    Shard(usize),
    /// Split across shards by key (multi-get).
    Split,
    /// On every shard, merged (stats).
    Everywhere,
}

impl Shard {
    /// The shard that owns `partition_key`.
    pub(crate) fn owner_of(&self, partition_key: &[u8]) -> usize {
        self.process.owner(wire::partition_of(partition_key, self.process.partition_count))
    }

    fn route(&self, request: &Request) -> Route {
        let here_or = Route::Shard;
        match request {
            Request::Handshake(_) | Request::Topology | Request::ListTables | Request::ListSources => {
                Route::Shard(self.id)
            }
            Request::CreateTable(_)
            | Request::AlterTable(_)
            | Request::DropTable(_)
            | Request::AddSource(_)
            | Request::RemoveSource(_)
            | Request::BulkLink { .. }
            | Request::BulkStatus { .. }
            | Request::BulkRollback { .. } => here_or(0),
            // Any shard fans it out to the owners.
            Request::Compact(_) => Route::Shard(self.id),
            Request::Put(p) => here_or(self.owner_of(&p.key.partition_key)),
            Request::Delete(d) => here_or(self.owner_of(&d.key.partition_key)),
            Request::WriteBatch(b) => match b.ops.first() {
                Some(op) => here_or(self.owner_of(&op.key().partition_key)),
                None => Route::Shard(self.id),
            },
            Request::Get(g) => here_or(self.owner_of(&g.key.partition_key)),
            Request::Scan(s) => here_or(self.owner_of(&s.partition_key)),
            Request::Versions(v) => here_or(self.owner_of(&v.key.partition_key)),
            Request::Explain(e) => here_or(self.owner_of(&e.key.partition_key)),
            Request::MultiGet(_) => Route::Split,
            Request::Stats => Route::Everywhere,
        }
    }

    /// Handles a request from a client of this shard, wherever it must run.
    /// Counted in [`Shard::requests`] by kind and outcome, with its latency.
    pub async fn handle(self: &Rc<Self>, request: Request) -> Reply {
        let kind = request.kind_index();
        let started = std::time::Instant::now();
        let reply = match self.route(&request) {
            Route::Shard(n) if n == self.id => self.execute(request).await,
            // Boxed, like every cold branch: the mesh call's future holds another `execute`.
            Route::Shard(n) => Box::pin(self.forward(n, request)).await,
            Route::Split => Box::pin(self.multi_get(request)).await,
            Route::Everywhere => Box::pin(self.stats_everywhere()).await,
        };
        self.requests.record(kind, &reply, started.elapsed());
        reply
    }

    async fn forward(&self, shard: usize, request: Request) -> Reply {
        let run = move |s: Rc<Shard>| async move { s.execute(request).await };
        self.mesh
            .invoke_on(shard, run)
            .await
            .unwrap_or_else(|e| Reply::Error(error(ErrorCode::ShuttingDown, e.to_string())))
    }

    /// Executes a request this shard owns. Every branch's future is boxed: a future is as large
    /// as its largest branch, and every native request that is not answered in place is a task
    /// holding one, which glommio boxes (two allocations and copies) when it is 2 KiB or more.
    /// A request's task was 6.8 KB before its branches were boxed. A get's branch was left
    /// unboxed while gets ran as tasks; the gets the shard can answer without I/O now run in
    /// place (`Shard::get_in_place`), and a point read's future outgrew the room left, putting
    /// every request's task over 2 KiB (one allocation more for each put, measured).
    pub async fn execute(self: &Rc<Self>, request: Request) -> Reply {
        let outcome = match request {
            Request::Handshake(h) => self.handshake(&h).map(|(_, ok)| Reply::Handshake(ok)),
            Request::Topology => Ok(Reply::Topology(self.topology())),
            Request::ListTables => Ok(self.list_tables()),
            Request::CreateTable(c) => Box::pin(self.create_table(c)).await,
            Request::AlterTable(a) => Box::pin(self.alter_table(a)).await,
            Request::DropTable(d) => Box::pin(self.drop_table(d)).await,
            Request::Put(p) => {
                Box::pin(self.write_one(&p.table, p.key, Some((p.value, p.ttl_ms)), p.ts, p.durability)).await
            }
            Request::Delete(d) => Box::pin(self.write_one(&d.table, d.key, None, d.ts, d.durability)).await,
            Request::WriteBatch(b) => Box::pin(self.write_batch(b)).await,
            Request::Get(g) => Box::pin(self.get(g)).await,
            Request::Scan(s) => Box::pin(self.scan(s)).await,
            Request::Versions(v) => Box::pin(self.versions(v)).await,
            Request::Explain(e) => Box::pin(self.explain(e)).await,
            Request::MultiGet(m) => Box::pin(self.multi_get_here(m)).await,
            Request::Stats => Ok(Reply::Stats(self.stats())),
            Request::AddSource(spec) => Box::pin(self.add_source(spec)).await,
            Request::ListSources => Ok(self.list_sources()),
            Request::RemoveSource(r) => Box::pin(self.remove_source(r)).await,
            Request::BulkLink { dir, verify } => Box::pin(self.bulk_link(dir, verify)).await,
            Request::BulkStatus { load_id } => self.bulk_status(load_id),
            Request::BulkRollback { load_id } => Box::pin(self.bulk_rollback(load_id)).await,
            Request::Compact(c) => Box::pin(self.compact(c)).await,
        };
        outcome.unwrap_or_else(Reply::Error)
    }

    /// Answers a handshake: the version the connection speaks from now on, `min(client's
    /// highest, ours)` (FORMAT.md, "Connections"), or `ProtocolVersion` if no version is served.
    pub(crate) fn handshake(
        &self,
        h: &wire::Handshake,
    ) -> Result<(ProtocolVersion, wire::HandshakeOk), wire::ErrorReply> {
        let version = ProtocolVersion::negotiate(h.protocol_version)?;
        let ok = wire::HandshakeOk {
            protocol_version: version.get(),
            server_name: "nacred".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
            topology: self.topology(),
        };
        Ok((version, ok))
    }

    /// The partition-to-port map.
    pub fn topology(&self) -> wire::Topology {
        let p = &self.process;
        wire::Topology {
            partition_count: p.partition_count,
            shard_count: u32::try_from(p.shard_count).expect("shard counts are small"),
            owner_ports: (0..p.partition_count).map(|part| p.config.shard_port(p.owner(part))).collect(),
        }
    }

    /// The storage id of table `name` (no copy of its entry: this runs on every request).
    fn table(&self, name: &str) -> Result<st::TableId, wire::ErrorReply> {
        match self.catalog.borrow().get(name) {
            Some(entry) => Ok(entry.table_id()),
            None => Err(error(ErrorCode::UnknownTable, format!("no table named {name:?}"))),
        }
    }

    /// The engine of `partition_key`'s partition, which this shard must own, counting the
    /// request's `access` to it.
    pub(crate) fn engine_for(
        &self,
        partition_key: &[u8],
        access: Access,
    ) -> Result<Rc<st::Engine<st::io::dma::DmaDisk>>, wire::ErrorReply> {
        let p = wire::partition_of(partition_key, self.process.partition_count);
        let engine = self
            .partitions
            .engines
            .get(&p)
            .cloned()
            .ok_or_else(|| error(ErrorCode::NotOwner, format!("partition {p} is not on shard {}", self.id)))?;
        self.partition_requests.count(p, access);
        Ok(engine)
    }

    /// Waits while the shard's memtables are over the hard ceiling, up to the stall deadline.
    async fn wait_for_memory(&self) -> Result<(), wire::ErrorReply> {
        self.partitions.wait_for_memory().await.map_err(|e| error(ErrorCode::Busy, e.to_string()))
    }

    fn entry(
        &self,
        table: st::TableId,
        key: wire::Key,
        value: Option<(Vec<u8>, Option<u64>)>,
        ts: Option<wire::Ts>,
    ) -> st::Entry {
        let id = self.partitions.version(ts.map(convert::ts));
        let payload = match value {
            Some((value, ttl_ms)) => {
                st::Payload::Value { value, expires_at_ms: ttl_ms.map(|ttl| id.ts.millis().saturating_add(ttl)) }
            }
            None => st::Payload::Tombstone,
        };
        st::Entry {
            key: st::Key { table, partition_key: key.partition_key, sort_key: key.sort_key },
            version: st::Version { id, payload },
        }
    }

    async fn write_one(
        &self,
        table: &str,
        key: wire::Key,
        value: Option<(Vec<u8>, Option<u64>)>,
        ts: Option<wire::Ts>,
        durability: Option<wire::Durability>,
    ) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(table)?;
        let access = if value.is_some() { Access::Write } else { Access::Delete };
        let engine = self.engine_for(&key.partition_key, access)?;
        self.wait_for_memory().await?;
        let entries = vec![self.entry(t, key, value, ts)];
        let id = entries[0].version.id;
        self.partitions.cover(&entries).await.map_err(|e| convert::storage_error(&e))?;
        engine.write(entries, convert::durability(durability)).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::Written(convert::wire_version(id)))
    }

    async fn write_batch(&self, b: wire::WriteBatch) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&b.table)?;
        let Some(first) = b.ops.first() else {
            return Err(error(ErrorCode::BadRequest, "a write batch holds at least one op"));
        };
        let partition = wire::partition_of(&first.key().partition_key, self.process.partition_count);
        if b.ops.iter().any(|op| wire::partition_of(&op.key().partition_key, self.process.partition_count) != partition)
        {
            return Err(error(ErrorCode::CrossPartitionBatch, "every op of a write batch must fall in one partition"));
        }
        let engine = self.engine_for(&first.key().partition_key, Access::Write)?;
        self.wait_for_memory().await?;
        let entries: Vec<st::Entry> = b
            .ops
            .into_iter()
            .map(|op| match op {
                wire::BatchOp::Put { key, value, ts, ttl_ms } => self.entry(t, key, Some((value, ttl_ms)), ts),
                wire::BatchOp::Delete { key, ts } => self.entry(t, key, None, ts),
            })
            .collect();
        let ids = entries.iter().map(|e| convert::wire_version(e.version.id)).collect();
        self.partitions.cover(&entries).await.map_err(|e| convert::storage_error(&e))?;
        engine.write(entries, convert::durability(b.durability)).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::BatchWritten(ids))
    }

    fn read_at(as_of: Option<wire::Ts>) -> st::ReadAt {
        as_of.map_or(st::ReadAt::Latest, |t| st::ReadAt::AsOf(convert::ts(t)))
    }

    async fn get(&self, g: wire::Get) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&g.table)?;
        let engine = self.engine_for(&g.key.partition_key, Access::Read)?;
        let key = st::KeyRef { table: t, partition_key: &g.key.partition_key, sort_key: &g.key.sort_key };
        let row = engine.get(key, Self::read_at(g.as_of)).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::Get(row.map(convert::wire_row)))
    }

    /// Answers `g` in place, with no task and no copy of the request, when this shard owns its
    /// key and its engine has the answer without I/O ([`st::Engine::get_cached`]). `None`
    /// otherwise, having counted nothing: the request then goes the usual way, through
    /// [`Shard::handle`]. Counted as `handle` counts a get.
    pub(crate) fn get_in_place(&self, g: &wire::GetRef<'_>) -> Option<Reply> {
        // The key hashed once: this shard's engines are the partitions it owns.
        let partition = wire::partition_of(g.partition_key, self.process.partition_count);
        let engine = self.partitions.engines.get(&partition)?;
        let started = std::time::Instant::now();
        let outcome = match self.table(g.table) {
            Err(refused) => Err(refused),
            Ok(t) => {
                let key = st::KeyRef { table: t, partition_key: g.partition_key, sort_key: g.sort_key };
                let row = engine.get_cached(key, Self::read_at(g.as_of))?;
                self.partition_requests.count(partition, Access::Read);
                row.map(|row| Reply::Get(row.map(convert::wire_row))).map_err(|e| convert::storage_error(&e))
            }
        };
        let reply = outcome.unwrap_or_else(Reply::Error);
        self.requests.record(Request::GET_KIND, &reply, started.elapsed());
        Some(reply)
    }

    async fn multi_get_here(&self, m: wire::MultiGet) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&m.table)?;
        let mut rows = Vec::with_capacity(m.keys.len());
        for key in &m.keys {
            let engine = self.engine_for(&key.partition_key, Access::Read)?;
            let k = st::KeyRef { table: t, partition_key: &key.partition_key, sort_key: &key.sort_key };
            rows.push(
                engine
                    .get(k, Self::read_at(m.as_of))
                    .await
                    .map_err(|e| convert::storage_error(&e))?
                    .map(convert::wire_row),
            );
        }
        Ok(Reply::MultiGet(rows))
    }

    async fn scan(&self, s: wire::Scan) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&s.table)?;
        let engine = self.engine_for(&s.partition_key, Access::Read)?;
        let req = st::ScanRequest {
            table: t,
            partition_key: s.partition_key,
            from: s.from,
            to: s.to,
            limit: scan_page_rows(s.limit),
            reverse: s.reverse,
            cursor: s.cursor,
            at: Self::read_at(s.as_of),
        };
        let page = engine.scan(&req).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::Scan(convert::wire_page(page)))
    }

    async fn versions(&self, v: wire::Versions) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&v.table)?;
        let engine = self.engine_for(&v.key.partition_key, Access::Read)?;
        let key = st::KeyRef { table: t, partition_key: &v.key.partition_key, sort_key: &v.key.sort_key };
        let history = engine.versions(key).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::Versions(convert::wire_history(history)))
    }

    async fn explain(&self, e: wire::Explain) -> Result<Reply, wire::ErrorReply> {
        let t = self.table(&e.table)?;
        let engine = self.engine_for(&e.key.partition_key, Access::Read)?;
        let key = st::KeyRef { table: t, partition_key: &e.key.partition_key, sort_key: &e.key.sort_key };
        let explanation = engine.explain(key, Self::read_at(e.as_of)).await.map_err(|e| convert::storage_error(&e))?;
        Ok(Reply::Explain(convert::wire_explanation(explanation)))
    }

    /// Splits a multi-get by owning shard, runs the parts, and reassembles them in order.
    async fn multi_get(self: &Rc<Self>, request: Request) -> Reply {
        let Request::MultiGet(m) = request else { return Reply::Error(error(ErrorCode::Internal, "not a multi-get")) };
        let mut parts: Vec<Vec<(usize, wire::Key)>> = vec![Vec::new(); self.process.shard_count];
        for (i, key) in m.keys.into_iter().enumerate() {
            parts[self.owner_of(&key.partition_key)].push((i, key));
        }
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut rows: Vec<Option<wire::Row>> = vec![None; total];
        for (shard, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            let (indexes, keys): (Vec<usize>, Vec<wire::Key>) = part.into_iter().unzip();
            let sub = Request::MultiGet(wire::MultiGet { table: m.table.clone(), keys, as_of: m.as_of });
            let reply = self.forward(shard, sub).await;
            match reply {
                Reply::MultiGet(got) if got.len() == indexes.len() => {
                    for (i, row) in indexes.into_iter().zip(got) {
                        rows[i] = row;
                    }
                }
                Reply::Error(e) => return Reply::Error(e),
                other => {
                    return Reply::Error(error(
                        ErrorCode::Internal,
                        format!("unexpected {} from shard {shard}", other.kind()),
                    ));
                }
            }
        }
        Reply::MultiGet(rows)
    }

    /// This shard's statistics.
    pub fn stats(&self) -> Vec<wire::Stat> {
        let shard = Some(u32::try_from(self.id).expect("small"));
        let mut out = vec![
            wire::Stat { name: "connections".into(), shard, partition: None, value: self.life.connections() as u64 },
            wire::Stat {
                name: "memtable_bytes".into(),
                shard,
                partition: None,
                value: self.partitions.memtable_bytes() as u64,
            },
            wire::Stat {
                name: "memtable_peak_bytes".into(),
                shard,
                partition: None,
                value: self.partitions.memtable_peak_bytes() as u64,
            },
        ];
        let mesh = self.mesh.stats();
        let wal = &self.partitions.wal;
        for (name, value) in [
            ("forward_calls_in_flight", mesh.calls_in_flight as u64),
            ("forward_calls_in_flight_peak", mesh.calls_in_flight_peak_per_peer as u64),
            ("forward_calls_in_flight_limit", self.process.config.limits.forward_calls_in_flight as u64),
            ("forward_calls_sent_total", mesh.calls_sent),
            // This shard's thread's, counted by nacred's allocator (0 under another allocator).
            ("allocations_total", crate::alloc_count::allocations_on_this_thread()),
            ("request_bytes_in_flight", self.native.request_bytes.used() as u64),
            ("request_bytes_in_flight_peak", self.native.request_bytes.peak() as u64),
            ("resp_reply_bytes_pending", self.resp.reply_bytes.used() as u64),
            ("resp_reply_bytes_pending_peak", self.resp.reply_bytes.peak() as u64),
            ("wal_pending_bytes", wal.pending_bytes() as u64),
            ("wal_pending_peak_bytes", wal.pending_peak_bytes() as u64),
            ("wal_batches_total", wal.batches_written()),
            ("wal_bytes_total", wal.bytes_written()),
            ("wal_commit_micros_total", wal.commit_micros()),
            ("wal_durability_lag_micros", u64::try_from(wal.durability_lag().as_micros()).unwrap_or(u64::MAX)),
            ("wal_durable_lsn", wal.durable_lsn().0),
            ("compaction_queue_length", self.compactor.queue_length() as u64),
            ("compaction_paused_turns_total", self.compactor.paused_turns()),
        ] {
            out.push(wire::Stat { name: name.into(), shard, partition: None, value });
        }
        self.ingest_stats(&mut out);
        self.requests.push_stats(shard, &mut out);
        self.partition_requests.push_stats(shard, self.partitions.engines.keys().copied(), &mut out);
        self.doors.push_stats(shard, &mut out);
        self.resp.metrics.push_stats(shard, &mut out);
        if self.id == 0 {
            self.bulk.push_stats(shard, &mut out);
            self.process.lineage.push_stats(shard, &mut out);
        }
        for (p, engine) in &self.partitions.engines {
            let s = engine.stats();
            let partition = Some(*p);
            let written = engine.maintenance_counters();
            let debt = engine.compaction_snapshot().debt();
            let heat = engine.heat();
            let compactions = self.compactor.of_partition(*p);
            let milli = |x: f64| (x * 1000.0).round() as u64;
            for (name, value) in [
                ("memtable_bytes", s.memtable_bytes as u64),
                ("segment_count", s.segment_count as u64),
                ("segment_bytes", s.segment_bytes),
                ("flush_bytes_total", written.flush_bytes),
                ("compaction_bytes_read_total", written.compaction_bytes_read),
                ("compaction_bytes_written_total", written.compaction_bytes_written),
                ("compaction_reclaimed_bytes_total", written.reclaimed_bytes),
                ("compaction_garbage_versions_total", written.garbage_versions),
                ("compactions_total", compactions.compactions),
                ("compaction_failures_total", compactions.failures),
                ("compaction_micros_total", compactions.micros),
                ("write_amplification_milli", milli(written.write_amplification())),
                ("read_amplification", debt.read_amplification as u64),
                ("space_amplification_milli", milli(debt.space_amplification)),
                ("compaction_debt_bytes", debt.reclaimable_bytes),
                ("heat_ops_per_sec_milli", milli(heat.ops())),
                ("cache_hits_total", s.cache_hits),
                ("cache_misses_total", s.cache_misses),
                ("partition_poisoned", u64::from(self.partitions.is_poisoned(*p))),
            ] {
                out.push(wire::Stat { name: name.into(), shard, partition, value });
            }
        }
        out
    }

    /// Answers the HTTP endpoint's asks for every shard's statistics until the shard stops
    /// (shard 0).
    pub(crate) async fn answer_stats_asks(
        self: Rc<Self>,
        mut asks: futures_channel::mpsc::Receiver<crate::http::stats_bridge::Ask>,
    ) {
        use futures_lite::{FutureExt, StreamExt};
        loop {
            let next = async { asks.next().await }.or(async {
                self.life.until_stopping().await;
                None
            });
            let Some(ask) = next.await else { return };
            if let Reply::Stats(all) = self.stats_everywhere().await {
                // The asker may have given up waiting; then nobody wants these.
                let _ = ask.try_send(all);
            }
        }
    }

    async fn stats_everywhere(self: &Rc<Self>) -> Reply {
        let mut all = self.stats();
        for shard in (0..self.process.shard_count).filter(|s| *s != self.id) {
            match self.mesh.invoke_on(shard, |s: Rc<Shard>| async move { s.stats() }).await {
                Ok(stats) => all.extend(stats),
                Err(e) => return Reply::Error(error(ErrorCode::ShuttingDown, e.to_string())),
            }
        }
        Reply::Stats(all)
    }
}
