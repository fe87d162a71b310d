//! The future `#[monitor]` returns for an `async fn` or a fn returning a
//! future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use super::PolledSpan;
use crate::span::Span;

pin_project! {
    /// A future whose span starts when the future is created, is current
    /// while it is polled (adding up `busy_ns`), and ends when it completes;
    /// dropped before that, the span ends as `cancelled`. `observe` sees the
    /// output first (to record an `Err` or the `ret` value).
    #[doc(hidden)]
    pub struct Monitored<F, O> {
        #[pin]
        inner: F,
        span: PolledSpan,
        observe: Option<O>,
    }
}

impl<F, O> Monitored<F, O>
where
    F: Future,
    O: FnOnce(&F::Output, &mut Span),
{
    /// Wraps `inner`, whose span is `span`.
    pub fn new(inner: F, span: Span, observe: O) -> Self {
        Monitored {
            inner,
            span: PolledSpan(span),
            observe: Some(observe),
        }
    }
}

impl<F, O> Future for Monitored<F, O>
where
    F: Future,
    O: FnOnce(&F::Output, &mut Span),
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let inner = this.inner;
        let polled = this.span.0.in_scope(|| inner.poll(cx));
        if let Poll::Ready(output) = &polled {
            if let Some(observe) = this.observe.take() {
                observe(output, &mut this.span.0);
            }
            std::mem::replace(&mut this.span.0, Span::none()).end();
        }
        polled
    }
}
