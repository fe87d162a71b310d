//! `guard.health()` as a program's `/healthz` reads it: the writer's state
//! through a locked database and back, the queue depth while the writer is
//! held, drops that match `monitor_stats`, and a guard that records nothing.

mod common;

use std::time::Duration;

use common::requests::real_now;
use common::{quiet_session, stats_sum};
use monitor_runtime::prelude::*;
use monitor_runtime::schema::spill_path;
use monitor_runtime::{Config, FailReason, Overflow, WriterState};

#[monitor]
fn work(i: u64) -> u64 {
    i * 2
}

#[monitor]
fn refuse(i: u64) -> Result<u64, String> {
    Err(format!("refused {i}"))
}

#[test]
fn a_fresh_guard_is_ok_and_commits_on_flush() {
    let before = real_now();
    let s = quiet_session(|c| c);
    let health = s.guard.health();
    assert!(health.is_ok(), "{health:?}");
    for i in 0..10 {
        work(i);
    }
    s.guard.flush();
    let health = s.guard.health();
    assert_eq!(health.state, WriterState::Ok);
    assert_eq!(
        (health.queue_depth, health.dropped, health.failed),
        (0, 0, 0)
    );
    let at = health.last_commit_ns.expect("the flush committed");
    assert!(before <= at && at <= real_now(), "{health:?}");
    assert!(health.last_commit_age().unwrap() < Duration::from_secs(60));

    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["state"], "ok");
    assert_eq!(json["queue_depth"], 0);
    assert_eq!(json["dropped"], 0);
    assert_eq!(json["last_commit_ns"], at);
}

/// With the writer held, handed-over records are the depth, and what the
/// full lane refuses is `dropped`: the same figure `monitor_stats` stores.
#[test]
fn a_held_writer_shows_depth_and_drops_as_monitor_stats_counts_them() {
    // A capacity of 100 makes chunks of 100: each 100th span hands one over.
    let mut s = quiet_session(|c| c.queue_capacity(100).overflow(Overflow::Drop));
    s.guard.flush();
    // The hold borrows the guard: a probe reads the health meanwhile.
    let probe = s.guard.health_probe();
    let hold = s.guard.hold_writer();
    for i in 0..100 {
        work(i);
    }
    assert_eq!(probe.health().queue_depth, 100, "one chunk");
    for i in 0..5 {
        let _ = refuse(i); // the error lane: no chunk, counted at once
    }
    for i in 0..300 {
        work(i); // three more chunks: the lane is full
    }
    let held = probe.health();
    drop(hold);
    assert_eq!((held.queue_depth, held.dropped), (105, 300), "{held:?}");
    assert!(held.is_ok(), "a held writer is not a failing one");

    s.guard.flush();
    let health = s.guard.health();
    assert_eq!((health.queue_depth, health.dropped), (0, 300), "{health:?}");
    assert_eq!(stats_sum(&s.path, "dropped"), 300);

    // Dropping the guard (its final stats row) adds nothing to it.
    drop(s.guard);
    assert_eq!(stats_sum(&s.path, "dropped") as u64, health.dropped);
    let after = probe.health();
    assert!(
        matches!(
            after.state,
            WriterState::Failed {
                reason: FailReason::WriterStopped,
                ..
            }
        ),
        "a probe that outlives its guard: {after:?}"
    );
}

#[test]
fn a_locked_database_is_spilling_since_the_lock_then_ok_again() {
    let s = quiet_session(|c| c.busy_timeout(Duration::from_millis(50)));
    work(0);
    s.guard.flush();
    let committed = s.guard.health().last_commit_ns.unwrap();

    let before = real_now();
    let holder = common::lock_database(&s.path);
    for i in 1..=100 {
        work(i);
    }
    s.guard.flush();
    let health = s.guard.health();
    let WriterState::Spilling { since_ns } = health.state else {
        panic!("expected spilling: {health:?}");
    };
    // Kept to the microsecond.
    assert!(
        before / 1_000 * 1_000 <= since_ns && since_ns <= real_now(),
        "{health:?}"
    );
    assert!(!health.is_ok());
    assert_eq!((health.dropped, health.failed), (0, 0), "spilled, not lost");
    assert_eq!(health.last_commit_ns, Some(committed), "nothing committed");
    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["state"], "spilling");
    assert_eq!(json["since_ns"], since_ns);

    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    let health = s.guard.health();
    assert_eq!(health.state, WriterState::Ok, "{health:?}");
    assert!(health.last_commit_ns.unwrap() > committed, "the replay");
    assert_eq!(common::read_spans(&s.path).len(), 101);
}

/// The spill file refuses too: records are lost, `failed` counts them as
/// `monitor_stats.failed` does.
#[test]
fn a_spill_file_that_fails_too_is_failed_and_counts_the_loss() {
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
    }
    s.guard.flush();
    let health = s.guard.health();
    assert!(
        matches!(
            health.state,
            WriterState::Failed {
                reason: FailReason::SpillFailed,
                ..
            }
        ),
        "{health:?}"
    );
    assert_eq!(health.failed, 100);
    assert_eq!(
        serde_json::to_value(&health).unwrap()["reason"],
        "spill_failed"
    );

    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    std::fs::remove_dir(spill_path(&s.path)).unwrap();
    work(1_000);
    s.guard.flush();
    let health = s.guard.health();
    assert_eq!(health.state, WriterState::Ok, "{health:?}");
    assert_eq!(stats_sum(&s.path, "failed") as u64, health.failed);

    // The next fault, with a spill file that works: spilling, not failed.
    let holder = common::lock_database(&s.path);
    work(2_000);
    s.guard.flush();
    let health = s.guard.health();
    assert!(
        matches!(health.state, WriterState::Spilling { .. }),
        "{health:?}"
    );
    holder.execute_batch("COMMIT").unwrap();
}

/// Past `spill_max_bytes` normal records are dropped: failed, and the
/// drops are in `dropped`.
#[test]
fn a_full_spill_file_is_failed_and_its_drops_counted() {
    let s = quiet_session(|c| {
        c.busy_timeout(Duration::from_millis(50))
            .spill_max_bytes(16 << 10)
            .flush_interval(Duration::from_secs(3600))
    });
    work(0);
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    for round in 0..2 {
        for i in 0..200 {
            work(round * 1_000 + i);
        }
        s.guard.flush();
    }
    let health = s.guard.health();
    assert!(
        matches!(
            health.state,
            WriterState::Failed {
                reason: FailReason::SpillFull,
                ..
            }
        ),
        "{health:?}"
    );
    assert_eq!(health.dropped, 200, "the second round");
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    let health = s.guard.health();
    assert_eq!(health.state, WriterState::Ok, "{health:?}");
    assert_eq!(stats_sum(&s.path, "dropped") as u64, health.dropped);
}

/// A writer that panics on every batch is stopped after ten: failed for
/// good, and the spans that follow are not recorded.
#[test]
fn a_stopped_writer_is_failed() {
    let s = quiet_session(|c| c);
    let before = real_now();
    // The writer gives up after 10 panics less than a second apart.
    for i in 0..10 {
        s.guard.__panic_writer_on_next_batch();
        work(i);
        s.guard.flush();
    }
    let health = s.guard.health();
    let WriterState::Failed {
        since_ns,
        reason: FailReason::WriterStopped,
    } = health.state
    else {
        panic!("expected a stopped writer: {health:?}");
    };
    assert!(before / 1_000 * 1_000 <= since_ns && since_ns <= real_now());
    assert_eq!(
        serde_json::to_value(&health).unwrap()["reason"],
        "writer_stopped"
    );
}

#[test]
fn a_disabled_guard_answers_disabled() {
    let s = quiet_session(|c| c.enabled(false));
    work(1);
    s.guard.flush();
    let health = s.guard.health();
    assert_eq!(health.state, WriterState::Disabled);
    assert!(!health.is_ok());
    assert_eq!(
        (
            health.queue_depth,
            health.dropped,
            health.failed,
            health.last_commit_ns
        ),
        (0, 0, 0, None)
    );
    assert_eq!(serde_json::to_value(&health).unwrap()["state"], "disabled");

    // A guard returned for an init error says the same.
    let guard = monitor_runtime::init_with_or_disabled(
        Config::default().db_path("/nonexistent-dir/health.db"),
    );
    assert_eq!(guard.health().state, WriterState::Disabled);
}
