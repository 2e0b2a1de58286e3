//! The table catalog: names, ids and settings, persisted in `catalog.json`. Shard 0 owns the
//! authoritative copy and applies every change; the others receive copies. Storage only ever
//! sees table ids.

use crate::datadir::write_atomically;
use anyhow::{Context, Result};
use nacre_storage::{OriginKind, TableId, TableSettings, TieRule};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableEntry {
    /// The id storage knows it by; never reused.
    pub id: u32,
    /// Versions kept per key.
    pub max_versions: u32,
    /// Longest a superseded version is kept, milliseconds.
    pub version_retention_ms: Option<u64>,
    /// TTL for writes without one, milliseconds.
    pub default_ttl_ms: Option<u64>,
    /// Origin kinds, highest rank first: each of the three once.
    pub tie_rule: [KindName; 3],
    /// How long after its link a committed bulk load into the table is kept out of compaction,
    /// so its rollback shows again what it superseded, milliseconds; 0 is no window. Storage
    /// never sees it: the linker protects the loads (`bulk_link.rs`). A catalog written before
    /// the setting has none and reads as [`DEFAULT_ROLLBACK_WINDOW_MS`].
    #[serde(default = "default_rollback_window_ms")]
    pub rollback_window_ms: u64,
}

/// The rollback window of a table whose catalog entry predates the setting: 24 h, the default of
/// the daemon-wide `compaction.bulk_rollback_window_ms` it replaced (and the wire's default).
pub const DEFAULT_ROLLBACK_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

fn default_rollback_window_ms() -> u64 {
    DEFAULT_ROLLBACK_WINDOW_MS
}

/// An origin kind as `catalog.json` spells it; any other word fails the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KindName {
    /// `"bulk"`.
    Bulk,
    /// `"stream"`.
    Stream,
    /// `"direct"`.
    Direct,
}

impl From<OriginKind> for KindName {
    fn from(kind: OriginKind) -> KindName {
        match kind {
            OriginKind::Bulk => KindName::Bulk,
            OriginKind::Stream => KindName::Stream,
            OriginKind::Direct => KindName::Direct,
        }
    }
}

impl From<KindName> for OriginKind {
    fn from(name: KindName) -> OriginKind {
        match name {
            KindName::Bulk => OriginKind::Bulk,
            KindName::Stream => OriginKind::Stream,
            KindName::Direct => OriginKind::Direct,
        }
    }
}

/// Why `catalog.json` cannot be loaded; each names the file, and the field and value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not parse as written: an unknown field, a misspelt value, a wrong type.
    #[error("{path}: field `{field}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where in the file, as a path of fields (`tables.features.tie_rule[1]`).
        field: String,
        /// What is wrong, with the value found.
        message: String,
    },
    /// A table's tie rule names an origin kind twice.
    #[error("{path}: field `tables.{table}.tie_rule`: {value:?} must name bulk, stream and direct once each")]
    TieRule {
        /// The file.
        path: PathBuf,
        /// The table.
        table: String,
        /// The rule found.
        value: [KindName; 3],
    },
    /// A table's id is not below `next_id`: a table created next would take an id already used,
    /// and a dropped table's data could show again under it.
    #[error(
        "{path}: field `tables.{table}.id`: {id} must be below `next_id` ({next_id}); set `next_id` above every table's id"
    )]
    IdNotBelowNext {
        /// The file.
        path: PathBuf,
        /// The table.
        table: String,
        /// Its id.
        id: u32,
        /// The `next_id` found.
        next_id: u32,
    },
}

/// One topic of a source, and the stream id its versions' origins carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTopic {
    /// The Kafka topic.
    pub topic: String,
    /// Never reused: a streamed version's origin `source_id` is `stream_id << 16 | partition`.
    pub stream_id: u16,
}

/// A Kafka source: topics feeding one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    /// The table it writes to.
    pub table: String,
    /// Its topics.
    pub topics: Vec<StreamTopic>,
    /// librdkafka's `bootstrap.servers`.
    pub brokers: String,
    /// Where bad messages are copied, if anywhere.
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// librdkafka settings, passed through as given.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Removed: no longer consumed, kept so that lineage still names its topics.
    #[serde(default)]
    pub retired: bool,
}

/// Every table and source, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Tables by name.
    pub tables: BTreeMap<String, TableEntry>,
    /// The next table id.
    pub next_id: u32,
    /// Kafka sources by name, retired ones included.
    #[serde(default)]
    pub sources: BTreeMap<String, SourceEntry>,
    /// The next stream id (one per topic of a source, never reused).
    #[serde(default = "first_stream_id")]
    pub next_stream_id: u32,
}

fn first_stream_id() -> u32 {
    1
}

impl TableEntry {
    /// A table entry with `id`, storage `settings` and the daemon's `rollback_window_ms`.
    pub fn new(id: u32, settings: &TableSettings, rollback_window_ms: u64) -> TableEntry {
        TableEntry {
            id,
            max_versions: settings.max_versions,
            version_retention_ms: settings.version_retention_ms,
            default_ttl_ms: settings.default_ttl_ms,
            tie_rule: settings.tie_rule.highest_first().map(KindName::from),
            rollback_window_ms,
        }
    }

    /// The storage id.
    pub fn table_id(&self) -> TableId {
        TableId(self.id)
    }

    /// The tie rule, if the three kinds are a permutation.
    fn tie_rule(&self) -> Option<TieRule> {
        TieRule::new(self.tie_rule.map(OriginKind::from))
    }

    /// The settings as storage takes them.
    pub fn settings(&self) -> TableSettings {
        // Entries come from a TieRule (`new`) or from a load that checked the rule.
        let tie_rule = self.tie_rule().expect("tie rules are checked when a catalog is loaded");
        TableSettings {
            max_versions: self.max_versions,
            version_retention_ms: self.version_retention_ms,
            default_ttl_ms: self.default_ttl_ms,
            tie_rule,
        }
    }
}

impl Catalog {
    /// The catalog file in `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join("catalog.json")
    }

    /// Loads the catalog, or an empty one if there is none yet. A file that does not parse
    /// exactly as written (an unknown field, a misspelt tie rule) is refused, never read with
    /// defaults in its place: a default tie rule would change which values are visible. Only a
    /// field added after catalogs were first written may be absent, and reads as what the
    /// daemon did before it (`rollback_window_ms`: 24 h).
    pub fn load(root: &Path) -> std::result::Result<Catalog, CatalogError> {
        let path = Self::path(root);
        if !path.exists() {
            return Ok(Catalog { tables: BTreeMap::new(), next_id: 1, sources: BTreeMap::new(), next_stream_id: 1 });
        }
        let text =
            std::fs::read_to_string(&path).map_err(|source| CatalogError::Read { path: path.clone(), source })?;
        Self::parse(&text, &path)
    }

    fn parse(text: &str, path: &Path) -> std::result::Result<Catalog, CatalogError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let catalog: Catalog = serde_path_to_error::deserialize(de).map_err(|e| CatalogError::Parse {
            path: path.to_path_buf(),
            field: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        for (name, table) in &catalog.tables {
            if table.tie_rule().is_none() {
                return Err(CatalogError::TieRule {
                    path: path.to_path_buf(),
                    table: name.clone(),
                    value: table.tie_rule,
                });
            }
            if table.id >= catalog.next_id {
                return Err(CatalogError::IdNotBelowNext {
                    path: path.to_path_buf(),
                    table: name.clone(),
                    id: table.id,
                    next_id: catalog.next_id,
                });
            }
        }
        Ok(catalog)
    }

    /// Writes the catalog durably.
    pub fn save(&self, root: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).context("encoding the catalog")?;
        write_atomically(&Self::path(root), &bytes)
    }

    /// The table named `name`.
    pub fn get(&self, name: &str) -> Option<&TableEntry> {
        self.tables.get(name)
    }

    /// The ids of tables dropped: every id given out (ids start at 1 and are never reused) that
    /// no table has now.
    pub fn dropped_table_ids(&self) -> impl Iterator<Item = TableId> + '_ {
        let live: BTreeSet<u32> = self.tables.values().map(|t| t.id).collect();
        (1..self.next_id).filter(move |id| !live.contains(id)).map(TableId)
    }

    /// Tells `engine` every table's settings and every dropped table's id.
    pub fn install_on<D: nacre_storage::io::Disk>(&self, engine: &nacre_storage::Engine<D>) {
        for table in self.tables.values() {
            engine.define_table(table.table_id(), table.settings());
        }
        for id in self.dropped_table_ids() {
            engine.drop_table(id);
        }
    }

    /// The sources being consumed (not retired), by name.
    pub fn active_sources(&self) -> impl Iterator<Item = (&String, &SourceEntry)> {
        self.sources.iter().filter(|(_, s)| !s.retired)
    }

    /// The stream id for `topic` of source `name`: the one it had, if the source (even retired)
    /// already read that topic, else a new one. `None` once 65,535 are used.
    pub fn stream_id_for(&mut self, name: &str, topic: &str) -> Option<u16> {
        let known = self.sources.get(name).and_then(|s| s.topics.iter().find(|t| t.topic == topic));
        if let Some(t) = known {
            return Some(t.stream_id);
        }
        let id = u16::try_from(self.next_stream_id).ok()?;
        self.next_stream_id += 1;
        Some(id)
    }

    /// The topic and source that stream id `stream_id` belongs to.
    pub fn stream(&self, stream_id: u16) -> Option<(&str, &StreamTopic)> {
        self.sources
            .iter()
            .find_map(|(name, s)| s.topics.iter().find(|t| t.stream_id == stream_id).map(|t| (name.as_str(), t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::load(dir.path()).expect("empty");
        let bulk_first = TieRule::new([OriginKind::Bulk, OriginKind::Stream, OriginKind::Direct]).expect("permutation");
        let settings = TableSettings { max_versions: 5, tie_rule: bulk_first, ..TableSettings::default() };
        c.tables.insert("features".into(), TableEntry::new(1, &settings, 0));
        c.next_id = 2;
        let id = c.stream_id_for("clicks", "clicks-topic").expect("an id");
        c.sources.insert(
            "clicks".into(),
            SourceEntry {
                table: "features".into(),
                topics: vec![StreamTopic { topic: "clicks-topic".into(), stream_id: id }],
                brokers: "b:9092".into(),
                dead_letter_topic: None,
                settings: BTreeMap::new(),
                retired: true,
            },
        );
        assert_eq!(c.stream_id_for("clicks", "clicks-topic"), Some(id), "a topic keeps its stream id");
        assert_ne!(c.stream_id_for("clicks", "other"), Some(id), "a new topic gets a new one");
        assert_eq!(c.stream(id).map(|(n, t)| (n, t.topic.as_str())), Some(("clicks", "clicks-topic")));
        assert_eq!(c.active_sources().count(), 0, "retired sources are not consumed");
        c.save(dir.path()).expect("save");
        let back = Catalog::load(dir.path()).expect("load");
        assert_eq!(back, c);
        assert_eq!(back.get("features").expect("present").settings(), settings);
        assert_eq!(back.get("features").expect("present").rollback_window_ms, 0, "0 (no window) is kept");
    }

    fn refusal(text: &str) -> String {
        match Catalog::parse(text, Path::new("/d/catalog.json")) {
            Ok(c) => panic!("{text} was accepted as {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    const TABLE: &str = r#""features": {"id": 1, "max_versions": 3, "version_retention_ms": null, "default_ttl_ms": null, "tie_rule": RULE}"#;

    fn catalog_with(table: &str) -> String {
        format!(r#"{{"tables": {{{table}}}, "next_id": 2}}"#)
    }

    #[test]
    fn a_misspelt_tie_rule_fails_the_load_naming_the_file_field_and_value() {
        let good = catalog_with(&TABLE.replace("RULE", r#"["direct", "stream", "bulk"]"#));
        Catalog::parse(&good, Path::new("c.json")).expect("the spelling nacred writes loads");
        let e = refusal(&catalog_with(&TABLE.replace("RULE", r#"["direct", "strem", "bulk"]"#)));
        for part in ["/d/catalog.json", "tables.features.tie_rule[1]", "strem"] {
            assert!(e.contains(part), "{e:?} does not name {part}");
        }
        let e = refusal(&catalog_with(&TABLE.replace("RULE", r#"["direct", "direct", "bulk"]"#)));
        assert!(e.contains("tables.features.tie_rule") && e.contains("Direct"), "{e:?}");
    }

    /// A catalog written before tables had a rollback window (every line of TABLE, none of them
    /// `rollback_window_ms`) still loads, each table with the 24 h the daemon used for all.
    #[test]
    fn a_table_entry_without_a_rollback_window_reads_as_24_hours() {
        let old = catalog_with(&TABLE.replace("RULE", r#"["direct", "stream", "bulk"]"#));
        assert!(!old.contains("rollback_window_ms"));
        let c = Catalog::parse(&old, Path::new("c.json")).expect("an old catalog loads");
        assert_eq!(c.get("features").expect("present").rollback_window_ms, 86_400_000);
        let set = catalog_with(&TABLE.replace("RULE", r#"["direct", "stream", "bulk"], "rollback_window_ms": 5"#));
        let c = Catalog::parse(&set, Path::new("c.json")).expect("loads");
        assert_eq!(c.get("features").expect("present").rollback_window_ms, 5);
        let e =
            refusal(&catalog_with(&TABLE.replace("RULE", r#"["direct", "stream", "bulk"], "rollback_window_ms": -1"#)));
        assert!(e.contains("tables.features.rollback_window_ms"), "{e:?}");
    }

    #[test]
    fn an_unknown_field_fails_the_load_naming_it() {
        let table = TABLE.replace("RULE", r#"["direct", "stream", "bulk"], "max_version": 5"#);
        let e = refusal(&catalog_with(&table));
        assert!(e.contains("max_version") && e.contains("tables.features"), "{e:?}");
        let e = refusal(r#"{"tables": {}, "next_id": 1, "colour": "blue"}"#);
        assert!(e.contains("colour"), "{e:?}");
    }

    #[test]
    fn a_table_id_not_below_next_id_fails_the_load_and_dropped_ids_are_the_gaps() {
        let good = catalog_with(&TABLE.replace("RULE", r#"["direct", "stream", "bulk"]"#));
        let at_next = good.replace(r#""next_id": 2"#, r#""next_id": 1"#);
        assert_ne!(good, at_next, "the fixture names next_id 2");
        let e = refusal(&at_next);
        assert!(e.contains("tables.features.id") && e.contains("next_id"), "{e:?}");
        let later = good.replace(r#""next_id": 2"#, r#""next_id": 5"#);
        let c = Catalog::parse(&later, Path::new("c.json")).expect("ids below next_id load");
        let id = c.tables["features"].id;
        let dropped: Vec<u32> = c.dropped_table_ids().map(|t| t.0).collect();
        assert_eq!(dropped, (1..5).filter(|i| *i != id).collect::<Vec<_>>());
    }
}
