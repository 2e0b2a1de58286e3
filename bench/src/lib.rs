//! Nacre's benchmarks. Each reports a ratio against a named peer measured in the same run;
//! none asserts a speed. See `src/bin/engine_vs_db_bench.rs`.
