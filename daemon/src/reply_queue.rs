//! A native connection's replies on their way to the socket: each request's task encodes its
//! reply straight into the queue's buffer (with the shard's reused encoder), and the
//! connection's writer task takes everything queued and writes it with one `send`. No buffer or
//! channel message per reply.
//!
//! Bounded: a reply waits while the queue holds `limit` bytes or more, so a client that stops
//! reading stops its connection's requests at the point of replying, holding their permits,
//! and the connection stops reading requests. What one batch of waiting replies adds past the
//! limit is at most one reply each.

use crate::event_wait;
use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Replies encoded and not yet taken by the writer.
pub struct ReplyQueue {
    bytes: RefCell<Vec<u8>>,
    limit: usize,
    /// The writer, waiting for replies.
    writer: Cell<Option<Waker>>,
    /// Replies waiting for room.
    room: event_listener::Event,
    closed: Cell<bool>,
    /// The writer is gone (the socket failed): replies are dropped, not queued.
    abandoned: Cell<bool>,
}

impl ReplyQueue {
    /// An empty queue that makes replies wait at `limit` bytes.
    pub fn new(limit: usize) -> ReplyQueue {
        ReplyQueue {
            bytes: RefCell::default(),
            limit,
            writer: Cell::new(None),
            room: event_listener::Event::new(),
            closed: Cell::new(false),
            abandoned: Cell::new(false),
        }
    }

    /// Appends what `encode` writes, once the queue has room, and wakes the writer. Once the
    /// writer has abandoned the queue, returns at once and appends nothing.
    pub async fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) {
        event_wait::until(&self.room, || self.abandoned.get() || self.bytes.borrow().len() < self.limit).await;
        if self.abandoned.get() {
            return;
        }
        encode(&mut self.bytes.borrow_mut());
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    /// No more replies: the writer ends once it has written what is queued.
    pub fn close(&self) {
        self.closed.set(true);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    /// The writer can write no more: what is queued is dropped, and so is every reply after.
    pub fn abandon(&self) {
        self.abandoned.set(true);
        self.bytes.borrow_mut().clear();
        self.room.notify(usize::MAX);
    }

    /// Waits for replies and swaps them into `out` (which must be empty); false once the queue
    /// is closed and empty.
    pub async fn take(&self, out: &mut Vec<u8>) -> bool {
        debug_assert!(out.is_empty(), "the writer hands back an empty buffer");
        poll_fn(|cx| {
            let mut bytes = self.bytes.borrow_mut();
            if !bytes.is_empty() {
                std::mem::swap(&mut *bytes, out);
                drop(bytes);
                self.room.notify(usize::MAX);
                return Poll::Ready(true);
            }
            if self.closed.get() {
                return Poll::Ready(false);
            }
            self.writer.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::Context;

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn the_writer_takes_every_reply_queued_so_far_in_one_buffer() {
        let queue = ReplyQueue::new(1 << 10);
        futures_lite::future::block_on(async {
            queue.push(|b| b.extend_from_slice(b"one")).await;
            queue.push(|b| b.extend_from_slice(b"two")).await;
        });
        let mut out = Vec::new();
        assert_eq!(poll(pin!(queue.take(&mut out))), Poll::Ready(true));
        assert_eq!(out, b"onetwo");
        out.clear();
        assert!(poll(pin!(queue.take(&mut out))).is_pending(), "nothing queued: the writer waits");
        queue.close();
        assert_eq!(poll(pin!(queue.take(&mut out))), Poll::Ready(false), "closed and empty: the writer ends");
    }

    #[test]
    fn a_reply_waits_while_the_queue_is_at_its_limit_and_goes_in_once_the_writer_takes() {
        let queue = ReplyQueue::new(4);
        futures_lite::future::block_on(queue.push(|b| b.extend_from_slice(b"12345")));
        let mut second = pin!(queue.push(|b| b.extend_from_slice(b"6")));
        assert!(poll(second.as_mut()).is_pending(), "5 bytes queued, limit 4: the reply waits");
        let mut out = Vec::new();
        assert_eq!(poll(pin!(queue.take(&mut out))), Poll::Ready(true));
        assert_eq!(out, b"12345");
        assert!(poll(second.as_mut()).is_ready(), "room again: the reply goes in");
        out.clear();
        assert_eq!(poll(pin!(queue.take(&mut out))), Poll::Ready(true));
        assert_eq!(out, b"6");
    }

    #[test]
    fn once_the_writer_abandons_the_queue_waiting_replies_are_dropped_not_stuck() {
        let queue = ReplyQueue::new(4);
        futures_lite::future::block_on(queue.push(|b| b.extend_from_slice(b"12345")));
        let mut second = pin!(queue.push(|b| b.extend_from_slice(b"6")));
        assert!(poll(second.as_mut()).is_pending());
        queue.abandon();
        assert!(poll(second.as_mut()).is_ready(), "a reply waiting for room goes nowhere, at once");
        futures_lite::future::block_on(queue.push(|_| panic!("nothing is encoded for a gone writer")));
    }
}
