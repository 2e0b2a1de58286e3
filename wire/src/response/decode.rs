//! Frame → [`Reply`]. Verifies first (`codec::verify`), then converts, rejecting what the
//! verifier cannot see: unknown origin kinds, a topology without one port per partition, a
//! tombstone carrying a value. An unknown error code is kept as [`ErrorCode::Other`].

use super::{Reply, ReplyInPlace};
use crate::codec::{bytes, opt_bytes, source_settings_from_fb, table_info_from_fb, verify, version_from_fb};
use crate::error::{MessageError, WireError};
use crate::frame::FrameLimits;
use crate::generated as fb;
use crate::types::{
    BulkLoadInfo, BulkLoadState, BulkMode, CandidateStanding, CompactionReport, ErrorCode, ErrorReply,
    ExplainCandidate, ExplainVerdict, Explanation, HandshakeOk, KeyHistory, Payload, Row, RowRef, RuleStep, ScanPage,
    ScanRow, SourceInfo, SourceTopic, Stat, Topology, VersionEntry, VersionLocation,
};

pub(super) fn decode(frame: &[u8], limits: &FrameLimits) -> Result<(u64, Reply), WireError> {
    let root = verify::<fb::Response>(frame, limits)?;
    let request_id = root.request_id();
    let reply = body(&root, limits).map_err(|problem| WireError::Message { request_id, problem })?;
    Ok((request_id, reply))
}

pub(super) fn decode_in_place<'a>(frame: &'a [u8], limits: &FrameLimits) -> Result<(u64, ReplyInPlace<'a>), WireError> {
    let root = verify::<fb::Response>(frame, limits)?;
    let request_id = root.request_id();
    let in_place = if let Some(g) = root.body_as_get_reply() {
        get_reply_in_place(g).map(ReplyInPlace::Get)
    } else {
        body(&root, limits).map(ReplyInPlace::Other)
    };
    let reply = in_place.map_err(|problem| WireError::Message { request_id, problem })?;
    Ok((request_id, reply))
}

fn body(root: &fb::Response<'_>, limits: &FrameLimits) -> Result<Reply, MessageError> {
    let missing = || MessageError::UnknownKind { tag: root.body_type().0 };
    Ok(match root.body_type() {
        fb::ResponseBody::Error => {
            let e = root.body_as_error().ok_or_else(missing)?;
            Reply::Error(ErrorReply {
                code: ErrorCode::from_code(e.code().0),
                message: e.message().unwrap_or_default().to_owned(),
            })
        }
        fb::ResponseBody::HandshakeOk => {
            let h = root.body_as_handshake_ok().ok_or_else(missing)?;
            Reply::Handshake(HandshakeOk {
                protocol_version: h.protocol_version(),
                server_name: h.server_name().unwrap_or_default().to_owned(),
                server_version: h.server_version().unwrap_or_default().to_owned(),
                topology: topology(h.topology(), limits)?,
            })
        }
        fb::ResponseBody::TopologyReply => {
            Reply::Topology(topology(root.body_as_topology_reply().ok_or_else(missing)?.topology(), limits)?)
        }
        fb::ResponseBody::TableReply => {
            Reply::Table(table_info_from_fb(root.body_as_table_reply().ok_or_else(missing)?.table())?)
        }
        fb::ResponseBody::DropTableReply => Reply::TableDropped,
        fb::ResponseBody::ListTablesReply => {
            let l = root.body_as_list_tables_reply().ok_or_else(missing)?;
            limits.check_items(l.tables().len(), "ListTablesReply.tables")?;
            Reply::Tables(l.tables().iter().map(table_info_from_fb).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::WriteReply => {
            let w = root.body_as_write_reply().ok_or_else(missing)?;
            Reply::Written(version_from_fb(w.version(), "WriteReply.version")?)
        }
        fb::ResponseBody::WriteBatchReply => {
            let w = root.body_as_write_batch_reply().ok_or_else(missing)?;
            limits.check_items(w.versions().len(), "WriteBatchReply.versions")?;
            let versions = w.versions().iter().map(|v| version_from_fb(v, "WriteBatchReply.versions"));
            Reply::BatchWritten(versions.collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::GetReply => Reply::Get(get_reply(root.body_as_get_reply().ok_or_else(missing)?)?),
        fb::ResponseBody::MultiGetReply => {
            let m = root.body_as_multi_get_reply().ok_or_else(missing)?;
            limits.check_items(m.results().len(), "MultiGetReply.results")?;
            Reply::MultiGet(m.results().iter().map(get_reply).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::ScanReply => Reply::Scan(scan(root.body_as_scan_reply().ok_or_else(missing)?, limits)?),
        fb::ResponseBody::VersionsReply => {
            Reply::Versions(versions(root.body_as_versions_reply().ok_or_else(missing)?, limits)?)
        }
        fb::ResponseBody::StatsReply => {
            let s = root.body_as_stats_reply().ok_or_else(missing)?;
            limits.check_items(s.stats().len(), "StatsReply.stats")?;
            let stats = s.stats().iter().map(|s| Stat {
                name: s.name().to_owned(),
                shard: s.shard(),
                partition: s.partition(),
                value: s.value(),
            });
            Reply::Stats(stats.collect())
        }
        fb::ResponseBody::SourceReply => {
            Reply::Source(source_info(root.body_as_source_reply().ok_or_else(missing)?.source(), limits)?)
        }
        fb::ResponseBody::ListSourcesReply => {
            let l = root.body_as_list_sources_reply().ok_or_else(missing)?;
            limits.check_items(l.sources().len(), "ListSourcesReply.sources")?;
            Reply::Sources(l.sources().iter().map(|s| source_info(s, limits)).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::RemoveSourceReply => Reply::SourceRemoved,
        fb::ResponseBody::BulkLoadsReply => {
            let l = root.body_as_bulk_loads_reply().ok_or_else(missing)?;
            limits.check_items(l.loads().len(), "BulkLoadsReply.loads")?;
            Reply::BulkLoads(l.loads().iter().map(bulk_load_info).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::ExplainReply => {
            Reply::Explain(explain(root.body_as_explain_reply().ok_or_else(missing)?, limits)?)
        }
        fb::ResponseBody::CompactReply => {
            let r = root.body_as_compact_reply().ok_or_else(missing)?;
            Reply::Compacted(CompactionReport {
                partitions: r.partitions(),
                compactions: r.compactions(),
                bytes_in: r.bytes_in(),
                bytes_out: r.bytes_out(),
            })
        }
        _ => return Err(missing()),
    })
}

fn bulk_load_info(l: fb::BulkLoadInfo<'_>) -> Result<BulkLoadInfo, MessageError> {
    let mode = match l.mode() {
        fb::BulkMode::Merge => BulkMode::Merge,
        fb::BulkMode::Replace => BulkMode::Replace,
        other => return Err(MessageError::UnknownEnumValue { field: "BulkLoadInfo.mode", value: u16::from(other.0) }),
    };
    let state = match l.state() {
        fb::BulkLoadState::Preparing => BulkLoadState::Preparing,
        fb::BulkLoadState::Committed => BulkLoadState::Committed,
        fb::BulkLoadState::Aborted => BulkLoadState::Aborted,
        fb::BulkLoadState::RolledBack => BulkLoadState::RolledBack,
        other => {
            return Err(MessageError::UnknownEnumValue { field: "BulkLoadInfo.state", value: u16::from(other.0) });
        }
    };
    Ok(BulkLoadInfo {
        load_id: l.load_id(),
        table: l.table().to_owned(),
        mode,
        snapshot_ms: l.snapshot_ms(),
        state,
        dir: l.dir().to_owned(),
        files: l.files(),
        bytes: l.bytes(),
        entries: l.entries(),
        changed_at_ms: l.changed_at_ms(),
        note: l.note().map(str::to_owned),
        validate_ms: l.validate_ms(),
        prepare_ms: l.prepare_ms(),
        commit_ms: l.commit_ms(),
    })
}

fn topology(t: fb::Topology<'_>, limits: &FrameLimits) -> Result<Topology, MessageError> {
    limits.check_items(t.owner_ports().len(), "Topology.owner_ports")?;
    let owner_ports: Vec<u16> = t.owner_ports().iter().collect();
    if t.partition_count() == 0 {
        return Err(MessageError::InvalidField { field: "Topology.partition_count", reason: "at least one partition" });
    }
    if usize::try_from(t.partition_count()).ok() != Some(owner_ports.len()) {
        return Err(MessageError::InvalidField { field: "Topology.owner_ports", reason: "one port per partition" });
    }
    Ok(Topology { partition_count: t.partition_count(), shard_count: t.shard_count(), owner_ports })
}

fn source_info(s: fb::SourceInfo<'_>, limits: &FrameLimits) -> Result<SourceInfo, MessageError> {
    limits.check_items(s.topics().len(), "SourceInfo.topics")?;
    let topics = s.topics().iter().map(|t| SourceTopic { topic: t.topic().to_owned(), stream_id: t.stream_id() });
    Ok(SourceInfo {
        name: s.name().to_owned(),
        table: s.table().to_owned(),
        topics: topics.collect(),
        brokers: s.brokers().to_owned(),
        dead_letter_topic: s.dead_letter_topic().map(str::to_owned),
        settings: source_settings_from_fb(s.settings(), limits, "SourceInfo.settings")?,
        retired: s.retired(),
    })
}

fn get_reply(g: fb::GetReply<'_>) -> Result<Option<Row>, MessageError> {
    Ok(get_reply_in_place(g)?.map(|row| row.to_owned()))
}

fn get_reply_in_place(g: fb::GetReply<'_>) -> Result<Option<RowRef<'_>>, MessageError> {
    g.row()
        .map(|r| {
            Ok(RowRef {
                value: r.value().map_or(&[], |v| v.bytes()),
                version: version_from_fb(r.version(), "Row.version")?,
                expires_at_ms: r.expires_at_ms(),
            })
        })
        .transpose()
}

fn scan(s: fb::ScanReply<'_>, limits: &FrameLimits) -> Result<ScanPage, MessageError> {
    limits.check_items(s.rows().len(), "ScanReply.rows")?;
    let rows = s
        .rows()
        .iter()
        .map(|r| {
            Ok(ScanRow {
                sort_key: bytes(r.sort_key()),
                value: bytes(r.value()),
                version: version_from_fb(r.version(), "ScanRow.version")?,
                expires_at_ms: r.expires_at_ms(),
            })
        })
        .collect::<Result<_, MessageError>>()?;
    Ok(ScanPage { rows, cursor: opt_bytes(s.cursor()) })
}

fn version_entry(v: fb::VersionEntry<'_>) -> Result<VersionEntry, MessageError> {
    let payload = if v.tombstone() {
        if v.value().is_some() || v.expires_at_ms().is_some() {
            return Err(MessageError::InvalidField {
                field: "VersionEntry.value",
                reason: "a tombstone carries no value or expiry",
            });
        }
        Payload::Tombstone
    } else {
        Payload::Value { value: bytes(v.value()), expires_at_ms: v.expires_at_ms() }
    };
    Ok(VersionEntry { version: version_from_fb(v.version(), "VersionEntry.version")?, payload })
}

fn versions(h: fb::VersionsReply<'_>, limits: &FrameLimits) -> Result<KeyHistory, MessageError> {
    limits.check_items(h.versions().len(), "VersionsReply.versions")?;
    let versions = h.versions().iter().map(version_entry).collect::<Result<_, MessageError>>()?;
    let watermark = h.watermark().map(|w| version_from_fb(w, "VersionsReply.watermark")).transpose()?;
    Ok(KeyHistory { versions, watermark })
}

fn explain(e: fb::ExplainReply<'_>, limits: &FrameLimits) -> Result<Explanation, MessageError> {
    limits.check_items(e.candidates().len(), "ExplainReply.candidates")?;
    let candidates = e.candidates().iter().map(explain_candidate).collect::<Result<_, MessageError>>()?;
    let unknown = |field, value: u8| MessageError::UnknownEnumValue { field, value: u16::from(value) };
    let verdict = match e.verdict() {
        fb::ExplainVerdict::Visible => ExplainVerdict::Visible,
        fb::ExplainVerdict::NoVersions => ExplainVerdict::NoVersions,
        fb::ExplainVerdict::Withdrawn => ExplainVerdict::Withdrawn,
        fb::ExplainVerdict::BeforeFirstVersion => ExplainVerdict::BeforeFirstVersion,
        fb::ExplainVerdict::UnderWatermark => ExplainVerdict::UnderWatermark,
        fb::ExplainVerdict::Tombstone => ExplainVerdict::Tombstone,
        fb::ExplainVerdict::Expired => ExplainVerdict::Expired,
        other => return Err(unknown("ExplainReply.verdict", other.0)),
    };
    let deciding_step = match e.deciding_step() {
        fb::RuleStep::Uncontested => None,
        fb::RuleStep::Ts => Some(RuleStep::Ts),
        fb::RuleStep::TieRule => Some(RuleStep::TieRule),
        fb::RuleStep::Source => Some(RuleStep::Source),
        fb::RuleStep::Seq => Some(RuleStep::Seq),
        fb::RuleStep::SameIdentity => Some(RuleStep::SameIdentity),
        other => return Err(unknown("ExplainReply.deciding_step", other.0)),
    };
    let watermark = e.watermark().map(|w| version_from_fb(w, "ExplainReply.watermark")).transpose()?;
    Ok(Explanation { verdict, candidates, deciding_step, watermark, judged_at_ms: e.judged_at_ms() })
}

fn explain_candidate(c: fb::ExplainCandidate<'_>) -> Result<ExplainCandidate, MessageError> {
    let unknown = |field, value: u8| MessageError::UnknownEnumValue { field, value: u16::from(value) };
    let location = match c.location() {
        fb::VersionLocation::ActiveMemtable => VersionLocation::ActiveMemtable,
        fb::VersionLocation::FrozenMemtable => {
            let index = u32::try_from(c.location_id()).map_err(|_| MessageError::InvalidField {
                field: "ExplainCandidate.location_id",
                reason: "a frozen memtable's position fits in 32 bits",
            })?;
            VersionLocation::FrozenMemtable(index)
        }
        fb::VersionLocation::Segment => VersionLocation::Segment(c.location_id()),
        other => return Err(unknown("ExplainCandidate.location", other.0)),
    };
    let standing = match c.standing() {
        fb::CandidateStanding::Winner => CandidateStanding::Winner,
        fb::CandidateStanding::Superseded => CandidateStanding::Superseded,
        fb::CandidateStanding::UnderWatermark => CandidateStanding::UnderWatermark,
        fb::CandidateStanding::Withdrawn => CandidateStanding::Withdrawn,
        fb::CandidateStanding::AfterReadTime => CandidateStanding::AfterReadTime,
        other => return Err(unknown("ExplainCandidate.standing", other.0)),
    };
    Ok(ExplainCandidate { entry: version_entry(c.entry())?, location, standing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::finish;
    use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

    fn problem_of(
        build: impl FnOnce(&mut FlatBufferBuilder<'static>) -> (fb::ResponseBody, WIPOffset<UnionWIPOffset>),
    ) -> MessageError {
        let mut fbb = FlatBufferBuilder::new();
        let (body_type, body) = build(&mut fbb);
        let root = fb::Response::create(&mut fbb, &fb::ResponseArgs { request_id: 5, body_type, body: Some(body) });
        match decode(&finish(fbb, root), &FrameLimits::default()) {
            Err(WireError::Message { request_id: 5, problem }) => problem,
            other => panic!("expected a message error, got {other:?}"),
        }
    }

    fn topology_reply(partition_count: u32, ports: &[u16]) -> MessageError {
        problem_of(|fbb| {
            let owner_ports = Some(fbb.create_vector(ports));
            let t = fb::Topology::create(fbb, &fb::TopologyArgs { partition_count, shard_count: 1, owner_ports });
            let r = fb::TopologyReply::create(fbb, &fb::TopologyReplyArgs { topology: Some(t) });
            (fb::ResponseBody::TopologyReply, r.as_union_value())
        })
    }

    #[test]
    fn a_topology_needs_one_port_per_partition_and_at_least_one_partition() {
        assert!(matches!(
            topology_reply(4, &[1, 2, 3]),
            MessageError::InvalidField { field: "Topology.owner_ports", .. }
        ));
        assert!(matches!(topology_reply(0, &[]), MessageError::InvalidField { field: "Topology.partition_count", .. }));
    }

    #[test]
    fn a_tombstone_carries_no_value_and_kinds_must_be_known() {
        let tombstone_with_value = problem_of(|fbb| {
            let value = Some(fbb.create_vector(b"v"));
            let version = fb::VersionId::new(1, &fb::Origin::new(fb::OriginKind::Bulk, 0, 0));
            let args = fb::VersionEntryArgs { version: Some(&version), tombstone: true, value, expires_at_ms: None };
            let entry = fb::VersionEntry::create(fbb, &args);
            let versions = Some(fbb.create_vector(&[entry]));
            let reply = fb::VersionsReply::create(fbb, &fb::VersionsReplyArgs { versions, watermark: None });
            (fb::ResponseBody::VersionsReply, reply.as_union_value())
        });
        assert!(matches!(tombstone_with_value, MessageError::InvalidField { field: "VersionEntry.value", .. }));

        let unknown_origin = problem_of(|fbb| {
            let version = fb::VersionId::new(1, &fb::Origin::new(fb::OriginKind(3), 0, 0));
            let reply = fb::WriteReply::create(fbb, &fb::WriteReplyArgs { version: Some(&version) });
            (fb::ResponseBody::WriteReply, reply.as_union_value())
        });
        assert_eq!(unknown_origin, MessageError::UnknownEnumValue { field: "WriteReply.version", value: 3 });
    }
}
