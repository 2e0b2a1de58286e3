//! What every section is given: the mode (quick or full), the rounds, the binaries under test
//! and a scratch directory.

use std::path::PathBuf;

/// A comparison run's settings.
#[derive(Debug, Clone)]
pub struct Context {
    /// Short runs and small data, for CI and a first look.
    pub quick: bool,
    /// Interleaved rounds per figure (peer, then Nacre).
    pub rounds: usize,
    /// `nacred`.
    pub nacred: PathBuf,
    /// `nacre`, the command-line client.
    pub nacre: PathBuf,
    /// `nacre-loadgen`.
    pub loadgen: PathBuf,
    /// Scratch space (it must support O_DIRECT: ext4 or xfs, not tmpfs).
    pub work: PathBuf,
    /// Where the report and its plots go.
    pub out: PathBuf,
    /// Seed for every loadgen run, so a report can be replayed.
    pub seed: u64,
}

impl Context {
    /// Seconds each measured run lasts.
    pub fn seconds(&self) -> u64 {
        if self.quick { 2 } else { 8 }
    }

    /// Records loaded into each server.
    pub fn records(&self) -> u64 {
        if self.quick { 10_000 } else { 100_000 }
    }

    /// The arguments every loadgen run shares: `--keys records`, `--duration`, no warm-up (CPU
    /// is measured over the whole invocation), `--seed`.
    pub fn loadgen_common(&self, records: u64) -> Vec<String> {
        vec![
            "--keys".to_owned(),
            records.to_string(),
            "--duration".to_owned(),
            format!("{}s", self.seconds()),
            "--warmup".to_owned(),
            "0s".to_owned(),
            "--seed".to_owned(),
            self.seed.to_string(),
        ]
    }
}
