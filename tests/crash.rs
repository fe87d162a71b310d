//! Crashes and panics in awkward places: `kill -9` in the middle of heavy
//! writing leaves a sound file with every flushed span; monitored code that
//! panics while the queue is full, inside a `Drop` during unwinding, or
//! while the process exits neither aborts nor panics twice.
//!
//! The dangerous cases run in a child: this test binary again, with
//! `MONITOR_CRASH_CHILD` naming the scenario and `MONITOR_CRASH_DB` the file.

mod common;

use std::io::{BufRead, BufReader};
use std::panic::catch_unwind;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{read_spans, session_with, KillOnDrop};
use monitor_runtime::prelude::*;
use monitor_runtime::{Config, Overflow};
use rusqlite::Connection;

const SCENARIO: &str = "MONITOR_CRASH_CHILD";
const DB: &str = "MONITOR_CRASH_DB";
const FLUSHED: &str = "<flushed>";

#[monitor]
fn work(i: u64) -> u64 {
    i + 1
}

/// The flushing thread's call: its argument numbers the spans, so the
/// parent can check each flushed one by number.
#[monitor(args)]
fn numbered(n: u64) -> u64 {
    n
}

/// Every tenth call fails.
#[monitor]
fn checked(i: u64) -> Result<u64, String> {
    if i % 10 == 0 {
        Err(format!("check {i} failed"))
    } else {
        Ok(i)
    }
}

/// Calls made right before the process ends without dropping the guard.
const BEFORE_EXIT: u64 = 110_000;

static STATIC_GUARD: std::sync::OnceLock<monitor_runtime::Guard> = std::sync::OnceLock::new();

#[monitor]
fn explode(what: &str) {
    panic!("{what} exploded");
}

/// Calls `explode` and catches its panic, as code that tolerates a
/// failing step would.
fn explode_caught(what: &str) {
    let result = catch_unwind(|| explode(what));
    assert!(result.is_err());
}

struct ExplodesOnDrop;

impl Drop for ExplodesOnDrop {
    fn drop(&mut self) {
        explode_caught("drop");
    }
}

thread_local! {
    static AT_THREAD_EXIT: ExplodesOnDrop = const { ExplodesOnDrop };
}

extern "C" fn at_process_exit() {
    explode_caught("atexit");
}

/// The child's body: runs the scenario `SCENARIO` names, if any.
#[test]
fn child() {
    let (Ok(scenario), Ok(db)) = (std::env::var(SCENARIO), std::env::var(DB)) else {
        return;
    };
    // `block`: the flushing thread's spans must not be dropped for room
    // while two other threads write flat out; a small lane keeps each
    // flush short.
    let config = Config::default()
        .db_path(&db)
        .overflow(Overflow::Block)
        .queue_capacity(10_000)
        .resource_interval(Duration::ZERO);
    if scenario == "chdir" {
        // A relative db_path, then a program that changes directory.
        let db = Path::new(&db);
        std::env::set_current_dir(db.parent().unwrap()).unwrap();
        let config = config.db_path(db.file_name().unwrap());
        let guard = monitor_runtime::init_with(config).unwrap();
        let elsewhere = db.parent().unwrap().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::env::set_current_dir(&elsewhere).unwrap();
        for i in 0..100 {
            work(i);
        }
        guard.flush();
        return;
    }
    let config = if scenario == "locked_exit" {
        // Unbounded: the program must get to its exit while the writer
        // waits for the lock, not wait for room behind it. The lock is
        // waited for far longer than exit may take: the writer gives up at
        // 3/4 of 8 s and spills in the last 2 s (a debug build spills
        // these 20,000 spans in about 0.4 s).
        config
            .queue_capacity(0)
            .busy_timeout(Duration::from_secs(120))
            .shutdown_timeout(Duration::from_secs(8))
    } else {
        config
    };
    let guard = monitor_runtime::init_with(config).unwrap();
    match scenario.as_str() {
        "reopen" => drop(guard),
        "tracing_exit" => {
            use tracing_subscriber::layer::SubscriberExt;
            let subscriber =
                tracing_subscriber::registry().with(monitor_runtime::tracing::MonitorLayer::new());
            tracing::subscriber::set_global_default(subscriber).unwrap();
            drop(tracing::info_span!("closed_before_exit"));
            std::mem::forget(tracing::info_span!("open_at_exit"));
            // No drop of the guard: the exit hook counts the open span.
            std::mem::forget(guard);
            std::process::exit(0);
        }
        "locked_exit" => {
            // Another connection holds the file's lock past the program's
            // end: the writer's first insert waits for it.
            let _holder = common::lock_database(db.as_ref());
            for i in 0..LOCKED_EXIT {
                let _ = checked(i);
            }
            std::process::exit(0);
        }
        "heavy" => {
            // Two threads writing without pause; this one flushes in
            // rounds and says how many of its own spans are committed.
            for _ in 0..2 {
                std::thread::spawn(|| {
                    for i in 0.. {
                        work(i);
                    }
                });
            }
            let mut total = 0u64;
            loop {
                for _ in 0..2_000 {
                    numbered(total);
                    total += 1;
                }
                guard.flush();
                println!("{FLUSHED}{total}");
            }
        }
        "drop_while_unwinding" => {
            let result = catch_unwind(|| {
                let _bomb = ExplodesOnDrop;
                explode("outer");
            });
            assert!(result.is_err());
            guard.flush();
        }
        "exit" => {
            // SAFETY: registers a plain `extern "C" fn` with no arguments,
            // as `atexit` expects; it runs once, at process exit.
            assert_eq!(unsafe { libc::atexit(at_process_exit) }, 0);
            std::thread::spawn(|| AT_THREAD_EXIT.with(|_| ()))
                .join()
                .unwrap();
            guard.flush();
            // The guard is leaked: the process exits with the writer
            // running and `at_process_exit` still to come.
            std::mem::forget(guard);
            std::process::exit(0);
        }
        "sigterm" => {
            guard.flush_on_signals().unwrap();
            for i in 0..BEFORE_EXIT {
                let _ = checked(i);
            }
            println!("{FLUSHED}ready");
            // Serve until the supervisor's signal.
            loop {
                std::thread::park();
            }
        }
        "process_exit" | "forget" | "static_guard" => {
            for i in 0..BEFORE_EXIT {
                let _ = checked(i);
            }
            match scenario.as_str() {
                "process_exit" => {}
                "forget" => std::mem::forget(guard),
                _ => {
                    let _ = STATIC_GUARD.set(guard);
                }
            }
            // No flush, no drop: only the exit hook can store them.
            std::process::exit(0);
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn spawn_child(scenario: &str, db: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .env("RUST_BACKTRACE", "0")
        .env(DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs a scenario to its end; returns its stderr.
fn run_child(scenario: &str, db: &Path) -> String {
    let output = spawn_child(scenario, db).wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{scenario}: {:?}\n{stderr}",
        output.status
    );
    // An abort is a signal, not a success; std says why on stderr first.
    for bad in [
        "fatal runtime error",
        "panicked while processing panic",
        "non-unwinding panic",
    ] {
        assert!(!stderr.contains(bad), "{scenario}: {bad}\n{stderr}");
    }
    stderr
}

#[test]
fn kill_9_while_writing_leaves_a_sound_file_with_every_flushed_span() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let mut child = KillOnDrop(spawn_child("heavy", &db));
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut flushed = 0;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(n) = line.split(FLUSHED).nth(1) {
            flushed = n.trim().parse().unwrap();
            if flushed >= 10_000 {
                break;
            }
        }
    }
    drop(child); // SIGKILL
    assert!(flushed >= 10_000, "the child flushed {flushed}");

    let conn = Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // Every span numbered below `flushed` was committed before the kill.
    let present: u64 = conn
        .query_row(
            "SELECT count(DISTINCT json_extract(fields, '$.n')) FROM spans \
             WHERE name = 'numbered' AND json_extract(fields, '$.n') < ?1",
            [flushed],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(present, flushed);
}

#[test]
fn a_panic_inside_a_drop_during_unwinding_is_recorded_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    run_child("drop_while_unwinding", &db);
    let rows = read_spans(&db);
    let mut errors: Vec<_> = rows.iter().map(|r| r.error.clone().unwrap()).collect();
    errors.sort();
    assert_eq!(errors, ["drop exploded", "outer exploded"]);
    assert!(rows.iter().all(|r| r.status == "panic"));
}

#[test]
fn panics_while_the_process_exits_do_not_abort() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    run_child("exit", &db);
    // The thread's exit ran while the writer was up: its span is there.
    let rows = read_spans(&db);
    assert!(
        rows.iter()
            .any(|r| r.error.as_deref() == Some("drop exploded")),
        "{rows:?}"
    );
}

#[test]
fn a_panic_while_the_queue_is_full_is_stored() {
    let mut s = session_with(|c| {
        c.queue_capacity(10)
            .flush_interval(Duration::from_secs(3600))
            .resource_interval(Duration::ZERO)
    });
    let hold = s.guard.hold_writer();
    for i in 0..1_000 {
        work(i);
    }
    explode_caught("full queue");
    drop(hold);
    let rows = s.spans();
    let panics: Vec<_> = rows.iter().filter(|r| r.status == "panic").collect();
    assert_eq!(panics.len(), 1);
    assert_eq!(panics[0].error.as_deref(), Some("full queue exploded"));
}

#[test]
fn a_relative_db_path_stays_put_when_the_program_changes_directory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let stderr = run_child("chdir", &db);
    assert_eq!(read_spans(&db).len(), 100, "{stderr}");
    assert!(!dir.path().join("elsewhere/monitor.db").exists());
    assert!(!stderr.contains("deleted or replaced"), "{stderr}");
}

/// (spans, error spans) of `checked` in the file.
fn checked_counts(db: &Path) -> (u64, u64) {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE status = 'error') FROM spans \
             WHERE name = 'checked'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// A process that ends without dropping its guard (`process::exit` with the
/// guard alive, leaked, or in a `static`) still stores every span, errors
/// first among them: the exit hook flushes (110,500 spans: 0 to 13,703 were
/// stored before).
#[test]
fn a_process_that_exits_without_dropping_the_guard_stores_every_span() {
    for scenario in ["process_exit", "forget", "static_guard"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("monitor.db");
        run_child(scenario, &db);
        let (spans, errors) = checked_counts(&db);
        assert_eq!(errors, BEFORE_EXIT / 10, "{scenario}: every error stored");
        assert_eq!(spans, BEFORE_EXIT, "{scenario}: every span stored");
    }
}

/// Calls made before exiting with the database locked.
const LOCKED_EXIT: u64 = 20_000;

/// A process that exits while the database is locked loses nothing: at 3/4
/// of the exit bound the writer stops waiting for the lock (an insert that
/// began waiting before the exit too) and spills what it holds, and the
/// next run replays it (before: all lost).
#[test]
fn an_exit_while_the_database_is_locked_spills_every_span_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let stderr = run_child("locked_exit", &db);
    assert_eq!(checked_counts(&db), (0, 0), "the lock kept them out");
    let spill = std::fs::read_to_string(monitor_runtime::schema::spill_path(&db)).unwrap();
    let spans = spill.lines().filter(|l| l.starts_with("{\"span\"")).count();
    assert_eq!(spans as u64, LOCKED_EXIT, "{stderr}");
    run_child("reopen", &db);
    assert_eq!(checked_counts(&db), (LOCKED_EXIT, LOCKED_EXIT / 10));
    let exit_spills: i64 = Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM monitor_events WHERE kind = 'exit_spill' \
             AND message LIKE '% records were not committed by the exit flush%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(exit_spills, 1, "the exit says what it spilled");
}

/// A `tracing` span still open when the process exits without dropping the
/// guard is counted as dropped by the exit hook; the closed one is stored.
#[test]
fn a_tracing_span_open_at_exit_is_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    run_child("tracing_exit", &db);
    assert_eq!(common::span_names(&db), ["closed_before_exit"]);
    assert_eq!(common::stats_sum(&db, "dropped"), 1);
}

/// With `flush_on_signals`, a SIGTERM from a supervisor stores every span
/// queued before it, then ends the process as SIGTERM does.
#[test]
fn sigterm_with_flush_on_signals_stores_every_span_then_terminates() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let mut child = KillOnDrop(spawn_child("sigterm", &db));
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let ready = stdout
        .lines()
        .any(|line| line.unwrap().contains(&format!("{FLUSHED}ready")));
    assert!(ready, "the child got ready");
    // SAFETY: signals our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let status = child.0.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "ended as SIGTERM ends it"
    );
    let (spans, errors) = checked_counts(&db);
    assert_eq!((spans, errors), (BEFORE_EXIT, BEFORE_EXIT / 10));
}
