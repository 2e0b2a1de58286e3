//! Tables and their settings as the admin requests carry them. Owns the defaults a client
//! proposes; the server validates (a zero `max_versions`, a tie rule naming a kind twice).

use super::version::OriginKind;

/// How equal timestamps rank by origin: the kinds, highest first. The server accepts only a
/// permutation of the three kinds.
pub type TieRule = [OriginKind; 3];

/// A table's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSettings {
    /// Versions of each key to keep; at least 1. Default 3.
    pub max_versions: u32,
    /// Longest a superseded version is kept, milliseconds; `None` keeps it until
    /// `max_versions` pushes it out. Default `None`.
    pub version_retention_ms: Option<u64>,
    /// Time to live of writes that carry none, milliseconds; `None` means no expiry. Default
    /// `None`.
    pub default_ttl_ms: Option<u64>,
    /// Ranking of origins on equal timestamps, highest first. Default Direct, Stream, Bulk.
    pub tie_rule: TieRule,
    /// How long after its link a committed bulk load into the table stays out of compaction,
    /// so that its rollback still shows what it superseded, milliseconds; 0 means no window.
    /// Default 24 h ([`TableSettings::DEFAULT_ROLLBACK_WINDOW_MS`]).
    pub rollback_window_ms: u64,
}

impl TableSettings {
    /// The default tie rule: an online write beats a streamed one, which beats a bulk one.
    pub const DEFAULT_TIE_RULE: TieRule = [OriginKind::Direct, OriginKind::Stream, OriginKind::Bulk];
    /// The default rollback window, 24 h: the schema's default, so what a client that does not
    /// know the field gets.
    pub const DEFAULT_ROLLBACK_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;
}

impl Default for TableSettings {
    fn default() -> Self {
        Self {
            max_versions: 3,
            version_retention_ms: None,
            default_ttl_ms: None,
            tie_rule: Self::DEFAULT_TIE_RULE,
            rollback_window_ms: Self::DEFAULT_ROLLBACK_WINDOW_MS,
        }
    }
}

/// A table and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    /// The table's name.
    pub name: String,
    /// Its settings.
    pub settings: TableSettings,
    /// The id storage knows it by (what `nacre bulk build --table-id` takes); 0 from a server
    /// older than the field.
    pub id: u32,
}

/// Creates a table. Answered by [`crate::Reply::Table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTable {
    /// The new table's name.
    pub name: String,
    /// Its settings.
    pub settings: TableSettings,
}

/// Changes some of a table's settings. Answered by [`crate::Reply::Table`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlterTable {
    /// The table.
    pub name: String,
    /// A new `max_versions`, or `None` to keep it.
    pub max_versions: Option<u32>,
    /// `None` keeps the retention, `Some(None)` removes it, `Some(Some(ms))` sets it.
    pub version_retention_ms: Option<Option<u64>>,
    /// `None` keeps the default TTL, `Some(None)` removes it, `Some(Some(ms))` sets it.
    pub default_ttl_ms: Option<Option<u64>>,
    /// A new tie rule, or `None` to keep it.
    pub tie_rule: Option<TieRule>,
    /// A new rollback window, milliseconds (0: none), or `None` to keep it.
    pub rollback_window_ms: Option<u64>,
}

/// Drops a table and all its data. Answered by [`crate::Reply::TableDropped`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropTable {
    /// The table.
    pub name: String,
}
