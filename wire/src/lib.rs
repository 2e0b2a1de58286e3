//! Nacre's wire protocol: the flatbuffers schema (`schema/nacre.fbs`), framing and limits,
//! verified decoding into plain Rust types, the partitioner, and the async Rust client.
//!
//! It depends on no other crate of the workspace: the daemon converts between these types and
//! storage's at its edge, in one place. The flatbuffers types stay private to this crate;
//! callers only see [`Request`], [`Reply`] and the plain structs they carry. FORMAT.md's "Wire
//! protocol" section is the byte-level spec.
//!
//! `unsafe` is denied everywhere except the flatc-generated module (see `generated.rs`).
#![deny(unsafe_code)]

mod client;
mod codec;
mod error;
pub mod frame;
mod generated;
#[cfg(test)]
mod limit_tests;
mod partitioner;
mod request;
mod response;
pub mod stat_name;
mod types;

pub use client::{Client, ClientError, ClientOptions, Disconnect};
pub use error::{MessageError, WireError};
pub use frame::FrameLimits;
pub use partitioner::{kafka_partition_of, partition_of};
pub use request::{
    InPlace, Request, RequestEncoder, decode_request, decode_request_in_place, decode_request_with, encode_request,
};
pub use response::{
    Reply, ReplyInPlace, ResponseEncoder, decode_response, decode_response_in_place, decode_response_with,
    encode_response,
};
pub use stat_name::{LabelledName, labelled};
pub use types::*;
