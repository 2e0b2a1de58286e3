//! What a shard counts of the RESP commands its clients send it: commands parsed, by command;
//! commands refused before running (unknown, or with bad arguments); and, for each command
//! that ran, its outcome (`ok`, or the error reply's code) and its latency, from its parsing to
//! its reply being ready to write (on the shard the client is connected to, the owning shards'
//! work included; a pipelined command's includes the wait for the commands ahead of it in its
//! pipeline), in an HdrHistogram per command. Exported as `resp_commands_total{command}`,
//! `resp_commands_refused_total`, `resp_command_outcomes_total{command,outcome}` and the
//! histogram `resp_command_duration_us{command}`.

use super::command::Command;
use super::reply::Reply;
use crate::latency_histograms::LatencyHistograms;
use nacre_wire as wire;
use std::cell::Cell;
use std::time::Duration;

/// Commands, by [`Command::index`].
const COMMANDS: usize = Command::NAMES.len();
/// Outcome labels: success, then the error codes the door replies with (its messages start
/// with one), then any other.
const OUTCOMES: [&str; 5] = ["ok", "err", "noproto", "wrongpass", "other"];

/// The outcome index of a reply: its error code's, if it is an error.
fn outcome_of(reply: &Reply) -> usize {
    let Reply::Error(message) = reply else { return 0 };
    let code = message.split(' ').next().unwrap_or("");
    OUTCOMES[1..OUTCOMES.len() - 1]
        .iter()
        .position(|known| code.eq_ignore_ascii_case(known))
        .map_or(OUTCOMES.len() - 1, |i| i + 1)
}

/// One shard's RESP command counters and latency histograms. Touched only by its shard's
/// thread.
pub(crate) struct CommandMetrics {
    parsed: [Cell<u64>; COMMANDS],
    refused: Cell<u64>,
    outcomes: [[Cell<u64>; OUTCOMES.len()]; COMMANDS],
    latency: LatencyHistograms,
}

impl Default for CommandMetrics {
    fn default() -> Self {
        Self {
            parsed: std::array::from_fn(|_| Cell::new(0)),
            refused: Cell::new(0),
            outcomes: std::array::from_fn(|_| std::array::from_fn(|_| Cell::new(0))),
            latency: LatencyHistograms::new(COMMANDS),
        }
    }
}

impl CommandMetrics {
    /// Counts a command about to run.
    pub(crate) fn count(&self, command: &Command) {
        let count = &self.parsed[command.index()];
        count.set(count.get() + 1);
    }

    /// Counts a command refused before running.
    pub(crate) fn count_refused(&self) {
        self.refused.set(self.refused.get() + 1);
    }

    /// Records how command `command` (a [`Command::index`]) ended: `reply`, ready after
    /// `took`.
    pub(crate) fn record(&self, command: usize, reply: &Reply, took: Duration) {
        let count = &self.outcomes[command][outcome_of(reply)];
        count.set(count.get() + 1);
        self.latency.record(command, took);
    }

    /// Appends the counters of commands that occurred, `resp_commands_refused_total`, and the
    /// latency histograms of commands that ran.
    pub(crate) fn push_stats(&self, shard: Option<u32>, out: &mut Vec<wire::Stat>) {
        let mut push = |name: String, value: u64| out.push(wire::Stat { name, shard, partition: None, value });
        for ((name, parsed), outcomes) in Command::NAMES.iter().zip(&self.parsed).zip(&self.outcomes) {
            if parsed.get() > 0 {
                push(wire::labelled("resp_commands_total", &[("command", name)]), parsed.get());
            }
            for (outcome, count) in OUTCOMES.iter().zip(outcomes) {
                if count.get() > 0 {
                    let labels = [("command", *name), ("outcome", *outcome)];
                    push(wire::labelled("resp_command_outcomes_total", &labels), count.get());
                }
            }
        }
        push("resp_commands_refused_total".to_owned(), self.refused.get());
        self.latency.push_stats("resp_command_duration_us", "command", &Command::NAMES, shard, out);
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
    fn outcomes_are_the_error_codes_and_latency_is_per_command() {
        let metrics = CommandMetrics::default();
        let get = Command::NAMES.iter().position(|n| *n == "get").expect("get is a command");
        metrics.record(get, &Reply::Nil, Duration::from_micros(30));
        metrics.record(get, &Reply::err("no table named 'x'"), Duration::from_micros(700));
        metrics.record(get, &Reply::Error("WRONGPASS invalid".into()), Duration::from_micros(20));
        metrics.record(get, &Reply::Error("BUSY later".into()), Duration::from_micros(20));
        let mut stats = Vec::new();
        metrics.push_stats(Some(0), &mut stats);
        let outcome = |o: &str| value(&stats, "resp_command_outcomes_total", &[("command", "get"), ("outcome", o)]);
        assert_eq!(outcome("ok"), Some(1));
        assert_eq!(outcome("err"), Some(1));
        assert_eq!(outcome("wrongpass"), Some(1));
        assert_eq!(outcome("other"), Some(1));
        assert_eq!(value(&stats, "resp_command_duration_us_count", &[("command", "get")]), Some(4));
        assert_eq!(value(&stats, "resp_command_duration_us_sum", &[("command", "get")]), Some(770));
        let at_most_50 = [("command", "get"), ("le", "50")];
        assert_eq!(value(&stats, "resp_command_duration_us_bucket", &at_most_50), Some(3));
        assert_eq!(value(&stats, "resp_command_duration_us_count", &[("command", "set")]), None);
    }
}
