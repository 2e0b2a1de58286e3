//! Which bulk loads reads must not see, shared by every partition of a process (all shards).
//!
//! A load is hidden from before its first manifest edit until its load-level commit record is
//! durable, and from its rollback on. Showing it is one store of a new set, so the load appears
//! on every partition at the same instant. A load the set does not name is visible: what decides
//! is the durable load record the daemon keeps, and this set mirrors it.
//!
//! Beside it, the loads compaction must leave as linked: those a rollback is deciding about
//! (pinned), and those still inside their rollback window (protected, a set the daemon replaces
//! as loads age). No such load's segments are merged, and a merge that took one commits nothing.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The shared set of hidden load ids. Cheap to clone; clones share the set.
#[derive(Debug, Clone, Default)]
pub struct LoadVisibility {
    hidden: Arc<RwLock<Arc<BTreeSet<u32>>>>,
    /// Bumped after every change of `hidden`, so a reader can keep a copy and check it with one
    /// load instead of taking the lock.
    epoch: Arc<AtomicU64>,
    pinned: Arc<RwLock<BTreeSet<u32>>>,
    protected: Arc<RwLock<BTreeSet<u32>>>,
}

impl LoadVisibility {
    /// Hides `load` from reads.
    pub fn hide(&self, load: u32) {
        self.update(|s| {
            s.insert(load);
        });
    }

    /// Makes `load` visible to reads.
    pub fn show(&self, load: u32) {
        self.update(|s| {
            s.remove(&load);
        });
    }

    fn update(&self, f: impl FnOnce(&mut BTreeSet<u32>)) {
        let mut guard = self.hidden.write().unwrap_or_else(|e| e.into_inner());
        let mut next = BTreeSet::clone(&guard);
        f(&mut next);
        *guard = Arc::new(next);
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Keeps compaction off `load`'s segments, visible or not, until [`LoadVisibility::unpin`].
    pub fn pin(&self, load: u32) {
        self.pinned.write().unwrap_or_else(|e| e.into_inner()).insert(load);
    }

    /// Lets compaction merge `load`'s segments again (if it is visible).
    pub fn unpin(&self, load: u32) {
        self.pinned.write().unwrap_or_else(|e| e.into_inner()).remove(&load);
    }

    /// Makes `loads` the set kept as linked for their rollback window, replacing the last one.
    pub fn set_protected(&self, loads: BTreeSet<u32>) {
        *self.protected.write().unwrap_or_else(|e| e.into_inner()) = loads;
    }

    /// The loads whose segments compaction must leave as they are: hidden, pinned or protected.
    pub fn kept_apart(&self) -> BTreeSet<u32> {
        let mut loads = BTreeSet::clone(&self.snapshot());
        loads.extend(self.pinned.read().unwrap_or_else(|e| e.into_inner()).iter().copied());
        loads.extend(self.protected.read().unwrap_or_else(|e| e.into_inner()).iter().copied());
        loads
    }

    /// Changes of the hidden set so far: a copy taken at one epoch is current while it lasts.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The hidden set now: one read takes it once and decides with it throughout.
    pub fn snapshot(&self) -> Arc<BTreeSet<u32>> {
        self.hidden.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// True if `load` is hidden now.
    pub fn is_hidden(&self, load: u32) -> bool {
        self.snapshot().contains(&load)
    }
}
