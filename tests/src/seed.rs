//! Seeds for random tests: taken from `SEED=` when set, else drawn fresh, and printed either way
//! so a failure can be replayed exactly.

/// The seed for `test`: `$SEED` if set (decimal), else a random one. Prints it with the command
/// that replays it; cargo shows the output of failing tests.
///
/// # Panics
///
/// If `$SEED` is set but is not a decimal `u64`.
pub fn seed(test: &str) -> u64 {
    let seed = match std::env::var("SEED") {
        Ok(s) => s.trim().parse().unwrap_or_else(|_| panic!("SEED={s:?} is not a decimal u64")),
        Err(_) => fastrand::u64(..),
    };
    eprintln!("{test}: SEED={seed} (replay with SEED={seed} cargo test -p nacre-tests {test})");
    seed
}
