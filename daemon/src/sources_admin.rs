//! Kafka source administration: `nacre source add/list/remove` and the configuration file's
//! `[[kafka.sources]]`. Like tables, sources live in the catalog, which shard 0 owns: it applies
//! a change, saves it, and installs it on every shard, and each shard starts or stops its
//! consumers before answering. A removed source stays in the catalog, retired, so lineage can
//! still name its topics; adding it again under the same name resumes where it stopped. Each
//! addition and removal is reported as a lineage event once every shard has applied it.

use crate::catalog::{Catalog, SourceEntry, StreamTopic};
use crate::config::SourceConfig;
use crate::convert::error;
use crate::ingest::consumer_settings;
use crate::lineage::SourceFacts;
use crate::shard::Shard;
use nacre_wire::{self as wire, ErrorCode, Reply};
use std::rc::Rc;

/// Longest source name, bytes.
const MAX_SOURCE_NAME_BYTES: usize = 255;
/// Most topics one source reads.
const MAX_TOPICS_PER_SOURCE: usize = 64;

/// Why a source cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The protocol's code for it.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// Adds or updates source `spec` in `catalog`. `replace` lets an active source of that name be
/// updated (the configuration file's sources); otherwise only a new or retired one may be added.
/// A retired source comes back with the stream ids its topics had, so it resumes where it
/// stopped. `need_table` refuses a table that does not exist yet.
pub fn upsert(catalog: &mut Catalog, spec: &SourceConfig, replace: bool, need_table: bool) -> Result<(), Refusal> {
    let name = &spec.name;
    if name.is_empty() || name.len() > MAX_SOURCE_NAME_BYTES || name.chars().any(char::is_control) {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("source names are 1 to {MAX_SOURCE_NAME_BYTES} printable bytes"),
        ));
    }
    if need_table && catalog.get(&spec.table).is_none() {
        return Err(refuse(ErrorCode::UnknownTable, format!("no table named {:?}", spec.table)));
    }
    if spec.topics.is_empty() || spec.topics.len() > MAX_TOPICS_PER_SOURCE {
        return Err(refuse(ErrorCode::BadRequest, format!("a source reads 1 to {MAX_TOPICS_PER_SOURCE} topics")));
    }
    let mut seen = std::collections::BTreeSet::new();
    if spec.topics.iter().any(|t| t.is_empty() || !seen.insert(t)) {
        return Err(refuse(ErrorCode::BadRequest, "topic names must be non-empty and distinct"));
    }
    if spec.brokers.trim().is_empty() {
        return Err(refuse(ErrorCode::BadRequest, "a source needs its brokers (host:port,...)"));
    }
    if spec.dead_letter_topic.as_deref().is_some_and(|d| d.is_empty() || spec.topics.iter().any(|t| t == d)) {
        return Err(refuse(
            ErrorCode::BadRequest,
            "the dead-letter topic must be named and must not be a source topic",
        ));
    }
    consumer_settings(&spec.brokers, &spec.settings)
        .create_native_config()
        .map_err(|e| refuse(ErrorCode::BadRequest, format!("librdkafka refuses the settings: {e}")))?;
    if let Some(existing) = catalog.sources.get(name) {
        if !existing.retired && !replace {
            return Err(refuse(ErrorCode::SourceExists, format!("a source named {name:?} exists")));
        }
        if existing.table != spec.table {
            return Err(refuse(
                ErrorCode::BadRequest,
                format!(
                    "source {name:?} fed table {:?}; a source keeps its table (choose another name)",
                    existing.table
                ),
            ));
        }
    }
    let mut topics = Vec::new();
    for topic in &spec.topics {
        let stream_id = catalog
            .stream_id_for(name, topic)
            .ok_or_else(|| refuse(ErrorCode::BadRequest, "every stream id (65,535) is used"))?;
        topics.push(StreamTopic { topic: topic.clone(), stream_id });
    }
    // Topics a retired or updated source read before keep their ids, retired with it.
    let entry = SourceEntry {
        table: spec.table.clone(),
        topics,
        brokers: spec.brokers.clone(),
        dead_letter_topic: spec.dead_letter_topic.clone(),
        settings: spec.settings.clone(),
        retired: false,
    };
    if let Some(old) = catalog.sources.get(name) {
        let dropped: Vec<StreamTopic> =
            old.topics.iter().filter(|t| !entry.topics.iter().any(|n| n.topic == t.topic)).cloned().collect();
        if !dropped.is_empty() {
            let keep = format!("{name} (earlier topics)");
            let mut former = catalog.sources.get(&keep).cloned().unwrap_or_else(|| SourceEntry {
                topics: Vec::new(),
                retired: true,
                ..entry.clone()
            });
            former.topics.extend(dropped);
            catalog.sources.insert(keep, former);
        }
    }
    catalog.sources.insert(name.clone(), entry);
    Ok(())
}

/// A source as the protocol shows it.
fn source_info(name: &str, s: &SourceEntry) -> wire::SourceInfo {
    wire::SourceInfo {
        name: name.to_owned(),
        table: s.table.clone(),
        topics: s
            .topics
            .iter()
            .map(|t| wire::SourceTopic { topic: t.topic.clone(), stream_id: u32::from(t.stream_id) })
            .collect(),
        brokers: s.brokers.clone(),
        dead_letter_topic: s.dead_letter_topic.clone(),
        settings: s.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        retired: s.retired,
    }
}

impl Shard {
    /// Adds a source (on shard 0); it is consumed on every shard before this answers.
    pub(crate) async fn add_source(self: &Rc<Self>, spec: wire::SourceSpec) -> Result<Reply, wire::ErrorReply> {
        let _serial = self.admin.lock().await;
        let spec = SourceConfig {
            name: spec.name,
            table: spec.table,
            topics: spec.topics,
            brokers: spec.brokers,
            dead_letter_topic: spec.dead_letter_topic,
            settings: spec.settings.into_iter().collect(),
        };
        let mut catalog = self.catalog.borrow().clone();
        upsert(&mut catalog, &spec, false, true).map_err(|r| error(r.code, r.message))?;
        let info = source_info(&spec.name, &catalog.sources[&spec.name]);
        self.publish(catalog).await?;
        tracing::info!(source = %spec.name, table = %spec.table, topics = ?spec.topics, "source added");
        let facts = SourceFacts {
            name: &spec.name,
            table: &spec.table,
            topics: &spec.topics,
            brokers: &spec.brokers,
            state: "active",
        };
        self.process.lineage.source("source-add", facts);
        Ok(Reply::Source(info))
    }

    /// Every source, retired ones included, in name order.
    pub fn list_sources(&self) -> Reply {
        Reply::Sources(self.catalog.borrow().sources.iter().map(|(n, s)| source_info(n, s)).collect())
    }

    /// Retires a source (on shard 0); no shard consumes it any more when this answers.
    pub(crate) async fn remove_source(self: &Rc<Self>, r: wire::RemoveSource) -> Result<Reply, wire::ErrorReply> {
        let _serial = self.admin.lock().await;
        let mut catalog = self.catalog.borrow().clone();
        let removed = match catalog.sources.get_mut(&r.name) {
            Some(s) if !s.retired => {
                s.retired = true;
                s.clone()
            }
            _ => return Err(error(ErrorCode::UnknownSource, format!("no source named {:?}", r.name))),
        };
        self.publish(catalog).await?;
        tracing::info!(source = %r.name, "source removed");
        let topics: Vec<String> = removed.topics.iter().map(|t| t.topic.clone()).collect();
        let facts = SourceFacts {
            name: &r.name,
            table: &removed.table,
            topics: &topics,
            brokers: &removed.brokers,
            state: "retired",
        };
        self.process.lineage.source("source-remove", facts);
        Ok(Reply::SourceRemoved)
    }

    /// Registers the configuration file's sources (shard 0, at startup). A source whose table
    /// does not exist yet is registered anyway; its consumers wait for the table.
    pub async fn register_configured_sources(self: &Rc<Self>) -> anyhow::Result<()> {
        let configured = &self.process.config.kafka.sources;
        if configured.is_empty() {
            return Ok(());
        }
        let _serial = self.admin.lock().await;
        let mut catalog = self.catalog.borrow().clone();
        for spec in configured {
            upsert(&mut catalog, spec, true, false)
                .map_err(|r| anyhow::anyhow!("kafka source {:?} in the configuration: {}", spec.name, r.message))?;
            if catalog.get(&spec.table).is_none() {
                tracing::warn!(source = %spec.name, table = %spec.table, "the source's table does not exist yet; it waits");
            }
        }
        if catalog != *self.catalog.borrow() {
            self.publish(catalog)
                .await
                .map_err(|e| anyhow::anyhow!("registering the configured sources: {}", e.message))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{DEFAULT_ROLLBACK_WINDOW_MS, TableEntry};
    use nacre_storage::TableSettings;
    use std::collections::BTreeMap;

    fn spec(name: &str, topics: &[&str]) -> SourceConfig {
        SourceConfig {
            name: name.into(),
            table: "t".into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            brokers: "127.0.0.1:9092".into(),
            dead_letter_topic: None,
            settings: BTreeMap::new(),
        }
    }

    fn catalog() -> Catalog {
        let mut c = Catalog { next_stream_id: 1, ..Catalog::default() };
        c.tables.insert("t".into(), TableEntry::new(1, &TableSettings::default(), DEFAULT_ROLLBACK_WINDOW_MS));
        c
    }

    #[test]
    fn a_source_gets_stream_ids_and_a_readded_one_gets_its_old_ones_back() {
        let mut c = catalog();
        upsert(&mut c, &spec("s", &["a", "b"]), false, true).expect("added");
        let ids: Vec<u16> = c.sources["s"].topics.iter().map(|t| t.stream_id).collect();
        assert_eq!(ids, [1, 2]);
        let again = upsert(&mut c, &spec("s", &["a"]), false, true);
        assert!(again.is_err_and(|r| r.message.contains("exists")), "an active source is not added twice");
        c.sources.get_mut("s").expect("present").retired = true;
        upsert(&mut c, &spec("s", &["b", "c"]), false, true).expect("re-added");
        let topics: Vec<(&str, u16)> = c.sources["s"].topics.iter().map(|t| (t.topic.as_str(), t.stream_id)).collect();
        assert_eq!(topics, [("b", 2), ("c", 3)]);
        assert_eq!(c.stream(1).map(|(_, t)| t.topic.as_str()), Some("a"), "a dropped topic still names its stream");
    }

    #[test]
    fn bad_sources_are_refused_with_the_reason() {
        let mut c = catalog();
        let cases: Vec<(SourceConfig, &str)> = vec![
            (spec("", &["a"]), "source names"),
            (SourceConfig { table: "nope".into(), ..spec("s", &["a"]) }, "no table"),
            (spec("s", &[]), "1 to 64 topics"),
            (spec("s", &["a", "a"]), "distinct"),
            (SourceConfig { brokers: " ".into(), ..spec("s", &["a"]) }, "brokers"),
            (SourceConfig { dead_letter_topic: Some("a".into()), ..spec("s", &["a"]) }, "dead-letter"),
            (
                SourceConfig { settings: [("no.such.setting".into(), "1".into())].into(), ..spec("s", &["a"]) },
                "librdkafka refuses",
            ),
        ];
        for (bad, needle) in cases {
            let before = c.clone();
            let refused = upsert(&mut c, &bad, false, true).expect_err("refused");
            assert!(refused.message.contains(needle), "{needle}: {refused:?}");
            assert_eq!(c, before, "a refusal changes nothing");
        }
        let mut other_table = catalog();
        other_table
            .tables
            .insert("u".into(), TableEntry::new(2, &TableSettings::default(), DEFAULT_ROLLBACK_WINDOW_MS));
        upsert(&mut other_table, &spec("s", &["a"]), false, true).expect("added");
        other_table.sources.get_mut("s").expect("present").retired = true;
        let moved = SourceConfig { table: "u".into(), ..spec("s", &["a"]) };
        assert!(upsert(&mut other_table, &moved, false, true).is_err_and(|r| r.message.contains("keeps its table")));
    }
}
