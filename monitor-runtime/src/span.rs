//! Spans: open one for a callsite, make it current, end it with an outcome.
//!
//! The current span of a thread is the top of a thread-local stack. A sync
//! call pushes its span for the whole call ([`EnteredSpan`]); a future or
//! stream pushes its span only while it is polled ([`Span::enter`]), so a
//! span is current exactly while its code runs, whichever thread runs it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use crate::callsite::Callsite;
use crate::clock::{raw_delta_ns, raw_now};
use crate::local::{self, Local};
use crate::panic::PanicMark;
use crate::record::{Detail, FieldValue, Record, Status, BUSY_THROUGHOUT, NULL};
use crate::runtime::{self, Runtime};

/// The ids of a span: its own and its trace's.
///
/// A trace started here has the 64-bit id of its root span (`trace_hi` is
/// 0); a trace started in another process ([`crate::propagation`]) keeps
/// its 128-bit id, split into `trace_hi` and `trace_id`.
///
/// ```
/// use monitor_runtime::{current_span, Callsite, EnteredSpan, SpanKind};
///
/// static WORK: Callsite = Callsite::new("work", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// // Without `init` nothing is recorded and no span is current.
/// let _span = EnteredSpan::new(&WORK);
/// assert_eq!(current_span(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SpanIds {
    /// This span's id (the `span_id` column).
    pub span_id: u64,
    /// The low 64 bits of the trace id (the `trace_id` column): the root
    /// span's id for a trace started here.
    pub trace_id: u64,
    /// The high 64 bits of the trace id (the `trace_hi` column), 0 for a
    /// trace started here.
    pub trace_hi: u64,
}

impl SpanIds {
    /// The whole 128-bit trace id, as W3C trace context and OTLP carry it.
    ///
    /// ```
    /// use monitor_runtime::SpanIds;
    /// let ids = SpanIds { span_id: 7, trace_id: 5, trace_hi: 1 };
    /// assert_eq!(ids.trace_id_128(), (1u128 << 64) | 5);
    /// ```
    pub fn trace_id_128(&self) -> u128 {
        (u128::from(self.trace_hi) << 64) | u128::from(self.trace_id)
    }

    /// The context a request made inside this span carries to another
    /// process (its `traceparent` header is this value's `to_string()`).
    pub fn trace_context(&self) -> crate::propagation::TraceContext {
        (*self).into()
    }
}

/// The span current on this thread, if any.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{current_span, Callsite, Config, EnteredSpan, SpanKind};
///
/// static OUTER: Callsite = Callsite::new("outer", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// let span = EnteredSpan::new(&OUTER);
/// let ids = current_span().expect("inside a span");
/// assert_eq!(Some(ids), span.ids());
/// assert_eq!(ids.trace_id, ids.span_id); // a root is its own trace
/// # drop(span); drop(guard); Ok(()) }
/// ```
pub fn current_span() -> Option<SpanIds> {
    local::with(|local| local.stack.borrow().last().copied()).flatten()
}

#[inline]
fn push_current(ids: SpanIds) {
    local::with(|local| local.stack.borrow_mut().push(ids));
}

#[inline]
fn pop_current(span_id: u64) {
    local::with(|local| pop_from(&local.stack, span_id));
}

/// Removes `span_id` from `stack`: the top entry, unless a guard was
/// leaked or dropped out of order, then wherever it sits.
#[inline]
fn pop_from(stack: &RefCell<Vec<SpanIds>>, span_id: u64) {
    let mut stack = stack.borrow_mut();
    if stack.last().map(|top| top.span_id) == Some(span_id) {
        stack.pop();
    } else if let Some(at) = stack.iter().rposition(|ids| ids.span_id == span_id) {
        stack.remove(at);
    }
}

/// `span_id` leaves this thread's stack: off the stack, with the message
/// of an ERROR event of `tracing` that happened while it was current moved
/// into `state` (`None`: a copy of a span owned elsewhere, which the
/// message cannot reach).
#[inline]
fn leave_stack(span_id: u64, state: Option<&mut State>) {
    take_event_error(span_id, state);
    pop_current(span_id);
}

/// Moves that message, if there is one.
#[cfg(feature = "tracing")]
#[inline]
fn take_event_error(span_id: u64, state: Option<&mut State>) {
    if let Some(message) = waiting_event_error(span_id) {
        if let Some(state) = state {
            let detail = state.detail.get_or_insert_with(Default::default);
            detail.event_error.get_or_insert(message);
        }
    }
}

#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn take_event_error(_span_id: u64, _state: Option<&mut State>) {}

/// The message of an ERROR event of `tracing` waiting for `span_id` on
/// this thread, taken. One load without such events.
#[cfg(feature = "tracing")]
#[inline(always)]
fn waiting_event_error(span_id: u64) -> Option<String> {
    if crate::tracing::event_errors_waiting() {
        crate::tracing::take_event_error(span_id)
    } else {
        None
    }
}

/// Makes a span current (without timing it) until dropped: for futures
/// that carry their parent's ids.
pub(crate) struct CurrentGuard(u64);

impl CurrentGuard {
    #[inline]
    pub(crate) fn enter(ids: SpanIds) -> CurrentGuard {
        push_current(ids);
        CurrentGuard(ids.span_id)
    }
}

impl Drop for CurrentGuard {
    #[inline]
    fn drop(&mut self) {
        // The span is owned elsewhere (and may have ended): an ERROR event
        // meant for it here cannot reach it.
        leave_stack(self.0, None);
    }
}

/// A recording span: `None` inside [`Span`] when monitoring is off, so a
/// disabled span costs one load and a branch.
struct Open {
    rt: &'static Runtime,
    ids: SpanIds,
    state: State,
}

impl Open {
    /// Ends a polled span now with `status`; its busy time is its polls'.
    #[inline]
    fn close(mut self, status: Status) {
        let busy = self.state.busy_ns;
        finish(
            self.rt,
            None,
            self.ids,
            &mut self.state,
            status,
            raw_now(),
            busy,
        );
    }
}

/// What a span accumulates until it ends.
struct State {
    parent_id: u64,
    callsite: &'static Callsite,
    /// A raw clock reading, converted by the writer: a test clock moved
    /// during the span moves its duration too.
    start_raw: u64,
    busy_ns: u64,
    items: Option<u64>,
    status: Status,
    /// The thread was already unwinding when the span started (code run by
    /// a `Drop` during a panic): only a panic of its own makes it `panic`.
    started_unwinding: PanicMark,
    /// A sampling decision made ahead of the end (a sequence's, shared with
    /// its item spans); `None`: the callsite's rate, drawn at the end.
    keep: Option<bool>,
    /// The thread's counters when the span started (a call's).
    start_usage: Usage,
    /// What its polls used (a future's or stream's), or the call's at its end.
    used: Usage,
    detail: DetailSlot,
}

/// A span's [`Detail`], which most spans never have: dropping the slot
/// checks inline and drops a detail out of line, where the plain
/// `Option<Box<Detail>>` drop glue is a call on every span's end.
#[derive(Default)]
struct DetailSlot(Option<Box<Detail>>);

impl Deref for DetailSlot {
    type Target = Option<Box<Detail>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for DetailSlot {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for DetailSlot {
    #[inline]
    fn drop(&mut self) {
        if let Some(detail) = self.0.take() {
            drop_cold(detail);
        }
    }
}

/// Per-thread counters read at a span's edges: bytes allocated (with the
/// counting allocator) and CPU time (with `resources.thread_cpu`); `NULL`
/// when not measured.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Usage {
    alloc: u64,
    cpu: u64,
}

impl Usage {
    const NONE: Usage = Usage {
        alloc: NULL,
        cpu: NULL,
    };

    #[inline]
    fn now(rt: &Runtime) -> Usage {
        Usage {
            alloc: crate::alloc::mark(),
            cpu: if rt.thread_cpu {
                crate::clock::thread_cpu_ns()
            } else {
                NULL
            },
        }
    }

    /// What was used between `start` and `self`.
    #[inline]
    fn since(self, start: Usage) -> Usage {
        // Most programs measure neither: a branch, not the arithmetic.
        if start.alloc == NULL && start.cpu == NULL {
            return Usage::NONE;
        }
        let delta = |from: u64, to: u64| {
            if from == NULL || to == NULL {
                NULL
            } else {
                to.saturating_sub(from)
            }
        };
        Usage {
            alloc: delta(start.alloc, self.alloc),
            cpu: delta(start.cpu, self.cpu),
        }
    }

    #[inline]
    fn add(&mut self, more: Usage) {
        let sum = |a: u64, b: u64| match (a, b) {
            (NULL, b) => b,
            (a, NULL) => a,
            (a, b) => a + b,
        };
        self.alloc = sum(self.alloc, more.alloc);
        self.cpu = sum(self.cpu, more.cpu);
    }
}

impl State {
    /// Whether the span is ending because its own code panicked.
    #[inline]
    fn panicked(&self) -> bool {
        self.started_unwinding.new_panic_since()
    }

    /// Marks the span `panic` with `message` (the payload's, or the hook's
    /// for a guard that saw only the unwind); it replaces an earlier error's
    /// message, and a later panic's does not.
    fn record_panic(&mut self, rt: &Runtime, message: Option<String>) {
        if self.status == Status::Panic {
            return;
        }
        self.status = Status::Panic;
        if let Some(message) = message {
            self.detail.get_or_insert_with(Default::default).error =
                Some(rt.capture.text(&message));
        }
    }

    /// Marks the span `error`; the first message is kept. `message` is
    /// already cut and scrubbed.
    fn record_error(&mut self, message: String) {
        self.status = Status::Error;
        let detail = self.detail.get_or_insert_with(Default::default);
        if detail.error.is_none() {
            detail.error = Some(message);
        }
    }

    fn record(&mut self, key: Cow<'static, str>, value: FieldValue) {
        // Room for a few at once, allocated directly: growing from empty
        // goes through `Vec`'s general reallocation path for 1, 2 and 4.
        let detail = self.detail.get_or_insert_with(|| {
            Box::new(Detail {
                fields: Vec::with_capacity(4),
                ..Detail::default()
            })
        });
        // A key recorded again replaces its value: a long-lived span that
        // records a counter in a loop must not grow.
        match detail.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(field) => field.1 = value,
            None => detail.fields.push((key, value)),
        }
    }
}

/// What a recording span offers whatever its shape: both [`Span`] and
/// [`EnteredSpan`] hold an `open: Option<Open>`.
macro_rules! recording_methods {
    () => {
        /// Whether this span will be stored (false without `init`).
        pub fn is_recording(&self) -> bool {
            self.open.is_some()
        }

        /// This span's ids, `None` when it is not recording.
        pub fn ids(&self) -> Option<SpanIds> {
            self.open.as_ref().map(|open| open.ids)
        }

        /// Marks the span `error` with `message`; the first message is kept.
        /// It is cut to `capture.max_value_len` and secrets in it are masked
        /// (`token=abc` is stored as `token=***`).
        pub fn record_error(&mut self, message: impl fmt::Display) {
            if let Some(open) = &mut self.open {
                let message = open.rt.capture.format(format_args!("{message}"));
                open.state.record_error(message);
            }
        }

        /// [`record_error`](Self::record_error) for a message already cut
        /// and scrubbed by the capture rules.
        #[doc(hidden)]
        pub fn __record_error_checked(&mut self, message: String) {
            if let Some(open) = &mut self.open {
                open.state.record_error(message);
            }
        }

        /// Runs `f` as part of this span: if it panics, the span records the
        /// panic and its message (read from the payload, so whatever panic
        /// hook is installed), and the same panic goes on unwinding.
        ///
        /// ```
        /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
        /// use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};
        ///
        /// static STEP: Callsite = Callsite::new("step", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
        /// let dir = tempfile::tempdir()?;
        /// let db = dir.path().join("m.db");
        /// let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
        /// std::panic::set_hook(Box::new(|_| {})); // a program's own hook
        /// let caught = std::panic::catch_unwind(|| {
        ///     let mut span = EnteredSpan::new(&STEP);
        ///     span.observe_panic(|| panic!("step {} failed", 3))
        /// });
        /// let _ = std::panic::take_hook();
        /// assert!(caught.is_err());
        /// guard.flush();
        /// let error: String = rusqlite::Connection::open(&db)?
        ///     .query_row("SELECT error FROM spans WHERE status = 'panic'", [], |r| r.get(0))?;
        /// assert_eq!(error, "step 3 failed");
        /// # Ok(()) }
        /// ```
        #[inline]
        pub fn observe_panic<R>(&mut self, f: impl FnOnce() -> R) -> R {
            crate::panic::observe_unwind(f, |payload| self.record_panic_payload(payload))
        }

        /// Marks the span `panic` with the message of `payload`.
        pub(crate) fn record_panic_payload(&mut self, payload: &(dyn std::any::Any + Send)) {
            if let Some(open) = &mut self.open {
                let message = crate::panic::payload_message(payload);
                open.state.record_panic(open.rt, Some(message));
            }
        }

        /// Sets the outcome the span ends with.
        pub fn set_status(&mut self, status: Status) {
            if let Some(open) = &mut self.open {
                open.state.status = status;
            }
        }

        /// Adds `n` to the items yielded (the `items` column).
        #[inline]
        pub fn add_items(&mut self, n: u64) {
            if let Some(open) = &mut self.open {
                *open.state.items.get_or_insert(0) += n;
            }
        }

        /// Records `key = value` in the span's `fields` JSON object. A key
        /// named like a secret ([`is_secret_name`](crate::is_secret_name), or
        /// `capture.secret_names`) is stored as `"***"`; text is cut to
        /// `capture.max_value_len` and secrets inside it are masked.
        pub fn record(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<FieldValue>) {
            if let Some(open) = &mut self.open {
                let key = key.into();
                let rules = &open.rt.capture;
                let value = if rules.redactor.is_secret(&key) {
                    crate::secret::masked()
                } else {
                    match value.into() {
                        FieldValue::Str(text) => FieldValue::Str(rules.text(&text)),
                        other => other,
                    }
                };
                open.state.record(key, value);
            }
        }

        /// [`record`](Self::record) for `#[monitor]`, which has checked the
        /// key's name at compile time.
        #[doc(hidden)]
        #[inline]
        pub fn __record_checked(&mut self, key: &'static str, value: FieldValue) {
            if let Some(open) = &mut self.open {
                open.state.record(Cow::Borrowed(key), value);
            }
        }
    };
}

/// An open span. It starts when it is created and ends with [`Span::end`]
/// (status `ok` unless an error was recorded); a span dropped without `end`
/// is `cancelled`, or `panic` when dropped by an unwinding panic or when a
/// panic went through one of its [`Span::enter`] guards.
///
/// It is current only while [`Span::enter`]'s guard lives, and that time
/// adds up to its `busy_ns`: the shape of a future or stream's poll. For a
/// plain call use [`EnteredSpan`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{current_span, Callsite, Config, Span, SpanKind};
///
/// static FETCH: Callsite = Callsite::new("fetch", module_path!(), "io", file!(), line!(), SpanKind::Async);
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
///
/// let mut span = Span::new(&FETCH);
/// for _poll in 0..3 {
///     let entered = span.enter();
///     assert_eq!(current_span(), entered.ids());
/// }
/// assert_eq!(current_span(), None);
/// span.record("bytes", 512u64);
/// span.record_error("connection reset");
/// span.end();
/// guard.flush();
/// # Ok(()) }
/// ```
pub struct Span {
    open: Option<Open>,
}

impl Span {
    /// Opens a span whose parent is the current span.
    #[inline]
    pub fn new(callsite: &'static Callsite) -> Span {
        match runtime::for_new_span() {
            Some(rt) => Span::open_in(rt, callsite, current_span()),
            None => Span::none(),
        }
    }

    /// Opens a span with an explicit parent (`None` makes a root), for work
    /// handed to another thread or task.
    #[inline]
    pub fn with_parent(callsite: &'static Callsite, parent: Option<SpanIds>) -> Span {
        match runtime::for_new_span() {
            Some(rt) => Span::open_in(rt, callsite, parent),
            None => Span::none(),
        }
    }

    /// Opens a span under a span of another process, named by the
    /// `traceparent` header of the request it serves
    /// ([`propagation::extract`](crate::propagation::extract)): it joins
    /// that trace, keeping its 128-bit id.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::{propagation, Callsite, Config, Span, SpanKind};
    ///
    /// static HANDLE: Callsite = Callsite::new("handle", module_path!(), module_path!(), file!(), line!(), SpanKind::Async);
    /// let dir = tempfile::tempdir()?;
    /// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let remote = propagation::extract("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
    /// let span = Span::child_of_remote(&HANDLE, &remote);
    /// let ids = span.ids().unwrap();
    /// assert_eq!(ids.trace_id_128(), remote.trace_id);
    /// span.end();
    /// # drop(guard); Ok(()) }
    /// ```
    #[inline]
    pub fn child_of_remote(
        callsite: &'static Callsite,
        remote: &crate::propagation::TraceContext,
    ) -> Span {
        Span::with_parent(callsite, Some(remote.as_parent()))
    }

    /// Opens a span under `parent` when there is one, else under the
    /// current span (`#[monitor(parent = ...)]`).
    #[doc(hidden)]
    #[inline]
    pub fn under(callsite: &'static Callsite, parent: Option<SpanIds>) -> Span {
        match parent {
            Some(parent) => Span::with_parent(callsite, Some(parent)),
            None => Span::new(callsite),
        }
    }

    /// A span that records nothing.
    pub const fn none() -> Span {
        Span { open: None }
    }

    #[inline]
    fn open_in(rt: &'static Runtime, callsite: &'static Callsite, parent: Option<SpanIds>) -> Span {
        let (ids, parent_id) = ids_under(parent, crate::id::next_span_id());
        let state = start(callsite, parent_id);
        Span {
            open: Some(Open { rt, ids, state }),
        }
    }

    recording_methods!();

    /// Makes this span current until the guard drops, and adds that time
    /// to its `busy_ns`.
    #[inline]
    pub fn enter(&mut self) -> Entered<'_> {
        let unwinding_at_enter = match &self.open {
            Some(_) => PanicMark::now(),
            None => PanicMark::UNUSED,
        };
        Entered {
            resumed: self.resume(),
            span: self,
            unwinding_at_enter,
        }
    }

    /// Makes this span current and starts timing its busy time, for a
    /// caller that pairs it with [`suspend`](Self::suspend) itself (a
    /// `tracing` span's enter and exit).
    #[inline]
    pub(crate) fn resume(&self) -> Resumed {
        match &self.open {
            Some(open) => resume(open.ids, open.rt),
            None => Resumed {
                enter_raw: 0,
                usage: Usage::NONE,
            },
        }
    }

    /// Ends what [`resume`](Self::resume) began: the span is no longer
    /// current, and the time is added to its `busy_ns`.
    #[inline]
    pub(crate) fn suspend(&mut self, resumed: Resumed) {
        if let Some(open) = &mut self.open {
            open.state.add(Elapsed::since(open.rt, resumed));
            leave_stack(open.ids.span_id, Some(&mut open.state));
        }
    }

    /// What a thread that does not own this span needs to make it current
    /// and time that ([`Entry::resume`]): a `tracing` span's enters.
    #[cfg(feature = "tracing")]
    pub(crate) fn entry(&self) -> Option<Entry> {
        self.open.as_ref().map(|open| Entry {
            ids: open.ids,
            rt: open.rt,
        })
    }

    /// Adds time spent current, measured through an [`Entry`].
    #[cfg(feature = "tracing")]
    pub(crate) fn add_elapsed(&mut self, elapsed: Elapsed) {
        if let Some(open) = &mut self.open {
            open.state.add(elapsed);
        }
    }

    /// Runs `f` with this span current, adding the time to its `busy_ns`
    /// (one poll of a future or stream). A panic out of `f` is recorded with
    /// its message, whatever panic hook is installed, and goes on.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use monitor_runtime::{current_span, Callsite, Config, Span, SpanKind};
    ///
    /// static JOB: Callsite = Callsite::new("job", module_path!(), module_path!(), file!(), line!(), SpanKind::Async);
    /// let dir = tempfile::tempdir()?;
    /// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
    /// let mut span = Span::new(&JOB);
    /// let inside = span.in_scope(current_span);
    /// assert_eq!(inside, span.ids());
    /// assert_eq!(current_span(), None);
    /// span.end();
    /// # drop(guard); Ok(()) }
    /// ```
    #[inline]
    pub fn in_scope<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let mut entered = self.enter();
        entered.observe_panic(f)
    }

    /// Makes this span current until the returned guard drops, then ends it.
    pub fn entered(mut self) -> EnteredSpan {
        let mut open = self.open.take();
        if let Some(open) = &mut open {
            push_current(open.ids);
            // The counters of the thread the call runs on, from now.
            open.state.start_usage = Usage::now(open.rt);
        }
        EnteredSpan {
            open,
            _not_send: PhantomData,
        }
    }

    /// Drops the span without recording it (a poll that produced no item).
    pub(crate) fn discard(mut self) {
        self.open = None;
    }

    /// Ends the span unfinished: `cancelled`, unless it recorded an error or
    /// a panic of its own. Unlike a drop, a panic under way is not its own.
    pub(crate) fn cancel(mut self) {
        if let Some(open) = self.open.take() {
            let status = match open.state.status {
                Status::Ok => Status::Cancelled,
                recorded => recorded,
            };
            open.close(status);
        }
    }

    /// The status recorded so far, `None` when not recording.
    pub(crate) fn status(&self) -> Option<Status> {
        self.open.as_ref().map(|open| open.state.status)
    }

    /// Draws the callsite's sampling decision now and keeps it for the end;
    /// an error or panic is kept whatever it says.
    pub(crate) fn decide_sample(&mut self) -> bool {
        match &mut self.open {
            Some(open) => *open
                .state
                .keep
                .get_or_insert_with(|| open.state.callsite.keeps_sample()),
            None => false,
        }
    }

    /// Makes this span follow a sampling decision taken for another.
    pub(crate) fn follow_sample(&mut self, keep: bool) {
        if let Some(open) = &mut self.open {
            open.state.keep = Some(keep);
        }
    }

    /// Ends the span now with the status recorded so far (`ok` by default).
    pub fn end(mut self) {
        if let Some(open) = self.open.take() {
            let status = open.state.status;
            open.close(status);
        }
    }
}

impl Drop for Span {
    #[inline]
    fn drop(&mut self) {
        if let Some(open) = self.open.take() {
            let status = if open.state.panicked() {
                Status::Panic
            } else if open.state.status == Status::Ok {
                Status::Cancelled
            } else {
                open.state.status
            };
            open.close(status);
        }
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Span").field("ids", &self.ids()).finish()
    }
}

/// Guard of [`Span::enter`]: the span is current until it drops.
pub struct Entered<'a> {
    span: &'a mut Span,
    resumed: Resumed,
    /// A panic already under way at `enter` (a poll from a `Drop` during
    /// unwinding) is not this poll's.
    unwinding_at_enter: PanicMark,
}

/// When a span was made current, for [`Span::suspend`].
#[derive(Clone, Copy)]
pub(crate) struct Resumed {
    enter_raw: u64,
    /// The thread's counters then.
    usage: Usage,
}

#[inline]
fn resume(ids: SpanIds, rt: &Runtime) -> Resumed {
    push_current(ids);
    Resumed {
        enter_raw: raw_now(),
        usage: Usage::now(rt),
    }
}

/// Time a span spent current, and what the thread used meanwhile (`NULL`
/// where not measured).
#[derive(Clone, Copy)]
pub(crate) struct Elapsed {
    pub(crate) busy_ns: u64,
    pub(crate) alloc: u64,
    pub(crate) cpu: u64,
}

impl Elapsed {
    #[inline]
    fn since(rt: &Runtime, resumed: Resumed) -> Elapsed {
        let used = Usage::now(rt).since(resumed.usage);
        Elapsed {
            busy_ns: raw_delta_ns(resumed.enter_raw, raw_now()),
            alloc: used.alloc,
            cpu: used.cpu,
        }
    }
}

impl State {
    #[inline]
    fn add(&mut self, elapsed: Elapsed) {
        self.busy_ns += elapsed.busy_ns;
        self.used.add(Usage {
            alloc: elapsed.alloc,
            cpu: elapsed.cpu,
        });
    }
}

/// A recording span's ids and runtime, copied out so that a thread can
/// make the span current and time that while another owns it (a `tracing`
/// span, owned by the registry).
#[cfg(feature = "tracing")]
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) ids: SpanIds,
    rt: &'static Runtime,
}

#[cfg(feature = "tracing")]
impl Entry {
    /// Makes the span current on this thread and starts timing.
    #[inline]
    pub(crate) fn resume(self) -> Resumed {
        resume(self.ids, self.rt)
    }

    /// Ends what `resume` began: the span leaves this thread's stack. The
    /// time is returned for the owner to add, with the message of an ERROR
    /// event that waited for the span here, if any.
    #[inline]
    pub(crate) fn suspend(self, resumed: Resumed) -> (Elapsed, Option<String>) {
        let elapsed = Elapsed::since(self.rt, resumed);
        let message = waiting_event_error(self.ids.span_id);
        pop_current(self.ids.span_id);
        (elapsed, message)
    }

    /// The runtime the span records into.
    pub(crate) fn runtime(self) -> &'static Runtime {
        self.rt
    }
}

impl Deref for Entered<'_> {
    type Target = Span;
    fn deref(&self) -> &Span {
        self.span
    }
}

impl DerefMut for Entered<'_> {
    fn deref_mut(&mut self) -> &mut Span {
        self.span
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        self.span.suspend(self.resumed);
        if let Some(open) = &mut self.span.open {
            // A panic out of a poll: the span keeps it even if the caller
            // catches it and drops the future later.
            if self.unwinding_at_enter.new_panic_since() {
                open.state
                    .record_panic(open.rt, crate::panic::last_message());
            }
        }
    }
}

/// A span that is current from creation until it drops, and ends then:
/// the shape of a plain function call. Its `busy_ns` is its duration.
///
/// Dropped normally it ends with the status recorded so far (`ok` by
/// default); dropped by an unwinding panic it ends as `panic` with the
/// panic's message.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};
///
/// static PARSE: Callsite = Callsite::new("parse", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// {
///     let mut span = EnteredSpan::new(&PARSE);
///     if "12x".parse::<u32>().is_err() {
///         span.record_error("invalid digit");
///     }
/// }
/// guard.flush();
/// # Ok(()) }
/// ```
pub struct EnteredSpan {
    open: Option<Open>,
    /// Its ids are on this thread's stack: the guard must stay here.
    _not_send: PhantomData<*const ()>,
}

impl EnteredSpan {
    /// Opens a span under the current one and makes it current.
    #[inline]
    pub fn new(callsite: &'static Callsite) -> EnteredSpan {
        // Monitoring off costs a load and a branch; the recording span is
        // opened out of line, so that code inlined into the caller never
        // touches its fields (a recent store of the caller's to that stack
        // slot stalled a wider load of them: +2.5 ns a call without `init`).
        match runtime::for_new_span() {
            Some(rt) => Self::open(rt, callsite),
            None => EnteredSpan::off(),
        }
    }

    /// A span that records nothing.
    #[inline(always)]
    fn off() -> EnteredSpan {
        EnteredSpan {
            open: None,
            _not_send: PhantomData,
        }
    }

    /// Returns the whole guard, not its `Open`: the caller's guard is the
    /// return slot, where an `Option<Open>` returned was copied into it
    /// (128 bytes, about 20 instructions a call).
    #[inline(never)]
    fn open(rt: &'static Runtime, callsite: &'static Callsite) -> EnteredSpan {
        // One stack access reads the parent and pushes the new span.
        let Some((ids, parent_id)) = local::with(|local| {
            let mut stack = local.stack.borrow_mut();
            let (ids, parent_id) = ids_under(stack.last().copied(), crate::id::next_in(&local.ids));
            stack.push(ids);
            (ids, parent_id)
        }) else {
            return EnteredSpan::off();
        };
        let mut state = start(callsite, parent_id);
        state.start_usage = Usage::now(rt);
        EnteredSpan {
            open: Some(Open { rt, ids, state }),
            _not_send: PhantomData,
        }
    }

    /// Opens a span under a span of another process and makes it current:
    /// a request handler's call (see [`Span::child_of_remote`]).
    #[inline]
    pub fn child_of_remote(
        callsite: &'static Callsite,
        remote: &crate::propagation::TraceContext,
    ) -> EnteredSpan {
        Span::child_of_remote(callsite, remote).entered()
    }

    /// Opens a span under `parent` when there is one, else under the
    /// current span, and makes it current (`#[monitor(parent = ...)]`).
    #[doc(hidden)]
    #[inline]
    pub fn under(callsite: &'static Callsite, parent: Option<SpanIds>) -> EnteredSpan {
        match parent {
            Some(parent) => Span::with_parent(callsite, Some(parent)).entered(),
            None => EnteredSpan::new(callsite),
        }
    }

    recording_methods!();

    /// Ends the span now (the same as dropping it).
    pub fn end(self) {}
}

impl Drop for EnteredSpan {
    #[inline]
    fn drop(&mut self) {
        if let Some(open) = &mut self.open {
            open.end_call();
        }
    }
}

impl Open {
    /// Ends a call's span. Worked on in place (moving the span out would
    /// copy it), and out of line, as [`EnteredSpan::new`] opens it.
    #[inline(never)]
    fn end_call(&mut self) {
        let end_raw = raw_now();
        // Most programs measure neither allocations nor CPU: one branch
        // then, not the reads and the arithmetic.
        if self.state.start_usage != Usage::NONE {
            self.state.used = Usage::now(self.rt).since(self.state.start_usage);
        }
        let status = if self.state.panicked() {
            Status::Panic
        } else {
            self.state.status
        };
        take_event_error(self.ids.span_id, Some(&mut self.state));
        // One lookup of the thread's locals: off its stack, into its
        // buffer. A call is busy for all of its duration.
        let (rt, ids, state) = (self.rt, self.ids, &mut self.state);
        let ended = local::with(|local| {
            pop_from(&local.stack, ids.span_id);
            finish(
                rt,
                Some(local),
                ids,
                state,
                status,
                end_raw,
                BUSY_THROUGHOUT,
            );
        });
        if ended.is_none() {
            // The thread's locals are gone, and its stack with them.
            finish(rt, None, ids, state, status, end_raw, BUSY_THROUGHOUT);
        }
    }
}

impl fmt::Debug for EnteredSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnteredSpan")
            .field("ids", &self.ids())
            .finish()
    }
}

/// The ids of a new span `span_id` under `parent`, and its parent's id
/// (`0`: a root, its own trace).
#[inline]
fn ids_under(parent: Option<SpanIds>, span_id: u64) -> (SpanIds, u64) {
    match parent {
        Some(p) => (
            SpanIds {
                span_id,
                trace_id: p.trace_id,
                trace_hi: p.trace_hi,
            },
            p.span_id,
        ),
        None => (
            SpanIds {
                span_id,
                trace_id: span_id,
                trace_hi: 0,
            },
            0,
        ),
    }
}

/// The state of a span starting now.
#[inline]
fn start(callsite: &'static Callsite, parent_id: u64) -> State {
    State {
        parent_id,
        callsite,
        start_raw: raw_now(),
        busy_ns: 0,
        items: None,
        status: Status::Ok,
        started_unwinding: PanicMark::now(),
        keep: None,
        // Read where the span becomes a call (`EnteredSpan`), on its thread.
        start_usage: Usage::NONE,
        used: Usage::NONE,
        detail: DetailSlot(None),
    }
}

/// Hands the finished span to the queue, unless sampling leaves it out.
/// `state` is read in place and its `detail` taken: the record is built
/// once, in its slot of the thread's buffer (an error's, in the error
/// lane's channel).
#[inline(always)]
fn finish(
    rt: &'static Runtime,
    local: Option<&Local>,
    ids: SpanIds,
    state: &mut State,
    #[allow(unused_mut)] mut status: Status,
    end_raw: u64,
    busy_ns: u64,
) {
    // An ERROR event of `tracing` inside the span, unless the span has an
    // error of its own.
    #[cfg(feature = "tracing")]
    if let Some(message) = state.detail.as_mut().and_then(|d| d.event_error.take()) {
        if status == Status::Ok {
            status = Status::Error;
            state.record_error(message);
        }
    }
    if !status.is_failure() && !state.keep.unwrap_or_else(|| state.callsite.keeps_sample()) {
        rt.queue
            .counters
            .sampled_out
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return;
    }
    if status == Status::Panic && state.status != Status::Panic {
        panic_seen_at_end(rt, state);
    }
    let detail = state.detail.take();
    let state = &*state;
    rt.queue
        .push_with(local, status.is_failure(), |thread_id| Record {
            span_id: ids.span_id,
            parent_id: state.parent_id,
            trace_id: ids.trace_id,
            trace_hi: ids.trace_hi,
            callsite: state.callsite,
            thread_id,
            start_raw: state.start_raw,
            end_raw,
            busy_ns,
            items: state.items.unwrap_or(NULL),
            rss_bytes: rt.latest_rss.get(),
            cpu_ns: state.used.cpu,
            alloc_bytes: state.used.alloc,
            status,
            event_level: 0,
            detail,
        });
}

/// Drops `value` out of the hot path.
#[cold]
#[inline(never)]
fn drop_cold<T>(value: T) {
    drop(value);
}

/// A panic seen only at the end (a call unwinding): its message replaces
/// an earlier error's.
#[cold]
fn panic_seen_at_end(rt: &Runtime, state: &mut State) {
    if let Some(message) = crate::panic::last_message() {
        state.detail.get_or_insert_with(Default::default).error = Some(rt.capture.text(&message));
    }
}
