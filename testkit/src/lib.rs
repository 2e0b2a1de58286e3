//! The one seed helper for every random test in the workspace. A test asks [`seed`] for its
//! seed: `SEED=<n>` in the environment replays run `n`, a malformed `SEED` is refused (a typo
//! must not silently run a different case), and a fresh seed is drawn otherwise. The seed is
//! printed either way (`cargo test` shows it when the test fails). Proptest properties take
//! their configuration from [`proptest_config`], so they print and replay the same way.
//!
//! Test support only: no library's normal code depends on it.

#![forbid(unsafe_code)]

use proptest::test_runner::{Config, RngSeed};
use std::hash::{BuildHasher, Hasher};

/// The seed for `test`: `SEED` if set (panicking if it is not a decimal u64), else a fresh one.
/// Printed as `SEED=<n>` with the test's name and the way to replay it.
///
/// # Panics
///
/// If `SEED` is set but is not a decimal u64.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("SEED") {
        Ok(text) => parse(&text).unwrap_or_else(|| panic!("SEED={text:?} is not a decimal u64")),
        // RandomState is seeded from the OS per process: enough to vary runs.
        Err(_) => std::collections::hash_map::RandomState::new().build_hasher().finish(),
    };
    println!("{test}: SEED={seed} (replay with SEED={seed})");
    seed
}

fn parse(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A proptest configuration of `cases` cases seeded by [`seed`]. No failure files are written:
/// a failure prints its seed, and a shrunk case worth keeping becomes a named test.
///
/// # Panics
///
/// As [`seed`].
pub fn proptest_config(test: &str, cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(seed(test)), failure_persistence: None, ..Config::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_parses_only_as_a_decimal_u64() {
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse(" 7\n"), Some(7));
        for bad in ["", "0x10", "-1", "seven", "18446744073709551616"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
