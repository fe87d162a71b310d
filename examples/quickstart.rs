//! Quickstart: record a small workload into `monitor.db`, then run
//! `cargo run -- --db monitor.db` to summarise it.
//!
//! Until `#[monitor]` lands, spans are opened with the runtime's span API,
//! which is what the attribute generates.

use std::error::Error;
use std::thread;

use monitor_runtime::{Callsite, EnteredSpan, SpanKind};

static HANDLE_REQUEST: Callsite = Callsite::new(
    "handle_request",
    module_path!(),
    "http",
    file!(),
    line!(),
    SpanKind::Sync,
);
static PARSE: Callsite = Callsite::new(
    "parse",
    module_path!(),
    module_path!(),
    file!(),
    line!(),
    SpanKind::Sync,
);
static QUERY: Callsite = Callsite::new(
    "query",
    module_path!(),
    "db",
    file!(),
    line!(),
    SpanKind::Sync,
);

fn parse(input: &str) -> Result<u64, std::num::ParseIntError> {
    let mut span = EnteredSpan::new(&PARSE);
    let parsed = input.parse::<u64>();
    if let Err(e) = &parsed {
        span.record_error(e);
    }
    parsed
}

fn query(id: u64) -> u64 {
    let mut span = EnteredSpan::new(&QUERY);
    span.record("id", id);
    (0..id % 1000).map(|x| x * x).sum()
}

fn handle_request(input: &str) -> Option<u64> {
    let _span = EnteredSpan::new(&HANDLE_REQUEST);
    let id = parse(input).ok()?;
    Some(query(id))
}

fn main() -> Result<(), Box<dyn Error>> {
    // Reads monitor.toml / MONITOR_* when present; writes monitor.db here.
    let guard = monitor_runtime::init()?;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || {
                    for i in 0..2_500u64 {
                        // Every 50th request carries a malformed id.
                        let input = if i % 50 == 0 {
                            format!("{i}x")
                        } else {
                            (i * 7 + w).to_string()
                        };
                        handle_request(&input);
                    }
                })
        })
        .collect::<Result<_, _>>()?;
    for worker in workers {
        worker.join().map_err(|_| "worker panicked")?;
    }
    guard.flush();
    println!(
        "wrote 10000 requests to {}",
        guard
            .db_path()
            .map_or("nothing".into(), |p| p.display().to_string())
    );
    Ok(())
}
