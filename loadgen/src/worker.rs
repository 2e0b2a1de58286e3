//! One slot of a connection: pick a key and an operation, send, wait for the reply, record the
//! latency, repeat until the deadline; at once (closed loop) or at the slot's due times (open
//! loop, `--rate`). Owns the per-slot tallies; it never asserts
//! anything about the server's answers beyond counting errors.

use crate::keys;
use hdrhistogram::Histogram;
use nacre_wire::{Client, Durability, Get, Put};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest latency a histogram holds, nanoseconds; slower replies are clamped to it.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Distinct error messages kept per slot for the report.
const KEPT_ERRORS: usize = 3;

/// What a slot needs to run.
#[derive(Clone)]
pub struct Plan {
    /// The table.
    pub table: String,
    /// Keys this slot's connection may send.
    pub keys: Arc<Vec<u64>>,
    /// Fraction of gets.
    pub read_ratio: f64,
    /// Bytes per value.
    pub value_size: usize,
    /// Put durability; `None` for the server's.
    pub durability: Option<Durability>,
    /// Replies before this are not recorded.
    pub measure_from: Instant,
    /// No request is sent at or after this.
    pub until: Instant,
    /// This slot's random seed.
    pub seed: u64,
    /// Open loop: the slot's first request is due at `measure_from - warmup + offset` and each
    /// next one `interval` later; `None` for a closed loop.
    pub schedule: Option<Schedule>,
}

/// When an open-loop slot's requests are due.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// The first request's due time.
    pub first: Instant,
    /// Between two requests of this slot.
    pub interval: Duration,
}

/// What one slot saw while measuring.
pub struct Tally {
    /// Get latencies, nanoseconds.
    pub get_ns: Histogram<u64>,
    /// Put latencies, nanoseconds.
    pub put_ns: Histogram<u64>,
    /// Gets that found a value.
    pub hits: u64,
    /// Gets that found none.
    pub misses: u64,
    /// Requests that failed (timeouts, server errors, lost connections).
    pub errors: u64,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        let histogram = || Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("static bounds are valid");
        Tally { get_ns: histogram(), put_ns: histogram(), hits: 0, misses: 0, errors: 0, error_samples: Vec::new() }
    }

    /// Adds another slot's tally to this one.
    pub fn merge(&mut self, other: &Tally) {
        self.get_ns.add(&other.get_ns).expect("same bounds");
        self.put_ns.add(&other.put_ns).expect("same bounds");
        self.hits += other.hits;
        self.misses += other.misses;
        self.errors += other.errors;
        for e in &other.error_samples {
            self.note_error(e);
        }
    }

    fn note_error(&mut self, message: &str) {
        if self.error_samples.len() < KEPT_ERRORS && !self.error_samples.iter().any(|e| e == message) {
            self.error_samples.push(message.to_owned());
        }
    }
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

/// Runs one slot against `client` until the plan's deadline.
pub async fn run(client: Arc<Client>, plan: Plan) -> Tally {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let mut value = vec![0u8; plan.value_size];
    rng.fill(&mut value);
    let mut tally = Tally::new();
    let mut due = plan.schedule.map(|s| s.first);
    loop {
        // Open loop: wait for the request's due time and count its latency from then, however
        // late the previous reply made it.
        let start = match (due, plan.schedule) {
            (Some(at), Some(s)) => {
                tokio::time::sleep_until(at.into()).await;
                due = Some(at + s.interval);
                at
            }
            _ => Instant::now(),
        };
        if start >= plan.until {
            return tally;
        }
        let key = keys::key(plan.keys[rng.usize(..plan.keys.len())]);
        let is_get = rng.f64() < plan.read_ratio;
        let outcome = if is_get {
            client.get(Get::new(plan.table.as_str(), key)).await.map(Some)
        } else {
            let put = Put { durability: plan.durability, ..Put::new(plan.table.as_str(), key, value.clone()) };
            client.put(put).await.map(|_| None)
        };
        let done = Instant::now();
        if start < plan.measure_from {
            continue;
        }
        let latency_ns = u64::try_from(done.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        match outcome {
            Ok(found) => {
                let histogram = if is_get { &mut tally.get_ns } else { &mut tally.put_ns };
                histogram.saturating_record(latency_ns.max(1));
                match found {
                    Some(Some(_)) => tally.hits += 1,
                    Some(None) => tally.misses += 1,
                    None => {}
                }
            }
            Err(e) => {
                tally.errors += 1;
                tally.note_error(&e.to_string());
                // A dead connection fails at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}
