//! Cost per call of instrumentation, side by side in one run, on the same
//! trivial function:
//! - `bare`: no instrumentation;
//! - `monitor_no_init`: `#[monitor]` before `init` (monitoring off);
//! - `monitor_enabled`: `#[monitor]` with the writer running. Calls come in
//!   bursts of 100,000 that fit the queue's capacity, with an untimed
//!   `flush` between bursts: this measures the hot path, not drops;
//! - `monitor_writer_held`: the same, with the writer held during each
//!   timed burst and released for the flush, so the writer's work does not
//!   share the machine with the calls;
//! - `tracing_file`: `#[tracing::instrument]` with a `fmt` subscriber that
//!   logs span closes into a non-blocking file writer that blocks rather
//!   than drops lines when its buffer is full;
//! - `fastrace_reporter`: `#[fastrace::trace]` under a root span, with a
//!   reporter that receives every span (bursts of 1,000 per root, below
//!   fastrace's per-parent limit).
//!
//! Run: `cargo bench --bench overhead`. Figures go in BENCHMARKS.md.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::bursts;
use criterion::{criterion_group, criterion_main, Criterion};
use fastrace::collector::{Config as FastraceConfig, Reporter, SpanContext, SpanRecord};
use monitor_runtime::{monitor, Config};

#[inline(never)]
fn bare(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[monitor]
#[inline(never)]
fn monitored(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[fastrace::trace]
#[inline(never)]
fn fast(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

static REPORTED: AtomicU64 = AtomicU64::new(0);

struct CountingReporter;

impl Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<SpanRecord>) {
        REPORTED.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

fn overhead(c: &mut Criterion) {
    let mut group = c.benchmark_group("overhead");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));

    group.bench_function("bare", |b| b.iter(|| bare(black_box(7))));
    group.bench_function("monitor_no_init", |b| b.iter(|| monitored(black_box(7))));

    let dir = tempfile::tempdir().unwrap();
    {
        let guard =
            monitor_runtime::init_with(Config::default().db_path(dir.path().join("bench.db")))
                .unwrap();
        let mut calls = 0;
        group.bench_function("monitor_enabled", |b| {
            b.iter_custom(|iters| {
                calls += iters;
                bursts(iters, &guard, monitored)
            })
        });
        guard.flush();
        common::assert_all_stored(&dir.path().join("bench.db"), calls);

        // The same calls with the writer held during each timed burst: the
        // producer's own cost, without the writer's SQLite work running on
        // the other core meanwhile (on 2 cores it takes a share).
        let mut guard = guard;
        group.bench_function("monitor_writer_held", |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    let n = 100_000.min(iters - done);
                    let hold = guard.hold_writer();
                    let started = Instant::now();
                    for i in 0..n {
                        black_box(monitored(black_box(i)));
                    }
                    total += started.elapsed();
                    drop(hold);
                    guard.flush();
                    calls += n;
                    done += n;
                }
                total
            })
        });
        guard.flush();
        common::assert_all_stored(&dir.path().join("bench.db"), calls);
    }

    {
        let (subscriber, _flush_on_drop) = common::fmt_to_file(&dir.path().join("tracing.log"));
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function("tracing_file", |b| b.iter(|| traced(black_box(7))));
        });
    }

    fastrace::set_reporter(CountingReporter, FastraceConfig::default());
    let mut spans = 0;
    group.bench_function("fastrace_reporter", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = 1000.min(iters - done);
                // The root's creation and drop are timed too: dropping it is
                // where fastrace hands the local spans to its collector.
                let started = Instant::now();
                let root = fastrace::Span::root("root", SpanContext::random());
                {
                    let _parent = root.set_local_parent();
                    for i in 0..n {
                        black_box(fast(black_box(i)));
                    }
                }
                drop(root);
                total += started.elapsed();
                spans += n + 1;
                done += n;
            }
            fastrace::flush();
            total
        })
    });
    assert_eq!(
        REPORTED.load(Ordering::Relaxed),
        spans,
        "the reporter must receive every span"
    );
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
