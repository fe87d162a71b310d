//! The database failing under a running program: read-only, full, locked
//! past the busy timeout, deleted, a panicking writer. The program goes on,
//! records go to the spill file beside the database, and they are replayed
//! into it once it takes writes again: nothing is lost, and
//! `monitor_stats` / `monitor_events` say what happened.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{quiet_session, read_spans, Session};
use monitor_runtime::prelude::*;
use monitor_runtime::schema::spill_path;
use rusqlite::Connection;

#[monitor]
fn work(i: u64) -> u64 {
    i * 2
}

#[monitor(args)]
fn login(user: &str, password: &str) -> Result<(), String> {
    Err(format!(
        "{user} may not log in ({} characters given)",
        password.len()
    ))
}

/// The spill file's lines of one kind (`span`, `callsite`, `stats`, ...).
fn spilled(db: &Path, kind: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(spill_path(db)).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter_map(|v| v.get(kind).cloned())
        .collect()
}

/// (spilled, replayed, written) totals of `monitor_stats`.
fn spill_totals(db: &Path) -> (u64, u64, u64) {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT total(spilled), total(replayed), total(written) FROM monitor_stats",
            [],
            |r| {
                Ok((
                    r.get::<_, f64>(0)? as u64,
                    r.get::<_, f64>(1)? as u64,
                    r.get::<_, f64>(2)? as u64,
                ))
            },
        )
        .unwrap()
}

/// The kinds of `monitor_events`, oldest first.
fn events(db: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, message FROM monitor_events ORDER BY ts_ns, rowid")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows
}

/// Runs `fault` on the writer's connection, makes `n` spans, flushes, and
/// checks they are in the spill file and not the database; then `repair`,
/// flush, and checks they are all in the database and the spill file gone.
fn spill_then_replay(
    s: &Session,
    n: u64,
    fault: impl FnOnce(&Connection) + Send + 'static,
    repair: impl FnOnce(&Connection) + Send + 'static,
) {
    work(0);
    s.guard.flush();
    s.guard.__with_writer_connection(fault);
    for i in 1..=n {
        work(i);
    }
    s.guard.flush();
    assert_eq!(
        spilled(&s.path, "span").len() as u64,
        n,
        "all in the spill file"
    );
    assert_eq!(read_spans(&s.path).len(), 1, "none in the database yet");

    s.guard.__with_writer_connection(repair);
    s.guard.flush();
    assert!(!spill_path(&s.path).exists(), "replayed, then removed");
    let rows = read_spans(&s.path);
    assert_eq!(rows.len() as u64, n + 1);
    assert!(rows
        .iter()
        .all(|r| r.name == "work" && !r.thread.is_empty()));
    let (spilled, replayed, written) = spill_totals(&s.path);
    assert_eq!((spilled, replayed, written), (n, n, 1));
    let kinds: Vec<String> = events(&s.path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["spilling", "recovered"]);
}

#[test]
fn a_read_only_database_spills_and_replays_once_writable() {
    let s = quiet_session(|c| c);
    spill_then_replay(
        &s,
        1_000,
        |c| c.execute_batch("PRAGMA query_only = 1").unwrap(),
        |c| c.execute_batch("PRAGMA query_only = 0").unwrap(),
    );
    let (_, message) = &events(&s.path)[0];
    assert!(
        message.contains("readonly") || message.contains("read-only"),
        "{message}"
    );
}

#[test]
fn a_full_disk_spills_and_replays_once_there_is_room() {
    let s = quiet_session(|c| c);
    spill_then_replay(
        &s,
        5_000,
        |c| {
            let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
            c.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
                .unwrap();
        },
        |c| {
            c.execute_batch("PRAGMA max_page_count = 1073741823")
                .unwrap()
        },
    );
    let (_, message) = &events(&s.path)[0];
    assert!(message.contains("full"), "{message}");
}

#[test]
fn a_lock_held_past_the_busy_timeout_spills_without_stalling_the_program() {
    let s = quiet_session(|c| c.busy_timeout(Duration::from_millis(50)));
    work(0);
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    // This thread holds the lock: if a span waited for the writer, the
    // test would never get past this loop.
    for i in 1..=20_000 {
        work(i);
    }
    s.guard.flush();
    assert_eq!(spilled(&s.path, "span").len(), 20_000);
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    assert!(!spill_path(&s.path).exists());
    assert_eq!(read_spans(&s.path).len(), 20_001);
    assert_eq!(spill_totals(&s.path), (20_000, 20_000, 1));
    let events = events(&s.path);
    assert!(events[0].1.contains("locked"), "{events:?}");
}

#[test]
fn a_deleted_database_is_created_again_with_what_follows() {
    let s = quiet_session(|c| c);
    work(1);
    s.guard.flush();
    for extra in ["", "-wal", "-shm"] {
        let mut p = s.path.clone().into_os_string();
        p.push(extra);
        let _ = std::fs::remove_file(p);
    }
    for i in 0..100 {
        work(i);
    }
    s.guard.flush();
    let rows = read_spans(&s.path);
    assert_eq!(rows.len(), 100, "the new file has the later spans");
    assert!(rows
        .iter()
        .all(|r| r.name == "work" && !r.thread.is_empty()));
    let kinds: Vec<String> = events(&s.path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["reopened"]);
}

#[test]
fn a_file_deleted_while_spilling_gets_every_callsite_and_thread() {
    let s = quiet_session(|c| c);
    work(0);
    s.guard.flush();
    s.guard.__with_writer_connection(|c| {
        c.execute_batch("PRAGMA query_only = 1").unwrap();
    });
    for i in 1..=10 {
        work(i);
    }
    s.guard.flush();
    assert_eq!(spilled(&s.path, "span").len(), 10);
    for extra in ["", "-wal", "-shm"] {
        let mut p = s.path.clone().into_os_string();
        p.push(extra);
        let _ = std::fs::remove_file(p);
    }
    s.guard.flush();
    // `read_spans` needs every span's name and thread from the new file.
    let rows = read_spans(&s.path);
    assert_eq!(rows.len(), 10);
    assert!(rows
        .iter()
        .all(|r| r.name == "work" && !r.thread.is_empty()));
}

#[test]
fn a_writer_panic_mid_batch_spills_the_records_in_hand() {
    let s = quiet_session(|c| c);
    work(0);
    s.guard.flush();
    s.guard.__panic_writer_on_next_batch();
    for i in 1..=50 {
        work(i);
    }
    s.guard.flush();
    s.guard.flush();
    assert_eq!(read_spans(&s.path).len(), 51);
    let events = events(&s.path);
    assert_eq!(events[0].0, "writer_panic", "{events:?}");
    assert!(events[0].1.contains("50 records in hand"), "{events:?}");
    let (spilled, replayed, written) = spill_totals(&s.path);
    assert_eq!((spilled, replayed, written), (50, 50, 1));
}

#[test]
fn a_panicking_writer_is_restarted_and_loses_nothing() {
    let s = quiet_session(|c| c);
    for i in 0..10 {
        work(i);
    }
    s.guard
        .__with_writer_connection(|_| panic!("injected writer fault"));
    for i in 0..10 {
        work(i);
    }
    s.guard.flush();
    assert_eq!(read_spans(&s.path).len(), 20);
    let events = events(&s.path);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "writer_panic");
    assert!(events[0].1.contains("injected writer fault"));
    // Still writing after the restart.
    work(99);
    s.guard.flush();
    assert_eq!(read_spans(&s.path).len(), 21);
}

#[test]
fn a_spill_left_at_exit_is_replayed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    {
        let s = quiet_session(|c| c.db_path(&path));
        work(0);
        s.guard.flush();
        s.guard.__with_writer_connection(|c| {
            c.execute_batch("PRAGMA query_only = 1").unwrap();
        });
        for i in 1..=300 {
            work(i);
        }
        let _ = login("ann", "hunter2-secret-value");
        // Dropped while the database still refuses: the last batch and the
        // final stats row go to the spill file.
    }
    assert_eq!(spilled(&path, "span").len(), 301);
    assert!(!spilled(&path, "stats").is_empty());
    let spill_text = std::fs::read_to_string(spill_path(&path)).unwrap();
    assert!(!spill_text.contains("hunter2-secret-value"));
    assert!(spill_text.contains("***"), "the masked argument is there");

    let s = quiet_session(|c| c.db_path(&path));
    s.guard.flush();
    assert!(!spill_path(&path).exists());
    let rows = read_spans(&path);
    assert_eq!(rows.len(), 302);
    let login = rows.iter().find(|r| r.name == "login").unwrap();
    assert_eq!(
        login.error.as_deref(),
        Some("ann may not log in (20 characters given)")
    );
    drop(s);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(format!("{}-wal", path.display())).unwrap_or_default());
    assert!(!String::from_utf8_lossy(&bytes).contains("hunter2-secret-value"));
}

#[test]
fn an_unreadable_spill_file_is_left_alone_and_the_database_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    // Something at the spill file's path that cannot be read as one.
    std::fs::create_dir(spill_path(&path)).unwrap();
    std::fs::write(spill_path(&path).join("x"), "x").unwrap();
    let s = quiet_session(|c| c.db_path(&path));
    for i in 0..10 {
        work(i);
    }
    s.guard.flush();
    assert_eq!(read_spans(&path).len(), 10);
    let kinds: Vec<String> = events(&path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["spill_unreadable"]);
    assert!(spill_path(&path).join("x").exists());
}

#[test]
fn a_stats_row_the_database_refuses_is_spilled_and_starts_the_fault() {
    let s = quiet_session(|c| c.busy_timeout(Duration::from_millis(50)));
    work(0);
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    // Nothing new to write: only the flush's stats row meets the lock.
    s.guard.flush();
    assert_eq!(spilled(&s.path, "stats").len(), 1);
    assert_eq!(spilled(&s.path, "event").len(), 1, "the fault is an event");
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    assert!(!spill_path(&s.path).exists());
    let kinds: Vec<String> = events(&s.path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["spilling", "recovered"]);
}

/// A link planted at the spill file's path is moved aside, not followed:
/// its target gets no spans and keeps its mode, and the spans still spill
/// and are replayed.
#[cfg(unix)]
#[test]
fn a_link_planted_at_the_spill_path_is_moved_aside_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let s = quiet_session(|c| c.busy_timeout(Duration::from_millis(50)));
    work(0);
    s.guard.flush();
    let dir = s.path.parent().unwrap();
    let target = dir.join("victim.txt");
    std::fs::write(&target, "untouched").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&target, spill_path(&s.path)).unwrap();

    let holder = common::lock_database(&s.path);
    for i in 1..=100 {
        work(i);
    }
    s.guard.flush();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "the target's mode is unchanged");
    assert!(!spill_path(&s.path).is_symlink(), "a real spill file now");
    assert_eq!(spilled(&s.path, "span").len(), 100);
    let aside: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .contains("-spill.jsonl.link-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the link is kept aside");
    assert!(aside[0].path().is_symlink());

    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    assert_eq!(
        read_spans(&s.path).len(),
        101,
        "replayed once the lock went"
    );
}

/// `total(column)` of `monitor_stats`.
fn stats_total(db: &Path, column: &str) -> u64 {
    Connection::open(db)
        .unwrap()
        .query_row(
            &format!("SELECT total({column}) FROM monitor_stats"),
            [],
            |r| r.get::<_, f64>(0),
        )
        .unwrap() as u64
}

/// `monitor_stats` adds up: every record enqueued was written, spilled,
/// dropped or failed.
fn assert_accounted(db: &Path) {
    let [enqueued, written, spilled, dropped, failed] =
        ["enqueued", "written", "spilled", "dropped", "failed"].map(|c| stats_total(db, c));
    assert_eq!(
        enqueued,
        written + spilled + dropped + failed,
        "enqueued {enqueued} = written {written} + spilled {spilled} + dropped {dropped} + failed {failed}"
    );
}

/// An error flood past `queue.error_max_bytes` is kept on disk, not in
/// memory: the threads that end the error spans append them to the spill
/// file (with their callsite and thread), and every one is stored.
#[test]
fn errors_past_the_error_lane_bound_go_to_the_spill_file_and_all_are_stored() {
    const ERRORS: usize = 5_000;
    let mut s = quiet_session(|c| {
        c.queue_error_max_bytes(64 << 10)
            .flush_interval(Duration::from_secs(3600))
    });
    work(0);
    s.guard.flush();
    let hold = s.guard.hold_writer();
    std::thread::Builder::new()
        .name("flood".into())
        .spawn(|| {
            for _ in 0..ERRORS {
                let _ = login("mallory", "guess");
            }
        })
        .unwrap()
        .join()
        .unwrap();
    // The writer has taken nothing: what is not in the lane (64 KiB of
    // records) or in the last unwritten 64 KiB of lines is on disk.
    let on_disk = spilled(&s.path, "span");
    assert!(
        on_disk.len() >= ERRORS - 1_000,
        "{} of {ERRORS} errors on disk",
        on_disk.len()
    );
    assert!(on_disk.iter().all(|span| span["status"] == 1));
    assert!(!spilled(&s.path, "callsite").is_empty(), "whole on its own");
    assert!(!spilled(&s.path, "thread").is_empty());
    drop(hold);

    s.guard.flush();
    assert!(!spill_path(&s.path).exists(), "replayed, then removed");
    let errors = s.named("login", ERRORS);
    assert!(errors.iter().all(|r| r.status == "error"
        && r.thread == "flood"
        && r.error.as_deref() == Some("mallory may not log in (5 characters given)")
        && r.fields.as_ref().unwrap()["password"] == "***"));
    let spilled_total = stats_total(&s.path, "spilled");
    assert!(spilled_total as usize >= on_disk.len());
    assert_eq!(stats_total(&s.path, "replayed"), spilled_total);
    assert_accounted(&s.path);
}

/// Past `spill_max_bytes` the spill file takes error records only; the
/// others are dropped and counted, and the file says so once.
#[test]
fn a_full_spill_file_keeps_errors_and_counts_the_rest_as_dropped() {
    // No sweeps: each round reaches the writer whole, at its flush.
    let s = quiet_session(|c| {
        c.busy_timeout(Duration::from_millis(50))
            .spill_max_bytes(16 << 10)
            .flush_interval(Duration::from_secs(3600))
    });
    work(0);
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    for round in 0..10 {
        for i in 0..200 {
            work(round * 1_000 + i);
        }
        for _ in 0..20 {
            let _ = login("eve", "x");
        }
        s.guard.flush();
    }
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    let rows = read_spans(&s.path);
    let count = |name: &str| rows.iter().filter(|r| r.name == name).count();
    assert_eq!(count("login"), 200, "every error kept");
    // The first round filled the file; the other nine's 1,800 were dropped.
    assert_eq!(count("work"), 1 + 200);
    assert_eq!(stats_total(&s.path, "dropped"), 1_800);
    assert_accounted(&s.path);
    let kinds: Vec<String> = events(&s.path).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["spilling", "spill_full", "recovered"]);
}

/// When the spill file fails too, what is lost is counted in
/// `monitor_stats.failed` and said in `monitor_events` once the database
/// takes writes again, not only on stderr.
#[test]
fn records_neither_stored_nor_spilled_are_counted_in_the_file() {
    // No sweeps: a sweep would find the directory and try to replay it.
    let s = quiet_session(|c| {
        c.busy_timeout(Duration::from_millis(50))
            .flush_interval(Duration::from_secs(3600))
    });
    work(0);
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    // A directory where the spill file would go: appends fail.
    std::fs::create_dir(spill_path(&s.path)).unwrap();
    for i in 0..100 {
        work(i);
        let _ = login("trent", "y");
    }
    s.guard.flush();
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    // Gone before the writer looks for a spill file to replay.
    std::fs::remove_dir(spill_path(&s.path)).unwrap();
    work(1_000);
    s.guard.flush();
    assert_eq!(stats_total(&s.path, "failed"), 200);
    assert_accounted(&s.path);
    let events = events(&s.path);
    let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["spilling", "spill_failed", "recovered"],
        "{events:?}"
    );
    assert!(
        events[2].1.contains("200 records could not be spilled"),
        "{events:?}"
    );
    assert_eq!(read_spans(&s.path).len(), 2);
}

#[monitor]
fn refused(i: u64) -> u64 {
    i + 1
}

/// A row the database refuses (here a trigger's `RAISE(ABORT)`, as an id
/// already stored would be) costs only itself: the other rows of its batch
/// are stored, and it is counted as failed.
#[test]
fn a_refused_row_costs_only_itself_not_its_statement() {
    let s = quiet_session(|c| c);
    work(0);
    s.guard.flush();
    let table: String = Connection::open(&s.path)
        .unwrap()
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'spans_*'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    refused(0);
    s.guard.flush();
    Connection::open(&s.path)
        .unwrap()
        .execute_batch(&format!(
            "CREATE TRIGGER refuse BEFORE INSERT ON \"{table}\" \
             WHEN NEW.callsite_id = (SELECT id FROM callsites WHERE name = 'refused') \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ))
        .unwrap();
    // 100 spans, every tenth refused: each group of rows holds some.
    for i in 0..100 {
        if i % 10 == 3 {
            refused(i);
        } else {
            work(i);
        }
    }
    s.guard.flush();
    let names = common::span_names(&s.path);
    assert_eq!(names.iter().filter(|n| *n == "work").count(), 1 + 90);
    assert_eq!(names.iter().filter(|n| *n == "refused").count(), 1);
    assert_eq!(stats_total(&s.path, "failed"), 10);
    assert_eq!(stats_total(&s.path, "written"), 1 + 1 + 90);
}
