//! What the benches (and `examples/instructions.rs`) share: timed bursts,
//! and a function with `args` next to the same span recorded by hand.
#![allow(dead_code)] // each user takes what it needs

use std::hint::black_box;
use std::time::{Duration, Instant};

use monitor_runtime::{monitor, Callsite, EnteredSpan, FieldValue, Guard, SpanKind};

/// Runs `iters` calls of `call` with the writer running, timing only the
/// calls: bursts of 100,000, which fit the queue, with an untimed `flush`
/// after each, so what is measured is the hot path, not drops.
pub fn bursts(iters: u64, guard: &Guard, call: impl Fn(u64) -> u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = 100_000.min(iters - done);
        let started = Instant::now();
        for i in 0..n {
            black_box(call(black_box(i)));
        }
        total += started.elapsed();
        guard.flush();
        done += n;
    }
    total
}

/// A `fmt` subscriber logging span closes into a non-blocking writer over
/// the file `path`, and the guard that flushes it. Not lossy: a lossy
/// writer drops lines once its buffer fills, and a bench would time the
/// drops.
pub fn fmt_to_file(
    path: &std::path::Path,
) -> (
    impl tracing::Subscriber + Send + Sync,
    tracing_appender::non_blocking::WorkerGuard,
) {
    let file = std::fs::File::create(path).unwrap();
    let (writer, flush_on_drop) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(file);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .finish();
    (subscriber, flush_on_drop)
}

/// Asserts that the file at `db` stored `calls` spans and dropped none: a
/// bench must time stored spans, not drops.
pub fn assert_all_stored(db: &std::path::Path, calls: u64) {
    let (written, dropped): (i64, i64) = rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT sum(written), sum(dropped) FROM monitor_stats",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        written as u64 == calls && dropped == 0,
        "the bench must measure stored spans: {calls} calls, {written} written, {dropped} dropped"
    );
}

/// A request as handlers take them: a few fields, one of them secret.
#[derive(Debug)]
#[allow(dead_code)] // read through Debug
pub struct Request {
    user: &'static str,
    page: u32,
    password: &'static str,
    tags: [&'static str; 2],
}

pub const REQUEST: Request = Request {
    user: "ann",
    page: 2,
    password: "hunter2",
    tags: ["a", "b"],
};

/// `#[monitor(args)]`: the request rendered with `Debug`, cut to
/// `max_value_len`, its `password` masked while it is written.
#[monitor(args)]
#[inline(never)]
pub fn with_args(id: u64, req: &Request) -> u64 {
    black_box(id).wrapping_mul(31) + u64::from(req.page)
}

static UNSCRUBBED: Callsite = Callsite::new(
    "unscrubbed",
    module_path!(),
    module_path!(),
    file!(),
    line!(),
    SpanKind::Sync,
);

/// `with_args` recording its arguments by hand with `format!("{:?}")`: no
/// bound while formatting, no scrubbing.
#[inline(never)]
pub fn unscrubbed(id: u64, req: &Request) -> u64 {
    let mut span = EnteredSpan::new(&UNSCRUBBED);
    if span.is_recording() {
        span.__record_checked("id", FieldValue::U64(id));
        span.__record_checked("req", FieldValue::Str(format!("{req:?}")));
    }
    black_box(id).wrapping_mul(31) + u64::from(req.page)
}

macro_rules! callsites {
    ($($name:ident),*) => {
        [$({
            static SITE: Callsite = Callsite::new(stringify!($name), "bench::app", "app", file!(), line!(), SpanKind::Sync);
            &SITE
        }),*]
    };
}

/// The big file of the `cli` and `serve` benches: `spans` spans of 20
/// functions, three levels deep, every 100th leaf failing; then, when
/// `trace` is not 0, one trace of `trace` spans (a root over children of
/// ten grandchildren each), whose id is returned.
pub fn record_file(db: &std::path::Path, spans: usize, trace: usize) -> Option<i64> {
    let sites: [&'static Callsite; 20] = callsites!(
        f00, f01, f02, f03, f04, f05, f06, f07, f08, f09, f10, f11, f12, f13, f14, f15, f16, f17,
        f18, f19
    );
    let guard = monitor_runtime::init_with(
        monitor_runtime::Config::default()
            .db_path(db)
            .overflow(monitor_runtime::Overflow::Block)
            .queue_capacity(100_000),
    )
    .unwrap();
    let mut made = 0;
    while made < spans {
        let i = made / 3;
        let _root = EnteredSpan::new(sites[i % 20]);
        let _child = EnteredSpan::new(sites[(i + 7) % 20]);
        let mut leaf = EnteredSpan::new(sites[(i + 13) % 20]);
        if i % 100 == 0 {
            leaf.record_error("synthetic failure");
        }
        made += 3;
    }
    let trace_id = (trace > 0).then(|| {
        let _root = EnteredSpan::new(sites[0]);
        let id = monitor_runtime::current_span().unwrap().trace_id as i64;
        let mut made = 1;
        while made < trace {
            let _child = EnteredSpan::new(sites[1 + made % 19]);
            made += 1;
            for k in 0..10 {
                if made == trace {
                    break;
                }
                drop(EnteredSpan::new(sites[1 + (made + k) % 19]));
                made += 1;
            }
        }
        id
    });
    drop(guard);
    trace_id
}

/// Runs the `monitor` CLI at `bin` (`env!("CARGO_BIN_EXE_monitor")`, which
/// only benches have) with `--db db` and `args`; it must succeed. Returns
/// its stdout.
pub fn monitor_stdout(bin: &str, db: &std::path::Path, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(bin)
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
