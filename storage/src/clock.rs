//! Time, injected. Storage logic never reads the system clock directly: it asks a [`Clock`], so
//! tests control expiry, skew checks and the HLC.

use crate::ids::Ts;
use std::cell::Cell;
use std::rc::Rc;

/// A source of wall-clock milliseconds since the Unix epoch.
pub trait Clock: 'static {
    /// Milliseconds since the Unix epoch, now.
    fn now_ms(&self) -> u64;
}

/// The system's real-time clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Rc<Cell<u64>>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self(Rc::new(Cell::new(now_ms)))
    }
    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.set(now_ms);
    }
    /// Moves the time forward.
    pub fn advance(&self, by_ms: u64) {
        self.0.set(self.0.get() + by_ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.get()
    }
}

/// A hybrid logical clock for direct writes without a client timestamp: each reading is
/// `max(now, last + 1)`, so readings strictly increase even when the wall clock stalls or steps
/// back.
#[derive(Debug, Default)]
pub struct Hlc {
    last: Cell<u64>,
}

impl Hlc {
    /// A clock that has issued nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next timestamp.
    pub fn next(&self, clock: &dyn Clock) -> Ts {
        let now = Ts::from_millis(clock.now_ms());
        let next = now.0.max(self.last.get() + 1);
        self.last.set(next);
        Ts(next)
    }

    /// Moves the clock past `seen`, so later readings order after a timestamp observed elsewhere.
    pub fn observe(&self, seen: Ts) {
        self.last.set(self.last.get().max(seen.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_readings_strictly_increase_when_the_wall_clock_stalls_or_steps_back() {
        let clock = ManualClock::new(1_000);
        let hlc = Hlc::new();
        let a = hlc.next(&clock);
        let b = hlc.next(&clock);
        clock.set(500);
        let c = hlc.next(&clock);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert_eq!(a, Ts::from_millis(1_000));
        clock.set(2_000);
        assert_eq!(hlc.next(&clock), Ts::from_millis(2_000));
    }
}
