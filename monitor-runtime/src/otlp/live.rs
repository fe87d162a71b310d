//! The live sender: with `[otlp]` set, a thread ships what the writer
//! commits to the collector, reading it back from the file.
//!
//! The file stays the source of truth. The sender holds one batch at a
//! time, so a collector that is down or slow costs no memory: the export
//! lags (`export_stats.pending`) and catches up when it answers again, and
//! the program never waits for it. Its cursor is in the file
//! ([`crate::export_cursor`]): a restart resumes where the last run
//! stopped, and only one process sends from a file at a time.

use std::io;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use rusqlite::{params, Connection, OpenFlags};

use super::{encode_spans, Client, ClientSettings, ResourceSettings, Stop};
use crate::config::otlp::OtlpConfig;
use crate::export_cursor::{self, Cursor, Lease};

/// How often the sender's counters become an `export_stats` row.
const STATS_EVERY: Duration = Duration::from_secs(10);
/// The shortest sending lease; longer when one send with all its retries
/// may take longer ([`lease_for`]). A crashed sender gives way after it.
const LEASE_MIN: Duration = Duration::from_secs(300);
/// How long the sender waits for the file's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The running sender; [`LiveSender::finish`] stops it.
pub(crate) struct LiveSender {
    stop: Sender<Instant>,
    /// Cuts a send short at the deadline (its retries and backoff).
    client_stop: Stop,
    /// Disconnects when the thread ends.
    done: Receiver<()>,
    /// The collector is not taking batches: an exit does not wait for it.
    failing: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl LiveSender {
    /// Starts the sender on the file at `db` (which the writer has opened:
    /// its schema is there).
    pub(crate) fn spawn(db: PathBuf, config: &OtlpConfig) -> io::Result<LiveSender> {
        let settings = ClientSettings::from_config(config);
        let client = Client::new(settings.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        // The cursor is placed before `init` returns: every span the
        // program ends from then on is past it. (The thread would place it
        // at its first round, after spans already committed.)
        let (conn, cursor) = match open(&db).and_then(|conn| {
            let cursor = export_cursor::load_or_start(&conn, now_ns())?;
            Ok((conn, cursor))
        }) {
            Ok((conn, cursor)) => (Some(conn), Some(cursor)),
            Err(e) => {
                eprintln!(
                    "monitor: the OTLP sender cannot read {} yet ({e}); it tries again, \
                     from the latest commit then",
                    db.display()
                );
                (None, None)
            }
        };
        let (stop, stopped) = crossbeam_channel::bounded(1);
        let (done_tx, done) = crossbeam_channel::bounded::<()>(0);
        let client_stop = client.stop_handle();
        let failing = Arc::new(AtomicBool::new(false));
        let state = Sending {
            db,
            client,
            resource: ResourceSettings::new(config.service_name.as_deref(), None),
            interval: Duration::from_millis(config.interval_ms.max(1)),
            max_batch: config.max_batch.max(1),
            stopped,
            owner: (crate::id::random_u64() >> 1) as i64,
            lease: lease_for(&settings),
            renew_at: 0,
            counts: Counts::default(),
            failing_since: None,
            failing: failing.clone(),
            file_failing: false,
        };
        let handle = std::thread::Builder::new()
            .name("monitor-otlp".into())
            .spawn(move || {
                let _done = done_tx;
                state.run(conn, cursor);
            })?;
        Ok(LiveSender {
            stop,
            client_stop,
            done,
            failing,
            handle: Some(handle),
        })
    }

    /// Sends what is committed and not yet sent, until `deadline`, then
    /// stops; while the collector is failing, stops at once. What is left
    /// is sent by the next run, from the cursor. A request still in flight
    /// at the deadline is not waited for beyond a moment: the thread is
    /// left to end on its own.
    pub(crate) fn finish(mut self, deadline: Instant) {
        let deadline = if self.failing.load(Ordering::Relaxed) {
            Instant::now()
        } else {
            deadline
        };
        self.stop_by(deadline);
    }

    fn stop_by(&mut self, deadline: Instant) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        self.client_stop.stop_at(deadline);
        let _ = self.stop.try_send(deadline);
        let grace = deadline + Duration::from_millis(200);
        if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
            self.done.recv_deadline(grace)
        {
            let _ = handle.join();
        }
    }
}

impl Drop for LiveSender {
    fn drop(&mut self) {
        self.stop_by(Instant::now());
    }
}

/// Counts since the last `export_stats` row.
#[derive(Default)]
struct Counts {
    sent: u64,
    refused: u64,
    failed: u64,
    retries: u64,
}

struct Sending {
    db: PathBuf,
    client: Client,
    resource: ResourceSettings,
    interval: Duration,
    max_batch: usize,
    stopped: Receiver<Instant>,
    /// This sender's token in `export_cursor.owner`.
    owner: i64,
    lease: Duration,
    /// When to renew the lease next (Unix ns); 0: not held.
    renew_at: i64,
    counts: Counts,
    /// Since when the collector has not taken a batch, and why.
    failing_since: Option<(Instant, String)>,
    /// `failing_since.is_some()`, for [`LiveSender::finish`].
    failing: Arc<AtomicBool>,
    /// The last round could not use the file.
    file_failing: bool,
}

/// What one round did.
enum Round {
    /// Sent a full batch: more may be waiting.
    Full,
    /// Nothing, or less than a batch, was waiting.
    CaughtUp,
    /// The collector did not take the batch, or another process holds the
    /// lease, or the file could not be read: try again after a while.
    Wait,
}

impl Sending {
    fn run(mut self, conn: Option<Connection>, mut cursor: Option<Cursor>) {
        let conn = match conn {
            Some(conn) => conn,
            None => loop {
                match open(&self.db) {
                    Ok(conn) => break conn,
                    Err(e) => {
                        eprintln!(
                            "monitor: the OTLP sender cannot open {}: {e}",
                            self.db.display()
                        );
                        if self.wait(self.interval).is_some() {
                            return;
                        }
                    }
                }
            },
        };
        let mut deadline: Option<Instant> = None;
        let mut last_stats = Instant::now();
        loop {
            let round = self.round(&conn, &mut cursor);
            if last_stats.elapsed() >= STATS_EVERY {
                self.write_stats(&conn, cursor);
                last_stats = Instant::now();
            }
            if let Some(deadline) = deadline {
                if !matches!(round, Round::Full) || Instant::now() >= deadline {
                    break;
                }
                continue;
            }
            let pause = match round {
                Round::Full => Duration::ZERO,
                Round::CaughtUp | Round::Wait => self.interval,
            };
            if let Some(at) = self.wait(pause) {
                // The writer has committed everything: one more pass
                // drains it, within the deadline.
                deadline = Some(at);
            }
        }
        self.write_stats(&conn, cursor);
        let _ = export_cursor::release(&conn, self.owner);
    }

    /// Waits `pause`, or until told to stop: then returns the deadline.
    fn wait(&self, pause: Duration) -> Option<Instant> {
        match self.stopped.recv_timeout(pause) {
            Ok(deadline) => Some(deadline),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Instant::now()),
        }
    }

    /// Sends at most one batch past the cursor, and moves the cursor when
    /// the collector has answered for it (taken, or refused for good: a
    /// refusal would be refused again, and must not stop the export).
    fn round(&mut self, conn: &Connection, cursor: &mut Option<Cursor>) -> Round {
        let now = now_ns();
        if cursor.is_none() {
            match export_cursor::load_or_start(conn, now) {
                Ok(at) => *cursor = Some(at),
                Err(e) => return self.unreadable(e),
            }
        }
        // The lease first: a sender taking over sends from where the one
        // before it stopped, not from where this one last looked.
        if now >= self.renew_at {
            let until = now.saturating_add(self.lease.as_nanos() as i64);
            match export_cursor::lease(conn, self.owner, now, until) {
                Ok(Lease::Kept) => {}
                Ok(Lease::Taken(stored)) => *cursor = Some(stored),
                // Another sender (another process) ships from this file.
                Ok(Lease::Busy) => return Round::Wait,
                Err(e) => return self.unreadable(e),
            }
            // Renewed halfway through: never lost between two rounds.
            self.renew_at = now.saturating_add((self.lease / 2).as_nanos() as i64);
        }
        let Some(at) = *cursor else {
            return Round::Wait;
        };
        let batch = match export_cursor::read_after(conn, at, self.max_batch) {
            Ok(batch) => batch,
            Err(e) => return self.unreadable(e),
        };
        self.file_failing = false;
        let Some(&(last, _)) = batch.last() else {
            return Round::CaughtUp;
        };
        let full = batch.len() == self.max_batch;
        let rows: Vec<_> = batch.into_iter().map(|(_, row)| row).collect();
        // Processes that began writing the file since the last round.
        if rows
            .iter()
            .any(|r| !self.resource.processes.contains_key(&r.pid))
        {
            if let Ok(resource) = self.resource.clone().with_processes(conn) {
                self.resource = resource;
            }
        }
        let outcome = self
            .client
            .export_spans(&encode_spans(&rows, &self.resource));
        self.counts.sent += outcome.sent;
        self.counts.refused += outcome.refused;
        self.counts.failed += outcome.failed;
        self.counts.retries += outcome.retries;
        if outcome.failed > 0 {
            // Not taken: the same rows go again next round.
            if self.failing_since.is_none() {
                let why = outcome.last_error.clone().unwrap_or_default();
                event(
                    conn,
                    "export_failing",
                    &format!(
                    "the OTLP collector did not take {} spans ({why}); export lags until it does",
                    rows.len()
                ),
                );
                self.failing_since = Some((Instant::now(), why));
                self.failing.store(true, Ordering::Relaxed);
            }
            return Round::Wait;
        }
        if let Some((since, _)) = self.failing_since.take() {
            self.failing.store(false, Ordering::Relaxed);
            event(
                conn,
                "export_recovered",
                &format!(
                    "the OTLP collector takes spans again after {:.1} s",
                    since.elapsed().as_secs_f64()
                ),
            );
        }
        *cursor = Some(last);
        // Kept in memory regardless: a cursor the file did not take now is
        // stored with the next one.
        let _ = export_cursor::advance(conn, last, now_ns());
        if full {
            Round::Full
        } else {
            Round::CaughtUp
        }
    }

    /// The file could not be read or written (locked past the busy
    /// timeout, damaged): said once until a round succeeds, then retried.
    fn unreadable(&mut self, e: rusqlite::Error) -> Round {
        if !self.file_failing {
            self.file_failing = true;
            eprintln!(
                "monitor: the OTLP sender cannot read {}: {e}; it tries again",
                self.db.display()
            );
        }
        Round::Wait
    }

    /// An `export_stats` row: the counts since the last, and the lag.
    fn write_stats(&mut self, conn: &Connection, cursor: Option<Cursor>) {
        let pending = cursor
            .and_then(|at| export_cursor::pending(conn, at).ok())
            .unwrap_or(0);
        let c = &self.counts;
        let stored = conn.execute(
            "INSERT INTO export_stats (ts_ns, pid, sent, refused, failed, retries, lost, pending) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7)",
            params![
                now_ns(),
                std::process::id(),
                c.sent as i64,
                c.refused as i64,
                c.failed as i64,
                c.retries as i64,
                pending as i64
            ],
        );
        if stored.is_ok() {
            self.counts = Counts::default();
        }
    }
}

/// Twice the longest a send may take with all its attempts, timeouts and
/// `Retry-After` waits, and at least [`LEASE_MIN`]: the lease never runs
/// out while its holder is sending.
fn lease_for(settings: &ClientSettings) -> Duration {
    let attempts = settings.max_attempts.max(1);
    let send = settings.timeout * attempts
        + settings.retry_after_max.max(settings.backoff_max) * (attempts - 1);
    (send * 2).max(LEASE_MIN)
}

/// The sender's own connection to the file.
fn open(db: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// A `monitor_events` row about the export.
fn event(conn: &Connection, kind: &str, message: &str) {
    let _ = conn.execute(
        "INSERT INTO monitor_events (ts_ns, pid, kind, message) VALUES (?1, ?2, ?3, ?4)",
        params![now_ns(), std::process::id(), kind, message],
    );
    eprintln!("monitor: {message}");
}

fn now_ns() -> i64 {
    crate::clock::system_unix_ns() as i64
}
