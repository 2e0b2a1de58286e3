//! A Nacre client built only from the frozen protocol-version-1 schema
//! (`wire/schema/v1/nacre.fbs`), and the test suite that runs it against the current `nacred`.
//!
//! It stands for every client built from the first released schema: it shares no code with
//! `nacre-wire` (its flatbuffers code is generated from the frozen file, and nothing else of the
//! workspace is a dependency), so a server change that breaks v1 clients fails its suite
//! (`tests/v1_suite.rs`). Keep it that way: this crate must never depend on `nacre-wire`.
//!
//! - [`V1Client`] is a blocking client: a handshake asking for version 1, then one request at a
//!   time.
//! - The request builders (`request.rs`) are the reference of what a v1 client sends; the reply
//!   decoder (`reply.rs`) of what it understands.
//!
//! `unsafe` is denied everywhere except the flatc-generated module (see `generated.rs`).
#![deny(unsafe_code)]

mod client;
mod error;
pub mod frame;
#[cfg(test)]
mod fuzz_tests;
mod generated;
mod reply;
mod request;
mod types;

pub use client::{Options, V1Client};
pub use error::{Error, ErrorCode, ServerError};
pub use reply::Reply;
pub use types::*;
