//! Nacre's wire protocol: the flatbuffers schema, framing and limits, verified decoding, and the
//! Rust client. Nothing is here yet; the daemon issue builds it. It depends on no other crate of
//! the workspace.
