//! The replaced system's stress scenarios at full scale (1,000× the old
//! sizes where that fits one machine); prints one Markdown row per run for
//! BENCHMARKS.md. `tests/load.rs` runs the same scenarios small.
//!
//! ```text
//! cargo run --release --example stress            # every scenario
//! cargo run --release --example stress -- errors  # those whose name contains "errors"
//! ```

#[path = "../tests/stress/mod.rs"]
mod stress;

use std::path::Path;
use std::time::{Duration, Instant};

use monitor_runtime::{Config, Guard};
use rusqlite::Connection;
use stress::Budget;

/// The old system's throughput: 20 threads, decorated calls per second.
const OLD_CALLS_PER_SEC: f64 = 1_089.0;

/// What a run left in its file.
struct Outcome {
    written: u64,
    dropped: u64,
    errors_written: u64,
    failed: u64,
    max_depth: u64,
}

fn outcome(path: &Path) -> Outcome {
    let conn = Connection::open(path).expect("open the file");
    conn.query_row(
        "SELECT total(written) + total(replayed), total(dropped), total(errors_written), \
         total(failed), max(queue_depth_max) FROM monitor_stats",
        [],
        |r| {
            Ok(Outcome {
                written: r.get::<_, f64>(0)? as u64,
                dropped: r.get::<_, f64>(1)? as u64,
                errors_written: r.get::<_, f64>(2)? as u64,
                failed: r.get::<_, f64>(3)? as u64,
                max_depth: r.get::<_, i64>(4)? as u64,
            })
        },
    )
    .expect("read monitor_stats")
}

/// Runs `body` under a fresh runtime; prints its row. `body` returns the
/// calls it made and how long they took.
fn run(
    filter: &Option<String>,
    scenario: &str,
    configure: impl FnOnce(Config) -> Config,
    body: impl FnOnce(&mut Guard) -> (u64, Duration),
) {
    if filter.as_deref().is_some_and(|f| !scenario.contains(f)) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("stress.db");
    let config = configure(Config::default().db_path(&path));
    let mut guard = monitor_runtime::init_with(config).expect("init");
    let started = Instant::now();
    let (calls, calls_took) = body(&mut guard);
    guard.flush();
    let stored_took = started.elapsed();
    drop(guard);
    let o = outcome(&path);
    let per_sec = |d: Duration| calls as f64 / d.as_secs_f64();
    println!(
        "| {scenario} | {calls} | {:.2} s | {:.0} ({:.0}×) | {:.2} s | {:.0} | {} | {} | {} | {} | {} | {:.0} MiB |",
        calls_took.as_secs_f64(),
        per_sec(calls_took),
        per_sec(calls_took) / OLD_CALLS_PER_SEC,
        stored_took.as_secs_f64(),
        o.written as f64 / stored_took.as_secs_f64(),
        o.written,
        o.dropped,
        o.errors_written,
        o.failed,
        o.max_depth,
        stress::peak_rss_bytes().unwrap_or(0) as f64 / (1 << 20) as f64,
    );
}

fn main() {
    let filter = std::env::args().nth(1);
    println!("| scenario | spans | calls took | calls/s (× old) | stored after | written/s | written | dropped | errors | failed | max depth | peak RSS |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let quiet = |c: Config| c.resource_interval(Duration::ZERO);

    for per_thread in [50_000, 500_000] {
        run(&filter, "1. 20 threads, trivial fn", quiet, |_| {
            (20 * per_thread, stress::sync_threads(20, per_thread))
        });
    }
    run(
        &filter,
        "2. mixed: 10k tasks + 100 threads × 50 rounds",
        quiet,
        |_| {
            let took = stress::mixed(10_000, 100, 50, Duration::from_millis(1));
            // worker + 50 × (round + sync_step) per task or thread
            (10_100 * 101, took)
        },
    );
    run(&filter, "3. 50 workers, 5 s, lists with ret", quiet, |_| {
        let started = Instant::now();
        let calls = stress::list_workers(50, Budget::Time(Duration::from_secs(5)));
        (calls, started.elapsed())
    });
    run(&filter, "4. 20 workers × 100k, 20% errors", quiet, |_| {
        (2_000_000, stress::error_workers(20, 100_000))
    });
    for mb in [1, 5, 20] {
        let scenario = format!("5. args of {mb} MiB, ×100");
        run(&filter, &scenario, quiet, |_| {
            let took = (0..100).map(|_| stress::large_args(mb << 20)).sum();
            (100, took)
        });
    }
    run(
        &filter,
        "6. 20k concurrent streams × 10 items",
        quiet,
        |_| {
            let took = stress::streams(20_000, 10, Duration::from_millis(1));
            (20_000 * 11, took)
        },
    );
    run(
        &filter,
        "faults: 20 threads × 50k, database locked throughout",
        |c| quiet(c).busy_timeout(Duration::from_millis(100)),
        |guard| {
            let db = guard.db_path().expect("enabled").to_owned();
            let holder = Connection::open(&db).expect("open");
            holder.execute_batch("BEGIN EXCLUSIVE").expect("lock");
            let took = stress::sync_threads(20, 50_000);
            let spilling = Instant::now();
            guard.flush();
            let spill_took = spilling.elapsed();
            holder.execute_batch("COMMIT").expect("unlock");
            drop(holder);
            let replaying = Instant::now();
            guard.flush();
            eprintln!(
                "faults: every span spilled {:.2} s after the calls ended; replayed in {:.2} s",
                spill_took.as_secs_f64(),
                replaying.elapsed().as_secs_f64()
            );
            (1_000_000, took)
        },
    );
    run(
        &filter,
        "burst: 3M (20% errors) into 1M, writer held",
        |c| quiet(c).flush_interval(Duration::from_secs(3600)),
        |guard| {
            let hold = guard.hold_writer();
            let took = stress::error_workers(20, 150_000);
            drop(hold);
            (3_000_000, took)
        },
    );
}
