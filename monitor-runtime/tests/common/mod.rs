//! Helpers shared by the runtime's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use monitor_runtime::{Callsite, SpanKind};
use rusqlite::Connection;

/// One runtime per process: tests of one binary that call `init` take turns.
pub fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `work` on `n` threads at once and waits for all of them.
pub fn on_threads(n: usize, work: impl Fn() + Send + Sync + 'static) {
    let work = std::sync::Arc::new(work);
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (work, start) = (work.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                work();
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker thread panicked");
    }
}

pub fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("monitor.db");
    (dir, path)
}

/// A read-only reader, as a user's `sqlite3` would be.
pub fn reader(path: &Path) -> Connection {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open db")
}

pub fn count(path: &Path, sql: &str) -> i64 {
    reader(path)
        .query_row(sql, [], |row| row.get(0))
        .expect(sql)
}

/// Sums of `monitor_stats`: (enqueued, written, dropped, errors_written, failed).
pub fn stats_totals(path: &Path) -> (i64, i64, i64, i64, i64) {
    reader(path)
        .query_row(
            "SELECT total(enqueued), total(written), total(dropped), total(errors_written), total(failed) FROM monitor_stats",
            [],
            |r| {
                Ok((
                    r.get::<_, f64>(0)? as i64,
                    r.get::<_, f64>(1)? as i64,
                    r.get::<_, f64>(2)? as i64,
                    r.get::<_, f64>(3)? as i64,
                    r.get::<_, f64>(4)? as i64,
                ))
            },
        )
        .expect("stats")
}

pub static LEAF: Callsite = Callsite::new(
    "leaf",
    module_path!(),
    "test-group",
    file!(),
    40,
    SpanKind::Sync,
);
pub static FAILING: Callsite = Callsite::new(
    "failing",
    module_path!(),
    module_path!(),
    file!(),
    41,
    SpanKind::Sync,
);
