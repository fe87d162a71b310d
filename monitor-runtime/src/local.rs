//! What a thread keeps for monitoring, in one thread-local: the stack of
//! its current spans, its segment of span ids and its buffer of finished
//! records. A call's span reaches what it needs with one lookup at its
//! start (stack, ids) and one at its end (stack, buffer), where three
//! thread-locals took three (about 7 instructions a call).
//!
//! While the thread's locals are torn down (a span in another
//! thread-local's destructor) none of it is there: such a span is a root,
//! draws a random id, and its record is handed over on its own.

use std::cell::{Cell, RefCell};

use crate::queue::LocalBuffer;
use crate::span::SpanIds;

pub(crate) struct Local {
    /// The ids of the spans current on this thread, innermost last. A
    /// span's state stays in its guard: only 16 bytes move per call.
    pub(crate) stack: RefCell<Vec<SpanIds>>,
    /// The next span id and the end of its segment ([`crate::id`]).
    pub(crate) ids: Cell<(u64, u64)>,
    /// This thread's buffer in the running queue, once it has one.
    pub(crate) buffer: RefCell<Option<LocalBuffer>>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            stack: RefCell::new(Vec::new()),
            ids: Cell::new((0, 0)),
            buffer: RefCell::new(None),
        }
    };
}

/// Runs `f` on this thread's [`Local`]; `None` while the thread's locals
/// are torn down (a span ended by another thread-local's destructor).
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&Local) -> R) -> Option<R> {
    LOCAL.try_with(f).ok()
}
