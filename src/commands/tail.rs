//! `monitor tail`: prints spans as they are written, until Ctrl-C.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::db::{Db, SpanRow};
use crate::render::{self, Out};
use crate::Failure;

/// Spans reach the file up to a flush interval after they end, and a batch
/// may hold spans that ended in any order: look back this far each time.
const LOOK_BACK_NS: i64 = 30_000_000_000;

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn print(out: &Out, span: &SpanRow) {
    if out.json {
        println!("{}", span.to_json());
        return;
    }
    let status = match &span.error {
        Some(error) => format!("{}: {error}", span.status),
        None => span.status.clone(),
    };
    println!(
        "{}  {:<32} {:>10}  {status}  trace {}",
        render::timestamp(span.end_ns()),
        span.name,
        render::duration(span.duration_ns),
        span.trace_id
    );
}

pub fn run(
    db: &Db,
    out: &Out,
    errors_only: bool,
    interval_ms: u64,
    max: Option<usize>,
) -> Result<(), Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .map_err(|e| format!("cannot catch Ctrl-C: {e}"))?;
    }
    let filter = if errors_only {
        "start_ns + duration_ns >= ? AND status IN ('error', 'panic')"
    } else {
        "start_ns + duration_ns >= ?"
    };
    // Spans that ended before now are history, not news.
    let started = now_ns();
    let mut seen: HashMap<i64, i64> = HashMap::new();
    let mut shown = 0usize;
    eprintln!("following {} (Ctrl-C to stop)", db.path.display());
    while !stop.load(Ordering::Relaxed) {
        let floor = started.max(now_ns() - LOOK_BACK_NS);
        let since = u64::try_from(floor - LOOK_BACK_NS).unwrap_or(0);
        let mut fresh = db.spans(
            Some(since),
            filter,
            &[rusqlite::types::Value::Integer(floor)],
        )?;
        fresh.retain(|s| !seen.contains_key(&s.span_id));
        fresh.sort_by_key(SpanRow::end_ns);
        for span in fresh {
            seen.insert(span.span_id, span.end_ns());
            print(out, &span);
            shown += 1;
            if max.is_some_and(|m| shown >= m) {
                return Ok(());
            }
        }
        seen.retain(|_, end| *end >= floor);
        let wake = Instant::now() + Duration::from_millis(interval_ms.max(10));
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10).min(wake - Instant::now()));
        }
    }
    Ok(())
}
