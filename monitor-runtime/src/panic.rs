//! Keeps a panic's message for the spans it unwinds through.
//!
//! A drop guard sees that its thread is panicking but not why; a panic hook,
//! chained in front of whatever hook was installed before, stores the
//! message in a thread-local for them.

use std::cell::RefCell;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

thread_local! {
    static LAST_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
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
            previous(info);
        }));
    });
}

fn message_of(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
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
