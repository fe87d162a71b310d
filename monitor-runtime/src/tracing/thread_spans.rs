//! What each thread knows of the `tracing` spans it enters, so that an
//! enter and an exit need no registry lookup.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::record::NULL;
use crate::span::{Elapsed, Entry, Resumed, Span};

/// What a span's enters and exits share, on whichever thread, without a
/// registry lookup (each costs two atomic read-modify-writes and the
/// extensions' lock): its ids, and the time entered so far, added up when
/// the span closes. Atomics, as two threads may exit it at once.
pub(super) struct Live {
    pub(super) entry: Entry,
    /// The span itself, taken out when it closes. Its own lock (held only
    /// to move text in or the span out, never across user code), so that a
    /// thread that knows the span closes it without the registry.
    pub(super) span: spin::Mutex<Span>,
    pub(super) gone: AtomicBool,
    busy_ns: AtomicU64,
    alloc: AtomicU64,
    cpu: AtomicU64,
    /// Whether any `alloc` / `cpu` was measured (else they are `NULL`).
    alloc_measured: AtomicBool,
    cpu_measured: AtomicBool,
}

impl Live {
    pub(super) fn new(entry: Entry, span: Span) -> Live {
        Live {
            entry,
            span: spin::Mutex::new(span),
            gone: AtomicBool::new(false),
            busy_ns: AtomicU64::new(0),
            alloc: AtomicU64::new(0),
            cpu: AtomicU64::new(0),
            alloc_measured: AtomicBool::new(false),
            cpu_measured: AtomicBool::new(false),
        }
    }

    pub(super) fn add(&self, elapsed: Elapsed) {
        self.busy_ns.fetch_add(elapsed.busy_ns, Ordering::Relaxed);
        if elapsed.alloc != NULL {
            self.alloc.fetch_add(elapsed.alloc, Ordering::Relaxed);
            self.alloc_measured.store(true, Ordering::Relaxed);
        }
        if elapsed.cpu != NULL {
            self.cpu.fetch_add(elapsed.cpu, Ordering::Relaxed);
            self.cpu_measured.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn total(&self) -> Elapsed {
        let measured = |sum: &AtomicU64, measured: &AtomicBool| {
            if measured.load(Ordering::Relaxed) {
                sum.load(Ordering::Relaxed)
            } else {
                NULL
            }
        };
        Elapsed {
            busy_ns: self.busy_ns.load(Ordering::Relaxed),
            alloc: measured(&self.alloc, &self.alloc_measured),
            cpu: measured(&self.cpu, &self.cpu_measured),
        }
    }
}

/// A `tracing` span as a thread knows it: by its layer and id.
pub(super) struct Known {
    pub(super) layer: u64,
    pub(super) id: u64,
    pub(super) live: Arc<Live>,
}

impl Known {
    fn is(&self, layer: u64, id: u64) -> bool {
        self.layer == layer && self.id == id
    }
}

/// The `tracing` spans this thread knows without asking the registry.
pub(super) struct ThreadSpans {
    /// The span made or exited last here: most enters are of that one (a
    /// span entered right after it is made; a future polled again).
    pub(super) last: Option<Known>,
    /// The spans entered here and not exited, innermost last, with when.
    pub(super) entered: Vec<(Known, Resumed)>,
}

thread_local! {
    pub(super) static THREAD_SPANS: RefCell<ThreadSpans> = const {
        RefCell::new(ThreadSpans { last: None, entered: Vec::new() })
    };
}

impl ThreadSpans {
    /// `last`, if it is that span (and not a span gone whose id was given
    /// again).
    pub(super) fn take_last(&mut self, layer: u64, id: u64) -> Option<Known> {
        self.last(layer, id)?;
        self.last.take()
    }

    /// `last`, if it is that span (and not a span gone whose id was given
    /// again).
    pub(super) fn last(&self, layer: u64, id: u64) -> Option<&Known> {
        self.last
            .as_ref()
            .filter(|last| last.is(layer, id) && !last.live.gone.load(Ordering::Acquire))
    }

    /// This thread's innermost enter of that span: the last one, unless
    /// enters and exits interleave.
    pub(super) fn take_entered(&mut self, layer: u64, id: u64) -> Option<(Known, Resumed)> {
        match self.entered.last() {
            Some((known, _)) if known.is(layer, id) => self.entered.pop(),
            _ => {
                let at = self
                    .entered
                    .iter()
                    .rposition(|(known, _)| known.is(layer, id))?;
                Some(self.entered.remove(at))
            }
        }
    }
}

/// A `Live` for the new span `span`: the last span's, when this thread
/// holds the only reference left (that span is gone), else a new one.
pub(super) fn fresh_live(entry: Entry, span: Span) -> Arc<Live> {
    let last = THREAD_SPANS
        .try_with(|spans| spans.borrow_mut().last.take())
        .ok()
        .flatten();
    if let Some(mut last) = last {
        if let Some(live) = Arc::get_mut(&mut last.live) {
            *live = Live::new(entry, span);
            return last.live;
        }
    }
    Arc::new(Live::new(entry, span))
}
