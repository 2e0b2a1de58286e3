//! The planner's strategies, one file each. Each looks at the candidate runs (newest first) and
//! the thresholds at the partition's heat, and names the runs it would merge, or nothing.

pub mod dead_runs;
pub mod run_count;
pub mod size_ratio;
pub mod space_pressure;
