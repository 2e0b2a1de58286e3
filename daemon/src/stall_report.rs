//! The reactor stall reporter: a shard's executor runs one task at a time and switches only where
//! a task awaits, so a task that computes (or makes a blocking system call) for long holds every
//! request of its shard. With `diagnostics.stall_report_ms` set, glommio's stall detector
//! samples the stuck thread's stack once a task queue has run that long without yielding, and
//! glommio logs it as a warning (through `log`, which nacred's subscriber takes in): which
//! queue, by how much, and where.

use std::time::Duration;

use glommio::{StallDetectionHandler, TaskQueueHandle};

/// Reports every task queue that runs longer than `threshold` without yielding.
#[derive(Debug)]
pub struct StallReport {
    /// How long a task queue may run without yielding before its stack is logged.
    pub threshold: Duration,
}

impl StallDetectionHandler for StallReport {
    fn threshold(&self, _queue: TaskQueueHandle, _max_expected_runtime: Duration) -> Option<Duration> {
        Some(self.threshold)
    }
}
