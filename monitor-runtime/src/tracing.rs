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

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

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
    /// Events at this level or more severe are stored.
    events: Option<Level>,
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

/// What the layer keeps in a `tracing` span's extensions.
struct Data {
    span: Span,
    /// Enters not exited yet, with the thread of each: the first, and any
    /// made again while entered, here or on another thread at once (rare:
    /// kept apart so that the common span allocates no `Vec`).
    entered: Option<(usize, Resumed)>,
    reentered: Vec<(usize, Resumed)>,
}

/// A key for the calling thread: the address of a thread-local.
fn this_thread() -> usize {
    thread_local!(static KEY: u8 = const { 0 });
    KEY.with(|key| key as *const u8 as usize)
}

impl Data {
    fn enter(&mut self) {
        let resumed = (this_thread(), self.span.resume());
        match self.entered {
            None => self.entered = Some(resumed),
            Some(_) => self.reentered.push(resumed),
        }
    }

    /// Exits this thread's latest enter (or, if it has none here, the
    /// latest of any thread); `false` when none is left.
    fn exit(&mut self) -> bool {
        let thread = this_thread();
        let resumed = match self.reentered.iter().rposition(|(t, _)| *t == thread) {
            Some(at) => Some(self.reentered.remove(at)),
            None if self.entered.as_ref().is_some_and(|(t, _)| *t == thread) => self.entered.take(),
            None => self.reentered.pop().or_else(|| self.entered.take()),
        };
        let Some((_, resumed)) = resumed else {
            return false;
        };
        self.span.suspend(resumed);
        true
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
        let Some(rt) = span.runtime() else {
            return;
        };
        attrs.record(&mut Fields(&mut span));
        if let Some(stored) = ctx.span(id) {
            if rt.open_tracing_spans.fetch_add(1, Ordering::Relaxed) & GUARD_DROPPED != 0 {
                // The guard is gone: this span would not be stored.
                rt.open_tracing_spans.fetch_sub(1, Ordering::Relaxed);
                span.discard();
                return;
            }
            stored.extensions_mut().insert(Data {
                span,
                entered: None,
                reentered: Vec::new(),
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
                data.enter();
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(stored) = ctx.span(id) {
            if let Some(data) = stored.extensions_mut().get_mut::<Data>() {
                data.exit();
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(stored) = ctx.span(&id) else {
            return;
        };
        // Taken out of the data, which the registry frees with the span's
        // slot (cheaper than removing it from the extensions here).
        let span = {
            let mut extensions = stored.extensions_mut();
            let Some(data) = extensions.get_mut::<Data>() else {
                return;
            };
            // Closed while entered (a guard leaked): it is current no more.
            while data.exit() {}
            std::mem::replace(&mut data.span, Span::none())
        };
        let counted = span.runtime().is_some_and(|rt| {
            rt.open_tracing_spans.fetch_sub(1, Ordering::Relaxed) & GUARD_DROPPED != 0
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
            if let Some(data) = span.extensions_mut().get_mut::<Data>() {
                if data.span.ids() == Some(target) {
                    data.span.record_error(message);
                    return;
                }
            }
        }
        // A `#[monitor]` span current on this thread: its guard owns it,
        // so the message waits until it leaves this thread's stack.
        if event.parent().is_none() {
            mark_event_error(
                target.span_id,
                crate::runtime::capture_rules().text(&message),
            );
        }
    }
}

/// Queues `event` as a record of the `events` view, in the span `span`.
fn store_event(event: &Event<'_>, span: Option<SpanIds>, message: &Message) {
    let Some(rt) = crate::runtime::active() else {
        return;
    };
    let metadata = event.metadata();
    let level = *metadata.level();
    let mut fields = EventFields(Vec::new());
    event.record(&mut fields);
    let detail = crate::record::Detail {
        error: (!message.message.is_empty()).then(|| rt.capture.text(&message.message)),
        fields: fields.0,
        event_error: None,
    };
    let event_level = match level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        _ => 5,
    };
    rt.queue.push(crate::record::Record {
        span_id: span.map_or(0, |s| s.span_id),
        parent_id: 0,
        trace_id: span.map_or(0, |s| s.trace_id),
        callsite: callsite_of(metadata),
        thread_id: 0,
        start_ns: rt.clock.now_ns(),
        duration_ns: 0,
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

/// An event's fields but its message, with the secret rule and
/// `capture.max_value_len` applied.
struct EventFields(Vec<(std::borrow::Cow<'static, str>, FieldValue)>);

impl EventFields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        if field.name() == "message" {
            return;
        }
        let value = if crate::runtime::capture_rules()
            .redactor
            .is_secret(field.name())
        {
            crate::secret::masked()
        } else {
            value
        };
        self.0.push((field.name().into(), value));
    }

    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() != "message" {
            self.0
                .push((field.name().into(), checked_text(field, value)));
        }
    }
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format_args!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, format_args!("{value}"));
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
        .find_map(|span| span.extensions().get::<Data>()?.span.ids())
}

/// The monitor callsite of a `tracing` callsite, made (and leaked) once:
/// `tracing` callsites are statics, so there are as many as the program has.
fn callsite_of(metadata: &'static Metadata<'static>) -> &'static Callsite {
    type ByAddress = HashMap<usize, &'static Callsite, BuildHasherDefault<AddressHasher>>;
    static CALLSITES: RwLock<Option<ByAddress>> = RwLock::new(None);
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
    map.get_or_insert_with(ByAddress::default)
        .entry(key)
        .or_insert_with(|| {
            let callsite = Callsite::new(
                metadata.name(),
                metadata.target(),
                metadata.target(),
                metadata.file().unwrap_or(""),
                metadata.line().unwrap_or(0),
                SpanKind::Tracing,
            );
            // A span's level is its callsite's: written by the writer, not
            // held by each span. (An event's has a column of its own.)
            let callsite = if metadata.is_span() {
                callsite.with_level(metadata.level().as_str())
            } else {
                callsite
            };
            Box::leak(Box::new(callsite))
        })
}

/// Hashes an address: one multiply, as keys are distinct static addresses
/// that no one chooses (SipHash's defence against chosen keys buys nothing).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// Records a `tracing` span's fields into its monitor span.
struct Fields<'a>(&'a mut Span);

impl Fields<'_> {
    /// Text, formatted only up to `max_value_len`, secrets masked.
    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.0
            .__record_checked(field.name(), checked_text(field, value));
    }
}

/// A field's text as the capture rules store it: masked when its name is
/// secret, else formatted up to `max_value_len` with secrets inside masked.
fn checked_text(field: &Field, value: fmt::Arguments<'_>) -> FieldValue {
    let rules = crate::runtime::capture_rules();
    if rules.redactor.is_secret(field.name()) {
        crate::secret::masked()
    } else {
        FieldValue::Str(rules.format(value))
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format_args!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, format_args!("{value}"));
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
        self.text(field, format_args!("{value}"));
    }
}

/// An event's text: its `message`, then its other fields as `name=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Message {
    fn text(&self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message.clone(),
            (true, false) => self.fields.clone(),
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        // The secret rule by name, as for fields; text values keep their
        // quotes (`Debug`), so the scrubber sees where a value ends.
        if crate::runtime::capture_rules()
            .redactor
            .is_secret(field.name())
        {
            let _ = write!(self.fields, "{}={}", field.name(), crate::secret::MASK);
        } else {
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
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

fn mark_event_error(span_id: u64, message: String) {
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
