//! A phase's results as aligned text, as JSON, and as HdrHistogram `.hgrm` percentile
//! distributions. Pure: it formats a merged tally and never judges it.

use crate::tally::Tally;
use crate::workload::Op;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::time::Duration;

/// Percentiles reported, as quantiles with their labels.
pub const QUANTILES: [(f64, &str); 5] =
    [(0.50, "p50"), (0.90, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99")];

/// Each operation that ran, with its latencies, then `all`.
fn rows(tally: &Tally) -> Vec<(&'static str, Histogram<u64>)> {
    let mut rows: Vec<(&'static str, Histogram<u64>)> =
        Op::ALL.iter().filter(|op| !tally.of(**op).is_empty()).map(|op| (op.name(), tally.of(*op).clone())).collect();
    rows.push(("all", tally.all()));
    rows
}

/// Each operation's latency curve: (quantile, microseconds) at HdrHistogram's percentile steps
/// (five a halving), ending at the maximum.
pub fn curves(tally: &Tally) -> Vec<(String, Vec<(f64, f64)>)> {
    rows(tally)
        .into_iter()
        .filter(|(name, _)| *name != "all")
        .map(|(name, h)| {
            let points = h
                .iter_quantiles(5)
                .map(|s| (s.quantile_iterated_to(), s.value_iterated_to() as f64 / 1000.0))
                .collect();
            (name.to_owned(), points)
        })
        .collect()
}

/// The text report of a phase that measured for `elapsed`.
pub fn render(tally: &Tally, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let mut out = String::new();
    let _ = writeln!(out, "measured {seconds:.2}s");
    let _ = write!(out, "{:<6} {:>12} {:>12}", "op", "count", "ops/s");
    for (_, label) in QUANTILES {
        let _ = write!(out, " {:>10}", format!("{label} us"));
    }
    let _ = writeln!(out, " {:>10}", "max us");
    for (name, histogram) in rows(tally) {
        let _ = write!(out, "{name:<6} {:>12} {:>12.0}", histogram.len(), histogram.len() as f64 / seconds);
        for (q, _) in QUANTILES {
            let _ = write!(out, " {:>10}", micros(histogram.value_at_quantile(q)));
        }
        let _ = writeln!(out, " {:>10}", micros(histogram.max()));
    }
    if tally.hits + tally.misses > 0 {
        let _ = writeln!(out, "reads: {} hits, {} misses", tally.hits, tally.misses);
    }
    if !tally.of(Op::Scan).is_empty() {
        let _ = writeln!(out, "scans: {} rows", tally.scanned_rows);
    }
    let late = &tally.send_lateness_ns;
    if !late.is_empty() {
        let _ = writeln!(
            out,
            "sent after due (open loop; part of every latency above): p50 {} us, p99 {} us, max {} us",
            micros(late.value_at_quantile(0.5)),
            micros(late.value_at_quantile(0.99)),
            micros(late.max())
        );
    }
    let _ = writeln!(out, "errors: {}", tally.errors);
    for e in &tally.error_samples {
        let _ = writeln!(out, "  e.g. {e}");
    }
    out
}

/// A phase's summary as JSON: per operation count, rate and latencies in microseconds.
pub fn to_json(tally: &Tally, elapsed: Duration) -> Value {
    let seconds = elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
    let operations: serde_json::Map<String, Value> = rows(tally)
        .into_iter()
        .map(|(name, h)| {
            let mut latency = serde_json::Map::new();
            for (q, label) in QUANTILES {
                latency.insert(label.to_owned(), json!(h.value_at_quantile(q) as f64 / 1000.0));
            }
            latency.insert("max".to_owned(), json!(h.max() as f64 / 1000.0));
            latency.insert("mean".to_owned(), json!(h.mean() / 1000.0));
            let curve: Vec<[f64; 2]> = h
                .iter_quantiles(5)
                .map(|s| [s.quantile_iterated_to(), s.value_iterated_to() as f64 / 1000.0])
                .collect();
            let row = json!({
                "count": h.len(),
                "ops_per_second": h.len() as f64 / seconds,
                "latency_us": latency,
                "curve": curve,
            });
            (name.to_owned(), row)
        })
        .collect();
    json!({
        "measured_seconds": seconds,
        "operations": operations,
        "hits": tally.hits,
        "misses": tally.misses,
        "scanned_rows": tally.scanned_rows,
        "send_lateness_us": if tally.send_lateness_ns.is_empty() {
            Value::Null
        } else {
            json!({
                "p50": tally.send_lateness_ns.value_at_quantile(0.5) as f64 / 1000.0,
                "p99": tally.send_lateness_ns.value_at_quantile(0.99) as f64 / 1000.0,
                "max": tally.send_lateness_ns.max() as f64 / 1000.0,
            })
        },
        "errors": tally.errors,
        "error_samples": tally.error_samples,
    })
}

/// Each operation's `.hgrm` text (HdrHistogram's percentile distribution, values in
/// microseconds, five steps per halving), by operation name.
pub fn hgrm_files(tally: &Tally) -> Vec<(&'static str, String)> {
    rows(tally).into_iter().filter(|(name, _)| *name != "all").map(|(name, h)| (name, hgrm(&h))).collect()
}

/// `histogram` (nanoseconds) as HdrHistogram's `outputPercentileDistribution` text in
/// microseconds, which HdrHistogram's plotter reads.
pub fn hgrm(histogram: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:>12} {:>14} {:>10} {:>14}\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    let mut total = 0_u64;
    for step in histogram.iter_quantiles(5) {
        total += step.count_since_last_iteration();
        let value = step.value_iterated_to() as f64 / 1000.0;
        let quantile = step.quantile_iterated_to();
        if quantile < 1.0 {
            let _ = writeln!(out, "{value:>12.3} {quantile:>14.12} {total:>10} {:>14.2}", 1.0 / (1.0 - quantile));
        } else {
            let _ = writeln!(out, "{value:>12.3} {quantile:>14.12} {total:>10}");
        }
    }
    let _ = writeln!(
        out,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        histogram.mean() / 1000.0,
        histogram.stdev() / 1000.0
    );
    let _ = writeln!(
        out,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        histogram.max() as f64 / 1000.0,
        histogram.len()
    );
    let _ =
        writeln!(out, "#[Buckets = {:>12}, SubBuckets     = {:>12}]", histogram.buckets(), histogram.distinct_values());
    out
}

/// Nanoseconds as microseconds with one decimal.
fn micros(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed_tally() -> Tally {
        let mut tally = Tally::new();
        for ns in [1_000, 2_000, 3_000, 1_000_000] {
            tally.record(Op::Read, ns);
        }
        tally.record(Op::Update, 5_000);
        tally.hits = 3;
        tally.misses = 1;
        tally
    }

    #[test]
    fn the_report_shows_each_operation_and_the_total() {
        let text = render(&fixed_tally(), Duration::from_secs(2));
        let read = text.lines().find(|l| l.starts_with("read")).expect("a read line");
        let fields: Vec<&str> = read.split_whitespace().collect();
        assert_eq!(fields[1..3], ["4", "2"], "count 4, 2 ops/s: {read}");
        assert!(fields[3].starts_with("2.0"), "p50 2 us: {read}");
        assert!(fields.last().expect("max").starts_with("1000."), "max about 1 ms: {read}");
        let all = text.lines().find(|l| l.starts_with("all")).expect("an all line");
        assert_eq!(all.split_whitespace().nth(1), Some("5"), "{all}");
        assert!(text.contains("3 hits, 1 misses") && text.contains("errors: 0"), "{text}");
        assert!(!text.contains("scan"), "no scans ran: {text}");
    }

    #[test]
    fn json_carries_the_same_figures() {
        let summary = to_json(&fixed_tally(), Duration::from_secs(2));
        assert_eq!(summary["operations"]["read"]["count"], 4);
        assert_eq!(summary["operations"]["read"]["ops_per_second"], 2.0);
        assert_eq!(summary["operations"]["all"]["count"], 5);
        let max = summary["operations"]["read"]["latency_us"]["max"].as_f64().expect("a number");
        assert!((max - 1000.0).abs() < 1.0, "{max}");
        assert!(summary["operations"].get("scan").is_none());
        assert_eq!(summary["hits"], 3);
    }

    #[test]
    fn each_operation_has_a_curve_ending_at_its_maximum() {
        let lines = curves(&fixed_tally());
        assert_eq!(lines.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["read", "update"]);
        let (last_q, last_us) = *lines[0].1.last().expect("points");
        assert_eq!(last_q, 1.0);
        assert!((last_us - 1000.0).abs() < 1.0, "{last_us}");
        assert!(lines[0].1.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1), "monotonic");
        let json = to_json(&fixed_tally(), Duration::from_secs(1));
        assert_eq!(json["operations"]["read"]["curve"].as_array().map(Vec::len), Some(lines[0].1.len()));
    }

    #[test]
    fn hgrm_ends_at_the_maximum_with_every_count() {
        let files = hgrm_files(&fixed_tally());
        assert_eq!(files.iter().map(|(name, _)| *name).collect::<Vec<_>>(), ["read", "update"]);
        let read = &files[0].1;
        let last_row = read.lines().rfind(|l| !l.starts_with('#') && !l.trim().is_empty()).expect("rows");
        let fields: Vec<&str> = last_row.split_whitespace().collect();
        assert!(fields[0].starts_with("1000."), "{last_row}");
        assert_eq!(fields[1], "1.000000000000");
        assert_eq!(fields[2], "4");
        assert!(read.contains("Total count    =            4"), "{read}");
    }
}
