//! `init`, the global state the hot path reads, and the [`Guard`].

use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::capture::CaptureRules;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::health::{Health, HealthCell, HealthProbe};
use crate::queue::Queue;
use crate::resources::{LatestRss, SamplerThread, SysinfoSampler};
use crate::retention::{RetentionReport, RetentionThread};
use crate::writer::{self, Control};

/// What spans need at run time. One is leaked per `init` so the hot path
/// can hold a `&'static` with no reference count; its buffers are released
/// when the guard drops, so what stays behind is a few hundred bytes.
pub(crate) struct Runtime {
    pub(crate) clock: Clock,
    pub(crate) queue: Queue,
    /// `[capture]`: the length limit and the secret rules of captured text.
    pub(crate) capture: CaptureRules,
    /// Updated by the sampler thread; read at every span's end.
    pub(crate) latest_rss: LatestRss,
    /// `resources.thread_cpu`.
    pub(crate) thread_cpu: bool,
    /// `tracing` spans recording into this runtime and not closed yet:
    /// counted as dropped if still open when the guard drops.
    #[cfg(feature = "tracing")]
    pub(crate) open_tracing_spans: std::sync::atomic::AtomicU64,
}

/// The running runtime, or null: one acquire load on every span.
static ACTIVE: AtomicPtr<Runtime> = AtomicPtr::new(ptr::null_mut());

/// Whether a guard is alive (also a disabled one), so `init` twice fails.
static GUARD_ALIVE: Mutex<bool> = Mutex::new(false);

/// The capture rules in force: the running configuration's, else the
/// defaults.
#[inline]
pub(crate) fn capture_rules() -> &'static CaptureRules {
    static DEFAULT: CaptureRules = CaptureRules::DEFAULT;
    active().map_or(&DEFAULT, |rt| &rt.capture)
}

/// Whether this is a process forked from the one that called `init`, with
/// no syscall: for `Guard::health`, which a probe calls on every request.
pub(crate) fn forked() -> bool {
    fork::forked()
}

/// Stops recording for `rt` if it is still the active runtime.
pub(crate) fn deactivate(rt: &'static Runtime) {
    let _ = ACTIVE.compare_exchange(
        ptr::from_ref(rt).cast_mut(),
        ptr::null_mut(),
        Ordering::AcqRel,
        Ordering::Acquire,
    );
}

/// The runtime a span about to begin records into, if any. A span begun
/// in a forked child, where recording is off, is counted.
#[inline]
pub(crate) fn for_new_span() -> Option<&'static Runtime> {
    let rt = active();
    if rt.is_none() {
        fork::count_span();
    }
    rt
}

#[inline]
pub(crate) fn active() -> Option<&'static Runtime> {
    let rt = ACTIVE.load(Ordering::Acquire);
    // SAFETY: ACTIVE is either null or a pointer from `Box::leak` in
    // `init_with`; leaked boxes are never freed, so the reference is valid
    // for the rest of the process.
    unsafe { rt.as_ref() }
}

/// A process that ends without dropping the guard (`std::process::exit`, a
/// guard in a `static` or leaked) still commits what was queued: `init`
/// registers an `atexit` hook that flushes, waiting at most
/// `shutdown_timeout_ms`, so exit never hangs.
mod at_exit {
    use std::sync::{Mutex, Once};
    use std::time::Duration;

    use crossbeam_channel::Sender;

    use crate::writer::Control;

    /// The running writer's control channel and how long exit may wait.
    static WRITER: Mutex<Option<(Sender<Control>, Duration)>> = Mutex::new(None);

    pub(super) fn watch(control: Sender<Control>, timeout: Duration) {
        *WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((control, timeout));
        static REGISTER: Once = Once::new();
        REGISTER.call_once(|| {
            #[cfg(unix)]
            // SAFETY: registers a plain `extern "C" fn()` that catches its
            // own panics, as `atexit` expects.
            unsafe {
                libc::atexit(flush_at_exit);
            }
        });
    }

    /// The guard is being dropped: it flushes and stops the writer itself.
    pub(super) fn forget() {
        *WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    #[cfg(unix)]
    extern "C" fn flush_at_exit() {
        // A panic must not cross the C boundary; a lock held by a thread
        // that called `exit` is skipped rather than waited for.
        let _ = std::panic::catch_unwind(|| {
            if super::fork::in_child() {
                super::fork::report_child_spans();
                return;
            }
            let Ok(writer) = WRITER.try_lock() else {
                return;
            };
            let Some((control, timeout)) = writer.clone() else {
                return;
            };
            drop(writer);
            // `tracing` spans still open will never close now: counted.
            #[cfg(feature = "tracing")]
            if let Some(rt) = super::active() {
                rt.queue.counters.dropped.fetch_add(
                    crate::tracing::count_open_spans(rt),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            super::flush_within(&control, timeout);
        });
    }
}

/// Asks the writer for a flush and waits at most `timeout`: what the
/// database has not taken by three quarters of it goes to the spill file
/// in the last quarter (replayed by the next run), so a locked or slow
/// database does not make the process lose it at exit.
fn flush_within(control: &Sender<Control>, timeout: std::time::Duration) {
    if timeout.is_zero() {
        return;
    }
    let deadline = std::time::Instant::now() + timeout * 3 / 4;
    // An insert already waiting for another process's lock must not use
    // up the bound: it gives up at the deadline, and the rest is spilled.
    writer::stop_waiting_for_locks_at(deadline);
    let (ack, done) = crossbeam_channel::bounded(1);
    let flush = Control::Flush {
        ack,
        deadline: Some(deadline),
    };
    if control.send(flush).is_ok() {
        let _ = done.recv_timeout(timeout);
    }
}

/// The future [`Guard::shutdown`] returns.
mod shutdown {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll, Waker};
    use std::time::Instant;

    /// Set by the shutdown thread when it is done; wakes the waiting task.
    #[derive(Clone, Default)]
    pub(super) struct Done(Arc<Mutex<(bool, Option<Waker>)>>);

    impl Done {
        pub(super) fn set(&self) {
            let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            state.0 = true;
            if let Some(waker) = state.1.take() {
                waker.wake();
            }
        }
    }

    pub(super) struct Wait {
        pub(super) done: Done,
        pub(super) deadline: Instant,
        /// A thread will wake the task at the deadline.
        pub(super) timer: bool,
    }

    impl Future for Wait {
        type Output = bool;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
            let this = self.get_mut();
            let mut state = this.done.0.lock().unwrap_or_else(PoisonError::into_inner);
            if state.0 {
                return Poll::Ready(true);
            }
            let now = Instant::now();
            if now >= this.deadline {
                return Poll::Ready(false);
            }
            state.1 = Some(cx.waker().clone());
            drop(state);
            if !this.timer {
                // No runtime's timer is assumed: a thread sleeps until the
                // deadline, then wakes the task (the waker of its poll, or
                // the latest one the shutdown thread would use).
                this.timer = true;
                let (done, left) = (this.done.clone(), this.deadline - now);
                std::thread::spawn(move || {
                    std::thread::sleep(left);
                    let waker = done
                        .0
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .1
                        .take();
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                });
            }
            Poll::Pending
        }
    }
}

/// `fork()` without `exec`: the child has none of the parent's threads, so
/// recording is off there (its spans cost what spans cost without `init`,
/// and are counted), and its guard's `flush` and drop return at once. The
/// parent's recording goes on as before. When the child drops its guard or
/// exits, the count goes to the spill file for the parent's writer to store.
mod fork {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    use std::sync::Mutex;

    use super::ACTIVE;

    /// The process that called `init`; 0 before.
    static OWNER: AtomicU32 = AtomicU32::new(0);
    /// Set in a forked child: spans begun here are counted.
    static FORKED: AtomicBool = AtomicBool::new(false);
    static CHILD_SPANS: AtomicU64 = AtomicU64::new(0);
    /// Set in every child forked after `init` registered the handler, and
    /// cleared by an `init` in this process: [`in_child`] without the
    /// `getpid` syscall, for `Guard::health`.
    static CHILD: AtomicBool = AtomicBool::new(false);
    /// Where the count goes: the database and its file mode.
    static DB: Mutex<Option<(PathBuf, u32)>> = Mutex::new(None);

    /// A span begins while recording is off.
    #[inline]
    pub(super) fn count_span() {
        if FORKED.load(Ordering::Relaxed) {
            CHILD_SPANS.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands the child's count to the parent's writer, through the spill
    /// file (`monitor_stats.dropped` and a `fork_child` event). Little is
    /// waited for: a mutex a parent thread held at the fork is skipped, and
    /// the spill file's lock is waited for at most 100 ms.
    pub(super) fn report_child_spans() {
        let spans = CHILD_SPANS.swap(0, Ordering::Relaxed);
        if spans == 0 {
            return;
        }
        let Some((db, mode)) = DB.try_lock().ok().and_then(|db| db.clone()) else {
            return;
        };
        if let Err(e) = crate::writer::spill_fork_losses(&db, mode, spans) {
            // Not `eprintln!`: stderr's lock may have been held at the fork.
            let message = format!(
                "monitor: {spans} spans of this forked child were not recorded, and the count could not be stored: {e}\n"
            );
            // SAFETY: writes a live buffer to fd 2; a closed fd fails harmlessly.
            unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
        }
    }

    /// The guard is gone: a later fork is of a process that records
    /// nothing, and has nothing to count.
    pub(super) fn forget() {
        if let Ok(mut db) = DB.try_lock() {
            *db = None;
        }
    }

    /// Whether this process is a forked child of the one that called `init`.
    pub(super) fn in_child() -> bool {
        let owner = OWNER.load(Ordering::Relaxed);
        owner != 0 && owner != std::process::id()
    }

    /// Whether this process is a forked child of the one that called
    /// `init`, from a flag the fork handler sets: one relaxed load.
    pub(super) fn forked() -> bool {
        CHILD.load(Ordering::Relaxed)
    }

    /// Notes the owner and its database and, once per process, asks to
    /// hear of forks.
    pub(super) fn watch(db: PathBuf, mode: u32) {
        OWNER.store(std::process::id(), Ordering::Relaxed);
        CHILD.store(false, Ordering::Relaxed);
        *DB.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some((db, mode));
        #[cfg(unix)]
        {
            static REGISTER: std::sync::Once = std::sync::Once::new();
            REGISTER.call_once(|| {
                // SAFETY: `in_forked_child` only stores to atomics, which
                // is async-signal-safe, as a handler run after fork must be.
                unsafe { libc::pthread_atfork(None, None, Some(in_forked_child)) };
            });
        }
    }

    /// Runs in the child right after `fork()`: no span records from here.
    #[cfg(unix)]
    extern "C" fn in_forked_child() {
        let was_recording = !ACTIVE
            .swap(std::ptr::null_mut(), Ordering::AcqRel)
            .is_null();
        CHILD_SPANS.store(0, Ordering::Relaxed);
        FORKED.store(was_recording, Ordering::Relaxed);
        CHILD.store(true, Ordering::Relaxed);
    }
}

/// Starts monitoring with [`Config::load`]: `monitor.toml` (or the file
/// named by `MONITOR_CONFIG`), then the `MONITOR_*` environment overrides.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = monitor_runtime::init()?;
///     // ... monitored work ...
///     guard.flush();
///     Ok(())
/// }
/// ```
pub fn init() -> Result<Guard, Error> {
    init_with(Config::load()?)
}

/// [`init`] for a program that must run whatever happens to monitoring:
/// on an error (a read-only filesystem, a bad `monitor.toml`, a file that is
/// not a monitor database) it says why once on stderr and returns a guard
/// that records nothing, instead of an `Err` that `init()?` would turn into
/// the program's exit.
///
/// ```
/// let guard = monitor_runtime::init_with_or_disabled(
///     monitor_runtime::Config::default().db_path("/nonexistent-dir/app.db"),
/// );
/// assert!(!guard.is_enabled()); // and the program goes on
/// ```
pub fn init_or_disabled() -> Guard {
    init().unwrap_or_else(disabled_because)
}

/// [`init_with`], or a guard that records nothing and a line on stderr
/// saying why (see [`init_or_disabled`]).
pub fn init_with_or_disabled(config: Config) -> Guard {
    init_with(config).unwrap_or_else(disabled_because)
}

fn disabled_because(err: Error) -> Guard {
    eprintln!("monitor: recording is off: {err}");
    Guard {
        running: None,
        holds_slot: false,
    }
}

/// Starts monitoring with a configuration built in code.
///
/// Opens (or creates) the database on the calling thread, so a bad path or
/// a file that is not a monitor database is reported here; then starts the
/// writer thread. Calling it while a [`Guard`] is alive is an error.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::Config;
///
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("app.db")))?;
/// assert!(monitor_runtime::init_with(Config::default()).is_err()); // one at a time
/// drop(guard);
/// # Ok(()) }
/// ```
pub fn init_with(config: Config) -> Result<Guard, Error> {
    let mut config = config.validate("the configuration given to init_with")?;
    // Absolute from here on: a program that changes its working directory
    // must not make the writer or retention look for the file elsewhere.
    if let Ok(path) = std::path::absolute(&config.db_path) {
        config.db_path = path;
    }
    let mut alive = GUARD_ALIVE.lock().unwrap_or_else(PoisonError::into_inner);
    if *alive {
        return Err(Error::AlreadyInitialized);
    }
    if !config.enabled {
        *alive = true;
        return Ok(Guard {
            running: None,
            holds_slot: true,
        });
    }
    // Checked here, not when parsing: the file may name a directory that
    // is created later, but retention cannot start without it.
    let archive = &config.retention.archive_dir;
    if !archive.as_os_str().is_empty() && !archive.is_dir() {
        return Err(Error::Config {
            origin: "the configuration given to init".into(),
            key: "retention.archive_dir".into(),
            message: format!(
                "expected an existing directory, got {:?}",
                archive.display().to_string()
            ),
        });
    }
    #[cfg(not(feature = "otlp"))]
    if config.otlp.is_some() {
        // Spans would silently never leave the file.
        return Err(Error::Config {
            origin: "the configuration given to init".into(),
            key: "otlp".into(),
            message: "this program's monitor-runtime was built without its `otlp` feature, \
                      which the live sender needs: enable it, or remove the [otlp] table"
                .into(),
        });
    }
    let opened = writer::open(&config.db_path, &writer::FileOptions::from_config(&config))?;
    let error_spill = std::sync::Arc::new(writer::ErrorSpill::beside(
        &config.db_path,
        config.file_mode,
        config.clock.clone(),
    ));
    let rt: &'static Runtime = Box::leak(Box::new(Runtime {
        clock: config.clock.clone(),
        queue: Queue::new(&config.queue, error_spill.clone()),
        capture: CaptureRules::from_config(&config.capture)?,
        latest_rss: LatestRss::default(),
        thread_cpu: config.resources.thread_cpu,
        #[cfg(feature = "tracing")]
        open_tracing_spans: std::sync::atomic::AtomicU64::new(0),
    }));
    let health = std::sync::Arc::new(HealthCell::default());
    let (control, handle) =
        writer::spawn(opened, rt, error_spill, health.clone(), &config).map_err(Error::Thread)?;
    let threads = RetentionThread::spawn(
        config.db_path.clone(),
        config.retention.clone(),
        config.clock.clone(),
    )
    .and_then(|retention| {
        let sampler = match config.resources.interval_ms {
            0 => None,
            ms => Some(SamplerThread::spawn(
                config.sampler.0.clone().unwrap_or_else(|| {
                    std::sync::Arc::new(std::sync::Mutex::new(SysinfoSampler::new()))
                }),
                std::time::Duration::from_millis(ms),
                config.clock.clone(),
                &rt.latest_rss,
                |sample| rt.queue.push_sample(sample),
            )?),
        };
        #[cfg(feature = "otlp")]
        let exporter = match &config.otlp {
            Some(otlp) => Some(crate::otlp::live::LiveSender::spawn(
                config.db_path.clone(),
                otlp,
            )?),
            None => None,
        };
        #[cfg(not(feature = "otlp"))]
        let exporter = ();
        Ok((retention, sampler, exporter))
    });
    #[allow(unused_variables)] // without the `otlp` feature, `()`
    let (retention, sampler, exporter) = match threads {
        Ok(threads) => threads,
        Err(e) => {
            let _ = control.send(Control::Shutdown);
            let _ = handle.join();
            rt.queue.release();
            return Err(Error::Thread(e));
        }
    };
    crate::panic::install_hook();
    fork::watch(config.db_path.clone(), config.file_mode);
    at_exit::watch(
        control.clone(),
        std::time::Duration::from_millis(config.shutdown_timeout_ms),
    );
    ACTIVE.store(ptr::from_ref(rt).cast_mut(), Ordering::Release);
    *alive = true;
    Ok(Guard {
        running: Some(Running {
            rt,
            health,
            control,
            writer: Some(handle),
            retention: Some(retention),
            sampler,
            #[cfg(feature = "otlp")]
            exporter,
            db_path: config.db_path,
            shutdown_timeout: std::time::Duration::from_millis(config.shutdown_timeout_ms),
        }),
        holds_slot: true,
    })
}

/// Keeps monitoring running. [`Guard::flush`] waits until everything
/// recorded so far is in the file; dropping the guard flushes, stops the
/// writer and joins it. Spans that end after that are not recorded.
#[must_use = "monitoring stops when the guard is dropped"]
pub struct Guard {
    running: Option<Running>,
    /// This guard is the one `init` allows at a time (a disabled guard
    /// returned for an error is not).
    holds_slot: bool,
}

struct Running {
    rt: &'static Runtime,
    /// What the writer publishes for [`Guard::health`].
    health: std::sync::Arc<HealthCell>,
    control: Sender<Control>,
    writer: Option<JoinHandle<()>>,
    retention: Option<RetentionThread>,
    sampler: Option<SamplerThread>,
    /// The live OTLP sender, with `[otlp]`.
    #[cfg(feature = "otlp")]
    exporter: Option<crate::otlp::live::LiveSender>,
    db_path: PathBuf,
    /// `shutdown_timeout_ms`: the longest wait for a flush at exit.
    shutdown_timeout: std::time::Duration,
}

/// Returned by [`Guard::hold_writer`]: the writer takes nothing from the
/// queue until this is dropped. It borrows the guard, so the guard cannot be
/// dropped (and wait for a held writer) while it lives.
#[must_use = "the writer resumes as soon as this is dropped"]
pub struct WriterHold<'guard> {
    _release: Option<Sender<()>>,
    _guard: std::marker::PhantomData<&'guard Guard>,
}

impl Guard {
    /// Stops monitoring as dropping the guard does (every queued span is
    /// committed, the threads stop), without blocking the caller: the work
    /// runs on a thread of its own, and the future resolves when it is done
    /// (`true`) or when `timeout` has passed (`false`; the work goes on). For
    /// async programs, where a drop would stall every task of a
    /// current-thread runtime while the writer drains.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let config = monitor_runtime::Config::default().db_path(dir.path().join("m.db"));
    /// let guard = monitor_runtime::init_with(config)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    /// assert!(runtime.block_on(guard.shutdown(Duration::from_secs(10))));
    /// # Ok(()) }
    /// ```
    pub fn shutdown(self, timeout: std::time::Duration) -> impl std::future::Future<Output = bool> {
        let done = shutdown::Done::default();
        let signal = done.clone();
        let deadline = std::time::Instant::now() + timeout;
        let started = std::thread::Builder::new()
            .name("monitor-shutdown".into())
            .spawn(move || {
                drop(self);
                signal.set();
            });
        if let Err(e) = started {
            // No thread to be had: the guard, moved into the closure that
            // did not start, was dropped with it, blocking, here.
            eprintln!("monitor: cannot start a shutdown thread ({e}); shut down in place");
            done.set();
        }
        shutdown::Wait {
            done,
            deadline,
            timer: false,
        }
    }

    /// Blocks until every span that ended before this call is committed to
    /// the database (including what other threads still had buffered).
    /// Returns at once when monitoring is disabled or the writer has stopped.
    pub fn flush(&self) {
        if let Some(running) = self.running() {
            let (ack, done) = crossbeam_channel::bounded(1);
            let flush = Control::Flush {
                ack,
                deadline: None,
            };
            if running.control.send(flush).is_ok() {
                let _ = done.recv();
            }
        }
    }

    /// Runs a retention pass now on the retention thread (which otherwise
    /// runs one every `retention.cleanup_interval_secs`) and returns what
    /// it dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::Config;
    /// let dir = tempfile::tempdir()?;
    /// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let report = guard.run_retention()?;
    /// assert!(report.expired.is_empty(), "nothing is 6 hours old yet");
    /// # Ok(()) }
    /// ```
    pub fn run_retention(&self) -> Result<RetentionReport, Error> {
        match self.running.as_ref().and_then(|r| r.retention.as_ref()) {
            Some(retention) => retention.run_now(),
            None => Ok(RetentionReport::default()),
        }
    }

    /// Takes a resource sample now (besides the one every
    /// `resources.interval_ms`) and returns once it is queued: a `flush`
    /// after it stores it. Does nothing when the sampler is off.
    pub fn sample_resources(&self) {
        if let Some(sampler) = self.running.as_ref().and_then(|r| r.sampler.as_ref()) {
            sampler.sample_now();
        }
    }

    /// The database file (made absolute by `init`), `None` when monitoring is
    /// disabled.
    pub fn db_path(&self) -> Option<&Path> {
        self.running.as_ref().map(|r| r.db_path.as_path())
    }

    /// Opt-in: on SIGTERM or SIGINT, commit what is queued (waiting at most
    /// `shutdown_timeout_ms`), then end the process as the signal would
    /// have (the default action, re-raised), so a supervisor that stops
    /// the program loses no spans. A thread waits for the signals
    /// (`signal-hook`); the program's own handlers for them are replaced.
    /// Returns at once when monitoring is disabled.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let guard = monitor_runtime::init()?;
    /// guard.flush_on_signals()?;
    /// // ... serve until the supervisor sends SIGTERM ...
    /// # Ok(()) }
    /// ```
    #[cfg(unix)]
    pub fn flush_on_signals(&self) -> Result<(), Error> {
        use signal_hook::consts::signal::{SIGINT, SIGTERM};
        let Some(running) = self.running() else {
            return Ok(());
        };
        let mut signals =
            signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(Error::Signals)?;
        let (control, timeout) = (running.control.clone(), running.shutdown_timeout);
        std::thread::Builder::new()
            .name("monitor-signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    flush_within(&control, timeout);
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                }
            })
            .map(drop)
            .map_err(Error::Signals)
    }

    /// The writer's health, for the program's own probes: its state (ok,
    /// spilling since when, failed), the queue depth, the records dropped
    /// and lost since `init`, and the age of the last commit. A few atomic
    /// loads and one clock read, no lock: cheap enough for every request of
    /// a `/healthz` (see `examples/healthz.rs`). A guard that records
    /// nothing says [`WriterState::Disabled`](crate::WriterState::Disabled).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::Config;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let health = guard.health();
    /// assert!(health.is_ok(), "{health:?}");
    /// assert_eq!(health.dropped, 0);
    /// # Ok(()) }
    /// ```
    pub fn health(&self) -> Health {
        match &self.running {
            // Not `running()`: its fork check asks the kernel for the pid.
            Some(running) if !forked() => running.health.read(&running.rt.queue),
            _ => Health::disabled(),
        }
    }

    /// A handle that reads [`health`](Self::health) without the guard, for
    /// a `/healthz` handler's state or another thread (see
    /// [`HealthProbe`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::Config;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let probe = guard.health_probe();
    /// let hold = guard.hold_writer(); // borrows the guard; the probe still answers
    /// assert_eq!(probe.health().queue_depth, 0);
    /// drop(hold);
    /// # Ok(()) }
    /// ```
    pub fn health_probe(&self) -> HealthProbe {
        match &self.running {
            Some(running) => HealthProbe::new(running.rt, running.health.clone()),
            None => HealthProbe::disabled(),
        }
    }

    /// Whether spans are being recorded.
    pub fn is_enabled(&self) -> bool {
        self.running().is_some()
    }

    /// The running threads, `None` also in a child of `fork()`: they stayed
    /// in the parent.
    fn running(&self) -> Option<&Running> {
        self.running.as_ref().filter(|_| !fork::in_child())
    }

    /// Runs `task` on the writer thread with its database connection and
    /// waits for it: fault injection for tests (`PRAGMA query_only`, `PRAGMA
    /// max_page_count`, a panic). Not a stable API.
    #[doc(hidden)]
    pub fn __with_writer_connection(
        &self,
        task: impl FnOnce(&rusqlite::Connection) + Send + 'static,
    ) {
        if let Some(running) = &self.running {
            let (ack, done) = crossbeam_channel::bounded(1);
            if running
                .control
                .send(Control::Run(Box::new(task), ack))
                .is_ok()
            {
                let _ = done.recv();
            }
        }
    }

    /// Makes the writer panic in the middle of its next batch: fault
    /// injection for tests. Not a stable API.
    #[doc(hidden)]
    pub fn __panic_writer_on_next_batch(&self) {
        if let Some(running) = &self.running {
            let _ = running.control.send(Control::PanicNextBatch);
        }
    }

    /// Stalls the writer until the returned value is dropped, as a slow or
    /// locked disk would: for tests of overflow behaviour. It borrows the
    /// guard mutably, so `flush` (which would wait for the held writer)
    /// cannot be called meanwhile. With `overflow = "block"`, spans ended on
    /// the holding thread wait too once the lane is full.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::Config;
    /// let dir = tempfile::tempdir()?;
    /// let mut guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let hold = guard.hold_writer();
    /// // ... produce spans: they queue up, or overflow ...
    /// drop(hold);
    /// guard.flush();
    /// # Ok(()) }
    /// ```
    pub fn hold_writer(&mut self) -> WriterHold<'_> {
        let Some(running) = &self.running else {
            return WriterHold {
                _release: None,
                _guard: std::marker::PhantomData,
            };
        };
        let (release, held) = crossbeam_channel::bounded(0);
        let (ack, holding) = crossbeam_channel::bounded(1);
        if running.control.send(Control::Hold { ack, held }).is_ok() {
            // Return only once the writer has stopped taking records.
            let _ = holding.recv();
        }
        WriterHold {
            _release: Some(release),
            _guard: std::marker::PhantomData,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.running.is_some() {
            at_exit::forget();
        }
        if fork::in_child() {
            // The threads, and any lock they held, stayed in the parent:
            // join nothing, lock nothing, leave the parent's file alone.
            if self.running.is_some() {
                fork::report_child_spans();
            }
            std::mem::forget(self.running.take());
            return;
        }
        if let Some(mut running) = self.running.take() {
            // The live sender's last drain ends by this, counted from now:
            // an exit waits for it at most `shutdown_timeout_ms`.
            #[cfg(feature = "otlp")]
            let export_deadline = std::time::Instant::now() + running.shutdown_timeout;
            // New spans stop recording; those already ended are drained.
            ACTIVE.store(ptr::null_mut(), Ordering::Release);
            fork::forget();
            // `tracing` spans still open will never be stored: counted.
            #[cfg(feature = "tracing")]
            running.rt.queue.counters.dropped.fetch_add(
                crate::tracing::count_open_spans(running.rt),
                Ordering::Relaxed,
            );
            // Retention first: its pass may be waiting on the writer's lock.
            drop(running.retention.take());
            drop(running.sampler.take());
            let _ = running.control.send(Control::Shutdown);
            if let Some(handle) = running.writer.take() {
                let _ = handle.join();
            }
            // Everything is committed: the sender ships what it has not,
            // within the shutdown bound; the next run sends the rest.
            #[cfg(feature = "otlp")]
            if let Some(exporter) = running.exporter.take() {
                exporter.finish(export_deadline);
            }
            running.rt.queue.release();
        }
        if self.holds_slot {
            *GUARD_ALIVE.lock().unwrap_or_else(PoisonError::into_inner) = false;
        }
    }
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("db_path", &self.db_path())
            .finish()
    }
}

/// Built without the `otlp` feature (`cargo test -p monitor-runtime --lib`,
/// which `.ci/run` runs): the workspace's own tests always have it.
#[cfg(all(test, not(feature = "otlp")))]
mod without_otlp {
    use crate::{Config, Error, OtlpConfig};

    /// Spans would never leave the file: `init` says so, naming the key,
    /// and creates nothing.
    #[test]
    fn an_otlp_table_is_an_init_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("m.db");
        let config = Config::default()
            .db_path(&db)
            .otlp(OtlpConfig::new("http://127.0.0.1:4318"));
        match super::init_with(config) {
            Err(Error::Config { key, message, .. }) => {
                assert_eq!(key, "otlp");
                assert!(message.contains("`otlp` feature"), "{message}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        assert!(!db.exists());
    }
}
