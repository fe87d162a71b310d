//! The writer's fault state machine, apart from its batching: a database
//! that refuses writes sends batches to the spill file (within
//! `spill_max_bytes`), is probed every `PROBE_EVERY` and on every flush by
//! replaying the spill file a chunk at a time, and is reopened when the file
//! at its path was deleted or replaced. An exit flush's deadline bounds
//! every wait here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use super::rows::{self, CallsiteRow, EventRow, Inserter, Line, SampleRow, SpanRow};
use super::spill::ReplayError;
use super::{
    busy, identity, insert_registry, open, Fault, Writer, PROBE_BUSY_TIMEOUT, PROBE_EVERY,
};
use crate::callsite;
use crate::health::{FailReason, WriterState};

impl Writer {
    /// Another process sharing the file (or a forked child) may have left
    /// a spill file.
    pub(super) fn look_for_spill(&mut self) {
        if !self.spill_pending && !self.spill_unreadable && self.fault.is_none() {
            self.spill_pending = self.spill.has_lines();
        }
    }

    /// Notes a database failure; the first one of a fault is an event.
    pub(super) fn fail(&mut self, reason: String) {
        let now = Instant::now();
        match &mut self.fault {
            Some(fault) => fault.next_probe = now + PROBE_EVERY,
            None => {
                self.fault = Some(Fault {
                    since: now,
                    since_ns: crate::clock::system_unix_ns(),
                    next_probe: now + PROBE_EVERY,
                    spilled: 0,
                    failed: 0,
                });
                self.event(
                    "spilling",
                    format!(
                        "cannot write to the database ({reason}); records go to {} until it can",
                        self.spill.path().display()
                    ),
                );
            }
        }
        self.publish_state();
    }

    /// Tells `guard.health()` where records go now: the database, the
    /// spill file, or nowhere.
    pub(super) fn publish_state(&self) {
        let state = match &self.fault {
            None => WriterState::Ok,
            Some(fault) => {
                let since_ns = fault.since_ns;
                if self.spill_failing {
                    WriterState::Failed {
                        since_ns,
                        reason: FailReason::SpillFailed,
                    }
                } else if self.spill_full {
                    WriterState::Failed {
                        since_ns,
                        reason: FailReason::SpillFull,
                    }
                } else {
                    WriterState::Spilling { since_ns }
                }
            }
        };
        self.health.set_state(state);
    }

    /// Reopens the database when the file at the path is not the one open
    /// (deleted or replaced): the old one would swallow every write.
    pub(super) fn check_file(&mut self) -> Result<(), String> {
        let now = identity(&self.db_path);
        if now.is_some() && now == self.identity {
            return Ok(());
        }
        let opened = open(&self.db_path, &self.options).map_err(|e| e.to_string())?;
        busy::set_limit(self.lock_wait());
        self.conn = opened.conn;
        self.identity = identity(&self.db_path);
        self.tables.clear();
        self.schema_version = -1;
        // Everything registered goes into the new file again, now: spans
        // replayed from the spill file name callsites stored before it.
        self.callsites.stored = 0;
        self.thread_progress.stored = 0;
        self.store_registry().map_err(|e| e.to_string())?;
        self.event(
            "reopened",
            format!(
                "{} was deleted or replaced; a new database was created there",
                self.db_path.display()
            ),
        );
        Ok(())
    }

    /// Stores the callsites and threads the database does not have yet.
    pub(super) fn store_registry(&mut self) -> rusqlite::Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut insert = Inserter::new(&tx, &mut self.tables);
        let callsites = insert_registry(
            &mut insert,
            self.callsites.stored,
            &self.threads[self.thread_progress.stored..],
        )?;
        tx.commit()?;
        self.callsites.stored += callsites;
        self.thread_progress.stored = self.threads.len();
        Ok(())
    }

    /// When due, replays up to `max_chunks` chunks of the spill file (also
    /// left by an earlier run or another process). With a fault and nothing
    /// to replay, the next batch is the probe instead: the fault only ends
    /// with a write that worked.
    /// Returns the bytes of the file replayed.
    pub(super) fn recover(&mut self, max_chunks: usize) -> u64 {
        let due = match &self.fault {
            Some(fault) => Instant::now() >= fault.next_probe,
            None => true,
        };
        if !due || !self.spill_pending || self.past_deadline() {
            return 0;
        }
        let result = self
            .check_file()
            .and_then(|()| self.bounded_wait(|w| w.replay(max_chunks)));
        match result {
            Ok(0) => 0,
            Ok(bytes) => {
                // Only a replay that stored something shows the database
                // takes writes; with nothing read, the next batch probes.
                self.health.committed();
                self.recovered();
                bytes
            }
            Err(reason) => {
                self.fail(reason);
                0
            }
        }
    }

    /// Replays what the spill file holds now, a chunk at a time, until the
    /// database fails or the flush's deadline passes (the rest waits for
    /// the next round, or the next run). Lines appended meanwhile wait: an
    /// error flood must not hold a flush forever.
    pub(super) fn replay_all(&mut self) {
        let mut left = self.spill.len();
        while self.spill_pending && left > 0 {
            let bytes = self.recover(1);
            if bytes == 0 {
                // Not due, failed, or past the deadline.
                break;
            }
            left = left.saturating_sub(bytes);
        }
    }

    pub(super) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Runs `f` with the busy timeout cut short while a fault lasts (a
    /// probe of a locked file must not hold the writer for the whole
    /// timeout while the queue fills) and to the flush's deadline.
    pub(super) fn bounded_wait<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        busy::set_limit(self.lock_wait());
        let result = f(self);
        busy::set_limit(self.options.busy_timeout);
        result
    }

    /// How long a statement may wait for a lock now.
    pub(super) fn lock_wait(&self) -> Duration {
        let mut wait = self.options.busy_timeout;
        if self.fault.is_some() {
            wait = wait.min(PROBE_BUSY_TIMEOUT);
        }
        if let Some(deadline) = self.deadline {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        wait
    }

    /// A write worked: the fault, if any, is over.
    pub(super) fn recovered(&mut self) {
        if let Some(fault) = self.fault.take() {
            let mut message = format!(
                "the database takes writes again after {:.1} s; {} records spilled meanwhile are replayed from the spill file",
                fault.since.elapsed().as_secs_f64(),
                fault.spilled
            );
            if fault.failed > 0 {
                message.push_str(&format!(
                    "; {} records could not be spilled either and were lost (monitor_stats.failed)",
                    fault.failed
                ));
            }
            self.event("recovered", message);
            // A spill file that failed in this fault says so again in the
            // next one, not from the start of it.
            self.spill_failing = false;
            self.publish_state();
        }
    }

    /// Replays up to `max_chunks` chunks of the spill file into the
    /// database.
    /// Returns the bytes of the file replayed.
    pub(super) fn replay(&mut self, max_chunks: usize) -> Result<u64, String> {
        if !self.spill_pending {
            return Ok(0);
        }
        let result = {
            let conn = &self.conn;
            let tables = &mut self.tables;
            self.spill
                .replay(max_chunks, |lines| replay_chunk(conn, tables, lines))
        };
        let replayed = match &result {
            Ok(replayed) | Err(ReplayError::Store(_, replayed)) => replayed.spans,
            Err(ReplayError::Io(_)) => 0,
        };
        self.stats.replayed += replayed;
        match result {
            Ok(replayed) => {
                if replayed.finished {
                    self.spill_pending = false;
                    self.spill_full = false;
                    self.error_spill.file_replayed();
                    // The next spill starts a new file. The registry stays
                    // where the database has it: inserting a callsite twice
                    // is ignored, skipping one is not.
                    self.callsites.spilled = 0;
                    self.thread_progress.spilled = 0;
                }
                if replayed.malformed > 0 {
                    self.event(
                        "spill_malformed",
                        format!(
                            "{} lines of the spill file were not records (torn by a crash?) and were skipped",
                            replayed.malformed
                        ),
                    );
                }
                Ok(replayed.bytes)
            }
            Err(ReplayError::Store(e, _)) => Err(e.to_string()),
            Err(ReplayError::Io(e)) => {
                // Not the database's fault: it is still written to, and
                // the file is left for a later run to replay.
                self.spill_pending = false;
                self.spill_unreadable = true;
                self.event(
                    "spill_unreadable",
                    format!(
                        "cannot replay the spill file {}: {e}; it is left as it is",
                        self.spill.path().display()
                    ),
                );
                Ok(0)
            }
        }
    }

    /// Appends the batch (with the callsites, threads and events the file
    /// lacks) to the spill file. If even that fails, the records are
    /// counted as failed. Past `spill_max_bytes`, only its error records
    /// are appended; the others are dropped and counted.
    pub(super) fn spill_batch(&mut self) {
        if self.spill.len() >= self.spill_max_bytes {
            self.keep_failures_only();
        }
        super::register_callsites(&self.batch);
        let from = self.callsites.stored.max(self.callsites.spilled);
        let new_callsites = callsite::registered_since(from);
        let threads_from = self
            .thread_progress
            .stored
            .max(self.thread_progress.spilled);
        let pid = self.pid;
        let mut lines: Vec<Line<'_>> = Vec::with_capacity(self.batch.len() + 8);
        lines.extend(
            new_callsites
                .iter()
                .map(|cs| Line::Callsite(CallsiteRow::from(*cs))),
        );
        lines.extend(
            self.threads[threads_from..]
                .iter()
                .cloned()
                .map(Line::Thread),
        );
        lines.extend(self.events.drain(..).map(Line::Event));
        lines.extend(self.batch.iter().map(|r| Line::of(r, &self.rt.clock)));
        lines.extend(
            self.samples
                .iter()
                .map(|s| Line::Sample(SampleRow::new(s, pid))),
        );
        if lines.is_empty() {
            return;
        }
        let spans = self.batch.len() as u64;
        match self.spill.append(&lines) {
            Ok(()) => {
                self.spill_pending = true;
                self.spill_failing = false;
                self.callsites.spilled = from + new_callsites.len();
                self.thread_progress.spilled = self.threads.len();
                self.stats.spilled += spans;
                if let Some(fault) = &mut self.fault {
                    fault.spilled += spans;
                }
            }
            Err(err) => {
                // Not `count_failed`: `lines` borrows the batch.
                self.stats.failed += spans;
                self.health.count_failed(spans);
                // Keep the events for the next write.
                self.events.extend(events_in(lines));
                if let Some(fault) = &mut self.fault {
                    fault.failed += spans;
                }
                if !std::mem::replace(&mut self.spill_failing, true) {
                    let message = format!(
                        "cannot write {spans} spans to the database nor to {}: {err}; until one of them takes writes, records are lost and counted in monitor_stats.failed",
                        self.spill.path().display()
                    );
                    self.event("spill_failed", message);
                }
            }
        }
        self.publish_state();
    }

    /// The spill file is full: drops the batch's non-error records and its
    /// samples, counting the records as dropped.
    pub(super) fn keep_failures_only(&mut self) {
        let before = self.batch.len();
        self.batch.retain(|r| r.status.is_failure());
        let dropped = (before - self.batch.len()) as u64;
        self.samples.clear();
        self.rt
            .queue
            .counters
            .dropped
            .fetch_add(dropped, std::sync::atomic::Ordering::Relaxed);
        if !std::mem::replace(&mut self.spill_full, true) {
            let message = format!(
                "the spill file {} holds spill_max_bytes ({} bytes); until it is replayed, only error records go there, others are dropped and counted in monitor_stats.dropped",
                self.spill.path().display(),
                self.spill_max_bytes
            );
            self.event("spill_full", message);
        }
    }
}

/// The events among spill lines that were not written, to keep them.
pub(super) fn events_in(lines: Vec<Line<'_>>) -> impl Iterator<Item = EventRow> + '_ {
    lines.into_iter().filter_map(|line| match line {
        Line::Event(e) => Some(e),
        _ => None,
    })
}

/// Stores one chunk of spill lines in one transaction.
fn replay_chunk(
    conn: &Connection,
    tables: &mut HashMap<u64, String>,
    lines: &[Line<'static>],
) -> rusqlite::Result<u64> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Partitions may have come and gone since the lines were spilled.
    tables.clear();
    let mut insert = Inserter::new(&tx, tables);
    let mut events = 0;
    for line in lines {
        match line {
            Line::Callsite(row) => insert.callsites([row])?,
            Line::Thread(row) => insert.threads([row])?,
            Line::Span(_) => {}
            Line::TracingEvent(row) => {
                events += insert.tracing_events([rows::TracingEventRow {
                    level: std::borrow::Cow::Borrowed(&row.level),
                    message: row.message.as_deref().map(std::borrow::Cow::Borrowed),
                    fields: row.fields.clone(),
                    ..*row
                }])?;
            }
            Line::Sample(row) => insert.samples([row])?,
            Line::Stats(row) => insert.stats(row)?,
            Line::Event(row) => insert.event(row)?,
        }
    }
    // A span already stored (a replay cut short after its commit) is
    // refused by its primary key and skipped.
    let stored = insert.spans(lines.iter().filter_map(|line| match line {
        Line::Span(row) => Some(SpanRow {
            error: row.error.as_deref().map(std::borrow::Cow::Borrowed),
            fields: row.fields.clone(),
            ..*row
        }),
        _ => None,
    }))?;
    insert.finish()?;
    tx.commit()?;
    Ok(stored.written + events)
}
