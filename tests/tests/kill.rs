//! Durability under SIGKILL: writers keep many `Sync` puts (and some atomic batches) in flight
//! on one pipelined client; the daemon is SIGKILLed at a random moment, [`KILLS`] times, and
//! after each restart every acknowledged write must read back (see `nacre_tests::acked` for
//! the exact invariant). Some rounds also kill the daemon again while it is still recovering.
//!
//! The kill moments are random but the test never depends on timing to pass: each round waits
//! for a random number of acknowledgements before its random pause, so every kill lands under
//! load, and the check holds whenever the kill lands.

use nacre_tests::acked::{AckLog, Load, LoadOptions, SharedLog, verify};
use nacre_tests::server::{Server, ServerOptions};
use nacre_wire::TableSettings;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// SIGKILLs under load.
const KILLS: usize = 24;
const TABLE: &str = "durable";
/// Memtables small enough that the load flushes many times a round, so kills also land in the
/// middle of flushes (segment written, manifest edit, WAL retirement), not only between them.
const SMALL_MEMTABLES: &str = "[memory]\nmemtable_budget_bytes = 65536\n";

#[test]
fn acknowledged_sync_writes_survive_sigkill_at_random_moments() {
    let seed = nacre_tests::seed::seed("acknowledged_sync_writes_survive_sigkill_at_random_moments");
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut server =
        Server::start_with(ServerOptions { config: Some(SMALL_MEMTABLES.to_owned()), ..ServerOptions::default() });
    let runtime = nacre_tests::runtime();
    let settings = TableSettings { max_versions: 2, ..TableSettings::default() };
    runtime.block_on(async { server.client().await.create_table(TABLE, settings).await.expect("create_table") });
    let log: SharedLog = Arc::new(Mutex::new(AckLog::default()));
    let started = Instant::now();
    let mut recovery_kills = 0;
    for round in 0..KILLS {
        let client = Arc::new(runtime.block_on(server.client()));
        let options = LoadOptions {
            table: TABLE.to_owned(),
            writers: 16,
            key_space: 2_000,
            mixed_durability: false,
            tag: format!("round{round}"),
        };
        let load = runtime.block_on(async { Load::start(client.clone(), log.clone(), options, seed ^ round as u64) });
        let t0 = Instant::now();
        runtime.block_on(load.wait_for_acks(rng.usize(1..300), Duration::from_secs(60)));
        let t_load = t0.elapsed();
        std::thread::sleep(Duration::from_millis(rng.u64(..150)));
        load.expect_errors();
        server.sigkill();
        runtime.block_on(load.stop());
        drop(client);

        if rng.u8(..4) == 0 {
            // Kill it again somewhere in recovery (or just after): recovery must survive that too.
            server.spawn();
            std::thread::sleep(Duration::from_millis(rng.u64(..120)));
            server.sigkill();
            recovery_kills += 1;
        }
        let t0 = Instant::now();
        server.restart();
        let t_restart = t0.elapsed();
        let keys = runtime.block_on(async { verify(&server.client().await, TABLE, &log).await });
        let t_verify = t0.elapsed() - t_restart;
        let acked = log.lock().expect("log").acked_count();
        eprintln!(
            "round {round}: {keys} keys hold all {acked} acknowledged writes \
             (load {t_load:.0?}, restart {t_restart:.0?}, check {t_verify:.0?})"
        );
    }
    let acked = log.lock().expect("log").acked_count();
    assert!(acked >= KILLS, "every round acknowledged at least one write: {acked} in {KILLS} rounds");
    eprintln!(
        "{KILLS} kills under load and {recovery_kills} during recovery, {acked} acknowledged writes, in {:?}",
        started.elapsed()
    );
}
