//! The engine scenarios on the simulated disk.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/scenarios.rs"]
mod scenarios;

macro_rules! on_sim {
    ($name:ident) => {
        #[test]
        fn $name() {
            harness::run_sim(1, |disk, root| scenarios::$name(disk, root));
        }
    };
}

for_each_scenario!(on_sim);
