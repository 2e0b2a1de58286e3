//! The proptest configuration every property here runs under: a seed printed with each run
//! (`SEED=<n>`, shown when a test fails) and replayed from the `SEED` environment variable, as
//! the project's other random tests do. No failure files are written into the source tree.

use proptest::test_runner::{Config, RngSeed};
use std::hash::{BuildHasher, Hasher};

/// `cases` cases from `SEED`, or from a fresh random seed.
pub fn config(cases: u32) -> Config {
    let seed = std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        // RandomState is seeded from the OS per process: enough to vary runs.
        std::collections::hash_map::RandomState::new().build_hasher().finish()
    });
    println!("SEED={seed} (replay with SEED={seed} cargo test -p nacre-wire)");
    Config { cases, rng_seed: RngSeed::Fixed(seed), failure_persistence: None, ..Config::default() }
}
