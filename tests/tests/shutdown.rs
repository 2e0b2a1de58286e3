//! Clean shutdown: SIGTERM (and SIGINT) under a write load exits 0 within a bounded time, and a
//! restart serves every acknowledged write, `Async` ones included, since a clean stop flushes
//! and syncs everything it acknowledged. A clean stop leaves no unflushed WAL, so the directory
//! then also starts under a different shard count.

use nacre_tests::acked::{AckLog, Load, LoadOptions, SharedLog, verify};
use nacre_tests::server::Server;
use nacre_wire::TableSettings;
use nix::sys::signal::Signal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TABLE: &str = "stopped";
/// Longest a signalled daemon may take to exit: its default drain deadline (10 s) plus a flush
/// of every partition, with room for a loaded machine.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

#[test]
fn sigterm_under_load_exits_zero_and_a_restart_serves_every_acknowledged_write() {
    let seed = nacre_tests::seed::seed("sigterm_under_load_exits_zero_and_a_restart_serves_every_acknowledged_write");
    let mut server = Server::start();
    let runtime = nacre_tests::runtime();
    runtime.block_on(async {
        server.client().await.create_table(TABLE, TableSettings::default()).await.expect("create_table")
    });
    let log: SharedLog = Arc::new(Mutex::new(AckLog::default()));
    for (leg, signal) in [Signal::SIGTERM, Signal::SIGINT].into_iter().enumerate() {
        let client = Arc::new(runtime.block_on(server.client()));
        let options = LoadOptions {
            table: TABLE.to_owned(),
            writers: 16,
            key_space: 5_000,
            mixed_durability: true,
            tag: format!("leg{leg}"),
        };
        let load = runtime.block_on(async { Load::start(client.clone(), log.clone(), options, seed ^ leg as u64) });
        runtime.block_on(load.wait_for_acks(2_000, Duration::from_secs(60)));
        load.expect_errors();
        let signalled = Instant::now();
        let status = server.signal_and_wait(signal, EXIT_TIMEOUT);
        let took = signalled.elapsed();
        assert!(status.success(), "nacred exited with {status} after {signal}\n{}", server.log_tail());
        runtime.block_on(load.stop());
        drop(client);
        let log_text = std::fs::read_to_string(server.data_dir().join("nacred-stderr.log")).expect("the log");
        assert!(log_text.trim_end().ends_with("stopped cleanly"), "{}", server.log_tail());

        server.restart();
        let keys = runtime.block_on(async { verify(&server.client().await, TABLE, &log).await });
        let (acked, sync) = {
            let log = log.lock().expect("log");
            (log.acked_count(), log.acked_sync_count())
        };
        assert!(sync > 0 && acked > sync, "both durabilities were acknowledged: {sync} sync of {acked}");
        eprintln!("{signal}: exit 0 after {took:?}; {keys} keys hold all {acked} acknowledged writes");
    }

    // A clean stop flushed everything, so one shard can take over the directory.
    let status = server.sigterm_and_wait(EXIT_TIMEOUT);
    assert!(status.success(), "{status}");
    server.set_cores(1);
    server.restart();
    let keys = runtime.block_on(async { verify(&server.client().await, TABLE, &log).await });
    eprintln!("one shard serves all {keys} keys after a clean stop under two");
}
