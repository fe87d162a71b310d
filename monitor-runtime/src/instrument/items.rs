//! What a monitored stream and a monitored iterator share: one span for the
//! whole sequence, current and timed while an item is produced, and with
//! `item_spans` one child span per item.

use std::mem;
use std::task::Poll;

use crate::callsite::Callsite;
use crate::span::Span;

/// The span of a sequence and what it needs to follow the items.
pub(crate) struct Items<O> {
    /// `Span::none()` once the sequence has ended (or when not recording).
    span: Span,
    /// The callsite of per-item spans, with `item_spans`.
    item_callsite: Option<&'static Callsite>,
    /// The span of the item being produced: opened at its first poll, kept
    /// across `Pending`, ended when the item comes.
    item_span: Span,
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
        Items {
            span,
            item_callsite,
            item_span: Span::none(),
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
        if !self.span.is_recording() {
            return produce();
        }
        if let Some(callsite) = self.item_callsite {
            if !self.item_span.is_recording() {
                self.item_span = Span::with_parent(callsite, self.span.ids());
            }
        }
        let polled = {
            let _sequence = self.span.enter();
            let _item = self.item_callsite.is_some().then(|| self.item_span.enter());
            produce()
        };
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(item)) => {
                self.span.add_items(1);
                let mut item_span = mem::replace(&mut self.item_span, Span::none());
                if let Some(message) = (self.observe)(item) {
                    item_span.record_error(&message);
                    self.span.record_error(message);
                }
                item_span.end();
            }
            Poll::Ready(None) => {
                // The last poll found no item: not an item's span.
                mem::replace(&mut self.item_span, Span::none()).discard();
                mem::replace(&mut self.span, Span::none()).end();
            }
        }
        polled
    }
}
