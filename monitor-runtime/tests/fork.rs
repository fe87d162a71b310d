//! `fork()` without `exec`: the child records nothing (its spans are
//! counted, and the count reaches the parent's file) and its guard's
//! `flush` and drop return at once (they hung and panicked); the parent goes
//! on recording. One test in its own binary, so that no other test's thread
//! is running when it forks.
#![cfg(unix)]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use common::{count, temp_db, LEAF};
use monitor_runtime::{Config, EnteredSpan, Guard};

/// Spans each child begins.
const CHILD_SPANS: usize = 3;

/// How a child leaves.
#[derive(Clone, Copy)]
enum Leaves {
    /// Drops its guard, then `_exit` (no exit hooks).
    DroppingTheGuard,
    /// Keeps the guard and calls `exit`: the exit hook reports.
    ByExit,
}

/// Forks a child that begins `CHILD_SPANS` spans, flushes and leaves as
/// told; checks that it recorded nothing and ended by itself, and returns
/// its pid.
fn run_child(guard: &mut Option<Guard>, leaves: Leaves) -> i32 {
    // SAFETY: the child only ends spans, flushes and drops or leaks the
    // guard (no lock another thread may hold), then leaves.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let guard = guard.take().unwrap();
        let recording_off = catch_unwind(AssertUnwindSafe(|| {
            let span = EnteredSpan::new(&LEAF);
            let off = !span.is_recording() && !guard.is_enabled();
            drop(span);
            for _ in 0..CHILD_SPANS - 1 {
                drop(EnteredSpan::new(&LEAF));
            }
            guard.flush();
            off
        }));
        let code = match recording_off {
            Ok(true) => 0,
            Ok(false) => 2,
            Err(_) => 3,
        };
        match leaves {
            Leaves::DroppingTheGuard => {
                drop(guard);
                // SAFETY: ends the child without running the exit hooks.
                unsafe { libc::_exit(code) };
            }
            Leaves::ByExit => {
                std::mem::forget(guard);
                // SAFETY: ends the child, running the exit hooks it has.
                unsafe { libc::exit(code) };
            }
        }
    }

    // The child must end by itself: wait on another thread, with a bound.
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let _ = tx.send(status);
    });
    let status = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(status) => status,
        Err(_) => {
            // SAFETY: kills our own hung child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("the child hung in flush, drop or exit");
        }
    };
    assert!(libc::WIFEXITED(status), "the child died: status {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "2: the child recorded; 3: it panicked"
    );
    pid
}

#[test]
fn a_forked_child_records_nothing_and_its_guard_returns_at_once() {
    let (_dir, path) = temp_db();
    let mut guard = Some(monitor_runtime::init_with(Config::default().db_path(&path)).unwrap());
    drop(EnteredSpan::new(&LEAF));
    guard.as_ref().unwrap().flush();

    let children = [
        run_child(&mut guard, Leaves::DroppingTheGuard),
        run_child(&mut guard, Leaves::ByExit),
    ];

    let guard = guard.unwrap();
    drop(EnteredSpan::new(&LEAF));
    guard.flush();
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans"),
        2,
        "the parent's spans"
    );
    for pid in children {
        // The child's spans are counted as dropped, under its pid.
        let dropped = format!("SELECT sum(dropped) FROM monitor_stats WHERE pid = {pid}");
        assert_eq!(count(&path, &dropped), CHILD_SPANS as i64, "pid {pid}");
        let events = format!(
            "SELECT count(*) FROM monitor_events WHERE kind = 'fork_child' AND pid = {pid}"
        );
        assert_eq!(count(&path, &events), 1, "pid {pid}");
    }
    drop(guard);
}
