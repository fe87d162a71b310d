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
//! A `tracing` span still open when the guard drops is not stored: it is
//! counted in `monitor_stats.dropped`.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::callsite::{Callsite, SpanKind};
use crate::record::FieldValue;
use crate::span::{current_span, Resumed, Span, SpanIds};

/// A [`tracing_subscriber::Layer`] that stores `tracing` spans in the
/// monitor file, through the same queue and writer as `#[monitor]` spans
/// (so the same error-first rules, drop counting, secret rule and
/// `capture.max_value_len` apply). It composes with other layers:
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
#[derive(Debug, Default)]
pub struct MonitorLayer {
    _private: (),
}

impl MonitorLayer {
    /// A layer storing every `tracing` span that closes while monitoring
    /// runs.
    pub fn new() -> MonitorLayer {
        MonitorLayer::default()
    }
}

/// What the layer keeps in a `tracing` span's extensions.
struct Data {
    span: Span,
    /// Enters not exited yet (a span may be entered again while entered).
    entered: Vec<Resumed>,
}

impl<S> Layer<S> for MonitorLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let parent = if let Some(parent) = attrs.parent() {
            ids_of(&ctx, parent)
        } else if attrs.is_contextual() {
            current_span()
        } else {
            None
        };
        let metadata = attrs.metadata();
        let mut span = Span::with_parent(callsite_of(metadata), parent);
        let Some(rt) = span.runtime() else {
            return;
        };
        span.record("level", metadata.level().as_str());
        attrs.record(&mut Fields(&mut span));
        if let Some(stored) = ctx.span(id) {
            rt.open_tracing_spans.fetch_add(1, Ordering::Relaxed);
            stored.extensions_mut().insert(Data {
                span,
                entered: Vec::new(),
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(stored) = ctx.span(id) {
            if let Some(data) = stored.extensions_mut().get_mut::<Data>() {
                values.record(&mut Fields(&mut data.span));
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(stored) = ctx.span(id) {
            if let Some(data) = stored.extensions_mut().get_mut::<Data>() {
                let resumed = data.span.resume();
                data.entered.push(resumed);
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(stored) = ctx.span(id) {
            if let Some(data) = stored.extensions_mut().get_mut::<Data>() {
                if let Some(resumed) = data.entered.pop() {
                    data.span.suspend(resumed);
                }
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(stored) = ctx.span(&id) else {
            return;
        };
        let Some(mut data) = stored.extensions_mut().remove::<Data>() else {
            return;
        };
        // Closed while entered (a guard leaked): it is current no more.
        while let Some(resumed) = data.entered.pop() {
            data.span.suspend(resumed);
        }
        if let Some(rt) = data.span.runtime() {
            rt.open_tracing_spans.fetch_sub(1, Ordering::Relaxed);
        }
        data.span.end();
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() != Level::ERROR {
            return;
        }
        let target = if let Some(parent) = event.parent() {
            ids_of(&ctx, parent)
        } else if event.is_contextual() {
            current_span()
        } else {
            None
        };
        let Some(target) = target else {
            return;
        };
        let mut message = Message::default();
        event.record(&mut message);
        let message = message.text();
        // The innermost current span is a `tracing` span: its data is here.
        if let Some(stored) = ctx.event_span(event) {
            if let Some(data) = stored.extensions_mut().get_mut::<Data>() {
                if data.span.ids() == Some(target) {
                    data.span.record_error(message);
                    return;
                }
            }
        }
        // A `#[monitor]` span: its guard owns it, so the error waits for
        // its end.
        mark_event_error(
            target.span_id,
            crate::runtime::capture_rules().text(&message),
        );
    }
}

/// The monitor ids of the `tracing` span `id`, if it records.
fn ids_of<S>(ctx: &Context<'_, S>, id: &Id) -> Option<SpanIds>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let stored = ctx.span(id)?;
    let extensions = stored.extensions();
    extensions.get::<Data>()?.span.ids()
}

/// The monitor callsite of a `tracing` callsite, made (and leaked) once:
/// `tracing` callsites are statics, so there are as many as the program has.
fn callsite_of(metadata: &'static Metadata<'static>) -> &'static Callsite {
    static CALLSITES: RwLock<Option<HashMap<usize, &'static Callsite>>> = RwLock::new(None);
    let key = metadata as *const Metadata<'static> as usize;
    if let Some(callsite) = CALLSITES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|map| map.get(&key))
    {
        return callsite;
    }
    let mut map = CALLSITES.write().unwrap_or_else(PoisonError::into_inner);
    map.get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| {
            Box::leak(Box::new(Callsite::new(
                metadata.name(),
                metadata.target(),
                metadata.target(),
                metadata.file().unwrap_or(""),
                metadata.line().unwrap_or(0),
                SpanKind::Tracing,
            )))
        })
}

/// Records a `tracing` span's fields into its monitor span.
struct Fields<'a>(&'a mut Span);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.record(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record(field.name(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record(field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record(field.name(), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .record(field.name(), FieldValue::Str(value.to_string()));
    }
}

/// An event's text: its `message`, then its other fields as `name=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Message {
    fn text(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        // Without the quotes `Debug` would add.
        self.record_debug(field, &format_args!("{value}"));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

/// ERROR events for `#[monitor]` spans, by span id, until the span ends.
static EVENT_ERRORS: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
/// Whether `EVENT_ERRORS` may hold any: the only cost to a span's end.
static EVENT_ERRORS_PENDING: AtomicBool = AtomicBool::new(false);

fn mark_event_error(span_id: u64, message: String) {
    let mut errors = EVENT_ERRORS.lock().unwrap_or_else(PoisonError::into_inner);
    if !errors.iter().any(|(id, _)| *id == span_id) {
        errors.push((span_id, message));
        EVENT_ERRORS_PENDING.store(true, Ordering::Release);
    }
}

#[inline]
pub(crate) fn event_errors_pending() -> bool {
    EVENT_ERRORS_PENDING.load(Ordering::Acquire)
}

/// The ERROR event's message for the span `span_id`, which is ending.
#[cold]
pub(crate) fn take_event_error(span_id: u64) -> Option<String> {
    let mut errors = EVENT_ERRORS.lock().unwrap_or_else(PoisonError::into_inner);
    let at = errors.iter().position(|(id, _)| *id == span_id)?;
    let (_, message) = errors.swap_remove(at);
    if errors.is_empty() {
        EVENT_ERRORS_PENDING.store(false, Ordering::Release);
    }
    Some(message)
}
