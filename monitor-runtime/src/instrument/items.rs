//! What a monitored stream and a monitored iterator share: one span for the
//! whole sequence, current and timed while an item is produced, and with
//! `item_spans` one child span per item.

use std::mem;
use std::task::Poll;

use super::PolledSpan;
use crate::callsite::Callsite;
use crate::record::Status;
use crate::span::Span;

/// The span of a sequence and what it needs to follow the items.
pub(crate) struct Items<O> {
    /// `Span::none()` once the sequence has ended (or when not recording).
    span: PolledSpan,
    /// The callsite of per-item spans, with `item_spans`.
    item_callsite: Option<&'static Callsite>,
    /// The span of the item being produced: opened at its first poll, kept
    /// across `Pending`, ended when the item comes.
    item_span: PolledSpan,
    /// Whether spans were opened while the current item was produced.
    item_had_children: bool,
    /// The sequence's sampling decision, which its item spans follow, so a
    /// kept item span never points at a sampled-out sequence.
    keep: bool,
    /// Returns an `Err` item's message.
    observe: O,
}

impl<O> Items<O> {
    pub(crate) fn new(
        mut span: Span,
        item_callsite: Option<&'static Callsite>,
        observe: O,
    ) -> Self {
        // A sequence that yields nothing has 0 items, not NULL.
        span.add_items(0);
        let keep = item_callsite.is_some() && span.decide_sample();
        Items {
            span: PolledSpan(span),
            item_callsite,
            item_span: PolledSpan(Span::none()),
            item_had_children: false,
            keep,
            observe,
        }
    }

    /// Produces the next item with the sequence's span current and timed,
    /// counts it, records an `Err` item, and ends the span at `None`.
    #[inline]
    pub(crate) fn step<T>(&mut self, produce: impl FnOnce() -> Poll<Option<T>>) -> Poll<Option<T>>
    where
        O: FnMut(&T) -> Option<String>,
    {
        if !self.span.0.is_recording() {
            return produce();
        }
        let Some(callsite) = self.item_callsite else {
            let polled = self.span.0.in_scope(produce);
            self.settle(&polled);
            return polled;
        };
        // An item whose poll panicked (and the caller caught it) is over.
        if self.item_span.0.status() == Some(Status::Panic) {
            mem::replace(&mut self.item_span.0, Span::none()).end();
        }
        if !self.item_span.0.is_recording() {
            self.item_span.0 = Span::with_parent(callsite, self.span.0.ids());
            self.item_span.0.follow_sample(self.keep);
            self.item_had_children = false;
        }
        let before = crate::id::issued_marker();
        let polled = {
            let mut sequence = self.span.0.enter();
            let mut item = self.item_span.0.enter();
            crate::panic::observe_unwind(produce, |payload| {
                item.record_panic_payload(payload);
                sequence.record_panic_payload(payload);
            })
        };
        self.item_had_children |= crate::id::issued_marker() != before;
        self.settle(&polled);
        polled
    }

    /// Counts an item, records an `Err` one, ends the spans at `None`.
    fn settle<T>(&mut self, polled: &Poll<Option<T>>)
    where
        O: FnMut(&T) -> Option<String>,
    {
        match polled {
            Poll::Pending => {}
            Poll::Ready(Some(item)) => {
                self.span.0.add_items(1);
                let mut item_span = mem::replace(&mut self.item_span.0, Span::none());
                item_span.add_items(1);
                if let Some(message) = (self.observe)(item) {
                    item_span.__record_error_checked(message.clone());
                    self.span.0.__record_error_checked(message);
                }
                item_span.end();
            }
            Poll::Ready(None) => {
                let last = mem::replace(&mut self.item_span.0, Span::none());
                if self.item_had_children {
                    // Not an item, but spans opened in it name it as their
                    // parent: it is stored, with 0 items.
                    let mut last = last;
                    last.add_items(0);
                    last.end();
                } else {
                    last.discard();
                }
                mem::replace(&mut self.span.0, Span::none()).end();
            }
        }
    }
}
