//! The file as readers see it: its hourly partitions, and the SQL that reads
//! one partition with the columns of the `spans` or `resource_samples` view.
//!
//! The views cover every partition. A reader that asks about a time window
//! (the `monitor` CLI) reads only the partitions whose hour overlaps it.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use monitor_runtime::{schema, Callsite, Config, EnteredSpan, SpanKind};
//!
//! static WORK: Callsite = Callsite::new("work", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
//! let dir = tempfile::tempdir()?;
//! let db = dir.path().join("m.db");
//! let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
//! drop(EnteredSpan::new(&WORK));
//! guard.flush();
//!
//! let conn = rusqlite::Connection::open(&db)?;
//! let partitions = schema::span_partitions(&conn)?;
//! assert_eq!(partitions.len(), 1);
//! let sql = format!("SELECT name FROM ({})", schema::spans_select(&partitions[0].table));
//! let name: String = conn.query_row(&sql, [], |r| r.get(0))?;
//! assert_eq!(name, "work");
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::writer::schema::{Family, EVENTS, RESOURCE_SAMPLES, SPANS};
pub use crate::writer::schema::{HOUR_NS, MIGRATES_FROM, SCHEMA_VERSION};

/// Upgrades a file written by an older monitor (schema version
/// [`MIGRATES_FROM`] or later) to [`SCHEMA_VERSION`] in place, as `init`
/// does when it opens one; a file already current is left as it is.
/// Readers call it before they read an older file.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("m.db");
/// monitor_runtime::schema::upgrade(&db)?; // a new file gets the current schema
/// let conn = rusqlite::Connection::open(&db)?;
/// let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
/// assert_eq!(version, monitor_runtime::schema::SCHEMA_VERSION);
/// # Ok(()) }
/// ```
pub fn upgrade(path: &Path) -> Result<(), crate::Error> {
    crate::writer::schema::open(path, &Default::default()).map(drop)
}

/// The spill file of the database at `db`: JSON lines, one record each,
/// that the writer could not store and will replay into the database once
/// it takes writes again.
///
/// ```
/// use std::path::Path;
/// assert_eq!(
///     monitor_runtime::schema::spill_path(Path::new("/var/lib/app/monitor.db")),
///     Path::new("/var/lib/app/monitor.db-spill.jsonl"),
/// );
/// ```
pub fn spill_path(db: &Path) -> PathBuf {
    let mut path = db.as_os_str().to_owned();
    path.push("-spill.jsonl");
    path.into()
}

/// One hourly table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its name, `spans_YYYYMMDDHH`, `resource_samples_YYYYMMDDHH` or
    /// `events_YYYYMMDDHH`.
    pub table: String,
    /// The start of its UTC hour, in Unix nanoseconds.
    pub hour_start_ns: u64,
}

impl Partition {
    /// Whether any of its hour is at or after `since_ns`.
    pub fn reaches(&self, since_ns: u64) -> bool {
        self.hour_start_ns + HOUR_NS > since_ns
    }
}

fn partitions(family: &Family, conn: &Connection) -> rusqlite::Result<Vec<Partition>> {
    Ok(family
        .partitions(conn)?
        .into_iter()
        .filter_map(|table| {
            let hour_start_ns = family.hour_of(&table)?;
            Some(Partition {
                table,
                hour_start_ns,
            })
        })
        .collect())
}

/// The `spans_*` partitions, oldest first.
pub fn span_partitions(conn: &Connection) -> rusqlite::Result<Vec<Partition>> {
    partitions(&SPANS, conn)
}

/// The `resource_samples_*` partitions, oldest first.
pub fn resource_partitions(conn: &Connection) -> rusqlite::Result<Vec<Partition>> {
    partitions(&RESOURCE_SAMPLES, conn)
}

/// The `events_*` partitions (events of `tracing`), oldest first.
pub fn event_partitions(conn: &Connection) -> rusqlite::Result<Vec<Partition>> {
    partitions(&EVENTS, conn)
}

/// A `SELECT` of one spans partition with the `spans` view's columns.
pub fn spans_select(table: &str) -> String {
    SPANS.select_from(table)
}

/// A `SELECT` of one resource partition with the `resource_samples` view's
/// columns.
pub fn resource_samples_select(table: &str) -> String {
    RESOURCE_SAMPLES.select_from(table)
}
