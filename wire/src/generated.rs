//! The flatc-generated accessors and builders for `schema/nacre.fbs`, and nothing else.
//!
//! `generated/nacre_generated.rs` is written by `wire/regenerate.sh` with the pinned flatc and
//! committed; never edit it by hand (`wire/check-generated.sh` fails CI on any drift). It is the
//! only place in nacre-wire that may use `unsafe`: flatbuffers' accessors read unaligned
//! little-endian scalars and follow offsets without bounds checks. Their soundness rests on one
//! invariant, upheld by `crate::frame` and the codec: every buffer they read has passed
//! `flatbuffers::root_with_opts` (the verifier) first, and nothing outside this crate ever sees
//! these types. The other lints allowed here are style lints that do not fit generated code.
//! The decoder that uses them is covered by the property tests in `wire/tests/` (arbitrary and
//! mutated frames).
#![allow(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    missing_docs,
    dead_code,
    unused_imports,
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    deprecated,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used
)]

#[rustfmt::skip]
#[path = "generated/nacre_generated.rs"]
mod nacre_generated;

pub(crate) use nacre_generated::nacre::wire::*;
