//! The writer thread: the only owner of the database connection.
//!
//! It drains the error lane first, then the normal lane, in batches as large
//! as the backlog (up to `MAX_BATCH`), one `BEGIN IMMEDIATE` transaction per
//! batch with cached prepared statements. It sweeps every thread's buffer
//! each `flush_interval_ms` and on `flush`, creates hourly partitions on
//! demand, and writes a `monitor_stats` row periodically, on flush and at
//! shutdown.
//!
//! When the database will not take a batch (locked past the busy timeout,
//! full, read-only, deleted and not re-creatable), the batch goes to the
//! spill file instead, and the writer tries the database again every
//! `PROBE_EVERY` and on every flush, replaying the spill file first. A panic
//! inside the writer is caught: the batch in hand is spilled and the loop
//! starts again. Each of these is a row of `monitor_events`. That state
//! machine lives in `faults.rs`; this file batches.
//!
//! Error records past `queue.error_max_bytes` reach the spill file from
//! their own threads ([`ErrorSpill`]) and are replayed likewise. A replay
//! goes a chunk at a time between batches, and an error backlog takes at
//! most half of a batch while normal records wait, so neither lane starves
//! the other.

mod busy;
mod error_spill;
mod faults;
mod rows;
pub(crate) mod schema;
mod spill;

use std::collections::HashMap;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use rusqlite::{Connection, TransactionBehavior};

use crate::callsite;
use crate::config::Config;
use crate::health::HealthCell;
use crate::record::Record;
use crate::report::report;
use crate::resources::Sample;
use crate::runtime::Runtime;
pub(crate) use busy::give_up_at as stop_waiting_for_locks_at;
pub(crate) use error_spill::ErrorSpill;
use faults::events_in;
use rows::{CallsiteRow, EventRow, Inserter, Line, SampleRow, SpanRow, StatsRow, ThreadRow};
pub use schema::SCHEMA_VERSION;
pub(crate) use schema::{open, FileOptions};
use spill::SpillFile;

/// Rows per transaction at most: bounds the latency of a flush and memory.
const MAX_BATCH: usize = 65_536;
/// A stats row at least this often while there is activity.
const STATS_EVERY: Duration = Duration::from_secs(10);
/// How often a failing database is tried again, and how long such a try
/// waits for a lock.
const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_BUSY_TIMEOUT: Duration = Duration::from_millis(50);
/// Panics this close together, this many in a row, stop the writer: it is
/// not getting anywhere.
const QUICK_PANIC: Duration = Duration::from_secs(1);
const QUICK_PANICS_MAX: u32 = 10;

/// A closure run on the writer's connection (fault injection in tests).
pub(crate) type ConnectionTask = Box<dyn FnOnce(&Connection) + Send>;

/// Requests from the guard to the writer.
pub(crate) enum Control {
    /// Commit everything enqueued so far, then answer. With a deadline (a
    /// process that exits), what the database has not taken by then goes
    /// to the spill file instead, and a spill is replayed only until then.
    Flush {
        ack: Sender<()>,
        deadline: Option<Instant>,
    },
    /// Answer, then take nothing until `held` disconnects.
    Hold { ack: Sender<()>, held: Receiver<()> },
    /// Run a task on the connection, then answer.
    Run(ConnectionTask, Sender<()>),
    /// Panic in the middle of the next batch (fault injection in tests).
    PanicNextBatch,
    /// Drain, write the final stats row, and stop.
    Shutdown,
}

/// Starts the writer thread with an open connection.
pub(crate) fn spawn(
    opened: schema::Opened,
    rt: &'static Runtime,
    error_spill: Arc<ErrorSpill>,
    health: Arc<HealthCell>,
    config: &Config,
) -> io::Result<(Sender<Control>, JoinHandle<()>)> {
    let (control_tx, control) = crossbeam_channel::unbounded();
    schema::register_process(&opened.conn);
    let options = FileOptions::from_config(config);
    let db_path = config.db_path.clone();
    let mut writer = Writer {
        identity: identity(&db_path),
        conn: opened.conn,
        spill: SpillFile::beside(&db_path, options.mode),
        spill_max_bytes: match config.spill_max_bytes {
            0 => u64::MAX,
            bytes => bytes,
        },
        error_spill,
        health,
        dropped_stored: 0,
        db_path,
        options,
        rt,
        control,
        sweep_every: Duration::from_millis(config.queue.flush_interval_ms),
        batch: Vec::new(),
        samples: Vec::new(),
        callsites: Progress::default(),
        threads: Vec::new(),
        thread_progress: Progress::default(),
        events: Vec::new(),
        tables: HashMap::new(),
        schema_version: -1,
        stats: BatchStats::default(),
        pid: std::process::id(),
        fault: None,
        deadline: None,
        flushing: None,
        spill_pending: false,
        spill_failing: false,
        spill_full: false,
        shutting_down: false,
        spill_unreadable: false,
        panic_next_batch: false,
        failure_reported: false,
    };
    writer.spill_pending = writer.spill.has_lines();
    if let Some((aside, why)) = opened.rotated {
        writer.event(
            "rotated",
            format!(
                "{why}; the file was moved to {} and a new one started",
                aside.display()
            ),
        );
    }
    let handle = thread::Builder::new()
        .name("monitor-writer".into())
        .spawn(move || writer.run())?;
    Ok((control_tx, handle))
}

/// Batch figures since the previous stats row.
#[derive(Default)]
struct BatchStats {
    written: u64,
    errors_written: u64,
    failed: u64,
    spilled: u64,
    replayed: u64,
    batches: u64,
    rows_max: u64,
    micros_total: u64,
    micros_max: u64,
    depth_max: u64,
}

/// How far a registry (callsites, threads) has reached the database and
/// the current spill file.
#[derive(Default)]
struct Progress {
    stored: usize,
    spilled: usize,
}

/// The database is failing; batches go to the spill file meanwhile.
struct Fault {
    since: Instant,
    /// `since` on the system clock, for `guard.health()`.
    since_ns: u64,
    next_probe: Instant,
    /// Records spilled since.
    spilled: u64,
    /// Records lost since: the spill file failed too.
    failed: u64,
}

/// Why a database write did not happen.
enum Unavailable {
    /// A fault is known and it is not time to try again.
    Waiting,
    /// The database refused.
    Failed(String),
    /// The flush's deadline has passed (the process is exiting): the rest
    /// goes to the spill file, which is quicker and waits for no lock.
    PastDeadline,
}

struct Writer {
    conn: Connection,
    db_path: PathBuf,
    /// (device, inode) of the file `conn` has open: a different one at
    /// `db_path` means the file was deleted or replaced under us.
    identity: Option<(u64, u64)>,
    options: FileOptions,
    spill: SpillFile,
    /// `spill_max_bytes`: past it, only error records are spilled.
    spill_max_bytes: u64,
    error_spill: Arc<ErrorSpill>,
    /// What `guard.health()` reads: published on each change of state and
    /// each commit.
    health: Arc<HealthCell>,
    /// `queue.counters.dropped` (a count since `init`) as of the last stats
    /// row stored: the next row has the difference.
    dropped_stored: u64,
    rt: &'static Runtime,
    control: Receiver<Control>,
    sweep_every: Duration,
    batch: Vec<Record>,
    /// Resource samples to write with the next batch.
    samples: Vec<Sample>,
    callsites: Progress,
    /// Every thread registered, in order (they are written again into a
    /// re-created file).
    threads: Vec<ThreadRow>,
    thread_progress: Progress,
    /// Events not stored yet.
    events: Vec<EventRow>,
    /// Partition name by hour, for partitions known to exist.
    tables: HashMap<u64, String>,
    /// `PRAGMA schema_version` when `tables` was last trusted: another
    /// process (or retention) may add or drop partitions.
    schema_version: i64,
    stats: BatchStats,
    pid: u32,
    fault: Option<Fault>,
    /// The deadline of the flush being served, if it has one.
    deadline: Option<Instant>,
    /// The flush being served: done again if a panic interrupts it.
    flushing: Option<(Sender<()>, Option<Instant>)>,
    /// Whether the spill file may hold lines to replay.
    spill_pending: bool,
    /// The spill file refused an append (said once until one works).
    spill_failing: bool,
    /// The spill file reached `spill_max_bytes` (said once until replayed).
    spill_full: bool,
    /// `Shutdown` was received: after a panic, finish instead of serving
    /// again (the message is gone from the channel).
    shutting_down: bool,
    /// A spill file that could not be read: not looked for again.
    spill_unreadable: bool,
    panic_next_batch: bool,
    failure_reported: bool,
}

/// Appends a forked child's count of the spans it did not record (recording
/// is off after `fork()` without `exec`) to the spill file, as a
/// `monitor_stats` row of the child's pid (`enqueued` = `dropped`) and a
/// `fork_child` event, for the parent's writer to replay.
pub(crate) fn spill_fork_losses(db: &std::path::Path, mode: u32, spans: u64) -> io::Result<()> {
    let pid = std::process::id();
    let ts_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let message = format!(
        "{spans} spans began in pid {pid}, a child forked without exec, where recording is off; they are not stored"
    );
    let lines = [
        Line::Event(EventRow {
            ts_ns,
            pid,
            kind: "fork_child".to_owned(),
            message,
        }),
        Line::Stats(StatsRow {
            ts_ns,
            pid,
            enqueued: spans,
            dropped: spans,
            ..StatsRow::default()
        }),
    ];
    SpillFile::beside(db, mode).append_within(&lines, Duration::from_millis(100))
}

/// Runs when the writer thread ends, however it ends: producers must not
/// wait for a writer that is gone, spans stop being recorded, and
/// `guard.health()` says so.
struct OnExit(&'static Runtime, Arc<HealthCell>);

impl Drop for OnExit {
    fn drop(&mut self) {
        self.0.queue.close();
        self.1.set_state(crate::health::WriterState::Failed {
            since_ns: crate::clock::system_unix_ns(),
            reason: crate::health::FailReason::WriterStopped,
        });
        if std::thread::panicking() {
            crate::runtime::deactivate(self.0);
            report(format_args!(
                "the writer thread stopped on a panic; spans are no longer recorded"
            ));
        }
    }
}

/// (device, inode) of the file at `path`, if any.
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).ok().map(|_| (0, 0))
    }
}

impl Writer {
    /// Serves until shutdown, restarting the loop after a panic.
    fn run(mut self) {
        let on_exit = OnExit(self.rt, self.health.clone());
        // The connection was opened on `init`'s thread.
        busy::set_limit(self.options.busy_timeout);
        let mut last_panic: Option<Instant> = None;
        let mut quick_panics = 0;
        loop {
            let Err(payload) = catch_unwind(AssertUnwindSafe(|| self.serve())) else {
                return;
            };
            let now = Instant::now();
            quick_panics = match last_panic {
                Some(at) if now - at < QUICK_PANIC => quick_panics + 1,
                _ => 1,
            };
            last_panic = Some(now);
            // The batch in hand may be what made it panic: spill it rather
            // than try it again.
            let in_hand = self.batch.len();
            self.event(
                "writer_panic",
                format!(
                    "the writer panicked ({}); {in_hand} records in hand go to the spill file; restarted",
                    crate::panic::payload_message(&*payload)
                ),
            );
            self.spill_batch();
            self.batch.clear();
            self.samples.clear();
            if self.shutting_down {
                self.store_stats();
                return;
            }
            if quick_panics >= QUICK_PANICS_MAX {
                report(format_args!(
                    "the writer panicked {quick_panics} times in a row; spans are no longer recorded"
                ));
                crate::runtime::deactivate(self.rt);
                self.store_stats();
                drop(on_exit);
                return;
            }
        }
    }

    fn serve(&mut self) {
        let mut next_sweep = Instant::now() + self.sweep_every;
        let mut next_stats = Instant::now() + STATS_EVERY;
        // A flush a panic interrupted is done again: its caller still waits.
        if let Some((ack, deadline)) = self.flushing.take() {
            self.flush(ack, deadline);
        }
        loop {
            loop {
                match self.control.try_recv() {
                    Ok(Control::Flush { ack, deadline }) => self.flush(ack, deadline),
                    Ok(Control::Hold { ack, held }) => {
                        let _ = ack.send(());
                        let _ = held.recv();
                    }
                    Ok(Control::Run(task, ack)) => {
                        task(&self.conn);
                        let _ = ack.send(());
                    }
                    Ok(Control::PanicNextBatch) => self.panic_next_batch = true,
                    Ok(Control::Shutdown) | Err(TryRecvError::Disconnected) => {
                        self.shutting_down = true;
                        // From here on a span that ends is counted as dropped
                        // (it can no longer be written), not lost unseen.
                        self.rt.queue.close();
                        if let Some(fault) = &mut self.fault {
                            fault.next_probe = Instant::now();
                        }
                        self.drain_all();
                        self.replay_all();
                        self.store_stats();
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            while self.rt.queue.wake_rx.try_recv().is_ok() {}
            if self.error_spill.take_appended() {
                self.spill_pending = true;
            }

            // A chunk of the spill file, when one waits. While normal
            // chunks wait too, it is this round's share of error records:
            // the batch then takes none from the error lane.
            let replayed = self.recover(1) > 0;
            let errors = if replayed && !self.rt.queue.normal_rx.is_empty() {
                0
            } else {
                usize::MAX
            };
            let _ = self.take_available(errors, usize::MAX);
            self.samples.extend(self.rt.queue.samples_rx.try_iter());
            let now = Instant::now();
            if now >= next_sweep {
                self.rt.queue.sweep(&mut self.batch);
                self.error_spill.append_buffered();
                self.spill_pending |= self.error_spill.take_appended();
                self.look_for_spill();
                next_sweep = now + self.sweep_every;
            }
            if now >= next_stats {
                if self.has_news() {
                    self.store_stats();
                }
                self.rt.clock.reanchor();
                next_stats = now + STATS_EVERY;
            }
            if !self.batch.is_empty() || !self.samples.is_empty() {
                self.write_batch();
                continue;
            }
            if replayed {
                // More of the file may wait: no pause before the next chunk.
                continue;
            }
            let mut select = Select::new();
            select.recv(&self.control);
            select.recv(&self.rt.queue.wake_rx);
            let _ = select.ready_timeout(next_sweep.saturating_duration_since(now));
        }
    }

    /// Commits everything enqueued so far (see [`Control::Flush`]), then
    /// answers `ack`.
    fn flush(&mut self, ack: Sender<()>, deadline: Option<Instant>) {
        self.flushing = Some((ack.clone(), deadline));
        self.deadline = deadline;
        // A flush is a moment to try a failing database.
        if let Some(fault) = &mut self.fault {
            fault.next_probe = Instant::now();
        }
        let spilled_before = self.stats.spilled;
        self.drain_all();
        self.replay_all();
        let spilled = self.stats.spilled - spilled_before;
        if deadline.is_some() && spilled > 0 {
            let message = format!(
                "{spilled} records were not committed by the exit flush (the database refused them, or its deadline, 3/4 of shutdown_timeout_ms, passed) and went to the spill file, for the next run to replay"
            );
            self.event("exit_spill", message);
        }
        self.store_stats();
        self.deadline = None;
        self.flushing = None;
        let _ = ack.send(());
    }

    /// Moves records from the lanes into the batch, errors first, taking at
    /// most `errors` error records and `chunks` normal chunks; returns how
    /// many of each it took. Errors fill at most half of the batch while
    /// normal chunks wait: an error flood must not starve the normal lane.
    fn take_available(&mut self, errors: usize, chunks: usize) -> (usize, usize) {
        let queue = &self.rt.queue;
        self.stats.depth_max = self.stats.depth_max.max(queue.depth());
        let error_room = if chunks > 0 && !queue.normal_rx.is_empty() {
            MAX_BATCH / 2
        } else {
            MAX_BATCH
        };
        let mut took = (0, 0);
        while took.0 < errors && self.batch.len() < error_room {
            match queue.take_error() {
                Some(record) => self.batch.push(record),
                None => break,
            }
            took.0 += 1;
        }
        while took.1 < chunks && self.batch.len() < MAX_BATCH {
            match queue.normal_rx.try_recv() {
                Ok(mut chunk) => {
                    queue.taken(&chunk);
                    self.batch.append(&mut chunk.records);
                    queue.recycle(chunk.records);
                }
                Err(_) => break,
            }
            took.1 += 1;
        }
        took
    }

    /// Commits everything enqueued before this call: what the threads have
    /// buffered, then what was in the lanes once that sweep was done
    /// (producers hand chunks over under their buffer's lock, so nothing
    /// slips between the two). Later arrivals wait for the next round.
    fn drain_all(&mut self) {
        self.rt.queue.sweep(&mut self.batch);
        self.error_spill.append_buffered();
        self.spill_pending |= self.error_spill.take_appended();
        self.look_for_spill();
        let mut errors = self.rt.queue.errors_waiting();
        let mut chunks = self.rt.queue.normal_rx.len();
        self.samples.extend(self.rt.queue.samples_rx.try_iter());
        loop {
            let (took_errors, took_chunks) = self.take_available(errors, chunks);
            errors -= took_errors;
            chunks -= took_chunks;
            if self.batch.is_empty() && self.samples.is_empty() {
                return;
            }
            self.write_batch();
        }
    }

    fn has_news(&self) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.rt.queue.counters;
        self.stats.batches > 0
            || self.stats.failed > 0
            || !self.events.is_empty()
            || counters.enqueued.load(Relaxed) > 0
            || counters.dropped.load(Relaxed) > self.dropped_stored
            || counters.sampled_out.load(Relaxed) > 0
    }

    /// Records an event: on stderr now, in `monitor_events` with the next
    /// write (or the spill file).
    fn event(&mut self, kind: &str, message: String) {
        report(format_args!("{message}"));
        self.events.push(EventRow {
            ts_ns: self.rt.clock.now_ns(),
            pid: self.pid,
            kind: kind.to_owned(),
            message,
        });
    }

    /// Writes the batch to the database, or to the spill file when the
    /// database is failing.
    fn write_batch(&mut self) {
        register_callsites(&self.batch);
        let new_threads = self.rt.queue.take_new_threads();
        let pid = self.pid;
        self.threads
            .extend(new_threads.into_iter().map(|t| ThreadRow {
                id: t.id as i64,
                pid,
                name: t.name,
            }));
        let started = Instant::now();
        let rows = self.batch.len() as u64;
        if std::mem::take(&mut self.panic_next_batch) {
            panic!("injected panic with {rows} records in hand");
        }
        match self.try_database() {
            Ok(stored) => {
                self.stats.written += stored.written;
                self.stats.errors_written += stored.errors;
                self.count_failed(stored.rejected);
                if let Some(msg) = stored.first_rejection {
                    if !self.failure_reported {
                        self.failure_reported = true;
                        report(format_args!(
                            "{} spans rejected by the database: {msg:?} (counted as failed in monitor_stats)",
                            stored.rejected
                        ));
                    }
                }
            }
            Err(unavailable) => {
                if let Unavailable::Failed(reason) = unavailable {
                    self.fail(reason);
                }
                self.spill_batch();
            }
        }
        let micros = started.elapsed().as_micros() as u64;
        self.stats.batches += 1;
        self.stats.rows_max = self.stats.rows_max.max(rows);
        self.stats.micros_total += micros;
        self.stats.micros_max = self.stats.micros_max.max(micros);
        self.batch.clear();
        self.samples.clear();
    }

    /// The batch into the database, unless a fault says to wait (a due
    /// probe tries it, briefly). A failure other than a lock is tried once
    /// more with the partition cache reset (retention may have dropped a
    /// partition under us). A file deleted while the batch was committed
    /// got the batch; it is written again into the new one.
    fn try_database(&mut self) -> Result<rows::SpansStored, Unavailable> {
        if self.past_deadline() {
            return Err(Unavailable::PastDeadline);
        }
        if let Some(fault) = &self.fault {
            if Instant::now() < fault.next_probe {
                return Err(Unavailable::Waiting);
            }
        }
        let result = self.bounded_wait(|w| {
            w.check_file()?;
            let stored = w.insert_with_retry()?;
            if identity(&w.db_path) == w.identity {
                return Ok(stored);
            }
            w.check_file()?;
            w.insert_with_retry()
        });
        match result {
            Ok(stored) => {
                self.health.committed();
                self.recovered();
                Ok(stored)
            }
            Err(reason) => Err(Unavailable::Failed(reason)),
        }
    }

    fn insert_with_retry(&mut self) -> Result<rows::SpansStored, String> {
        self.insert_batch()
            .or_else(|first| {
                if first.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) {
                    return Err(first);
                }
                self.tables.clear();
                self.schema_version = -1;
                self.insert_batch().map_err(|_| first)
            })
            .map_err(|e| e.to_string())
    }

    fn insert_batch(&mut self) -> rusqlite::Result<rows::SpansStored> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA schema_version", [], |row| row.get(0))?;
        if version != self.schema_version {
            self.tables.clear();
        }
        let mut insert = Inserter::new(&tx, &mut self.tables);
        let new_callsites = insert_registry(
            &mut insert,
            self.callsites.stored,
            &self.threads[self.thread_progress.stored..],
        )?;
        let mut stored = insert.spans(
            self.batch
                .iter()
                .filter(|r| r.event_level == 0)
                .map(|r| SpanRow::new(r, &self.rt.clock)),
        )?;
        // Events in a savepoint of their own, as samples: a bad events
        // table must not sink the spans of the batch.
        let events = self.batch.iter().filter(|r| r.event_level != 0);
        let n_events = events.clone().count() as u64;
        if n_events > 0 {
            tx.execute_batch("SAVEPOINT tracing_events")?;
            match insert
                .tracing_events(events.map(|r| rows::TracingEventRow::new(r, &self.rt.clock)))
            {
                Ok(written) => {
                    tx.execute_batch("RELEASE tracing_events")?;
                    stored.written += written;
                }
                Err(err) => {
                    tx.execute_batch("ROLLBACK TO tracing_events; RELEASE tracing_events")?;
                    stored.rejected += n_events;
                    stored.first_rejection.get_or_insert_with(|| {
                        format!("cannot write {n_events} events of tracing: {err}")
                    });
                }
            }
        }
        for event in &self.events {
            insert.event(event)?;
        }
        // Samples in a savepoint of their own: a bad sample table must not
        // sink the spans of the batch.
        if !self.samples.is_empty() {
            tx.execute_batch("SAVEPOINT samples")?;
            let pid = self.pid;
            let samples: Vec<SampleRow> = self
                .samples
                .iter()
                .map(|s| SampleRow::new(s, pid))
                .collect();
            match insert.samples(&samples) {
                Ok(()) => tx.execute_batch("RELEASE samples")?,
                Err(err) => {
                    tx.execute_batch("ROLLBACK TO samples; RELEASE samples")?;
                    if !self.failure_reported {
                        self.failure_reported = true;
                        report(format_args!(
                            "cannot write {} resource samples: {err}",
                            samples.len()
                        ));
                    }
                }
            }
        }
        insert.finish()?;
        // Read inside the transaction: another process may change the
        // schema as soon as it commits.
        let version = tx.query_row("PRAGMA schema_version", [], |row| row.get(0))?;
        tx.commit()?;
        self.schema_version = version;
        self.callsites.stored += new_callsites;
        self.thread_progress.stored = self.threads.len();
        self.events.clear();
        Ok(stored)
    }

    /// Appends a `monitor_stats` row with the counts since the previous one
    /// (to the spill file while the database fails).
    fn store_stats(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let taken = self.error_spill.take();
        self.stats.spilled += taken.spilled;
        self.count_failed(taken.failed);
        if let Some(failure) = taken.failure {
            self.event("spill_failed", failure);
        }
        let counters = &self.rt.queue.counters;
        let s = std::mem::take(&mut self.stats);
        // `dropped` counts since `init` (`guard.health()` reads it): the
        // row has what is new since the last row stored.
        let dropped = counters.dropped.load(Relaxed);
        let row = StatsRow {
            ts_ns: self.rt.clock.now_ns(),
            pid: self.pid,
            enqueued: counters.enqueued.swap(0, Relaxed),
            written: s.written,
            dropped: dropped - self.dropped_stored,
            errors_written: s.errors_written,
            failed: s.failed,
            queue_depth: self.rt.queue.depth(),
            queue_depth_max: s.depth_max.max(self.rt.queue.depth()),
            batches: s.batches,
            batch_rows_max: s.rows_max,
            batch_us_avg: s.micros_total.checked_div(s.batches).unwrap_or(0),
            batch_us_max: s.micros_max,
            sampled_out: counters.sampled_out.swap(0, Relaxed),
            spilled: s.spilled,
            replayed: s.replayed,
        };
        if self.fault.is_none() {
            match self.insert_stats(&row) {
                Ok(()) => {
                    self.health.committed();
                    self.dropped_stored = dropped;
                    return;
                }
                Err(err) => self.fail(err.to_string()),
            }
        }
        let mut lines: Vec<Line<'_>> = self.events.drain(..).map(Line::Event).collect();
        lines.push(Line::Stats(row));
        match self.spill.append(&lines) {
            Ok(()) => {
                self.spill_pending = true;
                self.dropped_stored = dropped;
                self.spill_failing = false;
                self.publish_state();
            }
            Err(err) => {
                // Keep the counts for the next row rather than lose them
                // (`dropped` stays where it is: the next row takes it).
                let Some(Line::Stats(row)) = lines.pop() else {
                    unreachable!("pushed last")
                };
                counters.enqueued.fetch_add(row.enqueued, Relaxed);
                counters.sampled_out.fetch_add(row.sampled_out, Relaxed);
                self.stats = s;
                self.events.extend(events_in(lines));
                if !self.failure_reported {
                    self.failure_reported = true;
                    report(format_args!("cannot write monitor_stats: {err}"));
                }
            }
        }
    }

    /// `n` more records lost after the queue (`monitor_stats.failed`).
    fn count_failed(&mut self, n: u64) {
        self.stats.failed += n;
        self.health.count_failed(n);
    }

    /// The stats row and pending events, in one transaction.
    fn insert_stats(&mut self, row: &StatsRow) -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut insert = Inserter::new(&tx, &mut self.tables);
        for event in &self.events {
            insert.event(event)?;
        }
        insert.stats(row)?;
        insert.finish()?;
        tx.commit()?;
        self.events.clear();
        Ok(())
    }
}

/// Registers the callsites of `records` not registered yet (a span's
/// callsite gets its id here, off the hot path), so that the registry
/// written with them holds them.
fn register_callsites(records: &[Record]) {
    for record in records {
        record.callsite.id();
    }
}

/// Inserts the callsites registered from `callsites_from` on, and
/// `threads`; returns how many callsites.
fn insert_registry(
    insert: &mut Inserter<'_, '_>,
    callsites_from: usize,
    threads: &[ThreadRow],
) -> rusqlite::Result<usize> {
    let callsites: Vec<CallsiteRow> = callsite::registered_since(callsites_from)
        .into_iter()
        .map(CallsiteRow::from)
        .collect();
    insert.callsites(&callsites)?;
    insert.threads(threads)?;
    Ok(callsites.len())
}
