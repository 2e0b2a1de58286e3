//! What a session saw while measuring: a latency histogram per operation, hits and misses,
//! errors with a few samples. Merged into the run's total at the end; nothing is shared while
//! running.

use crate::workload::Op;
use hdrhistogram::Histogram;

/// Largest latency a histogram holds, nanoseconds; slower replies are clamped to it.
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Distinct error messages kept for the report.
const KEPT_ERRORS: usize = 3;

/// One session's (or, merged, the run's) measurements.
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latencies in nanoseconds, indexed by [`Op::index`].
    pub latency_ns: [Histogram<u64>; 5],
    /// Open loop: how late each measured request went out after its due time, nanoseconds
    /// (the client's share of the latencies).
    pub send_lateness_ns: Histogram<u64>,
    /// Reads (and the reads of read-modify-writes) that found a value.
    pub hits: u64,
    /// Reads that found none.
    pub misses: u64,
    /// Rows the scans returned.
    pub scanned_rows: u64,
    /// Operations that failed (timeouts, server errors, lost connections).
    pub errors: u64,
    /// The first few distinct error messages.
    pub error_samples: Vec<String>,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        let histogram = || Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("static bounds are valid");
        Tally {
            latency_ns: std::array::from_fn(|_| histogram()),
            send_lateness_ns: histogram(),
            hits: 0,
            misses: 0,
            scanned_rows: 0,
            errors: 0,
            error_samples: Vec::new(),
        }
    }

    /// Records one successful `op` that took `latency_ns`.
    pub fn record(&mut self, op: Op, latency_ns: u64) {
        self.latency_ns[op.index()].saturating_record(latency_ns.clamp(1, MAX_LATENCY_NS));
    }

    /// Records how late a measured open-loop request was sent.
    pub fn sent_late(&mut self, lateness_ns: u64) {
        self.send_lateness_ns.saturating_record(lateness_ns.clamp(1, MAX_LATENCY_NS));
    }

    /// The latencies of `op`.
    pub fn of(&self, op: Op) -> &Histogram<u64> {
        &self.latency_ns[op.index()]
    }

    /// Every operation's latencies together.
    pub fn all(&self) -> Histogram<u64> {
        let mut all = self.latency_ns[0].clone();
        for h in &self.latency_ns[1..] {
            all.add(h).expect("same bounds");
        }
        all
    }

    /// Counts a failed operation.
    pub fn error(&mut self, message: &str) {
        self.errors += 1;
        self.note_error(message);
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: &Tally) {
        for (mine, theirs) in self.latency_ns.iter_mut().zip(&other.latency_ns) {
            mine.add(theirs).expect("same bounds");
        }
        self.send_lateness_ns.add(&other.send_lateness_ns).expect("same bounds");
        self.hits += other.hits;
        self.misses += other.misses;
        self.scanned_rows += other.scanned_rows;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_counts_and_keeps_distinct_errors() {
        let mut a = Tally::new();
        a.record(Op::Read, 1_000);
        a.error("refused");
        let mut b = Tally::new();
        b.record(Op::Read, 2_000);
        b.record(Op::Scan, 0);
        b.error("refused");
        b.error("timed out");
        a.merge(&b);
        assert_eq!(a.of(Op::Read).len(), 2);
        assert_eq!(a.of(Op::Scan).min(), 1, "a zero latency counts as 1 ns");
        assert_eq!(a.all().len(), 3);
        assert_eq!(a.errors, 3);
        assert_eq!(a.error_samples, ["refused", "timed out"]);
    }
}
