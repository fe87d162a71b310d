//! The writer connection's busy handler: it waits for another connection's
//! lock as SQLite's `busy_timeout` does, but gives up at once when the
//! process is ending. A flush at exit must not spend its whole bound
//! inside one insert that waits for a lock; given up, the insert fails
//! and the writer spills the rest, which waits for no lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// Set when the process is ending: stop waiting for locks.
static GIVE_UP: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// How long a statement run on this thread waits for a lock. The
    /// handler has no state of its own (a plain `fn`), and a connection is
    /// used by one thread at a time.
    static LIMIT: Cell<Duration> = const { Cell::new(super::schema::BUSY_TIMEOUT) };
    /// When the current wait began (the handler's first call of it).
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Installs the handler on `conn`; statements the calling thread runs
/// wait at most `limit`.
pub(crate) fn install(conn: &Connection, limit: Duration) -> rusqlite::Result<()> {
    set_limit(limit);
    conn.busy_handler(Some(wait))
}

/// How long statements run on this thread wait from now on.
pub(crate) fn set_limit(limit: Duration) {
    LIMIT.with(|l| l.set(limit));
}

/// The process is ending: waits in progress end within a few milliseconds,
/// and later statements do not wait.
pub(crate) fn give_up() {
    GIVE_UP.store(true, Ordering::Relaxed);
}

/// SQLite's busy callback: `true` to try again, `false` to fail with
/// `SQLITE_BUSY`. `attempt` is 0 on the first call of each wait.
fn wait(attempt: i32) -> bool {
    let now = Instant::now();
    let since = WAITING_SINCE.with(|since| {
        if attempt == 0 {
            since.set(Some(now));
        }
        since.get().unwrap_or(now)
    });
    let limit = LIMIT.with(Cell::get);
    let waited = now - since;
    if GIVE_UP.load(Ordering::Relaxed) || waited >= limit {
        return false;
    }
    // Short sleeps at first (a lock held for a commit is gone in a few
    // milliseconds), then 10 ms: that bounds how late a give-up is seen.
    let step = Duration::from_millis((attempt as u64 + 1).min(10));
    std::thread::sleep(step.min(limit - waited));
    true
}
