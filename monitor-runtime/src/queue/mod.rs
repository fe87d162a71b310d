//! The error-first queue between finished spans and the writer.
//!
//! Two lanes. Error and panic records go straight into an unbounded channel
//! that is never dropped from and that the writer drains first. Every other
//! record is pushed into a buffer owned by its thread (no atomic
//! read-modify-write on the hot path: see [`buffer`]); a full buffer is
//! handed to the normal lane as one chunk, where `queue.capacity` (records) and
//! `queue.max_bytes` (their memory, captured text included) are enforced
//! once per chunk. The writer also sweeps every thread's buffer each
//! `flush_interval_ms` and on `flush()`, so an idle or exited thread's records
//! never sit there longer than that.
//!
//! The error lane's memory is bounded by `queue.error_max_bytes`: past it,
//! an error record goes to an [`ErrorOverflow`] (the spill file) instead,
//! so a flood of errors costs disk, not memory, and none is dropped.

use std::cell::RefMut;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Overflow;
use crate::local::Local;
use crate::record::Record;

mod buffer;

use buffer::{OwnedBuffer, ThreadBuffer};

/// Records a thread buffers before it hands them over as one chunk.
const MAX_CHUNK: usize = 1024;
/// Emptied chunks kept for reuse, so the hot path rarely allocates.
const SPARE_CHUNKS: usize = 64;

/// Where error records go once the error lane holds `error_max_bytes`.
pub(crate) trait ErrorOverflow: Send + Sync {
    /// Keeps `record` out of memory; never drops it uncounted.
    fn take(&self, record: Record);
}

/// Records handed to the normal lane together, with their weight.
pub(crate) struct Chunk {
    pub(crate) records: Vec<Record>,
    pub(crate) bytes: usize,
}

/// A thread the writer has not stored in the `threads` table yet.
pub(crate) struct NewThread {
    pub(crate) id: u64,
    pub(crate) name: String,
}

/// Counts since the previous `monitor_stats` row, except `dropped`.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) enqueued: AtomicU64,
    /// Since `init`, for `guard.health()`: the writer keeps what its last
    /// stats row reached and stores the difference.
    pub(crate) dropped: AtomicU64,
    /// Spans left out by a callsite's sampling rate (not losses).
    pub(crate) sampled_out: AtomicU64,
}

pub(crate) struct Queue {
    errors_tx: Sender<Record>,
    errors_rx: Receiver<Record>,
    /// The error lane's memory, as [`Record::weight`] counts it.
    error_bytes: AtomicUsize,
    error_max_bytes: usize,
    error_overflow: Option<Arc<dyn ErrorOverflow>>,
    normal_tx: Sender<Chunk>,
    pub(crate) normal_rx: Receiver<Chunk>,
    wake_tx: Sender<()>,
    pub(crate) wake_rx: Receiver<()>,
    /// Resource samples: a few per second, never dropped.
    samples_tx: Sender<crate::resources::Sample>,
    pub(crate) samples_rx: Receiver<crate::resources::Sample>,
    spare_tx: Sender<Vec<Record>>,
    spare_rx: Receiver<Vec<Record>>,
    /// Normal records handed over and not yet taken by the writer.
    in_flight: AtomicUsize,
    /// Their memory, as [`Record::weight`] counts it.
    in_flight_bytes: AtomicUsize,
    capacity: usize,
    max_bytes: usize,
    chunk: usize,
    overflow: Overflow,
    space: Mutex<()>,
    space_freed: Condvar,
    /// False once the writer has stopped: `block` must not wait for it.
    open: AtomicBool,
    pub(crate) counters: Counters,
    buffers: Mutex<Vec<Arc<ThreadBuffer>>>,
    new_threads: Mutex<Vec<NewThread>>,
}

/// A thread's buffer, kept in its [`Local`], with the address of the queue
/// it belongs to (a later `init` has a new queue, and the thread registers
/// again) and the thread's id.
pub(crate) struct LocalBuffer {
    owner: usize,
    buffer: OwnedBuffer,
    thread_id: u64,
}

impl Queue {
    /// A zero bound means unbounded. Error records past `error_max_bytes`
    /// go to `error_overflow`.
    pub(crate) fn new(
        config: &crate::config::QueueConfig,
        error_overflow: Arc<dyn ErrorOverflow>,
    ) -> Queue {
        let unbounded_if_zero = |n: usize| if n == 0 { usize::MAX } else { n };
        let capacity = unbounded_if_zero(config.capacity);
        let max_bytes = unbounded_if_zero(config.max_bytes);
        let error_max_bytes = unbounded_if_zero(config.error_max_bytes);
        let (errors_tx, errors_rx) = crossbeam_channel::unbounded();
        let (normal_tx, normal_rx) = crossbeam_channel::unbounded();
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        let (samples_tx, samples_rx) = crossbeam_channel::unbounded();
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(SPARE_CHUNKS);
        Queue {
            errors_tx,
            errors_rx,
            error_bytes: AtomicUsize::new(0),
            error_max_bytes,
            error_overflow: (error_max_bytes != usize::MAX).then_some(error_overflow),
            normal_tx,
            normal_rx,
            wake_tx,
            wake_rx,
            samples_tx,
            samples_rx,
            spare_tx,
            spare_rx,
            in_flight: AtomicUsize::new(0),
            in_flight_bytes: AtomicUsize::new(0),
            capacity,
            max_bytes,
            // A chunk never exceeds the capacity, so a tiny capacity still
            // admits records one by one instead of refusing every chunk.
            chunk: capacity.clamp(1, MAX_CHUNK),
            overflow: config.overflow,
            space: Mutex::new(()),
            space_freed: Condvar::new(),
            open: AtomicBool::new(true),
            counters: Counters::default(),
            buffers: Mutex::new(Vec::new()),
            new_threads: Mutex::new(Vec::new()),
        }
    }

    /// Enqueues a finished record (an event of `tracing`). Never blocks
    /// unless `overflow = "block"` and the normal lane is full; never drops
    /// an error or panic record.
    #[cfg(any(feature = "tracing", test))]
    #[inline]
    pub(crate) fn push(&'static self, record: Record) {
        self.push_with(None, record.status.is_failure(), move |thread_id| Record {
            thread_id,
            ..record
        });
    }

    /// [`push`](Self::push) for a record that `make` builds from its thread
    /// id once the queue knows where it goes: a span's end builds it
    /// straight into its slot of the thread's buffer, with no copy between.
    /// `failure` is whether it will have an error or panic status. `local`
    /// is this thread's, for a caller that has it; `None` looks it up.
    #[inline(always)]
    pub(crate) fn push_with(
        &'static self,
        local: Option<&Local>,
        failure: bool,
        make: impl FnOnce(u64) -> Record,
    ) {
        if let Some(local) = local {
            return self.push_in(local, failure, make);
        }
        let mut make = Some(make);
        crate::local::with(|local| self.push_in(local, failure, make.take().expect("taken once")));
        if let Some(make) = make {
            // This thread's locals are being torn down: the record goes on
            // its own, under thread id 0.
            self.push_orphan(make(0));
        }
    }

    #[inline(always)]
    fn push_in(&'static self, local: &Local, failure: bool, make: impl FnOnce(u64) -> Record) {
        if !self.open.load(Ordering::Relaxed) {
            // The writer has stopped: nothing can store this record.
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut mine = self.buffer_in(local);
        if failure {
            let thread_id = mine.thread_id;
            drop(mine);
            self.push_error(make(thread_id));
            return;
        }
        let thread_id = mine.thread_id;
        match mine.buffer.push_with(|| make(thread_id)) {
            Ok(filled) if filled >= self.chunk => self.hand_over_full(&mut mine.buffer),
            Ok(_) => {}
            Err(record) => self.push_into_new_chunk(&mut mine.buffer, record),
        }
    }

    /// A record from a thread whose locals are gone: no buffer to fill.
    #[cold]
    fn push_orphan(&self, record: Record) {
        if !self.open.load(Ordering::Relaxed) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        } else if record.status.is_failure() {
            self.push_error(record);
        } else {
            let mut single = vec![record];
            self.hand_over(&mut single);
            if !single.is_empty() {
                // `block`, and the lane is full: a dying thread cannot wait.
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands this thread's full chunk over, waiting for room in `block`
    /// mode.
    #[cold]
    fn hand_over_full(&self, buffer: &mut OwnedBuffer) {
        // A fresh chunk may be allocated: not the span's memory.
        let left = crate::alloc::excluded(|| {
            buffer.replace(self.chunk, |records| {
                self.hand_over(records);
                records.len()
            })
        });
        if left >= self.chunk {
            self.block_until_room(buffer);
        }
    }

    /// The chunk had no room (a panic interrupted a hand-over): a new one,
    /// then the record.
    #[cold]
    fn push_into_new_chunk(&self, buffer: &mut OwnedBuffer, record: Record) {
        self.hand_over_full(buffer);
        if buffer.push_with(|| record).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// This thread's buffer in this queue, and its thread id, registering
    /// the thread on first use. Borrowed while a record is pushed and its
    /// chunk handed over.
    #[inline(always)]
    fn buffer_in<'a>(&'static self, local: &'a Local) -> RefMut<'a, LocalBuffer> {
        let owner = self as *const Queue as usize;
        let mut slot = local.buffer.borrow_mut();
        if !matches!(&*slot, Some(mine) if mine.owner == owner) {
            // The monitor's memory, not the enclosing span's.
            *slot = Some(crate::alloc::excluded(|| self.register_thread(owner)));
        }
        RefMut::map(slot, |slot| slot.as_mut().expect("registered above"))
    }

    /// Hands a resource sample to the writer.
    pub(crate) fn push_sample(&self, sample: crate::resources::Sample) {
        if self.open.load(Ordering::Relaxed) && self.samples_tx.send(sample).is_ok() {
            self.wake();
        }
    }

    fn push_error(&self, record: Record) {
        self.counters.enqueued.fetch_add(1, Ordering::Relaxed);
        let weight = record.weight();
        if let Some(overflow) = &self.error_overflow {
            let held = self.error_bytes.load(Ordering::Relaxed);
            // An empty lane takes one record however heavy, as the normal
            // lane does.
            if held > 0 && held.saturating_add(weight) > self.error_max_bytes {
                // The spill line's memory is the monitor's, not the span's.
                crate::alloc::excluded(|| overflow.take(record));
                return;
            }
        }
        self.error_bytes.fetch_add(weight, Ordering::Relaxed);
        if self.errors_tx.send(record).is_err() {
            // Unreachable while the queue is alive: it owns the receiver too.
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.wake();
    }

    #[cold]
    fn register_thread(&self, owner: usize) -> LocalBuffer {
        let name = current_thread_name();
        let id = (crate::id::random_u64() >> 1).max(1);
        let (owned, shared) = OwnedBuffer::new(Vec::with_capacity(self.chunk));
        lock(&self.new_threads).push(NewThread { id, name });
        lock(&self.buffers).push(shared);
        LocalBuffer {
            owner,
            buffer: owned,
            thread_id: id,
        }
    }

    fn fresh_chunk(&self) -> Vec<Record> {
        self.spare_rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.chunk))
    }

    /// Gives an emptied chunk back for reuse.
    pub(crate) fn recycle(&self, mut chunk: Vec<Record>) {
        chunk.clear();
        let _ = self.spare_tx.try_send(chunk);
    }

    /// Moves a thread's full buffer into the normal lane, as far as the
    /// capacity allows. It runs under the buffer's lock
    /// ([`OwnedBuffer::replace`]), so a sweep sees each record either still
    /// in the buffer or already in the lane: `flush` misses none. What does not fit is dropped and counted, or with
    /// `overflow = "block"` stays in the buffer for the caller to wait on.
    fn hand_over(&self, records: &mut Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let counted = self.reserve(records.len());
        let (granted, bytes) = self.reserve_bytes(&records[..counted]);
        if granted < counted {
            self.in_flight
                .fetch_sub(counted - granted, Ordering::Relaxed);
        }
        if granted == records.len() {
            let full = std::mem::replace(records, self.fresh_chunk());
            self.send_chunk(Chunk {
                records: full,
                bytes,
            });
            return;
        }
        if granted > 0 {
            let rest = records.split_off(granted);
            let head = std::mem::replace(records, rest);
            self.send_chunk(Chunk {
                records: head,
                bytes,
            });
        }
        if self.overflow == Overflow::Drop || !self.open.load(Ordering::Acquire) {
            self.counters
                .dropped
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            records.clear();
        }
    }

    /// `overflow = "block"` with a full lane: waits until the writer has
    /// taken records from the lane or swept this buffer.
    #[cold]
    fn block_until_room(&self, buffer: &mut OwnedBuffer) {
        let mut next_weight = 0;
        loop {
            self.wait_for_space(next_weight);
            let (left, weight) = crate::alloc::excluded(|| {
                buffer.replace(self.chunk, |records| {
                    // A sweep may have taken some meanwhile.
                    if records.len() >= self.chunk {
                        self.hand_over(records);
                    }
                    (records.len(), records.first().map_or(0, Record::weight))
                })
            });
            if left < self.chunk {
                return;
            }
            next_weight = weight;
        }
    }

    /// Reserves room for up to `wanted` records; returns how many fit.
    fn reserve(&self, wanted: usize) -> usize {
        let mut current = self.in_flight.load(Ordering::Relaxed);
        loop {
            let granted = wanted.min(self.capacity.saturating_sub(current));
            if granted == 0 {
                return 0;
            }
            match self.in_flight.compare_exchange_weak(
                current,
                current + granted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return granted,
                Err(actual) => current = actual,
            }
        }
    }

    /// Reserves memory for the longest prefix of `records` that fits
    /// `max_bytes`; returns its length and weight.
    fn reserve_bytes(&self, records: &[Record]) -> (usize, usize) {
        if self.max_bytes == usize::MAX {
            let bytes = records.iter().map(Record::weight).sum();
            self.in_flight_bytes.fetch_add(bytes, Ordering::Relaxed);
            return (records.len(), bytes);
        }
        let mut current = self.in_flight_bytes.load(Ordering::Relaxed);
        loop {
            let room = self.max_bytes.saturating_sub(current);
            let (mut n, mut bytes) = (0, 0);
            for record in records {
                let weight = record.weight();
                if bytes + weight > room {
                    break;
                }
                bytes += weight;
                n += 1;
            }
            if n == 0 {
                match records.first() {
                    // An empty lane takes one record however heavy: a
                    // record over `max_bytes` must not wait for room that
                    // never comes.
                    Some(first) if current == 0 => (n, bytes) = (1, first.weight()),
                    _ => return (0, 0),
                }
            }
            match self.in_flight_bytes.compare_exchange_weak(
                current,
                current + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (n, bytes),
                Err(actual) => current = actual,
            }
        }
    }

    /// Waits while the lane has no room for one more record weighing
    /// `weight` (an empty lane always has).
    fn wait_for_space(&self, weight: usize) {
        let guard = lock(&self.space);
        let bytes = self.in_flight_bytes.load(Ordering::Relaxed);
        if (self.in_flight.load(Ordering::Relaxed) >= self.capacity
            || (bytes > 0 && bytes.saturating_add(weight) > self.max_bytes))
            && self.open.load(Ordering::Acquire)
        {
            // The timeout only bounds how late a stopped writer is noticed.
            let _ = self
                .space_freed
                .wait_timeout(guard, Duration::from_millis(10));
        }
    }

    fn send_chunk(&self, chunk: Chunk) {
        let n = chunk.records.len() as u64;
        self.counters.enqueued.fetch_add(n, Ordering::Relaxed);
        if let Err(lost) = self.normal_tx.send(chunk) {
            self.in_flight
                .fetch_sub(lost.0.records.len(), Ordering::Relaxed);
            self.in_flight_bytes
                .fetch_sub(lost.0.bytes, Ordering::Relaxed);
            self.counters.dropped.fetch_add(n, Ordering::Relaxed);
        }
        self.wake();
    }

    fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// The oldest error record, if any, for the writer.
    pub(crate) fn take_error(&self) -> Option<Record> {
        let record = self.errors_rx.try_recv().ok()?;
        self.error_bytes
            .fetch_sub(record.weight(), Ordering::Relaxed);
        Some(record)
    }

    /// Error records in the lane.
    pub(crate) fn errors_waiting(&self) -> usize {
        self.errors_rx.len()
    }

    /// The writer took a chunk out of the normal lane.
    pub(crate) fn taken(&self, chunk: &Chunk) {
        self.in_flight
            .fetch_sub(chunk.records.len(), Ordering::Relaxed);
        self.in_flight_bytes
            .fetch_sub(chunk.bytes, Ordering::Relaxed);
        if self.overflow == Overflow::Block {
            let _guard = lock(&self.space);
            self.space_freed.notify_all();
        }
    }

    /// Records in the normal lane and the error lane, for `monitor_stats`.
    pub(crate) fn depth(&self) -> u64 {
        (self.in_flight.load(Ordering::Relaxed) + self.errors_rx.len()) as u64
    }

    /// Moves every thread's buffered records into `into`, and forgets the
    /// buffers of threads that have exited once they are empty.
    pub(crate) fn sweep(&self, into: &mut Vec<Record>) {
        let mut swept = 0;
        lock(&self.buffers).retain_mut(|buffer| {
            // Gone before this sweep (only the registry holds it, and the
            // thread's last pushes are visible): this sweep empties it for
            // good. A thread still there may push after the sweep, without
            // a lock: its buffer waits for the next sweep.
            let gone = Arc::get_mut(buffer).is_some();
            swept += buffer.sweep(into);
            !gone
        });
        self.counters
            .enqueued
            .fetch_add(swept as u64, Ordering::Relaxed);
    }

    /// Threads registered since the last call.
    pub(crate) fn take_new_threads(&self) -> Vec<NewThread> {
        std::mem::take(&mut *lock(&self.new_threads))
    }

    /// The writer is stopping: producers in `block` mode stop waiting, and
    /// later records are counted as dropped.
    pub(crate) fn close(&self) {
        self.open.store(false, Ordering::Release);
        let _guard = lock(&self.space);
        self.space_freed.notify_all();
    }

    /// Frees what the queue holds once its writer is gone: the leaked queue
    /// must not keep megabytes of buffers alive.
    pub(crate) fn release(&self) {
        self.close();
        while self.spare_rx.try_recv().is_ok() {}
        while self.errors_rx.try_recv().is_ok() {}
        while self.normal_rx.try_recv().is_ok() {}
        while self.samples_rx.try_recv().is_ok() {}
        // A live thread's chunk is freed when the thread ends (it may be
        // pushing now); its records go now.
        let mut records = Vec::new();
        for buffer in lock(&self.buffers).drain(..) {
            buffer.sweep(&mut records);
            records.clear();
        }
        lock(&self.new_threads).clear();
    }
}

/// The name a thread is stored under: its name, else its id.
pub(crate) fn current_thread_name() -> String {
    let thread = std::thread::current();
    match thread.name() {
        Some(name) => name.to_owned(),
        None => format!("{:?}", thread.id()),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoSpill;

    impl ErrorOverflow for NoSpill {
        fn take(&self, _: Record) {}
    }

    /// Threads that push and end while the writer sweeps: every record is
    /// swept or handed over, none freed with its thread's buffer.
    #[test]
    fn records_of_threads_that_end_during_sweeps_are_all_taken() {
        let queue: &'static Queue = Box::leak(Box::new(Queue::new(
            &crate::config::QueueConfig::default(),
            Arc::new(NoSpill),
        )));
        let stop = Arc::new(AtomicBool::new(false));
        let sweeper = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut swept = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    queue.sweep(&mut swept);
                }
                swept.len()
            })
        };
        let (threads, per_thread) = (300u64, 1000u64);
        for t in 0..threads {
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    queue.push(Record::for_tests(t * per_thread + i + 1));
                }
            })
            .join()
            .unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let mut taken = sweeper.join().unwrap();
        let mut last = Vec::new();
        queue.sweep(&mut last);
        taken += last.len();
        let handed: usize = queue.normal_rx.try_iter().map(|c| c.records.len()).sum();
        assert_eq!(taken + handed, (threads * per_thread) as usize);
        assert!(
            lock(&queue.buffers).is_empty(),
            "ended threads' buffers forgotten"
        );
    }
}
