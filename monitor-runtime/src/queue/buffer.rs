//! A thread's own buffer of finished records, filled with no atomic
//! read-modify-write: its thread writes the next slot, then publishes the
//! count with a release store. The writer's sweep moves out the published
//! records it has not taken yet, under a lock that the thread takes only
//! to hand a full chunk over (once per chunk, not per record).

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::Record;

/// The buffer, shared between its thread ([`OwnedBuffer`]) and sweeps.
pub(crate) struct ThreadBuffer {
    /// Held by a sweep, and by the owning thread while it replaces the
    /// chunk (once per chunk, and across a channel send: a blocking lock,
    /// not a spin). The chunk's header changes only under it.
    lock: Mutex<()>,
    chunk: UnsafeCell<RawChunk>,
    /// Slots filled, published by the owning thread after each.
    len: AtomicUsize,
    /// Slots at the front whose records a sweep has moved out (changed
    /// under `lock`).
    taken: AtomicUsize,
}

/// A `Vec<Record>`'s allocation, its length kept apart in `len`.
struct RawChunk {
    ptr: *mut Record,
    cap: usize,
}

impl RawChunk {
    const EMPTY: RawChunk = RawChunk {
        ptr: ptr::NonNull::dangling().as_ptr(),
        cap: 0,
    };
}

// The impls below hold only because records can cross threads.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<Record>();
};

// SAFETY: the records are `Send`, and every access to the chunk follows the
// protocol above: the header and slots below `len` change only under
// `lock`; the owning thread alone writes the slot at `len`, which no sweep
// reads before the release store that publishes it.
unsafe impl Send for ThreadBuffer {}
// SAFETY: as for `Send`.
unsafe impl Sync for ThreadBuffer {}

impl ThreadBuffer {
    /// Moves the records published and not taken yet to the end of `into`;
    /// returns how many. Any thread.
    pub(crate) fn sweep(&self, into: &mut Vec<Record>) -> usize {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let len = self.len.load(Ordering::Acquire);
        let taken = self.taken.load(Ordering::Relaxed);
        let n = len - taken;
        into.reserve(n);
        // SAFETY: the lock is held, so the header is stable. Slots
        // `taken..len` hold records published by the owner's release store
        // (acquired above) and not moved out yet; the owner writes only the
        // slot at `len` or beyond until it takes the lock. `into` has room
        // for `n` more, and the records are moved (not copied) because
        // `taken` is advanced before the lock is released.
        unsafe {
            let chunk = &*self.chunk.get();
            ptr::copy_nonoverlapping(chunk.ptr.add(taken), into.as_mut_ptr().add(into.len()), n);
            into.set_len(into.len() + n);
        }
        self.taken.store(len, Ordering::Relaxed);
        n
    }
}

impl Drop for ThreadBuffer {
    fn drop(&mut self) {
        let (len, taken) = (*self.len.get_mut(), *self.taken.get_mut());
        let chunk = self.chunk.get_mut();
        // SAFETY: no other reference exists (`&mut self`); slots
        // `taken..len` are the records still owned here.
        drop(unsafe { take_records(chunk, taken, len) });
    }
}

/// The records `taken..len` of `chunk`, moved to its front, as a `Vec` that
/// owns the allocation; `chunk` is left empty.
///
/// # Safety
/// The caller has exclusive access to the header, slots `taken..len` are
/// initialised records owned by the buffer, and `chunk` came from a `Vec`.
unsafe fn take_records(chunk: &mut RawChunk, taken: usize, len: usize) -> Vec<Record> {
    let RawChunk { ptr, cap } = std::mem::replace(chunk, RawChunk::EMPTY);
    // SAFETY: as the caller promised; `ptr::copy` allows the overlap.
    unsafe {
        if taken > 0 {
            ptr::copy(ptr.add(taken), ptr, len - taken);
        }
        Vec::from_raw_parts(ptr, len - taken, cap)
    }
}

/// The owning thread's handle on its buffer: the only way to fill it. Not
/// `Send`, so the single writer of the next slot is the thread it was made
/// on.
pub(crate) struct OwnedBuffer {
    shared: Arc<ThreadBuffer>,
    _not_send: PhantomData<*const ()>,
}

impl OwnedBuffer {
    /// A buffer over `chunk` (emptied), and the handle sweeps use.
    pub(crate) fn new(mut chunk: Vec<Record>) -> (OwnedBuffer, Arc<ThreadBuffer>) {
        chunk.clear();
        let mut chunk = ManuallyDrop::new(chunk);
        let shared = Arc::new(ThreadBuffer {
            lock: Mutex::new(()),
            chunk: UnsafeCell::new(RawChunk {
                ptr: chunk.as_mut_ptr(),
                cap: chunk.capacity(),
            }),
            len: AtomicUsize::new(0),
            taken: AtomicUsize::new(0),
        });
        let owned = OwnedBuffer {
            shared: Arc::clone(&shared),
            _not_send: PhantomData,
        };
        (owned, shared)
    }

    /// Appends the record `make` builds, in place; returns the slots now
    /// filled, for the caller to [`replace`](Self::replace) the chunk when
    /// they reach its size. A chunk with no room left (not replaced: a
    /// panic in `replace`) gives the record back.
    #[inline(always)]
    pub(crate) fn push_with(&mut self, make: impl FnOnce() -> Record) -> Result<usize, Record> {
        let buffer = &*self.shared;
        let len = buffer.len.load(Ordering::Relaxed);
        // SAFETY: this is the owning thread (`OwnedBuffer` is not `Send`),
        // the only one that changes the header, which it does under the
        // lock: reading it here races with nothing. `&mut self` keeps
        // `make` from pushing or replacing meanwhile, so `len` and the
        // header stay as read until the write below.
        let chunk = unsafe { &*buffer.chunk.get() };
        if len >= chunk.cap {
            return Err(make());
        }
        // SAFETY: slot `len` is within the allocation and free: sweeps read
        // only slots below the published `len`.
        unsafe { chunk.ptr.add(len).write(make()) };
        buffer.len.store(len + 1, Ordering::Release);
        Ok(len + 1)
    }

    /// Runs `f` on the records not taken yet, as a `Vec` it may hand over
    /// or replace, then keeps what `f` leaves, with room for `room` records
    /// in all; returns what `f` returns. Sweeps wait meanwhile.
    pub(crate) fn replace<R>(&mut self, room: usize, f: impl FnOnce(&mut Vec<Record>) -> R) -> R {
        let buffer = &*self.shared;
        let _guard = buffer.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let len = buffer.len.load(Ordering::Relaxed);
        let taken = buffer.taken.load(Ordering::Relaxed);
        // Empty until `f` is done, so that a panic in it leaves no dangling
        // header (and the next push panics rather than writes).
        buffer.len.store(0, Ordering::Relaxed);
        buffer.taken.store(0, Ordering::Relaxed);
        // SAFETY: the lock is held by the owning thread, the only one that
        // reads the header without it; slots `taken..len` are this
        // buffer's records.
        let mut records = unsafe { take_records(&mut *buffer.chunk.get(), taken, len) };
        let out = f(&mut records);
        records.reserve(room.saturating_sub(records.len()));
        let mut records = ManuallyDrop::new(records);
        // SAFETY: as above; the header now names `records`' allocation,
        // whose first `records.len()` slots are initialised.
        unsafe {
            *buffer.chunk.get() = RawChunk {
                ptr: records.as_mut_ptr(),
                cap: records.capacity(),
            };
        }
        buffer.len.store(records.len(), Ordering::Release);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(span_id: u64) -> Record {
        Record::for_tests(span_id)
    }

    #[test]
    fn sweeps_take_each_published_record_once_while_the_owner_fills_on() {
        let (mut owned, shared) = OwnedBuffer::new(Vec::with_capacity(8));
        let mut swept = Vec::new();
        for id in 1..=5 {
            owned.push_with(|| record(id)).unwrap();
        }
        assert_eq!(shared.sweep(&mut swept), 5);
        assert_eq!(shared.sweep(&mut swept), 0);
        for id in 6..=8 {
            owned.push_with(|| record(id)).unwrap();
        }
        // Full: the owner hands over what sweeps did not take.
        let handed = owned.replace(8, std::mem::take);
        assert_eq!(
            handed.iter().map(|r| r.span_id).collect::<Vec<_>>(),
            [6, 7, 8]
        );
        owned.push_with(|| record(9)).unwrap();
        assert_eq!(shared.sweep(&mut swept), 1);
        let ids: Vec<u64> = swept.iter().map(|r| r.span_id).collect();
        assert_eq!(ids, [1, 2, 3, 4, 5, 9]);
    }

    #[test]
    fn what_a_hand_over_leaves_stays_in_order_with_room_for_more() {
        let (mut owned, shared) = OwnedBuffer::new(Vec::with_capacity(4));
        for id in 1..=4 {
            owned.push_with(|| record(id)).unwrap();
        }
        // A lane with room for one: the rest stays.
        let left = owned.replace(4, |records| {
            let rest = records.split_off(1);
            std::mem::replace(records, rest).len()
        });
        assert_eq!(left, 1);
        // Three kept, room for the fourth.
        assert_eq!(owned.push_with(|| record(5)).ok(), Some(4));
        let mut swept = Vec::new();
        shared.sweep(&mut swept);
        assert_eq!(
            swept.iter().map(|r| r.span_id).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
    }

    #[test]
    fn a_chunk_left_without_room_gives_the_record_back() {
        let (mut owned, _shared) = OwnedBuffer::new(Vec::with_capacity(1));
        owned.push_with(|| record(1)).unwrap();
        assert_eq!(owned.push_with(|| record(2)).map_err(|r| r.span_id), Err(2));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            owned.replace(1, |_| panic!("in a hand-over"))
        }));
        assert!(result.is_err());
        // The records in hand went with the panic; the chunk is empty and
        // refuses rather than writes.
        assert_eq!(owned.push_with(|| record(3)).map_err(|r| r.span_id), Err(3));
        owned.replace(1, |_| ());
        assert_eq!(owned.push_with(|| record(4)).ok(), Some(1));
    }

    #[test]
    fn records_left_in_a_dropped_buffer_are_dropped_once() {
        let (mut owned, shared) = OwnedBuffer::new(Vec::with_capacity(4));
        owned.push_with(|| record(1)).unwrap();
        owned.push_with(|| record(2)).unwrap();
        let mut swept = Vec::new();
        shared.sweep(&mut swept);
        owned.push_with(|| record(3)).unwrap();
        drop((owned, shared));
        assert_eq!(swept.len(), 2);
    }

    #[test]
    fn a_thread_pushes_while_another_sweeps_and_nothing_is_lost_or_doubled() {
        let (mut owned, shared) = OwnedBuffer::new(Vec::with_capacity(64));
        let total = 100_000u64;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let started = Arc::new(std::sync::Barrier::new(2));
        let sweeper = {
            let (shared, done, started) =
                (Arc::clone(&shared), Arc::clone(&done), Arc::clone(&started));
            std::thread::spawn(move || {
                started.wait();
                let mut swept = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    shared.sweep(&mut swept);
                }
                swept
            })
        };
        let mut handed = Vec::new();
        started.wait();
        for id in 1..=total {
            if owned.push_with(|| record(id)).unwrap() == 64 {
                owned.replace(64, |records| handed.append(records));
            }
        }
        done.store(true, Ordering::Relaxed);
        let mut swept = sweeper.join().unwrap();
        shared.sweep(&mut swept);
        owned.replace(64, |records| handed.append(records));
        let mut ids: Vec<u64> = swept.iter().chain(&handed).map(|r| r.span_id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=total).collect::<Vec<_>>());
    }
}
