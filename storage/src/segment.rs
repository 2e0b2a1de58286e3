//! Segment files: immutable sorted runs. See FORMAT.md, "Segment".
//!
//! A segment holds aligned data blocks of entries in storage order, a block index, a bloom
//! filter, a metadata block and a footer, each framed and checksummed by [`block`]. Segments are
//! written once by a flush, a compaction or the bulk builder, and never modified.

pub mod block;
pub mod bloom;
pub mod footer;
pub mod index;
pub mod info;
pub mod reader;
pub mod writer;

/// The segment format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
