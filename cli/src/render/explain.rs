//! How `nacre explain` prints: a verdict line, the rule step that decided, the watermark if
//! any, then every retained version greatest first, with its standing and where it lives. In
//! JSON, one object: `verdict` (`visible`, `no_versions`, `withdrawn`, `before_first_version`,
//! `under_watermark`, `tombstone`, `expired`), `deciding_step` (`ts`, `tie_rule`, `source`,
//! `seq`, `same_identity`, or null when uncontested), `watermark`, `judged_at_ms`, and
//! `candidates`, each a version row as `versions` prints it plus `tombstone`, `standing`
//! (`winner`, `superseded`, `under_watermark`, `withdrawn`, `after_read_time`) and `location`
//! (`{"kind": "active_memtable"}`, `{"kind": "frozen_memtable", "index"}` or
//! `{"kind": "segment", "segment_id"}`).

use super::{
    Format, StreamTopics, VALUE_HEADERS, ValueRow, aligned, json_bytes, json_lines, origin_text, version_json,
};
use crate::time::{rfc3339, rfc3339_millis};
use nacre_wire::{
    CandidateStanding, ExplainCandidate, ExplainVerdict, Explanation, Payload, RuleStep, VersionLocation,
};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// The key an explanation is about, as the user named it.
#[derive(Debug, Clone, Copy)]
pub struct ExplainedKey<'a> {
    /// The table.
    pub table: &'a str,
    /// The partition key.
    pub partition_key: &'a str,
    /// The sort key, possibly empty.
    pub sort_key: &'a str,
}

fn verdict_name(verdict: ExplainVerdict) -> &'static str {
    match verdict {
        ExplainVerdict::Visible => "visible",
        ExplainVerdict::NoVersions => "no_versions",
        ExplainVerdict::Withdrawn => "withdrawn",
        ExplainVerdict::BeforeFirstVersion => "before_first_version",
        ExplainVerdict::UnderWatermark => "under_watermark",
        ExplainVerdict::Tombstone => "tombstone",
        ExplainVerdict::Expired => "expired",
    }
}

fn verdict_text(e: &Explanation) -> String {
    let expiry = || {
        let winner = e.candidates.iter().find(|c| c.standing == CandidateStanding::Winner);
        match winner.map(|c| &c.entry.payload) {
            Some(Payload::Value { expires_at_ms: Some(at), .. }) => rfc3339_millis(*at),
            _ => "?".to_owned(),
        }
    };
    match e.verdict {
        ExplainVerdict::Visible => "visible: the winner below is the value".to_owned(),
        ExplainVerdict::NoVersions => {
            "not found: no versions retained (never written, or collected by compaction: the server cannot tell which)"
                .to_owned()
        }
        ExplainVerdict::Withdrawn => {
            "not found: every version belongs to a withdrawn bulk load (rolled back, or not yet committed)".to_owned()
        }
        ExplainVerdict::BeforeFirstVersion => "not found: the read is as of a time before every version".to_owned(),
        ExplainVerdict::UnderWatermark => "not found: the winner is under the bulk replace watermark".to_owned(),
        ExplainVerdict::Tombstone => "not found: a tombstone wins".to_owned(),
        ExplainVerdict::Expired => {
            format!("not found: the winner expired at {} (judged at {})", expiry(), rfc3339_millis(e.judged_at_ms))
        }
    }
}

fn step_name(step: Option<RuleStep>) -> Option<&'static str> {
    step.map(|s| match s {
        RuleStep::Ts => "ts",
        RuleStep::TieRule => "tie_rule",
        RuleStep::Source => "source",
        RuleStep::Seq => "seq",
        RuleStep::SameIdentity => "same_identity",
    })
}

fn step_text(step: Option<RuleStep>) -> &'static str {
    match step {
        None => "uncontested (fewer than two versions the read may pick)",
        Some(RuleStep::Ts) => "ts (different timestamps: the greater wins)",
        Some(RuleStep::TieRule) => "tie rule (equal ts: origin kinds ranked by the table's tie_rule)",
        Some(RuleStep::Source) => "source (equal ts and kind: the greater source_id wins)",
        Some(RuleStep::Seq) => "seq (equal ts, kind and source: the greater seq wins)",
        Some(RuleStep::SameIdentity) => "same version (identical identity: a redelivery, held twice)",
    }
}

fn standing_name(standing: CandidateStanding) -> &'static str {
    match standing {
        CandidateStanding::Winner => "winner",
        CandidateStanding::Superseded => "superseded",
        CandidateStanding::UnderWatermark => "under_watermark",
        CandidateStanding::Withdrawn => "withdrawn",
        CandidateStanding::AfterReadTime => "after_read_time",
    }
}

fn location_json(location: VersionLocation) -> Value {
    match location {
        VersionLocation::ActiveMemtable => json!({ "kind": "active_memtable" }),
        VersionLocation::FrozenMemtable(index) => json!({ "kind": "frozen_memtable", "index": index }),
        VersionLocation::Segment(id) => json!({ "kind": "segment", "segment_id": id }),
    }
}

fn location_text(location: VersionLocation) -> String {
    match location {
        VersionLocation::ActiveMemtable => "memtable".to_owned(),
        VersionLocation::FrozenMemtable(index) => format!("frozen memtable #{index}"),
        VersionLocation::Segment(id) => format!("segment {id}"),
    }
}

fn value_row<'a>(c: &'a ExplainCandidate, sort_key: &'a str) -> ValueRow<'a> {
    let (value, expires_at_ms) = match &c.entry.payload {
        Payload::Value { value, expires_at_ms } => (Some(value.as_slice()), *expires_at_ms),
        Payload::Tombstone => (None, None),
    };
    ValueRow { sort_key: sort_key.as_bytes(), value, version: &c.entry.version, expires_at_ms }
}

/// An explanation of one key's read.
pub fn explanation(format: Format, key: ExplainedKey<'_>, e: &Explanation, topics: &StreamTopics) -> String {
    match format {
        Format::Json => {
            let candidates: Vec<Value> = e
                .candidates
                .iter()
                .map(|c| {
                    let row = value_row(c, key.sort_key);
                    let mut json = row.json(key.table, key.partition_key, topics);
                    let fields = json.as_object_mut().expect("built as an object");
                    fields.insert("tombstone".into(), json!(row.value.is_none()));
                    fields.insert("standing".into(), json!(standing_name(c.standing)));
                    fields.insert("location".into(), location_json(c.location));
                    json
                })
                .collect();
            let watermark = e.watermark.as_ref().map(|w| {
                let (ts, origin) = version_json(w, topics);
                json!({ "ts": ts, "origin": origin })
            });
            let (sort_key, sort_key_encoding) = json_bytes(key.sort_key.as_bytes());
            json_lines([json!({
                "table": key.table,
                "partition_key": key.partition_key,
                "sort_key": sort_key,
                "sort_key_encoding": sort_key_encoding,
                "verdict": verdict_name(e.verdict),
                "visible": e.verdict == ExplainVerdict::Visible,
                "deciding_step": step_name(e.deciding_step),
                "watermark": watermark,
                "judged_at_ms": e.judged_at_ms,
                "candidates": candidates,
            })])
        }
        Format::Table => {
            let mut out = String::new();
            let _ = writeln!(out, "verdict: {}", verdict_text(e));
            let _ = writeln!(out, "decided by: {}", step_text(e.deciding_step));
            if let Some(w) = &e.watermark {
                let _ = writeln!(out, "watermark: {} {} {}", w.ts, rfc3339(w.ts), origin_text(w, topics));
            }
            if !e.candidates.is_empty() {
                let headers: Vec<&str> = std::iter::once("STANDING").chain(VALUE_HEADERS).chain(["LOCATION"]).collect();
                let rows = e
                    .candidates
                    .iter()
                    .map(|c| {
                        let mut cells = vec![standing_name(c.standing).to_owned()];
                        cells.extend(value_row(c, key.sort_key).cells(false, topics));
                        cells.push(location_text(c.location));
                        cells
                    })
                    .collect();
                out.push_str(&aligned(&headers, rows));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::{Origin, OriginKind, Ts, VersionEntry, VersionId};

    fn candidate(kind: OriginKind, source_id: u32, value: &str, standing: CandidateStanding) -> ExplainCandidate {
        let version = VersionId { ts: Ts::from_millis(1_795_651_200_000), origin: Origin { kind, source_id, seq: 0 } };
        let payload = Payload::Value { value: value.as_bytes().to_vec(), expires_at_ms: None };
        ExplainCandidate { entry: VersionEntry { version, payload }, location: VersionLocation::Segment(3), standing }
    }

    const KEY: ExplainedKey<'static> = ExplainedKey { table: "users", partition_key: "user:42", sort_key: "" };

    fn tie() -> Explanation {
        Explanation {
            verdict: ExplainVerdict::Visible,
            candidates: vec![
                candidate(OriginKind::Direct, 0, "direct", CandidateStanding::Winner),
                candidate(OriginKind::Bulk, 9, "bulk", CandidateStanding::Superseded),
            ],
            deciding_step: Some(RuleStep::TieRule),
            watermark: None,
            judged_at_ms: 1,
        }
    }

    #[test]
    fn a_tie_prints_its_verdict_its_step_and_each_version_where_it_lives() {
        let text = explanation(Format::Table, KEY, &tie(), &StreamTopics::NONE);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "verdict: visible: the winner below is the value");
        assert_eq!(lines[1], "decided by: tie rule (equal ts: origin kinds ranked by the table's tie_rule)");
        assert!(lines[2].starts_with("STANDING") && lines[2].ends_with("LOCATION"), "{text}");
        assert!(lines[3].starts_with("winner") && lines[3].contains("direct/0/0") && lines[3].ends_with("segment 3"));
        assert!(lines[4].starts_with("superseded") && lines[4].contains("bulk/9/0"), "{text}");
        assert_eq!(lines.len(), 5, "{text}");
    }

    #[test]
    fn json_is_one_object_with_the_verdict_step_and_candidates() {
        let json: Value = serde_json::from_str(explanation(Format::Json, KEY, &tie(), &StreamTopics::NONE).trim())
            .expect("one JSON object");
        assert_eq!(json["verdict"], "visible");
        assert_eq!(json["visible"], true);
        assert_eq!(json["deciding_step"], "tie_rule");
        assert_eq!(json["candidates"][1]["standing"], "superseded");
        assert_eq!(json["candidates"][1]["location"], json!({ "kind": "segment", "segment_id": 3 }));
        assert_eq!(json["candidates"][0]["origin"]["kind"], "direct");
    }

    #[test]
    fn an_expired_winner_names_its_expiry_and_no_versions_prints_no_table() {
        let mut expired = tie();
        expired.verdict = ExplainVerdict::Expired;
        expired.candidates[0].entry.payload = Payload::Value { value: b"v".to_vec(), expires_at_ms: Some(1_000) };
        let text = explanation(Format::Table, KEY, &expired, &StreamTopics::NONE);
        assert!(text.starts_with("verdict: not found: the winner expired at 1970-01-01T00:00:01"), "{text}");

        let none = Explanation {
            verdict: ExplainVerdict::NoVersions,
            candidates: Vec::new(),
            deciding_step: None,
            watermark: None,
            judged_at_ms: 0,
        };
        let text = explanation(Format::Table, KEY, &none, &StreamTopics::NONE);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("decided by: uncontested"), "{text}");
    }
}
