//! Spans of `tracing`-instrumented code in the same file (feature
//! `tracing`): [`MonitorLayer`] turns each `tracing` span into a row of
//! `spans` of kind `tracing`, in the same trees as `#[monitor]` spans.
//!
//! Parent links go both ways through one thread-local stack: a `tracing`
//! span, while entered, is the current span of `#[monitor]` code (it is
//! pushed on `enter` and popped on `exit`), and a `tracing` span created
//! with a contextual parent takes the innermost current span, whichever
//! kind it is. An explicit parent (`parent: &span`) is followed as given.
//!
//! An `ERROR` event marks the innermost current span `error` with the
//! event's message, unless that span has an error already (for a
//! `#[monitor]` span: its own `Err`, which is recorded first at its end).
//!
//! Other events are not stored unless asked for with
//! [`MonitorLayer::events`]: then each event at or above that level is a
//! row of the `events` view, with the span it happened in. An event goes
//! through the queue as a span does: ERROR events through the error lane,
//! never dropped; the others bounded, every drop counted.
//!
//! A `tracing` span still open when the guard drops is not stored: it is
//! counted in `monitor_stats.dropped`.
//!
//! A span closes when its last handle goes, even while entered (the
//! registry holds no handle for an enter). Entered on the closing thread,
//! those enters end with it. Entered on another thread without its exit
//! yet (a raw `Dispatch::enter`, a leaked guard), it is stored with the
//! time of the enters that ended; that thread keeps it current until it
//! exits it, and that enter's time is not counted.

mod callsites;
mod events;
mod fields;
mod thread_spans;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::span::{current_span, Span, SpanIds};
use callsites::callsite_of;
pub(crate) use events::{event_errors_waiting, take_event_error};
use events::{mark_event_error, store_event};
use fields::{Fields, Message};
use thread_spans::{fresh_live, Known, Live, THREAD_SPANS};

/// A [`tracing_subscriber::Layer`] that stores `tracing` spans in the
/// monitor file, through the same queue and writer as `#[monitor]` spans
/// (so the same error-first rules, drop counting, secret rule and
/// `capture.max_value_len` apply). It composes with other layers, one
/// `MonitorLayer` per subscriber:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::tracing::MonitorLayer;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("m.db");
/// let guard = monitor_runtime::init_with(monitor_runtime::Config::default().db_path(&db))?;
/// let subscriber = tracing_subscriber::registry().with(MonitorLayer::new());
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("load", user_id = 7);
///     span.in_scope(|| { /* library work */ });
/// });
/// guard.flush();
/// let (kind, fields): (String, String) = rusqlite::Connection::open(&db)?.query_row(
///     "SELECT kind, fields FROM spans WHERE name = 'load'", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
/// assert_eq!(kind, "tracing");
/// assert_eq!(fields, r#"{"level":"INFO","user_id":7}"#);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MonitorLayer {
    /// Events at this level or more severe are stored.
    events: Option<Level>,
    /// This layer among others (each subscriber numbers its spans from the
    /// same start), for the threads' caches of span ids.
    id: u64,
}

impl Default for MonitorLayer {
    fn default() -> MonitorLayer {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MonitorLayer {
            events: None,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }
}

impl MonitorLayer {
    /// A layer storing every `tracing` span that closes while monitoring
    /// runs; events only mark their span (ERROR), and are not stored.
    pub fn new() -> MonitorLayer {
        MonitorLayer::default()
    }

    /// Also stores events at `level` or more severe (`Level::WARN`: WARN and
    /// ERROR) in the `events` view: `span_id, trace_id, ts_ns, level,
    /// target, message, fields`, in the same hourly partitions and
    /// retention as spans. `monitor tree` and `monitor tail` show them
    /// under their span.
    ///
    /// ```
    /// use monitor_runtime::tracing::MonitorLayer;
    /// let layer = MonitorLayer::new().events(tracing_core::Level::INFO);
    /// # let _ = layer;
    /// ```
    pub fn events(mut self, level: Level) -> MonitorLayer {
        self.events = Some(level);
        self
    }
}

/// What the layer keeps in a `tracing` span's extensions: the span's
/// shared part, which threads that know the span reach without the
/// registry.
struct Data(Arc<Live>);

impl Drop for Data {
    fn drop(&mut self) {
        // Its registry let the span go (closed, or the registry dropped):
        // a thread that still knows it by id must not take a new span
        // given the same id for it.
        self.0.gone.store(true, Ordering::Release);
    }
}

impl MonitorLayer {
    /// Ends this thread's innermost enter of span `id`, adding its time;
    /// `false` when it has none.
    fn exit_here(&self, id: &Id) -> bool {
        let entered = THREAD_SPANS
            .try_with(|spans| spans.borrow_mut().take_entered(self.id, id.into_u64()))
            .ok()
            .flatten();
        let Some((known, resumed)) = entered else {
            return false;
        };
        let (elapsed, message) = known.live.entry.suspend(resumed);
        known.live.add(elapsed);
        if let Some(message) = message {
            // An ERROR event that waited for this span on this thread.
            known.live.span.lock().__record_error_checked(message);
        }
        let _ = THREAD_SPANS.try_with(|spans| spans.borrow_mut().last = Some(known));
        true
    }

    /// Runs `f` on the shared part of span `id`: from this thread's cache
    /// when it is the span made or exited last here, else from the
    /// registry. `f` runs while that cache is borrowed or the span's
    /// extensions are locked: it must not run user code (a `Debug`, a
    /// `tracing` call), which could come back here.
    fn with_live<S, R>(
        &self,
        id: &Id,
        ctx: &Context<'_, S>,
        f: impl FnOnce(&Arc<Live>) -> R,
    ) -> Option<R>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut f = Some(f);
        let cached = THREAD_SPANS
            .try_with(|spans| {
                let spans = spans.borrow();
                let last = spans.last(self.id, id.into_u64())?;
                f.take().map(|f| f(&last.live))
            })
            .ok()
            .flatten();
        match (cached, f) {
            (Some(done), _) => Some(done),
            (None, Some(f)) => Some(f(&ctx.span(id)?.extensions().get::<Data>()?.0)),
            (None, None) => None,
        }
    }
}

impl<S> Layer<S> for MonitorLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if crate::runtime::active().is_none() {
            // Not recording: no callsite to find (nor its lock to take).
            return;
        }
        let parent = parent_ids(&ctx, attrs.parent(), attrs.is_contextual());
        let metadata = attrs.metadata();
        let mut span = Span::with_parent(callsite_of(metadata), parent);
        let Some(entry) = span.entry() else {
            return;
        };
        let Some(stored) = ctx.span(id) else {
            span.discard();
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        fields.apply(&mut span);
        let rt = entry.runtime();
        if rt.open_tracing_spans.fetch_add(1, Ordering::Relaxed) & GUARD_DROPPED != 0 {
            // The guard is gone: this span would not be stored.
            rt.open_tracing_spans.fetch_sub(1, Ordering::Relaxed);
            span.discard();
            return;
        }
        let live = fresh_live(entry, span);
        let known = Known {
            layer: self.id,
            id: id.into_u64(),
            live: Arc::clone(&live),
        };
        stored.extensions_mut().insert(Data(live));
        let _ = THREAD_SPANS.try_with(|spans| spans.borrow_mut().last = Some(known));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        // Only a span that records has its values formatted.
        let Some(live) = self.with_live(id, &ctx, Arc::clone) else {
            return;
        };
        let mut fields = Fields::default();
        values.record(&mut fields);
        fields.apply(&mut live.span.lock());
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let known = THREAD_SPANS
            .try_with(|spans| spans.borrow_mut().take_last(self.id, id.into_u64()))
            .ok()
            .flatten()
            .or_else(|| {
                let stored = ctx.span(id)?;
                let live = Arc::clone(&stored.extensions().get::<Data>()?.0);
                Some(Known {
                    layer: self.id,
                    id: id.into_u64(),
                    live,
                })
            });
        let Some(known) = known else {
            return;
        };
        // Made current only where its exit can find it.
        let _ = THREAD_SPANS.try_with(|spans| {
            let resumed = known.live.entry.resume();
            spans.borrow_mut().entered.push((known, resumed));
        });
    }

    fn on_exit(&self, id: &Id, _: Context<'_, S>) {
        self.exit_here(id);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        // Closed while entered here: its last handle went in an exit, which
        // closes it before this layer's `on_exit`. Those enters end now.
        let entered_here = THREAD_SPANS
            .try_with(|spans| !spans.borrow().entered.is_empty())
            .unwrap_or(false);
        if entered_here {
            while self.exit_here(&id) {}
        }
        // Taken out of the data, which the registry frees with the span's
        // slot (cheaper than removing it from the extensions here).
        let taken = self.with_live(&id, &ctx, |live| {
            (
                std::mem::replace(&mut *live.span.lock(), Span::none()),
                live.total(),
            )
        });
        let Some((mut span, elapsed)) = taken else {
            return;
        };
        span.add_elapsed(elapsed);
        let counted = span.entry().is_some_and(|entry| {
            entry
                .runtime()
                .open_tracing_spans
                .fetch_sub(1, Ordering::Relaxed)
                & GUARD_DROPPED
                != 0
        });
        if counted {
            // Open when the guard dropped: counted as dropped then.
            span.discard();
        } else {
            span.end();
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        let store = self.events.is_some_and(|at_least| level <= at_least);
        if level != Level::ERROR && !store {
            return;
        }
        let target = parent_ids(&ctx, event.parent(), event.is_contextual());
        let mut message = Message::default();
        event.record(&mut message);
        if store {
            store_event(event, target, &message);
        }
        let Some(target) = target else {
            return;
        };
        if level != Level::ERROR {
            return;
        }
        let message = message.text();
        // An explicit parent is a `tracing` span (or, if it records
        // nothing, its nearest ancestor that does), whose data is here; so
        // is the innermost current span when it is a `tracing` span.
        let held = match event.parent() {
            Some(parent) => ctx.span(parent),
            None => ctx.event_span(event),
        };
        for span in held.into_iter().flat_map(|span| span.scope()) {
            if let Some(data) = span.extensions().get::<Data>() {
                if data.0.entry.ids == target {
                    data.0.span.lock().record_error(message);
                    return;
                }
            }
        }
        // A span current on this thread that the registry does not hold
        // (a `#[monitor]` span, whose guard owns it): the message waits
        // until it leaves this thread's stack.
        if event.parent().is_none() {
            mark_event_error(
                target.span_id,
                crate::runtime::capture_rules().text(&message),
            );
        }
    }
}

/// Set in `Runtime::open_tracing_spans` when the guard drops: the spans
/// still open were counted as dropped, and are not stored when they close.
pub(crate) const GUARD_DROPPED: u64 = 1 << 63;

/// The guard of `rt` is dropping: the `tracing` spans still open, counted
/// once, as dropped.
pub(crate) fn count_open_spans(rt: &crate::runtime::Runtime) -> u64 {
    rt.open_tracing_spans
        .fetch_or(GUARD_DROPPED, Ordering::Relaxed)
        & !GUARD_DROPPED
}

/// The span a new span or an event belongs to: an explicit parent (see
/// [`ids_of`]), else for a contextual one the innermost current span of
/// either kind, else none (an explicit root).
fn parent_ids<S>(ctx: &Context<'_, S>, explicit: Option<&Id>, contextual: bool) -> Option<SpanIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match explicit {
        Some(parent) => ids_of(ctx, parent),
        None if contextual => current_span(),
        None => None,
    }
}

/// The monitor ids of the `tracing` span `id`, or of its nearest ancestor
/// that records.
fn ids_of<S>(ctx: &Context<'_, S>, id: &Id) -> Option<SpanIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    // The nearest that records: a parent this layer holds nothing for
    // (made before `init`, or filtered out for it) passes its own parent on.
    ctx.span(id)?
        .scope()
        .find_map(|span| Some(span.extensions().get::<Data>()?.0.entry.ids))
}
