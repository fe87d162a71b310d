//! The live OTLP sender (`[otlp]`): what the writer commits reaches a
//! collector on loopback exactly once, through refusals, an outage and a
//! restart of the program, and what retention drops unsent is counted.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::otlp::{Receiver, Reply};
use common::{read_spans, Row};
use monitor_runtime::{monitor, Clock, Config, OtlpConfig};

/// Tests take turns: one runtime per process.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Long enough for any round of the sender on a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

#[monitor]
fn request(n: u64) -> Result<u64, String> {
    let total = step(n) + step(n + 1);
    if n % 5 == 4 {
        return Err(format!("request {n} failed"));
    }
    Ok(total)
}

#[monitor]
fn step(n: u64) -> u64 {
    n * 2
}

/// `n` requests: `3 * n` spans.
fn requests(range: std::ops::Range<u64>) {
    for n in range {
        let _ = request(n);
    }
}

fn live(db: &Path, endpoint: &str) -> Config {
    Config::default()
        .db_path(db)
        .resource_interval(Duration::ZERO)
        // A sender stopped while the collector is down gives up quickly.
        .shutdown_timeout(Duration::from_millis(500))
        .otlp(
            OtlpConfig::new(endpoint)
                .interval(Duration::from_millis(20))
                .max_batch(7),
        )
}

/// Span ids as they arrived, each with how many times it did.
fn arrivals(receivers: &[&Receiver]) -> HashMap<i64, usize> {
    let mut seen = HashMap::new();
    for receiver in receivers {
        for (_, span) in receiver.accepted_spans() {
            let id = i64::from_be_bytes(span.span_id.as_slice().try_into().unwrap());
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    seen
}

/// Every row of the file arrived exactly once, with its parent.
fn assert_each_once(rows: &[Row], receivers: &[&Receiver]) {
    let seen = arrivals(receivers);
    for row in rows {
        assert_eq!(seen.get(&row.span_id), Some(&1), "{row:#?}");
    }
    assert_eq!(seen.len(), rows.len(), "only the file's spans arrived");
    let parents: HashMap<Vec<u8>, Vec<u8>> = receivers
        .iter()
        .flat_map(|r| r.accepted_spans())
        .map(|(_, span)| (span.span_id, span.parent_span_id))
        .collect();
    for row in rows {
        let expected = row
            .parent_id
            .map_or_else(Vec::new, |p| p.to_be_bytes().to_vec());
        assert_eq!(parents[&row.span_id.to_be_bytes().to_vec()], expected);
    }
}

fn events(db: &Path, kind: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT message FROM monitor_events WHERE kind = ?1 ORDER BY ts_ns")
        .unwrap();
    let rows = stmt.query_map([kind], |r| r.get(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

/// The sum of an `export_stats` column.
fn export_total(db: &Path, column: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        &format!("SELECT CAST(total({column}) AS INTEGER) FROM export_stats"),
        [],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn every_committed_span_reaches_the_collector_once() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let receiver = Receiver::start();
    let guard = monitor_runtime::init_with(live(&db, &receiver.url)).unwrap();
    requests(0..20);
    guard.flush();
    assert!(receiver.wait_for_spans(60, PATIENCE), "60 spans arrive");
    drop(guard);
    let rows = read_spans(&db);
    assert_eq!(rows.len(), 60);
    assert_each_once(&rows, &[&receiver]);
    // Batches of at most 7.
    assert!(receiver
        .requests_to("/v1/traces")
        .iter()
        .all(|r| r.span_count() <= 7));
    assert_eq!(export_total(&db, "sent"), 60);
    assert_eq!(export_total(&db, "refused"), 0);
    // `monitor stats` tells the same.
    let stats: serde_json::Value =
        serde_json::from_str(&common::monitor_ok(&db, &["stats", "--json"])).unwrap();
    assert_eq!(stats["export"]["sent"], 60, "{stats}");
    assert_eq!(stats["export"]["pending"], 0, "{stats}");
}

#[test]
fn refusals_an_outage_and_a_return_lose_nothing_and_repeat_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let first = Receiver::scripted([
        Reply::Status(503, Some("0")),
        Reply::Status(503, Some("0")),
        Reply::Status(429, Some("0")),
    ]);
    let addr = first.addr().to_owned();
    let guard = monitor_runtime::init_with(live(&db, &first.url)).unwrap();
    requests(0..10);
    guard.flush();
    assert!(
        first.wait_for_spans(30 + 3 * 7, PATIENCE),
        "30 spans, after 3 refusals"
    );
    // The collector goes away; the program goes on.
    let first = first.stopped();
    requests(10..30);
    guard.flush();
    assert!(
        wait_until(|| !events(&db, "export_failing").is_empty()),
        "the outage is told"
    );
    // It comes back where it was, and gets what it missed.
    let back = Receiver::at(&addr);
    assert!(
        back.wait_for_spans(60, PATIENCE),
        "the 60 spans written meanwhile arrive"
    );
    drop(guard);
    let rows = read_spans(&db);
    assert_eq!(rows.len(), 90);
    assert_each_once(&rows, &[&first, &back]);
    assert_eq!(events(&db, "export_recovered").len(), 1);
    assert_eq!(export_total(&db, "sent"), 90);
    assert!(export_total(&db, "retries") >= 3);
}

/// The URL of a loopback port nothing listens on: a collector that is away.
fn absent_collector() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// Polls `done` every 10 ms for up to [`PATIENCE`]: for a state the
/// program reaches on its own thread (no flush covers the sender).
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn a_restart_resumes_from_the_cursor_in_the_file() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let first = Receiver::start();
    let addr = first.addr().to_owned();
    // Run 1 sends what it can, then the collector goes away before the
    // rest, and the program exits with it unsent.
    let guard = monitor_runtime::init_with(live(&db, &first.url)).unwrap();
    requests(0..5);
    guard.flush();
    assert!(first.wait_for_spans(15, PATIENCE));
    let first = first.stopped();
    requests(5..10);
    drop(guard);
    assert_eq!(read_spans(&db).len(), 30);
    // Run 2 sends the rest of run 1, then its own, and nothing twice.
    let back = Receiver::at(&addr);
    let guard = monitor_runtime::init_with(live(&db, &back.url)).unwrap();
    requests(10..15);
    guard.flush();
    assert!(back.wait_for_spans(30, PATIENCE), "15 left over and 15 new");
    drop(guard);
    let rows = read_spans(&db);
    assert_eq!(rows.len(), 45);
    assert_each_once(&rows, &[&first, &back]);
}

#[test]
fn spans_dropped_by_retention_before_they_were_sent_are_counted_lost() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let url = absent_collector();
    let hour = 3_600_000_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let clock = Clock::starting_at(now - 5 * hour);
    let guard = monitor_runtime::init_with(live(&db, &url).clock(clock.clone())).unwrap();
    requests(0..4);
    guard.flush();
    clock.set(now);
    requests(4..5);
    drop(guard);
    let rules = Config::default().retention_hours(2).retention;
    let report = monitor_runtime::retention::run_pass(&db, &rules, now, false).unwrap();
    assert_eq!(
        report
            .expired
            .iter()
            .filter(|p| p.table.starts_with("spans_"))
            .count(),
        1
    );
    assert_eq!(export_total(&db, "lost"), 12);
    let lost = events(&db, "export_lost");
    assert_eq!(lost.len(), 1);
    assert!(lost[0].contains("12 spans"), "{lost:?}");
}

/// A program whose collector is away exits without waiting for it: the
/// spans stay in the file for the next run.
#[test]
fn exit_does_not_wait_for_a_collector_that_is_away() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let url = absent_collector();
    // A generous bound, which a failing export must not use up.
    let config = live(&db, &url).shutdown_timeout(Duration::from_secs(30));
    let guard = monitor_runtime::init_with(config).unwrap();
    requests(0..3);
    guard.flush();
    assert!(
        wait_until(|| !events(&db, "export_failing").is_empty()),
        "the sender found the collector away"
    );
    let started = std::time::Instant::now();
    drop(guard);
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "exit took {took:?}");
    assert_eq!(read_spans(&db).len(), 9, "the spans stay in the file");
}
