//! A shard's compaction I/O budget (`compaction.io_bytes_per_sec`), applied while a merge runs:
//! the merge reports the bytes it has read and written, and waits whenever it is ahead of the
//! rate since it started. So a merge moves its bytes evenly over its run instead of at the
//! disk's full speed (which queues its writes ahead of foreground reads at the device). Once the
//! shard is stopping it waits no more: the shutdown waits for the merge to end.

use crate::lifecycle::Lifecycle;
use nacre_storage::Pacer;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The budget of one merge.
pub struct IoBudget {
    bytes_per_sec: u64,
    started: Instant,
    life: Rc<Lifecycle>,
}

impl IoBudget {
    /// A budget of `bytes_per_sec` (0: none) for a merge starting now.
    pub fn start(bytes_per_sec: u64, life: Rc<Lifecycle>) -> IoBudget {
        IoBudget { bytes_per_sec, started: Instant::now(), life }
    }
}

/// How long a merge that has moved `bytes` in `elapsed` must wait to be back within
/// `bytes_per_sec` (0: no limit).
pub fn owed(bytes_per_sec: u64, bytes: u64, elapsed: Duration) -> Duration {
    if bytes_per_sec == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(bytes as f64 / bytes_per_sec as f64).saturating_sub(elapsed)
}

impl Pacer for IoBudget {
    fn pace(&self, bytes: u64) -> Pin<Box<dyn Future<Output = ()> + '_>> {
        let wait = owed(self.bytes_per_sec, bytes, self.started.elapsed());
        Box::pin(async move {
            if !wait.is_zero() && !self.life.is_stopping() {
                self.life.sleep_unless_stopping(wait).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_merge_ahead_of_its_rate_owes_the_difference_and_one_behind_owes_nothing() {
        let mib = 1 << 20;
        assert_eq!(owed(64 * mib, 64 * mib, Duration::from_millis(250)), Duration::from_millis(750));
        assert_eq!(owed(64 * mib, 32 * mib, Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(owed(0, u64::MAX, Duration::ZERO), Duration::ZERO, "0 is no limit");
    }
}
