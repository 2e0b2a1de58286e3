//! The `nacred` daemon: per-core shards composed over `nacre-storage`, routing and forwarding
//! between them, the TCP front door speaking `nacre-wire`, the RESP (Redis protocol) door, table
//! administration, configuration and the process life cycle. Only [`convert`] names both wire
//! types and storage types; only [`compat`] knows what older protocol versions lack.

#![forbid(unsafe_code)]

pub mod admin;
pub mod budget;
pub mod bulk_book;
pub mod bulk_link;
pub mod catalog;
pub mod compat;
pub mod config;
pub mod convert;
pub mod datadir;
pub mod failpoint;
pub mod ingest;
pub mod mesh;
pub mod resp;
pub mod server;
pub mod service;
pub mod shard;
pub mod sources_admin;
pub mod startup;
