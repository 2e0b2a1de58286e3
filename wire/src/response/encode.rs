//! [`Reply`] → frame.

use super::Reply;
use crate::codec::{builder, nonempty_bytes, source_settings_to_fb, table_info_to_fb, version_to_fb};
use crate::generated as fb;
use crate::types::{
    BulkLoadInfo, BulkLoadState, BulkMode, CandidateStanding, ErrorReply, ExplainVerdict, Explanation, KeyHistory,
    Payload, Row, RuleStep, ScanPage, SourceInfo, Stat, Topology, VersionEntry, VersionLocation,
};
use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

pub(super) fn encode(request_id: u64, reply: &Reply) -> Vec<u8> {
    let mut fbb = builder(payload_bytes(reply));
    encode_in(&mut fbb, request_id, reply);
    fbb.finished_data().to_vec()
}

/// Builds the frame for `reply` in `fbb`, reset first; the frame is `fbb.finished_data()`.
pub(super) fn encode_in(fbb: &mut FlatBufferBuilder<'static>, request_id: u64, reply: &Reply) {
    fbb.reset();
    let (body_type, body) = body(fbb, reply);
    let root = fb::Response::create(fbb, &fb::ResponseArgs { request_id, body_type, body: Some(body) });
    fbb.finish_size_prefixed(root, None);
}

/// Bytes of values and keys, plus per-row overhead, to size the builder once.
fn payload_bytes(reply: &Reply) -> usize {
    match reply {
        Reply::Get(Some(row)) => row.value.len(),
        Reply::MultiGet(rows) => rows.iter().map(|r| r.as_ref().map_or(8, |r| r.value.len() + 64)).sum(),
        Reply::Scan(page) => page.rows.iter().map(|r| r.sort_key.len() + r.value.len() + 64).sum(),
        Reply::Versions(h) => h
            .versions
            .iter()
            .map(|v| match &v.payload {
                Payload::Value { value, .. } => value.len() + 64,
                Payload::Tombstone => 48,
            })
            .sum(),
        Reply::BatchWritten(v) => v.len() * 24,
        Reply::Explain(e) => e
            .candidates
            .iter()
            .map(|c| match &c.entry.payload {
                Payload::Value { value, .. } => value.len() + 80,
                Payload::Tombstone => 64,
            })
            .sum(),
        _ => 0,
    }
}

fn body<'b>(fbb: &mut FlatBufferBuilder<'b>, reply: &Reply) -> (fb::ResponseBody, WIPOffset<UnionWIPOffset>) {
    match reply {
        Reply::Error(e) => (fb::ResponseBody::Error, error(fbb, e).as_union_value()),
        Reply::Handshake(h) => {
            let server_name = Some(fbb.create_string(&h.server_name));
            let server_version = Some(fbb.create_string(&h.server_version));
            let topology = Some(topology(fbb, &h.topology));
            let args =
                fb::HandshakeOkArgs { protocol_version: h.protocol_version, server_name, server_version, topology };
            (fb::ResponseBody::HandshakeOk, fb::HandshakeOk::create(fbb, &args).as_union_value())
        }
        Reply::Topology(t) => {
            let topology = Some(topology(fbb, t));
            (
                fb::ResponseBody::TopologyReply,
                fb::TopologyReply::create(fbb, &fb::TopologyReplyArgs { topology }).as_union_value(),
            )
        }
        Reply::Table(t) => {
            let table = Some(table_info_to_fb(fbb, t));
            (fb::ResponseBody::TableReply, fb::TableReply::create(fbb, &fb::TableReplyArgs { table }).as_union_value())
        }
        Reply::TableDropped => (
            fb::ResponseBody::DropTableReply,
            fb::DropTableReply::create(fbb, &fb::DropTableReplyArgs {}).as_union_value(),
        ),
        Reply::Tables(tables) => {
            let tables: Vec<_> = tables.iter().map(|t| table_info_to_fb(fbb, t)).collect();
            let tables = Some(fbb.create_vector(&tables));
            let list = fb::ListTablesReply::create(fbb, &fb::ListTablesReplyArgs { tables });
            (fb::ResponseBody::ListTablesReply, list.as_union_value())
        }
        Reply::Written(v) => {
            let version = version_to_fb(v);
            let w = fb::WriteReply::create(fbb, &fb::WriteReplyArgs { version: Some(&version) });
            (fb::ResponseBody::WriteReply, w.as_union_value())
        }
        Reply::BatchWritten(versions) => {
            let versions: Vec<fb::VersionId> = versions.iter().map(version_to_fb).collect();
            let versions = Some(fbb.create_vector(&versions));
            let w = fb::WriteBatchReply::create(fbb, &fb::WriteBatchReplyArgs { versions });
            (fb::ResponseBody::WriteBatchReply, w.as_union_value())
        }
        Reply::Get(row) => (fb::ResponseBody::GetReply, get_reply(fbb, row.as_ref()).as_union_value()),
        Reply::MultiGet(rows) => {
            let results: Vec<_> = rows.iter().map(|r| get_reply(fbb, r.as_ref())).collect();
            let results = Some(fbb.create_vector(&results));
            let m = fb::MultiGetReply::create(fbb, &fb::MultiGetReplyArgs { results });
            (fb::ResponseBody::MultiGetReply, m.as_union_value())
        }
        Reply::Scan(page) => (fb::ResponseBody::ScanReply, scan(fbb, page).as_union_value()),
        Reply::Versions(h) => (fb::ResponseBody::VersionsReply, versions(fbb, h).as_union_value()),
        Reply::Stats(stats) => (fb::ResponseBody::StatsReply, stats_reply(fbb, stats).as_union_value()),
        Reply::Source(s) => {
            let source = Some(source_info(fbb, s));
            (
                fb::ResponseBody::SourceReply,
                fb::SourceReply::create(fbb, &fb::SourceReplyArgs { source }).as_union_value(),
            )
        }
        Reply::Sources(sources) => {
            let sources: Vec<_> = sources.iter().map(|s| source_info(fbb, s)).collect();
            let sources = Some(fbb.create_vector(&sources));
            let list = fb::ListSourcesReply::create(fbb, &fb::ListSourcesReplyArgs { sources });
            (fb::ResponseBody::ListSourcesReply, list.as_union_value())
        }
        Reply::SourceRemoved => (
            fb::ResponseBody::RemoveSourceReply,
            fb::RemoveSourceReply::create(fbb, &fb::RemoveSourceReplyArgs {}).as_union_value(),
        ),
        Reply::Compacted(r) => {
            let args = fb::CompactReplyArgs {
                partitions: r.partitions,
                compactions: r.compactions,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            };
            (fb::ResponseBody::CompactReply, fb::CompactReply::create(fbb, &args).as_union_value())
        }
        Reply::Explain(e) => (fb::ResponseBody::ExplainReply, explain(fbb, e).as_union_value()),
        Reply::BulkLoads(loads) => {
            let loads: Vec<_> = loads.iter().map(|l| bulk_load_info(fbb, l)).collect();
            let loads = Some(fbb.create_vector(&loads));
            let reply = fb::BulkLoadsReply::create(fbb, &fb::BulkLoadsReplyArgs { loads });
            (fb::ResponseBody::BulkLoadsReply, reply.as_union_value())
        }
    }
}

fn bulk_load_info<'b>(fbb: &mut FlatBufferBuilder<'b>, l: &BulkLoadInfo) -> WIPOffset<fb::BulkLoadInfo<'b>> {
    let table = Some(fbb.create_string(&l.table));
    let dir = Some(fbb.create_string(&l.dir));
    let note = l.note.as_ref().map(|n| fbb.create_string(n));
    let mode = match l.mode {
        BulkMode::Merge => fb::BulkMode::Merge,
        BulkMode::Replace => fb::BulkMode::Replace,
    };
    let state = match l.state {
        BulkLoadState::Preparing => fb::BulkLoadState::Preparing,
        BulkLoadState::Committed => fb::BulkLoadState::Committed,
        BulkLoadState::Aborted => fb::BulkLoadState::Aborted,
        BulkLoadState::RolledBack => fb::BulkLoadState::RolledBack,
    };
    let args = fb::BulkLoadInfoArgs {
        load_id: l.load_id,
        table,
        mode,
        snapshot_ms: l.snapshot_ms,
        state,
        dir,
        files: l.files,
        bytes: l.bytes,
        entries: l.entries,
        changed_at_ms: l.changed_at_ms,
        note,
        validate_ms: l.validate_ms,
        prepare_ms: l.prepare_ms,
        commit_ms: l.commit_ms,
    };
    fb::BulkLoadInfo::create(fbb, &args)
}

fn source_info<'b>(fbb: &mut FlatBufferBuilder<'b>, s: &SourceInfo) -> WIPOffset<fb::SourceInfo<'b>> {
    let name = Some(fbb.create_string(&s.name));
    let table = Some(fbb.create_string(&s.table));
    let topics: Vec<_> = s
        .topics
        .iter()
        .map(|t| {
            let topic = Some(fbb.create_string(&t.topic));
            fb::SourceTopic::create(fbb, &fb::SourceTopicArgs { topic, stream_id: t.stream_id })
        })
        .collect();
    let topics = Some(fbb.create_vector(&topics));
    let brokers = Some(fbb.create_string(&s.brokers));
    let dead_letter_topic = s.dead_letter_topic.as_ref().map(|t| fbb.create_string(t));
    let settings = source_settings_to_fb(fbb, &s.settings);
    let args = fb::SourceInfoArgs { name, table, topics, brokers, dead_letter_topic, settings, retired: s.retired };
    fb::SourceInfo::create(fbb, &args)
}

fn error<'b>(fbb: &mut FlatBufferBuilder<'b>, e: &ErrorReply) -> WIPOffset<fb::Error<'b>> {
    let message = Some(fbb.create_string(&e.message));
    fb::Error::create(fbb, &fb::ErrorArgs { code: fb::ErrorCode(e.code.code()), message })
}

fn topology<'b>(fbb: &mut FlatBufferBuilder<'b>, t: &Topology) -> WIPOffset<fb::Topology<'b>> {
    let owner_ports = Some(fbb.create_vector(&t.owner_ports));
    let args = fb::TopologyArgs { partition_count: t.partition_count, shard_count: t.shard_count, owner_ports };
    fb::Topology::create(fbb, &args)
}

fn get_reply<'b>(fbb: &mut FlatBufferBuilder<'b>, row: Option<&Row>) -> WIPOffset<fb::GetReply<'b>> {
    let row = row.map(|r| {
        let value = nonempty_bytes(fbb, &r.value);
        let version = version_to_fb(&r.version);
        fb::Row::create(fbb, &fb::RowArgs { value, version: Some(&version), expires_at_ms: r.expires_at_ms })
    });
    fb::GetReply::create(fbb, &fb::GetReplyArgs { row })
}

fn scan<'b>(fbb: &mut FlatBufferBuilder<'b>, page: &ScanPage) -> WIPOffset<fb::ScanReply<'b>> {
    let rows: Vec<_> = page
        .rows
        .iter()
        .map(|r| {
            let sort_key = nonempty_bytes(fbb, &r.sort_key);
            let value = nonempty_bytes(fbb, &r.value);
            let version = version_to_fb(&r.version);
            let args = fb::ScanRowArgs { sort_key, value, version: Some(&version), expires_at_ms: r.expires_at_ms };
            fb::ScanRow::create(fbb, &args)
        })
        .collect();
    let rows = Some(fbb.create_vector(&rows));
    let cursor = page.cursor.as_ref().map(|c| fbb.create_vector(c));
    fb::ScanReply::create(fbb, &fb::ScanReplyArgs { rows, cursor })
}

fn version_entry<'b>(fbb: &mut FlatBufferBuilder<'b>, v: &VersionEntry) -> WIPOffset<fb::VersionEntry<'b>> {
    let version = version_to_fb(&v.version);
    let args = match &v.payload {
        Payload::Value { value, expires_at_ms } => fb::VersionEntryArgs {
            version: Some(&version),
            tombstone: false,
            value: nonempty_bytes(fbb, value),
            expires_at_ms: *expires_at_ms,
        },
        Payload::Tombstone => {
            fb::VersionEntryArgs { version: Some(&version), tombstone: true, value: None, expires_at_ms: None }
        }
    };
    fb::VersionEntry::create(fbb, &args)
}

fn versions<'b>(fbb: &mut FlatBufferBuilder<'b>, h: &KeyHistory) -> WIPOffset<fb::VersionsReply<'b>> {
    let entries: Vec<_> = h.versions.iter().map(|v| version_entry(fbb, v)).collect();
    let versions = Some(fbb.create_vector(&entries));
    let watermark = h.watermark.as_ref().map(version_to_fb);
    fb::VersionsReply::create(fbb, &fb::VersionsReplyArgs { versions, watermark: watermark.as_ref() })
}

fn explain<'b>(fbb: &mut FlatBufferBuilder<'b>, e: &Explanation) -> WIPOffset<fb::ExplainReply<'b>> {
    let candidates: Vec<_> = e
        .candidates
        .iter()
        .map(|c| {
            let entry = Some(version_entry(fbb, &c.entry));
            let (location, location_id) = match c.location {
                VersionLocation::ActiveMemtable => (fb::VersionLocation::ActiveMemtable, 0),
                VersionLocation::FrozenMemtable(index) => (fb::VersionLocation::FrozenMemtable, u64::from(index)),
                VersionLocation::Segment(id) => (fb::VersionLocation::Segment, id),
            };
            let standing = match c.standing {
                CandidateStanding::Winner => fb::CandidateStanding::Winner,
                CandidateStanding::Superseded => fb::CandidateStanding::Superseded,
                CandidateStanding::UnderWatermark => fb::CandidateStanding::UnderWatermark,
                CandidateStanding::Withdrawn => fb::CandidateStanding::Withdrawn,
                CandidateStanding::AfterReadTime => fb::CandidateStanding::AfterReadTime,
            };
            fb::ExplainCandidate::create(fbb, &fb::ExplainCandidateArgs { entry, location, location_id, standing })
        })
        .collect();
    let candidates = Some(fbb.create_vector(&candidates));
    let verdict = match e.verdict {
        ExplainVerdict::Visible => fb::ExplainVerdict::Visible,
        ExplainVerdict::NoVersions => fb::ExplainVerdict::NoVersions,
        ExplainVerdict::Withdrawn => fb::ExplainVerdict::Withdrawn,
        ExplainVerdict::BeforeFirstVersion => fb::ExplainVerdict::BeforeFirstVersion,
        ExplainVerdict::UnderWatermark => fb::ExplainVerdict::UnderWatermark,
        ExplainVerdict::Tombstone => fb::ExplainVerdict::Tombstone,
        ExplainVerdict::Expired => fb::ExplainVerdict::Expired,
    };
    let deciding_step = match e.deciding_step {
        None => fb::RuleStep::Uncontested,
        Some(RuleStep::Ts) => fb::RuleStep::Ts,
        Some(RuleStep::TieRule) => fb::RuleStep::TieRule,
        Some(RuleStep::Source) => fb::RuleStep::Source,
        Some(RuleStep::Seq) => fb::RuleStep::Seq,
        Some(RuleStep::SameIdentity) => fb::RuleStep::SameIdentity,
    };
    let watermark = e.watermark.as_ref().map(version_to_fb);
    let args = fb::ExplainReplyArgs {
        verdict,
        candidates,
        deciding_step,
        watermark: watermark.as_ref(),
        judged_at_ms: e.judged_at_ms,
    };
    fb::ExplainReply::create(fbb, &args)
}

fn stats_reply<'b>(fbb: &mut FlatBufferBuilder<'b>, stats: &[Stat]) -> WIPOffset<fb::StatsReply<'b>> {
    let stats: Vec<_> = stats
        .iter()
        .map(|s| {
            let name = Some(fbb.create_string(&s.name));
            fb::Stat::create(fbb, &fb::StatArgs { name, shard: s.shard, partition: s.partition, value: s.value })
        })
        .collect();
    let stats = Some(fbb.create_vector(&stats));
    fb::StatsReply::create(fbb, &fb::StatsReplyArgs { stats })
}
