//! Sources managed at run time with `nacre source add / list / remove`, on a daemon started
//! with none configured:
//!
//! - adding a source for a missing table fails (exit 2, naming the table), and so does adding a
//!   second source under a name in use;
//! - an added source is listed (`source list --json`) and consumed;
//! - once `source remove` returns, nothing produced afterwards lands, even after the daemon
//!   had every chance: a marker produced to another, still active source after those messages
//!   is applied first (a barrier, not a sleep), and the removed source's next offsets have not
//!   moved; the removed source stays listed, retired;
//! - re-adding a source under the same name resumes where the removed one stopped: the
//!   messages produced meanwhile land, and nothing is applied twice;
//! - sources added at run time survive a SIGKILL and keep consuming from where they were.
//!
//! Every message has its own key, so "exactly once" reads as: each key's history is exactly the
//! one version its message implies (origin included), and messages that must not land leave
//! no version at all.

use nacre_tests::kafka::{
    self, Broker, Delivered, Producer, Record, active_source, end_offsets, expected_version, message_key, nacre,
    next_offsets, source_list,
};
use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::{TableSettings, Versions};
use std::process::Output;

const ORDERS: &str = "orders";
const ORDERS_SOURCE: &str = "orders-src";
const ORDERS_PARTITIONS: usize = 3;
const MARKERS: &str = "markers";
/// The name `source add markers --topic markers` gets by default: TABLE.TOPIC.
const MARKERS_SOURCE: &str = "markers.markers";
const MISSING_TABLE: &str = "no_such_table";
const BATCH: usize = 200;
const BASE_CONFIG: &str = "partitions = 8\n";

/// A batch of orders, each message with its own key.
fn orders(batch: &str) -> Vec<Record> {
    (0..BATCH)
        .map(|i| {
            let partition = i32::try_from(i % ORDERS_PARTITIONS).expect("small");
            Record::new(ORDERS, format!("{batch}-{i}"), format!("{batch} order {i}")).partition(partition)
        })
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn add(server: &Server, table: &str, topic: &str, bootstrap: &str, name: Option<&str>) -> Output {
    let mut args =
        vec!["source", "add", table, "--topic", topic, "--brokers", bootstrap, "--set", "fetch.wait.max.ms=50"];
    if let Some(name) = name {
        args.extend(["--name", name]);
    }
    nacre(server, &args)
}

fn add_ok(server: &Server, table: &str, topic: &str, bootstrap: &str, name: Option<&str>) {
    let out = add(server, table, topic, bootstrap, name);
    assert!(out.status.success(), "nacre source add {table} --topic {topic}: {}", text(&out));
}

/// Checks that each message's key holds exactly the version it implies, applied through the
/// stream `stream_id`; returns what differs.
fn exactly_once(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    table: &str,
    sent: &[(Record, Delivered)],
    stream_id: u32,
) -> Vec<String> {
    runtime.block_on(async {
        let client = server.client().await;
        let mut wrong = Vec::new();
        for (record, delivered) in sent {
            let want = vec![expected_version(record, delivered, stream_id)];
            let got = client.versions(Versions::new(table, message_key(record))).await.expect("versions").versions;
            if got != want {
                wrong.push(format!("{:?}: {got:?}, expected {want:?}", message_key(record)));
            }
        }
        wrong
    })
}

/// Checks that none of the messages' keys holds any version.
fn absent(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    table: &str,
    sent: &[(Record, Delivered)],
) -> Vec<String> {
    runtime.block_on(async {
        let client = server.client().await;
        let mut wrong = Vec::new();
        for (record, _) in sent {
            let got = client.versions(Versions::new(table, message_key(record))).await.expect("versions").versions;
            if !got.is_empty() {
                wrong.push(format!("{:?} landed: {got:?}", message_key(record)));
            }
        }
        wrong
    })
}

fn produce(bootstrap: &str, records: Vec<Record>) -> Vec<(Record, Delivered)> {
    let delivered = Producer::new(bootstrap).send_all(&records);
    records.into_iter().zip(delivered).collect()
}

fn assert_none(wrong: &[String], what: &str) {
    assert!(wrong.is_empty(), "{what}: {} wrong, first:\n{}", wrong.len(), wrong[..wrong.len().min(10)].join("\n"));
}

#[test]
fn sources_are_added_listed_removed_and_re_added_at_run_time_and_survive_a_restart() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    broker.create_topic(ORDERS, ORDERS_PARTITIONS);
    broker.create_topic(MARKERS, 1);
    let mut server =
        Server::start_with(ServerOptions { config: Some(BASE_CONFIG.to_owned()), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let settings = TableSettings { max_versions: 1_000, ..TableSettings::default() };
    runtime.block_on(async {
        let client = server.client().await;
        for table in [ORDERS, MARKERS] {
            client.create_table(table, settings).await.expect("create_table");
        }
    });
    assert_eq!(source_list(&server), vec![], "started with no sources");

    // A missing table is refused, naming it.
    let out = add(&server, MISSING_TABLE, ORDERS, &bootstrap, None);
    assert_eq!(out.status.code(), Some(2), "adding a source for a missing table: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(MISSING_TABLE), "the error names the table: {}", text(&out));
    assert_eq!(source_list(&server), vec![], "a refused add adds nothing");

    // Two sources; a second one under a name in use is refused.
    add_ok(&server, ORDERS, ORDERS, &bootstrap, Some(ORDERS_SOURCE));
    add_ok(&server, MARKERS, MARKERS, &bootstrap, None);
    let out = add(&server, ORDERS, ORDERS, &bootstrap, Some(ORDERS_SOURCE));
    assert_eq!(out.status.code(), Some(2), "adding a second source named {ORDERS_SOURCE}: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains(ORDERS_SOURCE), "the error names the source: {}", text(&out));
    let listed = active_source(&server, ORDERS_SOURCE);
    assert_eq!(
        (listed.table.as_str(), listed.brokers.as_str(), listed.retired),
        (ORDERS, bootstrap.as_str(), false),
        "{listed:?}"
    );
    assert_eq!(listed.topics.len(), 1, "{listed:?}");
    assert_eq!(listed.dead_letter_topic, None, "{listed:?}");
    assert_eq!(listed.settings.get("fetch.wait.max.ms").map(String::as_str), Some("50"), "{listed:?}");
    let first_stream = listed.stream_id(ORDERS);
    assert_eq!(active_source(&server, MARKERS_SOURCE).table, MARKERS);
    assert_eq!(source_list(&server).len(), 2, "{:#?}", source_list(&server));

    // Consumed once added.
    let first = produce(&bootstrap, orders("first"));
    let after_first = end_offsets(&bootstrap, ORDERS);
    kafka::wait_caught_up(&runtime, &server, ORDERS_SOURCE, ORDERS, &after_first);
    assert_none(&exactly_once(&runtime, &server, ORDERS, &first, first_stream), "the first batch");

    // Removed: nothing produced afterwards lands, though a later marker on another source does.
    let out = nacre(&server, &["source", "remove", ORDERS_SOURCE]);
    assert!(out.status.success(), "nacre source remove: {}", text(&out));
    let named: Vec<_> = source_list(&server).into_iter().filter(|s| s.name == ORDERS_SOURCE).collect();
    assert!(!named.is_empty() && named.iter().all(|s| s.retired), "a removed source stays listed, retired: {named:#?}");
    let while_removed = produce(&bootstrap, orders("while-removed"));
    let markers_stream = active_source(&server, MARKERS_SOURCE).stream_id(MARKERS);
    let marker = produce(&bootstrap, vec![Record::new(MARKERS, "marker-1", "after the removal")]);
    kafka::wait_caught_up(&runtime, &server, MARKERS_SOURCE, MARKERS, &end_offsets(&bootstrap, MARKERS));
    assert_none(&exactly_once(&runtime, &server, MARKERS, &marker, markers_stream), "the marker");
    assert_none(&absent(&runtime, &server, ORDERS, &while_removed), "messages produced after the removal");
    let stats = runtime.block_on(async { server.client().await.stats().await.expect("stats") });
    for (partition, reported) in next_offsets(&stats, ORDERS_SOURCE, ORDERS) {
        let end = after_first[usize::try_from(partition).expect("a partition")];
        let end = u64::try_from(end).expect("an offset");
        assert!(
            reported.iter().all(|&next| next <= end),
            "partition {partition} moved on after the removal: {reported:?}, end {end}"
        );
    }

    // Re-added under the same name: resumes where it stopped, applying nothing twice.
    add_ok(&server, ORDERS, ORDERS, &bootstrap, Some(ORDERS_SOURCE));
    let second_stream = active_source(&server, ORDERS_SOURCE).stream_id(ORDERS);
    kafka::wait_caught_up(&runtime, &server, ORDERS_SOURCE, ORDERS, &end_offsets(&bootstrap, ORDERS));
    assert_none(&exactly_once(&runtime, &server, ORDERS, &first, first_stream), "the first batch after the re-add");
    assert_none(
        &exactly_once(&runtime, &server, ORDERS, &while_removed, second_stream),
        "the messages produced while removed",
    );

    // Sources added at run time survive a SIGKILL and go on from where they were.
    server.sigkill();
    server.restart();
    assert_eq!(active_source(&server, ORDERS_SOURCE).stream_id(ORDERS), second_stream);
    assert_eq!(active_source(&server, MARKERS_SOURCE).stream_id(MARKERS), markers_stream);
    let after_restart = produce(&bootstrap, orders("after-restart"));
    let second_marker = produce(&bootstrap, vec![Record::new(MARKERS, "marker-2", "after the restart")]);
    kafka::wait_caught_up(&runtime, &server, ORDERS_SOURCE, ORDERS, &end_offsets(&bootstrap, ORDERS));
    kafka::wait_caught_up(&runtime, &server, MARKERS_SOURCE, MARKERS, &end_offsets(&bootstrap, MARKERS));
    assert_none(&exactly_once(&runtime, &server, ORDERS, &first, first_stream), "the first batch after the restart");
    assert_none(
        &exactly_once(&runtime, &server, ORDERS, &while_removed, second_stream),
        "the re-added batch after the restart",
    );
    assert_none(&exactly_once(&runtime, &server, ORDERS, &after_restart, second_stream), "the batch after the restart");
    let markers: Vec<_> = marker.into_iter().chain(second_marker).collect();
    assert_none(&exactly_once(&runtime, &server, MARKERS, &markers, markers_stream), "the markers");
}
