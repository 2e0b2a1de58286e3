//! Listing a table's partition keys in this partition: the pages behind a table-wide
//! iteration (the RESP door's `SCAN`). A partition key is listed when at least one of its rows
//! is visible at the latest state, so deleted, expired and watermarked keys are not.
//!
//! Like a scan, each source reads whole partition-key groups up to a cap; where a source hit its
//! cap nothing past its last group is known, so the page ends at the nearest such frontier and
//! the cursor resumes after it. Memory per page is bounded by sources x cap groups.

use super::Engine;
use super::read::{ReadAt, resolve};
use crate::error::{Error, Result};
use crate::ids::{TableId, Ts};
use crate::io::Disk;
use crate::record::Entry;
use crate::version::Version;
use std::collections::BTreeMap;

/// Which partition keys to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysRequest {
    /// The table.
    pub table: TableId,
    /// Resume strictly after this partition key: a previous page's cursor.
    pub after: Option<Vec<u8>>,
    /// Most keys to return; at least 1.
    pub limit: usize,
}

/// A page of partition keys, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeysPage {
    /// The keys.
    pub keys: Vec<Vec<u8>>,
    /// Pass back as `KeysRequest::after` for the next page; `None` when the table is done.
    pub cursor: Option<Vec<u8>>,
}

impl<D: Disk> Engine<D> {
    /// One page of the partition keys of `req.table` that have a visible row.
    pub async fn partition_keys(&self, req: &KeysRequest) -> Result<KeysPage> {
        let settings = self.table(req.table)?;
        if req.limit == 0 {
            return Err(Error::InvalidArgument("a key listing's limit is at least 1"));
        }
        let after = req.after.as_deref();
        let cap = req.limit;
        let mut reads: Vec<(Vec<Entry>, bool)> = {
            let mem = self.mem.borrow();
            std::iter::once(&mem.active)
                .chain(mem.frozen.iter().map(|f| f.table.as_ref()))
                .map(|t| {
                    let entries = t.scan_table(req.table, after, cap);
                    let keys = distinct_partition_keys(&entries);
                    (entries, keys == cap)
                })
                .collect()
        };
        let view = self.read_view(req.table, settings.tie_rule, Ts::MAX);
        for segment in view.segments.iter() {
            let r = segment.scan_table(req.table, after, cap, &self.cache).await?;
            reads.push((r.entries, r.truncated));
        }
        let frontier = reads
            .iter()
            .filter(|(_, truncated)| *truncated)
            .filter_map(|(entries, _)| entries.last().map(|e| e.key.partition_key.clone()))
            .min();
        let mut rows: BTreeMap<(Vec<u8>, Vec<u8>), Vec<Version>> = BTreeMap::new();
        for (entries, _) in reads {
            for e in entries {
                // A rolled-back load's version in a merged segment: the row is listed only if
                // something else of it shows.
                let versions = rows.entry((e.key.partition_key, e.key.sort_key)).or_default();
                if !view.withdrawn(&e.version.id) {
                    versions.push(e.version);
                }
            }
        }
        let now_ms = self.clock.now_ms();
        let mut page = KeysPage::default();
        for ((pk, _), versions) in rows {
            if frontier.as_ref().is_some_and(|f| pk > *f) {
                break;
            }
            if page.keys.last() == Some(&pk) {
                continue;
            }
            if resolve(&versions, &settings, view.watermark, ReadAt::Latest, now_ms).is_some() {
                page.keys.push(pk);
                if page.keys.len() == req.limit {
                    page.cursor = page.keys.last().cloned();
                    return Ok(page);
                }
            }
        }
        page.cursor = frontier;
        Ok(page)
    }
}

fn distinct_partition_keys(entries: &[Entry]) -> usize {
    let mut n = 0;
    let mut last: Option<&[u8]> = None;
    for e in entries {
        if last != Some(e.key.partition_key.as_slice()) {
            n += 1;
            last = Some(&e.key.partition_key);
        }
    }
    n
}
