//! What a v1 client receives: a verified `Response` frame turned into a [`Reply`] of plain
//! values. Every vector's length is checked before it is copied; enum values this schema does
//! not know are refused, except error codes, which read as `Internal`.

use crate::error::{Error, ErrorCode, ServerError};
use crate::frame::{check_items, verify_response};
use crate::generated as fb;
use crate::types::{
    Greeting, History, Origin, OriginKind, Row, ScanPage, ScanRow, Stat, TableInfo, TableSettings, TieRule, Topology,
    Version, VersionEntry,
};
use flatbuffers::Vector;

/// A server's answer to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The request failed.
    Error(ServerError),
    /// Answers the handshake.
    Handshake(Greeting),
    /// Answers `GetTopology`.
    Topology(Topology),
    /// Answers `CreateTable` and `AlterTable`.
    Table(TableInfo),
    /// Answers `DropTable`.
    TableDropped,
    /// Answers `ListTables`.
    Tables(Vec<TableInfo>),
    /// Answers `Put` and `Delete`.
    Written(Version),
    /// Answers `WriteBatch`, one version per op.
    BatchWritten(Vec<Version>),
    /// Answers `Get`; `None` is not found.
    Get(Option<Row>),
    /// Answers `MultiGet`, one result per key.
    MultiGet(Vec<Option<Row>>),
    /// Answers `Scan`.
    Scan(ScanPage),
    /// Answers `Versions`.
    Versions(History),
    /// Answers `GetStats`.
    Stats(Vec<Stat>),
}

impl Reply {
    /// The reply's kind, for errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Error(_) => "Error",
            Reply::Handshake(_) => "HandshakeOk",
            Reply::Topology(_) => "TopologyReply",
            Reply::Table(_) => "TableReply",
            Reply::TableDropped => "DropTableReply",
            Reply::Tables(_) => "ListTablesReply",
            Reply::Written(_) => "WriteReply",
            Reply::BatchWritten(_) => "WriteBatchReply",
            Reply::Get(_) => "GetReply",
            Reply::MultiGet(_) => "MultiGetReply",
            Reply::Scan(_) => "ScanReply",
            Reply::Versions(_) => "VersionsReply",
            Reply::Stats(_) => "StatsReply",
        }
    }
}

/// The request id and reply in `frame` (one whole frame, prefix included).
pub(crate) fn decode(frame: &[u8]) -> Result<(u64, Reply), Error> {
    let response = verify_response(frame)?;
    Ok((response.request_id(), body(&response)?))
}

fn body(r: &fb::Response<'_>) -> Result<Reply, Error> {
    // The verifier has checked the body against its tag, so a tag's accessor fails only for
    // NONE or a reply kind appended after v1, which this client cannot read.
    let unknown = || Error::Malformed { field: "Response.body", reason: "a reply kind v1 does not know" };
    Ok(match r.body_type() {
        fb::ResponseBody::Error => Reply::Error(server_error(r.body_as_error().ok_or_else(unknown)?)),
        fb::ResponseBody::HandshakeOk => {
            let h = r.body_as_handshake_ok().ok_or_else(unknown)?;
            Reply::Handshake(Greeting {
                protocol_version: h.protocol_version(),
                server_name: h.server_name().unwrap_or_default().to_owned(),
                server_version: h.server_version().unwrap_or_default().to_owned(),
                topology: topology(h.topology())?,
            })
        }
        fb::ResponseBody::TopologyReply => {
            Reply::Topology(topology(r.body_as_topology_reply().ok_or_else(unknown)?.topology())?)
        }
        fb::ResponseBody::TableReply => Reply::Table(table_info(r.body_as_table_reply().ok_or_else(unknown)?.table())?),
        fb::ResponseBody::DropTableReply => Reply::TableDropped,
        fb::ResponseBody::ListTablesReply => {
            let tables = r.body_as_list_tables_reply().ok_or_else(unknown)?.tables();
            check_items(tables.len(), "ListTablesReply.tables")?;
            Reply::Tables(tables.iter().map(table_info).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::WriteReply => {
            Reply::Written(version(r.body_as_write_reply().ok_or_else(unknown)?.version())?)
        }
        fb::ResponseBody::WriteBatchReply => {
            let versions = r.body_as_write_batch_reply().ok_or_else(unknown)?.versions();
            check_items(versions.len(), "WriteBatchReply.versions")?;
            Reply::BatchWritten(versions.iter().map(version).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::GetReply => {
            Reply::Get(r.body_as_get_reply().ok_or_else(unknown)?.row().map(row).transpose()?)
        }
        fb::ResponseBody::MultiGetReply => {
            let results = r.body_as_multi_get_reply().ok_or_else(unknown)?.results();
            check_items(results.len(), "MultiGetReply.results")?;
            Reply::MultiGet(results.iter().map(|g| g.row().map(row).transpose()).collect::<Result<_, _>>()?)
        }
        fb::ResponseBody::ScanReply => Reply::Scan(scan_page(r.body_as_scan_reply().ok_or_else(unknown)?)?),
        fb::ResponseBody::VersionsReply => Reply::Versions(history(r.body_as_versions_reply().ok_or_else(unknown)?)?),
        fb::ResponseBody::StatsReply => {
            let stats = r.body_as_stats_reply().ok_or_else(unknown)?.stats();
            check_items(stats.len(), "StatsReply.stats")?;
            Reply::Stats(stats.iter().map(stat).collect())
        }
        _ => return Err(unknown()),
    })
}

fn server_error(e: fb::Error<'_>) -> ServerError {
    ServerError { code: ErrorCode::from_wire(e.code().0), message: e.message().unwrap_or_default().to_owned() }
}

fn bytes(v: Option<Vector<'_, u8>>) -> Vec<u8> {
    v.map(|v| v.bytes().to_vec()).unwrap_or_default()
}

fn origin_kind(kind: fb::OriginKind, field: &'static str) -> Result<OriginKind, Error> {
    match kind {
        fb::OriginKind::Bulk => Ok(OriginKind::Bulk),
        fb::OriginKind::Stream => Ok(OriginKind::Stream),
        fb::OriginKind::Direct => Ok(OriginKind::Direct),
        _ => Err(Error::Malformed { field, reason: "an origin kind v1 does not know" }),
    }
}

fn version(v: &fb::VersionId) -> Result<Version, Error> {
    let o = v.origin();
    let kind = origin_kind(o.kind(), "VersionId.origin.kind")?;
    Ok(Version { ts: v.ts(), origin: Origin { kind, source_id: o.source_id(), seq: o.seq() } })
}

fn topology(t: fb::Topology<'_>) -> Result<Topology, Error> {
    check_items(t.owner_ports().len(), "Topology.owner_ports")?;
    Ok(Topology {
        partition_count: t.partition_count(),
        shard_count: t.shard_count(),
        owner_ports: t.owner_ports().iter().collect(),
    })
}

fn table_info(t: fb::TableInfo<'_>) -> Result<TableInfo, Error> {
    let s = t.settings();
    let tie_rule = match s.tie_rule() {
        None => None,
        Some(kinds) if kinds.len() == 3 => {
            let mut rule: TieRule = [OriginKind::Direct; 3];
            for (slot, kind) in rule.iter_mut().zip(kinds.iter()) {
                *slot = origin_kind(kind, "TableSettings.tie_rule")?;
            }
            Some(rule)
        }
        Some(_) => return Err(Error::Malformed { field: "TableSettings.tie_rule", reason: "not three kinds" }),
    };
    let settings = TableSettings {
        max_versions: s.max_versions(),
        version_retention_ms: s.version_retention_ms(),
        default_ttl_ms: s.default_ttl_ms(),
        tie_rule,
    };
    Ok(TableInfo { name: t.name().to_owned(), settings })
}

fn row(r: fb::Row<'_>) -> Result<Row, Error> {
    Ok(Row { value: bytes(r.value()), version: version(r.version())?, expires_at_ms: r.expires_at_ms() })
}

fn scan_page(s: fb::ScanReply<'_>) -> Result<ScanPage, Error> {
    check_items(s.rows().len(), "ScanReply.rows")?;
    let rows = s
        .rows()
        .iter()
        .map(|r| {
            Ok(ScanRow {
                sort_key: bytes(r.sort_key()),
                value: bytes(r.value()),
                version: version(r.version())?,
                expires_at_ms: r.expires_at_ms(),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(ScanPage { rows, cursor: s.cursor().map(|c| c.bytes().to_vec()) })
}

fn history(h: fb::VersionsReply<'_>) -> Result<History, Error> {
    check_items(h.versions().len(), "VersionsReply.versions")?;
    let versions = h
        .versions()
        .iter()
        .map(|e| {
            Ok(VersionEntry {
                version: version(e.version())?,
                tombstone: e.tombstone(),
                value: bytes(e.value()),
                expires_at_ms: e.expires_at_ms(),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(History { versions, watermark: h.watermark().map(version).transpose()? })
}

fn stat(s: fb::Stat<'_>) -> Stat {
    Stat { name: s.name().to_owned(), shard: s.shard(), partition: s.partition(), value: s.value() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written error codes agree with the frozen schema's numbering.
    #[test]
    fn error_codes_match_the_v1_schema() {
        assert_eq!(fb::ErrorCode::ENUM_VALUES.len(), ErrorCode::ALL.len());
        for code in fb::ErrorCode::ENUM_VALUES {
            let ours = ErrorCode::from_wire(code.0);
            assert_eq!(Some(format!("{ours:?}").as_str()), code.variant_name());
        }
        assert_eq!(ErrorCode::from_wire(1000), ErrorCode::Internal, "an unknown code reads as Internal");
    }

    /// A reply kind v1 does not know fails that request only, with a typed error.
    #[test]
    fn an_unknown_reply_kind_is_refused_not_misread() {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let body = fb::DropTableReply::create(&mut fbb, &fb::DropTableReplyArgs {}).as_union_value();
        let args = fb::ResponseArgs { request_id: 7, body_type: fb::ResponseBody(200), body: Some(body) };
        let root = fb::Response::create(&mut fbb, &args);
        fbb.finish_size_prefixed(root, None);
        let err = decode(fbb.finished_data()).expect_err("tag 200 is not a v1 reply");
        assert!(matches!(err, Error::Malformed { field: "Response.body", .. }), "{err:?}");
    }

    /// What the current schema appended after v1, as this client meets it: the source error
    /// codes (`SourceExists` 19, `UnknownSource` 20) read as `Internal` with their message, and
    /// the source reply kinds (`SourceReply` 14, `ListSourcesReply` 15, `RemoveSourceReply` 16;
    /// sent only to requests a v1 client cannot make) fail that request with a typed error.
    #[test]
    fn the_kinds_and_codes_appended_after_v1_are_read_safely() {
        for code in [19, 20] {
            let mut fbb = flatbuffers::FlatBufferBuilder::new();
            let message = Some(fbb.create_string("source \"s\" exists"));
            let body = fb::Error::create(&mut fbb, &fb::ErrorArgs { code: fb::ErrorCode(code), message });
            let args = fb::ResponseArgs {
                request_id: 3,
                body_type: fb::ResponseBody::Error,
                body: Some(body.as_union_value()),
            };
            let root = fb::Response::create(&mut fbb, &args);
            fbb.finish_size_prefixed(root, None);
            match decode(fbb.finished_data()) {
                Ok((3, Reply::Error(e))) => {
                    assert_eq!((e.code, e.message.as_str()), (ErrorCode::Internal, "source \"s\" exists"));
                }
                other => panic!("code {code}: {other:?}"),
            }
        }
        for tag in [14, 15, 16] {
            let mut fbb = flatbuffers::FlatBufferBuilder::new();
            let body = fb::DropTableReply::create(&mut fbb, &fb::DropTableReplyArgs {}).as_union_value();
            let args = fb::ResponseArgs { request_id: 4, body_type: fb::ResponseBody(tag), body: Some(body) };
            let root = fb::Response::create(&mut fbb, &args);
            fbb.finish_size_prefixed(root, None);
            let err = decode(fbb.finished_data()).expect_err("not a v1 reply kind");
            assert!(matches!(err, Error::Malformed { field: "Response.body", .. }), "tag {tag}: {err:?}");
        }
    }
}
