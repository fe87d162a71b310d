//! Two processes writing one file at once: every row, distinct ids.
//!
//! The test re-runs its own binary as the second writer: with
//! `MONITOR_TEST_CHILD_DB` set, `child_writer` writes spans and exits.

mod common;

use std::process::Command;

use common::{count, temp_db, LEAF};
use monitor_runtime::{Config, EnteredSpan};

const PER_PROCESS: usize = 20_000;
const CHILD_ENV: &str = "MONITOR_TEST_CHILD_DB";

fn write_spans(db: &std::path::Path) {
    let guard = monitor_runtime::init_with(Config::default().db_path(db)).unwrap();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..PER_PROCESS / 2 {
                    let _span = EnteredSpan::new(&LEAF);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(guard);
}

/// The second process's body; it does nothing unless the parent test runs it.
#[test]
fn child_writer() {
    if let Ok(db) = std::env::var(CHILD_ENV) {
        write_spans(db.as_ref());
    }
}

#[test]
fn two_processes_share_one_file() {
    let (_dir, path) = temp_db();
    // Create the file first so both processes race on writes, not creation.
    drop(monitor_runtime::init_with(Config::default().db_path(&path)).unwrap());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_writer", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .spawn()
        .unwrap();
    write_spans(&path);
    assert!(child.wait().unwrap().success(), "child writer failed");

    let total = 2 * PER_PROCESS as i64;
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), total);
    assert_eq!(
        count(&path, "SELECT count(DISTINCT span_id) FROM spans"),
        total
    );
    assert_eq!(count(&path, "SELECT count(DISTINCT pid) FROM spans"), 2);
    assert_eq!(
        count(&path, "SELECT count(*) FROM callsites"),
        1,
        "one callsite id across processes"
    );
    assert_eq!(
        count(&path, "SELECT sum(written) FROM monitor_stats"),
        total
    );
}
