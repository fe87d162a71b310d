//! Retention cost against partition size: `DROP TABLE` of an hourly
//! partition (what retention does) beside `DELETE FROM spans WHERE start_ns <
//! ?` of the same rows (what the replaced system did), in one run, for
//! partitions of 10k, 100k and 1M rows. Each sample builds a fresh file with
//! the partition to remove and one current partition of 10k rows (untimed).
//!
//! Run: `cargo bench --bench retention`. Figures go in BENCHMARKS.md.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rusqlite::Connection;

const COLUMNS: &str = "span_id INTEGER PRIMARY KEY, parent_id INTEGER, trace_id INTEGER NOT NULL, \
    callsite_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT, \
    start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL, busy_ns INTEGER NOT NULL, items INTEGER, \
    fields TEXT, rss_bytes INTEGER, cpu_ns INTEGER, alloc_bytes INTEGER";
const HOUR: i64 = 3_600_000_000_000;

/// A file shaped like the writer's: WAL, incremental auto-vacuum, an old
/// partition of `rows` rows and a current one of 10k.
fn build(path: &Path, rows: i64) -> Connection {
    let _ = std::fs::remove_file(path);
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    )
    .unwrap();
    for (table, n, hour) in [("spans_old", rows, 0), ("spans_new", 10_000, 1)] {
        conn.execute_batch(&format!(
            "CREATE TABLE {table} ({COLUMNS});
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO {table} SELECT {hour} * 1000000000 + i, NULL, i, 7, 1, 0, NULL,
                 {hour} * {HOUR} + i * 1000, 1500, 1500, NULL, NULL, NULL, NULL, NULL FROM n;"
        ))
        .unwrap();
    }
    conn.execute_batch(
        "CREATE VIEW spans AS SELECT * FROM spans_old UNION ALL SELECT * FROM spans_new",
    )
    .unwrap();
    conn
}

fn retention(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut group = c.benchmark_group("retention");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for rows in [10_000i64, 100_000, 1_000_000] {
        group.bench_with_input(
            BenchmarkId::new("drop_partition", rows),
            &rows,
            |b, &rows| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let conn = build(&path, rows);
                        let started = Instant::now();
                        conn.execute_batch(
                            "BEGIN IMMEDIATE; DROP TABLE spans_old; DROP VIEW spans;
                         CREATE VIEW spans AS SELECT * FROM spans_new; COMMIT;",
                        )
                        .unwrap();
                        total += started.elapsed();
                    }
                    total
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("delete_rows", rows), &rows, |b, &rows| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let conn = build(&path, rows);
                    let started = Instant::now();
                    let deleted = conn
                        .execute("DELETE FROM spans_old WHERE start_ns < ?1", [HOUR])
                        .unwrap();
                    total += started.elapsed();
                    assert_eq!(deleted as i64, rows);
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, retention);
criterion_main!(benches);
