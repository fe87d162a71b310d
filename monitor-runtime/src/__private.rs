//! What `#[monitor]`'s generated code calls. Not a stable API: use the
//! attribute, or the public span API.

pub use crate::capture::{
    Capture, CaptureDebug, CaptureOpaque, CaptureScalar, MessageDebug, MessageDisplay,
};
pub use crate::instrument::Monitored;

/// Names a lifetime in `impl Future + Captures<'a>`, so that a rewritten
/// `async fn` captures its lifetimes on every edition.
pub trait Captures<'a> {}
impl<T: ?Sized> Captures<'_> for T {}

/// The longest captured value, from the running configuration.
#[inline]
pub fn max_value_len() -> usize {
    crate::runtime::active().map_or(1024, |rt| rt.max_value_len)
}

/// Runs the body of a sync function as a `FnOnce` whose return type is the
/// function's: coercions inside the body (`Ok(&string)` to `Result<&str, _>`)
/// and `&mut` returns work as they do without the attribute.
#[inline(always)]
pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
    f()
}
