//! [`Request`] → frame. Absent optional fields are left out of the buffer, so an old peer sees
//! exactly what it knows.

use super::Request;
use crate::codec::{builder, finish, nonempty_bytes, settings_to_fb, source_settings_to_fb, tie_rule_to_fb};
use crate::generated as fb;
use crate::types::{AlterTable, BatchOp, Durability, GetRef, Key, LinkVerify, PutRef, SourceSpec, Ts, WriteBatch};
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

pub(super) fn encode(request_id: u64, request: &Request) -> Vec<u8> {
    let mut fbb = builder(payload_bytes(request));
    let (body_type, body) = body(&mut fbb, request);
    let root = fb::Request::create(&mut fbb, &fb::RequestArgs { request_id, body_type, body: Some(body) });
    finish(fbb, root)
}

/// Builds the frame for `request` in `fbb`, reset first; the frame is `fbb.finished_data()`.
pub(super) fn encode_in(fbb: &mut FlatBufferBuilder<'static>, request_id: u64, request: &Request) {
    encode_body_in(fbb, request_id, |fbb| body(fbb, request));
}

/// Builds the frame of a get borrowed from the caller's buffers, as [`encode_in`] builds it
/// from the owned get.
pub(super) fn encode_get_in(fbb: &mut FlatBufferBuilder<'static>, request_id: u64, get: &GetRef<'_>) {
    encode_body_in(fbb, request_id, |fbb| get_body(fbb, get));
}

/// Builds the frame of a put borrowed from the caller's buffers, as [`encode_in`] builds it
/// from the owned put.
pub(super) fn encode_put_in(fbb: &mut FlatBufferBuilder<'static>, request_id: u64, put: &PutRef<'_>) {
    encode_body_in(fbb, request_id, |fbb| put_body(fbb, put));
}

fn encode_body_in(
    fbb: &mut FlatBufferBuilder<'static>,
    request_id: u64,
    body: impl FnOnce(&mut FlatBufferBuilder<'static>) -> (fb::RequestBody, WIPOffset<UnionWIPOffset>),
) {
    fbb.reset();
    let (body_type, body) = body(fbb);
    let root = fb::Request::create(fbb, &fb::RequestArgs { request_id, body_type, body: Some(body) });
    fbb.finish_size_prefixed(root, None);
}

fn get_body<'b>(fbb: &mut FlatBufferBuilder<'b>, g: &GetRef<'_>) -> (fb::RequestBody, WIPOffset<UnionWIPOffset>) {
    let table = Some(fbb.create_string(g.table));
    let partition_key = Some(fbb.create_vector(g.partition_key));
    let sort_key = nonempty_bytes(fbb, g.sort_key);
    let args = fb::GetArgs { table, partition_key, sort_key, as_of: ts(g.as_of) };
    (fb::RequestBody::Get, fb::Get::create(fbb, &args).as_union_value())
}

fn put_body<'b>(fbb: &mut FlatBufferBuilder<'b>, p: &PutRef<'_>) -> (fb::RequestBody, WIPOffset<UnionWIPOffset>) {
    let table = Some(fbb.create_string(p.table));
    let partition_key = Some(fbb.create_vector(p.partition_key));
    let sort_key = nonempty_bytes(fbb, p.sort_key);
    let value = nonempty_bytes(fbb, p.value);
    let args = fb::PutArgs {
        table,
        partition_key,
        sort_key,
        value,
        ts: ts(p.ts),
        ttl_ms: p.ttl_ms,
        durability: durability(p.durability),
    };
    (fb::RequestBody::Put, fb::Put::create(fbb, &args).as_union_value())
}

/// Bytes of keys and values, to size the builder once.
fn payload_bytes(request: &Request) -> usize {
    let key = |k: &Key| k.partition_key.len() + k.sort_key.len();
    match request {
        Request::Put(p) => key(&p.key) + p.value.len(),
        Request::WriteBatch(b) => b
            .ops
            .iter()
            .map(|op| match op {
                BatchOp::Put { key: k, value, .. } => key(k) + value.len() + 64,
                BatchOp::Delete { key: k, .. } => key(k) + 48,
            })
            .sum(),
        Request::MultiGet(m) => m.keys.iter().map(|k| key(k) + 24).sum(),
        _ => 0,
    }
}

fn durability(d: Option<Durability>) -> fb::Durability {
    match d {
        None => fb::Durability::Default,
        Some(Durability::Sync) => fb::Durability::Sync,
        Some(Durability::Async) => fb::Durability::Async,
    }
}

fn ts(t: Option<Ts>) -> Option<u64> {
    t.map(|t| t.0)
}

fn body<'b>(fbb: &mut FlatBufferBuilder<'b>, request: &Request) -> (fb::RequestBody, WIPOffset<UnionWIPOffset>) {
    match request {
        Request::Handshake(h) => {
            let client_name = Some(fbb.create_string(&h.client_name));
            let args = fb::HandshakeArgs { protocol_version: h.protocol_version, client_name };
            (fb::RequestBody::Handshake, fb::Handshake::create(fbb, &args).as_union_value())
        }
        Request::Topology => {
            (fb::RequestBody::GetTopology, fb::GetTopology::create(fbb, &fb::GetTopologyArgs {}).as_union_value())
        }
        Request::CreateTable(c) => {
            let name = Some(fbb.create_string(&c.name));
            let settings = Some(settings_to_fb(fbb, &c.settings));
            let t = fb::CreateTable::create(fbb, &fb::CreateTableArgs { name, settings });
            (fb::RequestBody::CreateTable, t.as_union_value())
        }
        Request::AlterTable(a) => (fb::RequestBody::AlterTable, alter_table(fbb, a).as_union_value()),
        Request::DropTable(d) => {
            let name = Some(fbb.create_string(&d.name));
            (fb::RequestBody::DropTable, fb::DropTable::create(fbb, &fb::DropTableArgs { name }).as_union_value())
        }
        Request::ListTables => {
            (fb::RequestBody::ListTables, fb::ListTables::create(fbb, &fb::ListTablesArgs {}).as_union_value())
        }
        Request::Put(p) => put_body(fbb, &p.as_ref()),
        Request::Delete(d) => {
            let table = Some(fbb.create_string(&d.table));
            let partition_key = Some(fbb.create_vector(&d.key.partition_key));
            let sort_key = nonempty_bytes(fbb, &d.key.sort_key);
            let args =
                fb::DeleteArgs { table, partition_key, sort_key, ts: ts(d.ts), durability: durability(d.durability) };
            (fb::RequestBody::Delete, fb::Delete::create(fbb, &args).as_union_value())
        }
        Request::WriteBatch(b) => (fb::RequestBody::WriteBatch, write_batch(fbb, b).as_union_value()),
        Request::Get(g) => get_body(fbb, &g.as_ref()),
        Request::MultiGet(m) => {
            let table = Some(fbb.create_string(&m.table));
            let keys: Vec<_> = m.keys.iter().map(|k| key(fbb, k)).collect();
            let keys = Some(fbb.create_vector(&keys));
            let args = fb::MultiGetArgs { table, keys, as_of: ts(m.as_of) };
            (fb::RequestBody::MultiGet, fb::MultiGet::create(fbb, &args).as_union_value())
        }
        Request::Scan(s) => {
            let table = Some(fbb.create_string(&s.table));
            let partition_key = Some(fbb.create_vector(&s.partition_key));
            let from = s.from.as_ref().map(|b| fbb.create_vector(b));
            let to = s.to.as_ref().map(|b| fbb.create_vector(b));
            let cursor = s.cursor.as_ref().map(|b| fbb.create_vector(b));
            let args = fb::ScanArgs {
                table,
                partition_key,
                from,
                to,
                limit: s.limit,
                reverse: s.reverse,
                cursor,
                as_of: ts(s.as_of),
            };
            (fb::RequestBody::Scan, fb::Scan::create(fbb, &args).as_union_value())
        }
        Request::Versions(v) => {
            let table = Some(fbb.create_string(&v.table));
            let partition_key = Some(fbb.create_vector(&v.key.partition_key));
            let sort_key = nonempty_bytes(fbb, &v.key.sort_key);
            let args = fb::VersionsArgs { table, partition_key, sort_key };
            (fb::RequestBody::Versions, fb::Versions::create(fbb, &args).as_union_value())
        }
        Request::Explain(e) => {
            let table = Some(fbb.create_string(&e.table));
            let partition_key = Some(fbb.create_vector(&e.key.partition_key));
            let sort_key = nonempty_bytes(fbb, &e.key.sort_key);
            let args = fb::ExplainArgs { table, partition_key, sort_key, as_of: ts(e.as_of) };
            (fb::RequestBody::Explain, fb::Explain::create(fbb, &args).as_union_value())
        }
        Request::Stats => (fb::RequestBody::GetStats, fb::GetStats::create(fbb, &fb::GetStatsArgs {}).as_union_value()),
        Request::AddSource(spec) => (fb::RequestBody::AddSource, add_source(fbb, spec).as_union_value()),
        Request::ListSources => {
            (fb::RequestBody::ListSources, fb::ListSources::create(fbb, &fb::ListSourcesArgs {}).as_union_value())
        }
        Request::RemoveSource(r) => {
            let name = Some(fbb.create_string(&r.name));
            let remove = fb::RemoveSource::create(fbb, &fb::RemoveSourceArgs { name });
            (fb::RequestBody::RemoveSource, remove.as_union_value())
        }
        Request::BulkLink { dir, verify } => {
            let dir = Some(fbb.create_string(dir));
            let verify = match verify {
                LinkVerify::Full => fb::LinkVerify::Full,
                LinkVerify::Checksums => fb::LinkVerify::Checksums,
            };
            (fb::RequestBody::BulkLink, fb::BulkLink::create(fbb, &fb::BulkLinkArgs { dir, verify }).as_union_value())
        }
        Request::BulkStatus { load_id } => {
            let args = fb::BulkStatusArgs { load_id: load_id.unwrap_or(0) };
            (fb::RequestBody::BulkStatus, fb::BulkStatus::create(fbb, &args).as_union_value())
        }
        Request::BulkRollback { load_id } => {
            let args = fb::BulkRollbackArgs { load_id: *load_id };
            (fb::RequestBody::BulkRollback, fb::BulkRollback::create(fbb, &args).as_union_value())
        }
        Request::Compact(c) => {
            let table = Some(fbb.create_string(&c.table));
            let args = fb::CompactArgs { table, partition: c.partition, wait: c.wait };
            (fb::RequestBody::Compact, fb::Compact::create(fbb, &args).as_union_value())
        }
    }
}

fn add_source<'b>(fbb: &mut FlatBufferBuilder<'b>, spec: &SourceSpec) -> WIPOffset<fb::AddSource<'b>> {
    let name = Some(fbb.create_string(&spec.name));
    let table = Some(fbb.create_string(&spec.table));
    let topics: Vec<_> = spec.topics.iter().map(|t| fbb.create_string(t)).collect();
    let topics = Some(fbb.create_vector(&topics));
    let brokers = Some(fbb.create_string(&spec.brokers));
    let dead_letter_topic = spec.dead_letter_topic.as_ref().map(|t| fbb.create_string(t));
    let settings = source_settings_to_fb(fbb, &spec.settings);
    fb::AddSource::create(fbb, &fb::AddSourceArgs { name, table, topics, brokers, dead_letter_topic, settings })
}

fn key<'b>(fbb: &mut FlatBufferBuilder<'b>, k: &Key) -> WIPOffset<fb::Key<'b>> {
    let partition_key = Some(fbb.create_vector(&k.partition_key));
    let sort_key = nonempty_bytes(fbb, &k.sort_key);
    fb::Key::create(fbb, &fb::KeyArgs { partition_key, sort_key })
}

fn alter_table<'b>(fbb: &mut FlatBufferBuilder<'b>, a: &AlterTable) -> WIPOffset<fb::AlterTable<'b>> {
    let name = Some(fbb.create_string(&a.name));
    let tie_rule = a.tie_rule.as_ref().map(|r| tie_rule_to_fb(fbb, r));
    let args = fb::AlterTableArgs {
        name,
        max_versions: a.max_versions,
        version_retention_ms: a.version_retention_ms.flatten(),
        clear_version_retention: a.version_retention_ms == Some(None),
        default_ttl_ms: a.default_ttl_ms.flatten(),
        clear_default_ttl: a.default_ttl_ms == Some(None),
        tie_rule,
        rollback_window_ms: a.rollback_window_ms,
    };
    fb::AlterTable::create(fbb, &args)
}

fn write_batch<'b>(fbb: &mut FlatBufferBuilder<'b>, b: &WriteBatch) -> WIPOffset<fb::WriteBatch<'b>> {
    let table = Some(fbb.create_string(&b.table));
    let ops: Vec<_> = b
        .ops
        .iter()
        .map(|op| {
            let partition_key = Some(fbb.create_vector(&op.key().partition_key));
            let sort_key = nonempty_bytes(fbb, &op.key().sort_key);
            let args = match op {
                BatchOp::Put { value, ts: t, ttl_ms, .. } => fb::BatchOpArgs {
                    kind: fb::BatchOpKind::Put,
                    partition_key,
                    sort_key,
                    value: nonempty_bytes(fbb, value),
                    ts: ts(*t),
                    ttl_ms: *ttl_ms,
                },
                BatchOp::Delete { ts: t, .. } => fb::BatchOpArgs {
                    kind: fb::BatchOpKind::Delete,
                    partition_key,
                    sort_key,
                    value: None,
                    ts: ts(*t),
                    ttl_ms: None,
                },
            };
            fb::BatchOp::create(fbb, &args)
        })
        .collect();
    let ops = Some(fbb.create_vector(&ops));
    fb::WriteBatch::create(fbb, &fb::WriteBatchArgs { table, ops, durability: durability(b.durability) })
}
