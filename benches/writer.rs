//! Writer throughput, side by side in one run:
//! - `raw_rusqlite`: the best a hand-written loop does: one prepared INSERT,
//!   10k-row transactions, WAL + synchronous=NORMAL, into a table with the
//!   same columns and the same kind of ids as a span partition;
//! - `monitor_writer`: the same number of spans produced on one thread and
//!   committed by monitor's writer (timed from the first span to `flush`);
//! - `end_to_end_2_producers`: two threads producing with
//!   `overflow = "block"`, every span stored.
//!
//! Run: `cargo bench --bench writer`. Figures go in BENCHMARKS.md.

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monitor_runtime::{Callsite, Config, EnteredSpan, Overflow, SpanKind};

static LEAF: Callsite = Callsite::new(
    "leaf",
    module_path!(),
    module_path!(),
    file!(),
    line!(),
    SpanKind::Sync,
);

const ROWS: u64 = 200_000;

fn raw_insert(path: &Path, rows: u64) -> Duration {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
         CREATE TABLE spans_2026010100 (span_id INTEGER PRIMARY KEY, parent_id INTEGER, trace_id INTEGER NOT NULL,
           callsite_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT,
           start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL, busy_ns INTEGER NOT NULL, items INTEGER,
           fields TEXT, rss_bytes INTEGER, cpu_ns INTEGER, alloc_bytes INTEGER);",
    )
    .unwrap();
    // Ids as monitor makes them: a random segment, counting up.
    let base: i64 = 0x2b_cafe_f00d << 24;
    let started = Instant::now();
    let mut i = 0;
    while i < rows {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO spans_2026010100 (span_id, parent_id, trace_id, callsite_id, thread_id, status, \
                     error, start_ns, duration_ns, busy_ns, items, fields, rss_bytes, cpu_ns, alloc_bytes) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .unwrap();
            for _ in 0..10_000.min(rows - i) {
                let id = base + i as i64;
                stmt.execute(rusqlite::params![
                    id,
                    None::<i64>,
                    id,
                    // Callsite and thread ids are 63-bit hashes, as monitor's.
                    0x3a5f_9c1e_77d2_4b08i64,
                    0x1c4e_8d2a_9b3f_6e17i64,
                    0u8,
                    None::<String>,
                    1_767_225_600_000_000_000i64 + i as i64 * 1_000,
                    250i64,
                    250i64,
                    None::<i64>,
                    None::<String>,
                    None::<i64>,
                    None::<i64>,
                    None::<i64>,
                ])
                .unwrap();
                i += 1;
            }
        }
        tx.commit().unwrap();
    }
    started.elapsed()
}

/// Produces `per_thread` spans on each of `threads` threads and returns the
/// time from the first span to the end of `flush`.
fn monitor_run(path: &Path, threads: usize, per_thread: u64, overflow: Overflow) -> Duration {
    let config = Config::default().db_path(path).overflow(overflow);
    let guard = monitor_runtime::init_with(config).unwrap();
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                for _ in 0..per_thread {
                    let _span = EnteredSpan::new(&LEAF);
                }
            })
        })
        .collect();
    start.wait();
    let started = Instant::now();
    for w in workers {
        w.join().unwrap();
    }
    guard.flush();
    let elapsed = started.elapsed();
    drop(guard);
    let conn = rusqlite::Connection::open(path).unwrap();
    let stored: u64 = conn
        .query_row("SELECT count(*) FROM spans", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, threads as u64 * per_thread, "every span stored");
    elapsed
}

fn fresh_db() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    (dir, path)
}

fn writer(c: &mut Criterion) {
    let mut group = c.benchmark_group("writer");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function(BenchmarkId::new("raw_rusqlite", ROWS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (_dir, path) = fresh_db();
                    raw_insert(&path, ROWS)
                })
                .sum()
        })
    });
    group.bench_function(BenchmarkId::new("monitor_writer", ROWS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (_dir, path) = fresh_db();
                    monitor_run(&path, 1, ROWS, Overflow::Block)
                })
                .sum()
        })
    });
    group.bench_function(BenchmarkId::new("end_to_end_2_producers", ROWS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let (_dir, path) = fresh_db();
                    monitor_run(&path, 2, ROWS / 2, Overflow::Block)
                })
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, writer);
criterion_main!(benches);
