//! Nacre's benchmarks. Each reports a ratio against a named peer measured in the same run;
//! none asserts a speed. `nacre-bench compare` runs them side by side into one report
//! (`compare`); the other binaries in `src/bin` measure one comparison each.

pub mod compare;
pub mod process;
