//! Cross-core calls wake a sleeping core every time. Two executors call each other through the
//! mesh, one call at a time each, so between calls each core runs out of work and goes to sleep
//! and every call must wake it. glommio's sleep protocol (patched in `third_party/glommio`: a
//! fence on each side where upstream sent a `membarrier`) must never miss one: a missed wake-up
//! leaves a call unanswered, and the test fails at its deadline instead of hanging.

use futures_channel::oneshot;
use glommio::{LocalExecutorBuilder, Placement};
use nacre_daemon::mesh::{self, Mesh, MeshLimits};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

/// Round trips each core makes to the other.
const CALLS: u64 = 50_000;
/// Generous: the calls take about a second on a two-core machine.
const DEADLINE: Duration = Duration::from_secs(120);

/// A core's state: the calls it served, and who to tell once it has served them all.
struct Served {
    calls: Cell<u64>,
    all: RefCell<Option<oneshot::Sender<()>>>,
}

#[test]
fn every_cross_core_call_wakes_its_sleeping_peer() {
    let limits = MeshLimits { queue_depth: 8, calls_in_flight_per_peer: 4 };
    let (done_tx, done_rx) = mpsc::channel();
    let mut handles = Vec::new();
    for (me, ends) in mesh::build::<Served>(2, limits).into_iter().enumerate() {
        let done = done_tx.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("mesh-{me}"))
            .io_memory(64 << 10)
            .spawn(move || async move {
                let (mesh, inbound): (Rc<Mesh<Served>>, _) = Mesh::connect(me, ends, limits).await;
                let (all_tx, all_rx) = oneshot::channel();
                let served = Rc::new(Served { calls: Cell::new(0), all: RefCell::new(Some(all_tx)) });
                let queue = glommio::executor().create_task_queue(
                    glommio::Shares::default(),
                    glommio::Latency::NotImportant,
                    "mesh",
                );
                mesh.serve(&served, inbound, queue);
                let peer = 1 - me;
                for call in 0..CALLS {
                    let answer = mesh
                        .invoke_on(peer, move |s: Rc<Served>| async move {
                            s.calls.set(s.calls.get() + 1);
                            if s.calls.get() == CALLS
                                && let Some(all) = s.all.borrow_mut().take()
                            {
                                let _ = all.send(());
                            }
                            call * 2
                        })
                        .await
                        .expect("the peer serves until both are done");
                    assert_eq!(answer, call * 2, "call {call} from core {me} got another call's result");
                }
                done.send(me).expect("the test waits");
                // Serve the peer's remaining calls until it is done too (no timer here: a
                // timer would wake this core and hide a missed wake-up).
                all_rx.await.expect("the state lives as long as this task");
                served.calls.get()
            })
            .expect("an executor starts");
        handles.push(handle);
    }
    drop(done_tx);
    for _ in 0..2 {
        match done_rx.recv_timeout(DEADLINE) {
            Ok(_) => {}
            Err(e) => {
                panic!("a core's {CALLS} cross-core calls did not finish within {DEADLINE:?} ({e}): a lost wake-up")
            }
        }
    }
    for handle in handles {
        assert_eq!(handle.join().expect("the executor ran"), CALLS, "each core served every call of its peer");
    }
}
