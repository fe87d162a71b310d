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

/// `Rewrap` for `$boxed<dyn $trait<Item = T> + bounds + 'a>`, wrapped in
/// `$wrapper` and boxed again with `$boxer`, for each set of bounds.
macro_rules! rewrap {
    ($boxed:ident, $boxer:path, $wrapper:ident, $trait:ident, $([$($bounds:tt)*]),+) => {$(
        impl<'a, T: 'a> Rewrap for $boxed<dyn $trait<Item = T> $($bounds)* + 'a> {
            type Item = T;
            fn rewrap<O>(self, span: Span, item_callsite: Option<&'static Callsite>, observe: O) -> Self
            where
                O: FnMut(&T) -> Option<String> + Send + Sync + 'static,
            {
                $boxer($wrapper::new(self, span, item_callsite, observe))
            }
        }
    )+};
}

type PinBox<T> = Pin<Box<T>>;

rewrap!(PinBox, Box::pin, MonitoredStream, Stream, [], [+ Send], [+ Send + Sync]);
rewrap!(Box, Box::new, MonitoredStream, Stream, [+ Unpin], [+ Unpin + Send], [+ Unpin + Send + Sync]);
rewrap!(Box, Box::new, MonitoredIter, Iterator, [], [+ Send], [+ Send + Sync]);
rewrap!(Box, Box::new, MonitoredIter, DoubleEndedIterator, [], [+ Send], [+ Send + Sync]);
rewrap!(Box, Box::new, MonitoredIter, ExactSizeIterator, [], [+ Send], [+ Send + Sync]);
