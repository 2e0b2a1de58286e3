//! The progress line: every interval, a line on standard error with the phase's operations so
//! far and the rate since the last line; and, at the end of the warm-up, the line `measuring`,
//! which scripts and tests may wait for. It reads the senders' counters and never touches their
//! state.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Prints progress for `phase` until aborted: `measuring` at `measure_from` (if that is after
/// `start`), then a line every `interval` (none if it is zero).
pub async fn report(
    phase: &'static str,
    counters: Vec<Arc<AtomicU64>>,
    start: Instant,
    measure_from: Instant,
    interval: Duration,
) {
    let total = || counters.iter().map(|c| c.load(Ordering::Relaxed)).sum::<u64>();
    let mut announced = measure_from <= start;
    let mut last = (start, 0_u64);
    loop {
        let next_line = (!interval.is_zero()).then(|| last.0 + interval);
        let wake = match (announced, next_line) {
            (false, Some(line)) => line.min(measure_from),
            (false, None) => measure_from,
            (true, Some(line)) => line,
            (true, None) => return,
        };
        tokio::time::sleep_until(wake.into()).await;
        let now = Instant::now();
        if !announced && now >= measure_from {
            eprintln!("{phase}: warm-up done, measuring");
            announced = true;
        }
        if next_line.is_some_and(|line| now >= line) {
            let done = total();
            let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(f64::MIN_POSITIVE);
            eprintln!("{phase}: {:.0}s, {done} operations, {rate:.0}/s", now.duration_since(start).as_secs_f64());
            last = (now, done);
        }
    }
}
