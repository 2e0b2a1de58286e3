//! `Explain`: why one key reads as it does. The server's verdict, every retained version with
//! where it lives and what the ordering rule makes of it, and the rule step that decided
//! between the two greatest candidates. Plain data; the server computes it.

use super::read::{Key, VersionEntry};
use super::version::{Ts, VersionId};

/// Explains a read of one key. Answered by [`crate::Reply::Explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explain {
    /// The table.
    pub table: String,
    /// The key.
    pub key: Key,
    /// Explain the read as of this timestamp; `None` explains the latest.
    pub as_of: Option<Ts>,
}

impl Explain {
    /// An explanation of the latest read of `key`.
    pub fn new(table: impl Into<String>, key: Key) -> Explain {
        Explain { table: table.into(), key, as_of: None }
    }
}

/// The visible version, or why nothing is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainVerdict {
    /// The [`CandidateStanding::Winner`] is the visible value.
    Visible,
    /// No version is retained: never written, or collected (the server cannot tell which).
    NoVersions,
    /// Every retained version belongs to a withdrawn (rolled-back, or not yet committed) load.
    Withdrawn,
    /// The read is as of a time before every version it could pick.
    BeforeFirstVersion,
    /// The winner is ordered below the table's bulk-replace watermark.
    UnderWatermark,
    /// The winner is a tombstone.
    Tombstone,
    /// The winner's value expired at or before [`Explanation::judged_at_ms`].
    Expired,
}

/// The step of the ordering rule `(ts, kind_rank(tie_rule), source_id, seq)` that orders two
/// versions.
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
    /// The same identity twice (a redelivery): one version held in two places.
    SameIdentity,
}

/// Where a version lives in its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionLocation {
    /// The memtable taking writes.
    ActiveMemtable,
    /// A memtable frozen for a flush under way, by position from the oldest (0).
    FrozenMemtable(u32),
    /// A segment, by id.
    Segment(u64),
}

/// What the ordering rule makes of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateStanding {
    /// The greatest version the read may pick: visible unless the verdict says why not.
    Winner,
    /// Ordered below the winner.
    Superseded,
    /// Ordered below the bulk-replace watermark (and not the winner).
    UnderWatermark,
    /// A version of a withdrawn bulk load: never picked.
    Withdrawn,
    /// Stamped after an as-of read's time.
    AfterReadTime,
}

/// One retained version of the explained key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainCandidate {
    /// The version and its payload.
    pub entry: VersionEntry,
    /// Where it lives.
    pub location: VersionLocation,
    /// What the rule makes of it.
    pub standing: CandidateStanding,
}

/// Why a key reads as it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The visible version, or why there is none.
    pub verdict: ExplainVerdict,
    /// Every retained version, greatest first under the table's rule.
    pub candidates: Vec<ExplainCandidate>,
    /// The step that ordered the two greatest candidates the read may pick; `None` when there
    /// are fewer than two.
    pub deciding_step: Option<RuleStep>,
    /// The table-wide watermark in force, if any.
    pub watermark: Option<VersionId>,
    /// When expiry was judged, Unix milliseconds.
    pub judged_at_ms: u64,
}

impl Explanation {
    /// The visible candidate, if any.
    pub fn visible(&self) -> Option<&ExplainCandidate> {
        match self.verdict {
            ExplainVerdict::Visible => self.candidates.iter().find(|c| c.standing == CandidateStanding::Winner),
            _ => None,
        }
    }
}
