//! Heat: how busy a partition is, as exponentially decaying rates of writes and reads (operations
//! and bytes per second). Time comes from the caller (the engine's injected clock), so tests
//! decide how fast a partition cools.

/// One decaying rate: events per second, averaged over about one half-life.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct DecayingRate {
    /// Decayed sum of events, as of `at_ms`.
    sum: f64,
    at_ms: u64,
}

impl DecayingRate {
    fn decay_to(&mut self, now_ms: u64, half_life_ms: u64) {
        if now_ms > self.at_ms {
            let elapsed = (now_ms - self.at_ms) as f64;
            self.sum *= 0.5f64.powf(elapsed / half_life_ms.max(1) as f64);
            self.at_ms = now_ms;
        }
    }

    fn add(&mut self, amount: f64, now_ms: u64, half_life_ms: u64) {
        self.decay_to(now_ms, half_life_ms);
        self.sum += amount;
    }

    /// The rate per second: a decayed sum over a half-life `h` converges to `rate * h / ln 2`.
    fn per_second(&self, now_ms: u64, half_life_ms: u64) -> f64 {
        let mut at_now = *self;
        at_now.decay_to(now_ms, half_life_ms);
        at_now.sum * std::f64::consts::LN_2 * 1000.0 / half_life_ms.max(1) as f64
    }
}

/// A partition's heat.
#[derive(Debug, Clone, PartialEq)]
pub struct Heat {
    half_life_ms: u64,
    write_ops: DecayingRate,
    write_bytes: DecayingRate,
    read_ops: DecayingRate,
    read_bytes: DecayingRate,
}

/// A partition's heat at one moment, as rates per second.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct HeatRates {
    /// Versions written per second.
    pub write_ops: f64,
    /// Bytes written per second.
    pub write_bytes: f64,
    /// Point reads per second.
    pub read_ops: f64,
    /// Bytes returned by reads per second.
    pub read_bytes: f64,
}

impl HeatRates {
    /// The single figure the planner weighs: operations per second, reads and writes alike.
    pub fn ops(&self) -> f64 {
        self.write_ops + self.read_ops
    }
}

impl Heat {
    /// A cold partition whose rates halve every `half_life_ms` without new events.
    pub fn new(half_life_ms: u64) -> Heat {
        Heat {
            half_life_ms: half_life_ms.max(1),
            write_ops: DecayingRate::default(),
            write_bytes: DecayingRate::default(),
            read_ops: DecayingRate::default(),
            read_bytes: DecayingRate::default(),
        }
    }

    /// Records `versions` versions of `bytes` bytes written at `now_ms`.
    pub fn record_write(&mut self, versions: u64, bytes: u64, now_ms: u64) {
        self.write_ops.add(versions as f64, now_ms, self.half_life_ms);
        self.write_bytes.add(bytes as f64, now_ms, self.half_life_ms);
    }

    /// Records one point read that returned `bytes` bytes at `now_ms`.
    pub fn record_read(&mut self, bytes: u64, now_ms: u64) {
        self.read_ops.add(1.0, now_ms, self.half_life_ms);
        self.read_bytes.add(bytes as f64, now_ms, self.half_life_ms);
    }

    /// The rates as of `now_ms`.
    pub fn rates(&self, now_ms: u64) -> HeatRates {
        let h = self.half_life_ms;
        HeatRates {
            write_ops: self.write_ops.per_second(now_ms, h),
            write_bytes: self.write_bytes.per_second(now_ms, h),
            read_ops: self.read_ops.per_second(now_ms, h),
            read_bytes: self.read_bytes.per_second(now_ms, h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_is_measured_and_cools_by_half_each_half_life() {
        let mut heat = Heat::new(10_000);
        // 100 writes a second for a minute (six half-lives): the estimate converges.
        for ms in (0..60_000).step_by(10) {
            heat.record_write(1, 50, ms);
        }
        let rates = heat.rates(60_000);
        assert!((rates.write_ops - 100.0).abs() < 5.0, "{rates:?}");
        assert!((rates.write_bytes - 5_000.0).abs() < 250.0, "{rates:?}");
        assert_eq!(rates.read_ops, 0.0);
        let later = heat.rates(70_000);
        assert!((later.write_ops - rates.write_ops / 2.0).abs() < 1e-6, "one half-life later: {later:?}");
        assert!(heat.rates(600_000).ops() < 1e-10, "cold after many half-lives");
    }

    #[test]
    fn reads_count_towards_heat_as_writes_do() {
        let mut heat = Heat::new(1_000);
        for ms in 0..10_000 {
            heat.record_read(10, ms);
        }
        let rates = heat.rates(10_000);
        assert!((rates.read_ops - 1_000.0).abs() < 50.0, "{rates:?}");
        assert_eq!(rates.ops(), rates.read_ops);
    }

    #[test]
    fn an_event_in_the_past_of_the_last_one_does_not_warm_backwards() {
        let mut heat = Heat::new(1_000);
        heat.record_write(10, 10, 5_000);
        heat.record_write(10, 10, 4_000);
        let rates = heat.rates(5_000);
        assert!(rates.write_ops > 0.0 && rates.write_ops.is_finite(), "{rates:?}");
    }
}
