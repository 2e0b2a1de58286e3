//! Memtable memory summed over the engines that share a tally: each engine adds what its
//! memtables grow by and takes back what they shrink by, at the moment they change, so a shard
//! reads its total in constant time on every write instead of asking each of its engines.

use super::Engine;
use crate::io::Disk;
use std::cell::Cell;
use std::rc::Rc;

/// Memtable bytes of every engine sharing this tally (active and frozen memtables), kept
/// equal to the sum of their [`Engine::memtables_held_bytes`] (tested).
#[derive(Debug, Clone, Default)]
pub struct MemoryTally(Rc<Cell<usize>>);

impl MemoryTally {
    /// The bytes held now.
    pub fn bytes(&self) -> usize {
        self.0.get()
    }

    fn add(&self, bytes: usize) {
        self.0.set(self.0.get() + bytes);
    }

    fn take_back(&self, bytes: usize) {
        self.0.set(self.0.get().checked_sub(bytes).expect("an engine takes back only what it added"));
    }
}

impl<D: Disk> Engine<D> {
    /// Counts this engine's memtables in `tally` from now on, moving them out of the tally they
    /// were in (each engine starts with one of its own).
    pub fn share_memory_tally(&self, tally: MemoryTally) {
        let counted = self.counted_memory.get();
        self.memory_tally.borrow().take_back(counted);
        *self.memory_tally.borrow_mut() = tally;
        self.counted_memory.set(0);
        self.recount_memory();
    }

    /// Brings the tally up to date after the memtables changed (an insert, a freeze, a flush).
    pub(super) fn recount_memory(&self) {
        let now = self.memtables_held_bytes();
        let counted = self.counted_memory.replace(now);
        let tally = self.memory_tally.borrow();
        if now >= counted {
            tally.add(now - counted);
        } else {
            tally.take_back(counted - now);
        }
    }
}

impl<D: Disk> Drop for Engine<D> {
    fn drop(&mut self) {
        self.memory_tally.borrow().take_back(self.counted_memory.get());
    }
}
