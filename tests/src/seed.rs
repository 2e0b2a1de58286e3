//! Seeds for random tests: taken from `SEED=` when set, else drawn fresh, and printed either way
//! so a failure can be replayed exactly.

/// The seed for `test`: `$SEED` if set (decimal), else a random one. Prints it with the command
/// that replays it; cargo shows the output of failing tests.
///
/// # Panics
///
/// If `$SEED` is set but is not a decimal `u64`.
pub fn seed(test: &str) -> u64 {
    nacre_testkit::seed(test)
}
