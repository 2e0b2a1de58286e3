//! Protocol versions on a connection: the handshake's negotiation, the version a connection
//! remembers ([`ProtocolVersion`]), and the shim that serves an older version's requests with
//! current semantics. The one place that knows which request fields each version has.
//!
//! Every frame is decoded with the current schema, which only appends to older ones (FORMAT.md,
//! "Schema evolution"), so an old client's frame decodes with the fields it lacks absent. The shim
//! then gives each such field its documented default for that version, so a request means the
//! same thing whichever schema its client was built from. Replies need no shim: an old client
//! skips fields it does not know, reads an unknown error code as `Internal`, and never gets a
//! reply kind it lacks, because the shim refuses request kinds its version lacks.
//!
//! Today the v1 shim changes nothing: every field of the current schema is a v1 field, or was
//! appended to version 1 (below) so that a v1 client's frame decodes with the field's v1 default
//! already in place. It still destructures every request completely, with no `..`: a field
//! added to a request type fails to compile here until it is given its v1 default, and a
//! request kind added to [`Request`] until its v1 answer is written down.
//!
//! The source kinds (`AddSource`, `ListSources`, `RemoveSource`), the bulk kinds (`BulkLink`,
//! `BulkStatus`, `BulkRollback`) and `Compact` were appended to protocol version 1 without a new version (FORMAT.md, "Schema evolution": an older server answers an
//! unknown kind `Unsupported`, which every client already handles). A client built from the
//! frozen v1 schema cannot encode them, so one that arrives on a v1 connection came from a
//! current client and is served as is. The fields `TableSettings.rollback_window_ms` and
//! `AlterTable.rollback_window_ms` were appended the same way: a client built from the frozen
//! v1 schema cannot encode them, so its frame decodes with the schema's defaults (a new table
//! gets 24 h, an alter keeps the window), which is what such a client meant; one that carries
//! them came from a current client and is served as sent. So was `BulkLink.verify`, on a kind
//! no v1 client can send: absent, a link verifies fully, as every link did before the field.
//!
//! It must not touch storage or routing: what a request does is `service`'s business.

use nacre_wire::{
    self as wire, AlterTable, BatchOp, Compact, CreateTable, Delete, DropTable, ErrorCode, ErrorReply, Explain, Get,
    Handshake, Key, MultiGet, Put, RemoveSource, Request, Scan, SourceSpec, TableSettings, Versions, WriteBatch,
};

/// A protocol version this server serves, as a connection's handshake negotiated it. Only
/// [`ProtocolVersion::negotiate`] makes one, so a connection never holds a version the server
/// cannot serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtocolVersion(u32);

impl ProtocolVersion {
    /// The first released protocol, served forever (schema `wire/schema/v1/nacre.fbs`).
    pub const V1: ProtocolVersion = ProtocolVersion(1);
    /// The version this build speaks natively, `nacre_wire::PROTOCOL_VERSION`.
    pub const CURRENT: ProtocolVersion = ProtocolVersion(wire::PROTOCOL_VERSION);
    /// The oldest version served.
    pub const OLDEST: ProtocolVersion = ProtocolVersion::V1;

    /// The version number on the wire.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The version a connection speaks when its client's highest is `asked`: `min(asked,
    /// CURRENT)`, or `ProtocolVersion` if that is below [`ProtocolVersion::OLDEST`] (version 0,
    /// which no client speaks).
    pub fn negotiate(asked: u32) -> Result<ProtocolVersion, ErrorReply> {
        let version = asked.min(Self::CURRENT.0);
        if version < Self::OLDEST.0 {
            return Err(ErrorReply {
                code: ErrorCode::ProtocolVersion,
                message: format!(
                    "protocol version {asked} is not served (this server speaks {} to {})",
                    Self::OLDEST.0,
                    Self::CURRENT.0
                ),
            });
        }
        Ok(ProtocolVersion(version))
    }
}

/// `request`, decoded on a connection speaking `version`, in current semantics: fields its
/// version lacks get their documented defaults. A request kind the version lacks is refused
/// with `Unsupported` (its client cannot have meant it).
pub fn upgrade_request(version: ProtocolVersion, request: Request) -> Result<Request, ErrorReply> {
    if version == ProtocolVersion::V1 { from_v1(request) } else { Ok(request) }
}

/// The v1 shim. v1 has every field and kind of today's schema (the source kinds were appended to
/// it), so each arm rebuilds its request from exactly the fields it had. When a field is
/// appended after v1, add it to its arm with the value v1 clients get, and list it in FORMAT.md
/// ("Schema evolution", v1 defaults).
fn from_v1(request: Request) -> Result<Request, ErrorReply> {
    Ok(match request {
        Request::Handshake(Handshake { protocol_version, client_name }) => {
            Request::Handshake(Handshake { protocol_version, client_name })
        }
        Request::Topology => Request::Topology,
        Request::CreateTable(CreateTable { name, settings }) => {
            Request::CreateTable(CreateTable { name, settings: v1_settings(settings) })
        }
        Request::AlterTable(AlterTable {
            name,
            max_versions,
            version_retention_ms,
            default_ttl_ms,
            tie_rule,
            rollback_window_ms,
        }) => Request::AlterTable(AlterTable {
            name,
            max_versions,
            version_retention_ms,
            default_ttl_ms,
            tie_rule,
            // Appended to v1: absent (keep) from a v1-schema client, as decoded.
            rollback_window_ms,
        }),
        Request::DropTable(DropTable { name }) => Request::DropTable(DropTable { name }),
        Request::ListTables => Request::ListTables,
        Request::Put(Put { table, key, value, ts, ttl_ms, durability }) => {
            Request::Put(Put { table, key: v1_key(key), value, ts, ttl_ms, durability })
        }
        Request::Delete(Delete { table, key, ts, durability }) => {
            Request::Delete(Delete { table, key: v1_key(key), ts, durability })
        }
        Request::WriteBatch(WriteBatch { table, ops, durability }) => {
            Request::WriteBatch(WriteBatch { table, ops: ops.into_iter().map(v1_batch_op).collect(), durability })
        }
        Request::Get(Get { table, key, as_of }) => Request::Get(Get { table, key: v1_key(key), as_of }),
        Request::MultiGet(MultiGet { table, keys, as_of }) => {
            Request::MultiGet(MultiGet { table, keys: keys.into_iter().map(v1_key).collect(), as_of })
        }
        Request::Scan(Scan { table, partition_key, from, to, limit, reverse, cursor, as_of }) => {
            Request::Scan(Scan { table, partition_key, from, to, limit, reverse, cursor, as_of })
        }
        Request::Versions(Versions { table, key }) => Request::Versions(Versions { table, key: v1_key(key) }),
        Request::Stats => Request::Stats,
        Request::AddSource(SourceSpec { name, table, topics, brokers, dead_letter_topic, settings }) => {
            Request::AddSource(SourceSpec { name, table, topics, brokers, dead_letter_topic, settings })
        }
        Request::ListSources => Request::ListSources,
        Request::RemoveSource(RemoveSource { name }) => Request::RemoveSource(RemoveSource { name }),
        Request::BulkLink { dir, verify } => Request::BulkLink { dir, verify },
        Request::BulkStatus { load_id } => Request::BulkStatus { load_id },
        Request::BulkRollback { load_id } => Request::BulkRollback { load_id },
        Request::Compact(Compact { table, partition, wait }) => Request::Compact(Compact { table, partition, wait }),
        // Not in v1's schema: a v1 client never sends it.
        Request::Explain(Explain { table, key, as_of }) => Request::Explain(Explain { table, key: v1_key(key), as_of }),
    })
}

fn v1_key(Key { partition_key, sort_key }: Key) -> Key {
    Key { partition_key, sort_key }
}

fn v1_settings(settings: TableSettings) -> TableSettings {
    let TableSettings { max_versions, version_retention_ms, default_ttl_ms, tie_rule, rollback_window_ms } = settings;
    // `rollback_window_ms` was appended to v1: a v1-schema client's frame decodes with the
    // schema's default (24 h), and overwriting it here would also reset a current client's
    // window, since every connection speaks v1 today.
    TableSettings { max_versions, version_retention_ms, default_ttl_ms, tie_rule, rollback_window_ms }
}

fn v1_batch_op(op: BatchOp) -> BatchOp {
    match op {
        BatchOp::Put { key, value, ts, ttl_ms } => BatchOp::Put { key: v1_key(key), value, ts, ttl_ms },
        BatchOp::Delete { key, ts } => BatchOp::Delete { key: v1_key(key), ts },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::{Durability, OriginKind, Ts};

    #[test]
    fn negotiation_answers_the_lower_of_the_two_highest_versions() {
        assert_eq!(ProtocolVersion::negotiate(1).map(ProtocolVersion::get), Ok(1));
        assert_eq!(ProtocolVersion::negotiate(u32::MAX), Ok(ProtocolVersion::CURRENT));
        assert_eq!(ProtocolVersion::negotiate(wire::PROTOCOL_VERSION + 1), Ok(ProtocolVersion::CURRENT));
        let refused = ProtocolVersion::negotiate(0).expect_err("version 0 is not served");
        assert_eq!(refused.code, ErrorCode::ProtocolVersion);
        assert!(ProtocolVersion::OLDEST <= ProtocolVersion::CURRENT);
        assert_eq!(ProtocolVersion::OLDEST, ProtocolVersion::V1, "v1 is served forever");
    }

    /// One request of each kind with every field set away from its default, so a shim that
    /// dropped or reset a field v1 has would show.
    fn every_kind() -> Vec<Request> {
        let key = Key::new("pk", "sk");
        let ts = Some(Ts(77 << 16));
        let settings = TableSettings {
            max_versions: 9,
            version_retention_ms: Some(5),
            default_ttl_ms: Some(6),
            tie_rule: [OriginKind::Bulk, OriginKind::Direct, OriginKind::Stream],
            rollback_window_ms: 0,
        };
        vec![
            Request::Handshake(Handshake { protocol_version: 1, client_name: "old".into() }),
            Request::Topology,
            Request::CreateTable(CreateTable { name: "t".into(), settings }),
            Request::AlterTable(AlterTable {
                name: "t".into(),
                max_versions: Some(4),
                version_retention_ms: Some(None),
                default_ttl_ms: Some(Some(8)),
                tie_rule: Some(settings.tie_rule),
                rollback_window_ms: Some(7),
            }),
            Request::DropTable(DropTable { name: "t".into() }),
            Request::ListTables,
            Request::Put(Put {
                table: "t".into(),
                key: key.clone(),
                value: b"v".to_vec(),
                ts,
                ttl_ms: Some(10),
                durability: Some(Durability::Async),
            }),
            Request::Delete(Delete { table: "t".into(), key: key.clone(), ts, durability: Some(Durability::Sync) }),
            Request::WriteBatch(WriteBatch {
                table: "t".into(),
                ops: vec![
                    BatchOp::Put { key: key.clone(), value: b"w".to_vec(), ts, ttl_ms: Some(11) },
                    BatchOp::Delete { key: Key::new("pk", "other"), ts },
                ],
                durability: Some(Durability::Sync),
            }),
            Request::Get(Get { table: "t".into(), key: key.clone(), as_of: ts }),
            Request::MultiGet(MultiGet { table: "t".into(), keys: vec![key.clone(), Key::new("b", "")], as_of: ts }),
            Request::Scan(Scan {
                table: "t".into(),
                partition_key: b"pk".to_vec(),
                from: Some(b"a".to_vec()),
                to: Some(b"z".to_vec()),
                limit: 12,
                reverse: true,
                cursor: Some(b"c".to_vec()),
                as_of: ts,
            }),
            Request::Versions(Versions { table: "t".into(), key }),
            Request::Stats,
        ]
    }

    /// The kinds appended to version 1 after its schema was frozen, every field set.
    fn appended_kinds() -> Vec<Request> {
        vec![
            Request::AddSource(SourceSpec {
                name: "s".into(),
                table: "t".into(),
                topics: vec!["a".into(), "b".into()],
                brokers: "k:9092".into(),
                dead_letter_topic: Some("dlq".into()),
                settings: vec![("group.id".into(), "g".into())],
            }),
            Request::ListSources,
            Request::RemoveSource(RemoveSource { name: "s".into() }),
            Request::BulkLink { dir: "/loads/l".into(), verify: wire::LinkVerify::Checksums },
            Request::BulkStatus { load_id: Some(3) },
            Request::BulkRollback { load_id: 3 },
        ]
    }

    /// Today every field a request can carry is a v1 field or was appended to v1 (the rollback
    /// windows), so the v1 shim keeps each one.
    #[test]
    fn the_v1_shim_keeps_every_v1_field() {
        let requests = every_kind();
        assert_eq!(requests.len(), 14, "one of each of the frozen v1 schema's 14 request kinds");
        for request in requests {
            let upgraded = upgrade_request(ProtocolVersion::V1, request.clone());
            assert_eq!(upgraded.as_ref(), Ok(&request), "{}", request.kind());
        }
    }

    /// The source kinds belong to version 1 (no version was added for them): a current client
    /// on a v1 connection is served them as sent.
    #[test]
    fn the_kinds_appended_to_v1_are_served_on_v1() {
        assert_eq!(ProtocolVersion::CURRENT, ProtocolVersion::V1, "revisit this test when a version is added");
        for request in appended_kinds() {
            assert_eq!(upgrade_request(ProtocolVersion::V1, request.clone()), Ok(request));
        }
    }

    /// What a legacy client leaves out stays out, so the server applies its defaults: its own
    /// timestamp, the default durability, the table's TTL, the latest state.
    #[test]
    fn the_v1_shim_leaves_absent_fields_to_the_servers_defaults() {
        let put = Request::Put(Put::new("t", Key::new("pk", ""), "v"));
        match upgrade_request(ProtocolVersion::V1, put) {
            Ok(Request::Put(p)) => assert_eq!((p.ts, p.ttl_ms, p.durability), (None, None, None)),
            other => panic!("a v1 put became {other:?}"),
        }
        let get = Request::Get(Get::new("t", Key::new("pk", "")));
        match upgrade_request(ProtocolVersion::V1, get) {
            Ok(Request::Get(g)) => assert_eq!(g.as_of, None),
            other => panic!("a v1 get became {other:?}"),
        }
    }

    #[test]
    fn the_current_version_is_served_as_decoded() {
        for request in every_kind().into_iter().chain(appended_kinds()) {
            assert_eq!(upgrade_request(ProtocolVersion::CURRENT, request.clone()), Ok(request));
        }
    }
}
