//! Wall-clock time for spans: a TSC read, scaled, anchored to the Unix epoch.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
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
    /// Every move so far (the last [`MOVES_KEPT`]), in order: spans carry
    /// raw readings that the writer converts later, each as the clock read
    /// when it was taken.
    moves: Mutex<VecDeque<Move>>,
    /// The reading at the last move (0 before any): a later reading
    /// converts with `unix_ns` and no lock.
    last_move_raw: AtomicU64,
}

/// A move of the clock: readings before `at_raw` had `unix_before` as
/// their `unix_ns`.
#[derive(Clone, Copy)]
struct Move {
    at_raw: u64,
    unix_before: u64,
}

/// Moves remembered; a reading older than all of them converts with the
/// offset from before the oldest kept (only a test that moves its clock
/// thousands of times while spans are queued could see it).
const MOVES_KEPT: usize = 4096;

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
        DIRECT_TSC.store(
            quanta_may_read_the_tsc() && reads_the_tsc(&clock),
            Ordering::Relaxed,
        );
        clock
    })
}

/// Set once `clock` was seen reading the CPU's time-stamp counter itself,
/// so [`raw_now`] reads it inline rather than through quanta's dispatch
/// (a call and a match, about a third of a span's clock cost).
#[cfg(target_arch = "x86_64")]
static DIRECT_TSC: AtomicBool = AtomicBool::new(false);

/// quanta's own test for using the TSC (an invariant TSC and `rdtscp`), so
/// that `rdtsc` runs here only where quanta runs it too: where it does not,
/// the instruction may be trapped (`PR_SET_TSC`, some sandboxes).
#[cfg(target_arch = "x86_64")]
fn quanta_may_read_the_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    // A leaf beyond the highest extended one is not read.
    __cpuid(0x8000_0000).eax >= 0x8000_0007
        && __cpuid(0x8000_0007).edx & (1 << 8) != 0
        && __cpuid(0x8000_0001).edx & (1 << 27) != 0
}

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

/// The system clock in Unix ns (0 before 1970), for what is not a span's
/// time (health, the OTLP sender, bookkeeping rows).
pub(crate) fn system_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Clock {
    /// A clock that follows the system's wall clock.
    pub fn system() -> Clock {
        let raw = tsc().raw();
        Clock {
            inner: Arc::new(Anchor::new(raw, system_unix_ns(), true)),
        }
    }

    /// A clock that reads `unix_ns` now and runs at real speed from there.
    pub fn starting_at(unix_ns: u64) -> Clock {
        let raw = tsc().raw();
        Clock {
            inner: Arc::new(Anchor::new(raw, unix_ns, false)),
        }
    }

    /// Moves the clock so that it reads `unix_ns` now. Every copy of this
    /// clock (the one a running `init_with` holds too) moves with it. Spans
    /// keep the times they were read at: one that ended before the move
    /// is stored as it was, one that runs across it lasts the move longer.
    pub fn set(&self, unix_ns: u64) {
        self.inner.move_by(|now_raw, _| {
            let elapsed = tsc().delta_as_nanos(self.inner.raw, now_raw);
            unix_ns.saturating_sub(elapsed)
        });
    }

    /// Moves the clock forward by `by`, as [`set`](Self::set) does.
    pub fn advance(&self, by: Duration) {
        self.inner
            .move_by(|_, before| before.saturating_add(by.as_nanos() as u64));
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

    /// Converts a raw reading taken by [`raw_now`] into Unix nanoseconds, as
    /// the clock read when it was taken: a reading from before a
    /// [`set`](Self::set) or [`advance`](Self::advance) converts as it
    /// would have then (one taken while a move is being made, with either
    /// offset). The writer converts spans' readings this way, so that a
    /// span costs two TSC reads and no arithmetic.
    #[inline]
    pub(crate) fn unix_of(&self, raw: u64) -> u64 {
        let anchor = &*self.inner;
        // `unix_ns` first: a move stores it after `last_move_raw`, so a new
        // `unix_ns` comes with its move's reading.
        let current = anchor.unix_ns.load(Ordering::Acquire);
        let unix_ns = if raw >= anchor.last_move_raw.load(Ordering::Acquire) {
            current
        } else {
            anchor.unix_ns_at(raw)
        };
        if raw >= anchor.raw {
            unix_ns.saturating_add(tsc().delta_as_nanos(anchor.raw, raw))
        } else {
            unix_ns.saturating_sub(tsc().delta_as_nanos(raw, anchor.raw))
        }
    }
}

impl Anchor {
    fn new(raw: u64, unix_ns: u64, follows_system: bool) -> Anchor {
        Anchor {
            raw,
            unix_ns: AtomicU64::new(unix_ns),
            follows_system,
            moves: Mutex::new(VecDeque::new()),
            last_move_raw: AtomicU64::new(0),
        }
    }

    /// Sets `unix_ns` to `to(raw reading now, unix_ns before)`, and keeps
    /// the move for readings taken before it. Moves are made under the
    /// lock, so they are in order of their readings.
    fn move_by(&self, to: impl FnOnce(u64, u64) -> u64) {
        let mut moves = self.moves.lock().unwrap_or_else(PoisonError::into_inner);
        let at_raw = raw_now();
        let unix_before = self.unix_ns.load(Ordering::Relaxed);
        if moves.len() == MOVES_KEPT {
            moves.pop_front();
        }
        moves.push_back(Move {
            at_raw,
            unix_before,
        });
        self.last_move_raw.store(at_raw, Ordering::Release);
        self.unix_ns
            .store(to(at_raw, unix_before), Ordering::Release);
    }

    /// `unix_ns` as it was when `raw` was read.
    #[cold]
    fn unix_ns_at(&self, raw: u64) -> u64 {
        let moves = self.moves.lock().unwrap_or_else(PoisonError::into_inner);
        let later = moves.partition_point(|m| m.at_raw <= raw);
        match moves.get(later) {
            Some(next_move) => next_move.unix_before,
            None => self.unix_ns.load(Ordering::Relaxed),
        }
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

    #[test]
    fn a_reading_converts_as_the_clock_read_when_it_was_taken() {
        const HOUR: u64 = 3_600_000_000_000;
        let clock = Clock::starting_at(100 * HOUR);
        let before = raw_now();
        clock.advance(Duration::from_secs(3600));
        let between = raw_now();
        clock.set(500 * HOUR);
        let after = raw_now();
        // Each within a minute of what the clock read then, whatever order
        // they are converted in.
        let near = |got: u64, want: u64| got.abs_diff(want) < 60_000_000_000;
        assert!(near(clock.unix_of(after), 500 * HOUR));
        assert!(near(clock.unix_of(before), 100 * HOUR));
        assert!(near(clock.unix_of(between), 101 * HOUR));
        assert!(near(clock.now_ns(), 500 * HOUR));
        // A span across the move lasts as long as the move says.
        let moved = clock.unix_of(after) - clock.unix_of(between);
        assert!(moved > 398 * HOUR && moved < 400 * HOUR, "{moved}");
    }
}
