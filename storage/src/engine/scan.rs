//! Scans of one partition key over a sort-key range, forward or reverse, with a limit and a
//! resume cursor.
//!
//! Each source (memtables, segments) yields whole sort-key groups up to a cap. Where a source hit
//! its cap, nothing past its last group is known, so the page ends there (its "frontier") even
//! if it holds fewer rows than asked, and the cursor resumes after it. Memory per page is
//! bounded by sources x cap groups.

use super::Engine;
use super::read::{ReadAt, resolve};
use crate::error::{Error, Result};
use crate::ids::{TableId, Ts};
use crate::io::Disk;
use crate::record::{Entry, Key, PartitionRange};
use crate::segment::reader::SegmentReader;
use crate::version::{Version, VersionId};
use std::collections::BTreeMap;

/// What to scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanRequest {
    /// The table.
    pub table: TableId,
    /// The partition key whose rows are scanned.
    pub partition_key: Vec<u8>,
    /// Smallest sort key, inclusive.
    pub from: Option<Vec<u8>>,
    /// Greatest sort key, inclusive.
    pub to: Option<Vec<u8>>,
    /// Most rows to return; at least 1.
    pub limit: usize,
    /// Descending sort-key order.
    pub reverse: bool,
    /// Resume strictly after (forward) or before (reverse) this sort key: a previous page's
    /// cursor.
    pub cursor: Option<Vec<u8>>,
    /// Which state to read.
    pub at: ReadAt,
}

/// One visible row of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The row's sort key.
    pub sort_key: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
    /// The winning version.
    pub id: VersionId,
    /// When the value expires, if ever.
    pub expires_at_ms: Option<u64>,
}

/// A page of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanPage {
    /// Rows in scan order.
    pub rows: Vec<ScanRow>,
    /// Pass back as `ScanRequest::cursor` for the next page; `None` when the range is done.
    pub cursor: Option<Vec<u8>>,
}

struct SourceRead {
    entries: Vec<Entry>,
    /// The last sort key the source read (before rolled-back versions were taken out).
    last: Option<Vec<u8>>,
    truncated: bool,
}

impl<D: Disk> Engine<D> {
    /// One page of rows of `req.partition_key` in sort-key order.
    pub async fn scan(&self, req: &ScanRequest) -> Result<ScanPage> {
        let settings = self.table(req.table)?;
        if req.limit == 0 {
            return Err(Error::InvalidArgument("a scan's limit is at least 1"));
        }
        let (from, to) = resume_bounds(req);
        if let (Some(f), Some(t)) = (&from, &to)
            && f > t
        {
            return Ok(ScanPage::default());
        }
        // One extra group, since the cursor's own sort key may come back and be skipped.
        let cap = req.limit.saturating_add(1);
        let range = PartitionRange {
            table: req.table,
            partition_key: &req.partition_key,
            from: from.as_deref(),
            to: to.as_deref(),
            reverse: req.reverse,
            max_sort_keys: cap,
            bound: req.at.bound(),
        };
        let mut reads = self.memtable_scan(&range);
        let view = self.read_view(req.table, settings.tie_rule, req.at.bound());
        for segment in view.segments.iter() {
            let r = segment.scan_partition(&range, &self.cache).await?;
            let last = r.entries.last().map(|e| e.key.sort_key.clone());
            let entries = self.without_withdrawn(segment, r.entries, &view, range.bound).await?;
            reads.push(SourceRead { entries, last, truncated: r.truncated });
        }
        // The nearest of the truncated sources' last groups: past it, some source is unread.
        let frontier = reads
            .iter()
            .filter(|r| r.truncated)
            .filter_map(|r| r.last.clone())
            .reduce(|a, b| if req.reverse { a.max(b) } else { a.min(b) });
        let mut groups: BTreeMap<Vec<u8>, Vec<Version>> = BTreeMap::new();
        for r in reads {
            for e in r.entries {
                groups.entry(e.key.sort_key).or_default().push(e.version);
            }
        }
        let now_ms = self.clock.now_ms();
        let beyond = |sk: &Vec<u8>| frontier.as_ref().is_some_and(|f| if req.reverse { sk < f } else { sk > f });
        let ordered: Box<dyn Iterator<Item = (Vec<u8>, Vec<Version>)>> =
            if req.reverse { Box::new(groups.into_iter().rev()) } else { Box::new(groups.into_iter()) };
        let mut page = ScanPage::default();
        for (sk, versions) in ordered {
            if beyond(&sk) {
                break;
            }
            if req.cursor.as_ref() == Some(&sk) {
                continue;
            }
            if let Some(row) = resolve(&versions, &settings, view.watermark, req.at, now_ms) {
                page.rows.push(ScanRow {
                    sort_key: sk,
                    value: row.value,
                    id: row.id,
                    expires_at_ms: row.expires_at_ms,
                });
                if page.rows.len() == req.limit {
                    page.cursor = page.rows.last().map(|r| r.sort_key.clone());
                    return Ok(page);
                }
            }
        }
        page.cursor = frontier;
        Ok(page)
    }

    /// `entries` (a segment's newest group per sort key) without the versions of hidden bulk
    /// loads. Where such a version stood on top in a merged segment, the sort key's other
    /// versions there at or below `bound` take its place: what it superseded shows again.
    async fn without_withdrawn(
        &self,
        segment: &SegmentReader<D::File>,
        entries: Vec<Entry>,
        view: &super::ReadView<D>,
        bound: Ts,
    ) -> Result<Vec<Entry>> {
        if !entries.iter().any(|e| view.withdrawn(&e.version.id)) {
            return Ok(entries);
        }
        let mut tainted: Vec<Key> =
            entries.iter().filter(|e| view.withdrawn(&e.version.id)).map(|e| e.key.clone()).collect();
        tainted.dedup();
        let mut out: Vec<Entry> = entries.into_iter().filter(|e| !tainted.contains(&e.key)).collect();
        for key in &tainted {
            let found = segment.versions_of(key.as_ref(), &self.cache).await?;
            out.extend(found.into_iter().filter(|e| e.version.id.ts <= bound && !view.withdrawn(&e.version.id)));
        }
        Ok(out)
    }

    fn memtable_scan(&self, range: &PartitionRange<'_>) -> Vec<SourceRead> {
        let mem = self.mem.borrow();
        let tables = std::iter::once(&mem.active).chain(mem.frozen.iter().map(|f| f.table.as_ref()));
        tables
            .map(|t| {
                let entries = t.scan_partition(range);
                let groups = entries.iter().fold((0, None::<&[u8]>), |(n, last), e| {
                    if last == Some(e.key.sort_key.as_slice()) {
                        (n, last)
                    } else {
                        (n + 1, Some(e.key.sort_key.as_slice()))
                    }
                });
                let last = entries.last().map(|e| e.key.sort_key.clone());
                SourceRead { truncated: groups.0 == range.max_sort_keys, last, entries }
            })
            .collect()
    }
}

/// The inclusive sort-key bounds to read, narrowed by the cursor: forward, the smallest key
/// after the cursor is the cursor plus a zero byte; reverse, the cursor itself is read and
/// skipped.
fn resume_bounds(req: &ScanRequest) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
    let mut from = req.from.clone();
    let mut to = req.to.clone();
    if let Some(c) = &req.cursor {
        if req.reverse {
            to = Some(match to {
                Some(t) if t < *c => t,
                _ => c.clone(),
            });
        } else {
            let after = [c.as_slice(), &[0]].concat();
            from = Some(match from {
                Some(f) if f > after => f,
                _ => after,
            });
        }
    }
    (from, to)
}
