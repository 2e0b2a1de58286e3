//! The flatc-generated accessors and builders for the frozen `wire/schema/v1/nacre.fbs`, and
//! nothing else.
//!
//! `generated/nacre_generated.rs` is written by `wire/regenerate.sh` with the pinned flatc and
//! committed; never edit it by hand (`wire/check-generated.sh` fails CI on any drift). Since the
//! v1 schema is frozen, this file changes only with the pinned flatc. It is the only place in the
//! crate that may use `unsafe`: the accessors read unaligned little-endian scalars and follow
//! offsets without bounds checks, which is sound because every buffer they read has passed the
//! verifier first (`crate::frame::verify_response`), and these types never leave the crate.
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
