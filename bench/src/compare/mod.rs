//! `nacre-bench compare`: every comparison side by side in one run, each section against its
//! named peer, into a Markdown and a JSON report.

pub mod bulk;
pub mod context;
pub mod disk;
pub mod engine;
pub mod fio;
pub mod kafka;
pub mod latency;
pub mod loadgen;
pub mod loopback;
pub mod machine;
pub mod peers;
pub mod redis_benchmark;
pub mod report;
pub mod servers;
pub mod serving;
pub mod targets;
pub mod write_amplification;
pub mod ycsb;

use anyhow::Result;
use context::Context;
use report::Section;

/// A section of the comparison table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SectionName {
    /// 1: GET/SET throughput and operations per server CPU-second vs redis-server.
    Serving,
    /// 2: p50/p99/p99.9 at 25/50/75% of redis-server's maximum rate, open loop.
    Latency,
    /// 3: YCSB A, B, C, F vs redis-server.
    Ycsb,
    /// 4: the engine vs RocksDB's db_bench.
    Engine,
    /// 5: Kafka ingestion vs a bare librdkafka consumer.
    Kafka,
    /// 6: bulk build and link vs fio.
    Bulk,
    /// 7: segment writes and cold reads vs fio.
    Disk,
    /// 8: the loopback ceiling vs iperf3.
    Loopback,
}

impl SectionName {
    /// Every section, in the table's order.
    pub const ALL: [SectionName; 8] = [
        SectionName::Serving,
        SectionName::Latency,
        SectionName::Ycsb,
        SectionName::Engine,
        SectionName::Kafka,
        SectionName::Bulk,
        SectionName::Disk,
        SectionName::Loopback,
    ];

    /// Runs it.
    ///
    /// # Errors
    ///
    /// If a server or a run fails.
    pub fn run(self, ctx: &Context) -> Result<Section> {
        match self {
            SectionName::Serving => serving::run(ctx),
            SectionName::Latency => latency::run(ctx),
            SectionName::Ycsb => ycsb::run(ctx),
            SectionName::Engine => engine::run(ctx),
            SectionName::Kafka => kafka::run(ctx),
            SectionName::Bulk => bulk::run(ctx),
            SectionName::Disk => disk::run(ctx),
            SectionName::Loopback => loopback::run(ctx),
        }
    }
}
