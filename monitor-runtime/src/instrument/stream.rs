//! The stream `#[monitor]` returns for a fn returning a `Stream`.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::stream::{FusedStream, Stream};
use pin_project_lite::pin_project;

use super::items::Items;
use crate::callsite::Callsite;
use crate::span::Span;

pin_project! {
    /// A stream whose span starts when the stream is created, is current
    /// while it is polled (adding up `busy_ns`), counts the items, and ends
    /// at `None`; dropped before that, the span ends as `cancelled`.
    /// `observe` returns an `Err` item's message.
    #[doc(hidden)]
    pub struct MonitoredStream<S, O> {
        #[pin]
        inner: S,
        items: Items<O>,
    }
}

impl<S, O> MonitoredStream<S, O>
where
    S: Stream,
    O: FnMut(&S::Item) -> Option<String>,
{
    /// Wraps `inner`, whose span is `span`; `item_callsite` adds a child
    /// span per item.
    pub fn new(inner: S, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self {
        MonitoredStream {
            inner,
            items: Items::new(span, item_callsite, observe),
        }
    }
}

impl<S, O> Stream for MonitoredStream<S, O>
where
    S: Stream,
    O: FnMut(&S::Item) -> Option<String>,
{
    type Item = S::Item;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        let inner = this.inner;
        this.items.step(|| inner.poll_next(cx))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S, O> FusedStream for MonitoredStream<S, O>
where
    S: FusedStream,
    O: FnMut(&S::Item) -> Option<String>,
{
    fn is_terminated(&self) -> bool {
        self.inner.is_terminated()
    }
}

impl<S: std::fmt::Debug, O> std::fmt::Debug for MonitoredStream<S, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoredStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
