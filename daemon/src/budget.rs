//! A byte budget on one shard: connections take bytes before they buffer a request or hold
//! replies, and give them back when done. A taker over the budget waits (so its socket is not
//! read) until others give back; a lone taking larger than the whole budget goes when nothing
//! else is held, so nothing can wait forever. Single-threaded: a budget lives on its shard.

use crate::event_wait;
use std::cell::Cell;
use std::rc::Rc;

/// Bytes a shard (or a connection) may hold at once, and how many it holds.
#[derive(Debug)]
pub struct ByteBudget {
    limit: usize,
    used: Cell<usize>,
    peak: Cell<usize>,
    freed: event_listener::Event,
}

/// Bytes taken from a [`ByteBudget`]; given back when dropped.
#[derive(Debug)]
#[must_use = "the bytes are given back when this is dropped"]
pub struct HeldBytes {
    budget: Rc<ByteBudget>,
    bytes: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Rc<ByteBudget> {
        Rc::new(ByteBudget { limit, used: Cell::new(0), peak: Cell::new(0), freed: event_listener::Event::new() })
    }

    /// Takes `bytes`, waiting while they do not fit.
    pub async fn take(self: &Rc<Self>, bytes: usize) -> HeldBytes {
        event_wait::until(&self.freed, || self.fits(bytes)).await;
        self.take_now(bytes)
    }

    /// Waits until less than the whole budget is held.
    pub async fn wait_for_room(&self) {
        event_wait::until(&self.freed, || self.used.get() < self.limit).await;
    }

    /// Takes `bytes` at once, whether or not they fit (for bytes that already exist, such as
    /// replies computed); later takers wait until they are given back.
    pub fn take_now(self: &Rc<Self>, bytes: usize) -> HeldBytes {
        let used = self.used.get() + bytes;
        self.used.set(used);
        self.peak.set(self.peak.get().max(used));
        HeldBytes { budget: self.clone(), bytes }
    }

    fn fits(&self, bytes: usize) -> bool {
        let used = self.used.get();
        used == 0 || used + bytes <= self.limit
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// The most bytes held at once.
    pub fn peak(&self) -> usize {
        self.peak.get()
    }
}

impl Drop for HeldBytes {
    fn drop(&mut self) {
        self.budget.used.set(self.budget.used.get() - self.bytes);
        self.budget.freed.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    fn poll<F: Future>(f: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_taker_over_the_budget_waits_until_bytes_are_given_back() {
        let budget = ByteBudget::new(100);
        let first = futures_lite::future::block_on(budget.take(60));
        let mut second = std::pin::pin!(budget.take(50));
        assert!(poll(second.as_mut()).is_pending(), "60 + 50 is over 100");
        let third = futures_lite::future::block_on(budget.take(40));
        assert_eq!(budget.used(), 100);
        drop(first);
        let Poll::Ready(second) = poll(second.as_mut()) else { panic!("60 bytes were given back") };
        assert_eq!((budget.used(), budget.peak()), (90, 100));
        drop((second, third));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_taking_larger_than_the_budget_goes_alone() {
        let budget = ByteBudget::new(10);
        let small = futures_lite::future::block_on(budget.take(5));
        let mut big = std::pin::pin!(budget.take(50));
        assert!(poll(big.as_mut()).is_pending(), "it waits for the others");
        drop(small);
        let Poll::Ready(_held) = poll(big.as_mut()) else { panic!("alone, it goes") };
        let mut room = std::pin::pin!(budget.wait_for_room());
        assert!(poll(room.as_mut()).is_pending(), "the budget is over-full while the big one is held");
    }
}
