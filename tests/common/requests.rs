//! The workload the CLI's and the dashboard's tests read back, and helpers
//! for the figures they print.

use std::time::Duration;

use monitor_runtime::{Callsite, Clock, EnteredSpan, Guard, SpanKind};
use serde_json::Value;

pub const MS: i64 = 1_000_000;

pub static HANDLE: Callsite = Callsite::new(
    "handle",
    "app::http",
    "http",
    "src/http.rs",
    12,
    SpanKind::Sync,
);
pub static QUERY: Callsite =
    Callsite::new("query", "app::db", "db", "src/db.rs", 40, SpanKind::Sync);

/// 100 requests on `clock`: `handle` calls `query`, whose duration is `i`
/// ms for the i-th request; every 10th query fails with "connection reset
/// i". 8 ms pass between requests. Flushed.
pub fn requests(clock: &Clock, guard: &Guard) {
    for i in 1..=100 {
        let _handle = EnteredSpan::new(&HANDLE);
        let mut query = EnteredSpan::new(&QUERY);
        clock.advance(Duration::from_millis(i));
        if i % 10 == 0 {
            query.record_error(format!("connection reset {i}"));
        }
        drop(query);
        clock.advance(Duration::from_millis(8));
    }
    guard.flush();
}

/// The function `name` in a JSON list of functions.
pub fn function<'a>(functions: &'a Value, name: &str) -> &'a Value {
    functions
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {functions:#}"))
}

/// `value` (ns) is `ms` milliseconds, give or take a millisecond of real time.
pub fn about_ms(value: &Value, ms: i64) -> bool {
    let ns = value.as_i64().unwrap();
    (ms * MS..ms * MS + MS).contains(&ns)
}

/// Unix nanoseconds now, from the system clock.
pub fn real_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
