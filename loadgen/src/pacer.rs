//! Sleeping until a request is due, to the microsecond. Tokio's timers tick in milliseconds and
//! round up, which would make every open-loop request up to a millisecond late and, since
//! latency counts from the due time, add that to every latency. A pacer is a `timerfd` on
//! `CLOCK_MONOTONIC` (the clock [`Instant`] reads), woken through the runtime's poller.

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A timerfd, as the runtime's poller sees it.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One sender's high-resolution sleep.
pub struct Pacer {
    fd: AsyncFd<Timer>,
    /// The expiry the timer is armed for and has not yet reported.
    armed: Option<Instant>,
}

impl Pacer {
    /// A new pacer.
    ///
    /// # Errors
    ///
    /// If the kernel gives no timerfd (out of file descriptors).
    pub fn new() -> io::Result<Pacer> {
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC)?;
        // Deprecated because a caller could close or replace the descriptor while it is
        // registered (tokio#8587); `Timer` owns it and moves into the `AsyncFd`, so neither can
        // happen. `register_with_interest` says the same but is `unsafe`, which this workspace
        // forbids.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(Timer(timer), Interest::READABLE)?;
        Ok(Pacer { fd, armed: None })
    }

    /// Returns at `at` or just after. Cancel-safe: dropped while waiting, the timer stays armed
    /// and the next call re-arms it only if its time differs.
    ///
    /// # Errors
    ///
    /// If the timer cannot be set or read.
    pub async fn sleep_until(&mut self, at: Instant) -> io::Result<()> {
        let now = Instant::now();
        if at <= now {
            return Ok(());
        }
        if self.armed != Some(at) {
            let expiration = Expiration::OneShot(TimeSpec::from_duration(at - now));
            self.fd.get_ref().0.set(expiration, TimerSetTimeFlags::empty())?;
            self.armed = Some(at);
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // A read before expiry fails with EAGAIN, which clears the readiness.
            match ready.try_io(|timer| timer.get_ref().0.wait().map_err(io::Error::from)) {
                Ok(result) => {
                    self.armed = None;
                    return result;
                }
                Err(_would_block) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "current_thread")]
    async fn it_never_wakes_before_the_due_time() {
        // How late it wakes depends on the machine's load, so no test bounds it; the open-loop
        // stall test and docs/benchmarks.md show it.
        let mut pacer = Pacer::new().expect("a timerfd");
        for micros in [1, 50, 300, 1_500] {
            let due = Instant::now() + Duration::from_micros(micros);
            pacer.sleep_until(due).await.expect("sleeps");
            assert!(Instant::now() >= due, "woke before a due time {micros} us ahead");
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_past_due_time_returns_at_once_and_a_cancelled_wait_leaves_it_usable() {
        let mut pacer = Pacer::new().expect("a timerfd");
        pacer.sleep_until(Instant::now()).await.expect("no wait");
        let far = Instant::now() + Duration::from_secs(3600);
        assert!(tokio::time::timeout(Duration::from_millis(5), pacer.sleep_until(far)).await.is_err());
        let soon = Instant::now() + Duration::from_millis(2);
        pacer.sleep_until(soon).await.expect("re-armed");
        assert!(Instant::now() >= soon);
    }
}
