//! The six stress scenarios of the system `monitor` replaces, at sizes that
//! finish in seconds, each checked against the file to the row. The same
//! scenarios run at full scale in `examples/stress.rs` (BENCHMARKS.md).

mod common;
mod stress;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use common::{read_spans, session, session_with, Row};
use monitor_runtime::Overflow;
use rusqlite::Connection;

/// Totals of `monitor_stats`: (enqueued, written, dropped, errors_written,
/// failed, largest queue depth seen).
fn stats(path: &Path) -> (u64, u64, u64, u64, u64, u64) {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT total(enqueued), total(written), total(dropped), total(errors_written), \
             total(failed), max(queue_depth) FROM monitor_stats",
            [],
            |r| {
                Ok((
                    r.get::<_, f64>(0)? as u64,
                    r.get::<_, f64>(1)? as u64,
                    r.get::<_, f64>(2)? as u64,
                    r.get::<_, f64>(3)? as u64,
                    r.get::<_, f64>(4)? as u64,
                    r.get::<_, i64>(5)? as u64,
                ))
            },
        )
        .unwrap()
}

fn named<'a>(rows: &'a [Row], name: &str) -> Vec<&'a Row> {
    rows.iter().filter(|r| r.name == name).collect()
}

#[test]
fn twenty_threads_store_every_call_with_a_unique_id() {
    let s = session();
    stress::sync_threads(20, 5_000);
    let rows = s.spans();
    assert_eq!(named(&rows, "trivial").len(), 100_000);
    let ids: HashSet<i64> = rows.iter().map(|r| r.span_id).collect();
    assert_eq!(ids.len(), rows.len(), "span ids are unique");
    let threads: HashSet<&str> = rows.iter().map(|r| r.thread.as_str()).collect();
    assert_eq!(threads.len(), 20);
    drop(s.guard);
    let (enqueued, written, dropped, _, failed, _) = stats(&s.path);
    assert_eq!((written, dropped, failed), (100_000, 0, 0));
    assert_eq!(enqueued, written);
}

#[test]
fn mixed_async_tasks_and_threads_are_all_stored_and_linked() {
    let s = session();
    stress::mixed(10, 10, 50, Duration::from_millis(1));
    let rows = s.spans();
    let by_id: HashMap<i64, &Row> = rows.iter().map(|r| (r.span_id, r)).collect();
    let parent_of = |row: &Row| by_id[&row.parent_id.expect("has a parent")];

    let workers: Vec<_> = rows
        .iter()
        .filter(|r| r.name == "async_worker" || r.name == "thread_worker")
        .collect();
    assert_eq!(workers.len(), 20);
    assert!(workers.iter().all(|w| w.parent_id.is_none()));
    assert_eq!(named(&rows, "async_worker").len(), 10);

    let rounds = named(&rows, "round");
    assert_eq!(rounds.len(), 20 * 50);
    let mut per_worker: HashMap<i64, usize> = HashMap::new();
    for round in &rounds {
        let worker = parent_of(round);
        assert!(worker.name.ends_with("_worker"), "{round:?}");
        assert_eq!(round.trace_id, worker.span_id);
        assert_eq!(round.kind, "async");
        *per_worker.entry(worker.span_id).or_default() += 1;
    }
    assert!(per_worker.values().all(|&n| n == 50), "{per_worker:?}");

    let steps = named(&rows, "sync_step");
    assert_eq!(steps.len(), 20 * 50);
    for step in steps {
        let round = parent_of(step);
        assert_eq!(round.name, "round");
        assert_eq!(step.trace_id, round.trace_id);
    }
    assert!(rows.iter().all(|r| r.status == "ok"));
}

#[test]
fn list_workers_keep_the_queue_bounded_and_the_values_short() {
    let capacity = 2_000;
    let s = session_with(|c| c.queue_capacity(capacity).max_value_len(256));
    let calls = stress::list_workers(50, stress::Budget::Calls(40));
    assert_eq!(calls, 50 * 40);
    let rows = s.spans();
    let lists = named(&rows, "make_list");
    for row in &lists {
        let ret = row.fields.as_ref().unwrap()["return"].as_str().unwrap();
        assert!(ret.len() <= 256 + '…'.len_utf8(), "{} bytes", ret.len());
        assert!(ret.starts_with("[0, 1, 2"));
    }
    drop(s.guard);
    let (_, written, dropped, _, failed, depth) = stats(&s.path);
    assert_eq!(written + dropped, calls, "every call written or counted");
    assert_eq!(lists.len() as u64, written);
    assert_eq!(failed, 0);
    assert!(
        depth <= capacity as u64,
        "queue depth {depth} over {capacity}"
    );
}

#[test]
fn a_byte_budget_bounds_the_lane_whatever_the_record_count() {
    let max_bytes = 256 << 10;
    let mut s = session_with(|c| {
        c.queue_capacity(0)
            .queue_max_bytes(max_bytes)
            .max_value_len(1_000)
            .flush_interval(Duration::from_secs(3600))
    });
    let hold = s.guard.hold_writer();
    // 4 workers × 2,000 lists with `ret`: about 1.2 kB a record, 10 MB in
    // all, against a lane of 256 KiB and nothing draining it.
    let calls = stress::list_workers(4, stress::Budget::Calls(2_000));
    drop(hold);
    s.guard.flush();
    drop(s.guard);
    let (_, written, dropped, _, failed, _) = stats(&s.path);
    assert_eq!(written + dropped, calls, "every call written or counted");
    assert_eq!(failed, 0);
    // The lane held at most `max_bytes` of records over 1 kB; each thread's
    // own buffer (1,024 records) came in with the flush.
    assert!(
        written <= (max_bytes / 1_000 + 4 * 1_024) as u64,
        "written {written}"
    );
    assert!(dropped > 0);
}

#[test]
fn a_record_heavier_than_the_byte_budget_still_goes_through_in_block_mode() {
    // Each `make_list` record outweighs `max_bytes`; an empty lane takes it
    // anyway, or `block` would wait for room that never comes.
    let s = session_with(|c| {
        c.queue_capacity(1)
            .queue_max_bytes(64)
            .overflow(Overflow::Block)
            .flush_interval(Duration::from_secs(3600))
    });
    let calls = stress::list_workers(1, stress::Budget::Calls(30));
    let rows = s.spans();
    assert_eq!(named(&rows, "make_list").len() as u64, calls);
}

#[test]
fn every_error_is_stored_with_its_message_even_when_normal_records_drop() {
    let mut s = session_with(|c| {
        // A thread buffers up to `capacity` records of its own before the
        // lane: 10 makes the 80 normal records per worker overflow.
        c.queue_capacity(10)
            .overflow(Overflow::Drop)
            .flush_interval(Duration::from_secs(3600))
    });
    let hold = s.guard.hold_writer();
    stress::error_workers(20, 100);
    drop(hold);
    let rows = s.spans();

    let mut expected: Vec<String> = (0..20)
        .flat_map(|w| {
            (0..100)
                .step_by(5)
                .map(move |c| stress::error_message(w, c))
        })
        .collect();
    let mut stored: Vec<String> = rows
        .iter()
        .filter(|r| r.status == "error")
        .map(|r| r.error.clone().unwrap())
        .collect();
    expected.sort();
    stored.sort();
    assert_eq!(stored.len(), 400);
    assert_eq!(stored, expected);

    drop(s.guard);
    let (_, written, dropped, errors_written, failed, _) = stats(&s.path);
    assert_eq!(errors_written, 400);
    assert!(dropped > 0, "a capacity of 10 under a held writer drops");
    assert_eq!(written + dropped, 2_000, "to the record");
    assert_eq!(failed, 0);
}

#[test]
fn large_arguments_are_cut_to_the_configured_length() {
    let s = session_with(|c| c.max_value_len(1_000));
    for mb in [1, 5, 20] {
        stress::large_args(mb << 20);
    }
    let rows = s.spans();
    let uploads = named(&rows, "upload");
    assert_eq!(uploads.len(), 3);
    for row in uploads {
        let fields = row.fields.as_ref().unwrap();
        assert_eq!(fields["name"], "blob");
        for key in ["body", "bytes"] {
            let value = fields[key].as_str().unwrap();
            assert_eq!(value.len(), 1_000 + '…'.len_utf8(), "{key}");
            assert!(value.ends_with('…'));
        }
    }
    drop(s.guard);
    let size = std::fs::metadata(&s.path).unwrap().len();
    assert!(size < 1 << 20, "the file holds no megabyte values: {size}");
}

#[test]
fn twenty_concurrent_streams_count_their_items() {
    let s = session();
    stress::streams(20, 10, Duration::from_millis(1));
    let rows = s.spans();
    let tickers = named(&rows, "ticker");
    assert_eq!(tickers.len(), 20);
    for ticker in &tickers {
        assert_eq!((ticker.kind.as_str(), ticker.items), ("stream", Some(10)));
        let children: Vec<_> = rows
            .iter()
            .filter(|r| r.parent_id == Some(ticker.span_id))
            .collect();
        assert_eq!(children.len(), 10);
        assert!(children.iter().all(|c| c.name == "tick_work"));
    }
}

#[test]
fn a_burst_past_capacity_stores_every_error_and_counts_every_drop() {
    let capacity = 1_000;
    let mut s = session_with(|c| {
        c.queue_capacity(capacity)
            .flush_interval(Duration::from_secs(3600))
    });
    let hold = s.guard.hold_writer();
    // 20 threads × 5,000 calls, every fifth an error: 100,000 records
    // against a lane of 1,000 (plus a buffer of as many per thread), with
    // nothing draining it.
    stress::error_workers(20, 5_000);
    drop(hold);
    s.guard.flush();
    drop(s.guard);
    let rows = read_spans(&s.path);
    let (_, written, dropped, errors_written, failed, _) = stats(&s.path);
    assert_eq!(errors_written, 20_000);
    assert_eq!(rows.iter().filter(|r| r.status == "error").count(), 20_000);
    assert_eq!(written + dropped, 100_000, "to the record");
    assert_eq!(written, rows.len() as u64);
    assert_eq!(failed, 0);
    assert!(written <= 20_000 + (capacity + 20 * capacity) as u64);
}
