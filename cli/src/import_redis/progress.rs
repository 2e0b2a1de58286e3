//! The progress bar on stderr: keys read out of the database's size, then the catch-up and
//! follow phases as its message. Hidden with `--quiet` and when stderr is not a terminal, so
//! scripts and logs get only the warnings and the summary.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

const TEMPLATE: &str = "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} keys ({per_sec}) {msg}";

/// The import's progress display.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar out of `key_count` keys; hidden if `quiet` or stderr is not a terminal.
    pub fn new(key_count: u64, quiet: bool) -> Progress {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let style = ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::with_draw_target(Some(key_count), target).with_style(style);
        Progress { bar }
    }

    /// Counts `keys` more keys read; the length grows if the database grew past it.
    pub fn read(&self, keys: u64) {
        self.bar.inc(keys);
        if let Some(len) = self.bar.length()
            && self.bar.position() > len
        {
            self.bar.set_length(self.bar.position());
        }
    }

    /// Shows what the import is doing now.
    pub fn phase(&self, phase: String) {
        self.bar.set_message(phase);
    }

    /// Prints a line on stderr without tearing the bar (always, even when the bar is hidden).
    pub fn warn(&self, line: &str) {
        self.bar.suspend(|| eprintln!("nacre: {line}"));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
