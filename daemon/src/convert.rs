//! The one place wire types become storage types (and the daemon's own records: catalog
//! entries, load records) and back. Nothing else in the daemon names both.

use crate::catalog::TableEntry;
use nacre_storage as st;
use nacre_wire as wire;

/// A storage timestamp from the wire's.
pub fn ts(t: wire::Ts) -> st::Ts {
    st::Ts(t.0)
}

/// An origin kind to storage.
pub fn kind(k: wire::OriginKind) -> st::OriginKind {
    match k {
        wire::OriginKind::Bulk => st::OriginKind::Bulk,
        wire::OriginKind::Stream => st::OriginKind::Stream,
        wire::OriginKind::Direct => st::OriginKind::Direct,
    }
}

/// An origin kind to the wire.
pub fn wire_kind(k: st::OriginKind) -> wire::OriginKind {
    match k {
        st::OriginKind::Bulk => wire::OriginKind::Bulk,
        st::OriginKind::Stream => wire::OriginKind::Stream,
        st::OriginKind::Direct => wire::OriginKind::Direct,
    }
}

/// A version identity to the wire.
pub fn wire_version(v: st::VersionId) -> wire::VersionId {
    wire::VersionId {
        ts: wire::Ts(v.ts.0),
        origin: wire::Origin { kind: wire_kind(v.origin.kind), source_id: v.origin.source_id, seq: v.origin.seq },
    }
}

/// A row to the wire.
pub fn wire_row(r: st::Row) -> wire::Row {
    wire::Row { value: r.value, version: wire_version(r.id), expires_at_ms: r.expires_at_ms }
}

/// A scan page to the wire.
pub fn wire_page(p: st::ScanPage) -> wire::ScanPage {
    wire::ScanPage {
        rows: p
            .rows
            .into_iter()
            .map(|r| wire::ScanRow {
                sort_key: r.sort_key,
                value: r.value,
                version: wire_version(r.id),
                expires_at_ms: r.expires_at_ms,
            })
            .collect(),
        cursor: p.cursor,
    }
}

/// A retained version to the wire.
fn wire_entry(v: st::Version) -> wire::VersionEntry {
    wire::VersionEntry {
        version: wire_version(v.id),
        payload: match v.payload {
            st::Payload::Value { value, expires_at_ms } => wire::Payload::Value { value, expires_at_ms },
            st::Payload::Tombstone => wire::Payload::Tombstone,
        },
    }
}

/// A key history to the wire.
pub fn wire_history(h: st::KeyHistory) -> wire::KeyHistory {
    wire::KeyHistory {
        versions: h.versions.into_iter().map(wire_entry).collect(),
        watermark: h.watermark.map(|w| wire_version(w.point)),
    }
}

/// An explanation to the wire.
pub fn wire_explanation(e: st::engine::Explanation) -> wire::Explanation {
    use st::engine::{Location, NotFoundReason, RuleStep, Standing, Verdict};
    let verdict = match e.verdict {
        Verdict::Visible(_) => wire::ExplainVerdict::Visible,
        Verdict::NotFound(NotFoundReason::NoVersions) => wire::ExplainVerdict::NoVersions,
        Verdict::NotFound(NotFoundReason::Withdrawn) => wire::ExplainVerdict::Withdrawn,
        Verdict::NotFound(NotFoundReason::BeforeFirstVersion) => wire::ExplainVerdict::BeforeFirstVersion,
        Verdict::NotFound(NotFoundReason::UnderWatermark) => wire::ExplainVerdict::UnderWatermark,
        Verdict::NotFound(NotFoundReason::Tombstone) => wire::ExplainVerdict::Tombstone,
        // The winner's own entry carries its expiry.
        Verdict::NotFound(NotFoundReason::Expired { .. }) => wire::ExplainVerdict::Expired,
    };
    let candidates = e
        .candidates
        .into_iter()
        .map(|c| wire::ExplainCandidate {
            entry: wire_entry(c.version),
            location: match c.location {
                Location::ActiveMemtable => wire::VersionLocation::ActiveMemtable,
                Location::FrozenMemtable { index } => wire::VersionLocation::FrozenMemtable(index),
                Location::Segment(id) => wire::VersionLocation::Segment(id.0),
            },
            standing: match c.standing {
                Standing::Winner => wire::CandidateStanding::Winner,
                Standing::Superseded => wire::CandidateStanding::Superseded,
                Standing::UnderWatermark => wire::CandidateStanding::UnderWatermark,
                Standing::Withdrawn => wire::CandidateStanding::Withdrawn,
                Standing::AfterReadTime => wire::CandidateStanding::AfterReadTime,
            },
        })
        .collect();
    let deciding_step = e.deciding_step.map(|s| match s {
        RuleStep::Ts => wire::RuleStep::Ts,
        RuleStep::TieRule => wire::RuleStep::TieRule,
        RuleStep::Source => wire::RuleStep::Source,
        RuleStep::Seq => wire::RuleStep::Seq,
        RuleStep::SameIdentity => wire::RuleStep::SameIdentity,
    });
    wire::Explanation {
        verdict,
        candidates,
        deciding_step,
        watermark: e.watermark.map(|w| wire_version(w.point)),
        judged_at_ms: e.judged_at_ms,
    }
}

/// Durability to storage; `None` is the default, `Sync`.
pub fn durability(d: Option<wire::Durability>) -> st::Durability {
    match d {
        Some(wire::Durability::Async) => st::Durability::Async,
        _ => st::Durability::Sync,
    }
}

/// The catalog entry of table `id` with these settings: storage's, and the rollback window
/// the daemon keeps itself. A tie rule that is not a permutation or a zero `max_versions` is a
/// bad request; any rollback window is fine (0 is none).
pub fn table_entry(id: u32, s: &wire::TableSettings) -> Result<TableEntry, wire::ErrorReply> {
    let tie_rule = st::TieRule::new(s.tie_rule.map(kind))
        .ok_or_else(|| error(wire::ErrorCode::BadRequest, "tie_rule must name bulk, stream and direct once each"))?;
    if s.max_versions == 0 {
        return Err(error(wire::ErrorCode::BadRequest, "max_versions must be at least 1"));
    }
    let settings = st::TableSettings {
        max_versions: s.max_versions,
        version_retention_ms: s.version_retention_ms,
        default_ttl_ms: s.default_ttl_ms,
        tie_rule,
    };
    Ok(TableEntry::new(id, &settings, s.rollback_window_ms))
}

/// A table's settings to the wire.
pub fn wire_settings(table: &TableEntry) -> wire::TableSettings {
    let s = table.settings();
    wire::TableSettings {
        max_versions: s.max_versions,
        version_retention_ms: s.version_retention_ms,
        default_ttl_ms: s.default_ttl_ms,
        tie_rule: s.tie_rule.highest_first().map(wire_kind),
        rollback_window_ms: table.rollback_window_ms,
    }
}

/// An error reply.
pub fn error(code: wire::ErrorCode, message: impl Into<String>) -> wire::ErrorReply {
    wire::ErrorReply { code, message: message.into() }
}

/// A storage error as the code and message a client sees.
pub fn storage_error(e: &st::Error) -> wire::ErrorReply {
    use wire::ErrorCode as C;
    let code = match e {
        st::Error::LimitExceeded { what: st::Limit::Value, .. } => C::ValueTooLarge,
        st::Error::LimitExceeded { what: st::Limit::PartitionKey | st::Limit::SortKey, .. } => C::KeyTooLarge,
        st::Error::LimitExceeded { .. } => C::BatchTooLarge,
        st::Error::TimestampTooFarInFuture { .. } => C::TimestampTooFarInFuture,
        st::Error::UnknownTable(_) => C::UnknownTable,
        st::Error::Poisoned { .. } => C::Poisoned,
        st::Error::ChecksumMismatch { .. } | st::Error::Corrupt { .. } | st::Error::UnsupportedFormatVersion { .. } => {
            C::Corruption
        }
        st::Error::Io { .. } => C::Io,
        st::Error::InvalidArgument(_) => C::BadRequest,
        _ => C::Internal,
    };
    error(code, e.to_string())
}

/// How much of a load a link validates.
pub fn link_verify(v: wire::LinkVerify) -> st::bulk::validate::Verify {
    match v {
        wire::LinkVerify::Full => st::bulk::validate::Verify::Full,
        wire::LinkVerify::Checksums => st::bulk::validate::Verify::Checksums,
    }
}

/// A bulk-load record as the protocol shows it.
pub fn bulk_load_info(r: &crate::bulk_book::LoadRecord) -> wire::BulkLoadInfo {
    use crate::bulk_book::LoadState;
    use nacre_storage::bulk::LoadMode;
    wire::BulkLoadInfo {
        load_id: r.load_id,
        table: r.table.clone(),
        mode: match r.mode {
            LoadMode::Merge => wire::BulkMode::Merge,
            LoadMode::Replace => wire::BulkMode::Replace,
        },
        snapshot_ms: r.snapshot_ms,
        state: match r.state {
            LoadState::Preparing => wire::BulkLoadState::Preparing,
            LoadState::Committed => wire::BulkLoadState::Committed,
            LoadState::Aborted => wire::BulkLoadState::Aborted,
            LoadState::RolledBack => wire::BulkLoadState::RolledBack,
        },
        dir: r.dir.clone(),
        files: r.files,
        bytes: r.bytes,
        entries: r.entries,
        changed_at_ms: r.changed_at_ms,
        note: r.note.clone(),
        ..wire::BulkLoadInfo::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::DEFAULT_ROLLBACK_WINDOW_MS;

    #[test]
    fn table_settings_round_trip_through_the_catalog_entry() {
        let defaults = wire::TableSettings::default();
        let entry = table_entry(7, &defaults).expect("the defaults are valid");
        assert_eq!(entry.rollback_window_ms, DEFAULT_ROLLBACK_WINDOW_MS, "an old catalog reads as a new table");
        assert_eq!(wire_settings(&entry), defaults);
        let set = wire::TableSettings {
            max_versions: 1,
            default_ttl_ms: Some(9),
            tie_rule: [wire::OriginKind::Bulk, wire::OriginKind::Direct, wire::OriginKind::Stream],
            rollback_window_ms: 0,
            ..defaults
        };
        assert_eq!(wire_settings(&table_entry(7, &set).expect("valid")), set);
        let u64_max = wire::TableSettings { rollback_window_ms: u64::MAX, ..defaults };
        assert_eq!(table_entry(7, &u64_max).expect("any window is valid").rollback_window_ms, u64::MAX);
        let zero_versions = wire::TableSettings { max_versions: 0, ..defaults };
        assert_eq!(table_entry(7, &zero_versions).map_err(|e| e.code), Err(wire::ErrorCode::BadRequest));
    }
}
