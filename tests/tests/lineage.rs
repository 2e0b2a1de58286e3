//! Lineage events: a bulk link and its rollback each append one OpenLineage `RunEvent` to
//! `[lineage] file`, carrying what the OpenLineage 2-0-2 spec requires of a RunEvent (eventTime
//! as RFC 3339, a producer URI, run.runId as a UUID, job namespace and name, datasets with
//! namespace and name, facets with `_producer` and `_schemaURL`) and the load's own facet; the
//! daemon counts what it queued. The file is read after a clean stop, which writes out every
//! queued event.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{BulkLoadState, TableSettings};
use serde_json::Value;
use std::time::Duration;

const ROWS: usize = 50;

/// What OpenLineage requires of every RunEvent and of each facet, checked field by field.
fn assert_run_event(event: &Value) {
    let text = event.to_string();
    assert_eq!(event["eventType"], "COMPLETE", "{text}");
    let time = event["eventTime"].as_str().unwrap_or_else(|| panic!("no eventTime: {text}"));
    humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("eventTime {time:?} is not RFC 3339: {e}"));
    for uri in [&event["producer"], &event["schemaURL"]] {
        let uri = uri.as_str().unwrap_or_else(|| panic!("a URI is missing: {text}"));
        let scheme = uri.split_once(':').map(|(s, _)| s).unwrap_or("");
        assert!(!scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)), "{uri}");
    }
    let run_id = event["run"]["runId"].as_str().unwrap_or_else(|| panic!("no run.runId: {text}"));
    let uuid = uuid::Uuid::parse_str(run_id).unwrap_or_else(|e| panic!("runId {run_id:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 4, "{run_id}");
    assert_eq!(event["job"]["namespace"], "nacre", "{text}");
    assert!(event["job"]["name"].as_str().is_some_and(|n| !n.is_empty()), "{text}");
    for dataset in event["outputs"].as_array().unwrap_or_else(|| panic!("no outputs: {text}")) {
        assert!(dataset["namespace"].is_string() && dataset["name"].is_string(), "{text}");
    }
    for (_, facet) in event["run"]["facets"].as_object().unwrap_or_else(|| panic!("no run facets: {text}")) {
        assert!(facet["_producer"].is_string() && facet["_schemaURL"].is_string(), "a facet's base fields: {text}");
    }
}

#[test]
fn a_link_and_a_rollback_each_append_a_run_event() {
    let work = test_dir("nacre-lineage-");
    let file = work.path().join("lineage.jsonl");
    let config = format!("[lineage]\nfile = \"{}\"\n", file.display());
    let mut server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let rows: Vec<Row> = (0..ROWS).map(|i| Row::new(format!("user-{i}"), "", format!("v{i}"))).collect();
    let input = work.path().join("input.jsonl");
    bulk::write_jsonl(&input, &rows);
    let out = work.path().join("load");
    let snapshot = (bulk::now_ms() - 3_600_000).to_string();
    let load = runtime().block_on(async {
        let client = server.client().await;
        let partitions = client.topology().await.expect("topology").partition_count;
        let info = client.create_table("users", TableSettings::default()).await.expect("create");
        let args = ["--format", "jsonl", "--mode", "replace", "--snapshot-ts", &snapshot];
        bulk::build("users", info.id, partitions, &[input.as_path()], &out, &args);
        let load = client.bulk_link(&out.display().to_string()).await.expect("link");
        assert_eq!(load.state, BulkLoadState::Committed);
        let rolled = client.bulk_rollback(load.load_id).await.expect("rollback");
        assert_eq!(rolled.state, BulkLoadState::RolledBack);
        let stats = client.stats().await.expect("stats");
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "lineage_events_total", &[]), 2);
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "lineage_events_dropped_total", &[]), 0);
        load
    });
    assert!(server.sigterm_and_wait(Duration::from_secs(60)).success(), "{}", server.log_tail());

    let text = std::fs::read_to_string(&file).expect("the lineage file");
    let events: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    assert_eq!(events.len(), 2, "{text}");
    for event in &events {
        assert_run_event(event);
        assert_eq!(event["outputs"][0]["name"], "users");
        let facet = &event["run"]["facets"]["nacre_bulkLoad"];
        assert_eq!(facet["loadId"], load.load_id);
        assert_eq!(facet["mode"], "replace");
        assert_eq!(facet["rowCount"], ROWS as u64);
    }
    assert_eq!(events[0]["job"]["name"], format!("bulk-link:{}", load.load_id));
    assert_eq!(events[0]["run"]["facets"]["nacre_bulkLoad"]["state"], "committed");
    assert_eq!(events[1]["job"]["name"], format!("bulk-rollback:{}", load.load_id));
    assert_eq!(events[1]["run"]["facets"]["nacre_bulkLoad"]["state"], "rolled-back");
    assert_ne!(events[0]["run"]["runId"], events[1]["run"]["runId"], "each run has its own id");
}
