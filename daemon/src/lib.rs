//! The `nacred` daemon: per-core shards composed over `nacre-storage`, routing and forwarding
//! between them, the TCP front door speaking `nacre-wire`, the RESP (Redis protocol) door, table
//! administration, configuration and the process life cycle. Only [`convert`] names both wire
//! types and storage types; only [`compat`] knows what older protocol versions lack.

#![deny(unsafe_code)]

pub(crate) mod admin;
pub mod alloc_count;
pub(crate) mod budget;
pub mod bulk_book;
pub(crate) mod bulk_link;
pub use bulk_link::visibility_at_start;
pub mod catalog;
pub(crate) mod compaction_admin;
pub(crate) mod compactor;
pub(crate) mod compat;
pub mod config;
pub(crate) mod convert;
pub mod datadir;
pub(crate) mod event_wait;
pub(crate) mod failpoint;
pub(crate) mod frame_reader;
pub mod http;
pub(crate) mod ingest;
pub(crate) mod io_budget;
pub(crate) mod latency_histograms;
pub(crate) mod lifecycle;
pub mod lineage;
pub(crate) mod listener;
pub mod mesh;
pub(crate) mod partition_requests;
pub(crate) mod partitions;
pub(crate) mod reply_queue;
pub(crate) mod request_metrics;
pub(crate) mod resp;
pub(crate) mod server;
pub(crate) mod service;
pub mod shard;
pub(crate) mod sources_admin;
pub mod stall_report;
pub mod startup;
pub mod wall_clock;
