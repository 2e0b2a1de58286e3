//! A per-engine cache of verified data-block payloads, bounded by bytes, least recently used
//! out first. Blocks enter only after their checksum passed, so the cache never serves
//! corruption it could have caught.

use crate::ids::SegmentId;
use lru::LruCache;
use std::rc::Rc;

/// Cached block payloads keyed by `(segment, block number)`.
#[derive(Debug)]
pub struct BlockCache {
    blocks: LruCache<(SegmentId, u32), Rc<[u8]>>,
    capacity_bytes: usize,
    used_bytes: usize,
    hits: u64,
    misses: u64,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` of payload.
    pub fn new(capacity_bytes: usize) -> Self {
        Self { blocks: LruCache::unbounded(), capacity_bytes, used_bytes: 0, hits: 0, misses: 0 }
    }

    /// The cached payload, if present; counts a hit or a miss.
    pub fn get(&mut self, segment: SegmentId, block: u32) -> Option<Rc<[u8]>> {
        let found = self.blocks.get(&(segment, block)).cloned();
        if found.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        found
    }

    /// The cached payload, counting a hit, or none, counting nothing: for a read that only
    /// goes on without I/O, and whose fallback (a [`BlockCache::get`] then a read) counts the
    /// miss once.
    pub fn hit(&mut self, segment: SegmentId, block: u32) -> Option<Rc<[u8]>> {
        let found = self.blocks.get(&(segment, block)).cloned();
        if found.is_some() {
            self.hits += 1;
        }
        found
    }

    /// Caches a verified payload, evicting the least recently used until it fits. A payload
    /// larger than the whole cache is not cached.
    pub fn insert(&mut self, segment: SegmentId, block: u32, payload: Rc<[u8]>) {
        if payload.len() > self.capacity_bytes {
            return;
        }
        self.used_bytes += payload.len();
        if let Some(old) = self.blocks.put((segment, block), payload) {
            self.used_bytes -= old.len();
        }
        while self.used_bytes > self.capacity_bytes {
            let (_, evicted) = self.blocks.pop_lru().expect("used_bytes > 0 means entries exist");
            self.used_bytes -= evicted.len();
        }
    }

    /// Drops every block of `segment` (after a compaction removed it).
    pub fn evict_segment(&mut self, segment: SegmentId) {
        let keys: Vec<_> = self.blocks.iter().filter(|((s, _), _)| *s == segment).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(v) = self.blocks.pop(&k) {
                self.used_bytes -= v.len();
            }
        }
    }

    /// Payload bytes held.
    pub fn used_bytes(&self) -> usize {
        self.used_bytes
    }

    /// Hits and misses since creation.
    pub fn hit_miss(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_stays_within_its_bound_and_evicts_least_recently_used() {
        let mut c = BlockCache::new(10);
        c.insert(SegmentId(1), 0, Rc::from(vec![0u8; 4]));
        c.insert(SegmentId(1), 1, Rc::from(vec![0u8; 4]));
        assert!(c.get(SegmentId(1), 0).is_some());
        c.insert(SegmentId(2), 0, Rc::from(vec![0u8; 4]));
        assert!(c.used_bytes() <= 10);
        assert!(c.get(SegmentId(1), 1).is_none(), "least recently used went first");
        assert!(c.get(SegmentId(1), 0).is_some());
        c.insert(SegmentId(3), 0, Rc::from(vec![0u8; 11]));
        assert!(c.get(SegmentId(3), 0).is_none(), "larger than the cache is not cached");
        c.evict_segment(SegmentId(1));
        assert_eq!(c.used_bytes(), 4);
        assert_eq!(c.hit_miss(), (2, 2));
    }
}
