//! What a shard counts of the native requests its clients send it: requests by kind and
//! outcome, and how long each kind took to serve (from the request's decoding to its reply, on
//! the shard the client is connected to, forwarding included), in an HdrHistogram per kind.
//! Exported through `Stats` as `requests_total{kind,outcome}` and the histogram
//! `request_duration_us{kind}` (cumulative `_bucket{le}` counts, `_count` and `_sum`), which the
//! metrics endpoint turns into Prometheus families.

use crate::latency_histograms::LatencyHistograms;
use nacre_wire::{self as wire, ErrorCode, Reply, Request};
use std::cell::Cell;
use std::time::Duration;

/// Request kinds.
const KINDS: usize = Request::KINDS.len();
/// Outcomes: success, then each named error code (a code this build does not name counts as
/// `internal`).
const OUTCOMES: usize = 1 + ErrorCode::NAMED.len();

/// One shard's request counters and latency histograms. Touched only by its shard's thread.
pub(crate) struct RequestMetrics {
    outcomes: [[Cell<u64>; OUTCOMES]; KINDS],
    latency: LatencyHistograms,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        Self {
            outcomes: std::array::from_fn(|_| std::array::from_fn(|_| Cell::new(0))),
            latency: LatencyHistograms::new(KINDS),
        }
    }
}

/// The outcome index of a reply.
fn outcome_of(reply: &Reply) -> usize {
    match reply {
        // A code this build does not name counts as `internal`, as the wire says to treat it.
        Reply::Error(e) => match e.code {
            ErrorCode::Other(_) => 1 + usize::from(ErrorCode::Internal.code()),
            named => 1 + usize::from(named.code()),
        },
        _ => 0,
    }
}

/// The outcome's label: `ok`, or the error code in snake case (`unknown_table`).
fn outcome_label(outcome: usize) -> String {
    let Some(code) = outcome.checked_sub(1) else { return "ok".to_owned() };
    let camel = format!("{:?}", ErrorCode::NAMED[code]);
    let mut snake = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

impl RequestMetrics {
    /// Counts a request of kind `kind` (a [`Request::kind_index`]) answered with `reply` after
    /// `took`.
    pub(crate) fn record(&self, kind: usize, reply: &Reply, took: Duration) {
        let count = &self.outcomes[kind][outcome_of(reply)];
        count.set(count.get() + 1);
        self.latency.record(kind, took);
    }

    /// Appends this shard's counters and histograms to `out`, only for kinds and outcomes
    /// that occurred.
    pub(crate) fn push_stats(&self, shard: Option<u32>, out: &mut Vec<wire::Stat>) {
        let mut push = |name: String, value: u64| out.push(wire::Stat { name, shard, partition: None, value });
        for (kind, outcomes) in self.outcomes.iter().enumerate() {
            for (outcome, count) in outcomes.iter().enumerate() {
                if count.get() > 0 {
                    let label = outcome_label(outcome);
                    let labels = [("kind", Request::KINDS[kind]), ("outcome", label.as_str())];
                    push(wire::labelled("requests_total", &labels), count.get());
                }
            }
        }
        self.latency.push_stats("request_duration_us", "kind", &Request::KINDS, shard, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nacre_wire::LabelledName;

    fn value(stats: &[wire::Stat], base: &str, labels: &[(&str, &str)]) -> Option<u64> {
        stats.iter().find(|s| LabelledName::parse(&s.name).is_some_and(|n| n.matches(base, labels))).map(|s| s.value)
    }

    #[test]
    fn counts_by_kind_and_outcome_and_buckets_latency() {
        let metrics = RequestMetrics::default();
        let get = Request::KINDS.iter().position(|k| *k == "get").expect("get is a kind");
        let put = Request::KINDS.iter().position(|k| *k == "put").expect("put is a kind");
        let unknown = Reply::Error(wire::ErrorReply { code: ErrorCode::UnknownTable, message: String::new() });
        metrics.record(get, &Reply::Stats(Vec::new()), Duration::from_micros(40));
        metrics.record(get, &Reply::Stats(Vec::new()), Duration::from_micros(300));
        metrics.record(get, &unknown, Duration::from_millis(20));
        metrics.record(put, &Reply::Stats(Vec::new()), Duration::from_secs(7200));
        let mut stats = Vec::new();
        metrics.push_stats(Some(3), &mut stats);
        assert!(stats.iter().all(|s| s.shard == Some(3)));
        assert_eq!(value(&stats, "requests_total", &[("kind", "get"), ("outcome", "ok")]), Some(2));
        assert_eq!(value(&stats, "requests_total", &[("kind", "get"), ("outcome", "unknown_table")]), Some(1));
        assert_eq!(value(&stats, "requests_total", &[("kind", "scan")]), None, "kinds never seen are not listed");
        assert_eq!(value(&stats, "request_duration_us_bucket", &[("kind", "get"), ("le", "50")]), Some(1));
        assert_eq!(value(&stats, "request_duration_us_bucket", &[("kind", "get"), ("le", "500")]), Some(2));
        assert_eq!(value(&stats, "request_duration_us_bucket", &[("kind", "get"), ("le", "25000")]), Some(3));
        assert_eq!(value(&stats, "request_duration_us_count", &[("kind", "get")]), Some(3));
        assert_eq!(value(&stats, "request_duration_us_sum", &[("kind", "get")]), Some(20_340));
        // Past the histogram's range: counted, recorded as the longest, in no finite bucket.
        assert_eq!(value(&stats, "request_duration_us_count", &[("kind", "put")]), Some(1));
        assert_eq!(value(&stats, "request_duration_us_bucket", &[("kind", "put"), ("le", "10000000")]), Some(0));
    }

    #[test]
    fn outcome_labels_are_snake_case_codes() {
        assert_eq!(outcome_label(0), "ok");
        assert_eq!(outcome_label(1 + ErrorCode::UnknownTable.code() as usize), "unknown_table");
        assert_eq!(
            outcome_label(1 + ErrorCode::TimestampTooFarInFuture.code() as usize),
            "timestamp_too_far_in_future"
        );
    }
}
