//! Boxed streams and iterators (`BoxStream`, `Pin<Box<dyn Stream>>`,
//! `Box<dyn Iterator>`, or an alias of one): the monitored wrapper goes back
//! into a box of the same type, so the function's signature is unchanged.

use std::pin::Pin;

use futures_core::stream::Stream;

use super::iter::MonitoredIter;
use super::stream::MonitoredStream;
use crate::callsite::Callsite;
use crate::span::Span;

/// A boxed stream or iterator that `#[monitor]` can wrap and box again.
#[diagnostic::on_unimplemented(
    message = "`#[monitor]` cannot wrap `{Self}` as a stream or an iterator",
    label = "returned here",
    note = "return `impl Stream<Item = T>`, `impl Iterator<Item = T>`, a `BoxStream`, `Pin<Box<dyn Stream<Item = T>>>` or `Box<dyn Iterator<Item = T>>`"
)]
pub trait Rewrap: Sized {
    /// What the stream or iterator yields.
    type Item;

    /// The same box, around a monitored wrapper of its content.
    fn rewrap<O>(self, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self
    where
        O: FnMut(&Self::Item) -> Option<String> + Send + Sync + 'static;
}

macro_rules! rewrap_streams {
    ($($bounds:tt)*) => {
        impl<'a, T: 'a> Rewrap for Pin<Box<dyn Stream<Item = T> $($bounds)* + 'a>> {
            type Item = T;
            fn rewrap<O>(self, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self
            where
                O: FnMut(&T) -> Option<String> + Send + Sync + 'static,
            {
                Box::pin(MonitoredStream::new(self, span, item_callsite, observe))
            }
        }
    };
}
rewrap_streams!();
rewrap_streams!(+ Send);
rewrap_streams!(+ Send + Sync);

macro_rules! rewrap_iterators {
    ($($bounds:tt)*) => {
        impl<'a, T: 'a> Rewrap for Box<dyn Iterator<Item = T> $($bounds)* + 'a> {
            type Item = T;
            fn rewrap<O>(self, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self
            where
                O: FnMut(&T) -> Option<String> + Send + Sync + 'static,
            {
                Box::new(MonitoredIter::new(self, span, item_callsite, observe))
            }
        }
    };
}
rewrap_iterators!();
rewrap_iterators!(+ Send);
rewrap_iterators!(+ Send + Sync);
