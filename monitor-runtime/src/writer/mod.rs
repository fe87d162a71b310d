//! The writer thread: the only owner of the database connection.
//!
//! It drains the error lane first, then the normal lane, in batches as large
//! as the backlog (up to `MAX_BATCH`), one `BEGIN IMMEDIATE` transaction per
//! batch with cached prepared statements. It sweeps every thread's buffer
//! each `flush_interval_ms` and on `flush`, creates hourly partitions on
//! demand, and writes a `monitor_stats` row periodically, on flush and at
//! shutdown.

pub(crate) mod schema;

use std::collections::HashMap;
use std::io;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};
use rusqlite::{params, Connection, TransactionBehavior};

use crate::callsite;
use crate::config::Config;
use crate::queue::NewThread;
use crate::record::Record;
use crate::resources::Sample;
use crate::runtime::Runtime;

pub(crate) use schema::open;
pub use schema::SCHEMA_VERSION;
use schema::{RESOURCE_SAMPLES, SPANS};

/// Rows per transaction at most: bounds the latency of a flush and memory.
const MAX_BATCH: usize = 65_536;
/// A stats row at least this often while there is activity.
const STATS_EVERY: Duration = Duration::from_secs(10);

/// Requests from the guard to the writer.
pub(crate) enum Control {
    /// Commit everything enqueued so far, then answer.
    Flush(Sender<()>),
    /// Answer, then take nothing until `held` disconnects.
    Hold { ack: Sender<()>, held: Receiver<()> },
    /// Drain, write the final stats row, and stop.
    Shutdown,
}

/// Starts the writer thread with an open connection.
pub(crate) fn spawn(
    conn: Connection,
    rt: &'static Runtime,
    config: &Config,
) -> io::Result<(Sender<Control>, JoinHandle<()>)> {
    let (control_tx, control) = crossbeam_channel::unbounded();
    let writer = Writer {
        conn,
        rt,
        control,
        sweep_every: Duration::from_millis(config.queue.flush_interval_ms),
        batch: Vec::new(),
        samples: Vec::new(),
        callsites_stored: 0,
        threads_pending: Vec::new(),
        tables: HashMap::new(),
        schema_version: -1,
        stats: BatchStats::default(),
        pid: std::process::id(),
        failure_reported: false,
    };
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
    batches: u64,
    rows_max: u64,
    micros_total: u64,
    micros_max: u64,
}

struct Writer {
    conn: Connection,
    rt: &'static Runtime,
    control: Receiver<Control>,
    sweep_every: Duration,
    batch: Vec<Record>,
    /// Resource samples to write with the next batch.
    samples: Vec<Sample>,
    /// How many of the process's registered callsites are stored.
    callsites_stored: usize,
    /// Threads registered but not stored yet (a failed batch retries them).
    threads_pending: Vec<NewThread>,
    /// Partition name by hour, for partitions known to exist.
    tables: HashMap<u64, String>,
    /// `PRAGMA schema_version` when `tables` was last trusted: another
    /// process (or retention) may add or drop partitions.
    schema_version: i64,
    stats: BatchStats,
    pid: u32,
    failure_reported: bool,
}

/// Says something on stderr without ever panicking (stderr may be closed).
pub(crate) fn report(message: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "monitor: {message}");
}

/// Runs when the writer thread ends, however it ends: producers must not
/// wait for a writer that is gone, and spans stop being recorded.
struct OnExit(&'static Runtime);

impl Drop for OnExit {
    fn drop(&mut self) {
        self.0.queue.close();
        if std::thread::panicking() {
            crate::runtime::deactivate(self.0);
            report(format_args!(
                "the writer thread panicked; spans are no longer recorded"
            ));
        }
    }
}

impl Writer {
    fn run(mut self) {
        let _on_exit = OnExit(self.rt);
        let mut next_sweep = Instant::now() + self.sweep_every;
        let mut next_stats = Instant::now() + STATS_EVERY;
        loop {
            loop {
                match self.control.try_recv() {
                    Ok(Control::Flush(ack)) => {
                        self.drain_all();
                        self.store_stats();
                        let _ = ack.send(());
                    }
                    Ok(Control::Hold { ack, held }) => {
                        let _ = ack.send(());
                        let _ = held.recv();
                    }
                    Ok(Control::Shutdown) | Err(TryRecvError::Disconnected) => {
                        // From here on a span that ends is counted as dropped
                        // (it can no longer be written), not lost unseen.
                        self.rt.queue.close();
                        self.drain_all();
                        self.store_stats();
                        return;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            while self.rt.queue.wake_rx.try_recv().is_ok() {}

            let _ = self.take_available(usize::MAX, usize::MAX);
            self.samples.extend(self.rt.queue.samples_rx.try_iter());
            let now = Instant::now();
            if now >= next_sweep {
                self.rt.queue.sweep(&mut self.batch);
                next_sweep = now + self.sweep_every;
            }
            if now >= next_stats {
                if self.has_news() {
                    self.store_stats();
                }
                next_stats = now + STATS_EVERY;
            }
            if !self.batch.is_empty() || !self.samples.is_empty() {
                self.write_batch();
                continue;
            }
            let mut select = Select::new();
            select.recv(&self.control);
            select.recv(&self.rt.queue.wake_rx);
            let _ = select.ready_timeout(next_sweep.saturating_duration_since(now));
        }
    }

    /// Moves records from the lanes into the batch, errors first, taking at
    /// most `errors` error records and `chunks` normal chunks; returns how
    /// many of each it took.
    fn take_available(&mut self, errors: usize, chunks: usize) -> (usize, usize) {
        let queue = &self.rt.queue;
        let mut took = (0, 0);
        while took.0 < errors && self.batch.len() < MAX_BATCH {
            match queue.errors_rx.try_recv() {
                Ok(record) => self.batch.push(record),
                Err(_) => break,
            }
            took.0 += 1;
        }
        while took.1 < chunks && self.batch.len() < MAX_BATCH {
            match queue.normal_rx.try_recv() {
                Ok(mut chunk) => {
                    queue.taken(chunk.len());
                    self.batch.append(&mut chunk);
                    queue.recycle(chunk);
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
        let mut errors = self.rt.queue.errors_rx.len();
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
        let counters = &self.rt.queue.counters;
        self.stats.batches > 0
            || self.stats.failed > 0
            || counters.enqueued.load(std::sync::atomic::Ordering::Relaxed) > 0
            || counters.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0
            || counters
                .sampled_out
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
    }

    /// Writes the batch in one transaction; on failure retries once, then
    /// counts the rows as failed and says so on stderr once.
    fn write_batch(&mut self) {
        self.threads_pending
            .extend(self.rt.queue.take_new_threads());
        let started = Instant::now();
        let result = self.insert_batch().or_else(|first| {
            self.tables.clear();
            self.schema_version = -1;
            self.insert_batch().map_err(|_| first)
        });
        let micros = started.elapsed().as_micros() as u64;
        let rows = self.batch.len() as u64;
        match result {
            Ok((written, errors)) => {
                self.stats.written += written;
                self.stats.errors_written += errors;
                self.stats.failed += rows - written;
                self.threads_pending.clear();
            }
            Err(err) => {
                self.stats.failed += rows;
                if !self.failure_reported {
                    self.failure_reported = true;
                    report(format_args!(
                        "cannot write {rows} spans to the database: {err} (counted as failed in monitor_stats)"
                    ));
                }
            }
        }
        self.stats.batches += 1;
        self.stats.rows_max = self.stats.rows_max.max(rows);
        self.stats.micros_total += micros;
        self.stats.micros_max = self.stats.micros_max.max(micros);
        self.batch.clear();
        self.samples.clear();
    }

    /// (rows written, error rows written).
    fn insert_batch(&mut self) -> rusqlite::Result<(u64, u64)> {
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA schema_version", [], |row| row.get(0))?;
        if version != self.schema_version {
            self.tables.clear();
        }
        let new_callsites = callsite::registered_since(self.callsites_stored);
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO callsites (id, name, module, group_name, kind, file, line) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for cs in &new_callsites {
                stmt.execute(params![
                    cs.id() as i64,
                    cs.name(),
                    cs.module(),
                    cs.group(),
                    cs.kind().as_str(),
                    cs.file(),
                    cs.line()
                ])?;
            }
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO threads (id, pid, name) VALUES (?1, ?2, ?3)",
            )?;
            for thread in &self.threads_pending {
                stmt.execute(params![thread.id as i64, self.pid, thread.name])?;
            }
        }

        let (mut written, mut errors) = (0, 0);
        let mut failed_rows = 0u64;
        let mut first_row_error = None;
        let mut current: Option<(u64, rusqlite::CachedStatement<'_>)> = None;
        let mut views_stale = false;
        for record in &self.batch {
            let hour = record.start_ns / schema::HOUR_NS;
            let stmt = match &mut current {
                Some((h, stmt)) if *h == hour => stmt,
                _ => {
                    let table = match self.tables.get(&hour) {
                        Some(table) => table.clone(),
                        None => {
                            let table = SPANS.table_for(record.start_ns);
                            views_stale |= SPANS.create_partition(&tx, &table)?;
                            self.tables.insert(hour, table.clone());
                            table
                        }
                    };
                    &mut current
                        .insert((hour, tx.prepare_cached(&insert_sql(&table))?))
                        .1
                }
            };
            let result = bind_span(stmt, record).and_then(|()| stmt.raw_execute());
            match result {
                Ok(_) => {
                    written += 1;
                    errors += u64::from(record.status.is_failure());
                }
                // One bad row (an id collision) must not sink the batch; it
                // is counted as failed. Anything else aborts the batch.
                Err(rusqlite::Error::SqliteFailure(e, msg))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    failed_rows += 1;
                    first_row_error.get_or_insert(msg);
                }
                Err(other) => return Err(other),
            }
        }
        drop(current);
        if views_stale {
            SPANS.rebuild_views(&tx)?;
        }
        // Samples in a savepoint of their own: a bad sample table must not
        // sink the spans of the batch.
        if !self.samples.is_empty() {
            tx.execute_batch("SAVEPOINT samples")?;
            match insert_samples(&tx, &self.samples) {
                Ok(()) => tx.execute_batch("RELEASE samples")?,
                Err(err) => {
                    tx.execute_batch("ROLLBACK TO samples; RELEASE samples")?;
                    if !self.failure_reported {
                        self.failure_reported = true;
                        report(format_args!(
                            "cannot write {} resource samples: {err}",
                            self.samples.len()
                        ));
                    }
                }
            }
        }
        // Read inside the transaction: another process may change the
        // schema as soon as it commits.
        let version = tx.query_row("PRAGMA schema_version", [], |row| row.get(0))?;
        tx.commit()?;
        self.schema_version = version;
        self.callsites_stored += new_callsites.len();
        if let Some(msg) = first_row_error {
            if !self.failure_reported {
                self.failure_reported = true;
                report(format_args!(
                    "{failed_rows} spans rejected by the database: {msg:?} (counted as failed in monitor_stats)"
                ));
            }
        }
        Ok((written, errors))
    }

    /// Appends a `monitor_stats` row with the counts since the previous one.
    fn store_stats(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let counters = &self.rt.queue.counters;
        let enqueued = counters.enqueued.swap(0, Relaxed);
        let dropped = counters.dropped.swap(0, Relaxed);
        let sampled_out = counters.sampled_out.swap(0, Relaxed);
        let s = std::mem::take(&mut self.stats);
        let avg = s.micros_total.checked_div(s.batches).unwrap_or(0);
        let result = self.conn.execute(
            "INSERT INTO monitor_stats (ts_ns, pid, enqueued, written, dropped, errors_written, failed, \
             queue_depth, batches, batch_rows_max, batch_us_avg, batch_us_max, sampled_out) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                self.rt.clock.now_ns() as i64,
                self.pid,
                enqueued as i64,
                s.written as i64,
                dropped as i64,
                s.errors_written as i64,
                s.failed as i64,
                self.rt.queue.depth() as i64,
                s.batches as i64,
                s.rows_max as i64,
                avg as i64,
                s.micros_max as i64,
                sampled_out as i64,
            ],
        );
        if let Err(err) = result {
            // Keep the counts for the next row rather than lose them.
            counters.enqueued.fetch_add(enqueued, Relaxed);
            counters.dropped.fetch_add(dropped, Relaxed);
            counters.sampled_out.fetch_add(sampled_out, Relaxed);
            self.stats = s;
            if !self.failure_reported {
                self.failure_reported = true;
                report(format_args!("cannot write monitor_stats: {err}"));
            }
        }
    }
}

/// Binds one span row. Binding column by column skips the `&dyn ToSql`
/// slice and the parameter-count check of `execute`: the batch loop is the
/// writer's whole cost.
fn bind_span(stmt: &mut rusqlite::Statement<'_>, r: &Record) -> rusqlite::Result<()> {
    let opt = |v: u64| (v != crate::record::NULL).then_some(v as i64);
    stmt.raw_bind_parameter(1, r.span_id as i64)?;
    stmt.raw_bind_parameter(2, (r.parent_id != 0).then_some(r.parent_id as i64))?;
    stmt.raw_bind_parameter(3, r.trace_id as i64)?;
    stmt.raw_bind_parameter(4, r.callsite_id as i64)?;
    stmt.raw_bind_parameter(5, r.thread_id as i64)?;
    stmt.raw_bind_parameter(6, r.status as u8)?;
    stmt.raw_bind_parameter(7, r.error())?;
    stmt.raw_bind_parameter(8, r.start_ns as i64)?;
    stmt.raw_bind_parameter(9, r.duration_ns as i64)?;
    stmt.raw_bind_parameter(10, r.busy_ns as i64)?;
    stmt.raw_bind_parameter(11, opt(r.items))?;
    stmt.raw_bind_parameter(12, r.fields_json())?;
    stmt.raw_bind_parameter(13, opt(r.rss_bytes))?;
    stmt.raw_bind_parameter(14, opt(r.cpu_ns))?;
    stmt.raw_bind_parameter(15, opt(r.alloc_bytes))?;
    Ok(())
}

/// Writes resource samples into their hours' partitions.
fn insert_samples(tx: &rusqlite::Transaction<'_>, samples: &[Sample]) -> rusqlite::Result<()> {
    let mut views_stale = false;
    for sample in samples {
        let table = RESOURCE_SAMPLES.table_for(sample.ts_ns);
        views_stale |= RESOURCE_SAMPLES.create_partition(tx, &table)?;
        let r = &sample.reading;
        let int = |v: Option<u64>| v.map(|n| n as i64);
        tx.prepare_cached(&format!(
            "INSERT INTO \"{table}\" (ts_ns, pid, cpu_percent, rss_bytes, virtual_bytes, threads, \
             system_memory_used_bytes, system_memory_total_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            sample.ts_ns as i64,
            std::process::id(),
            r.cpu_percent,
            int(r.rss_bytes),
            int(r.virtual_bytes),
            int(r.threads),
            int(r.system_memory_used_bytes),
            int(r.system_memory_total_bytes),
        ])?;
    }
    if views_stale {
        RESOURCE_SAMPLES.rebuild_views(tx)?;
    }
    Ok(())
}

fn insert_sql(table: &str) -> String {
    format!(
        "INSERT INTO \"{table}\" (span_id, parent_id, trace_id, callsite_id, thread_id, status, error, \
         start_ns, duration_ns, busy_ns, items, fields, rss_bytes, cpu_ns, alloc_bytes) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    )
}
