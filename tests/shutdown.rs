//! `guard.shutdown(timeout).await`: an async program stops monitoring
//! without stalling its other tasks while the writer drains (dropping the
//! guard on a current-thread runtime stalled every task for about a second
//! with a million spans queued), and every span is stored.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::read_spans;
use monitor_runtime::{monitor, Config};

#[monitor]
fn step(i: u64) -> u64 {
    i + 1
}

const QUEUED: u64 = 300_000;

#[test]
fn shutdown_lets_other_tasks_run_and_stores_every_span() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&db)
            .resource_interval(Duration::ZERO),
    )
    .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU64::new(0));
    let (completed, ticks_during) = runtime.block_on(async {
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        });
        for i in 0..QUEUED {
            step(i);
        }
        let before = ticks.load(Ordering::Relaxed);
        let completed = guard.shutdown(Duration::from_secs(60)).await;
        let during = ticks.load(Ordering::Relaxed) - before;
        ticker.abort();
        (completed, during)
    });
    assert!(completed, "the shutdown finished within its timeout");
    assert!(
        ticks_during > 0,
        "another task ran while the writer drained"
    );
    let stored = read_spans(&db).iter().filter(|r| r.name == "step").count() as u64;
    assert_eq!(stored, QUEUED);
}
