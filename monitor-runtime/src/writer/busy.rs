//! The writer connection's busy handler: it waits for another connection's
//! lock as SQLite's `busy_timeout` does, but no later than the exit
//! flush's deadline once the process is ending. That flush must not spend
//! its whole bound inside one insert that waits for a lock, begun before
//! the flush was asked for; given up, the insert fails and the writer
//! spills the rest, which waits for no lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// The exit deadline, in microseconds after [`base`]; `u64::MAX` while
/// the process is not ending.
static GIVE_UP_AT_US: AtomicU64 = AtomicU64::new(u64::MAX);

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

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

/// The process is ending: waits for a lock end by `deadline` (within a
/// few milliseconds), also one in progress.
pub(crate) fn give_up_at(deadline: Instant) {
    let us = deadline.saturating_duration_since(base()).as_micros() as u64;
    GIVE_UP_AT_US.store(us, Ordering::Relaxed);
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
    let give_up_at = GIVE_UP_AT_US.load(Ordering::Relaxed);
    let past_deadline = give_up_at != u64::MAX
        && now.saturating_duration_since(base()).as_micros() as u64 >= give_up_at;
    if past_deadline || waited >= limit {
        return false;
    }
    // Short sleeps at first (a lock held for a commit is gone in a few
    // milliseconds), then 10 ms: that bounds how late a give-up is seen.
    let step = Duration::from_millis((attempt as u64 + 1).min(10));
    std::thread::sleep(step.min(limit - waited));
    true
}
