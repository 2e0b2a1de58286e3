//! `explain`: why a key reads as it does. [`explain`] is the pure decision: given every retained
//! version of a key with where it lives, the table's settings, the watermark in force, the read's
//! bound and the time, it says which version wins under the ordering rule, which step of the rule
//! decided between the top two, and, when nothing is visible, why. [`Engine::explain`] gathers
//! the versions. It reads exactly what `get` reads, plus what `get` skips on purpose (versions
//! of withdrawn loads, versions after an as-of bound), so the answer can name them; it must
//! never disagree with `get` about what is visible.
//!
//! A version compaction dropped (garbage collection: beyond `max_versions`, past retention, a
//! reclaimed tombstone with what it hid, a rolled-back load's versions) leaves no trace: the
//! engine cannot tell it from a version never written, so `explain` reports what is retained
//! and never claims a version was collected.

use super::Engine;
use super::read::{ReadAt, visible};
use crate::error::Result;
use crate::ids::SegmentId;
use crate::io::Disk;
use crate::options::TableSettings;
use crate::record::EntryRef;
use crate::record::KeyRef;
use crate::version::{Payload, Version, VersionId, Watermark};

/// Where a version lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The memtable taking writes.
    ActiveMemtable,
    /// A memtable frozen for a flush under way; `index` counts from the oldest, 0 first.
    FrozenMemtable {
        /// Position among the frozen memtables, oldest first.
        index: u32,
    },
    /// A live segment.
    Segment(SegmentId),
}

/// A retained version as `explain` is given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The version.
    pub version: Version,
    /// Where it lives.
    pub location: Location,
    /// True if it belongs to a bulk load reads do not see (rolled back, or not yet committed).
    pub withdrawn: bool,
}

/// What the ordering rule makes of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The greatest version the read may pick: visible, unless the verdict says why not.
    Winner,
    /// Ordered below the winner.
    Superseded,
    /// Ordered below the bulk-replace watermark in force (and not the winner).
    UnderWatermark,
    /// A version of a withdrawn bulk load: never picked.
    Withdrawn,
    /// Stamped after an as-of read's bound: not picked by that read.
    AfterReadTime,
}

/// One candidate, in the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The version.
    pub version: Version,
    /// Where it lives.
    pub location: Location,
    /// What the rule makes of it.
    pub standing: Standing,
}

/// Why a key reads as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFoundReason {
    /// No version is retained: never written, or (the engine cannot tell) collected.
    NoVersions,
    /// Every retained version belongs to a withdrawn bulk load.
    Withdrawn,
    /// An as-of read before the first retained version that could be picked.
    BeforeFirstVersion,
    /// The winner is ordered below the bulk-replace watermark in force.
    UnderWatermark,
    /// The winner is a tombstone.
    Tombstone,
    /// The winner's value expired at or before the time expiry was judged at.
    Expired {
        /// When the value expired.
        expires_at_ms: u64,
    },
}

/// The answer's headline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The candidate at this index is the visible value.
    Visible(usize),
    /// Nothing is visible, for this reason.
    NotFound(NotFoundReason),
}

/// The step of the ordering rule `(ts, kind_rank(tie_rule), source_id, seq)` that tells two
/// versions apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleStep {
    /// Different timestamps.
    Ts,
    /// Equal `ts`, different origin kinds, ranked by the table's tie rule.
    TieRule,
    /// Equal `ts` and kind: the greater `source_id` wins.
    Source,
    /// Equal `ts`, kind and source: the greater `seq` wins.
    Seq,
    /// The same identity twice (a redelivery or replay): one version, held in two places.
    SameIdentity,
}

impl RuleStep {
    /// The step that orders `a` and `b`.
    pub fn between(a: &VersionId, b: &VersionId) -> RuleStep {
        if a.ts != b.ts {
            RuleStep::Ts
        } else if a.origin.kind != b.origin.kind {
            RuleStep::TieRule
        } else if a.origin.source_id != b.origin.source_id {
            RuleStep::Source
        } else if a.origin.seq != b.origin.seq {
            RuleStep::Seq
        } else {
            RuleStep::SameIdentity
        }
    }
}

/// Why a key reads as it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Every retained version, greatest first under the table's rule (withdrawn ones and those
    /// after the read's bound included).
    pub candidates: Vec<Candidate>,
    /// The visible candidate, or why there is none.
    pub verdict: Verdict,
    /// The step that decided between the two greatest candidates the read may pick; `None`
    /// when fewer than two.
    pub deciding_step: Option<RuleStep>,
    /// The table watermark in force, if any.
    pub watermark: Option<Watermark>,
    /// The time expiry was judged at, in milliseconds.
    pub judged_at_ms: u64,
}

/// Explains a read of one key: `found` is every retained version (any order, duplicates
/// allowed, each with its location), `watermark` the table's watermark in force at the read's
/// bound. Pure; agrees with `get` on what is visible.
pub fn explain(
    mut found: Vec<Found>,
    settings: &TableSettings,
    watermark: Option<Watermark>,
    at: ReadAt,
    now_ms: u64,
) -> Explanation {
    let rule = settings.tie_rule;
    found.sort_by(|a, b| b.version.rule_cmp(&a.version, rule));
    let bound = at.bound();
    let judged_at_ms = at.expiry_ms(now_ms);
    let pickable = |f: &Found| !f.withdrawn && f.version.id.ts <= bound;
    // Sorted greatest first, so the first pickable candidate is the winner: the same one
    // `read::visible` picks (checked against it below and by a property test).
    let mut picks = found.iter().enumerate().filter(|(_, f)| pickable(f)).map(|(i, _)| i);
    let winner = picks.next();
    let deciding_step =
        winner.zip(picks.next()).map(|(a, b)| RuleStep::between(&found[a].version.id, &found[b].version.id));
    let verdict = verdict(&found, winner, settings, watermark, at, judged_at_ms);
    let hidden = |id: &VersionId| watermark.is_some_and(|w| w.hides(id, rule));
    let candidates = found
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let standing = if f.withdrawn {
                Standing::Withdrawn
            } else if f.version.id.ts > bound {
                Standing::AfterReadTime
            } else if Some(i) == winner {
                Standing::Winner
            } else if hidden(&f.version.id) {
                Standing::UnderWatermark
            } else {
                Standing::Superseded
            };
            Candidate { version: f.version, location: f.location, standing }
        })
        .collect();
    Explanation { candidates, verdict, deciding_step, watermark, judged_at_ms }
}

/// The verdict on `found` (sorted greatest first) whose greatest pickable version is `winner`.
fn verdict(
    found: &[Found],
    winner: Option<usize>,
    settings: &TableSettings,
    watermark: Option<Watermark>,
    at: ReadAt,
    judged_at_ms: u64,
) -> Verdict {
    let Some(i) = winner else {
        let reason = if found.is_empty() {
            NotFoundReason::NoVersions
        } else if found.iter().all(|f| f.withdrawn) {
            NotFoundReason::Withdrawn
        } else {
            NotFoundReason::BeforeFirstVersion
        };
        return Verdict::NotFound(reason);
    };
    let best = &found[i].version;
    let verdict = if watermark.is_some_and(|w| w.hides(&best.id, settings.tie_rule)) {
        Verdict::NotFound(NotFoundReason::UnderWatermark)
    } else {
        match &best.payload {
            Payload::Tombstone => Verdict::NotFound(NotFoundReason::Tombstone),
            Payload::Value { expires_at_ms: Some(e), .. } if *e <= judged_at_ms => {
                Verdict::NotFound(NotFoundReason::Expired { expires_at_ms: *e })
            }
            Payload::Value { .. } => Verdict::Visible(i),
        }
    };
    debug_assert_eq!(
        matches!(verdict, Verdict::Visible(_)),
        agrees_with_read(found, settings, watermark, at, judged_at_ms),
        "explain and get disagree on whether the key is visible"
    );
    verdict
}

/// True if `get`'s own choice over the same pickable versions is a visible value.
fn agrees_with_read(
    found: &[Found],
    settings: &TableSettings,
    watermark: Option<Watermark>,
    at: ReadAt,
    judged_at_ms: u64,
) -> bool {
    let versions: Vec<Version> = found.iter().filter(|f| !f.withdrawn).map(|f| f.version.clone()).collect();
    // `judged_at_ms` is already `at.expiry_ms(now)`, and `expiry_ms` of it is itself.
    visible(&versions, settings, watermark, at, judged_at_ms)
        .is_some_and(|i| !matches!(versions[i].payload, Payload::Tombstone))
}

impl<D: Disk> Engine<D> {
    /// Why `key` reads as it does at `at`: every retained version with where it lives (the
    /// versions of withdrawn loads, in their own segments or merged, included and marked), the
    /// winner and the rule step that chose it, or why nothing is visible.
    pub async fn explain(&self, key: KeyRef<'_>, at: ReadAt) -> Result<Explanation> {
        let settings = self.table(key.table)?;
        let mut found = self.memtable_found(key);
        // Every live segment, hidden loads' too: the read view leaves those out, and explain
        // must name what it leaves out.
        let segments = self.segments.borrow().clone();
        let view = self.read_view(key.table, settings.tie_rule, at.bound());
        for segment in segments.iter() {
            let location = Location::Segment(segment.info().id);
            for entry in segment.versions_of(key, &self.cache).await? {
                let withdrawn = view.withdrawn(&entry.version.id);
                found.push(Found { version: entry.version, location, withdrawn });
            }
        }
        Ok(explain(found, &settings, view.watermark, at, self.clock.now_ms()))
    }

    fn memtable_found(&self, key: KeyRef<'_>) -> Vec<Found> {
        let mem = self.mem.borrow();
        let found = |location| move |e: EntryRef<'_>| Found { version: e.version(), location, withdrawn: false };
        let mut out: Vec<Found> =
            mem.active.versions_of(key).into_iter().map(found(Location::ActiveMemtable)).collect();
        for (index, f) in (0u32..).zip(&mem.frozen) {
            out.extend(f.table.versions_of(key).into_iter().map(found(Location::FrozenMemtable { index })));
        }
        out
    }
}

#[cfg(test)]
mod tests;
