//! How the HTTP thread reads the daemon's statistics without touching a shard's state: it asks
//! shard 0 over a bounded channel, and shard 0 gathers every shard's statistics through the
//! mesh (as it does for a client's `Stats`) and answers on a one-shot channel. The HTTP thread
//! serves one request at a time, so at most one ask is in flight; one that finds the channel
//! full, or waits past its deadline, is refused rather than queued.

use futures_channel::mpsc;
use nacre_wire::Stat;
use std::sync::Mutex;
use std::time::Duration;

/// One ask: where to send the statistics.
pub(crate) type Ask = std::sync::mpsc::SyncSender<Vec<Stat>>;

/// Asks waiting for shard 0, at most (plus one per sender, by the channel's rule).
const PENDING_ASKS: usize = 1;

/// Why an ask got no statistics.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AskError {
    /// An earlier ask is still waiting for shard 0.
    #[error("busy: an earlier statistics request is still waiting for shard 0")]
    Busy,
    /// Shard 0 did not answer in time.
    #[error("shard 0 did not gather the statistics within {0:?}")]
    Timeout(Duration),
    /// Shard 0 is not serving (not started yet, or stopped).
    #[error("shard 0 is not serving statistics")]
    NotServing,
}

/// The HTTP thread's end.
#[derive(Debug)]
pub struct StatsAsker {
    asks: mpsc::Sender<Ask>,
}

/// Shard 0's end, taken once when it starts serving.
#[derive(Debug)]
pub struct StatsInbox {
    asks: Mutex<Option<mpsc::Receiver<Ask>>>,
}

/// A connected asker and inbox.
pub fn stats_bridge() -> (StatsAsker, StatsInbox) {
    let (asks, inbox) = mpsc::channel(PENDING_ASKS);
    (StatsAsker { asks }, StatsInbox { asks: Mutex::new(Some(inbox)) })
}

impl StatsAsker {
    /// Every shard's statistics, waiting at most `timeout` for shard 0.
    pub fn ask(&mut self, timeout: Duration) -> Result<Vec<Stat>, AskError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.asks.try_send(reply).map_err(|e| if e.is_full() { AskError::Busy } else { AskError::NotServing })?;
        answer.recv_timeout(timeout).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => AskError::Timeout(timeout),
            std::sync::mpsc::RecvTimeoutError::Disconnected => AskError::NotServing,
        })
    }
}

impl StatsInbox {
    /// The receiving end, the first time it is asked for.
    pub(crate) fn take(&self) -> Option<mpsc::Receiver<Ask>> {
        self.asks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::StreamExt;

    #[test]
    fn an_ask_is_answered_refused_while_one_waits_and_times_out() {
        let (mut asker, inbox) = stats_bridge();
        let mut asks = inbox.take().expect("first take");
        assert!(inbox.take().is_none(), "the inbox is taken once");
        let answering = std::thread::spawn(move || {
            let ask = futures_lite::future::block_on(asks.next()).expect("an ask");
            ask.send(vec![Stat { name: "connections".into(), shard: Some(0), partition: None, value: 2 }])
                .expect("the asker waits");
            asks
        });
        let stats = asker.ask(Duration::from_secs(60)).expect("answered");
        assert_eq!(stats[0].value, 2);
        let asks = answering.join().expect("no panic");
        // Nobody answers now: the first ask times out and stays queued, so the next is refused.
        assert_eq!(asker.ask(Duration::from_millis(1)), Err(AskError::Timeout(Duration::from_millis(1))));
        assert_eq!(asker.ask(Duration::from_millis(1)), Err(AskError::Timeout(Duration::from_millis(1))));
        assert_eq!(asker.ask(Duration::from_millis(1)), Err(AskError::Busy));
        drop(asks);
        assert_eq!(asker.ask(Duration::from_millis(1)), Err(AskError::NotServing));
    }
}
