//! The `tracing` bridge's cost per span, side by side in one run, each
//! case on the same trivial `#[tracing::instrument]` function:
//! - `monitor_layer`: `registry()` with `MonitorLayer`, the writer running
//!   (bursts of 100,000 with an untimed `flush` between them; every span
//!   is checked stored);
//! - `registry_alone`: `registry()` with no layer, as the issue names it.
//!   Such a registry never frees a closed span (tokio-rs/tracing#900): it
//!   skips the close's clearing and grows without bound;
//! - `registry_noop_layer`: `registry()` with a layer that does nothing, so
//!   spans are freed when they close: the floor for any layer;
//! - `fmt_file`: `fmt` logging span closes into a non-blocking file writer
//!   that blocks rather than drops;
//! - `monitor`: `#[monitor]` on the same function, the writer running.
//!
//! Run: `cargo bench --bench tracing_layer`. Figures go in BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use common::bursts;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use monitor_runtime::tracing::MonitorLayer;
use monitor_runtime::{monitor, Config};
use tracing_subscriber::layer::SubscriberExt;

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[monitor]
#[inline(never)]
fn monitored(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

/// Benches `call` with monitoring writing to `db` (bursts with an untimed
/// flush between them), then checks that every call was stored.
fn persisting(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    db: &Path,
    call: fn(u64) -> u64,
) {
    let guard = monitor_runtime::init_with(Config::default().db_path(db)).unwrap();
    let mut calls = 0;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            calls += iters;
            bursts(iters, &guard, call)
        })
    });
    guard.flush();
    common::assert_all_stored(db, calls);
}

fn tracing_layer(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracing_layer");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));
    let dir = tempfile::tempdir().unwrap();
    let subscriber = tracing_subscriber::registry().with(MonitorLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        persisting(
            &mut group,
            "monitor_layer",
            &dir.path().join("layer.db"),
            traced,
        )
    });
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        group.bench_function("registry_alone", |b| b.iter(|| traced(black_box(7))));
    });
    tracing::subscriber::with_default(
        tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new()),
        || {
            group.bench_function("registry_noop_layer", |b| b.iter(|| traced(black_box(7))));
        },
    );
    {
        let (subscriber, _flush_on_drop) = common::fmt_to_file(&dir.path().join("tracing.log"));
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function("fmt_file", |b| b.iter(|| traced(black_box(7))));
        });
    }
    persisting(
        &mut group,
        "monitor",
        &dir.path().join("monitor.db"),
        monitored,
    );
    group.finish();
}

criterion_group!(benches, tracing_layer);
criterion_main!(benches);
