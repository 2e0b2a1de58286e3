//! The bulk build's progress bar on stderr: bytes read of all inputs, then entries merged out
//! of the records read. Hidden with `--no-progress`; indicatif's stderr target also hides it
//! when stderr is not a terminal, so scripts and logs get only the summary.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

const READING: &str = "reading {spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})";
const MERGING: &str = "merging {spinner} [{elapsed_precise}] {bar:40} {pos}/{len} entries ({per_sec}, {eta})";

/// The build's progress display. Shared by the reading threads.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// The reading phase, out of `total_bytes` (the inputs' sizes).
    pub fn reading(total_bytes: u64, hidden: bool) -> Progress {
        let target = if hidden { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        let bar = ProgressBar::with_draw_target(Some(total_bytes), target).with_style(style(READING));
        Progress { bar }
    }

    /// Counts `bytes` more input bytes read.
    pub fn read(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// The merge phase, out of `records` (everything read; duplicates are merged too).
    pub fn merging(&self, records: u64) {
        self.bar.set_style(style(MERGING));
        self.bar.set_length(records);
        self.bar.reset();
    }

    /// `entries` merged so far.
    pub fn merged(&self, entries: u64) {
        self.bar.set_position(entries);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
