//! Function-level observability into a local SQLite file.
//!
//! Put `#[monitor]` on a function, call [`init`] once, and every call becomes
//! a row of the `spans` view in `monitor.db`, linked to its parent, with its
//! duration, outcome and resource figures.
//!
//! The data flows one way: a span guard ([`span`]) → the error-first queue
//! → the writer thread → SQLite, which the `monitor` CLI reads.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};
//!
//! static LOAD: Callsite = Callsite::new("load", module_path!(), "db", file!(), line!(), SpanKind::Sync);
//!
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("monitor.db");
//! let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
//! {
//!     let _span = EnteredSpan::new(&LOAD); // what #[monitor] generates
//! }
//! guard.flush();
//!
//! let conn = rusqlite::Connection::open(&db)?;
//! let (name, status): (String, String) =
//!     conn.query_row("SELECT name, status FROM spans", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
//! assert_eq!((name.as_str(), status.as_str()), ("load", "ok"));
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod alloc;
mod callsite;
mod capture;
mod clock;
mod config;
mod error;
mod export_cursor;
mod health;
mod id;
mod instrument;
mod local;
#[cfg(feature = "otlp")]
pub mod otlp;
mod panic;
pub mod propagation;
mod queue;
mod record;
mod redact;
mod report;
pub mod resources;
pub mod retention;
mod runtime;
pub mod schema;
mod secret;
pub mod span;
#[cfg(feature = "tracing")]
pub mod tracing;
mod writer;

#[doc(hidden)]
pub mod __private;

/// `use monitor_runtime::prelude::*;` brings the attribute and the
/// extension traits.
pub mod prelude {
    pub use crate::instrument::InCurrentSpan;
    pub use crate::monitor;
}

pub use callsite::{Callsite, SpanKind};
pub use clock::Clock;
pub use config::{
    AlertMetric, AlertOp, AlertRule, CaptureConfig, Config, OnCorrupt, OtlpConfig, Overflow,
    QueueConfig, ResourcesConfig, RetentionConfig, ThresholdText, ENV_CONFIG, ENV_DB, ENV_ENABLED,
    ENV_OTLP_ENDPOINT, ENV_RETENTION_HOURS,
};
pub use error::Error;
pub use health::{FailReason, Health, HealthProbe, WriterState};
pub use instrument::{InCurrentSpan, InSpan};
/// Records every call of a function as a span: sync fns, `async fn`s and
/// fns returning a future (options and semantics in the README and
/// `docs/DESIGN.md`).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::{monitor, Config};
///
/// #[monitor(args, ret)]
/// fn add(a: u32, b: u32) -> u32 {
///     a + b
/// }
///
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("m.db");
/// let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
/// assert_eq!(add(1, 2), 3);
/// guard.flush();
/// let fields: String = rusqlite::Connection::open(&db)?
///     .query_row("SELECT fields FROM spans WHERE name = 'add'", [], |r| r.get(0))?;
/// assert_eq!(fields, r#"{"a":1,"b":2,"return":3}"#);
/// # Ok(()) }
/// ```
pub use monitor_macros::monitor;
pub use record::{FieldValue, Status};
pub use runtime::{init, init_or_disabled, init_with, init_with_or_disabled, Guard, WriterHold};
pub use secret::is_secret_name;
pub use span::{current_span, Entered, EnteredSpan, Span, SpanIds};
pub use writer::SCHEMA_VERSION;
