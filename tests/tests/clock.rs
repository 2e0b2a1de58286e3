//! The hybrid clock across restarts: nacred's shards persist their clock's high-water mark, so a
//! restart, after a crash or a clean stop, never hands out a timestamp at or below one already
//! used, even when the wall clock was set back meanwhile (`NACRE_CLOCK_OFFSET_MS` shifts the
//! daemon's wall clock, as an NTP step would). What a user would see otherwise: an overwrite made
//! after the restart loses to the value it overwrote, because its timestamp is older.

use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::{Client, Get, Key, Put, TableSettings, Ts};
use std::time::Duration;

const TABLE: &str = "clocked";
/// Keys spread over every partition, so every shard stamps some.
const KEYS: usize = 32;
/// How far the restarted daemon's wall clock is set back: well past the persist-ahead lease
/// (1 s), within the skew bound (60 s).
const SET_BACK_MS: i64 = -30_000;

fn key(i: usize) -> Key {
    Key::new(format!("k{i:03}"), "")
}

/// Puts `value` under every key with the server's clock; returns the greatest timestamp given.
async fn put_all(client: &Client, value: &str) -> Ts {
    let mut newest = Ts(0);
    for i in 0..KEYS {
        let version = client.put(Put::new(TABLE, key(i), value)).await.expect("put");
        newest = newest.max(version.ts);
    }
    newest
}

/// Starts a daemon, writes every key twice (once with a client timestamp 20 s ahead, which the
/// clock must also stay above), stops it with `stop`, restarts it with its clock set back, and
/// overwrites every key: each overwrite must be stamped above every earlier timestamp, and read
/// back.
fn a_restart_with_the_clock_set_back_stamps_above_every_earlier_write(stop: impl FnOnce(&mut Server)) {
    let mut server = Server::start_with(ServerOptions::default());
    let runtime = nacre_tests::runtime();
    let before = runtime.block_on(async {
        let client = server.client().await;
        client.create_table(TABLE, TableSettings::default()).await.expect("create_table");
        let first = put_all(&client, "before").await;
        let mut ahead = Put::new(TABLE, key(0), "ahead");
        ahead.ts = Some(Ts::from_millis(first.millis() + 20_000));
        let ahead = client.put(ahead).await.expect("a client timestamp within the skew bound");
        first.max(ahead.ts)
    });
    stop(&mut server);
    server.set_env(vec![("NACRE_CLOCK_OFFSET_MS".to_owned(), SET_BACK_MS.to_string())]);
    server.restart();
    runtime.block_on(async {
        let client = server.client().await;
        for i in 0..KEYS {
            let version = client.put(Put::new(TABLE, key(i), "after")).await.expect("put after the restart");
            assert!(
                version.ts > before,
                "key {i}: stamped {:?}, at or below {before:?} stamped before the restart",
                version.ts
            );
            let row = client.get(Get::new(TABLE, key(i))).await.expect("get").expect("present");
            assert_eq!(row.value, b"after", "key {i}: the overwrite after the restart is the visible value");
        }
    });
    server.sigterm_and_wait(Duration::from_secs(30));
}

#[test]
fn after_a_crash_the_clock_resumes_above_every_timestamp_it_handed_out() {
    a_restart_with_the_clock_set_back_stamps_above_every_earlier_write(Server::sigkill);
}

#[test]
fn after_a_clean_stop_the_clock_resumes_above_every_timestamp_it_handed_out() {
    a_restart_with_the_clock_set_back_stamps_above_every_earlier_write(|server| {
        let status = server.sigterm_and_wait(Duration::from_secs(30));
        assert!(status.success(), "a clean stop: {status:?}");
    });
}

#[test]
fn a_corrupt_clock_mark_stops_the_start_with_a_message_naming_the_file() {
    let mut server = Server::start_with(ServerOptions::default());
    let status = server.sigterm_and_wait(Duration::from_secs(30));
    assert!(status.success(), "a clean stop: {status:?}");
    let mark = server.data_dir().join("clock").join("shard-00.hwm");
    let mut bytes = std::fs::read(&mark).expect("shard 0's clock mark exists after a start");
    // Both slots have been written by now (the start's raise and the stop's exact mark); flip a
    // bit of each record's bound.
    for slot in [0, 4096] {
        bytes[slot + 17] ^= 0x04;
    }
    std::fs::write(&mark, &bytes).expect("corrupting the mark");
    server.spawn();
    let status = server.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "a corrupt clock mark must stop the start");
    let log = server.log_tail();
    assert!(log.contains("shard-00.hwm") && log.contains("checksum mismatch"), "the message names the file: {log}");
}
