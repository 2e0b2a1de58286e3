//! `nacre explain` against a real `nacred`: each reason a key reads as absent that can be
//! produced from the outside (no versions, a tombstone, expiry, an as-of before the first
//! version, a bulk replace watermark, a rolled-back load), and a tie on equal `ts` between a
//! direct write and a bulk load, in text and in JSON. A three-way tie (direct, stream, bulk) is
//! checked at the storage level (`storage/src/engine/explain/tests.rs`) and end to end with a
//! real Kafka broker in `cross_path.rs`.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, nacre_binary, test_dir};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// Runs `nacre --addr <server> args...`, which must exit 0, and returns its stdout.
fn nacre(server: &Server, args: &[&str]) -> String {
    let output = Command::new(nacre_binary())
        .arg("--addr")
        .arg(server.addr().to_string())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running nacre {args:?}: {e}"));
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "nacre {args:?}\nstdout: {stdout}\nstderr: {stderr}");
    stdout.into_owned()
}

/// `nacre explain t KEY extra...` in JSON: the one object it prints.
fn explain_json(server: &Server, key: &str, extra: &[&str]) -> Value {
    let args: Vec<&str> = ["explain", "t", key, "--json"].into_iter().chain(extra.iter().copied()).collect();
    let out = nacre(server, &args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON object: {out}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{out:?} is not JSON: {e}"))
}

/// `nacre explain t KEY extra...` as text.
fn explain_text(server: &Server, key: &str, extra: &[&str]) -> String {
    let args: Vec<&str> = ["explain", "t", key].into_iter().chain(extra.iter().copied()).collect();
    nacre(server, &args)
}

fn standings(e: &Value) -> Vec<&str> {
    e["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["standing"].as_str().expect("a standing"))
        .collect()
}

fn kinds(e: &Value) -> Vec<&str> {
    e["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["origin"]["kind"].as_str().expect("a kind"))
        .collect()
}

#[test]
fn explain_names_each_reason_a_direct_key_is_absent() {
    let server = Server::start();
    nacre(&server, &["table", "create", "t"]);
    let now_ms = bulk::now_ms();
    let (first, second) = ((now_ms - 60_000).to_string(), (now_ms - 30_000).to_string());

    // Never written.
    let never = explain_json(&server, "never", &[]);
    assert_eq!(never["verdict"], "no_versions", "{never}");
    assert_eq!(never["visible"], false);
    assert_eq!(never["candidates"].as_array().map(Vec::len), Some(0));
    assert!(explain_text(&server, "never", &[]).contains("not found: no versions retained"));

    // Written, then deleted: the tombstone wins on ts.
    nacre(&server, &["put", "t", "deleted", "v1", "--ts", &first]);
    nacre(&server, &["del", "t", "deleted", "--ts", &second]);
    let deleted = explain_json(&server, "deleted", &[]);
    assert_eq!(deleted["verdict"], "tombstone", "{deleted}");
    assert_eq!(deleted["deciding_step"], "ts");
    assert_eq!(standings(&deleted), ["winner", "superseded"]);
    assert_eq!(deleted["candidates"][0]["tombstone"], true);
    assert_eq!(deleted["candidates"][1]["value"], "v1");
    assert_eq!(deleted["candidates"][1]["ts"]["ms"], now_ms - 60_000);
    assert_eq!(deleted["candidates"][0]["location"]["kind"], "active_memtable");
    let text = explain_text(&server, "deleted", &[]);
    assert!(text.contains("verdict: not found: a tombstone wins"), "{text}");
    assert!(text.contains("decided by: ts"), "{text}");
    assert!(text.contains("(tombstone)") && text.contains("memtable"), "{text}");

    // As of a time before its first version: nothing to pick.
    let early = (now_ms - 90_000).to_string();
    let before = explain_json(&server, "deleted", &["--as-of", &early]);
    assert_eq!(before["verdict"], "before_first_version", "{before}");
    assert_eq!(standings(&before), ["after_read_time", "after_read_time"]);
    assert_eq!(before["deciding_step"], Value::Null);
    // As of between the two: the value was visible then.
    let between = (now_ms - 45_000).to_string();
    let then = explain_json(&server, "deleted", &["--as-of", &between]);
    assert_eq!(then["verdict"], "visible", "{then}");
    assert_eq!(standings(&then), ["after_read_time", "winner"]);

    // Written a minute ago with a 10 s TTL (counted from its ts): expired.
    nacre(&server, &["put", "t", "expired", "gone-soon", "--ts", &first, "--ttl", "10s"]);
    let expired = explain_json(&server, "expired", &[]);
    assert_eq!(expired["verdict"], "expired", "{expired}");
    assert_eq!(expired["candidates"][0]["expires_at_ms"], now_ms - 50_000);
    assert!(explain_text(&server, "expired", &[]).contains("not found: the winner expired at"));

    // Flushed by a clean stop, the versions are found in a segment.
    let mut server = server;
    assert!(server.sigterm_and_wait(Duration::from_secs(60)).success());
    server.restart();
    let flushed = explain_json(&server, "deleted", &[]);
    assert_eq!(flushed["verdict"], "tombstone", "{flushed}");
    assert_eq!(flushed["candidates"][0]["location"]["kind"], "segment", "{flushed}");
    assert!(flushed["candidates"][0]["location"]["segment_id"].is_u64(), "{flushed}");
}

#[test]
fn explain_shows_a_tie_with_a_bulk_load_its_watermark_and_its_rollback() {
    let work = test_dir("nacre-explain-");
    let server = Server::start();
    // No rollback window, so a compaction may merge the load with other segments: a rollback
    // then removes the load's own segments and leaves its versions in merged ones, withdrawn.
    nacre(&server, &["table", "create", "t", "--rollback-window", "0"]);
    let snapshot_ms = bulk::now_ms() - 600_000;
    let snapshot = snapshot_ms.to_string();
    let partitions =
        runtime().block_on(async { server.client().await.topology().await.expect("topology").partition_count });

    // `tie`: a direct write at exactly the load's snapshot ts; `older`: a direct write before
    // it, not in the load; `load-only`: only in the load.
    nacre(&server, &["put", "t", "tie", "direct", "--ts", &snapshot]);
    nacre(&server, &["put", "t", "older", "direct-older", "--ts", &(snapshot_ms - 1_000).to_string()]);
    let input = work.path().join("rows.jsonl");
    bulk::write_jsonl(&input, &[Row::new("tie", "", "bulk"), Row::new("load-only", "", "bulk-only")]);
    let load = work.path().join("load");
    bulk::build(
        "t",
        1,
        partitions,
        &[&input],
        &load,
        &["--format", "jsonl", "--mode", "replace", "--snapshot-ts", &snapshot],
    );
    let load_id = runtime()
        .block_on(async { server.client().await.bulk_link(&load.display().to_string()).await.expect("link").load_id });

    // Equal ts, different kinds: the default tie rule ranks direct over bulk.
    let tie = explain_json(&server, "tie", &[]);
    assert_eq!(tie["verdict"], "visible", "{tie}");
    assert_eq!(tie["deciding_step"], "tie_rule");
    assert_eq!(kinds(&tie), ["direct", "bulk"]);
    assert_eq!(standings(&tie), ["winner", "superseded"]);
    assert_eq!(tie["candidates"][0]["ts"], tie["candidates"][1]["ts"]);
    assert_eq!(tie["candidates"][1]["origin"]["source_id"], load_id);
    assert_eq!(tie["candidates"][1]["location"]["kind"], "segment");
    assert_eq!(tie["watermark"]["origin"]["kind"], "bulk");
    let text = explain_text(&server, "tie", &[]);
    assert!(text.contains("verdict: visible"), "{text}");
    assert!(text.contains("decided by: tie rule"), "{text}");
    assert!(text.contains(&format!("bulk/{load_id}/")) && text.contains("segment "), "{text}");
    assert!(text.contains("watermark: "), "{text}");

    // Older than the replace load's snapshot and not in it: hidden under its watermark.
    let older = explain_json(&server, "older", &[]);
    assert_eq!(older["verdict"], "under_watermark", "{older}");
    assert_eq!(standings(&older), ["winner"]);
    assert!(explain_text(&server, "older", &[]).contains("under the bulk replace watermark"));

    nacre(&server, &["compact", "t", "--wait"]);
    let merged = explain_json(&server, "tie", &[]);
    assert_eq!(merged["verdict"], "visible", "{merged}");
    assert_eq!(merged["candidates"][0]["location"]["kind"], "segment", "flushed and merged: {merged}");
    assert_eq!(merged["candidates"][0]["location"], merged["candidates"][1]["location"], "{merged}");

    runtime().block_on(async { server.client().await.bulk_rollback(load_id).await.expect("rollback") });

    // The load withdrawn: its versions are listed as such and never win.
    let load_only = explain_json(&server, "load-only", &[]);
    assert_eq!(load_only["verdict"], "withdrawn", "{load_only}");
    assert_eq!(standings(&load_only), ["withdrawn"]);
    assert_eq!(load_only["candidates"][0]["location"]["kind"], "segment");
    assert!(explain_text(&server, "load-only", &[]).contains("withdrawn bulk load"));
    let tie = explain_json(&server, "tie", &[]);
    assert_eq!(tie["verdict"], "visible", "{tie}");
    assert_eq!(standings(&tie), ["winner", "withdrawn"]);
    assert_eq!(tie["deciding_step"], Value::Null, "only the direct write may be picked: {tie}");
    let older = explain_json(&server, "older", &[]);
    assert_eq!(older["verdict"], "visible", "the watermark went with the load: {older}");
    assert_eq!(older["watermark"], Value::Null);
}
