//! What a v1 client sends: one builder per request kind of the v1 schema, and the frame around
//! it. Optional fields the caller leaves unset are left out of the buffer entirely, which is
//! what "absent" means on the wire (FORMAT.md, "Messages").

use crate::generated as fb;
use crate::types::{AlterTable, BatchOp, Durability, Key, OriginKind, ScanRange, TableSettings, TieRule, WriteOptions};
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, Vector, WIPOffset};

/// A builder for requests.
pub(crate) type Builder = FlatBufferBuilder<'static>;
/// A request body: its union tag and the table it points to.
pub(crate) type Body = (fb::RequestBody, WIPOffset<UnionWIPOffset>);

/// The frame of request `request_id` whose body `build` writes: a size-prefixed flatbuffer.
pub(crate) fn frame(request_id: u64, build: impl FnOnce(&mut Builder) -> Body) -> Vec<u8> {
    let mut fbb = Builder::with_capacity(1024);
    let (body_type, body) = build(&mut fbb);
    let root = fb::Request::create(&mut fbb, &fb::RequestArgs { request_id, body_type, body: Some(body) });
    fbb.finish_size_prefixed(root, None);
    fbb.finished_data().to_vec()
}

/// The first request on every connection.
pub(crate) fn handshake(fbb: &mut Builder, protocol_version: u32, client_name: &str) -> Body {
    let client_name = Some(fbb.create_string(client_name));
    let h = fb::Handshake::create(fbb, &fb::HandshakeArgs { protocol_version, client_name });
    (fb::RequestBody::Handshake, h.as_union_value())
}

pub(crate) fn get_topology(fbb: &mut Builder) -> Body {
    (fb::RequestBody::GetTopology, fb::GetTopology::create(fbb, &fb::GetTopologyArgs {}).as_union_value())
}

pub(crate) fn create_table(fbb: &mut Builder, name: &str, settings: &TableSettings) -> Body {
    let name = Some(fbb.create_string(name));
    let tie_rule = settings.tie_rule.map(|rule| tie_rule(fbb, &rule));
    let args = fb::TableSettingsArgs {
        max_versions: settings.max_versions,
        version_retention_ms: settings.version_retention_ms,
        default_ttl_ms: settings.default_ttl_ms,
        tie_rule,
    };
    let settings = Some(fb::TableSettings::create(fbb, &args));
    (
        fb::RequestBody::CreateTable,
        fb::CreateTable::create(fbb, &fb::CreateTableArgs { name, settings }).as_union_value(),
    )
}

pub(crate) fn alter_table(fbb: &mut Builder, a: &AlterTable) -> Body {
    let name = Some(fbb.create_string(&a.name));
    let tie_rule = a.tie_rule.map(|rule| tie_rule(fbb, &rule));
    let args = fb::AlterTableArgs {
        name,
        max_versions: a.max_versions,
        version_retention_ms: a.version_retention_ms,
        clear_version_retention: a.clear_version_retention,
        default_ttl_ms: a.default_ttl_ms,
        clear_default_ttl: a.clear_default_ttl,
        tie_rule,
    };
    (fb::RequestBody::AlterTable, fb::AlterTable::create(fbb, &args).as_union_value())
}

pub(crate) fn drop_table(fbb: &mut Builder, name: &str) -> Body {
    let name = Some(fbb.create_string(name));
    (fb::RequestBody::DropTable, fb::DropTable::create(fbb, &fb::DropTableArgs { name }).as_union_value())
}

pub(crate) fn list_tables(fbb: &mut Builder) -> Body {
    (fb::RequestBody::ListTables, fb::ListTables::create(fbb, &fb::ListTablesArgs {}).as_union_value())
}

pub(crate) fn put(fbb: &mut Builder, table: &str, key: &Key, value: &[u8], options: &WriteOptions) -> Body {
    let table = Some(fbb.create_string(table));
    let partition_key = Some(fbb.create_vector(&key.partition_key));
    let sort_key = Some(fbb.create_vector(&key.sort_key));
    let value = Some(fbb.create_vector(value));
    let args = fb::PutArgs {
        table,
        partition_key,
        sort_key,
        value,
        ts: options.ts,
        ttl_ms: options.ttl_ms,
        durability: durability(options.durability),
    };
    (fb::RequestBody::Put, fb::Put::create(fbb, &args).as_union_value())
}

pub(crate) fn delete(fbb: &mut Builder, table: &str, key: &Key, options: &WriteOptions) -> Body {
    let table = Some(fbb.create_string(table));
    let partition_key = Some(fbb.create_vector(&key.partition_key));
    let sort_key = Some(fbb.create_vector(&key.sort_key));
    let args =
        fb::DeleteArgs { table, partition_key, sort_key, ts: options.ts, durability: durability(options.durability) };
    (fb::RequestBody::Delete, fb::Delete::create(fbb, &args).as_union_value())
}

pub(crate) fn write_batch(fbb: &mut Builder, table: &str, ops: &[BatchOp], d: Durability) -> Body {
    let table = Some(fbb.create_string(table));
    let ops: Vec<_> = ops.iter().map(|op| batch_op(fbb, op)).collect();
    let ops = Some(fbb.create_vector(&ops));
    let args = fb::WriteBatchArgs { table, ops, durability: durability(d) };
    (fb::RequestBody::WriteBatch, fb::WriteBatch::create(fbb, &args).as_union_value())
}

fn batch_op<'b>(fbb: &mut FlatBufferBuilder<'b>, op: &BatchOp) -> WIPOffset<fb::BatchOp<'b>> {
    let args = match op {
        BatchOp::Put { key, value, ts, ttl_ms } => fb::BatchOpArgs {
            kind: fb::BatchOpKind::Put,
            partition_key: Some(fbb.create_vector(&key.partition_key)),
            sort_key: Some(fbb.create_vector(&key.sort_key)),
            value: Some(fbb.create_vector(value)),
            ts: *ts,
            ttl_ms: *ttl_ms,
        },
        BatchOp::Delete { key, ts } => fb::BatchOpArgs {
            kind: fb::BatchOpKind::Delete,
            partition_key: Some(fbb.create_vector(&key.partition_key)),
            sort_key: Some(fbb.create_vector(&key.sort_key)),
            value: None,
            ts: *ts,
            ttl_ms: None,
        },
    };
    fb::BatchOp::create(fbb, &args)
}

pub(crate) fn get(fbb: &mut Builder, table: &str, key: &Key, as_of: Option<u64>) -> Body {
    let table = Some(fbb.create_string(table));
    let partition_key = Some(fbb.create_vector(&key.partition_key));
    let sort_key = Some(fbb.create_vector(&key.sort_key));
    let get = fb::Get::create(fbb, &fb::GetArgs { table, partition_key, sort_key, as_of });
    (fb::RequestBody::Get, get.as_union_value())
}

pub(crate) fn multi_get(fbb: &mut Builder, table: &str, keys: &[Key], as_of: Option<u64>) -> Body {
    let table = Some(fbb.create_string(table));
    let keys: Vec<_> = keys
        .iter()
        .map(|k| {
            let partition_key = Some(fbb.create_vector(&k.partition_key));
            let sort_key = Some(fbb.create_vector(&k.sort_key));
            fb::Key::create(fbb, &fb::KeyArgs { partition_key, sort_key })
        })
        .collect();
    let keys = Some(fbb.create_vector(&keys));
    (fb::RequestBody::MultiGet, fb::MultiGet::create(fbb, &fb::MultiGetArgs { table, keys, as_of }).as_union_value())
}

pub(crate) fn scan(
    fbb: &mut Builder,
    table: &str,
    partition_key: &[u8],
    range: &ScanRange,
    cursor: Option<&[u8]>,
) -> Body {
    let table = Some(fbb.create_string(table));
    let partition_key = Some(fbb.create_vector(partition_key));
    let from = range.from.as_ref().map(|b| fbb.create_vector(b));
    let to = range.to.as_ref().map(|b| fbb.create_vector(b));
    let cursor = cursor.map(|b| fbb.create_vector(b));
    let args = fb::ScanArgs {
        table,
        partition_key,
        from,
        to,
        limit: range.limit,
        reverse: range.reverse,
        cursor,
        as_of: range.as_of,
    };
    (fb::RequestBody::Scan, fb::Scan::create(fbb, &args).as_union_value())
}

pub(crate) fn versions(fbb: &mut Builder, table: &str, key: &Key) -> Body {
    let table = Some(fbb.create_string(table));
    let partition_key = Some(fbb.create_vector(&key.partition_key));
    let sort_key = Some(fbb.create_vector(&key.sort_key));
    let v = fb::Versions::create(fbb, &fb::VersionsArgs { table, partition_key, sort_key });
    (fb::RequestBody::Versions, v.as_union_value())
}

pub(crate) fn get_stats(fbb: &mut Builder) -> Body {
    (fb::RequestBody::GetStats, fb::GetStats::create(fbb, &fb::GetStatsArgs {}).as_union_value())
}

fn durability(d: Durability) -> fb::Durability {
    match d {
        Durability::Default => fb::Durability::Default,
        Durability::Sync => fb::Durability::Sync,
        Durability::Async => fb::Durability::Async,
    }
}

pub(crate) fn origin_kind(kind: OriginKind) -> fb::OriginKind {
    match kind {
        OriginKind::Bulk => fb::OriginKind::Bulk,
        OriginKind::Stream => fb::OriginKind::Stream,
        OriginKind::Direct => fb::OriginKind::Direct,
    }
}

fn tie_rule<'b>(fbb: &mut FlatBufferBuilder<'b>, rule: &TieRule) -> WIPOffset<Vector<'b, fb::OriginKind>> {
    let kinds: Vec<fb::OriginKind> = rule.iter().map(|k| origin_kind(*k)).collect();
    fbb.create_vector(&kinds)
}
