//! The table catalog: names, ids and settings, persisted in `catalog.json`. Shard 0 owns the
//! authoritative copy and applies every change; the others receive copies. Storage only ever
//! sees table ids.

use crate::datadir::write_atomically;
use anyhow::{Context, Result};
use nacre_storage::{OriginKind, TableId, TableSettings, TieRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The id storage knows it by; never reused.
    pub id: u32,
    /// Versions kept per key.
    pub max_versions: u32,
    /// Longest a superseded version is kept, milliseconds.
    pub version_retention_ms: Option<u64>,
    /// TTL for writes without one, milliseconds.
    pub default_ttl_ms: Option<u64>,
    /// Origin kinds, highest rank first.
    pub tie_rule: [String; 3],
}

/// One topic of a source, and the stream id its versions' origins carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamTopic {
    /// The Kafka topic.
    pub topic: String,
    /// Never reused: a streamed version's origin `source_id` is `stream_id << 16 | partition`.
    pub stream_id: u16,
}

/// A Kafka source: topics feeding one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

fn kind_name(kind: OriginKind) -> &'static str {
    match kind {
        OriginKind::Bulk => "bulk",
        OriginKind::Stream => "stream",
        OriginKind::Direct => "direct",
    }
}

fn kind_from_name(name: &str) -> Option<OriginKind> {
    match name {
        "bulk" => Some(OriginKind::Bulk),
        "stream" => Some(OriginKind::Stream),
        "direct" => Some(OriginKind::Direct),
        _ => None,
    }
}

impl TableEntry {
    /// A table entry with `id` and storage `settings`.
    pub fn new(id: u32, settings: &TableSettings) -> TableEntry {
        TableEntry {
            id,
            max_versions: settings.max_versions,
            version_retention_ms: settings.version_retention_ms,
            default_ttl_ms: settings.default_ttl_ms,
            tie_rule: settings.tie_rule.highest_first().map(|k| kind_name(k).to_string()),
        }
    }

    /// The storage id.
    pub fn table_id(&self) -> TableId {
        TableId(self.id)
    }

    /// The settings as storage takes them.
    pub fn settings(&self) -> TableSettings {
        let kinds = [0, 1, 2].map(|i| kind_from_name(&self.tie_rule[i]));
        let tie_rule = match kinds {
            [Some(a), Some(b), Some(c)] => TieRule::new([a, b, c]).unwrap_or_default(),
            _ => TieRule::default(),
        };
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

    /// Loads the catalog, or an empty one if there is none yet.
    pub fn load(root: &Path) -> Result<Catalog> {
        let path = Self::path(root);
        if !path.exists() {
            return Ok(Catalog { tables: BTreeMap::new(), next_id: 1, sources: BTreeMap::new(), next_stream_id: 1 });
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
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
        c.tables.insert("features".into(), TableEntry::new(1, &settings));
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
    }
}
