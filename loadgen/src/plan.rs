//! What one session is told to do: its operation generator, the key
//! layout, its value size, when to measure and stop, and, in open loop, when each request is
//! due. Also [`Clock`], the due times of an open loop or the "now" of a closed one.

use crate::keys::Layout;
use crate::pacer::Pacer;
use crate::workload::{Generator, Operation};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// When an open-loop sender's requests are due.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// The first request's due time.
    pub first: Instant,
    /// Between two requests of this sender.
    pub interval: Duration,
}

/// A sender's instructions.
pub struct Plan {
    /// Draws each operation.
    pub generator: Generator,
    /// Record numbers to keys.
    pub layout: Layout,
    /// Bytes per value written.
    pub value_size: usize,
    /// Replies to requests sent before this are not recorded (the warm-up).
    pub measure_from: Instant,
    /// No request is sent at or after this.
    pub until: Instant,
    /// An insert of this record or a later one is not sent, and ends the sender (the load
    /// phase writes records `0..records` this way); `None`: no such end.
    pub end_record: Option<u64>,
    /// Open loop: when requests are due; `None`: closed loop.
    pub schedule: Option<Schedule>,
    /// Open loop: what wakes the sender when a request falls due.
    pub pacer: Option<Pacer>,
    /// Counts completed operations for the progress line; written by this sender only.
    pub completed: Arc<AtomicU64>,
}

impl Plan {
    /// The next operation, or `None` once the plan's end record is reached.
    pub fn next_operation(&mut self) -> Option<Operation> {
        let operation = self.generator.next_operation();
        match self.end_record {
            Some(end) if operation.record >= end && operation.op == crate::workload::Op::Insert => None,
            _ => Some(operation),
        }
    }

    /// Counts one completed operation for the progress line.
    pub fn completed_one(&self) {
        // One writer per counter: a plain load and store, no read-modify-write.
        self.completed.store(self.completed.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// A value of the plan's size, random from the generator's seed.
    pub fn value(&mut self) -> Vec<u8> {
        let mut value = vec![0_u8; self.value_size];
        self.generator.rng().fill(&mut value);
        value
    }
}

/// The send times of a sender: due times in open loop, the moment of sending in closed loop.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    schedule: Option<Schedule>,
    next_due: Option<Instant>,
}

impl Clock {
    /// The clock of `schedule` (`None`: closed loop).
    pub fn new(schedule: Option<Schedule>) -> Clock {
        Clock { schedule, next_due: schedule.map(|s| s.first) }
    }

    /// When the next request is due; `None` in closed loop (always now).
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// Takes the next send time if a request may go at `now`: the due time (possibly in the
    /// past, if the sender fell behind) in open loop, `now` in closed loop. Latencies count from
    /// this time, so a stalled server's queueing shows (no coordinated omission).
    pub fn take(&mut self, now: Instant) -> Option<Instant> {
        match (self.next_due, self.schedule) {
            (Some(due), Some(s)) if due <= now => {
                self.next_due = Some(due + s.interval);
                Some(due)
            }
            (Some(_), _) => None,
            (None, _) => Some(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_loop_clock_hands_out_due_times_even_when_late() {
        let start = Instant::now();
        let interval = Duration::from_millis(10);
        let mut clock = Clock::new(Some(Schedule { first: start, interval }));
        assert_eq!(clock.take(start), Some(start));
        assert_eq!(clock.take(start), None, "the next is not due yet");
        // 35 ms late: the three missed due times come out one after another, as they were due.
        let late = start + Duration::from_millis(35);
        assert_eq!(clock.take(late), Some(start + interval));
        assert_eq!(clock.take(late), Some(start + interval * 2));
        assert_eq!(clock.take(late), Some(start + interval * 3));
        assert_eq!(clock.take(late), None);
        assert_eq!(clock.next_due(), Some(start + interval * 4));
    }

    #[test]
    fn a_closed_loop_clock_is_always_now() {
        let now = Instant::now();
        let mut clock = Clock::new(None);
        assert_eq!(clock.take(now), Some(now));
        assert_eq!(clock.next_due(), None);
    }
}
