//! A panic's message for the spans it unwinds through.
//!
//! Code that `#[monitor]` generates, and the wrappers' `poll`/`next`, catch
//! the unwind where their span ends ([`observe_unwind`]), read the message
//! from the payload and resume the same unwind: the message does not depend
//! on which panic hook is installed, and no hook runs twice.
//!
//! A hand-written guard dropped by an unwind sees only that its thread is
//! panicking; for it a panic hook, chained in front of whatever hook was
//! installed before, keeps the message in a thread-local. That hook is a
//! fallback: a program that replaces it after `init` loses only those
//! messages.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    static LAST_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Panics this thread has started, as the hook saw them.
    static PANICS: Cell<u64> = const { Cell::new(0) };
}

/// Where a scope (a span, a poll) began with respect to panics, so that its
/// end can tell a panic that started inside it from one already unwinding
/// when it began (a span opened in a `Drop` during unwinding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PanicMark(u64);

impl PanicMark {
    /// For a scope that records nothing.
    pub(crate) const UNUSED: PanicMark = PanicMark(0);

    /// `0` when no panic is under way, else the thread's panic count + 1.
    #[inline]
    pub(crate) fn now() -> PanicMark {
        if std::thread::panicking() {
            PanicMark(panics_seen() + 1)
        } else {
            PanicMark(0)
        }
    }

    /// Whether a panic that started after the mark is unwinding now. (A
    /// scope begun during unwinding that catches a panic of its own and
    /// then returns is taken for a panicking one: the count cannot tell.)
    #[inline]
    pub(crate) fn new_panic_since(self) -> bool {
        std::thread::panicking() && (self.0 == 0 || panics_seen() + 1 != self.0)
    }
}

/// Runs `f`; a panic out of it is shown to `on_panic` (its payload), then
/// unwinds on with the same payload, so the caller's `downcast` still works.
/// `resume_unwind` runs no hook, so the user's hook runs once per panic.
/// With `panic = "abort"` nothing unwinds and this is a plain call.
#[inline(always)]
pub(crate) fn observe_unwind<R>(
    f: impl FnOnce() -> R,
    on_panic: impl FnOnce(&(dyn Any + Send)),
) -> R {
    // AssertUnwindSafe: nothing here looks at `f`'s state after a panic;
    // the unwind resumes at once, so the caller sees what it would have
    // seen without the catch. User types never need `UnwindSafe`.
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            on_panic(&*payload);
            panic::resume_unwind(payload)
        }
    }
}

fn panics_seen() -> u64 {
    PANICS.try_with(Cell::get).unwrap_or(0)
}

/// Installs the hook once per process; the previous hook still runs.
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // Every panic replaces the message, so a span never shows an
            // earlier panic's text.
            let message = message_of(info);
            let _ = LAST_MESSAGE.try_with(|last| *last.borrow_mut() = Some(message));
            let _ = PANICS.try_with(|n| n.set(n.get() + 1));
            previous(info);
        }));
    });
}

fn message_of(info: &PanicHookInfo<'_>) -> String {
    payload_message(info.payload())
}

/// A panic payload's text, when it is a string.
pub(crate) fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// The message of the panic this thread is unwinding from, if the hook saw it.
pub(crate) fn last_message() -> Option<String> {
    LAST_MESSAGE
        .try_with(|last| last.borrow().clone())
        .ok()
        .flatten()
}
