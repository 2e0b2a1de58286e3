//! Lineage events: a bulk link and its rollback, and a Kafka source's addition and removal, each
//! emit one OpenLineage `RunEvent`, appended to `[lineage] file` and POSTed as JSON to
//! `[lineage] url` (a real HTTP listener, `tiny_http`, in the test). Every event, from the file
//! and from the POSTs, is validated against the OpenLineage 2-0-2 JSON schema shipped in
//! `tests/fixtures/openlineage/` (its `RunEvent` definition, by the `jsonschema` crate, formats
//! included: date-time, uri, uuid), then checked for what Nacre says in it: the job, the
//! datasets (the table; a source's topics as `kafka://` datasets) and the facets. The file is
//! read after a clean stop, which delivers every queued event.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{BulkLoadState, SourceSpec, TableSettings};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

const ROWS: usize = 50;
const SCHEMA: &str = include_str!("../fixtures/openlineage/OpenLineage.json");

/// A validator of the schema's `RunEvent` definition (the schema's root accepts any of its
/// three event kinds; Nacre emits run events only).
fn run_event_validator() -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    let root = schema.as_object_mut().expect("the schema is an object");
    assert_eq!(root["$id"], "https://openlineage.io/spec/2-0-2/OpenLineage.json", "the 2-0-2 schema");
    root.remove("oneOf").expect("the root chooses among the event kinds");
    root.insert("$ref".into(), json!("#/$defs/RunEvent"));
    jsonschema::options().should_validate_formats(true).build(&schema).expect("the schema compiles")
}

/// Panics with every violation if `event` is not a valid RunEvent.
fn assert_valid(validator: &jsonschema::Validator, event: &Value) {
    let errors: Vec<String> = validator.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "not an OpenLineage RunEvent: {errors:?}\n{event}");
}

#[test]
fn the_schema_rejects_a_broken_event() {
    let validator = run_event_validator();
    let good = json!({
        "eventType": "COMPLETE",
        "eventTime": "2026-12-07T07:36:59.120Z",
        "producer": "urn:nacre:nacred:0.1.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0b7b1c2e-5a0e-4d8e-9a55-8f7d3f0e9c11", "facets": {
            "nacre_bulkLoad": {"_producer": "urn:nacre:nacred:0.1.0", "_schemaURL": "urn:x:1", "loadId": 7}}},
        "job": {"namespace": "nacre", "name": "bulk-link:7"},
        "inputs": [],
        "outputs": [{"namespace": "nacre", "name": "users"}],
    });
    assert_valid(&validator, &good);
    let mut no_time = good.clone();
    no_time.as_object_mut().expect("an object").remove("eventTime");
    let mut bad_time = good.clone();
    bad_time["eventTime"] = json!("yesterday");
    let mut bad_run = good.clone();
    bad_run["run"]["runId"] = json!("run-1");
    let mut bad_type = good.clone();
    bad_type["eventType"] = json!("DONE");
    let mut bare_facet = good.clone();
    bare_facet["run"]["facets"]["nacre_bulkLoad"] = json!({"loadId": 7});
    let mut nameless = good.clone();
    nameless["outputs"][0].as_object_mut().expect("an object").remove("name");
    for (what, broken) in [
        ("no eventTime", no_time),
        ("an eventTime that is not a date-time", bad_time),
        ("a runId that is not a UUID", bad_run),
        ("an unknown eventType", bad_type),
        ("a facet without _producer and _schemaURL", bare_facet),
        ("a dataset without a name", nameless),
    ] {
        assert!(!validator.is_valid(&broken), "{what} was accepted");
    }
}

/// What the lineage URL received: each request's Content-Type and body.
struct Posts {
    server: Arc<tiny_http::Server>,
    received: Receiver<(Option<String>, String)>,
    thread: std::thread::JoinHandle<()>,
}

impl Posts {
    /// An HTTP listener on a free loopback port answering 200 to every request.
    fn listen() -> Posts {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("a listener"));
        let (sender, received) = channel();
        let serving = server.clone();
        let thread = std::thread::spawn(move || {
            for mut request in serving.incoming_requests() {
                let content_type = request
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Content-Type"))
                    .map(|h| h.value.as_str().to_owned());
                let mut body = String::new();
                request.as_reader().read_to_string(&mut body).expect("a UTF-8 body");
                let path = request.url().to_owned();
                let method = request.method().clone();
                request.respond(tiny_http::Response::empty(200)).expect("answered");
                assert_eq!((method, path.as_str()), (tiny_http::Method::Post, "/api/v1/lineage"));
                if sender.send((content_type, body)).is_err() {
                    return;
                }
            }
        });
        Posts { server, received, thread }
    }

    fn url(&self) -> String {
        let addr = self.server.server_addr().to_ip().expect("an IP listener");
        format!("http://{addr}/api/v1/lineage")
    }

    /// Stops listening and returns every event received, parsed, in order of arrival.
    fn stop(self) -> Vec<Value> {
        self.server.unblock();
        self.thread.join().expect("the listener ends");
        self.received
            .try_iter()
            .map(|(content_type, body)| {
                assert_eq!(content_type.as_deref(), Some("application/json"), "{body}");
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{body:?}: {e}"))
            })
            .collect()
    }
}

/// A port nothing listens on: the source's consumers never reach a broker, which adding and
/// removing a source do not need.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port()
}

#[test]
fn links_rollbacks_and_sources_emit_valid_run_events_to_the_file_and_the_url() {
    let validator = run_event_validator();
    let posts = Posts::listen();
    let work = test_dir("nacre-lineage-");
    let file = work.path().join("lineage.jsonl");
    let config = format!("[lineage]\nfile = \"{}\"\nurl = \"{}\"\n", file.display(), posts.url());
    let mut server = Server::start_with(ServerOptions { cores: 2, config: Some(config), ..ServerOptions::default() });
    let rows: Vec<Row> = (0..ROWS).map(|i| Row::new(format!("user-{i}"), "", format!("v{i}"))).collect();
    let input = work.path().join("input.jsonl");
    bulk::write_jsonl(&input, &rows);
    let out = work.path().join("load");
    let snapshot = (bulk::now_ms() - 3_600_000).to_string();
    let brokers = format!("127.0.0.1:{}", closed_port());
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
        let spec = SourceSpec {
            name: "clicks".into(),
            table: "users".into(),
            topics: vec!["clicks".into(), "views".into()],
            brokers: brokers.clone(),
            dead_letter_topic: None,
            settings: Vec::new(),
        };
        client.add_source(spec).await.expect("add_source");
        client.remove_source("clicks").await.expect("remove_source");
        let stats = client.stats().await.expect("stats");
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "lineage_events_total", &[]), 4);
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "lineage_events_dropped_total", &[]), 0);
        load
    });
    assert!(server.sigterm_and_wait(Duration::from_secs(60)).success(), "{}", server.log_tail());

    let text = std::fs::read_to_string(&file).expect("the lineage file");
    let written: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"))).collect();
    let posted = posts.stop();
    assert_eq!(posted, written, "the URL got every event the file did, in the same order");
    assert_eq!(written.len(), 4, "{text}");
    for event in &written {
        assert_valid(&validator, event);
        assert_eq!(event["eventType"], "COMPLETE");
        assert_eq!(event["job"]["namespace"], "nacre");
        assert_eq!(event["outputs"], json!([{"namespace": "nacre", "name": "users"}]));
    }
    let (link, rollback) = (&written[0], &written[1]);
    assert_eq!(link["job"]["name"], format!("bulk-link:{}", load.load_id));
    assert_eq!(rollback["job"]["name"], format!("bulk-rollback:{}", load.load_id));
    for (event, state) in [(link, "committed"), (rollback, "rolled-back")] {
        let facet = &event["run"]["facets"]["nacre_bulkLoad"];
        assert_eq!(facet["loadId"], load.load_id);
        assert_eq!(facet["mode"], "replace");
        assert_eq!(facet["rowCount"], ROWS as u64);
        assert_eq!(facet["state"], state);
        assert_eq!(event["inputs"], json!([]));
    }
    let (added, removed) = (&written[2], &written[3]);
    assert_eq!(added["job"]["name"], "source-add:clicks");
    assert_eq!(removed["job"]["name"], "source-remove:clicks");
    let kafka = format!("kafka://{brokers}");
    for (event, state) in [(added, "active"), (removed, "retired")] {
        let topics = json!([{"namespace": kafka, "name": "clicks"}, {"namespace": kafka, "name": "views"}]);
        assert_eq!(event["inputs"], topics, "{event}");
        let facet = &event["run"]["facets"]["nacre_source"];
        assert_eq!(facet["source"], "clicks");
        assert_eq!(facet["topics"], json!(["clicks", "views"]));
        assert_eq!(facet["state"], state);
    }
    let run_ids: std::collections::BTreeSet<&str> = written.iter().filter_map(|e| e["run"]["runId"].as_str()).collect();
    assert_eq!(run_ids.len(), 4, "each run has its own id");
}
