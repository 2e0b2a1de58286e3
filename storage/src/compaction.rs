//! Compaction planning, with no I/O: a partition's heat ([`heat`]), what its runs owe
//! ([`snapshot::Debt`]), the thresholds a [`policy::Policy`] sets at that heat, and [`plan`],
//! which picks the next merge, if any. The executor that carries a task out is
//! [`crate::Engine::compact`]; the daemon's per-shard queue decides when.

pub mod garbage;
pub mod heat;
pub mod plan;
pub mod policy;
pub mod snapshot;
pub mod strategy;

pub use garbage::Garbage;
pub use heat::{Heat, HeatRates};
pub use plan::{Reason, Task, plan};
pub use policy::{Policy, Thresholds};
pub use snapshot::{Debt, Run, Snapshot};
