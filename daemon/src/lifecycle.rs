//! A shard's life cycle as its services see it: whether it is stopping (and a way to wait for
//! that without polling), and the connections and requests it is serving, so the stop can
//! drain them. It knows nothing of what the services do.

use std::cell::Cell;

/// Stopping, and what is still being served.
#[derive(Debug, Default)]
pub struct Lifecycle {
    stopping: Cell<bool>,
    stop_event: event_listener::Event,
    active_requests: Cell<usize>,
    connections: Cell<usize>,
}

impl Lifecycle {
    /// True once the shard stops accepting work.
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Stops accepting work and wakes everything waiting in [`Lifecycle::until_stopping`].
    pub fn stop(&self) {
        self.stopping.set(true);
        self.stop_event.notify(usize::MAX);
    }

    /// Returns once the shard stops accepting work. Woken once, by the stop itself: a future
    /// raced against this one (an accept, a read) is never polled again for nothing. glommio 0.9
    /// leaks a waker reference each time a pending socket future is re-polled, and a timer
    /// waking the race every few milliseconds overflowed an idle task's reference count within
    /// minutes.
    pub async fn until_stopping(&self) {
        crate::event_wait::until(&self.stop_event, || self.stopping.get()).await;
    }

    /// Sleeps `duration`, or less if the shard starts stopping meanwhile.
    pub async fn sleep_unless_stopping(&self, duration: std::time::Duration) {
        futures_lite::FutureExt::or(
            async {
                glommio::timer::sleep(duration).await;
            },
            self.until_stopping(),
        )
        .await;
    }

    /// Counts a request (or a RESP pipeline) being served until the guard drops.
    pub fn serving(&self) -> Serving<'_> {
        self.active_requests.set(self.active_requests.get() + 1);
        Serving { life: self }
    }

    /// Requests being served now.
    pub fn active_requests(&self) -> usize {
        self.active_requests.get()
    }

    /// Open client connections.
    pub fn connections(&self) -> usize {
        self.connections.get()
    }

    /// Counts a connection as open until the guard drops.
    pub fn connected(&self) -> Connected<'_> {
        self.connections.set(self.connections.get() + 1);
        Connected { life: self }
    }
}

/// A request being served; see [`Lifecycle::serving`].
#[derive(Debug)]
pub struct Serving<'a> {
    life: &'a Lifecycle,
}

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.life.active_requests.set(self.life.active_requests.get() - 1);
    }
}

/// An open connection; see [`Lifecycle::connected`].
#[derive(Debug)]
pub struct Connected<'a> {
    life: &'a Lifecycle,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.life.connections.set(self.life.connections.get() - 1);
    }
}
