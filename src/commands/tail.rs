//! `monitor tail`: prints spans as they are written, until Ctrl-C. A span
//! is printed one poll after it is found, with its events of `tracing`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::{Db, EventRow, SpanRow};
use crate::render::{self, Out};
use crate::Failure;

/// Spans reach the file up to a flush interval after they end, and a batch
/// may hold spans that ended in any order: each poll looks back this far
/// before the previous one.
const LOOK_BACK_NS: i64 = 30_000_000_000;

/// Spans that lasted longer than this (a day) are not followed.
const LONGEST_SPAN_NS: i64 = 86_400_000_000_000;

fn now_ns() -> i64 {
    crate::window::now_ns() as i64
}

fn print(out: &Out, span: &SpanRow, events: &[EventRow]) {
    if out.json {
        let mut json = span.to_json();
        if !events.is_empty() {
            json["events"] = events.iter().map(EventRow::to_json).collect();
        }
        println!("{json}");
        return;
    }
    let status = render::text(&match &span.error {
        Some(error) => format!("{}: {error}", span.status),
        None => span.status.clone(),
    });
    println!(
        "{}  {:<32} {:>10}  {status}  trace {}",
        render::timestamp(span.end_ns()),
        render::text(&span.name),
        render::duration(span.duration_ns),
        span.trace_id
    );
    for event in events {
        println!("    · {}", event.describe());
    }
}

/// Prints `spans` with their events; `true` once `max` spans are shown.
fn print_all(
    db: &Db,
    out: &Out,
    spans: Vec<SpanRow>,
    shown: &mut usize,
    max: Option<usize>,
) -> Result<bool, Failure> {
    let mut events = db.events_of(spans.iter().map(|s| s.span_id))?;
    for span in spans {
        print(
            out,
            &span,
            &events.remove(&span.span_id).unwrap_or_default(),
        );
        *shown += 1;
        if max.is_some_and(|m| *shown >= m) {
            return Ok(true);
        }
    }
    Ok(false)
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
    // When the previous poll began: rows written since may end as far back
    // as `LOOK_BACK` before it (they reach the file a flush after they end).
    let mut watermark = started;
    let mut seen: HashMap<i64, i64> = HashMap::new();
    let mut held: Vec<SpanRow> = Vec::new();
    let mut shown = 0usize;
    eprintln!("following {} (Ctrl-C to stop)", db.path.display());
    while !stop.load(Ordering::Relaxed) {
        db.refresh()?;
        let poll_started = now_ns();
        let floor = started.max(watermark - LOOK_BACK_NS);
        // A long span ends now but started long ago: partitions from a day
        // before the floor are read.
        let partitions_since = u64::try_from(floor - LONGEST_SPAN_NS).unwrap_or(0);
        let mut fresh = Vec::new();
        db.for_each_span(
            Some(partitions_since),
            filter,
            &[rusqlite::types::Value::Integer(floor)],
            "",
            |span| {
                if !seen.contains_key(&span.span_id) {
                    fresh.push(span);
                }
                Ok(())
            },
        )?;
        fresh.sort_by_key(SpanRow::end_ns);
        for span in &fresh {
            seen.insert(span.span_id, span.end_ns());
        }
        // The spans found by the previous poll are printed now, with their
        // events: an event written in a later batch than its span (from
        // another thread's buffer) has had a poll to arrive.
        let ready = std::mem::replace(&mut held, fresh);
        if print_all(db, out, ready, &mut shown, max)? {
            return Ok(());
        }
        seen.retain(|_, end| *end >= floor);
        watermark = poll_started;
        let wake = Instant::now() + Duration::from_millis(interval_ms.max(10));
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10).min(wake - Instant::now()));
        }
    }
    // Stopped: what the last poll found, with what has arrived since.
    db.refresh()?;
    print_all(db, out, held, &mut shown, max)?;
    Ok(())
}
