//! What of `nacre-loadgen` other tools use: the latency-percentile plot, which
//! `nacre-bench compare` draws its comparisons with. The load generator itself is the binary.

pub mod plot;
