//! Latency by kind, in an HdrHistogram per kind (created at the kind's first recording: most
//! kinds are rare), exported through `Stats` as a histogram statistic `<stat>{<label>}`:
//! cumulative `_bucket{le}` counts at [`BUCKET_BOUNDS_US`], `_count` and `_sum`, in
//! microseconds, which the metrics endpoint turns into a Prometheus histogram. Shared by the
//! native door (`request_duration_us{kind}`) and the RESP door
//! (`resp_command_duration_us{command}`).

use hdrhistogram::Histogram;
use nacre_wire as wire;
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// Upper bounds of the exported latency buckets, microseconds (Prometheus's `le`; `+Inf` is
/// the count).
pub(crate) const BUCKET_BOUNDS_US: [u64; 14] =
    [25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000, 10_000_000];
/// The longest latency recorded exactly; longer ones are recorded as this.
const MAX_RECORDED_US: u64 = 3_600_000_000;

/// One kind's histogram, once the kind has occurred.
type KindHistogram = Option<Box<Histogram<u64>>>;

/// One shard's latency histograms of `kinds` kinds. Touched only by its shard's thread.
pub(crate) struct LatencyHistograms {
    histograms: RefCell<Box<[KindHistogram]>>,
    sum_us: Box<[Cell<u64>]>,
}

impl LatencyHistograms {
    /// Empty histograms for kinds `0..kinds`.
    pub(crate) fn new(kinds: usize) -> Self {
        Self {
            histograms: RefCell::new((0..kinds).map(|_| None).collect()),
            sum_us: (0..kinds).map(|_| Cell::new(0)).collect(),
        }
    }

    /// Records one latency `took` of kind `kind`.
    pub(crate) fn record(&self, kind: usize, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).min(MAX_RECORDED_US);
        let sum = &self.sum_us[kind];
        sum.set(sum.get().saturating_add(us));
        let mut histograms = self.histograms.borrow_mut();
        let histogram = histograms[kind].get_or_insert_with(|| {
            Box::new(Histogram::new_with_max(MAX_RECORDED_US, 2).expect("valid histogram bounds"))
        });
        histogram.saturating_record(us);
    }

    /// Appends histogram `stat`, labelled `label` with each kind's name in `names`, for the
    /// kinds recorded at least once.
    pub(crate) fn push_stats(
        &self,
        stat: &str,
        label: &str,
        names: &[&str],
        shard: Option<u32>,
        out: &mut Vec<wire::Stat>,
    ) {
        let mut push = |name: String, value: u64| out.push(wire::Stat { name, shard, partition: None, value });
        for ((histogram, name), sum) in self.histograms.borrow().iter().zip(names).zip(self.sum_us.iter()) {
            let Some(histogram) = histogram else { continue };
            for bound in BUCKET_BOUNDS_US {
                let le = bound.to_string();
                let at_most = histogram.count_between(0, bound);
                push(wire::labelled(&format!("{stat}_bucket"), &[(label, name), ("le", &le)]), at_most);
            }
            push(wire::labelled(&format!("{stat}_count"), &[(label, name)]), histogram.len());
            push(wire::labelled(&format!("{stat}_sum"), &[(label, name)]), sum.get());
        }
    }
}
