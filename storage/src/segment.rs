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

use crate::codec::EntryLayout;

/// The segment format version this build writes. It reads every version [`entry_layout`] knows.
pub const FORMAT_VERSION: u32 = 2;

/// How this build's data blocks lay out entries: format [`FORMAT_VERSION`]'s layout.
pub const WRITTEN_ENTRY_LAYOUT: EntryLayout = match entry_layout(FORMAT_VERSION) {
    Some(layout) => layout,
    None => panic!("this build reads the segment format it writes"),
};

/// How data blocks of segment format `version` lay out their entries, or `None` for a version
/// this build cannot read: 1 wrote fixed-width fields, 2 writes the compact layout.
pub const fn entry_layout(version: u32) -> Option<EntryLayout> {
    match version {
        1 => Some(EntryLayout::Fixed),
        2 => Some(EntryLayout::Compact),
        _ => None,
    }
}
