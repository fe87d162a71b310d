//! Cost of `guard.health()`, which a program's `/healthz` calls on every
//! request: the writer running, a commit made (so the clock is read for its
//! age), through the guard and through a `HealthProbe`; next to the one
//! clock read it makes.
//!
//! Run: `cargo bench --bench health`. Figures go in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use monitor_runtime::{monitor, Config};

#[monitor]
fn work(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

fn health(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(dir.path().join("health.db"))
            .resource_interval(Duration::ZERO),
    )
    .unwrap();
    for i in 0..1_000 {
        work(i);
    }
    guard.flush();
    let probe = guard.health_probe();
    assert!(guard.health().is_ok());
    assert!(guard.health().last_commit_ns.is_some());

    let mut group = c.benchmark_group("health");
    group.bench_function("guard", |b| b.iter(|| black_box(guard.health())));
    group.bench_function("probe", |b| b.iter(|| black_box(probe.health())));
    // The floor: the one clock read in `health()`, for the commit's age.
    group.bench_function("system_time_now", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    group.finish();
}

criterion_group!(benches, health);
criterion_main!(benches);
