//! Wrappers that carry a span through a value's life: what `#[monitor]` puts
//! around a future ([`future`]), a stream ([`stream`]) or an iterator
//! ([`iter`]), and [`InCurrentSpan`] for work handed to `tokio::spawn` or
//! another thread.

pub(crate) mod boxed;
pub(crate) mod future;
mod items;
pub(crate) mod iter;
pub(crate) mod stream;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::span::{current_span, CurrentGuard, Span, SpanIds};

/// The span of a future, stream or iterator. A panic in its own code is
/// recorded as it goes through a poll, so one dropped unfinished is
/// `cancelled`, also when a panic elsewhere (in its consumer) drops it.
pub(crate) struct PolledSpan(pub(crate) Span);

impl Drop for PolledSpan {
    fn drop(&mut self) {
        std::mem::replace(&mut self.0, Span::none()).cancel();
    }
}

pin_project! {
    /// A future polled with a given span current: see [`InCurrentSpan`].
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        span: Option<SpanIds>,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _current = this.span.map(CurrentGuard::enter);
        this.inner.poll(cx)
    }
}

/// Carries the current span into a future that runs elsewhere, so that spans
/// it opens are children of the span that was current where it was made.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::prelude::*;
/// use monitor_runtime::{current_span, Callsite, Config, EnteredSpan, SpanKind};
///
/// static HANDLER: Callsite = Callsite::new("handler", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// let dir = tempfile::tempdir()?;
/// let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
/// let runtime = tokio::runtime::Builder::new_multi_thread().build()?;
/// let handler = EnteredSpan::new(&HANDLER);
/// let parent = current_span();
/// let seen = runtime.block_on(runtime.spawn(async { current_span() }.in_current_span()))?;
/// assert_eq!(seen, parent);
/// # drop(handler); drop(guard); Ok(()) }
/// ```
pub trait InCurrentSpan: Sized {
    /// Polls `self` with the span that is current now.
    fn in_current_span(self) -> InSpan<Self> {
        self.in_span(current_span())
    }

    /// Polls `self` with `span` current (`None`: no span).
    fn in_span(self, span: Option<SpanIds>) -> InSpan<Self> {
        InSpan { inner: self, span }
    }
}

impl<F: Future> InCurrentSpan for F {}
