//! `tracing` events: stored as rows of the `events` view, and ERROR
//! events waiting for the `#[monitor]` span they mark.

use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_core::{Event, Level};

use super::callsites::callsite_of;
use super::fields::{Fields, Message};
use crate::span::SpanIds;

/// Queues `event` as a record of the `events` view, in the span `span`.
pub(super) fn store_event(event: &Event<'_>, span: Option<SpanIds>, message: &Message) {
    let Some(rt) = crate::runtime::active() else {
        return;
    };
    let metadata = event.metadata();
    let level = *metadata.level();
    let mut fields = Fields::of_event();
    event.record(&mut fields);
    let detail = crate::record::Detail {
        error: (!message.message.is_empty()).then(|| rt.capture.text(&message.message)),
        fields: fields
            .values
            .into_iter()
            .map(|(key, value)| (key.into(), value))
            .collect(),
        event_error: None,
    };
    let event_level = match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5,
    };
    let now = crate::clock::raw_now();
    rt.queue.push(crate::record::Record {
        span_id: span.map_or(0, |s| s.span_id),
        parent_id: 0,
        trace_id: span.map_or(0, |s| s.trace_id),
        trace_hi: span.map_or(0, |s| s.trace_hi),
        callsite: callsite_of(metadata),
        thread_id: 0,
        start_raw: now,
        end_raw: now,
        busy_ns: 0,
        items: crate::record::NULL,
        rss_bytes: crate::record::NULL,
        cpu_ns: crate::record::NULL,
        alloc_bytes: crate::record::NULL,
        // ERROR events go through the error lane, never dropped.
        status: if level == Level::ERROR {
            crate::record::Status::Error
        } else {
            crate::record::Status::Ok
        },
        event_level,
        detail: Some(Box::new(detail)),
    });
}

thread_local! {
    /// ERROR events for `#[monitor]` spans current on this thread, by span
    /// id: the span takes the message when it stops being current here
    /// (its guard owns its state). Thread-local, so no lock, and emptied
    /// whenever a span leaves this thread's stack.
    static EVENT_ERRORS: std::cell::RefCell<Vec<(u64, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Messages waiting in any thread's `EVENT_ERRORS`: the only cost to a
/// span that leaves the stack while none wait.
static EVENT_ERRORS_WAITING: AtomicUsize = AtomicUsize::new(0);

pub(super) fn mark_event_error(span_id: u64, message: String) {
    let _ = EVENT_ERRORS.try_with(|errors| {
        let mut errors = errors.borrow_mut();
        if !errors.iter().any(|(id, _)| *id == span_id) {
            errors.push((span_id, message));
            EVENT_ERRORS_WAITING.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Whether any ERROR event waits for its span.
#[inline]
pub(crate) fn event_errors_waiting() -> bool {
    EVENT_ERRORS_WAITING.load(Ordering::Relaxed) != 0
}

/// The ERROR event's message for the span `span_id`, which is leaving this
/// thread's stack.
#[cold]
pub(crate) fn take_event_error(span_id: u64) -> Option<String> {
    EVENT_ERRORS
        .try_with(|errors| {
            let mut errors = errors.borrow_mut();
            let at = errors.iter().position(|(id, _)| *id == span_id)?;
            EVENT_ERRORS_WAITING.fetch_sub(1, Ordering::Relaxed);
            Some(errors.swap_remove(at).1)
        })
        .ok()
        .flatten()
}
