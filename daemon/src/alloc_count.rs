//! An allocator wrapper that counts the allocations each thread makes through it. nacred's
//! shards each run on a thread of their own and report their count in `nacre stats`
//! (`allocations_total`), so a benchmark divides the change over a run by the operations it
//! served. Counting is a thread-local increment: no atomics, no locks.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// `A`, counting its allocations (reallocations included; frees are not counted).
pub struct Counting<A>(pub A);

fn count() {
    // A thread being torn down has nothing left to report.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

/// Allocations made on the calling thread through [`Counting`] since it started.
pub fn allocations_on_this_thread() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every method forwards to `A`'s with the caller's own arguments, so each keeps `A`'s
// guarantees; counting touches only a thread-local `Cell<u64>`, which never allocates.
#[allow(unsafe_code)]
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as received.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { self.0.dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_allocation_on_a_thread_is_counted_there_and_nowhere_else() {
        let counting = Counting(std::alloc::System);
        let layout = Layout::from_size_align(64, 8).expect("a layout");
        let before = allocations_on_this_thread();
        // SAFETY: a non-zero-size layout; each pointer is freed with the layout it came with.
        #[allow(unsafe_code)]
        unsafe {
            let a = counting.alloc(layout);
            let b = counting.alloc_zeroed(layout);
            let b = counting.realloc(b, layout, 128);
            counting.dealloc(a, layout);
            counting.dealloc(b, Layout::from_size_align(128, 8).expect("a layout"));
        }
        assert_eq!(allocations_on_this_thread() - before, 3, "alloc, alloc_zeroed and realloc; frees are not");
        let other = std::thread::spawn(allocations_on_this_thread).join().expect("the thread runs");
        assert_eq!(other, 0, "another thread's count is its own");
    }
}
