//! The replaced system's six stress scenarios, sized by the caller:
//! `tests/load.rs` runs them small and checks the file to the row;
//! `examples/stress.rs` runs them at full scale and prints the figures.
#![allow(dead_code)] // each includer uses its own subset

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{Stream, StreamExt};
use monitor_runtime::prelude::*;

/// Runs `body(worker)` on `workers` OS threads and waits for them all.
pub fn on_threads(workers: usize, body: impl Fn(usize) + Sync) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let body = &body;
            scope.spawn(move || body(worker));
        }
    });
    started.elapsed()
}

/// Two tokio workers, one per core of the machine the figures come from.
fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("tokio runtime")
}

// 1. Many threads calling a trivial function.

#[monitor]
pub fn trivial(i: u64) -> u64 {
    black_box(i).wrapping_mul(31)
}

/// `threads` × `calls` calls of `trivial`; returns how long the calls took.
pub fn sync_threads(threads: usize, calls: u64) -> Duration {
    on_threads(threads, |_| {
        for i in 0..calls {
            black_box(trivial(i));
        }
    })
}

// 2. Mixed async and sync.

#[monitor]
pub fn sync_step(round: u32) -> u32 {
    black_box(round) + 1
}

#[monitor]
pub async fn round(round: u32, pause: Duration) -> u32 {
    let next = sync_step(round);
    tokio::time::sleep(pause).await;
    next
}

#[monitor]
pub async fn async_worker(rounds: u32, pause: Duration) -> u32 {
    let mut sum = 0;
    for r in 0..rounds {
        sum += round(r, pause).await;
    }
    sum
}

#[monitor]
pub fn thread_worker(runtime: &tokio::runtime::Handle, rounds: u32, pause: Duration) -> u32 {
    let mut sum = 0;
    for r in 0..rounds {
        // The OS thread drives its rounds itself; the round is still a
        // child of this call.
        sum += runtime.block_on(round(r, pause));
    }
    sum
}

/// `tasks` tokio tasks and `threads` OS threads, each `rounds` rounds of a
/// sync call and an async sleep of `pause`.
pub fn mixed(tasks: usize, threads: usize, rounds: u32, pause: Duration) -> Duration {
    let runtime = tokio_runtime();
    let started = Instant::now();
    let spawned: Vec<_> = (0..tasks)
        .map(|_| runtime.spawn(async_worker(rounds, pause)))
        .collect();
    let handle = runtime.handle().clone();
    on_threads(threads, |_| {
        thread_worker(&handle, rounds, pause);
    });
    for task in spawned {
        runtime.block_on(task).expect("task");
    }
    started.elapsed()
}

// 3. Workers returning lists, with `ret`.

#[monitor(ret)]
pub fn make_list(len: usize) -> Vec<u64> {
    (0..len as u64).collect()
}

/// The list lengths scenario 3 cycles through, 10 to 10,000 items.
pub const LIST_LENGTHS: [usize; 4] = [10, 100, 1_000, 10_000];

/// When a worker loop stops.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// This many calls per worker.
    Calls(usize),
    /// As many calls as fit in this time.
    Time(Duration),
}

/// `workers` threads calling `make_list` over `LIST_LENGTHS` until `budget`
/// runs out; returns the number of calls made.
pub fn list_workers(workers: usize, budget: Budget) -> u64 {
    let calls = AtomicU64::new(0);
    let started = Instant::now();
    on_threads(workers, |worker| {
        let mut i = worker;
        loop {
            let done = i - worker;
            match budget {
                Budget::Calls(n) if done >= n => break,
                Budget::Time(t) if started.elapsed() >= t => break,
                _ => {}
            }
            black_box(make_list(LIST_LENGTHS[i % LIST_LENGTHS.len()]));
            calls.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
    });
    calls.into_inner()
}

// 4. A 20% error rate.

#[monitor]
pub fn maybe_fail(worker: usize, call: usize) -> Result<usize, String> {
    if call % 5 == 0 {
        Err(error_message(worker, call))
    } else {
        Ok(call)
    }
}

/// The message of `maybe_fail(worker, call)`'s error.
pub fn error_message(worker: usize, call: usize) -> String {
    format!("worker {worker} call {call} failed")
}

/// `workers` × `calls` calls of `maybe_fail`, every fifth an error.
pub fn error_workers(workers: usize, calls: usize) -> Duration {
    on_threads(workers, |worker| {
        for call in 0..calls {
            let _ = black_box(maybe_fail(worker, call));
        }
    })
}

// 5. Large arguments, with `args`.

#[monitor(args)]
pub fn upload(name: &str, body: &str, bytes: &[u8]) -> usize {
    name.len() + body.len() + bytes.len()
}

/// One `upload` of a `size`-byte text and a `size`-byte slice; returns the
/// time the call took.
pub fn large_args(size: usize) -> Duration {
    let body = "b".repeat(size);
    let bytes = vec![7u8; size];
    let started = Instant::now();
    black_box(upload(
        black_box("blob"),
        black_box(&body),
        black_box(&bytes),
    ));
    started.elapsed()
}

// 6. Concurrent streams.

#[monitor]
pub fn tick_work(i: u32) -> u32 {
    black_box(i) * 2
}

#[monitor]
pub fn ticker(items: u32, pause: Duration) -> impl Stream<Item = u32> {
    futures::stream::iter(0..items).then(move |i| async move {
        tokio::time::sleep(pause).await;
        tick_work(i)
    })
}

/// `streams` streams of `items` items, each item after `pause`, consumed
/// concurrently on tokio.
pub fn streams(streams: usize, items: u32, pause: Duration) -> Duration {
    let runtime = tokio_runtime();
    let started = Instant::now();
    runtime.block_on(async {
        let consumers: Vec<_> = (0..streams)
            .map(|_| tokio::spawn(ticker(items, pause).collect::<Vec<u32>>()))
            .collect();
        for consumer in consumers {
            assert_eq!(consumer.await.expect("stream task").len(), items as usize);
        }
    });
    started.elapsed()
}

/// Peak resident memory of this process (`VmHWM`), when the OS tells.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
