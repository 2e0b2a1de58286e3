//! The wall clock nacred reads: the system's real-time clock, shifted by
//! `NACRE_CLOCK_OFFSET_MS` (signed milliseconds) when that is set. The shift exists for tests
//! that must set the clock back or forward across a restart, as an operator's NTP step would;
//! unset (always, outside tests) it is zero. Read once, by the composition root.

use nacre_storage::{Clock, SystemClock};

/// The environment variable holding the shift, in signed milliseconds.
pub const OFFSET_ENV: &str = "NACRE_CLOCK_OFFSET_MS";

/// The system clock plus a fixed shift.
#[derive(Debug, Clone, Copy, Default)]
pub struct WallClock {
    offset_ms: i64,
}

impl WallClock {
    /// The system clock shifted by `offset_ms`.
    pub fn shifted(offset_ms: i64) -> Self {
        Self { offset_ms }
    }

    /// The clock `NACRE_CLOCK_OFFSET_MS` asks for; a value that is not a signed integer is an
    /// error naming the variable.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(OFFSET_ENV) {
            Err(_) => Ok(Self::default()),
            Ok(text) => text
                .trim()
                .parse::<i64>()
                .map(Self::shifted)
                .map_err(|_| format!("{OFFSET_ENV}={text:?} is not a signed number of milliseconds")),
        }
    }
}

impl Clock for WallClock {
    fn now_ms(&self) -> u64 {
        SystemClock.now_ms().saturating_add_signed(self.offset_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_clock_reads_the_system_clock_plus_its_shift() {
        let back = WallClock::shifted(-3_600_000).now_ms();
        let now = SystemClock.now_ms();
        assert!(now >= back + 3_600_000 && now < back + 3_660_000, "{now} vs {back}");
    }
}
