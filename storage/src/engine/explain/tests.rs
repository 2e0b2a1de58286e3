//! The pure decision: every verdict, every rule step, and agreement with `get`'s choice.

use super::*;
use crate::ids::{SegmentId, Ts};
use crate::version::{Origin, OriginKind, TieRule};
use proptest::prelude::*;

const MS: u64 = 1_000;

fn id(ms: u64, kind: OriginKind, source_id: u32, seq: u64) -> VersionId {
    VersionId { ts: Ts::from_millis(ms), origin: Origin { kind, source_id, seq } }
}

fn value(id: VersionId, bytes: &str) -> Found {
    let payload = Payload::Value { value: bytes.as_bytes().to_vec(), expires_at_ms: None };
    Found { version: Version { id, payload }, location: Location::ActiveMemtable, withdrawn: false }
}

fn expiring(id: VersionId, bytes: &str, expires_at_ms: u64) -> Found {
    let payload = Payload::Value { value: bytes.as_bytes().to_vec(), expires_at_ms: Some(expires_at_ms) };
    Found { version: Version { id, payload }, location: Location::ActiveMemtable, withdrawn: false }
}

fn tombstone(id: VersionId) -> Found {
    Found { version: Version { id, payload: Payload::Tombstone }, location: Location::ActiveMemtable, withdrawn: false }
}

fn at(found: Found, location: Location) -> Found {
    Found { location, ..found }
}

fn withdrawn(found: Found) -> Found {
    Found { withdrawn: true, ..found }
}

fn run(found: Vec<Found>, watermark: Option<Watermark>, read: ReadAt) -> Explanation {
    explain(found, &TableSettings::default(), watermark, read, 10 * MS)
}

fn latest(found: Vec<Found>) -> Explanation {
    run(found, None, ReadAt::Latest)
}

fn standings(e: &Explanation) -> Vec<Standing> {
    e.candidates.iter().map(|c| c.standing).collect()
}

fn visible_bytes(e: &Explanation) -> Option<Vec<u8>> {
    let Verdict::Visible(i) = e.verdict else { return None };
    match &e.candidates[i].version.payload {
        Payload::Value { value, .. } => Some(value.clone()),
        Payload::Tombstone => panic!("a tombstone judged visible"),
    }
}

#[test]
fn no_versions_is_not_found_with_nothing_to_decide() {
    let e = latest(Vec::new());
    assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::NoVersions));
    assert_eq!(e.deciding_step, None);
    assert!(e.candidates.is_empty());
}

#[test]
fn a_single_value_is_visible_uncontested() {
    let e = latest(vec![value(id(5, OriginKind::Direct, 0, 1), "a")]);
    assert_eq!(e.verdict, Verdict::Visible(0));
    assert_eq!(e.deciding_step, None);
    assert_eq!(standings(&e), [Standing::Winner]);
}

#[test]
fn a_newer_tombstone_wins_and_hides_the_value() {
    let e = latest(vec![value(id(5, OriginKind::Direct, 0, 1), "a"), tombstone(id(6, OriginKind::Direct, 0, 2))]);
    assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::Tombstone));
    assert_eq!(e.deciding_step, Some(RuleStep::Ts));
    assert_eq!(standings(&e), [Standing::Winner, Standing::Superseded]);
    assert_eq!(e.candidates[0].version.payload, Payload::Tombstone);
}

#[test]
fn an_expired_winner_is_not_found_and_says_when_it_expired() {
    // Expiry at exactly the judging time counts as expired, as `is_dead_at` says.
    let e = latest(vec![
        value(id(5, OriginKind::Direct, 0, 1), "old"),
        expiring(id(6, OriginKind::Direct, 0, 2), "new", 10 * MS),
    ]);
    assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::Expired { expires_at_ms: 10 * MS }));
    assert_eq!(e.judged_at_ms, 10 * MS);
    // An older, unexpired value does not show through an expired winner.
    assert_eq!(visible_bytes(&e), None);
    let later = latest(vec![expiring(id(6, OriginKind::Direct, 0, 2), "new", 10 * MS + 1)]);
    assert_eq!(visible_bytes(&later), Some(b"new".to_vec()));
}

#[test]
fn an_as_of_read_judges_expiry_at_its_bound() {
    let found = vec![expiring(id(6, OriginKind::Direct, 0, 2), "v", 8 * MS)];
    let before_expiry = run(found.clone(), None, ReadAt::AsOf(Ts::from_millis(7 * MS)));
    assert_eq!(before_expiry.judged_at_ms, 7 * MS);
    assert_eq!(before_expiry.verdict, Verdict::Visible(0));
    let after = run(found, None, ReadAt::AsOf(Ts::from_millis(9 * MS)));
    assert_eq!(after.verdict, Verdict::NotFound(NotFoundReason::Expired { expires_at_ms: 8 * MS }));
}

#[test]
fn as_of_before_every_version_is_not_found_and_marks_them_after_the_read() {
    let found = vec![value(id(5, OriginKind::Direct, 0, 1), "a"), value(id(6, OriginKind::Direct, 0, 2), "b")];
    let e = run(found, None, ReadAt::AsOf(Ts::from_millis(4)));
    assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::BeforeFirstVersion));
    assert_eq!(standings(&e), [Standing::AfterReadTime, Standing::AfterReadTime]);
    assert_eq!(e.deciding_step, None);
}

#[test]
fn as_of_between_versions_picks_the_older_one() {
    let found = vec![value(id(5, OriginKind::Direct, 0, 1), "a"), value(id(6, OriginKind::Direct, 0, 2), "b")];
    let e = run(found, None, ReadAt::AsOf(Ts::from_millis(5)));
    assert_eq!(visible_bytes(&e), Some(b"a".to_vec()));
    assert_eq!(standings(&e), [Standing::AfterReadTime, Standing::Winner]);
}

#[test]
fn a_winner_under_the_replace_watermark_is_not_found() {
    let mark = Watermark { point: id(7, OriginKind::Bulk, 3, 0) };
    let found = vec![value(id(5, OriginKind::Direct, 0, 1), "a"), value(id(2, OriginKind::Stream, 1, 9), "s")];
    let e = run(found, Some(mark), ReadAt::Latest);
    assert_eq!(e.verdict, Verdict::NotFound(NotFoundReason::UnderWatermark));
    assert_eq!(standings(&e), [Standing::Winner, Standing::UnderWatermark]);
    assert_eq!(e.watermark, Some(mark));
    // A version above the watermark stays visible, and what it beat shows as under the mark.
    let newer = run(
        vec![value(id(5, OriginKind::Direct, 0, 1), "a"), value(id(8, OriginKind::Stream, 1, 9), "s")],
        Some(mark),
        ReadAt::Latest,
    );
    assert_eq!(visible_bytes(&newer), Some(b"s".to_vec()));
    assert_eq!(standings(&newer), [Standing::Winner, Standing::UnderWatermark]);
}

#[test]
fn versions_of_a_withdrawn_load_never_win() {
    let load = id(9, OriginKind::Bulk, 4, 0);
    let only_withdrawn = latest(vec![withdrawn(at(value(load, "bulk"), Location::Segment(SegmentId(12))))]);
    assert_eq!(only_withdrawn.verdict, Verdict::NotFound(NotFoundReason::Withdrawn));
    assert_eq!(standings(&only_withdrawn), [Standing::Withdrawn]);
    assert_eq!(only_withdrawn.candidates[0].location, Location::Segment(SegmentId(12)));

    let under = value(id(5, OriginKind::Direct, 0, 1), "direct");
    let e = latest(vec![withdrawn(value(load, "bulk")), under]);
    assert_eq!(visible_bytes(&e), Some(b"direct".to_vec()));
    // Still listed first (greatest under the rule), but withdrawn; nothing contests the winner.
    assert_eq!(standings(&e), [Standing::Withdrawn, Standing::Winner]);
    assert_eq!(e.verdict, Verdict::Visible(1));
    assert_eq!(e.deciding_step, None);
}

#[test]
fn a_three_way_tie_on_equal_ts_is_decided_by_the_tie_rule() {
    let ts = 7;
    let found = vec![
        at(value(id(ts, OriginKind::Bulk, 3, 0), "bulk"), Location::Segment(SegmentId(4))),
        at(value(id(ts, OriginKind::Stream, 1 << 16, 42), "stream"), Location::FrozenMemtable { index: 0 }),
        value(id(ts, OriginKind::Direct, 0, 1), "direct"),
    ];
    let e = latest(found.clone());
    assert_eq!(visible_bytes(&e), Some(b"direct".to_vec()));
    assert_eq!(e.deciding_step, Some(RuleStep::TieRule));
    let kinds: Vec<OriginKind> = e.candidates.iter().map(|c| c.version.id.origin.kind).collect();
    assert_eq!(kinds, [OriginKind::Direct, OriginKind::Stream, OriginKind::Bulk]);
    assert_eq!(standings(&e), [Standing::Winner, Standing::Superseded, Standing::Superseded]);
    let locations: Vec<Location> = e.candidates.iter().map(|c| c.location).collect();
    assert_eq!(
        locations,
        [Location::ActiveMemtable, Location::FrozenMemtable { index: 0 }, Location::Segment(SegmentId(4))]
    );

    // A table ranking bulk highest lets the bulk version win the same tie.
    let bulk_first = TableSettings {
        tie_rule: TieRule::new([OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct]).expect("a permutation"),
        ..TableSettings::default()
    };
    let e = explain(found, &bulk_first, None, ReadAt::Latest, 10 * MS);
    assert_eq!(visible_bytes(&e), Some(b"bulk".to_vec()));
    assert_eq!(e.deciding_step, Some(RuleStep::TieRule));
}

#[test]
fn equal_ts_and_kind_are_decided_by_source_then_seq() {
    let source =
        latest(vec![value(id(7, OriginKind::Stream, 2, 1), "two"), value(id(7, OriginKind::Stream, 5, 0), "five")]);
    assert_eq!(visible_bytes(&source), Some(b"five".to_vec()));
    assert_eq!(source.deciding_step, Some(RuleStep::Source));

    let seq =
        latest(vec![value(id(7, OriginKind::Direct, 0, 9), "nine"), value(id(7, OriginKind::Direct, 0, 3), "three")]);
    assert_eq!(visible_bytes(&seq), Some(b"nine".to_vec()));
    assert_eq!(seq.deciding_step, Some(RuleStep::Seq));
}

#[test]
fn one_version_in_two_places_is_the_same_identity() {
    let redelivered = id(7, OriginKind::Stream, 1, 5);
    let e = latest(vec![value(redelivered, "v"), at(value(redelivered, "v"), Location::Segment(SegmentId(2)))]);
    assert_eq!(visible_bytes(&e), Some(b"v".to_vec()));
    assert_eq!(e.deciding_step, Some(RuleStep::SameIdentity));
    assert_eq!(e.candidates.len(), 2);
}

#[test]
fn a_step_is_named_for_each_field_of_the_order() {
    let a = id(1, OriginKind::Bulk, 1, 1);
    assert_eq!(RuleStep::between(&a, &id(2, OriginKind::Bulk, 1, 1)), RuleStep::Ts);
    assert_eq!(RuleStep::between(&a, &id(1, OriginKind::Direct, 1, 1)), RuleStep::TieRule);
    assert_eq!(RuleStep::between(&a, &id(1, OriginKind::Bulk, 2, 1)), RuleStep::Source);
    assert_eq!(RuleStep::between(&a, &id(1, OriginKind::Bulk, 1, 2)), RuleStep::Seq);
    assert_eq!(RuleStep::between(&a, &a), RuleStep::SameIdentity);
}

#[test]
fn candidates_come_greatest_first_whatever_the_input_order() {
    let found = vec![
        value(id(3, OriginKind::Direct, 0, 1), "c"),
        value(id(9, OriginKind::Bulk, 0, 0), "a"),
        tombstone(id(5, OriginKind::Stream, 0, 0)),
    ];
    let mut reversed = found.clone();
    reversed.reverse();
    let (e, r) = (latest(found), latest(reversed));
    assert_eq!(e, r);
    let ts: Vec<u64> = e.candidates.iter().map(|c| c.version.id.ts.millis()).collect();
    assert_eq!(ts, [9, 5, 3]);
}

fn arbitrary_found() -> impl Strategy<Value = Found> {
    let kinds = [OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct];
    (1u64..6, 0usize..3, 0u32..3, 0u64..3, prop::option::of(prop::option::of(1u64..12)), any::<bool>()).prop_map(
        move |(ms, kind, source_id, seq, payload, withdrawn)| {
            let payload = match payload {
                None => Payload::Tombstone,
                Some(expires_at_ms) => {
                    Payload::Value { value: vec![seq as u8], expires_at_ms: expires_at_ms.map(|e| e * MS / 4) }
                }
            };
            // Only bulk versions can belong to a load.
            let withdrawn = withdrawn && kinds[kind] == OriginKind::Bulk;
            Found {
                version: Version { id: id(ms, kinds[kind], source_id, seq), payload },
                location: Location::ActiveMemtable,
                withdrawn,
            }
        },
    )
}

proptest! {
    #![proptest_config(nacre_testkit::proptest_config(module_path!(), 512))]

    /// What `explain` calls visible is exactly what `get`'s choice over the versions it reads
    /// (those of withdrawn loads left out) returns.
    #[test]
    fn explain_agrees_with_get(
        found in prop::collection::vec(arbitrary_found(), 0..8),
        bound in prop::option::of(0u64..7),
        mark in prop::option::of((1u64..6, 0u32..3)),
    ) {
        let read = bound.map_or(ReadAt::Latest, |b| ReadAt::AsOf(Ts::from_millis(b)));
        let watermark = mark.map(|(ms, load)| Watermark { point: id(ms, OriginKind::Bulk, load, 0) });
        let settings = TableSettings::default();
        let now_ms = 2 * MS;
        let e = explain(found.clone(), &settings, watermark, read, now_ms);
        let read_by_get: Vec<Version> = found.iter().filter(|f| !f.withdrawn).map(|f| f.version.clone()).collect();
        let row = super::super::read::resolve(&read_by_get, &settings, watermark, read, now_ms);
        let shown = match e.verdict {
            Verdict::Visible(i) => Some(e.candidates[i].version.clone()),
            Verdict::NotFound(_) => None,
        };
        prop_assert_eq!(shown.map(|v| v.id), row.map(|r| r.id));
        prop_assert_eq!(e.candidates.len(), found.len());
        prop_assert!(e.candidates.iter().filter(|c| c.standing == Standing::Winner).count() <= 1);
    }
}
