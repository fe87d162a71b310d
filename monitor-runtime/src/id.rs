//! Span ids: a random per-thread prefix and a counter, no lock, no syscall.
//!
//! An id is `prefix << 24 | counter`: 39 random bits name a segment of 2^24
//! ids that one thread hands out in order (so a partition's primary key grows
//! at a few points, which keeps inserts fast), and a new random segment is
//! drawn when one runs out. Ids are positive `i64`s for SQLite. Two segments
//! collide with odds of about S² / 2^40 for S segments in one file: under one
//! in a million for a thousand threads.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

const COUNTER_BITS: u32 = 24;
const PREFIX_MASK: u64 = (1 << 39) - 1;

/// A 64-bit random number from the OS-seeded keys of `RandomState`: a fresh
/// `RandomState` has distinct keys each time, so no extra crate is needed.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

thread_local! {
    /// xorshift64* state for sampling decisions; 0 until seeded.
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A fast thread-local pseudo-random number, for sampling (not for ids).
#[inline]
pub(crate) fn fast_random() -> u64 {
    RNG.try_with(|rng| {
        let mut x = rng.get();
        if x == 0 {
            x = random_u64() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        rng.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    })
    .unwrap_or_else(|_| random_u64())
}

/// The next span id of this thread.
#[inline]
pub(crate) fn next_span_id() -> u64 {
    crate::local::with(|local| next_in(&local.ids))
        // During thread teardown: a fresh random id rather than none.
        .unwrap_or_else(|| (random_u64() >> 1).max(1))
}

/// The next id of the segment `next` (next id, end of the segment): a
/// thread's [`Local::ids`](crate::local::Local), for a caller that has it.
#[inline]
pub(crate) fn next_in(next: &Cell<(u64, u64)>) -> u64 {
    let (id, end) = next.get();
    if id < end {
        next.set((id + 1, end));
        id
    } else {
        let base = ((random_u64() & PREFIX_MASK).max(1)) << COUNTER_BITS;
        next.set((base + 1, base + (1 << COUNTER_BITS)));
        base
    }
}

/// Changes whenever this thread hands out a span id: a sequence compares it
/// around a poll to learn whether spans were opened in it.
#[inline]
pub(crate) fn issued_marker() -> u64 {
    crate::local::with(|local| local.ids.get().0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_positive_unique_and_grow_within_a_thread() {
        let mut seen = HashSet::new();
        let mut last = 0;
        for _ in 0..100_000 {
            let id = next_span_id();
            assert!(id > 0 && id <= i64::MAX as u64);
            assert!(seen.insert(id));
            if last >> COUNTER_BITS == id >> COUNTER_BITS {
                assert!(id > last);
            }
            last = id;
        }
    }

    #[test]
    fn threads_draw_distinct_segments() {
        let a = std::thread::spawn(next_span_id).join().unwrap();
        let b = std::thread::spawn(next_span_id).join().unwrap();
        assert_ne!(a >> COUNTER_BITS, b >> COUNTER_BITS);
    }
}
