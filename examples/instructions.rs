//! A driver for counting instructions per monitored call with callgrind,
//! which counts the same on every run whatever else the machine does (the
//! criterion benches on a shared 2-core guest spread by ±10 ns):
//!
//! ```sh
//! cargo build --release --example instructions
//! valgrind --tool=callgrind --toggle-collect='*run_calls*' \
//!     target/release/examples/instructions enabled     # or: off
//! valgrind --tool=callgrind --toggle-collect='*run_args*' \
//!     target/release/examples/instructions args        # or: unscrubbed
//! valgrind --tool=callgrind --toggle-collect='*run_traced*' \
//!     target/release/examples/instructions layer       # or: registry, floor
//! valgrind --tool=callgrind --toggle-collect='*run_fast*' \
//!     target/release/examples/instructions fastrace
//! ```
//!
//! The totals (`callgrind_annotate`, "PROGRAM TOTALS") divided by the call
//! count give instructions per call: 100,000 calls of a trivial function
//! (`off`: before `init`; `enabled`: writer running), or 20,000 calls of a
//! function with `args` (`args`: `#[monitor(args)]`, scrubbed;
//! `unscrubbed`: the same span recording `format!("{:?}")` by hand), or
//! 100,000 spans of fastrace's `#[trace]` (`fastrace`: 1,000 under each
//! root, with a reporter, as the `overhead` bench has it). The
//! binary has several instrumented functions, as a program does, so the
//! compiler inlines as it would there. BENCHMARKS.md has the figures.

use std::hint::black_box;
use std::time::Duration;

use monitor_runtime::{monitor, Config};

// The function with `args` and its hand-written twin, as the `capture`
// bench has them.
#[path = "../benches/common/mod.rs"]
mod common;
use common::{unscrubbed, with_args, REQUEST};

#[monitor]
#[inline(never)]
fn monitored(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[monitor]
#[inline(never)]
fn fallible(x: u64) -> Result<u64, String> {
    Ok(black_box(x) + 3)
}

#[inline(never)]
fn run_calls(n: u64) -> u64 {
    (0..n).map(|i| monitored(black_box(i))).sum()
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn traced(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[inline(never)]
fn run_traced(n: u64) -> u64 {
    (0..n).map(|i| traced(black_box(i))).sum()
}

#[fastrace::trace]
#[inline(never)]
fn fast(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

/// fastrace as the `overhead` bench has it: 1,000 spans under each root,
/// the roots' creation and drop (their hand-off to the collector) counted.
#[inline(never)]
fn run_fast(n: u64) -> u64 {
    let mut sum = 0;
    for _ in 0..n / 1000 {
        let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
        let _parent = root.set_local_parent();
        sum += (0..1000).map(|i| fast(black_box(i))).sum::<u64>();
    }
    sum
}

struct NullReporter;

impl fastrace::collector::Reporter for NullReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

#[inline(never)]
fn run_args(n: u64, scrub: bool) -> u64 {
    (0..n)
        .map(|i| {
            if scrub {
                with_args(black_box(i), black_box(&REQUEST))
            } else {
                unscrubbed(black_box(i), black_box(&REQUEST))
            }
        })
        .sum()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "enabled".into());
    let guard = match mode.as_str() {
        "off" => None,
        "fastrace" => {
            fastrace::set_reporter(NullReporter, fastrace::collector::Config::default());
            black_box(run_fast(100_000));
            fastrace::flush();
            return Ok(());
        }
        "enabled" | "args" | "unscrubbed" | "layer" | "registry" | "floor" => {
            let dir = tempfile::tempdir()?;
            let config = Config::default()
                .db_path(dir.path().join("instructions.db"))
                .resource_interval(Duration::ZERO);
            Some((monitor_runtime::init_with(config)?, dir))
        }
        other => {
            return Err(format!(
                "expected off, enabled, args, unscrubbed, layer, registry, floor or fastrace, got {other:?}"
            )
            .into())
        }
    };
    black_box(fallible(1)?);
    match mode.as_str() {
        "args" => black_box(run_args(20_000, true)),
        "unscrubbed" => black_box(run_args(20_000, false)),
        "layer" => {
            use tracing_subscriber::layer::SubscriberExt;
            let subscriber =
                tracing_subscriber::registry().with(monitor_runtime::tracing::MonitorLayer::new());
            tracing::subscriber::with_default(subscriber, || black_box(run_traced(100_000)))
        }
        "registry" => tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            black_box(run_traced(100_000))
        }),
        "floor" => {
            use tracing_subscriber::layer::SubscriberExt;
            let subscriber =
                tracing_subscriber::registry().with(tracing_subscriber::layer::Identity::new());
            tracing::subscriber::with_default(subscriber, || black_box(run_traced(100_000)))
        }
        _ => black_box(run_calls(100_000)),
    };
    if let Some((guard, _dir)) = guard {
        guard.flush();
    }
    Ok(())
}
