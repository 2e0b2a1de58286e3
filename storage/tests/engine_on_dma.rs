//! The engine scenarios on glommio with real files and direct I/O.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/scenarios.rs"]
mod scenarios;

macro_rules! on_dma {
    ($name:ident) => {
        #[test]
        fn $name() {
            harness::run_dma(|disk, root| scenarios::$name(disk, root));
        }
    };
}

for_each_scenario!(on_dma);
