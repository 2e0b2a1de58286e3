//! Cross-shard messaging: a full mesh of bounded glommio shared channels, one per ordered pair
//! of shards for requests and another for replies.
//!
//! Requests and replies travel on separate channels so that a shard whose inbound request queue
//! is full (backpressure) still drains replies: a request handler blocked on sending its reply
//! can never wait on a shard that is itself waiting on it. Reply receivers only complete local
//! oneshots and never block. (glommio's own channel mesh is avoided: it can deadlock with small
//! capacities when one task both sends and receives.)

use crate::catalog::Catalog;
use crate::resp;
use futures_channel::oneshot;
use glommio::channels::shared_channel::{self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender};
use nacre_wire::{Reply, Request};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// What one shard asks another.
#[derive(Debug)]
pub enum Ask {
    /// Execute a request the receiver owns.
    Request(Request),
    /// Install this catalog (sent by shard 0 after an admin change).
    Catalog(Catalog),
    /// Run these RESP key operations, in order, on keys the receiver owns.
    Keyspace(Vec<resp::KeyOp>),
    /// List a page of keys of a partition the receiver owns.
    Keys(resp::KeysAsk),
    /// Run a RESP `SCAN` call whose cursor the receiver issued.
    Scan(resp::ScanCall),
    /// Write streamed versions durably to a partition the receiver owns (a Kafka message whose
    /// key belongs elsewhere than its Kafka partition's home).
    StreamWrite {
        /// The partition.
        partition: u32,
        /// The versions.
        entries: Vec<nacre_storage::Entry>,
    },
    /// This shard's part of a bulk link or rollback (sent by shard 0).
    Bulk(crate::bulk_link::BulkAsk),
}

/// What a shard answers.
#[derive(Debug)]
pub enum Answer {
    /// To [`Ask::Request`] and [`Ask::Catalog`].
    Reply(Reply),
    /// To [`Ask::Keyspace`] (one reply per operation) and [`Ask::Scan`] (one reply).
    Keyspace(Vec<resp::Reply>),
    /// To [`Ask::Keys`].
    Keys(Result<nacre_storage::KeysPage, String>),
    /// To [`Ask::StreamWrite`]: `Ok` once durable.
    StreamWrite(Result<(), crate::ingest::ForwardError>),
    /// To [`Ask::Bulk`].
    Bulk(Result<crate::bulk_link::BulkAnswer, String>),
}

/// A message on a request channel.
#[derive(Debug)]
pub struct Asked {
    /// Matches the answer to the question on the asking shard.
    pub ticket: u64,
    /// What is asked.
    pub ask: Ask,
}

/// A message on a reply channel.
#[derive(Debug)]
pub struct Answered {
    /// The ticket of the request answered.
    pub ticket: u64,
    /// The answer.
    pub reply: Answer,
}

/// One shard's unconnected ends of the mesh, built on the main thread and moved to the shard.
pub struct MeshEnds {
    /// Request senders, by destination shard (`None` for self).
    pub ask_to: Vec<Option<SharedSender<Asked>>>,
    /// Request receivers, by source shard.
    pub ask_from: Vec<Option<SharedReceiver<Asked>>>,
    /// Reply senders, by destination shard.
    pub answer_to: Vec<Option<SharedSender<Answered>>>,
    /// Reply receivers, by source shard.
    pub answer_from: Vec<Option<SharedReceiver<Answered>>>,
}

/// Builds every shard's ends for `shards` shards with `depth` messages per channel.
pub fn build(shards: usize, depth: usize) -> Vec<MeshEnds> {
    let mut ends: Vec<MeshEnds> = (0..shards)
        .map(|_| MeshEnds {
            ask_to: (0..shards).map(|_| None).collect(),
            ask_from: (0..shards).map(|_| None).collect(),
            answer_to: (0..shards).map(|_| None).collect(),
            answer_from: (0..shards).map(|_| None).collect(),
        })
        .collect();
    for from in 0..shards {
        for to in 0..shards {
            if from == to {
                continue;
            }
            let (tx, rx) = shared_channel::new_bounded(depth);
            ends[from].ask_to[to] = Some(tx);
            ends[to].ask_from[from] = Some(rx);
            let (tx, rx) = shared_channel::new_bounded(depth);
            ends[from].answer_to[to] = Some(tx);
            ends[to].answer_from[from] = Some(rx);
        }
    }
    ends
}

/// A shard's connected mesh.
pub struct Mesh {
    ask_to: Vec<Option<ConnectedSender<Asked>>>,
    answer_to: Vec<Option<Rc<ConnectedSender<Answered>>>>,
    pending: RefCell<HashMap<u64, oneshot::Sender<Answer>>>,
    next_ticket: Cell<u64>,
}

/// The receiving ends, handed to the shard's receive loops.
pub struct Inbound {
    /// Request receivers by source shard.
    pub asks: Vec<(usize, ConnectedReceiver<Asked>)>,
    /// Reply receivers by source shard.
    pub answers: Vec<ConnectedReceiver<Answered>>,
}

/// Why a cross-shard request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshError {
    /// The peer is gone (shutting down).
    Closed,
}

impl Mesh {
    /// Connects this shard's ends; must run on the shard's executor. Every end is connected
    /// concurrently: a sender's connect waits for its peer's receiver, and the peer may be
    /// connecting its own senders first.
    pub async fn connect(ends: MeshEnds) -> (Rc<Mesh>, Inbound) {
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
            ask_to: connected_ask_to,
            answer_to: connected_answer_to,
            pending: RefCell::new(HashMap::new()),
            next_ticket: Cell::new(1),
        });
        (mesh, inbound)
    }

    /// Asks shard `to` and waits for its answer. Waits while its queue is full (backpressure).
    pub async fn ask(&self, to: usize, ask: Ask) -> Result<Answer, MeshError> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let (tx, rx) = oneshot::channel();
        self.pending.borrow_mut().insert(ticket, tx);
        let sender = self.ask_to[to].as_ref().expect("a shard never asks itself");
        if sender.send(Asked { ticket, ask }).await.is_err() {
            self.pending.borrow_mut().remove(&ticket);
            return Err(MeshError::Closed);
        }
        rx.await.map_err(|_| MeshError::Closed)
    }

    /// Sends an answer back to shard `to`.
    pub async fn answer(&self, to: usize, ticket: u64, reply: Answer) {
        let sender = self.answer_to[to].clone().expect("a shard never answers itself");
        // A peer that is gone has nobody waiting for the answer.
        let _ = sender.send(Answered { ticket, reply }).await;
    }

    /// Completes the local waiter of an answer.
    pub fn complete(&self, answered: Answered) {
        if let Some(tx) = self.pending.borrow_mut().remove(&answered.ticket) {
            let _ = tx.send(answered.reply);
        }
    }
}
