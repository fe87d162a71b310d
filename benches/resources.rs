//! Per-call cost of the per-span resource figures, side by side in one run
//! on the same trivial function, writer running, bursts that fit the queue:
//! - `enabled`: `#[monitor]` as in the overhead bench (the sampler's RSS is
//!   read from memory at every span end);
//! - `counting_alloc`: with `CountingAllocator` as the global allocator,
//!   spans read the thread's byte counter at start and end;
//! - `thread_cpu`: `resources.thread_cpu = true`, two thread CPU clock
//!   reads (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)`) per span.
//!
//! This binary installs the counting allocator; `enabled` and `thread_cpu`
//! run with span counting paused, as if it were not installed.
//!
//! Run: `cargo bench --bench resources`. Figures go in BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::bursts;
use criterion::{criterion_group, criterion_main, Criterion};
use monitor_runtime::alloc::CountingAllocator;
use monitor_runtime::{monitor, Config};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

#[monitor]
#[inline(never)]
fn monitored(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

fn resources(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("resources");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    for (case, thread_cpu, count_alloc) in [
        ("enabled", false, false),
        ("counting_alloc", false, true),
        ("thread_cpu", true, false),
    ] {
        let db = dir.path().join(format!("{case}.db"));
        let guard =
            monitor_runtime::init_with(Config::default().db_path(&db).thread_cpu(thread_cpu))
                .unwrap();
        monitor_runtime::alloc::__count_spans(count_alloc);
        group.bench_function(case, |b| {
            b.iter_custom(|iters| bursts(iters, &guard, monitored))
        });
        guard.flush();
        let (measured, dropped): (i64, i64) = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(
                "SELECT (SELECT count(*) FROM spans WHERE (alloc_bytes IS NOT NULL) = ?1
                                                   AND (cpu_ns IS NOT NULL) = ?2),
                        (SELECT total(dropped) FROM monitor_stats)",
                [count_alloc, thread_cpu],
                |r| Ok((r.get(0)?, r.get::<_, f64>(1)? as i64)),
            )
            .unwrap();
        assert!(
            measured > 0 && dropped == 0,
            "{case}: {measured} spans with the figures, {dropped} dropped"
        );
        drop(guard);
    }
    group.finish();
}

criterion_group!(benches, resources);
criterion_main!(benches);
