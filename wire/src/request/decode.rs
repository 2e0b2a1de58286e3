//! Frame → [`Request`]. Verifies first (`codec::verify`), then converts, rejecting what the
//! verifier cannot see: unknown enum values, a delete carrying a value, contradictory alter
//! fields. Semantic checks (limits, table existence, a tie rule's permutation) are the server's.

use super::{InPlace, Request};
use crate::codec::{bytes, opt_bytes, settings_from_fb, source_settings_from_fb, tie_rule_from_fb, verify};
use crate::error::{MessageError, WireError};
use crate::frame::FrameLimits;
use crate::generated as fb;
use crate::types::{
    AlterTable, BatchOp, Compact, CreateTable, Delete, DropTable, Durability, Explain, Get, GetRef, Handshake, Key,
    LinkVerify, MultiGet, Put, RemoveSource, Scan, SourceSpec, Ts, Versions, WriteBatch,
};

pub(super) fn decode(frame: &[u8], limits: &FrameLimits) -> Result<(u64, Request), WireError> {
    let root = verify::<fb::Request>(frame, limits)?;
    let request_id = root.request_id();
    let request = body(&root, limits).map_err(|problem| WireError::Message { request_id, problem })?;
    Ok((request_id, request))
}

pub(super) fn decode_in_place<'a>(frame: &'a [u8], limits: &FrameLimits) -> Result<(u64, InPlace<'a>), WireError> {
    let root = verify::<fb::Request>(frame, limits)?;
    let request_id = root.request_id();
    if let Some(g) = root.body_as_get() {
        let get = GetRef {
            table: g.table(),
            partition_key: g.partition_key().bytes(),
            sort_key: g.sort_key().map_or(&[], |v| v.bytes()),
            as_of: g.as_of().map(Ts),
        };
        return Ok((request_id, InPlace::Get(get)));
    }
    let request = body(&root, limits).map_err(|problem| WireError::Message { request_id, problem })?;
    Ok((request_id, InPlace::Other(request)))
}

fn unknown(root: &fb::Request<'_>) -> MessageError {
    MessageError::UnknownKind { tag: root.body_type().0 }
}

fn body(root: &fb::Request<'_>, limits: &FrameLimits) -> Result<Request, MessageError> {
    let missing = || unknown(root);
    Ok(match root.body_type() {
        fb::RequestBody::Handshake => {
            let h = root.body_as_handshake().ok_or_else(missing)?;
            Request::Handshake(Handshake {
                protocol_version: h.protocol_version(),
                client_name: h.client_name().unwrap_or_default().to_owned(),
            })
        }
        fb::RequestBody::GetTopology => Request::Topology,
        fb::RequestBody::CreateTable => {
            let c = root.body_as_create_table().ok_or_else(missing)?;
            Request::CreateTable(CreateTable { name: c.name().to_owned(), settings: settings_from_fb(c.settings())? })
        }
        fb::RequestBody::AlterTable => {
            Request::AlterTable(alter_table(root.body_as_alter_table().ok_or_else(missing)?)?)
        }
        fb::RequestBody::DropTable => {
            let d = root.body_as_drop_table().ok_or_else(missing)?;
            Request::DropTable(DropTable { name: d.name().to_owned() })
        }
        fb::RequestBody::ListTables => Request::ListTables,
        fb::RequestBody::Put => {
            let p = root.body_as_put().ok_or_else(missing)?;
            Request::Put(Put {
                table: p.table().to_owned(),
                key: Key { partition_key: p.partition_key().bytes().to_vec(), sort_key: bytes(p.sort_key()) },
                value: bytes(p.value()),
                ts: p.ts().map(Ts),
                ttl_ms: p.ttl_ms(),
                durability: durability(p.durability(), "Put.durability")?,
            })
        }
        fb::RequestBody::Delete => {
            let d = root.body_as_delete().ok_or_else(missing)?;
            Request::Delete(Delete {
                table: d.table().to_owned(),
                key: Key { partition_key: d.partition_key().bytes().to_vec(), sort_key: bytes(d.sort_key()) },
                ts: d.ts().map(Ts),
                durability: durability(d.durability(), "Delete.durability")?,
            })
        }
        fb::RequestBody::WriteBatch => {
            Request::WriteBatch(write_batch(root.body_as_write_batch().ok_or_else(missing)?, limits)?)
        }
        fb::RequestBody::Get => {
            let g = root.body_as_get().ok_or_else(missing)?;
            Request::Get(Get {
                table: g.table().to_owned(),
                key: Key { partition_key: g.partition_key().bytes().to_vec(), sort_key: bytes(g.sort_key()) },
                as_of: g.as_of().map(Ts),
            })
        }
        fb::RequestBody::MultiGet => {
            let m = root.body_as_multi_get().ok_or_else(missing)?;
            limits.check_items(m.keys().len(), "MultiGet.keys")?;
            let keys = m
                .keys()
                .iter()
                .map(|k| Key { partition_key: k.partition_key().bytes().to_vec(), sort_key: bytes(k.sort_key()) })
                .collect();
            Request::MultiGet(MultiGet { table: m.table().to_owned(), keys, as_of: m.as_of().map(Ts) })
        }
        fb::RequestBody::Scan => {
            let s = root.body_as_scan().ok_or_else(missing)?;
            Request::Scan(Scan {
                table: s.table().to_owned(),
                partition_key: s.partition_key().bytes().to_vec(),
                from: opt_bytes(s.from()),
                to: opt_bytes(s.to()),
                limit: s.limit(),
                reverse: s.reverse(),
                cursor: opt_bytes(s.cursor()),
                as_of: s.as_of().map(Ts),
            })
        }
        fb::RequestBody::Versions => {
            let v = root.body_as_versions().ok_or_else(missing)?;
            Request::Versions(Versions {
                table: v.table().to_owned(),
                key: Key { partition_key: v.partition_key().bytes().to_vec(), sort_key: bytes(v.sort_key()) },
            })
        }
        fb::RequestBody::Explain => {
            let e = root.body_as_explain().ok_or_else(missing)?;
            Request::Explain(Explain {
                table: e.table().to_owned(),
                key: Key { partition_key: e.partition_key().bytes().to_vec(), sort_key: bytes(e.sort_key()) },
                as_of: e.as_of().map(Ts),
            })
        }
        fb::RequestBody::GetStats => Request::Stats,
        fb::RequestBody::AddSource => {
            Request::AddSource(add_source(root.body_as_add_source().ok_or_else(missing)?, limits)?)
        }
        fb::RequestBody::ListSources => Request::ListSources,
        fb::RequestBody::RemoveSource => {
            let r = root.body_as_remove_source().ok_or_else(missing)?;
            Request::RemoveSource(RemoveSource { name: r.name().to_owned() })
        }
        fb::RequestBody::BulkLink => {
            let b = root.body_as_bulk_link().ok_or_else(missing)?;
            let verify = match b.verify() {
                fb::LinkVerify::Full => LinkVerify::Full,
                fb::LinkVerify::Checksums => LinkVerify::Checksums,
                other => {
                    return Err(MessageError::UnknownEnumValue { field: "BulkLink.verify", value: u16::from(other.0) });
                }
            };
            Request::BulkLink { dir: b.dir().to_owned(), verify }
        }
        fb::RequestBody::BulkStatus => {
            let load_id = root.body_as_bulk_status().ok_or_else(missing)?.load_id();
            Request::BulkStatus { load_id: (load_id != 0).then_some(load_id) }
        }
        fb::RequestBody::BulkRollback => {
            Request::BulkRollback { load_id: root.body_as_bulk_rollback().ok_or_else(missing)?.load_id() }
        }
        fb::RequestBody::Compact => {
            let c = root.body_as_compact().ok_or_else(missing)?;
            Request::Compact(Compact { table: c.table().to_owned(), partition: c.partition(), wait: c.wait() })
        }
        _ => return Err(unknown(root)),
    })
}

fn durability(d: fb::Durability, field: &'static str) -> Result<Option<Durability>, MessageError> {
    match d {
        fb::Durability::Default => Ok(None),
        fb::Durability::Sync => Ok(Some(Durability::Sync)),
        fb::Durability::Async => Ok(Some(Durability::Async)),
        other => Err(MessageError::UnknownEnumValue { field, value: u16::from(other.0) }),
    }
}

/// A setting that can be kept, set or cleared: set and clear together contradict each other.
fn change(value: Option<u64>, clear: bool, field: &'static str) -> Result<Option<Option<u64>>, MessageError> {
    match (value, clear) {
        (Some(_), true) => Err(MessageError::InvalidField { field, reason: "both set and cleared" }),
        (Some(v), false) => Ok(Some(Some(v))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

fn alter_table(a: fb::AlterTable<'_>) -> Result<AlterTable, MessageError> {
    Ok(AlterTable {
        name: a.name().to_owned(),
        max_versions: a.max_versions(),
        version_retention_ms: change(
            a.version_retention_ms(),
            a.clear_version_retention(),
            "AlterTable.version_retention_ms",
        )?,
        default_ttl_ms: change(a.default_ttl_ms(), a.clear_default_ttl(), "AlterTable.default_ttl_ms")?,
        tie_rule: tie_rule_from_fb(a.tie_rule(), "AlterTable.tie_rule")?,
        rollback_window_ms: a.rollback_window_ms(),
    })
}

fn write_batch(b: fb::WriteBatch<'_>, limits: &FrameLimits) -> Result<WriteBatch, MessageError> {
    limits.check_items(b.ops().len(), "WriteBatch.ops")?;
    let ops = b.ops().iter().map(batch_op).collect::<Result<_, _>>()?;
    Ok(WriteBatch {
        table: b.table().to_owned(),
        ops,
        durability: durability(b.durability(), "WriteBatch.durability")?,
    })
}

fn add_source(a: fb::AddSource<'_>, limits: &FrameLimits) -> Result<SourceSpec, MessageError> {
    limits.check_items(a.topics().len(), "AddSource.topics")?;
    Ok(SourceSpec {
        name: a.name().to_owned(),
        table: a.table().to_owned(),
        topics: a.topics().iter().map(str::to_owned).collect(),
        brokers: a.brokers().to_owned(),
        dead_letter_topic: a.dead_letter_topic().map(str::to_owned),
        settings: source_settings_from_fb(a.settings(), limits, "AddSource.settings")?,
    })
}

fn batch_op(op: fb::BatchOp<'_>) -> Result<BatchOp, MessageError> {
    let key = Key { partition_key: op.partition_key().bytes().to_vec(), sort_key: bytes(op.sort_key()) };
    let ts = op.ts().map(Ts);
    match op.kind() {
        fb::BatchOpKind::Put => Ok(BatchOp::Put { key, value: bytes(op.value()), ts, ttl_ms: op.ttl_ms() }),
        fb::BatchOpKind::Delete => {
            if op.value().is_some() || op.ttl_ms().is_some() {
                return Err(MessageError::InvalidField {
                    field: "BatchOp.value",
                    reason: "a delete carries no value or ttl",
                });
            }
            Ok(BatchOp::Delete { key, ts })
        }
        other => Err(MessageError::UnknownEnumValue { field: "BatchOp.kind", value: u16::from(other.0) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::finish;
    use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

    fn frame_of(
        build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> (fb::RequestBody, WIPOffset<UnionWIPOffset>),
    ) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let (body_type, body) = build(&mut fbb);
        let root = fb::Request::create(&mut fbb, &fb::RequestArgs { request_id: 42, body_type, body: Some(body) });
        finish(fbb, root)
    }

    fn problem(frame: &[u8]) -> (Option<u64>, MessageError, crate::ErrorCode) {
        match decode(frame, &FrameLimits::default()) {
            Err(e @ WireError::Message { .. }) => {
                let code = e.error_code();
                match e {
                    WireError::Message { request_id, problem } => (Some(request_id), problem, code),
                    _ => unreachable!("matched above"),
                }
            }
            other => panic!("expected a message error, got {other:?}"),
        }
    }

    #[test]
    fn an_unknown_request_kind_keeps_its_id_and_maps_to_unsupported() {
        let frame =
            frame_of(|fbb| (fb::RequestBody(99), fb::ListTables::create(fbb, &fb::ListTablesArgs {}).as_union_value()));
        assert_eq!(problem(&frame), (Some(42), MessageError::UnknownKind { tag: 99 }, crate::ErrorCode::Unsupported));
    }

    #[test]
    fn rules_the_verifier_cannot_see_are_refused_as_bad_requests() {
        let delete_with_value = frame_of(|fbb| {
            let table = Some(fbb.create_string("t"));
            let partition_key = Some(fbb.create_vector(b"k"));
            let value = Some(fbb.create_vector(b"v"));
            let op = fb::BatchOp::create(
                fbb,
                &fb::BatchOpArgs { kind: fb::BatchOpKind::Delete, partition_key, value, ..Default::default() },
            );
            let ops = Some(fbb.create_vector(&[op]));
            let args = fb::WriteBatchArgs { table, ops, durability: fb::Durability::Default };
            (fb::RequestBody::WriteBatch, fb::WriteBatch::create(fbb, &args).as_union_value())
        });
        let (_, p, code) = problem(&delete_with_value);
        assert!(matches!(p, MessageError::InvalidField { field: "BatchOp.value", .. }));
        assert_eq!(code, crate::ErrorCode::BadRequest);

        let set_and_clear = frame_of(|fbb| {
            let name = Some(fbb.create_string("t"));
            let args =
                fb::AlterTableArgs { name, default_ttl_ms: Some(5), clear_default_ttl: true, ..Default::default() };
            (fb::RequestBody::AlterTable, fb::AlterTable::create(fbb, &args).as_union_value())
        });
        assert!(matches!(
            problem(&set_and_clear).1,
            MessageError::InvalidField { field: "AlterTable.default_ttl_ms", .. }
        ));

        let unknown_durability = frame_of(|fbb| {
            let table = Some(fbb.create_string("t"));
            let partition_key = Some(fbb.create_vector(b"k"));
            let args = fb::DeleteArgs { table, partition_key, durability: fb::Durability(7), ..Default::default() };
            (fb::RequestBody::Delete, fb::Delete::create(fbb, &args).as_union_value())
        });
        assert_eq!(
            problem(&unknown_durability).1,
            MessageError::UnknownEnumValue { field: "Delete.durability", value: 7 }
        );

        let unknown_verify = frame_of(|fbb| {
            let dir = Some(fbb.create_string("/loads/l"));
            let args = fb::BulkLinkArgs { dir, verify: fb::LinkVerify(9) };
            (fb::RequestBody::BulkLink, fb::BulkLink::create(fbb, &args).as_union_value())
        });
        assert_eq!(problem(&unknown_verify).1, MessageError::UnknownEnumValue { field: "BulkLink.verify", value: 9 });
    }

    /// A link from a client built before `BulkLink.verify` verifies fully, as links always did.
    #[test]
    fn a_bulk_link_without_its_verify_field_verifies_fully() {
        let frame = frame_of(|fbb| {
            let dir = fbb.create_string("/loads/l");
            let mut link = fb::BulkLinkBuilder::new(fbb);
            link.add_dir(dir);
            (fb::RequestBody::BulkLink, link.finish().as_union_value())
        });
        let (_, request) = decode(&frame, &FrameLimits::default()).expect("decodes");
        assert_eq!(request, Request::BulkLink { dir: "/loads/l".into(), verify: LinkVerify::Full });
    }
}
