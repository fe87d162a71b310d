//! [`Guard::health`](crate::Guard::health): the writer's state for the
//! program's own probes (`/healthz`).
//!
//! The writer publishes into a [`HealthCell`] when its state changes and
//! after each commit; `health()` reads it back with a handful of atomic
//! loads, no lock and one clock read. Spans never touch it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::queue::Queue;
use crate::runtime::Runtime;

/// What the writer is doing, as [`Guard::health`](crate::Guard::health)
/// sees it. In JSON it is flattened into [`Health`]: `"state": "ok"`, or
/// `"state": "spilling", "since_ns": ...`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{Config, WriterState};
///
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// match guard.health().state {
///     WriterState::Ok => {}
///     WriterState::Spilling { since_ns } => eprintln!("database refusing writes since {since_ns}"),
///     other => eprintln!("records are not being stored: {other:?}"),
/// }
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum WriterState {
    /// The database takes writes (or nothing has been refused yet).
    Ok,
    /// The database refuses writes (locked past `busy_timeout_ms`, full,
    /// read-only, ...): batches go to the spill file beside it, to be
    /// replayed once it takes writes again. Nothing is lost so far.
    Spilling {
        /// When the database first refused (Unix ns, the system clock, to
        /// the microsecond).
        since_ns: u64,
    },
    /// Records are being lost, or nothing records any more: see
    /// [`FailReason`].
    Failed {
        /// When the database first refused, or when the writer stopped
        /// (Unix ns, the system clock, to the microsecond).
        since_ns: u64,
        /// What is failing.
        reason: FailReason,
    },
    /// Nothing is recorded: `enabled = false`, a guard returned by
    /// [`init_or_disabled`](crate::init_or_disabled) on an error, or a
    /// process forked from the one that called `init` (its writer stayed in
    /// the parent). The other figures are zero.
    Disabled,
}

/// Why the writer is [`WriterState::Failed`]; `"reason"` in JSON.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{Config, FailReason, WriterState};
///
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// let health = guard.health();
/// if let WriterState::Failed { reason: FailReason::SpillFailed, .. } = health.state {
///     eprintln!("records are being lost: {} so far", health.failed);
/// }
/// assert_eq!(serde_json::to_string(&FailReason::SpillFull)?, r#""spill_full""#);
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The database refuses writes and so does the spill file: records are
    /// lost, counted in [`Health::failed`].
    SpillFailed,
    /// The database refuses writes and the spill file holds
    /// `spill_max_bytes`: only error records are kept, the others are
    /// dropped, counted in [`Health::dropped`].
    SpillFull,
    /// The writer thread has stopped: it panicked again and again, or (for
    /// a [`HealthProbe`] that outlived its guard) the guard was dropped. No
    /// span is recorded any more.
    WriterStopped,
}

/// The writer's health, from [`Guard::health`](crate::Guard::health):
/// cheap enough for every request of a `/healthz` (a few atomic loads and
/// one clock read), and `Serialize` so a handler can return it as JSON.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::Config;
///
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// guard.flush();
/// let health = guard.health();
/// assert!(health.is_ok());
/// assert_eq!((health.queue_depth, health.dropped, health.failed), (0, 0, 0));
/// assert!(health.last_commit_age().is_some()); // the flush committed
/// let json = serde_json::to_string(&health)?;
/// assert!(json.starts_with(r#"{"state":"ok","queue_depth":0,"#), "{json}");
/// # Ok(()) }
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// What the writer is doing.
    #[serde(flatten)]
    pub state: WriterState,
    /// Records handed to the writer and not taken yet (both lanes), as
    /// `monitor_stats.queue_depth` counts them. A thread's latest normal
    /// records (fewer than a chunk: 1,024, or `queue.capacity` if smaller)
    /// wait in its own buffer until it fills or the writer sweeps it (every
    /// `flush_interval_ms`, and on `flush`), and are not counted until
    /// then.
    pub queue_depth: u64,
    /// Records dropped since `init`: the normal lane full with `overflow =
    /// "drop"`, the spill file full, spans ended after the writer stopped.
    /// The counter `monitor_stats.dropped` is made from: once a flush has
    /// stored its stats row, it equals the sum of that column over the
    /// rows this guard's writer stored (a second `init` in the process
    /// starts again from 0; while the database refuses writes, the rows
    /// wait in the spill file).
    pub dropped: u64,
    /// Records lost since `init` although taken from the queue: refused by
    /// both the database and the spill file, or a row the database
    /// rejected. Equals the sum of `monitor_stats.failed` over the rows
    /// this guard's writer stored, once a flush has stored them, with one
    /// lag: error records past `queue.error_max_bytes` that their own thread could
    /// not spill are counted at the writer's next stats row.
    pub failed: u64,
    /// When the writer last committed a transaction to the database (a
    /// batch, a stats row, a replayed chunk), Unix ns, the system clock;
    /// `None` before its first. An idle writer commits nothing: a growing
    /// age means trouble only with records waiting (`queue_depth > 0`).
    pub last_commit_ns: Option<u64>,
    /// How long ago that was, when `health()` was called.
    pub last_commit_age_ns: Option<u64>,
}

impl Health {
    /// Whether the writer stores what the program records:
    /// [`WriterState::Ok`]. `false` for [`WriterState::Disabled`] too; a
    /// probe that should pass while monitoring is off on purpose checks the
    /// state itself.
    ///
    /// ```
    /// let guard = monitor_runtime::init_with_or_disabled(
    ///     monitor_runtime::Config::default().db_path("/nonexistent-dir/app.db"),
    /// );
    /// assert!(!guard.health().is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        self.state == WriterState::Ok
    }

    /// [`last_commit_age_ns`](Self::last_commit_age_ns) as a `Duration`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let dir = tempfile::tempdir()?;
    /// let config = monitor_runtime::Config::default().db_path(dir.path().join("m.db"));
    /// let guard = monitor_runtime::init_with(config)?;
    /// guard.flush();
    /// assert!(guard.health().last_commit_age().unwrap() < Duration::from_secs(60));
    /// # Ok(()) }
    /// ```
    pub fn last_commit_age(&self) -> Option<Duration> {
        self.last_commit_age_ns.map(Duration::from_nanos)
    }

    /// What a guard that records nothing says.
    pub(crate) fn disabled() -> Health {
        Health {
            state: WriterState::Disabled,
            queue_depth: 0,
            dropped: 0,
            failed: 0,
            last_commit_ns: None,
            last_commit_age_ns: None,
        }
    }
}

/// [`Guard::health`](crate::Guard::health) without the guard: a handle
/// that a `/healthz` handler's state can own (`Clone`, `Send`, `Sync`,
/// `'static`), and that answers while the guard is borrowed (by a
/// [`WriterHold`](crate::WriterHold), say). From
/// [`Guard::health_probe`](crate::Guard::health_probe).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::Config;
///
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// let probe = guard.health_probe();
/// std::thread::spawn(move || assert!(probe.health().is_ok())).join().unwrap();
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct HealthProbe {
    /// `None` for a guard that records nothing.
    writer: Option<(&'static Runtime, Arc<HealthCell>)>,
}

impl HealthProbe {
    pub(crate) fn new(rt: &'static Runtime, cell: Arc<HealthCell>) -> HealthProbe {
        HealthProbe {
            writer: Some((rt, cell)),
        }
    }

    pub(crate) fn disabled() -> HealthProbe {
        HealthProbe { writer: None }
    }

    /// The writer's health now: see [`Guard::health`](crate::Guard::health).
    pub fn health(&self) -> Health {
        match &self.writer {
            // Not `fork::in_child`: it asks the kernel for the pid.
            Some((rt, cell)) if !crate::runtime::forked() => cell.read(&rt.queue),
            _ => Health::disabled(),
        }
    }
}

impl std::fmt::Debug for HealthProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthProbe")
            .field("enabled", &self.writer.is_some())
            .finish()
    }
}

/// The state codes of [`HealthCell::state`].
const OK: u8 = 0;
const SPILLING: u8 = 1;
const SPILL_FAILED: u8 = 2;
const SPILL_FULL: u8 = 3;
const WRITER_STOPPED: u8 = 4;

/// What the writer publishes for [`Guard::health`](crate::Guard::health).
/// Written by the writer thread only; read by the guard.
#[derive(Default)]
pub(crate) struct HealthCell {
    /// The state code in the low 3 bits and its `since` in microseconds
    /// above them, in one word: a reader cannot pair one state with another
    /// state's time (2^61 µs is 73,000 years).
    state: AtomicU64,
    /// 0 before the first commit.
    last_commit_ns: AtomicU64,
    /// Records lost after the queue (`monitor_stats.failed`), since `init`.
    failed: AtomicU64,
}

impl HealthCell {
    /// The writer is in `state` now (not [`WriterState::Disabled`], which
    /// only a guard without a writer says).
    pub(crate) fn set_state(&self, state: WriterState) {
        let (code, since_ns) = match state {
            WriterState::Ok | WriterState::Disabled => (OK, 0),
            WriterState::Spilling { since_ns } => (SPILLING, since_ns),
            WriterState::Failed { since_ns, reason } => (
                match reason {
                    FailReason::SpillFailed => SPILL_FAILED,
                    FailReason::SpillFull => SPILL_FULL,
                    FailReason::WriterStopped => WRITER_STOPPED,
                },
                since_ns,
            ),
        };
        self.state
            .store((since_ns / 1_000) << 3 | u64::from(code), Ordering::Relaxed);
    }

    /// The writer committed a transaction just now.
    pub(crate) fn committed(&self) {
        self.last_commit_ns
            .store(crate::clock::system_unix_ns(), Ordering::Relaxed);
    }

    /// `n` more records lost after the queue.
    pub(crate) fn count_failed(&self, n: u64) {
        self.failed.fetch_add(n, Ordering::Relaxed);
    }

    /// The health of the writer feeding on `queue`.
    pub(crate) fn read(&self, queue: &Queue) -> Health {
        let word = self.state.load(Ordering::Relaxed);
        let (code, since_ns) = ((word & 0b111) as u8, (word >> 3) * 1_000);
        let failed = |reason| WriterState::Failed { since_ns, reason };
        let state = match code {
            SPILLING => WriterState::Spilling { since_ns },
            SPILL_FAILED => failed(FailReason::SpillFailed),
            SPILL_FULL => failed(FailReason::SpillFull),
            WRITER_STOPPED => failed(FailReason::WriterStopped),
            _ => WriterState::Ok,
        };
        let last_commit_ns = match self.last_commit_ns.load(Ordering::Relaxed) {
            0 => None,
            ns => Some(ns),
        };
        Health {
            state,
            queue_depth: queue.depth(),
            dropped: queue.counters.dropped.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            last_commit_ns,
            // A clock stepped back since the commit says 0, not a panic.
            last_commit_age_ns: last_commit_ns
                .map(|at| crate::clock::system_unix_ns().saturating_sub(at)),
        }
    }
}
