//! Time, injected. Storage logic never reads the system clock directly: it asks a [`Clock`], so
//! tests control expiry, skew checks and the HLC. The HLC's persisted high-water mark lives in
//! [`high_water`].

pub mod high_water;

use crate::ids::Ts;
use std::cell::Cell;
use std::rc::Rc;

/// The latest timestamp a write may carry when the clock reads `now_ms`, under a skew bound of
/// `max_skew_ms`: the last logical tick of the millisecond `max_skew_ms` ahead. The one rule the
/// engine's check, the daemon's clock and the bulk linker share.
pub fn latest_accepted(now_ms: u64, max_skew_ms: u64) -> Ts {
    Ts::from_parts(now_ms.saturating_add(max_skew_ms), u16::MAX)
}

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

    /// A clock resuming after a restart: every reading is above `floor`, the persisted
    /// high-water mark of the clock's earlier life, whatever the wall clock says now.
    pub fn resume_above(floor: Ts) -> Self {
        Self { last: Cell::new(floor.0) }
    }

    /// The greatest timestamp issued or observed so far.
    pub fn last(&self) -> Ts {
        Ts(self.last.get())
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

    #[test]
    fn the_latest_accepted_timestamp_is_the_last_tick_of_the_skewed_millisecond() {
        let latest = latest_accepted(1_000, 60);
        assert_eq!(latest, Ts::from_parts(1_060, u16::MAX));
        assert!(latest < Ts::from_millis(1_061) && latest > Ts::from_millis(1_060));
    }

    #[test]
    fn a_resumed_hlc_reads_above_its_floor_when_the_wall_clock_was_set_back() {
        let floor = Ts::from_millis(10_000);
        let clock = ManualClock::new(4_000);
        let hlc = Hlc::resume_above(floor);
        let first = hlc.next(&clock);
        assert!(first > floor, "{first} after a floor of {floor}");
        assert_eq!(hlc.last(), first);
        clock.set(20_000);
        assert_eq!(hlc.next(&clock), Ts::from_millis(20_000), "the wall clock leads again once past the floor");
    }
}
