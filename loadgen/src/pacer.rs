//! When open-loop requests go out. Tokio's own timers tick in milliseconds, which would make
//! every request up to a millisecond late (and, since latency counts from the due time, add
//! that to every latency). A `timerfd` per sender, set for each request, cost a timer interrupt
//! and a `timerfd_settime` per request: on a virtual machine that made the client itself the
//! bottleneck at 45,000 requests a second over 50 sessions (p50 2 ms against redis-server). So
//! one `timerfd` serves the whole run: waiting senders sit in a heap, due times rounded up to a
//! [`TICK`] grid so senders due close together share an expiry, and each expiry wakes every
//! sender due and sets the timer for the next. A request goes out within a tick (plus the time
//! to wake) after it was due; an idle run sets no timer.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// How often the pacer looks for senders that are due.
pub const TICK: Duration = Duration::from_micros(50);

/// A timerfd, as the runtime's poller sees it.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// A sender waiting for its due time.
struct Waiting {
    due: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    /// Reversed, so the max-heap's top is the earliest due.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// The senders waiting, earliest due first, and when the timer is set to go off.
#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Waiting>,
    next_seq: u64,
    armed: Option<Instant>,
}

/// What the senders and the ticker share.
struct Shared {
    fd: AsyncFd<Timer>,
    /// Due times are rounded up to a multiple of [`TICK`] from here, so senders due close
    /// together share one expiry.
    epoch: Instant,
    queue: Mutex<Queue>,
    /// Set if the timer failed: every wait then ends at once (the run goes on, late, and the
    /// message says so).
    failed: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `at` rounded up to the tick grid.
    fn on_grid(&self, at: Instant) -> Instant {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        let tick = TICK.as_nanos();
        let ticks = since.div_ceil(tick);
        self.epoch + Duration::from_nanos(u64::try_from(ticks * tick).unwrap_or(u64::MAX))
    }

    /// Sets the timer for the earliest waiter, unless it is already set for that time or
    /// sooner; with no waiter, leaves it as it is (an expiry with nobody due does nothing).
    fn arm(&self, queue: &mut Queue) -> io::Result<()> {
        let Some(first) = queue.heap.peek() else { return Ok(()) };
        let at = self.on_grid(first.due);
        if queue.armed.is_some_and(|armed| armed <= at) {
            return Ok(());
        }
        // A zero expiry would disarm the timer: at least a nanosecond.
        let after = at.saturating_duration_since(Instant::now()).max(Duration::from_nanos(1));
        self.fd.get_ref().0.set(Expiration::OneShot(TimeSpec::from_duration(after)), TimerSetTimeFlags::empty())?;
        queue.armed = Some(at);
        Ok(())
    }

    /// Wakes every sender due by now (all of them once the timer has failed) and sets the timer
    /// for the next.
    fn expire(&self) -> io::Result<()> {
        let all = self.failed.load(Ordering::Relaxed);
        let mut queue = self.lock();
        queue.armed = None;
        let now = Instant::now();
        while queue.heap.peek().is_some_and(|w| all || w.due <= now) {
            if let Some(waiting) = queue.heap.pop() {
                waiting.waker.wake();
            }
        }
        if all { Ok(()) } else { self.arm(&mut queue) }
    }

    fn fail(&self, error: &io::Error) {
        eprintln!("nacre-loadgen: the open-loop timer failed ({error}); requests now go out as soon as they can");
        self.failed.store(true, Ordering::Relaxed);
        let _ = self.expire();
    }
}

/// Stops the ticker when the last [`Pacer`] clone is dropped.
struct Ticker(tokio::task::AbortHandle);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The run's pacer; clones share it.
#[derive(Clone)]
pub struct Pacer {
    shared: Arc<Shared>,
    _ticker: Arc<Ticker>,
}

impl Pacer {
    /// Starts the timer's task on the current runtime.
    ///
    /// # Errors
    ///
    /// If the kernel gives no timerfd.
    pub fn start() -> io::Result<Pacer> {
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        // Deprecated because a caller could close or replace the descriptor while it is
        // registered (tokio#8587); `Timer` owns it and moves into the `AsyncFd`, so neither can
        // happen. `register_with_interest` says the same but is `unsafe`, which this workspace
        // forbids.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(Timer(timer), Interest::READABLE)?;
        let shared = Arc::new(Shared {
            fd,
            epoch: Instant::now(),
            queue: Mutex::new(Queue::default()),
            failed: AtomicBool::new(false),
        });
        let ticker = tokio::spawn(tick(Arc::clone(&shared))).abort_handle();
        Ok(Pacer { shared, _ticker: Arc::new(Ticker(ticker)) })
    }

    /// Returns once `at` has passed: at the first expiry of the timer after it (within a
    /// [`TICK`] and the time to wake). Cancel-safe: a wait dropped early leaves a stale entry
    /// that wakes its task once, harmlessly.
    pub async fn sleep_until(&self, at: Instant) {
        let mut registered = false;
        poll_fn(|cx| {
            if Instant::now() >= at || self.shared.failed.load(Ordering::Relaxed) {
                return Poll::Ready(());
            }
            if !registered {
                let mut queue = self.shared.lock();
                let seq = queue.next_seq;
                queue.next_seq += 1;
                queue.heap.push(Waiting { due: at, seq, waker: cx.waker().clone() });
                let armed = self.shared.arm(&mut queue);
                drop(queue);
                if let Err(e) = armed {
                    self.shared.fail(&e);
                    return Poll::Ready(());
                }
                registered = true;
            }
            Poll::Pending
        })
        .await;
    }
}

/// The timer's task: at each expiry, wakes the senders that are due and sets the next expiry.
async fn tick(shared: Arc<Shared>) {
    loop {
        let outcome = match shared.fd.readable().await {
            // A read before expiry fails with EAGAIN, which clears the readiness.
            Ok(mut ready) => match ready.try_io(|timer| timer.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(result) => result.and_then(|()| shared.expire()),
                Err(_would_block) => continue,
            },
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            shared.fail(&e);
            return;
        }
    }
}

/// Sleeps until `at` on `pacer`; forever when either is missing (closed loop, or nothing more
/// to send), so a `select!` arm with it never fires.
pub async fn sleep_until_or_forever(pacer: Option<&Pacer>, at: Option<Instant>) {
    match (pacer, at) {
        (Some(pacer), Some(at)) => pacer.sleep_until(at).await,
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn it_never_wakes_before_the_due_time() {
        // How late it wakes depends on the machine's load, so no test bounds it; the open-loop
        // stall test and docs/loadgen.md show it.
        let pacer = Pacer::start().expect("a timerfd");
        for micros in [1, 50, 300, 1_500] {
            let due = Instant::now() + Duration::from_micros(micros);
            pacer.sleep_until(due).await;
            assert!(Instant::now() >= due, "woke before a due time {micros} us ahead");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn many_waiters_each_wake_and_a_cancelled_wait_does_no_harm() {
        let pacer = Pacer::start().expect("a timerfd");
        pacer.sleep_until(Instant::now()).await;
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(tokio::time::timeout(Duration::from_millis(5), pacer.sleep_until(far)).await.is_err());
        let start = Instant::now();
        let mut waits = tokio::task::JoinSet::new();
        for i in 0..100_u32 {
            let pacer = pacer.clone();
            let due = start + Duration::from_micros(u64::from(i) * 20);
            waits.spawn(async move {
                pacer.sleep_until(due).await;
                Instant::now() >= due
            });
        }
        while let Some(woke_after_due) = waits.join_next().await {
            assert!(woke_after_due.expect("the wait ran"), "a waiter woke early");
        }
    }
}
