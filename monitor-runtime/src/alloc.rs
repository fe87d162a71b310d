//! An opt-in global allocator that counts the bytes each thread allocates,
//! so that spans get `alloc_bytes`: what their thread allocated while the
//! span was current, children included.
//!
//! The count is a plain thread-local: no atomic is shared between threads,
//! so allocation stays as fast as the wrapped allocator plus an add.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::record::NULL;

thread_local! {
    /// Bytes this thread has allocated since it started.
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    /// Of those, bytes the monitor allocated for itself (its queue buffers):
    /// not charged to the user's spans.
    static EXCLUDED: Cell<u64> = const { Cell::new(0) };
}

/// Set by the first allocation counted: spans read the counter only then.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Wraps an allocator (`System` by default) and counts, per thread, the
/// bytes allocated through it. Install it as the global allocator:
///
/// ```
/// use monitor_runtime::alloc::CountingAllocator;
///
/// #[global_allocator]
/// static ALLOC: CountingAllocator = CountingAllocator::system();
///
/// let before = monitor_runtime::alloc::allocated_on_this_thread();
/// let buffer = vec![0u8; 1 << 20];
/// assert!(monitor_runtime::alloc::allocated_on_this_thread() >= before + (1 << 20));
/// # drop(buffer);
/// ```
#[derive(Debug, Default)]
pub struct CountingAllocator<A = System> {
    inner: A,
}

impl CountingAllocator<System> {
    /// Counts allocations made through the system allocator.
    pub const fn system() -> Self {
        CountingAllocator { inner: System }
    }
}

impl<A> CountingAllocator<A> {
    /// Counts allocations made through `inner`.
    pub const fn new(inner: A) -> Self {
        CountingAllocator { inner }
    }
}

/// Set once the first allocation is counted (spans read the counter from
/// then on, unless `__count_spans(false)`).
static SEEN: AtomicBool = AtomicBool::new(false);

#[inline]
fn count(bytes: usize) {
    if !SEEN.load(Ordering::Relaxed) {
        SEEN.store(true, Ordering::Relaxed);
        INSTALLED.store(true, Ordering::Relaxed);
    }
    // Fails only while the thread's locals are torn down: not counted.
    let _ = ALLOCATED.try_with(|total| total.set(total.get().wrapping_add(bytes as u64)));
}

// SAFETY: every method forwards to the wrapped allocator with the caller's
// arguments unchanged, so `A`'s guarantees hold; counting touches only a
// thread-local `Cell` and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract for `layout`.
        let block = unsafe { self.inner.alloc(layout) };
        // A failed allocation allocated nothing.
        if !block.is_null() {
            count(layout.size());
        }
        block
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            count(layout.size());
        }
        block
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a block this allocator gave, with its layout.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `realloc`'s contract.
        let block = unsafe { self.inner.realloc(ptr, layout, new_size) };
        // Growth is new memory; shrinking allocates nothing.
        if !block.is_null() {
            count(new_size.saturating_sub(layout.size()));
        }
        block
    }
}

/// Bytes allocated on this thread so far (0 unless a [`CountingAllocator`]
/// is the global allocator).
pub fn allocated_on_this_thread() -> u64 {
    ALLOCATED.try_with(Cell::get).unwrap_or(0)
}

/// Stops (or resumes) spans from reading the counter, as if no counting
/// allocator were installed: for benches that compare both in one process.
#[doc(hidden)]
pub fn __count_spans(on: bool) {
    INSTALLED.store(on, Ordering::Relaxed);
}

/// The bytes this thread allocated for the user so far, or `NULL` when no
/// counting allocator is installed.
#[inline]
pub(crate) fn mark() -> u64 {
    if INSTALLED.load(Ordering::Relaxed) {
        let mine = EXCLUDED.try_with(Cell::get).unwrap_or(0);
        ALLOCATED
            .try_with(|total| total.get().wrapping_sub(mine))
            .unwrap_or(NULL)
    } else {
        NULL
    }
}

/// Runs `f`, the monitor's own work, without charging what it allocates
/// to the spans around it.
#[inline]
pub(crate) fn excluded<R>(f: impl FnOnce() -> R) -> R {
    if !INSTALLED.load(Ordering::Relaxed) {
        return f();
    }
    let before = allocated_on_this_thread();
    let result = f();
    let spent = allocated_on_this_thread().wrapping_sub(before);
    let _ = EXCLUDED.try_with(|own| own.set(own.get().wrapping_add(spent)));
    result
}
