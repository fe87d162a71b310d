//! What catching panics and scrubbing secrets cost per call, A/B in one run:
//! - `catch_no_init` / `catch_enabled`: `#[monitor]` on a trivial function,
//!   which catches the unwind where the span ends to read a panic's message
//!   from the payload;
//! - `guard_no_init` / `guard_enabled`: the same function with a
//!   hand-written `EnteredSpan` guard, which is what `#[monitor]` generated
//!   before it caught unwinds;
//! - `args_scrubbed`: `#[monitor(args)]` on a function taking a request
//!   struct (rendered with `Debug`, cut to `max_value_len`, its `password`
//!   masked while it is written);
//! - `args_unscrubbed`: the same span recording `format!("{:?}")` by hand.
//!
//! With the writer running, calls come in bursts of 100,000 that fit the
//! queue, with an untimed `flush` between bursts; the bench asserts that
//! every call was stored. This binary has four instrumented functions, so
//! the compiler inlines less than in `overhead`'s one: compare within this
//! run (BENCHMARKS.md).
//!
//! Run: `cargo bench --bench capture`.

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{bursts, unscrubbed, with_args, REQUEST};
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use monitor_runtime::{monitor, Callsite, Config, EnteredSpan, Guard, SpanKind};

#[monitor]
#[inline(never)]
fn monitored(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

static GUARDED: Callsite = Callsite::new(
    "guarded",
    module_path!(),
    module_path!(),
    file!(),
    line!(),
    SpanKind::Sync,
);

/// What `#[monitor]` generated for `monitored` before it caught unwinds.
#[inline(never)]
fn guarded(x: u64) -> u64 {
    let _span = EnteredSpan::new(&GUARDED);
    black_box(x).wrapping_mul(31)
}

/// A case with the writer running: bursts of 100,000 calls that fit the
/// queue, an untimed `flush` between them; `calls` counts what must be
/// stored.
fn enabled(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    guard: &Guard,
    calls: &mut u64,
    call: impl Fn(u64) -> u64,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            *calls += iters;
            bursts(iters, guard, &call)
        })
    });
}

fn capture(c: &mut Criterion) {
    let mut group = c.benchmark_group("capture");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));

    group.bench_function("catch_no_init", |b| b.iter(|| monitored(black_box(7))));
    group.bench_function("guard_no_init", |b| b.iter(|| guarded(black_box(7))));

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let guard = monitor_runtime::init_with(Config::default().db_path(&db)).unwrap();
    let mut calls = 0;
    let (g, c) = (&mut group, &mut calls);
    enabled(g, "catch_enabled", &guard, c, monitored);
    enabled(g, "guard_enabled", &guard, c, guarded);
    enabled(g, "args_scrubbed", &guard, c, |i| {
        with_args(i, black_box(&REQUEST))
    });
    enabled(g, "args_unscrubbed", &guard, c, |i| {
        unscrubbed(i, black_box(&REQUEST))
    });
    group.finish();

    guard.flush();
    let conn = rusqlite::Connection::open(&db).unwrap();
    common::assert_all_stored(&db, calls);
    let fields: String = conn
        .query_row(
            "SELECT fields FROM spans WHERE name = 'with_args' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        fields.contains(r#"password: \"***\""#),
        "the scrubbed case masks: {fields}"
    );
}

criterion_group!(benches, capture);
criterion_main!(benches);
