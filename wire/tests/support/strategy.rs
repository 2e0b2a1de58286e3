//! proptest strategies for every request and reply, shared by the round-trip and fuzz tests.
//! They generate anything the types can hold (not only what a server would accept), so the
//! codec is exercised at its edges: empty and absent bytes, extreme integers, unknown error
//! codes.
#![allow(dead_code)] // each test binary uses a different subset

use nacre_wire::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..=max)
}

pub fn name() -> impl Strategy<Value = String> {
    // Any Unicode, including NUL: flatbuffers strings carry a length.
    ".{0,12}"
}

pub fn ts() -> impl Strategy<Value = Ts> {
    prop_oneof![any::<u64>().prop_map(Ts), Just(Ts(0)), Just(Ts(u64::MAX))]
}

pub fn origin_kind() -> impl Strategy<Value = OriginKind> {
    prop::sample::select(OriginKind::ALL.to_vec())
}

pub fn version_id() -> impl Strategy<Value = VersionId> {
    (ts(), origin_kind(), any::<u32>(), any::<u64>())
        .prop_map(|(ts, kind, source_id, seq)| VersionId { ts, origin: Origin { kind, source_id, seq } })
}

/// A rollback window: any, and often the schema's default (which the encoder leaves out) or 0.
pub fn window_ms() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), Just(TableSettings::DEFAULT_ROLLBACK_WINDOW_MS), Just(0)]
}

pub fn tie_rule() -> impl Strategy<Value = TieRule> {
    // Any three kinds: whether they form a permutation is the server's check, not the codec's.
    [origin_kind(), origin_kind(), origin_kind()]
}

pub fn settings() -> impl Strategy<Value = TableSettings> {
    (any::<u32>(), option::of(any::<u64>()), option::of(any::<u64>()), tie_rule(), window_ms()).prop_map(
        |(max_versions, version_retention_ms, default_ttl_ms, tie_rule, rollback_window_ms)| TableSettings {
            max_versions,
            version_retention_ms,
            default_ttl_ms,
            tie_rule,
            rollback_window_ms,
        },
    )
}

pub fn table_info() -> impl Strategy<Value = TableInfo> {
    (name(), settings(), any::<u32>()).prop_map(|(name, settings, id)| TableInfo { name, settings, id })
}

pub fn key() -> impl Strategy<Value = Key> {
    (bytes(24), bytes(24)).prop_map(|(p, s)| Key::new(p, s))
}

pub fn durability() -> impl Strategy<Value = Option<Durability>> {
    option::of(prop_oneof![Just(Durability::Sync), Just(Durability::Async)])
}

pub fn batch_op() -> impl Strategy<Value = BatchOp> {
    prop_oneof![
        (key(), bytes(64), option::of(ts()), option::of(any::<u64>()))
            .prop_map(|(key, value, ts, ttl_ms)| BatchOp::Put { key, value, ts, ttl_ms }),
        (key(), option::of(ts())).prop_map(|(key, ts)| BatchOp::Delete { key, ts }),
    ]
}

pub fn handshake() -> impl Strategy<Value = Request> {
    (any::<u32>(), name())
        .prop_map(|(protocol_version, client_name)| Request::Handshake(Handshake { protocol_version, client_name }))
}

pub fn create_table() -> impl Strategy<Value = Request> {
    (name(), settings()).prop_map(|(name, settings)| Request::CreateTable(CreateTable { name, settings }))
}

pub fn alter_table() -> impl Strategy<Value = Request> {
    (
        name(),
        option::of(any::<u32>()),
        option::of(option::of(any::<u64>())),
        option::of(option::of(any::<u64>())),
        option::of(tie_rule()),
        option::of(window_ms()),
    )
        .prop_map(|(name, max_versions, version_retention_ms, default_ttl_ms, tie_rule, rollback_window_ms)| {
            Request::AlterTable(AlterTable {
                name,
                max_versions,
                version_retention_ms,
                default_ttl_ms,
                tie_rule,
                rollback_window_ms,
            })
        })
}

pub fn drop_table() -> impl Strategy<Value = Request> {
    name().prop_map(|name| Request::DropTable(DropTable { name }))
}

pub fn put() -> impl Strategy<Value = Request> {
    (name(), key(), bytes(256), option::of(ts()), option::of(any::<u64>()), durability()).prop_map(
        |(table, key, value, ts, ttl_ms, durability)| Request::Put(Put { table, key, value, ts, ttl_ms, durability }),
    )
}

pub fn delete() -> impl Strategy<Value = Request> {
    (name(), key(), option::of(ts()), durability())
        .prop_map(|(table, key, ts, durability)| Request::Delete(Delete { table, key, ts, durability }))
}

pub fn write_batch() -> impl Strategy<Value = Request> {
    (name(), vec(batch_op(), 0..8), durability())
        .prop_map(|(table, ops, durability)| Request::WriteBatch(WriteBatch { table, ops, durability }))
}

pub fn get() -> impl Strategy<Value = Request> {
    (name(), key(), option::of(ts())).prop_map(|(table, key, as_of)| Request::Get(Get { table, key, as_of }))
}

pub fn multi_get() -> impl Strategy<Value = Request> {
    (name(), vec(key(), 0..8), option::of(ts()))
        .prop_map(|(table, keys, as_of)| Request::MultiGet(MultiGet { table, keys, as_of }))
}

pub fn scan() -> impl Strategy<Value = Request> {
    (
        (name(), bytes(24), option::of(bytes(16)), option::of(bytes(16))),
        (any::<u32>(), any::<bool>(), option::of(bytes(16)), option::of(ts())),
    )
        .prop_map(|((table, partition_key, from, to), (limit, reverse, cursor, as_of))| {
            Request::Scan(Scan { table, partition_key, from, to, limit, reverse, cursor, as_of })
        })
}

pub fn versions() -> impl Strategy<Value = Request> {
    (name(), key()).prop_map(|(table, key)| Request::Versions(Versions { table, key }))
}

pub fn explain() -> impl Strategy<Value = Request> {
    (name(), key(), option::of(ts())).prop_map(|(table, key, as_of)| Request::Explain(Explain { table, key, as_of }))
}

pub fn source_settings() -> impl Strategy<Value = Vec<(String, String)>> {
    vec((name(), name()), 0..4)
}

pub fn add_source() -> impl Strategy<Value = Request> {
    ((name(), name(), vec(name(), 0..4)), (name(), option::of(name()), source_settings())).prop_map(
        |((name, table, topics), (brokers, dead_letter_topic, settings))| {
            Request::AddSource(SourceSpec { name, table, topics, brokers, dead_letter_topic, settings })
        },
    )
}

pub fn remove_source() -> impl Strategy<Value = Request> {
    name().prop_map(|name| Request::RemoveSource(RemoveSource { name }))
}

pub fn bulk_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (name(), prop_oneof![Just(LinkVerify::Full), Just(LinkVerify::Checksums)])
            .prop_map(|(dir, verify)| Request::BulkLink { dir, verify }),
        option::of(1..u32::MAX).prop_map(|load_id| Request::BulkStatus { load_id }),
        any::<u32>().prop_map(|load_id| Request::BulkRollback { load_id }),
        ("[a-z]{1,8}", option::of(any::<u32>()), any::<bool>())
            .prop_map(|(table, partition, wait)| Request::Compact(Compact { table, partition, wait })),
    ]
}

pub fn bulk_load_info() -> impl Strategy<Value = BulkLoadInfo> {
    let mode = prop::sample::select(vec![BulkMode::Merge, BulkMode::Replace]);
    let state = prop::sample::select(vec![
        BulkLoadState::Preparing,
        BulkLoadState::Committed,
        BulkLoadState::Aborted,
        BulkLoadState::RolledBack,
    ]);
    ((any::<u32>(), name(), mode, any::<u64>(), state, name()), (any::<u32>(), any::<[u64; 6]>(), option::of(name())))
        .prop_map(|((load_id, table, mode, snapshot_ms, state, dir), (files, n, note))| BulkLoadInfo {
            load_id,
            table,
            mode,
            snapshot_ms,
            state,
            dir,
            files,
            bytes: n[0],
            entries: n[1],
            changed_at_ms: n[2],
            note,
            validate_ms: n[3],
            prepare_ms: n[4],
            commit_ms: n[5],
        })
}

pub fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        handshake(),
        Just(Request::Topology),
        create_table(),
        alter_table(),
        drop_table(),
        Just(Request::ListTables),
        put(),
        delete(),
        write_batch(),
        get(),
        multi_get(),
        scan(),
        versions(),
        Just(Request::Stats),
        add_source(),
        Just(Request::ListSources),
        remove_source(),
        bulk_request(),
    ]
}

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        prop::sample::select(ErrorCode::NAMED.to_vec()),
        // Codes a newer server might send: kept as numbers.
        (ErrorCode::NAMED.len() as u16..=u16::MAX).prop_map(ErrorCode::Other),
    ]
}

pub fn topology() -> impl Strategy<Value = Topology> {
    (vec(any::<u16>(), 1..64), any::<u32>()).prop_map(|(owner_ports, shard_count)| Topology {
        partition_count: owner_ports.len() as u32,
        shard_count,
        owner_ports,
    })
}

pub fn row() -> impl Strategy<Value = Row> {
    (bytes(64), version_id(), option::of(any::<u64>())).prop_map(|(value, version, expires_at_ms)| Row {
        value,
        version,
        expires_at_ms,
    })
}

pub fn scan_row() -> impl Strategy<Value = ScanRow> {
    (bytes(16), bytes(64), version_id(), option::of(any::<u64>()))
        .prop_map(|(sort_key, value, version, expires_at_ms)| ScanRow { sort_key, value, version, expires_at_ms })
}

pub fn version_entry() -> impl Strategy<Value = VersionEntry> {
    let payload = prop_oneof![
        (bytes(64), option::of(any::<u64>()))
            .prop_map(|(value, expires_at_ms)| Payload::Value { value, expires_at_ms }),
        Just(Payload::Tombstone),
    ];
    (version_id(), payload).prop_map(|(version, payload)| VersionEntry { version, payload })
}

pub fn stat() -> impl Strategy<Value = Stat> {
    (name(), option::of(any::<u32>()), option::of(any::<u32>()), any::<u64>())
        .prop_map(|(name, shard, partition, value)| Stat { name, shard, partition, value })
}

pub fn error_reply() -> impl Strategy<Value = Reply> {
    (error_code(), name()).prop_map(|(code, message)| Reply::Error(ErrorReply { code, message }))
}

pub fn handshake_ok() -> impl Strategy<Value = Reply> {
    (any::<u32>(), name(), name(), topology()).prop_map(|(protocol_version, server_name, server_version, topology)| {
        Reply::Handshake(HandshakeOk { protocol_version, server_name, server_version, topology })
    })
}

pub fn scan_page() -> impl Strategy<Value = Reply> {
    (vec(scan_row(), 0..8), option::of(bytes(16))).prop_map(|(rows, cursor)| Reply::Scan(ScanPage { rows, cursor }))
}

pub fn key_history() -> impl Strategy<Value = Reply> {
    (vec(version_entry(), 0..8), option::of(version_id()))
        .prop_map(|(versions, watermark)| Reply::Versions(KeyHistory { versions, watermark }))
}

pub fn source_info() -> impl Strategy<Value = SourceInfo> {
    let topic = (name(), any::<u32>()).prop_map(|(topic, stream_id)| SourceTopic { topic, stream_id });
    ((name(), name(), vec(topic, 0..4)), (name(), option::of(name()), source_settings(), any::<bool>())).prop_map(
        |((name, table, topics), (brokers, dead_letter_topic, settings, retired))| SourceInfo {
            name,
            table,
            topics,
            brokers,
            dead_letter_topic,
            settings,
            retired,
        },
    )
}

pub fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        error_reply(),
        handshake_ok(),
        topology().prop_map(Reply::Topology),
        table_info().prop_map(Reply::Table),
        Just(Reply::TableDropped),
        vec(table_info(), 0..6).prop_map(Reply::Tables),
        version_id().prop_map(Reply::Written),
        vec(version_id(), 0..8).prop_map(Reply::BatchWritten),
        option::of(row()).prop_map(Reply::Get),
        vec(option::of(row()), 0..8).prop_map(Reply::MultiGet),
        scan_page(),
        key_history(),
        vec(stat(), 0..8).prop_map(Reply::Stats),
        source_info().prop_map(Reply::Source),
        vec(source_info(), 0..4).prop_map(Reply::Sources),
        Just(Reply::SourceRemoved),
        vec(bulk_load_info(), 0..4).prop_map(Reply::BulkLoads),
        (any::<u32>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(
            |(partitions, compactions, bytes_in, bytes_out)| {
                Reply::Compacted(CompactionReport { partitions, compactions, bytes_in, bytes_out })
            }
        ),
    ]
}

pub fn explain_candidate() -> impl Strategy<Value = ExplainCandidate> {
    let location = prop_oneof![
        Just(VersionLocation::ActiveMemtable),
        any::<u32>().prop_map(VersionLocation::FrozenMemtable),
        any::<u64>().prop_map(VersionLocation::Segment),
    ];
    let standing = prop_oneof![
        Just(CandidateStanding::Winner),
        Just(CandidateStanding::Superseded),
        Just(CandidateStanding::UnderWatermark),
        Just(CandidateStanding::Withdrawn),
        Just(CandidateStanding::AfterReadTime),
    ];
    (version_entry(), location, standing).prop_map(|(entry, location, standing)| ExplainCandidate {
        entry,
        location,
        standing,
    })
}

pub fn explanation() -> impl Strategy<Value = Reply> {
    let verdict = prop_oneof![
        Just(ExplainVerdict::Visible),
        Just(ExplainVerdict::NoVersions),
        Just(ExplainVerdict::Withdrawn),
        Just(ExplainVerdict::BeforeFirstVersion),
        Just(ExplainVerdict::UnderWatermark),
        Just(ExplainVerdict::Tombstone),
        Just(ExplainVerdict::Expired),
    ];
    let step = option::of(prop_oneof![
        Just(RuleStep::Ts),
        Just(RuleStep::TieRule),
        Just(RuleStep::Source),
        Just(RuleStep::Seq),
        Just(RuleStep::SameIdentity),
    ]);
    (verdict, vec(explain_candidate(), 0..6), step, option::of(version_id()), any::<u64>()).prop_map(
        |(verdict, candidates, deciding_step, watermark, judged_at_ms)| {
            Reply::Explain(Explanation { verdict, candidates, deciding_step, watermark, judged_at_ms })
        },
    )
}
