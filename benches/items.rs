//! Cost per item of a monitored stream and iterator, side by side in one
//! run with the bare ones, the writer running:
//! - `iter_bare` / `stream_bare`: the same sequence without `#[monitor]`;
//! - `iter_monitored` / `stream_monitored`: one span per sequence, busy time
//!   and items counted per item;
//! - `iter_item_spans` / `stream_item_spans`: one child span per item too.
//!
//! Each sample consumes sequences of 1,000 items, so the figures are per
//! item (criterion's throughput) with a span's own cost spread over 1,000.
//! `flush` runs untimed every 100 sequences, so the queue always has room.
//!
//! Run: `cargo bench --bench items`. Figures go in BENCHMARKS.md.

use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::stream::{self, Stream};
use monitor_runtime::{monitor, Config, Guard};

const ITEMS: u64 = 1_000;

fn bare_iter(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| black_box(i).wrapping_mul(31))
}

#[monitor]
fn monitored_iter(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| black_box(i).wrapping_mul(31))
}

#[monitor(item_spans)]
fn item_spans_iter(n: u64) -> impl Iterator<Item = u64> {
    (0..n).map(|i| black_box(i).wrapping_mul(31))
}

fn bare_stream(n: u64) -> impl Stream<Item = u64> {
    stream::iter((0..n).map(|i| black_box(i).wrapping_mul(31)))
}

#[monitor]
fn monitored_stream(n: u64) -> impl Stream<Item = u64> {
    stream::iter((0..n).map(|i| black_box(i).wrapping_mul(31)))
}

#[monitor(item_spans)]
fn item_spans_stream(n: u64) -> impl Stream<Item = u64> {
    stream::iter((0..n).map(|i| black_box(i).wrapping_mul(31)))
}

/// Sums a stream by polling it directly: no executor in the figures.
fn sum_stream(stream: impl Stream<Item = u64>) -> u64 {
    let mut stream = std::pin::pin!(stream);
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    let mut sum = 0u64;
    loop {
        match Pin::as_mut(&mut stream).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => sum = sum.wrapping_add(item),
            Poll::Ready(None) => return sum,
            Poll::Pending => unreachable!("stream::iter is always ready"),
        }
    }
}

/// Times `iters` runs of `consume`, flushing untimed every 100 runs.
fn timed(iters: u64, guard: &Guard, mut consume: impl FnMut() -> u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = 100.min(iters - done);
        let started = Instant::now();
        for _ in 0..n {
            black_box(consume());
        }
        total += started.elapsed();
        guard.flush();
        done += n;
    }
    total
}

fn items(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let guard =
        monitor_runtime::init_with(Config::default().db_path(dir.path().join("bench.db"))).unwrap();

    let mut group = c.benchmark_group("items");
    group
        .throughput(Throughput::Elements(ITEMS))
        .sample_size(30)
        .measurement_time(Duration::from_secs(4));

    group.bench_function("iter_bare", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || bare_iter(ITEMS).sum()))
    });
    group.bench_function("iter_monitored", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || monitored_iter(ITEMS).sum()))
    });
    group.bench_function("iter_item_spans", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || item_spans_iter(ITEMS).sum()))
    });
    group.bench_function("stream_bare", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || sum_stream(bare_stream(ITEMS))))
    });
    group.bench_function("stream_monitored", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || sum_stream(monitored_stream(ITEMS))))
    });
    group.bench_function("stream_item_spans", |b| {
        b.iter_custom(|iters| timed(iters, &guard, || sum_stream(item_spans_stream(ITEMS))))
    });
    group.finish();

    guard.flush();
    let conn = rusqlite::Connection::open(dir.path().join("bench.db")).unwrap();
    let (incomplete, dropped): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM spans WHERE kind IN ('iter', 'stream') AND items != ?1),
                    (SELECT coalesce(sum(dropped), 0) FROM monitor_stats)",
            [ITEMS as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (incomplete, dropped),
        (0, 0),
        "every sequence's span must be stored with all its items"
    );
}

criterion_group!(benches, items);
criterion_main!(benches);
