//! Error records the error lane has no room for (`queue.error_max_bytes`).
//!
//! Errors are never dropped, but a flood of them must not hold the
//! process's memory: past the bound, the thread that ends an error span
//! writes it as a spill line itself, into a small buffer that it appends to
//! the spill file once full (the writer empties it every sweep and on
//! `flush`). The writer replays those lines as it replays any spill, a
//! chunk between batches. Each append carries the callsites and threads the
//! lines name, so a spill left by a crash replays on its own. The buffer's
//! mutex is not held while appending: a thread waiting for the file's lock
//! (a replay holds it for a chunk) holds up no other thread.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use super::rows::{CallsiteRow, Line, ThreadRow};
use super::spill::{push_line, SpillFile};
use crate::clock::Clock;
use crate::queue::ErrorOverflow;
use crate::record::Record;

/// Bytes of lines a thread buffers before it appends them.
const APPEND_AT: usize = 64 << 10;

pub(crate) struct ErrorSpill {
    file: SpillFile,
    pid: u32,
    /// Converts the records' clock readings, as the writer does.
    clock: Clock,
    buffer: Mutex<Buffer>,
    /// Records appended to the file since the writer last took the counts.
    spilled: AtomicU64,
    /// Records that reached neither the lane nor the file.
    failed: AtomicU64,
    /// Lines went to the file since the writer last looked.
    appended: AtomicBool,
}

#[derive(Default)]
struct Buffer {
    text: Vec<u8>,
    /// Records in `text`.
    records: u64,
    /// Threads whose line is in `text`.
    new_threads: Vec<u64>,
    /// Callsites of the registry in the file (the registry only grows).
    callsites: usize,
    /// Threads whose line is in the file.
    threads: HashSet<u64>,
    /// The first failure to append, for the writer to report once.
    failure: Option<String>,
}

/// Lines taken out of the buffer to append.
struct Batch {
    text: Vec<u8>,
    records: u64,
    new_threads: Vec<u64>,
    /// The registry's length before this batch's callsites.
    callsites_from: usize,
    callsites_to: usize,
}

/// What the error spill did since the writer last asked.
#[derive(Default)]
pub(crate) struct Taken {
    pub(crate) spilled: u64,
    pub(crate) failed: u64,
    pub(crate) failure: Option<String>,
}

impl ErrorSpill {
    /// The error spill of the database at `db`, for records timed by
    /// `clock`.
    pub(crate) fn beside(db: &Path, mode: u32, clock: Clock) -> ErrorSpill {
        ErrorSpill {
            file: SpillFile::beside(db, mode),
            pid: std::process::id(),
            clock,
            buffer: Mutex::default(),
            spilled: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            appended: AtomicBool::new(false),
        }
    }

    /// Appends what is buffered (the writer, each sweep and on `flush`).
    pub(crate) fn append_buffered(&self) {
        let batch = {
            let mut buffer = self.lock();
            (buffer.records > 0).then(|| Self::take_batch(&mut buffer))
        };
        if let Some(batch) = batch {
            self.append(batch);
        }
    }

    /// The spill file was replayed and removed: the next one needs every
    /// callsite and thread line again.
    pub(crate) fn file_replayed(&self) {
        let mut buffer = self.lock();
        buffer.callsites = 0;
        buffer.threads.clear();
        let pending = std::mem::take(&mut buffer.new_threads);
        buffer.threads.extend(pending.iter().copied());
        buffer.new_threads = pending;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the file got lines since the previous call: the writer has
    /// a replay to do.
    pub(crate) fn take_appended(&self) -> bool {
        self.appended.swap(false, Ordering::AcqRel)
    }

    /// The counts since the previous call, for `monitor_stats`.
    pub(crate) fn take(&self) -> Taken {
        let failure = self.lock().failure.take();
        Taken {
            spilled: self.spilled.swap(0, Ordering::Relaxed),
            failed: self.failed.swap(0, Ordering::Relaxed),
            failure,
        }
    }

    /// Takes the buffered lines, with the callsites registered since the
    /// last batch in front, so that the spans after them are whole even
    /// when this file is all a later run gets.
    fn take_batch(buffer: &mut Buffer) -> Batch {
        let callsites = crate::callsite::registered_since(buffer.callsites);
        let mut text = Vec::with_capacity(callsites.len() * 160 + buffer.text.len());
        for cs in &callsites {
            let _ = push_line(&mut text, &Line::Callsite(CallsiteRow::from(*cs)));
        }
        text.append(&mut buffer.text);
        let batch = Batch {
            text,
            records: std::mem::take(&mut buffer.records),
            new_threads: std::mem::take(&mut buffer.new_threads),
            callsites_from: buffer.callsites,
            callsites_to: buffer.callsites + callsites.len(),
        };
        // Counted as in the file now; given back if the append fails.
        buffer.callsites = batch.callsites_to;
        batch
    }

    fn append(&self, batch: Batch) {
        let records = batch.records;
        match self.file.append_text(&batch.text) {
            Ok(()) => {
                self.spilled.fetch_add(records, Ordering::Relaxed);
                self.appended.store(true, Ordering::Release);
            }
            Err(err) => {
                self.failed.fetch_add(records, Ordering::Relaxed);
                let mut buffer = self.lock();
                // Those lines are not in the file: later ones must carry
                // them again.
                buffer.callsites = buffer.callsites.min(batch.callsites_from);
                for id in &batch.new_threads {
                    buffer.threads.remove(id);
                }
                buffer.failure.get_or_insert_with(|| {
                    format!(
                        "cannot append {records} error records past queue.error_max_bytes to {}: {err}",
                        self.file.path().display()
                    )
                });
            }
        }
    }
}

impl ErrorOverflow for ErrorSpill {
    fn take(&self, record: Record) {
        let mut guard = self.lock();
        let buffer = &mut *guard;
        if record.thread_id != 0 && buffer.threads.insert(record.thread_id) {
            buffer.new_threads.push(record.thread_id);
            let row = ThreadRow {
                id: record.thread_id as i64,
                pid: self.pid,
                name: crate::queue::current_thread_name(),
            };
            let _ = push_line(&mut buffer.text, &Line::Thread(row));
        }
        if push_line(&mut buffer.text, &Line::of(&record, &self.clock)).is_err() {
            // Serialising into memory fails only on a non-string map key,
            // which a span row has none of.
            self.failed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        buffer.records += 1;
        if buffer.text.len() >= APPEND_AT {
            let batch = Self::take_batch(buffer);
            drop(guard);
            self.append(batch);
        }
    }
}
