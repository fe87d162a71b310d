//! The queue's promises: flush waits, drop loses nothing, overflow drops
//! only normal records and counts every one, block loses none.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{count, on_threads, serial, stats_totals, temp_db, FAILING, LEAF};
use monitor_runtime::{Config, EnteredSpan, Overflow};

fn spans(n: usize) {
    for _ in 0..n {
        let _span = EnteredSpan::new(&LEAF);
    }
}

fn errors(n: usize) {
    for i in 0..n {
        let mut span = EnteredSpan::new(&FAILING);
        span.record_error(format!("failure {i}"));
    }
}

#[test]
fn flush_returns_after_every_thread_s_spans_are_committed() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    // A long interval: only flush itself can explain the rows being there.
    let config = Config::default()
        .db_path(&path)
        .flush_interval(Duration::from_secs(3600));
    let guard = monitor_runtime::init_with(config).unwrap();

    // Threads that exited, with partly filled buffers.
    let exited: Vec<_> = (0..3).map(|_| std::thread::spawn(|| spans(1500))).collect();
    for t in exited {
        t.join().unwrap();
    }
    // A thread that stays alive and idle with records in its buffer.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let idle = std::thread::spawn(move || {
        spans(7);
        errors(2);
        ready_tx.send(()).unwrap();
        done_rx.recv().unwrap();
    });
    ready_rx.recv().unwrap();
    spans(10);

    guard.flush();
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans WHERE name = 'leaf'"),
        3 * 1500 + 7 + 10
    );
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans WHERE status = 'error'"),
        2
    );
    done_tx.send(()).unwrap();
    idle.join().unwrap();
    drop(guard);
}

#[test]
fn dropping_the_guard_loses_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let config = Config::default()
        .db_path(&path)
        .flush_interval(Duration::from_secs(3600));
    let guard = monitor_runtime::init_with(config).unwrap();
    on_threads(2, || spans(2_345));
    spans(3);
    errors(4);
    drop(guard);

    let produced = 2 * 2_345 + 3 + 4;
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), produced);
    let (enqueued, written, dropped, errors_written, failed) = stats_totals(&path);
    assert_eq!(
        (enqueued, written, dropped, errors_written, failed),
        (produced, produced, 0, 4, 0)
    );
    // After the guard, spans record nothing.
    spans(5);
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), produced);
}

#[test]
fn an_idle_thread_s_spans_reach_the_file_within_the_flush_interval() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let config = Config::default()
        .db_path(&path)
        .flush_interval(Duration::from_millis(20));
    let guard = monitor_runtime::init_with(config).unwrap();
    spans(3); // far below a chunk: it stays in this thread's buffer
    let started = Instant::now();
    // No flush: the writer's periodic sweep must find them. Poll the file.
    while count(&path, "SELECT count(*) FROM spans") < 3 {
        // 100 sweep intervals: generous for a loaded CI machine, far below
        // what an unswept buffer would take (forever).
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the sweep never came"
        );
        std::thread::yield_now();
    }
    drop(guard);
}

#[test]
fn overflow_drops_only_normal_records_and_counts_every_drop() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let config = Config::default()
        .db_path(&path)
        .queue_capacity(100)
        .overflow(Overflow::Drop)
        .flush_interval(Duration::from_secs(3600));
    let mut guard = monitor_runtime::init_with(config).unwrap();

    let hold = guard.hold_writer();
    let produced_normal = 2 * 5_000;
    let produced_errors = 2 * 500;
    on_threads(2, || {
        for _ in 0..10 {
            spans(500);
            errors(50);
        }
    });
    drop(hold);
    guard.flush();

    let (enqueued, written, dropped, errors_written, failed) = stats_totals(&path);
    assert_eq!(failed, 0);
    assert_eq!(errors_written, produced_errors, "every error is stored");
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM spans WHERE status = 'error' AND error LIKE 'failure %'"
        ),
        produced_errors
    );
    assert!(
        dropped > 0,
        "a capacity of 100 under 10,000 held records must drop"
    );
    assert_eq!(
        written + dropped,
        produced_normal + produced_errors,
        "every record is written or counted"
    );
    assert_eq!(enqueued, written);
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), written);
    // At most the capacity plus each thread's buffer got through the hold.
    assert!(
        written - produced_errors <= 100 + 2 * 100,
        "written {written}"
    );
    drop(guard);
}

#[test]
fn block_mode_waits_for_the_writer_and_loses_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let config = Config::default()
        .db_path(&path)
        .queue_capacity(256)
        .overflow(Overflow::Block);
    let guard = monitor_runtime::init_with(config).unwrap();
    on_threads(2, || spans(40_000));
    guard.flush();
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), 80_000);
    let (_, written, dropped, _, failed) = stats_totals(&path);
    assert_eq!((written, dropped, failed), (80_000, 0, 0));
    drop(guard);
}

#[test]
fn block_mode_waits_for_a_stalled_writer_instead_of_dropping() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let capacity = 64;
    let config = Config::default()
        .db_path(&path)
        .queue_capacity(capacity)
        .overflow(Overflow::Block)
        .flush_interval(Duration::from_secs(3600));
    let mut guard = monitor_runtime::init_with(config).unwrap();
    let produced = Arc::new(AtomicUsize::new(0));
    let total = 10_000;
    let hold = guard.hold_writer();
    let producer = {
        let produced = Arc::clone(&produced);
        std::thread::spawn(move || {
            for _ in 0..total {
                let _span = EnteredSpan::new(&LEAF);
                produced.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // With the writer held, only the lane and this thread's buffer can take
    // spans: the producer must stop there and wait, not drop.
    // The producer blocks on the span that would overfill its buffer, so it
    // counts at most 2 * capacity - 1 before the hold is released.
    while produced.load(Ordering::Relaxed) < 2 * capacity - 1 {
        std::thread::yield_now();
    }
    assert!(
        !producer.is_finished(),
        "10,000 spans cannot fit a lane of 64 while the writer is held"
    );
    drop(hold);
    producer.join().unwrap();
    guard.flush();
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), total as i64);
    let (_, written, dropped, _, failed) = stats_totals(&path);
    assert_eq!((written, dropped, failed), (total as i64, 0, 0));
    drop(guard);
}
