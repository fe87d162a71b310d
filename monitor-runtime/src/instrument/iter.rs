//! The iterator `#[monitor]` returns for a fn returning an `Iterator`.

use std::iter::FusedIterator;
use std::task::Poll;

use super::items::Items;
use crate::callsite::Callsite;
use crate::span::Span;

/// An iterator whose span starts when the iterator is created, is current
/// during each `next` (adding up `busy_ns`), counts the items, and ends at
/// `None`; dropped before that, the span ends as `cancelled`. `observe`
/// returns an `Err` item's message.
#[doc(hidden)]
pub struct MonitoredIter<I, O> {
    inner: I,
    items: Items<O>,
}

impl<I, O> MonitoredIter<I, O>
where
    I: Iterator,
    O: FnMut(&I::Item) -> Option<String>,
{
    /// Wraps `inner`, whose span is `span`; `item_callsite` adds a child
    /// span per item.
    pub fn new(inner: I, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self {
        MonitoredIter {
            inner,
            items: Items::new(span, item_callsite, observe),
        }
    }
}

/// An iterator step is never pending.
#[inline]
fn ready<T>(polled: Poll<Option<T>>) -> Option<T> {
    match polled {
        Poll::Ready(item) => item,
        Poll::Pending => unreachable!("an iterator step is always ready"),
    }
}

impl<I, O> Iterator for MonitoredIter<I, O>
where
    I: Iterator,
    O: FnMut(&I::Item) -> Option<String>,
{
    type Item = I::Item;

    #[inline]
    fn next(&mut self) -> Option<I::Item> {
        let inner = &mut self.inner;
        ready(self.items.step(|| Poll::Ready(inner.next())))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I, O> DoubleEndedIterator for MonitoredIter<I, O>
where
    I: DoubleEndedIterator,
    O: FnMut(&I::Item) -> Option<String>,
{
    #[inline]
    fn next_back(&mut self) -> Option<I::Item> {
        let inner = &mut self.inner;
        ready(self.items.step(|| Poll::Ready(inner.next_back())))
    }
}

impl<I, O> ExactSizeIterator for MonitoredIter<I, O>
where
    I: ExactSizeIterator,
    O: FnMut(&I::Item) -> Option<String>,
{
    fn len(&self) -> usize {
        self.inner.len()
    }
}

impl<I, O> FusedIterator for MonitoredIter<I, O>
where
    I: FusedIterator,
    O: FnMut(&I::Item) -> Option<String>,
{
}

impl<I: std::fmt::Debug, O> std::fmt::Debug for MonitoredIter<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoredIter")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}
