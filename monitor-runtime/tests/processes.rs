//! Two processes writing one file at the same time: every row, distinct ids.
//!
//! The test re-runs its own binary as the second writer: with
//! `MONITOR_TEST_CHILD_DB` set, `child_writer` opens the file, prints a ready marker
//! on stdout, waits for "go" on stdin, writes its spans and exits.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use common::{count, temp_db, LEAF};
use monitor_runtime::{Config, EnteredSpan, Guard};

const PER_PROCESS: usize = 100_000;
const CHILD_ENV: &str = "MONITOR_TEST_CHILD_DB";
const READY: &str = "<monitor-child-ready>";

/// Writes `PER_PROCESS` spans from two threads, committing every 2,000 so
/// that the two processes' transactions interleave for the whole run.
fn write_spans(guard: Guard) {
    let guard = std::sync::Arc::new(guard);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let guard = std::sync::Arc::clone(&guard);
            std::thread::spawn(move || {
                for i in 0..PER_PROCESS / 2 {
                    let _span = EnteredSpan::new(&LEAF);
                    if i % 1000 == 999 {
                        guard.flush();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(std::sync::Arc::into_inner(guard));
}

/// The second process's body; it does nothing unless the parent test runs it.
#[test]
fn child_writer() {
    let Ok(db) = std::env::var(CHILD_ENV) else {
        return;
    };
    let guard = monitor_runtime::init_with(Config::default().db_path(db)).unwrap();
    // libtest prints on the same line: a marker that cannot be mistaken.
    println!("{READY}");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    write_spans(guard);
}

#[test]
fn two_processes_share_one_file() {
    let (_dir, path) = temp_db();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    // Both writers are open before either writes a span.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.unwrap().contains(READY)),
        "the child never got ready"
    );
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
    write_spans(guard);
    assert!(child.wait().unwrap().success(), "child writer failed");

    let total = 2 * PER_PROCESS as i64;
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), total);
    assert_eq!(
        count(&path, "SELECT count(DISTINCT span_id) FROM spans"),
        total
    );
    assert_eq!(count(&path, "SELECT count(DISTINCT pid) FROM spans"), 2);
    assert_eq!(
        count(&path, "SELECT count(*) FROM callsites WHERE name = 'leaf'"),
        1,
        "one callsite id across processes"
    );
    assert_eq!(
        count(&path, "SELECT sum(written) FROM monitor_stats"),
        total
    );
    assert_eq!(
        count(
            &path,
            "SELECT sum(dropped) + sum(failed) FROM monitor_stats"
        ),
        0
    );
    // The two processes were recording at the same time.
    let overlap = count(
        &path,
        "SELECT min(last) > max(first) FROM (SELECT min(start_ns) AS first, max(start_ns) AS last FROM spans GROUP BY pid)",
    );
    assert_eq!(
        overlap, 1,
        "the two processes' spans should overlap in time"
    );
}
