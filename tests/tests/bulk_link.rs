//! Bulk loads end to end: build from Parquet, JSON Lines and CSV with `nacre bulk build`, link
//! into a running nacred with `nacre bulk link`, and read every key back with its value, ts and
//! origin (the load id), point reads and scans across sort keys.

use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, test_dir};
use nacre_wire::{BulkLoadState, Client, Get, Key, OriginKind, Scan, TableSettings, Ts};
use std::path::{Path, PathBuf};

const USERS: usize = 200;
const SORT_KEYS: usize = 5;

fn rows(tag: &str) -> Vec<Row> {
    (0..USERS)
        .flat_map(|u| (0..SORT_KEYS).map(move |s| (u, s)))
        .map(|(u, s)| Row::new(format!("user-{u}"), format!("s{s}"), format!("{tag}-{u}-{s}")))
        .collect()
}

/// Writes `rows` as two inputs of `format` under `dir`.
fn inputs(format: &str, dir: &Path, rows: &[Row]) -> Vec<PathBuf> {
    let (a, b) = rows.split_at(rows.len() / 3);
    [a, b]
        .iter()
        .enumerate()
        .map(|(i, part)| {
            let path = dir.join(format!("input-{i}.{format}"));
            match format {
                "parquet" => bulk::write_parquet(&path, part, 64),
                "jsonl" => bulk::write_jsonl(&path, part),
                "csv" => bulk::write_csv(&path, part),
                other => panic!("no writer for {other}"),
            }
            path
        })
        .collect()
}

async fn check_every_row(client: &Client, table: &str, rows: &[Row], load_id: u32, snapshot_ms: u64) {
    for r in rows {
        let key = Key::new(r.pk.as_bytes(), r.sk.as_bytes());
        let got = client.get(Get::new(table, key)).await.expect("get").unwrap_or_else(|| panic!("{r:?} is missing"));
        assert_eq!(got.value, r.value.as_deref().expect("a value").as_bytes(), "{r:?}");
        assert_eq!(got.version.ts, Ts::from_millis(snapshot_ms), "{r:?}");
        assert_eq!(got.version.origin.kind, OriginKind::Bulk, "{r:?}");
        assert_eq!(got.version.origin.source_id, load_id, "the origin names the load: {r:?}");
    }
    for u in [0, 7, USERS - 1] {
        let pk = format!("user-{u}");
        let scan = Scan {
            table: table.to_owned(),
            partition_key: pk.clone().into_bytes(),
            from: None,
            to: None,
            limit: 100,
            reverse: false,
            cursor: None,
            as_of: None,
        };
        let page = client.scan(scan).await.expect("scan");
        let got: Vec<(String, String)> = page
            .rows
            .iter()
            .map(|r| {
                (String::from_utf8_lossy(&r.sort_key).into_owned(), String::from_utf8_lossy(&r.value).into_owned())
            })
            .collect();
        let want: Vec<(String, String)> =
            rows.iter().filter(|r| r.pk == pk).map(|r| (r.sk.clone(), r.value.clone().expect("a value"))).collect();
        assert_eq!(got, want, "the scan of {pk} returns every sort key in order");
    }
}

#[test]
fn loads_built_from_parquet_jsonl_and_csv_link_and_read_back_with_their_origin() {
    let server = Server::start();
    let work = test_dir("nacre-bulk-");
    runtime().block_on(async {
        let client = server.client().await;
        let partitions = client.topology().await.expect("topology").partition_count;
        let snapshot_ms = bulk::now_ms() - 3_600_000;
        let snapshot = snapshot_ms.to_string();
        for format in ["parquet", "jsonl", "csv"] {
            let table = format!("from_{format}");
            let info = client.create_table(&table, TableSettings::default()).await.expect("create");
            let rows = rows(format);
            let dir = work.path().join(format);
            std::fs::create_dir_all(&dir).expect("mkdir");
            let inputs = inputs(format, &dir, &rows);
            let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
            let out = dir.join("load");
            let args = ["--format", format, "--mode", "merge", "--snapshot-ts", &snapshot];
            bulk::build(&table, info.id, partitions, &refs, &out, &args);
            let load = client.bulk_link(&out.display().to_string()).await.expect("link");
            assert_eq!(load.state, BulkLoadState::Committed);
            assert_eq!(load.entries, rows.len() as u64);
            assert!(load.files > 1, "{format}: keys spread over partitions");
            check_every_row(&client, &table, &rows, load.load_id, snapshot_ms).await;

            let again = client.bulk_link(&out.display().to_string()).await.expect("re-link");
            assert_eq!(again.load_id, load.load_id);
            assert_eq!(again.note.as_deref(), Some("already linked: nothing changed"), "{format}");
            let status = client.bulk_status(Some(load.load_id)).await.expect("status");
            assert_eq!(status[0].state, BulkLoadState::Committed);
        }
        assert_eq!(client.bulk_status(None).await.expect("status").len(), 3, "three loads are recorded");
        let stats = client.stats().await.expect("stats");
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "bulk_loads", &[("state", "committed")]), 3);
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "bulk_loads", &[("state", "aborted")]), 0);
        // A link is a native request: its duration is in the request latency histogram.
        assert_eq!(nacre_tests::stats::stat_sum(&stats, "request_duration_us_count", &[("kind", "bulk_link")]), 6);
    });
}

#[test]
fn an_input_larger_than_the_builders_memory_limit_builds_and_reads_back() {
    let server = Server::start();
    let work = test_dir("nacre-bulk-");
    runtime().block_on(async {
        let client = server.client().await;
        let partitions = client.topology().await.expect("topology").partition_count;
        let info = client.create_table("big", TableSettings::default()).await.expect("create");
        // About 12 MB of records against a 2 MiB limit: many spill runs.
        let rows: Vec<Row> = (0..40_000)
            .map(|i| Row::new(format!("k{}", i % 5_000), format!("s{:03}", i / 5_000), format!("{i:0>250}")))
            .collect();
        let input = work.path().join("big.jsonl");
        bulk::write_jsonl(&input, &rows);
        let out = work.path().join("load");
        let snapshot_ms = bulk::now_ms() - 60_000;
        let snapshot = snapshot_ms.to_string();
        let args = [
            "--format",
            "jsonl",
            "--mode",
            "merge",
            "--snapshot-ts",
            &snapshot,
            "--memory-limit",
            "2MiB",
            "--threads",
            "2",
        ];
        bulk::build("big", info.id, partitions, &[&input], &out, &args);
        let load = client.bulk_link(&out.display().to_string()).await.expect("link");
        assert_eq!(load.entries, rows.len() as u64);
        check_every_row(&client, "big", &rows, load.load_id, snapshot_ms).await;
    });
}

/// `nacre bulk build --from-server` asks the server at `--addr` for the table's id and the
/// partition count, so the user looks neither up: the load links and reads back. A --partitions
/// that disagrees with the server, or a table it does not have, fails the build naming why, and
/// writes nothing.
#[test]
fn a_build_from_the_server_takes_the_table_id_and_partition_count_from_it() {
    let server = Server::start();
    let work = test_dir("nacre-bulk-");
    let addr = server.addr().to_string();
    let rows = rows("asked");
    let input = work.path().join("rows.jsonl");
    bulk::write_jsonl(&input, &rows);
    let snapshot_ms = bulk::now_ms() - 3_600_000;
    let snapshot = snapshot_ms.to_string();
    let build = |table: &str, out: &Path, extra: &[&str]| {
        let out = out.display().to_string();
        let input = input.display().to_string();
        let mut args = vec!["--addr", &addr, "bulk", "build", "--from-server", "--table", table, "--format", "jsonl"];
        args.extend(["--mode", "merge", "--snapshot-ts", &snapshot, "--key", "id", "--sort-key", "sk"]);
        args.extend(["--value", "val", "--no-progress", "--out", &out]);
        args.extend_from_slice(extra);
        args.push(&input);
        bulk::nacre(&args)
    };
    runtime().block_on(async {
        let client = server.client().await;
        // A first table, so the one loaded into does not have id 1.
        client.create_table("other", TableSettings::default()).await.expect("create");
        let info = client.create_table("asked", TableSettings::default()).await.expect("create");
        assert_eq!(info.id, 2);

        let refused = work.path().join("refused");
        let output = build("asked", &refused, &["--partitions", "3"]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("--partitions 3 disagrees"), "{stderr}");
        let output = build("nothere", &refused, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success() && stderr.contains("no table named \"nothere\""), "{stderr}");
        assert!(!refused.exists(), "a refused build writes nothing");

        let out = work.path().join("load");
        let output = build("asked", &out, &[]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let load = client.bulk_link(&out.display().to_string()).await.expect("link");
        assert_eq!(load.state, BulkLoadState::Committed);
        assert_eq!(load.entries, rows.len() as u64);
        check_every_row(&client, "asked", &rows, load.load_id, snapshot_ms).await;
    });
}
