//! An error flood: 10M error spans in a tight loop while another thread
//! makes normal spans flat out with `overflow = "block"`. It reports the
//! peak RSS against `queue.error_max_bytes`, the normal thread's rate
//! before, during and after the flood, how long the final drop takes, and
//! checks that every error is in the file. A single measured run, not a
//! criterion loop: what matters is a peak and a count, not a mean.
//!
//! ```text
//! cargo bench --bench error_flood                # error_max_bytes = 64 MiB (default)
//! cargo bench --bench error_flood -- unbounded   # error_max_bytes = 0, as before
//! FLOOD_ERRORS=1000000 cargo bench --bench error_flood
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_runtime::{monitor, Config, Overflow};

#[monitor]
fn failing(i: u64) -> Result<u64, String> {
    Err(format!("flood error {i:>8}"))
}

#[monitor]
fn steady(i: u64) -> u64 {
    std::hint::black_box(i) + 1
}

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    // SAFETY: `getrusage` fills the zeroed struct we pass; no other memory
    // is touched.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    usage.ru_maxrss as u64 * 1024
}

fn main() {
    let unbounded = std::env::args().any(|a| a == "unbounded");
    let errors: u64 = std::env::var("FLOOD_ERRORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("flood.db");
    let budget = if unbounded { 0 } else { 64 << 20 };
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&db)
            .overflow(Overflow::Block)
            // A normal lane of 100,000 records (about 15 MiB): the peak
            // measures the error lane, and the normal thread's rate is the
            // writer's, not a lane filling up.
            .queue_capacity(100_000)
            .queue_error_max_bytes(budget)
            .resource_interval(Duration::ZERO),
    )
    .unwrap();

    let normal = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (normal, stop) = (normal.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                steady(i);
                i += 1;
                normal.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let rate_over = |window: Duration| {
        let before = normal.load(Ordering::Relaxed);
        std::thread::sleep(window);
        (normal.load(Ordering::Relaxed) - before) as f64 / window.as_secs_f64()
    };

    let rss_before = peak_rss();
    let rate_before = rate_over(Duration::from_secs(2));
    let flood_started = Instant::now();
    let normal_at_flood = normal.load(Ordering::Relaxed);
    let flood = std::thread::spawn(move || {
        for i in 0..errors {
            let _ = failing(i);
        }
    });
    flood.join().unwrap();
    let flood_secs = flood_started.elapsed().as_secs_f64();
    let rate_during = (normal.load(Ordering::Relaxed) - normal_at_flood) as f64 / flood_secs;
    let rate_after = rate_over(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();

    let drop_started = Instant::now();
    drop(guard);
    let drop_secs = drop_started.elapsed().as_secs_f64();
    let rss_peak = peak_rss();

    let conn = rusqlite::Connection::open(&db).unwrap();
    let stored: u64 = conn
        .query_row(
            "SELECT count(*) FROM spans WHERE name = 'failing' AND status = 'error'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let (spilled, dropped): (f64, f64) = conn
        .query_row(
            "SELECT total(spilled), total(dropped) FROM monitor_stats",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();

    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "error_max_bytes: {}",
        if unbounded {
            "unbounded".to_owned()
        } else {
            format!("{:.0} MiB", mib(budget as u64))
        }
    );
    println!(
        "errors: {errors} in {flood_secs:.1} s ({:.0}/s); stored {stored}; spilled {spilled}; dropped {dropped}",
        errors as f64 / flood_secs
    );
    println!(
        "peak RSS: {:.0} MiB (before the flood {:.0} MiB)",
        mib(rss_peak),
        mib(rss_before)
    );
    println!(
        "normal spans/s: before {rate_before:.0}, during {rate_during:.0}, after {rate_after:.0}"
    );
    println!("drop(guard): {drop_secs:.1} s");
    assert_eq!(stored, errors, "every error is stored");
    if !unbounded {
        let bound = budget as u64 + (100 << 20);
        assert!(
            rss_peak < bound,
            "peak RSS {:.0} MiB over the budget + 100 MiB",
            mib(rss_peak)
        );
    }
}
