//! Table-wide watermarks (range tombstones): adding and withdrawing one commits a manifest edit.
//! A bulk load in replace mode will add one; its rollback will withdraw it.

use super::Engine;
use crate::error::Result;
use crate::ids::TableId;
use crate::io::Disk;
use crate::manifest::ManifestEdit;
use crate::version::Watermark;

impl<D: Disk> Engine<D> {
    /// Durably adds a watermark to `table` in this partition.
    pub async fn add_watermark(&self, table: TableId, mark: Watermark) -> Result<()> {
        self.table(table)?;
        self.commit_edit(ManifestEdit { watermarks_added: vec![(table, mark)], ..Default::default() }).await
    }

    /// Durably withdraws a watermark from `table` in this partition.
    pub async fn remove_watermark(&self, table: TableId, mark: Watermark) -> Result<()> {
        self.table(table)?;
        self.commit_edit(ManifestEdit { watermarks_removed: vec![(table, mark)], ..Default::default() }).await
    }
}
