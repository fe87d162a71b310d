//! Wall-clock time for spans: a TSC read, scaled, anchored to the Unix epoch.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time source of spans: Unix epoch nanoseconds (UTC) from the CPU's
/// time-stamp counter, about a dozen nanoseconds a read where the TSC is
/// invariant (quanta falls back to the OS monotonic clock elsewhere).
///
/// [`Clock::system`] follows the system clock; [`Clock::starting_at`] gives a
/// clock that runs at real speed from a chosen instant and can be moved with
/// [`Clock::set`] and [`Clock::advance`], so tests can cross hour boundaries
/// without waiting for them.
///
/// ```
/// use monitor_runtime::Clock;
/// use std::time::Duration;
///
/// let hour = 3_600_000_000_000u64;
/// let clock = Clock::starting_at(489_000 * hour - 1_000);
/// assert!(clock.now_ns() < 489_000 * hour + 1_000_000_000);
/// clock.advance(Duration::from_secs(10));
/// assert!(clock.now_ns() >= 489_000 * hour);
/// ```
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Anchor>,
}

struct Anchor {
    /// The raw TSC reading that `unix_ns` corresponds to.
    raw: u64,
    /// Unix time at `raw`; moved by `set`/`advance`.
    unix_ns: AtomicU64,
    /// Made by [`Clock::system`]: [`Clock::reanchor`] follows the system
    /// clock when it is stepped (NTP syncing after the program started).
    follows_system: bool,
}

/// How far a system clock's spans may drift from the system clock before
/// the writer's periodic check moves them back.
pub(crate) const REANCHOR_AFTER: Duration = Duration::from_millis(50);

/// One calibrated TSC clock per process: calibration takes milliseconds.
#[inline(always)]
fn tsc() -> &'static quanta::Clock {
    static TSC: OnceLock<quanta::Clock> = OnceLock::new();
    TSC.get_or_init(|| {
        let clock = quanta::Clock::new();
        #[cfg(target_arch = "x86_64")]
        DIRECT_TSC.store(reads_the_tsc(&clock), Ordering::Relaxed);
        clock
    })
}

/// Set once `clock` was seen reading the CPU's time-stamp counter itself,
/// so [`raw_now`] reads it inline rather than through quanta's dispatch
/// (a call and a match, about a third of a span's clock cost).
#[cfg(target_arch = "x86_64")]
static DIRECT_TSC: AtomicBool = AtomicBool::new(false);

/// Whether quanta's raw readings are the TSC's: each of a few lies between
/// two TSC reads taken around it. A fallback clock counts nanoseconds on
/// another origin and scale, and falls outside.
#[cfg(target_arch = "x86_64")]
fn reads_the_tsc(clock: &quanta::Clock) -> bool {
    use std::arch::x86_64::_rdtsc;
    (0..3).all(|_| {
        // SAFETY: `rdtsc` has no preconditions on x86_64.
        let before = unsafe { _rdtsc() };
        let raw = clock.raw();
        // SAFETY: as above.
        let after = unsafe { _rdtsc() };
        before <= raw && raw <= after
    })
}

fn system_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Clock {
    /// A clock that follows the system's wall clock.
    pub fn system() -> Clock {
        let raw = tsc().raw();
        Clock {
            inner: Arc::new(Anchor {
                raw,
                unix_ns: AtomicU64::new(system_unix_ns()),
                follows_system: true,
            }),
        }
    }

    /// A clock that reads `unix_ns` now and runs at real speed from there.
    pub fn starting_at(unix_ns: u64) -> Clock {
        let raw = tsc().raw();
        Clock {
            inner: Arc::new(Anchor {
                raw,
                unix_ns: AtomicU64::new(unix_ns),
                follows_system: false,
            }),
        }
    }

    /// Moves the clock so that it reads `unix_ns` now. Every copy of this
    /// clock (the one a running `init_with` holds too) moves with it.
    pub fn set(&self, unix_ns: u64) {
        let elapsed = tsc().delta_as_nanos(self.inner.raw, tsc().raw());
        self.inner
            .unix_ns
            .store(unix_ns.saturating_sub(elapsed), Ordering::Relaxed);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.inner
            .unix_ns
            .fetch_add(by.as_nanos() as u64, Ordering::Relaxed);
    }

    /// For a [`Clock::system`] clock: when span time and the system clock
    /// differ by more than [`REANCHOR_AFTER`] (the system clock was stepped,
    /// say by NTP after the program started), takes the system clock's
    /// time from now on. The writer calls it every stats period (10 s), so
    /// span times are off by at most that much for at most that long; a
    /// span that runs across the step has its duration changed by it.
    /// Returns whether it moved.
    pub(crate) fn reanchor(&self) -> bool {
        if !self.inner.follows_system {
            return false;
        }
        let (span_time, system) = (self.now_ns(), system_unix_ns());
        if span_time.abs_diff(system) <= REANCHOR_AFTER.as_nanos() as u64 {
            return false;
        }
        self.set(system);
        true
    }

    /// The current time in Unix epoch nanoseconds.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.unix_of(raw_now())
    }

    /// Converts a raw reading taken by [`raw_now`] into Unix nanoseconds.
    #[inline]
    pub(crate) fn unix_of(&self, raw: u64) -> u64 {
        self.inner.unix_ns.load(Ordering::Relaxed) + tsc().delta_as_nanos(self.inner.raw, raw)
    }
}

/// A raw TSC reading; only differences of readings mean anything.
#[inline(always)]
pub(crate) fn raw_now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if DIRECT_TSC.load(Ordering::Relaxed) {
        // SAFETY: `rdtsc` has no preconditions on x86_64; quanta was seen
        // reading this same counter, so its scaling applies.
        return unsafe { std::arch::x86_64::_rdtsc() };
    }
    tsc().raw()
}

/// CPU time this thread has used, in nanoseconds (`resources.thread_cpu`):
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, a system call; `NULL` where
/// there is no such clock.
pub(crate) fn thread_cpu_ns() -> u64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call to fill.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
        }
    }
    crate::record::NULL
}

/// Nanoseconds between two raw readings (0 if they run backwards).
#[inline]
pub(crate) fn raw_delta_ns(start: u64, end: u64) -> u64 {
    if end <= start {
        0
    } else {
        tsc().delta_as_nanos(start, end)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clock")
            .field("now_ns", &self.now_ns())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_clock_follows_a_stepped_system_clock() {
        let clock = Clock::system();
        assert!(!clock.reanchor(), "in step at first");
        // As if the system clock was an hour behind at init and NTP then
        // stepped it: span time is an hour off.
        clock.set(system_unix_ns() - 3_600_000_000_000);
        assert!(clock.reanchor());
        let off = clock.now_ns().abs_diff(system_unix_ns());
        assert!(off < REANCHOR_AFTER.as_nanos() as u64, "off by {off} ns");

        // A test clock keeps the time it was given.
        let fixed = Clock::starting_at(1_000);
        assert!(!fixed.reanchor());
        assert!(fixed.now_ns() < 60_000_000_000);
    }
}
