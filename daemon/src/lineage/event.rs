//! The OpenLineage `RunEvent`s nacred emits (spec 2-0-2), as JSON: a bulk load's link or
//! rollback (the job: the load; the output: its table) and a Kafka source's addition or removal
//! (the job: the source; the inputs: its topics, named as OpenLineage names Kafka datasets; the
//! output: its table). Pure: no queue, no I/O.

use serde_json::{Value, json};

/// What events say produced them (a URI, as OpenLineage requires).
pub const PRODUCER: &str = concat!("urn:nacre:nacred:", env!("CARGO_PKG_VERSION"));
/// The OpenLineage schema version the events follow.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
/// Names the version of the run facet describing a bulk load (no published schema: a URN).
const LOAD_FACET_SCHEMA_URL: &str = "urn:nacre:facet:NacreBulkLoadRunFacet:1";
/// Names the version of the run facet describing a Kafka source.
const SOURCE_FACET_SCHEMA_URL: &str = "urn:nacre:facet:NacreSourceRunFacet:1";

/// A dataset: OpenLineage's `{namespace, name}`.
fn dataset(namespace: &str, name: &str) -> Value {
    json!({ "namespace": namespace, "name": name })
}

/// A complete run of job `namespace`/`job`, now, with a fresh run id.
fn completed_run(namespace: &str, job: &str, facets: Value, inputs: Vec<Value>, outputs: Vec<Value>) -> Value {
    json!({
        "eventType": "COMPLETE",
        "eventTime": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": { "runId": uuid::Uuid::new_v4().to_string(), "facets": facets },
        "job": { "namespace": namespace, "name": job },
        "inputs": inputs,
        "outputs": outputs,
    })
}

/// A bulk load's link (`job` "bulk-link") or rollback ("bulk-rollback"), with the run facet
/// `nacre_bulkLoad`: id, mode, snapshot, files, bytes, rows and state.
pub(crate) fn bulk_load(namespace: &str, job: &str, load: &crate::bulk_book::LoadRecord) -> Value {
    let facet = json!({
        "_producer": PRODUCER,
        "_schemaURL": LOAD_FACET_SCHEMA_URL,
        "loadId": load.load_id,
        "mode": load.mode,
        "snapshotMs": load.snapshot_ms,
        "files": load.files,
        "bytes": load.bytes,
        "rowCount": load.entries,
        "state": load.state,
    });
    let job = format!("{job}:{}", load.load_id);
    completed_run(
        namespace,
        &job,
        json!({ "nacre_bulkLoad": facet }),
        Vec::new(),
        vec![dataset(namespace, &load.table)],
    )
}

/// What a source event says of the source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceFacts<'a> {
    /// The source's name.
    pub name: &'a str,
    /// The table it feeds.
    pub table: &'a str,
    /// The topics it reads.
    pub topics: &'a [String],
    /// Its brokers, `host:port,...`.
    pub brokers: &'a str,
    /// `active` once added, `retired` once removed.
    pub state: &'a str,
}

/// OpenLineage's namespace of a Kafka cluster's datasets: `kafka://` and its first bootstrap
/// server (OpenLineage's dataset naming: `kafka://{bootstrap server host}:{port}`).
pub(crate) fn kafka_namespace(brokers: &str) -> String {
    let first = brokers.split(',').map(str::trim).find(|b| !b.is_empty()).unwrap_or("");
    format!("kafka://{first}")
}

/// A source's addition (`job` "source-add") or removal ("source-remove"): its topics as input
/// datasets, its table as the output, and the run facet `nacre_source`.
pub(crate) fn source(namespace: &str, job: &str, source: SourceFacts<'_>) -> Value {
    let facet = json!({
        "_producer": PRODUCER,
        "_schemaURL": SOURCE_FACET_SCHEMA_URL,
        "source": source.name,
        "topics": source.topics,
        "brokers": source.brokers,
        "state": source.state,
    });
    let kafka = kafka_namespace(source.brokers);
    let inputs = source.topics.iter().map(|t| dataset(&kafka, t)).collect();
    let job = format!("{job}:{}", source.name);
    completed_run(namespace, &job, json!({ "nacre_source": facet }), inputs, vec![dataset(namespace, source.table)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_event_names_its_topics_as_kafka_datasets() {
        let topics = ["clicks".to_owned(), "views".to_owned()];
        let facts = SourceFacts {
            name: "s",
            table: "t",
            topics: &topics,
            brokers: " 10.0.0.1:9092,10.0.0.2:9092",
            state: "active",
        };
        let event = source("nacre", "source-add", facts);
        assert_eq!(event["job"]["name"], "source-add:s");
        assert_eq!(event["inputs"][1], json!({"namespace": "kafka://10.0.0.1:9092", "name": "views"}));
        assert_eq!(event["outputs"], json!([{"namespace": "nacre", "name": "t"}]));
        assert_eq!(event["run"]["facets"]["nacre_source"]["topics"], json!(["clicks", "views"]));
    }
}
