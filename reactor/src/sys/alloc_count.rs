//! A counting global allocator, for the tests that measure heap use (S16, S25).
//!
//! [`CountingAlloc`] passes every call to the system allocator and keeps three counts: the
//! live bytes of the whole process, and, per thread, the allocations made and the bytes asked
//! for. A test installs it in its own binary with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc::new();` and reads the counts
//! before and after the work it measures. Per-thread counts let tests that share a binary run
//! side by side; the process-wide count is for a measurement that spans threads (the test's
//! binary then holds that test only).
//!
//! Nothing in the reactor uses it: it costs a program only what it installs. A handler author
//! can install it the same way to check that a handler allocates nothing per message.
//!
//! # Implementation notes
//! The per-thread counters are `const`-initialised thread-locals of `Cell<u64>`, which need no
//! lazy set-up and no destructor, so reading or bumping them never allocates (which would
//! recurse into the allocator). During thread teardown a slot may already be gone
//! (`try_with`); those allocations are not counted.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, Ordering};

thread_local! {
    /// Allocations (and reallocations) made by this thread.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Bytes this thread asked for (a reallocation counts its new size).
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting (see the module docs).
#[derive(Debug)]
pub struct CountingAlloc {
    /// Heap bytes allocated and not yet freed, over the whole process.
    live: AtomicIsize,
}

impl CountingAlloc {
    /// A counter with every count at zero.
    pub const fn new() -> Self {
        CountingAlloc {
            live: AtomicIsize::new(0),
        }
    }

    /// Heap bytes allocated through this allocator and not yet freed, over every thread.
    pub fn live_bytes(&self) -> isize {
        self.live.load(Ordering::Relaxed)
    }

    /// Allocations (and reallocations) the calling thread has made so far.
    pub fn thread_allocations() -> u64 {
        ALLOCATIONS.with(Cell::get)
    }

    /// Bytes the calling thread has asked for so far (a reallocation counts its new size).
    pub fn thread_bytes() -> u64 {
        BYTES.with(Cell::get)
    }

    /// Counts one allocation of `bytes` on the calling thread.
    fn note(bytes: usize) {
        let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
        let _ = BYTES.try_with(|b| b.set(b.get() + bytes as u64));
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is passed on to `System` unchanged, with the caller's own arguments, so
// `System`'s guarantees are ours; the counting touches only atomics and allocation-free
// thread-locals.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        // SAFETY: the caller's contract for `alloc` (a nonzero size) is passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            self.live
                .fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed` is passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.live
                .fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with `layout`, so from `System` with it.
        unsafe { System.dealloc(ptr, layout) };
        self.live
            .fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(new_size);
        // SAFETY: `ptr` came from `System` with `layout`; the caller's contract for
        // `new_size` is passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.live.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}
