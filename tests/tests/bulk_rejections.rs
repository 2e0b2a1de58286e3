//! Every reason a link is refused, each on its own: the error names the reason, and the store is
//! left exactly as it was (reads, recorded loads, and every file of every partition).

use nacre_storage::bulk::LoadDescriptor;
use nacre_tests::bulk::{self, Row};
use nacre_tests::runtime;
use nacre_tests::server::{Server, ServerOptions, test_dir};
use nacre_wire::{
    BulkLoadInfo, BulkLoadState, Client, ClientError, ErrorCode, Get, Key, LinkVerify, Put, TableSettings,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a refused load must leave as it was: two reads, the recorded loads, every partition file.
type StoreState = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<BulkLoadInfo>, BTreeMap<String, u64>);

/// A server with table `t` (id 1) holding key `before`, and a good load for it built in `work`.
struct Case {
    server: Server,
    work: tempfile::TempDir,
    partitions: u32,
}

fn case_with(config: Option<String>) -> Case {
    let server = Server::start_with(ServerOptions { config, ..ServerOptions::default() });
    let partitions = runtime().block_on(async {
        let client = server.client().await;
        assert_eq!(client.create_table("t", TableSettings::default()).await.expect("create").id, 1);
        let put = Put {
            table: "t".into(),
            key: Key::new(b"before", b""),
            value: b"kept".to_vec(),
            ts: None,
            ttl_ms: None,
            durability: None,
        };
        client.put(put).await.expect("put");
        client.topology().await.expect("topology").partition_count
    });
    Case { server, work: test_dir("nacre-bulk-"), partitions }
}

fn case() -> Case {
    case_with(None)
}

fn rows(tag: &str) -> Vec<Row> {
    (0..2_000).map(|i| Row::new(format!("k{i}"), "", format!("{tag}-{i:0>40}"))).collect()
}

impl Case {
    /// Builds `rows` for table `table` (id `table_id`) into `name`, with `extra` arguments.
    fn build(&self, name: &str, table: &str, table_id: u32, partitions: u32, rows: &[Row], extra: &[&str]) -> PathBuf {
        let input = self.work.path().join(format!("{name}.jsonl"));
        bulk::write_jsonl(&input, rows);
        let out = self.work.path().join(name);
        let snapshot = (bulk::now_ms() - 60_000).to_string();
        let mut args = vec!["--format", "jsonl", "--mode", "merge", "--snapshot-ts", snapshot.as_str()];
        args.extend_from_slice(extra);
        bulk::build(table, table_id, partitions, &[&input], &out, &args);
        out
    }

    fn good(&self, name: &str) -> PathBuf {
        self.build(name, "t", 1, self.partitions, &rows("v"), &[])
    }

    fn snapshot(&self) -> StoreState {
        runtime().block_on(async {
            let client = self.server.client().await;
            (
                get(&client, "before").await,
                get(&client, "k1").await,
                client.bulk_status(None).await.expect("status"),
                bulk::partition_files(self.server.data_dir()),
            )
        })
    }

    /// Links `dir` and checks it is refused for `reason` with nothing changed.
    fn assert_refused(&self, dir: &Path, reason: &str) {
        self.assert_refused_verifying(dir, reason, LinkVerify::Full);
    }

    /// [`Case::assert_refused`], with the link verifying as `verify` says.
    fn assert_refused_verifying(&self, dir: &Path, reason: &str, verify: LinkVerify) {
        let before = self.snapshot();
        let dir = dir.display().to_string();
        let outcome = runtime().block_on(async { self.server.client().await.bulk_link_verified(&dir, verify).await });
        match outcome {
            Err(ClientError::Server { code: ErrorCode::LoadRejected, message }) => {
                assert!(message.starts_with(&format!("{reason}: ")), "refused for {reason}, got: {message}");
            }
            other => panic!("expected a {reason} rejection, got {other:?}"),
        }
        assert_eq!(self.snapshot(), before, "a refused load ({reason}) changes nothing");
    }
}

async fn get(client: &Client, key: &str) -> Option<Vec<u8>> {
    client.get(Get::new("t", Key::new(key.as_bytes(), b""))).await.expect("get").map(|r| r.value)
}

/// Rewrites a load's descriptor after `edit`, resealing its checksum as the builder would, so
/// the defect under test is the only one.
fn reseal(dir: &Path, edit: impl FnOnce(&mut LoadDescriptor)) {
    let mut d = LoadDescriptor::read(dir).expect("descriptor");
    edit(&mut d);
    d.seal();
    std::fs::write(dir.join("load.json"), d.to_file_bytes()).expect("write");
}

fn first_file(dir: &Path) -> PathBuf {
    dir.join(&LoadDescriptor::read(dir).expect("descriptor").files[0].name)
}

/// Flips one bit inside the first data block of `file`; a second call flips it back.
fn toggle_a_bit(file: &Path) {
    let mut bytes = std::fs::read(file).expect("read");
    bytes[200] ^= 1;
    std::fs::write(file, bytes).expect("write");
}

fn checksum(path: &Path) -> String {
    format!("{:016x}", nacre_storage::bulk::build::file_checksum(path).expect("checksum"))
}

#[test]
fn a_flipped_byte_fails_the_file_checksum() {
    let c = case();
    let dir = c.good("load");
    let file = first_file(&dir);
    toggle_a_bit(&file);
    c.assert_refused(&dir, "checksum-mismatch");
}

#[test]
fn a_corrupt_block_fails_its_own_checksum() {
    let c = case();
    let dir = c.good("load");
    let file = first_file(&dir);
    toggle_a_bit(&file);
    reseal(&dir, |d| d.files[0].xxh3 = checksum(&file));
    c.assert_refused(&dir, "corrupt-segment");
}

/// A link asked to verify only checksums reads every byte for the whole-file checksum but
/// decodes no entry: a flipped byte is still refused, and the same load, repaired, links.
#[test]
fn a_checksums_only_link_still_refuses_a_flipped_byte() {
    let c = case();
    let dir = c.good("load");
    let file = first_file(&dir);
    toggle_a_bit(&file);
    c.assert_refused_verifying(&dir, "checksum-mismatch", LinkVerify::Checksums);
    toggle_a_bit(&file);
    runtime().block_on(async {
        let client = c.server.client().await;
        let load = client.bulk_link_verified(&dir.display().to_string(), LinkVerify::Checksums).await.expect("link");
        assert_eq!(load.state, BulkLoadState::Committed);
        assert_eq!(get(&client, "k1").await, Some(format!("v-{:0>40}", 1).into_bytes()));
    });
}

#[test]
fn a_load_for_another_partition_count_is_refused() {
    let c = case();
    let dir = c.build("load", "t", 1, c.partitions / 2, &rows("v"), &[]);
    c.assert_refused(&dir, "partition-count");
}

#[test]
fn a_key_in_the_wrong_partition_file_is_refused() {
    let c = case();
    let dir = c.good("load");
    reseal(&dir, |d| {
        let (a, b) = (d.files[0].partition, d.files[1].partition);
        d.files[0].partition = b;
        d.files[1].partition = a;
    });
    c.assert_refused(&dir, "key-outside-partition");
}

#[test]
fn unsorted_keys_are_refused() {
    let c = case();
    // Big enough that the first file has at least two data blocks.
    let rows: Vec<Row> = (0..20_000).map(|i| Row::new(format!("k{i}"), "", format!("{i:0>100}"))).collect();
    let dir = c.build("load", "t", 1, c.partitions, &rows, &[]);
    let file = first_file(&dir);
    let mut bytes = std::fs::read(&file).expect("read");
    // The first two data blocks swapped: each passes its checksum, but keys go backwards.
    let (first, rest) = bytes.split_at_mut(4096);
    first.swap_with_slice(&mut rest[..4096]);
    std::fs::write(&file, bytes).expect("write");
    reseal(&dir, |d| d.files[0].xxh3 = checksum(&file));
    c.assert_refused(&dir, "unsorted");
}

#[test]
fn an_unknown_segment_format_version_is_refused() {
    let c = case();
    let dir = c.good("load");
    reseal(&dir, |d| d.segment_format_version = 99);
    c.assert_refused(&dir, "format-version");
}

#[test]
fn an_edited_descriptor_fails_its_checksum() {
    let c = case();
    let dir = c.good("load");
    let text = std::fs::read_to_string(dir.join("load.json")).expect("read");
    std::fs::write(dir.join("load.json"), text.replacen("\"mode\": \"merge\"", "\"mode\": \"replace\"", 1))
        .expect("write");
    c.assert_refused(&dir, "bad-descriptor");
}

#[test]
fn a_missing_file_is_refused() {
    let c = case();
    let dir = c.good("load");
    std::fs::remove_file(first_file(&dir)).expect("remove");
    c.assert_refused(&dir, "unreadable-file");
}

#[test]
fn a_truncated_file_is_refused() {
    let c = case();
    let dir = c.good("load");
    let file = first_file(&dir);
    let bytes = std::fs::read(&file).expect("read");
    std::fs::write(&file, &bytes[..bytes.len() - 4096]).expect("write");
    c.assert_refused(&dir, "size-mismatch");
}

#[test]
fn a_load_for_a_table_that_does_not_exist_is_refused() {
    let c = case();
    let dir = c.build("load", "ghost", 1, c.partitions, &rows("v"), &[]);
    c.assert_refused(&dir, "unknown-table");
}

#[test]
fn a_load_built_for_another_table_id_is_refused() {
    let c = case();
    let dir = c.build("load", "t", 7, c.partitions, &rows("v"), &[]);
    c.assert_refused(&dir, "table-refuses");
}

#[test]
fn a_value_over_the_stores_limit_is_refused() {
    let c = case_with(Some("[limits]\nmax_value_bytes = 16\n".into()));
    let dir = c.good("load");
    c.assert_refused(&dir, "bad-entry");
}

#[test]
fn a_different_load_reusing_a_linked_id_is_refused() {
    let c = case();
    let first = c.build("first", "t", 1, c.partitions, &rows("v"), &["--load-id", "77"]);
    runtime().block_on(async { c.server.client().await.bulk_link(&first.display().to_string()).await.expect("link") });
    let second = c.build("second", "t", 1, c.partitions, &rows("w"), &["--load-id", "77"]);
    c.assert_refused(&second, "load-id-taken");
}

#[test]
fn a_rolled_back_load_cannot_be_linked_again() {
    let c = case();
    let dir = c.good("load");
    runtime().block_on(async {
        let client = c.server.client().await;
        let load = client.bulk_link(&dir.display().to_string()).await.expect("link");
        client.bulk_rollback(load.load_id).await.expect("rollback");
    });
    c.assert_refused(&dir, "rolled-back");
}

#[test]
fn a_snapshot_past_the_skew_bound_is_refused_by_the_builder_and_again_by_the_link_naming_the_load() {
    let c = case();
    let input = c.work.path().join("future.jsonl");
    bulk::write_jsonl(&input, &rows("future"));
    let future = (bulk::now_ms() + 3_600_000).to_string();
    let args = ["--format", "jsonl", "--mode", "replace", "--snapshot-ts", future.as_str()];
    let output = bulk::try_build("t", 1, c.partitions, &[&input], &c.work.path().join("refused"), &args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "an hour ahead is past the default 60 s bound");
    assert!(stderr.contains("beyond the clock skew bound"), "the builder says why: {stderr}");
    // Built on a machine told to allow it, the store still refuses it: a replace watermark an
    // hour ahead would hide every write of the next hour.
    let out = c.work.path().join("loose");
    let mut loose = args.to_vec();
    loose.extend_from_slice(&["--max-clock-skew-ms", "7200000"]);
    bulk::build("t", 1, c.partitions, &[&input], &out, &loose);
    c.assert_refused(&out, "too-far-in-future");
}
