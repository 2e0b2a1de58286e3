//! Point reads: `get` (latest or as of a `ts`), `multi_get` and `versions`. Each gathers a key's
//! versions from the memtables and the segments, visiting segments by descending `max_ts` and
//! stopping once none left can hold a greater version, then applies the ordering rule, the
//! table's watermarks and expiry.

use super::{Engine, ReadView};
use crate::error::Result;
use crate::ids::Ts;
use crate::io::Disk;
use crate::options::TableSettings;
use crate::record::{Entry, KeyRef};
use crate::segment::reader::SegmentReader;
use crate::version::{Payload, TieRule, Version, VersionId, Watermark};
use std::rc::Rc;

/// Which state of the data a read sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadAt {
    /// The newest.
    #[default]
    Latest,
    /// As of a timestamp: versions with `ts` at or below it, watermarks at or below it, and
    /// expiry judged at that time (or now, if earlier). Exact only within what compaction
    /// retains.
    AsOf(Ts),
}

impl ReadAt {
    /// The greatest `ts` visible.
    pub fn bound(self) -> Ts {
        match self {
            ReadAt::Latest => Ts::MAX,
            ReadAt::AsOf(ts) => ts,
        }
    }

    /// The time, in milliseconds, at which expiry is judged.
    pub fn expiry_ms(self, now_ms: u64) -> u64 {
        match self {
            ReadAt::Latest => now_ms,
            ReadAt::AsOf(ts) => ts.millis().min(now_ms),
        }
    }
}

/// A visible value and the version that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The value.
    pub value: Vec<u8>,
    /// The winning version's identity, with its origin (lineage).
    pub id: VersionId,
    /// When the value expires, if ever.
    pub expires_at_ms: Option<u64>,
}

/// A key's history: every retained version, greatest first under the table's rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHistory {
    /// The versions.
    pub versions: Vec<Version>,
    /// The table watermark in force, if any: versions below it are superseded.
    pub watermark: Option<Watermark>,
}

/// Picks the visible row from `candidates` (any order, duplicates allowed).
pub(super) fn resolve(
    candidates: &[Version],
    settings: &TableSettings,
    watermark: Option<Watermark>,
    at: ReadAt,
    now_ms: u64,
) -> Option<Row> {
    into_row(candidates[visible(candidates, settings, watermark, at, now_ms)?].clone())
}

/// The row a visible version reads as: its value, or none for a tombstone.
fn into_row(version: Version) -> Option<Row> {
    match version.payload {
        Payload::Value { value, expires_at_ms } => Some(Row { value, id: version.id, expires_at_ms }),
        Payload::Tombstone => None,
    }
}

/// Where in `candidates` [`resolve`]'s answer is: the greatest version under the ordering rule
/// at or below the read's bound, unless a watermark hides it or it is expired.
pub(super) fn visible(
    candidates: &[Version],
    settings: &TableSettings,
    watermark: Option<Watermark>,
    at: ReadAt,
    now_ms: u64,
) -> Option<usize> {
    let bound = at.bound();
    let (i, best) = candidates
        .iter()
        .enumerate()
        .filter(|(_, v)| v.id.ts <= bound)
        .max_by(|(_, a), (_, b)| a.rule_cmp(b, settings.tie_rule))?;
    if watermark.is_some_and(|w| w.hides(&best.id, settings.tie_rule)) || best.payload.is_dead_at(at.expiry_ms(now_ms))
    {
        return None;
    }
    Some(i)
}

/// A point read's candidate versions: the newest group of each memtable and segment it reads,
/// nearly always one or two, so they live on the stack.
type Candidates = smallvec::SmallVec<[Version; 2]>;

/// The greatest of `marks` at or below `bound`, under `rule`.
pub(super) fn effective_watermark<'a>(
    marks: impl Iterator<Item = &'a Watermark>,
    rule: TieRule,
    bound: Ts,
) -> Option<Watermark> {
    marks.filter(|w| w.point.ts <= bound).copied().max_by(|a, b| rule.cmp(&a.point, &b.point))
}

/// A point read under way: what it has gathered, and the view it reads through.
struct PointRead<D: Disk> {
    settings: TableSettings,
    at: ReadAt,
    candidates: Candidates,
    view: ReadView<D>,
    /// The next segment of the view to consider.
    next: usize,
}

impl<D: Disk> PointRead<D> {
    /// The next segment the read must look in, by descending `max_ts`: none once no segment
    /// left can hold a greater version than the candidates', and none whose versions are all
    /// past the read's bound.
    fn next_segment(&mut self) -> Option<Rc<SegmentReader<D::File>>> {
        let best_ts = self.candidates.iter().map(|v| v.id.ts).max();
        while let Some(segment) = self.view.segments.get(self.next) {
            self.next += 1;
            let info = segment.info();
            if best_ts.is_some_and(|b| info.max_ts < b) {
                return None;
            }
            if info.min_ts <= self.at.bound() {
                return Some(segment.clone());
            }
        }
        None
    }

    /// True if `found` holds a version of a withdrawn (hidden) bulk load: a merged segment
    /// holds a rolled-back load's version on top, and what it superseded here, if compaction
    /// kept it, shows again.
    fn withdrawn_in(&self, found: &[Version]) -> bool {
        found.iter().any(|v| self.view.withdrawn(&v.id))
    }
}

impl<D: Disk> Engine<D> {
    /// The visible value of `key`.
    pub async fn get(&self, key: KeyRef<'_>, at: ReadAt) -> Result<Option<Row>> {
        let mut read = self.point_read(key, at)?;
        while let Some(segment) = read.next_segment() {
            let found = segment.newest_payloads_of(key, at.bound(), &self.cache).await?;
            if read.withdrawn_in(&found) {
                let all = segment.versions_of(key, &self.cache).await?;
                let visible = all.into_iter().map(|e| e.version);
                read.candidates.extend(visible.filter(|v| v.id.ts <= at.bound() && !read.view.withdrawn(&v.id)));
            } else {
                read.candidates.extend(found);
            }
        }
        Ok(self.resolve_point_read(read))
    }

    /// [`Engine::get`] when it needs no I/O: the key's versions are in memory, or the blocks it
    /// must read are cached (or its segments' blooms rule them out). `None` when it would have
    /// to read, having read nothing; then call [`Engine::get`]. So a request loop can answer a
    /// read in place, with no task, and give only the rest a task of its own.
    pub fn get_cached(&self, key: KeyRef<'_>, at: ReadAt) -> Option<Result<Option<Row>>> {
        let mut read = match self.point_read(key, at) {
            Ok(read) => read,
            Err(e) => return Some(Err(e)),
        };
        while let Some(segment) = read.next_segment() {
            let found = match segment.newest_payloads_cached(key, at.bound(), &self.cache)? {
                Ok(found) => found,
                Err(e) => return Some(Err(e)),
            };
            if read.withdrawn_in(&found) {
                return None;
            }
            read.candidates.extend(found);
        }
        Some(Ok(self.resolve_point_read(read)))
    }

    /// A point read of `key` with the memtables' candidates gathered and its view taken.
    fn point_read(&self, key: KeyRef<'_>, at: ReadAt) -> Result<PointRead<D>> {
        let settings = self.table(key.table)?;
        let candidates = self.memtable_newest_versions(key, at.bound());
        let view = self.read_view(key.table, settings.tie_rule, at.bound());
        Ok(PointRead { settings, at, candidates, view, next: 0 })
    }

    /// The row `read`'s candidates give, recorded in the partition's heat.
    fn resolve_point_read(&self, read: PointRead<D>) -> Option<Row> {
        let PointRead { settings, at, mut candidates, view, .. } = read;
        let now_ms = self.clock.now_ms();
        // The visible version's value moves out of the candidates: one copy from where it
        // lives (arena or block), not two.
        let row = visible(&candidates, &settings, view.watermark, at, now_ms)
            .and_then(|i| into_row(candidates.swap_remove(i)));
        self.heat.borrow_mut().record_read(row.as_ref().map_or(0, |r| r.value.len() as u64), now_ms);
        row
    }

    /// The visible values of several keys, in order.
    pub async fn multi_get(&self, keys: &[KeyRef<'_>], at: ReadAt) -> Result<Vec<Option<Row>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(*key, at).await?);
        }
        Ok(out)
    }

    /// Every retained version of `key`, greatest first under the table's rule, with origins.
    pub async fn versions(&self, key: KeyRef<'_>) -> Result<KeyHistory> {
        let settings = self.table(key.table)?;
        let mut all = self.memtable_versions(key);
        let view = self.read_view(key.table, settings.tie_rule, Ts::MAX);
        for segment in view.segments.iter() {
            let found = segment.versions_of(key, &self.cache).await?;
            all.extend(found.into_iter().map(|e: Entry| e.version).filter(|v| !view.withdrawn(&v.id)));
        }
        let rule = settings.tie_rule;
        all.sort_by(|a, b| b.rule_cmp(a, rule));
        // Of two payloads claiming one identity, the greater (first after the sort) stands.
        all.dedup_by(|later, earlier| later.id == earlier.id);
        Ok(KeyHistory { versions: all, watermark: view.watermark })
    }

    /// The versions of `key` at the greatest `ts` at or below `bound` in each memtable: the only
    /// memtable versions the ordering rule can pick.
    fn memtable_newest_versions(&self, key: KeyRef<'_>, bound: Ts) -> Candidates {
        let mem = self.mem.borrow();
        let mut out = Candidates::new();
        mem.active.visit_newest_versions_of(key, bound, |e| out.push(e.version()));
        for f in &mem.frozen {
            f.table.visit_newest_versions_of(key, bound, |e| out.push(e.version()));
        }
        out
    }

    fn memtable_versions(&self, key: KeyRef<'_>) -> Vec<Version> {
        let mem = self.mem.borrow();
        let mut out: Vec<Version> = mem.active.versions_of(key).iter().map(|e| e.version()).collect();
        for f in &mem.frozen {
            out.extend(f.table.versions_of(key).iter().map(|e| e.version()));
        }
        out
    }
}
