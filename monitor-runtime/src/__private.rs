//! What `#[monitor]`'s generated code calls. Not a stable API: use the
//! attribute, or the public span API.

pub use crate::capture::{
    Capture, CaptureDebug, CaptureOpaque, CaptureScalar, CaptureSeq, MessageDebug, MessageDisplay,
};
pub use crate::instrument::boxed::Rewrap;
pub use crate::instrument::future::Monitored;
pub use crate::instrument::iter::MonitoredIter;
pub use crate::instrument::stream::MonitoredStream;
pub use crate::secret::{is_secret_name, masked};

/// Names a lifetime in `impl Future + Captures<'a>`, so that a rewritten
/// `async fn` captures its lifetimes on every edition.
pub trait Captures<'a> {}
impl<T: ?Sized> Captures<'_> for T {}

pub use crate::capture::CaptureRules;

/// How captured text is rendered (length limit, secret rules), from the
/// running configuration.
#[inline]
pub fn capture_rules() -> &'static CaptureRules {
    crate::runtime::capture_rules()
}

/// Wraps a function's outcome for the autoref-specialised `__monitor_err`:
/// a `Result` gives its error, any other type (a user type that happens to
/// be named `Result`) gives none.
pub struct Outcome<'a, T: ?Sized>(pub &'a T);

/// `Outcome` of a `Result`: its error, if any.
pub trait OutcomeOfResult<'a, E> {
    fn __monitor_err(&self) -> Option<&'a E>;
}
impl<'a, T, E> OutcomeOfResult<'a, E> for &Outcome<'a, Result<T, E>> {
    fn __monitor_err(&self) -> Option<&'a E> {
        self.0.as_ref().err()
    }
}

/// `Outcome` of anything else: never an error.
pub trait OutcomeOfOther {
    fn __monitor_err(&self) -> Option<&'static NotAnError>;
}
impl<T: ?Sized> OutcomeOfOther for Outcome<'_, T> {
    fn __monitor_err(&self) -> Option<&'static NotAnError> {
        None
    }
}

/// The error type of an outcome that is not a `Result` (never built).
#[derive(Debug)]
pub struct NotAnError;
impl std::fmt::Display for NotAnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not an error")
    }
}
