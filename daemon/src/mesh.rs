//! Cross-core calls: [`Mesh::invoke_on`] runs a closure on the core that owns some state and
//! returns the closure's own result to the caller, as Seastar's `invoke_on` does. The mesh names
//! no service: it is generic over the per-core state `S` the closures receive, and carries them
//! as boxed calls over a full mesh of bounded glommio shared channels, one per ordered pair of
//! cores for calls and another for results.
//!
//! - A call to the caller's own core runs in place, with no message.
//! - Calls and results travel on separate channels, so a core whose inbound calls are at their
//!   bound still drains results: a call blocked on sending its result can never wait on a core
//!   that is itself waiting on it. Result receivers only complete local oneshots and never block.
//! - Back-pressure is real: each core runs at most `calls_in_flight_per_peer` calls from each
//!   peer at once. Past that its receive loop stops taking calls, the peer's channel fills
//!   (`queue_depth`) and the peer's callers wait in `invoke_on`. A closure that runs on a peer
//!   must not itself call back through the mesh (none does), so the bound cannot deadlock.
//! - glommio's own channel mesh is avoided: it can deadlock with small capacities when one task
//!   both sends and receives.

use futures_channel::oneshot;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};

/// A call's result, type-erased for the channel; [`Mesh::invoke_on`] restores its type.
type Erased = Box<dyn Any + Send>;

/// A call as it travels: a closure that runs on the receiving core's state.
type Call<S> = Box<dyn FnOnce(Rc<S>) -> Pin<Box<dyn Future<Output = Erased>>> + Send>;

/// A message on a call channel.
struct Asked<S> {
    /// Matches the result to its caller on the calling core.
    ticket: u64,
    call: Call<S>,
}

/// A message on a result channel.
struct Answered {
    ticket: u64,
    result: Erased,
}

/// One core's unconnected ends of the mesh, built on the main thread and moved to the core.
pub struct MeshEnds<S> {
    ask_to: Vec<Option<SharedSender<Asked<S>>>>,
    ask_from: Vec<Option<SharedReceiver<Asked<S>>>>,
    answer_to: Vec<Option<SharedSender<Answered>>>,
    answer_from: Vec<Option<SharedReceiver<Answered>>>,
}

/// How a mesh is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeshLimits {
    /// Messages each channel holds.
    pub queue_depth: usize,
    /// Calls from one peer a core runs at once.
    pub calls_in_flight_per_peer: usize,
}

/// Builds every core's ends for `cores` cores.
pub fn build<S>(cores: usize, limits: MeshLimits) -> Vec<MeshEnds<S>> {
    let mut ends: Vec<MeshEnds<S>> = (0..cores)
        .map(|_| MeshEnds {
            ask_to: (0..cores).map(|_| None).collect(),
            ask_from: (0..cores).map(|_| None).collect(),
            answer_to: (0..cores).map(|_| None).collect(),
            answer_from: (0..cores).map(|_| None).collect(),
        })
        .collect();
    for from in 0..cores {
        for to in (0..cores).filter(|to| *to != from) {
            let (tx, rx) = shared_channel::new_bounded(limits.queue_depth);
            ends[from].ask_to[to] = Some(tx);
            ends[to].ask_from[from] = Some(rx);
            let (tx, rx) = shared_channel::new_bounded(limits.queue_depth);
            ends[from].answer_to[to] = Some(tx);
            ends[to].answer_from[from] = Some(rx);
        }
    }
    ends
}

/// Why a cross-core call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// The peer is gone (shutting down), or the state was dropped.
    #[error("core {core} is shutting down")]
    Closed {
        /// The core called.
        core: usize,
    },
}

/// Calls this core is running for peers, now and at most.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MeshStats {
    /// Calls from peers running now.
    pub calls_in_flight: usize,
    /// The most calls from one peer that ran at once since start.
    pub calls_in_flight_peak_per_peer: usize,
    /// Calls this core sent to peers.
    pub calls_sent: u64,
}

/// A core's connected mesh.
pub struct Mesh<S> {
    me: usize,
    limits: MeshLimits,
    here: RefCell<Weak<S>>,
    ask_to: Vec<Option<ConnectedSender<Asked<S>>>>,
    answer_to: Vec<Option<Rc<ConnectedSender<Answered>>>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Erased>>>,
    next_ticket: Cell<u64>,
    in_flight: Cell<usize>,
    peak_per_peer: Cell<usize>,
    sent: Cell<u64>,
}

/// The receiving ends, for [`Mesh::serve`].
pub struct Inbound<S> {
    asks: Vec<(usize, ConnectedReceiver<Asked<S>>)>,
    answers: Vec<ConnectedReceiver<Answered>>,
}

impl<S: 'static> Mesh<S> {
    /// Connects core `me`'s ends; must run on that core's executor. Every end is connected
    /// concurrently: a sender's connect waits for its peer's receiver, and the peer may be
    /// connecting its own senders first.
    pub async fn connect(me: usize, ends: MeshEnds<S>, limits: MeshLimits) -> (Rc<Mesh<S>>, Inbound<S>) {
        let ask_to: Vec<_> =
            ends.ask_to.into_iter().map(|tx| tx.map(|tx| glommio::spawn_local(tx.connect()))).collect();
        let answer_to: Vec<_> =
            ends.answer_to.into_iter().map(|tx| tx.map(|tx| glommio::spawn_local(tx.connect()))).collect();
        let asks: Vec<_> = ends
            .ask_from
            .into_iter()
            .enumerate()
            .filter_map(|(from, rx)| rx.map(|rx| (from, glommio::spawn_local(rx.connect()))))
            .collect();
        let answers: Vec<_> =
            ends.answer_from.into_iter().flatten().map(|rx| glommio::spawn_local(rx.connect())).collect();
        let mut connected_ask_to = Vec::new();
        for task in ask_to {
            connected_ask_to.push(match task {
                Some(t) => Some(t.await),
                None => None,
            });
        }
        let mut connected_answer_to = Vec::new();
        for task in answer_to {
            connected_answer_to.push(match task {
                Some(t) => Some(Rc::new(t.await)),
                None => None,
            });
        }
        let mut inbound = Inbound { asks: Vec::new(), answers: Vec::new() };
        for (from, task) in asks {
            inbound.asks.push((from, task.await));
        }
        for task in answers {
            inbound.answers.push(task.await);
        }
        let mesh = Rc::new(Mesh {
            me,
            limits,
            here: RefCell::new(Weak::new()),
            ask_to: connected_ask_to,
            answer_to: connected_answer_to,
            pending: RefCell::new(HashMap::new()),
            next_ticket: Cell::new(1),
            in_flight: Cell::new(0),
            peak_per_peer: Cell::new(0),
            sent: Cell::new(0),
        });
        (mesh, inbound)
    }

    /// Starts serving peers' calls on `here`, this core's state, in task queue `queue`: one
    /// loop per peer that takes a call only while fewer than the bound run, and one per peer
    /// completing results. Calls to this core run in place on `here` from now on too.
    pub fn serve(self: &Rc<Self>, here: &Rc<S>, inbound: Inbound<S>, queue: glommio::TaskQueueHandle) {
        *self.here.borrow_mut() = Rc::downgrade(here);
        for (from, rx) in inbound.asks {
            let mesh = self.clone();
            let task = async move {
                let slots = std::sync::Arc::new(async_lock::Semaphore::new(mesh.limits.calls_in_flight_per_peer));
                let running = Rc::new(Cell::new(0usize));
                loop {
                    // The permit first: at the bound, calls wait in the channel and the peer's
                    // callers wait to send.
                    let permit = slots.acquire_arc().await;
                    let Some(asked) = rx.recv().await else { return };
                    let Some(state) = mesh.here.borrow().upgrade() else { return };
                    running.set(running.get() + 1);
                    mesh.in_flight.set(mesh.in_flight.get() + 1);
                    mesh.peak_per_peer.set(mesh.peak_per_peer.get().max(running.get()));
                    let (mesh, running) = (mesh.clone(), running.clone());
                    glommio::spawn_local(async move {
                        let result = (asked.call)(state).await;
                        running.set(running.get() - 1);
                        mesh.in_flight.set(mesh.in_flight.get() - 1);
                        drop(permit);
                        mesh.answer(from, asked.ticket, result).await;
                    })
                    .detach();
                }
            };
            glommio::spawn_local_into(task, queue).expect("the queue exists").detach();
        }
        for rx in inbound.answers {
            let mesh = self.clone();
            glommio::spawn_local_into(
                async move {
                    while let Some(answered) = rx.recv().await {
                        mesh.complete(answered);
                    }
                },
                queue,
            )
            .expect("the queue exists")
            .detach();
        }
    }

    /// This core's index.
    pub fn me(&self) -> usize {
        self.me
    }

    /// Runs `call` on core `core`'s state and returns its result: in place when `core` is this
    /// one, otherwise through the mesh, waiting while that core's bound is reached.
    pub async fn invoke_on<R, F, Fut>(&self, core: usize, call: F) -> Result<R, MeshError>
    where
        F: FnOnce(Rc<S>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if core == self.me {
            let here = self.here.borrow().upgrade().ok_or(MeshError::Closed { core })?;
            return Ok(call(here).await);
        }
        let sender = self.ask_to.get(core).and_then(Option::as_ref).ok_or(MeshError::Closed { core })?;
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(ticket, tx);
        let call: Call<S> = Box::new(move |state| Box::pin(async move { Box::new(call(state).await) as Erased }));
        if sender.send(Asked { ticket, call }).await.is_err() {
            self.pending.borrow_mut().remove(&ticket);
            return Err(MeshError::Closed { core });
        }
        self.sent.set(self.sent.get() + 1);
        let result = rx.await.map_err(|_| MeshError::Closed { core })?;
        Ok(*result.downcast::<R>().expect("a result has the type its call returned"))
    }

    /// Calls from peers running now and at most.
    pub fn stats(&self) -> MeshStats {
        MeshStats {
            calls_in_flight: self.in_flight.get(),
            calls_in_flight_peak_per_peer: self.peak_per_peer.get(),
            calls_sent: self.sent.get(),
        }
    }

    async fn answer(&self, to: usize, ticket: u64, result: Erased) {
        if let Some(sender) = self.answer_to.get(to).and_then(Option::clone) {
            // A peer that is gone has nobody waiting for the result.
            let _ = sender.send(Answered { ticket, result }).await;
        }
    }

    fn complete(&self, answered: Answered) {
        if let Some(tx) = self.pending.borrow_mut().remove(&answered.ticket) {
            let _ = tx.send(answered.result);
        }
    }
}
