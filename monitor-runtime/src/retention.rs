//! Retention: whole hourly partitions are dropped once their hour ended more
//! than `retention.hours` ago, after a copy to `archive_dir` when one is set;
//! then the space goes back to the filesystem.
//!
//! A pass runs on its own connection. SQLite's write lock orders it with the
//! writer's batches (both wait up to the busy timeout), and the writer sees
//! the dropped tables through `PRAGMA schema_version`, so nothing is lost or
//! blocked for longer than one `DROP`.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::clock::Clock;
use crate::config::RetentionConfig;
use crate::error::Error;
use crate::writer::schema::{self, Family, FAMILIES, HOUR_NS};

/// A partition a pass dropped, or would drop with `dry_run`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredPartition {
    /// `spans_YYYYMMDDHH` or `resource_samples_YYYYMMDDHH`.
    pub table: String,
    /// The start of its UTC hour, in Unix nanoseconds.
    pub hour_start_ns: u64,
    /// Its rows.
    pub rows: u64,
    /// The bytes its pages take in the file.
    pub bytes: u64,
    /// The archive file it was copied to before the drop.
    pub archive: Option<PathBuf>,
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Nothing was changed: the partitions are those a pass would drop.
    pub dry_run: bool,
    /// The partitions dropped (or that would be), oldest first.
    pub expired: Vec<ExpiredPartition>,
    /// The database file's size before the pass.
    pub file_bytes_before: u64,
    /// Its size after the pass (after `incremental_vacuum` with `vacuum`).
    pub file_bytes_after: u64,
}

impl RetentionReport {
    /// Rows in the expired partitions.
    pub fn rows(&self) -> u64 {
        self.expired.iter().map(|p| p.rows).sum()
    }
}

/// Runs one retention pass over the database at `db` as of `now_ns` (Unix
/// nanoseconds): every partition whose whole hour ended more than
/// `rules.hours` hours before `now_ns` is archived (with `archive_dir`) and
/// dropped. The current hour is never touched.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{retention, Callsite, Clock, Config, EnteredSpan, SpanKind};
///
/// static OLD: Callsite = Callsite::new("old", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// const HOUR: u64 = 3_600_000_000_000;
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("m.db");
/// let clock = Clock::starting_at(490_000 * HOUR);
/// let config = Config::default()
///     .db_path(&db)
///     .clock(clock.clone())
///     .resource_interval(std::time::Duration::ZERO);
/// let guard = monitor_runtime::init_with(config.clone())?;
/// drop(EnteredSpan::new(&OLD));
/// guard.flush();
///
/// // Ten hours later, with the default 6 hours of retention:
/// let report = retention::run_pass(&db, &config.retention, 490_010 * HOUR, false)?;
/// assert_eq!(report.expired.len(), 1);
/// assert_eq!(report.rows(), 1);
/// # Ok(()) }
/// ```
pub fn run_pass(
    db: &Path,
    rules: &RetentionConfig,
    now_ns: u64,
    dry_run: bool,
) -> Result<RetentionReport, Error> {
    let fail = |reason: String| Error::Retention {
        path: db.to_owned(),
        reason,
    };
    if rules.hours < 1 {
        return Err(fail(format!(
            "`retention.hours`: expected a whole number of hours of at least 1, got {}",
            rules.hours
        )));
    }
    let archive_dir = (!rules.archive_dir.as_os_str().is_empty()).then_some(&rules.archive_dir);
    if let Some(dir) = archive_dir {
        check_archive_dir(dir).map_err(fail)?;
    }
    if !db.exists() {
        return Err(fail("no such file".into()));
    }
    // A dry run only reads: it must not even checkpoint a leftover WAL.
    let access = if dry_run {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(db, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| fail(format!("cannot open: {e}")))?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)
        .map_err(|e| fail(e.to_string()))?;
    schema::check_ours(&conn).map_err(&fail)?;

    let file_bytes_before = file_size(db);
    // Hours that ended at or before this are expired.
    // More hours than the clock holds: nothing can be that old.
    let cutoff = (rules.hours as u64)
        .checked_mul(HOUR_NS)
        .map_or(0, |window| now_ns.saturating_sub(window));
    let mut expired = Vec::new();
    for family in FAMILIES {
        for table in family.partitions(&conn).map_err(|e| fail(e.to_string()))? {
            let Some(hour_start_ns) = family.hour_of(&table) else {
                continue;
            };
            if hour_start_ns + HOUR_NS > cutoff {
                continue;
            }
            let (rows, bytes) = measure(&conn, &table).map_err(|e| fail(e.to_string()))?;
            expired.push(ExpiredPartition {
                table,
                hour_start_ns,
                rows,
                bytes,
                archive: None,
            });
        }
    }
    expired.sort_by(|a, b| (a.hour_start_ns, &a.table).cmp(&(b.hour_start_ns, &b.table)));
    let mut report = RetentionReport {
        dry_run,
        expired,
        file_bytes_before,
        file_bytes_after: file_bytes_before,
    };
    if dry_run || report.expired.is_empty() {
        return Ok(report);
    }

    let mut archived = vec![None; report.expired.len()];
    if let Some(dir) = archive_dir {
        for (partition, archived) in report.expired.iter_mut().zip(&mut archived) {
            let file = dir.join(format!("spans_{}.db", hour_digits(&partition.table)));
            *archived = Some(archive(&conn, &partition.table, &file).map_err(|e| {
                fail(format!(
                    "cannot archive {} to {}: {e}",
                    partition.table,
                    file.display()
                ))
            })?);
            partition.archive = Some(file);
        }
    }
    let dropped = drop_partitions(&conn, &report.expired, &archived)
        .map_err(|e| fail(format!("cannot drop: {e}")))?;
    report.expired.retain(|p| dropped.contains(&p.table));
    if rules.vacuum {
        vacuum(&conn).map_err(|e| fail(format!("cannot vacuum: {e}")))?;
        // Passive: it never waits for a reader, which would hold the writer
        // up behind it; the file shrinks at this or a later checkpoint.
        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
    report.file_bytes_after = file_size(db);
    Ok(report)
}

/// Pages freed per vacuum transaction: the writer waits at most for one.
const VACUUM_PAGES: i64 = 2048;

/// Frees every page on the free list, a few thousand per transaction so that
/// the writer's batches go in between. The pragma frees pages as it is
/// stepped, so each run is stepped to the end.
fn vacuum(conn: &Connection) -> rusqlite::Result<()> {
    // 2 = incremental; a file made without it cannot give pages back.
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode != 2 {
        return Ok(());
    }
    let mut left = i64::MAX;
    loop {
        let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        // Stop when done, or when a run freed nothing (never loop for ever).
        if free == 0 || free >= left {
            return Ok(());
        }
        left = free;
        let mut stmt = conn.prepare(&format!("PRAGMA incremental_vacuum({VACUUM_PAGES})"))?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
    }
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// `YYYYMMDDHH` of a partition name.
fn hour_digits(table: &str) -> &str {
    &table[table.len() - 10..]
}

fn check_archive_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Err(e) => Err(format!("`retention.archive_dir` {shown}: {e}")),
        Ok(m) if !m.is_dir() => Err(format!("`retention.archive_dir` {shown}: not a directory")),
        Ok(_) => {
            // Permissions say little (root ignores them): try. The name is
            // not predictable and `create_new` never follows a link planted
            // there, so no other file is touched.
            static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let probe = dir.join(format!(
                ".monitor-probe-{}-{nanos:09}-{}",
                std::process::id(),
                PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&probe)
                .and_then(|_| std::fs::remove_file(&probe))
                .map_err(|e| format!("`retention.archive_dir` {shown}: not writable: {e}"))
        }
    }
}

/// Rows and bytes of one table (`dbstat` is compiled into the bundled SQLite).
fn measure(conn: &Connection, table: &str) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        &format!(
            "SELECT (SELECT count(*) FROM {}), \
                    (SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1)",
            schema::quote_ident(table)
        ),
        [table],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )
}

fn family_of(table: &str) -> &'static Family {
    FAMILIES
        .iter()
        .find(|f| table.starts_with(f.prefix))
        .copied()
        .unwrap_or(&schema::SPANS)
}

/// Copies `table` into the monitor database `file` (created if needed) with
/// the callsites and threads its rows name, and commits before returning.
/// Running it again after a crash adds nothing twice.
fn archive(conn: &Connection, table: &str, file: &Path) -> Result<u64, String> {
    {
        let archive = schema::open(file, &schema::FileOptions::default())
            .map_err(|e| e.to_string())?
            .conn;
        let family = family_of(table);
        family
            .create_partition(&archive, table)
            .and_then(|_| family.rebuild_views(&archive))
            .map_err(|e| e.to_string())?;
    }
    conn.execute("ATTACH DATABASE ?1 AS archive", [file.to_string_lossy()])
        .map_err(|e| e.to_string())?;
    let quoted = schema::quote_ident(table);
    // A deferred transaction: `main` is only read, so the writer is not
    // held out while the rows are copied. Rows already archived (a pass
    // re-run after a failure) are not added twice; samples have no key, so
    // they are compared whole.
    let mut copy = format!(
        "BEGIN;
         INSERT OR IGNORE INTO archive.{quoted} SELECT * FROM main.{quoted}
            EXCEPT SELECT * FROM archive.{quoted};"
    );
    // Spans and events name callsites and threads; samples do not.
    if family_of(table).prefix != schema::RESOURCE_SAMPLES.prefix {
        copy += &format!(
            "INSERT OR IGNORE INTO archive.callsites SELECT * FROM main.callsites
                WHERE id IN (SELECT callsite_id FROM main.{quoted});
             INSERT OR IGNORE INTO archive.threads SELECT * FROM main.threads
                WHERE id IN (SELECT thread_id FROM main.{quoted});"
        );
    }
    copy += "COMMIT;";
    let copied = conn.execute_batch(&copy).and_then(|()| {
        conn.query_row(&rows_sql(&format!("archive.{quoted}")), [], |r| {
            r.get::<_, i64>(0)
        })
    });
    if copied.is_err() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    let detached = conn.execute_batch("DETACH DATABASE archive");
    let archived = copied.map_err(|e| e.to_string())?;
    detached.map_err(|e| e.to_string())?;
    // Readable on read-only media, with no -wal or -shm beside it.
    let archive = Connection::open(file).map_err(|e| e.to_string())?;
    let _mode: String = archive
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    Ok(archived as u64)
}

/// Counts the distinct rows of a partition: the copy compares rows whole
/// (`EXCEPT`), so two identical rows (samples and events have no key) are
/// one in the archive, and a count of all rows would never match.
fn rows_sql(table: &str) -> String {
    format!("SELECT count(*) FROM (SELECT DISTINCT * FROM {table})")
}

/// Drops the partitions in one transaction, except an archived one that
/// gained rows since its copy (a late span): it waits for the next pass.
/// Returns the tables dropped.
fn drop_partitions(
    conn: &Connection,
    expired: &[ExpiredPartition],
    archived: &[Option<u64>],
) -> rusqlite::Result<Vec<String>> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let mut dropped = Vec::new();
    // Spans the OTLP export has not sent yet are lost to it: counted.
    let mut unsent = 0;
    for (partition, archived) in expired.iter().zip(archived) {
        let quoted = schema::quote_ident(&partition.table);
        if let Some(archived) = archived {
            let rows: i64 = tx.query_row(&rows_sql(&quoted), [], |r| r.get(0))?;
            if rows as u64 != *archived {
                continue;
            }
        }
        if partition.table.starts_with(schema::SPANS.prefix) {
            unsent += crate::export_cursor::unsent_in(&tx, &partition.table)?;
        }
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {quoted}"))?;
        dropped.push(partition.table.clone());
    }
    if unsent > 0 {
        let now_ns = crate::clock::system_unix_ns() as i64;
        let pid = std::process::id();
        tx.execute(
            "INSERT INTO export_stats (ts_ns, pid, sent, refused, failed, retries, lost, pending) \
             VALUES (?1, ?2, 0, 0, 0, 0, ?3, 0)",
            rusqlite::params![now_ns, pid, unsent as i64],
        )?;
        tx.execute(
            "INSERT INTO monitor_events (ts_ns, pid, kind, message) VALUES (?1, ?2, 'export_lost', ?3)",
            rusqlite::params![
                now_ns,
                pid,
                format!("retention dropped {unsent} spans the OTLP export had not sent yet")
            ],
        )?;
    }
    for family in FAMILIES {
        family.rebuild_views(&tx)?;
    }
    tx.commit()?;
    Ok(dropped)
}

/// The thread that runs a pass every `cleanup_interval_secs`.
pub(crate) struct RetentionThread {
    control: Sender<Control>,
    handle: Option<JoinHandle<()>>,
}

enum Control {
    RunNow(Sender<Result<RetentionReport, Error>>),
    Stop,
}

impl RetentionThread {
    pub(crate) fn spawn(
        db: PathBuf,
        rules: RetentionConfig,
        clock: Clock,
    ) -> std::io::Result<RetentionThread> {
        let (control, requests) = crossbeam_channel::unbounded();
        let every = Duration::from_secs(rules.cleanup_interval_secs.max(1));
        let handle = std::thread::Builder::new()
            .name("monitor-retention".into())
            .spawn(move || {
                // One message per run of failures, not one per pass.
                let mut failing = false;
                loop {
                    let reply = match requests.recv_timeout(every) {
                        Ok(Control::RunNow(reply)) => Some(reply),
                        Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                        Err(RecvTimeoutError::Timeout) => None,
                    };
                    // A bug in a pass must not end retention silently.
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_pass(&db, &rules, clock.now_ns(), false)
                    }))
                    .unwrap_or_else(|_| {
                        Err(Error::Retention {
                            path: db.clone(),
                            reason: "the pass panicked".into(),
                        })
                    });
                    match &result {
                        Err(e) if !failing => {
                            failing = true;
                            crate::report::report(format_args!(
                                "retention pass failed, retrying every {}s: {e}",
                                every.as_secs()
                            ));
                        }
                        Err(_) => {}
                        Ok(_) => failing = false,
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            })?;
        Ok(RetentionThread {
            control,
            handle: Some(handle),
        })
    }

    /// Runs a pass now, on the retention thread, and returns its report.
    pub(crate) fn run_now(&self) -> Result<RetentionReport, Error> {
        let (reply, result) = crossbeam_channel::bounded(1);
        self.control
            .send(Control::RunNow(reply))
            .ok()
            .and_then(|()| result.recv().ok())
            .unwrap_or_else(|| {
                Err(Error::Retention {
                    path: PathBuf::new(),
                    reason: "the retention thread has stopped".into(),
                })
            })
    }
}

impl Drop for RetentionThread {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
