//! The run's summary: throughput and latency percentiles per operation and overall, as
//! aligned text. Pure: it formats a merged tally and never judges it.

use crate::worker::Tally;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::time::Duration;

/// Percentiles printed, as quantiles with their labels.
const QUANTILES: [(f64, &str); 3] = [(0.50, "p50"), (0.99, "p99"), (0.999, "p99.9")];

/// The text report of a run that measured for `elapsed`.
pub fn render(tally: &Tally, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut all = tally.get_ns.clone();
    all.add(&tally.put_ns).expect("same bounds");
    let mut out = String::new();
    let _ = writeln!(out, "measured {:.2}s", seconds);
    let _ = writeln!(
        out,
        "{:<6} {:>12} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "op", "count", "ops/s", "p50 us", "p99 us", "p99.9 us", "max us"
    );
    for (name, histogram) in [("get", &tally.get_ns), ("put", &tally.put_ns), ("all", &all)] {
        if histogram.is_empty() {
            continue;
        }
        let _ = write!(out, "{name:<6} {:>12} {:>12.0}", histogram.len(), histogram.len() as f64 / seconds);
        for (q, _) in QUANTILES {
            let _ = write!(out, " {:>10}", micros(histogram.value_at_quantile(q)));
        }
        let _ = writeln!(out, " {:>10}", micros(histogram.max()));
    }
    if tally.hits + tally.misses > 0 {
        let _ = writeln!(out, "gets: {} hits, {} misses", tally.hits, tally.misses);
    }
    let _ = writeln!(out, "errors: {}", tally.errors);
    for e in &tally.error_samples {
        let _ = writeln!(out, "  e.g. {e}");
    }
    out
}

/// Nanoseconds as microseconds with one decimal.
fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// A one-line summary of a histogram, for the preload.
pub fn one_line(histogram: &Histogram<u64>, elapsed: Duration) -> String {
    format!(
        "{} ops in {:.2}s ({:.0} ops/s), p50 {} us, p99 {} us",
        histogram.len(),
        elapsed.as_secs_f64(),
        histogram.len() as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE),
        micros(histogram.value_at_quantile(0.5)),
        micros(histogram.value_at_quantile(0.99)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_shows_each_operation_and_the_total() {
        let mut tally = Tally::new();
        for ns in [1_000, 2_000, 3_000, 1_000_000] {
            tally.get_ns.record(ns).expect("in range");
        }
        tally.put_ns.record(5_000).expect("in range");
        tally.hits = 3;
        tally.misses = 1;
        let text = render(&tally, Duration::from_secs(2));
        let get = text.lines().find(|l| l.starts_with("get")).expect("a get line");
        assert!(get.contains(" 4 ") && get.contains(" 2 "), "count 4, 2 ops/s: {get}");
        let all = text.lines().find(|l| l.starts_with("all")).expect("an all line");
        assert!(all.contains(" 5 "), "{all}");
        assert!(text.contains("3 hits, 1 misses") && text.contains("errors: 0"), "{text}");
        assert!(get.ends_with("1000.4") || get.contains("1000."), "max about 1 ms: {get}");
    }

    #[test]
    fn an_unused_operation_is_left_out() {
        let mut tally = Tally::new();
        tally.put_ns.record(5_000).expect("in range");
        let text = render(&tally, Duration::from_secs(1));
        assert!(!text.lines().any(|l| l.starts_with("get")), "{text}");
        assert!(!text.contains("hits"), "{text}");
    }
}
