//! Span rows and resource samples of the file, one partition at a time,
//! oldest first: what the encoder turns into OTLP.

use rusqlite::Connection;

use crate::schema;

/// One row of the `spans` view, as the exporter reads it.
///
/// Ids are the file's `INTEGER`s: their 64 bits are the id's, so a remote
/// id above `i64::MAX` is negative here.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SpanRow {
    /// `span_id`.
    pub span_id: i64,
    /// `parent_id`; `None` for a root.
    pub parent_id: Option<i64>,
    /// The high 64 bits of the 128-bit trace id (0 for a trace started in
    /// this process).
    pub trace_hi: i64,
    /// `trace_id`: the low 64 bits of the trace id.
    pub trace_id: i64,
    /// `name`.
    pub name: String,
    /// `module`.
    pub module: String,
    /// `group_name`.
    pub group_name: String,
    /// `kind`: `sync`, `async`, `stream`, `iter`, `tracing`.
    pub kind: String,
    /// `file`.
    pub file: String,
    /// `line`.
    pub line: i64,
    /// `status`: `ok`, `error`, `panic`, `cancelled`.
    pub status: String,
    /// `error`: the error or panic message.
    pub error: Option<String>,
    /// `start_ns`, Unix nanoseconds.
    pub start_ns: i64,
    /// `duration_ns`.
    pub duration_ns: i64,
    /// `busy_ns`.
    pub busy_ns: i64,
    /// `items`.
    pub items: Option<i64>,
    /// `thread`: its name, else its id.
    pub thread: String,
    /// `pid`.
    pub pid: i64,
    /// `fields`: a JSON object.
    pub fields: Option<String>,
    /// `rss_bytes`.
    pub rss_bytes: Option<i64>,
    /// `cpu_ns`.
    pub cpu_ns: Option<i64>,
    /// `alloc_bytes`.
    pub alloc_bytes: Option<i64>,
}

/// One row of the `resource_samples` view.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct SampleRow {
    /// `ts_ns`, Unix nanoseconds.
    pub ts_ns: i64,
    /// `pid`.
    pub pid: i64,
    /// `cpu_percent`: CPU time over wall time since the previous sample, in
    /// percent of one core.
    pub cpu_percent: Option<f64>,
    /// `rss_bytes`.
    pub rss_bytes: Option<i64>,
    /// `virtual_bytes`.
    pub virtual_bytes: Option<i64>,
    /// `threads`.
    pub threads: Option<i64>,
    /// `system_memory_used_bytes`.
    pub system_memory_used_bytes: Option<i64>,
    /// `system_memory_total_bytes`.
    pub system_memory_total_bytes: Option<i64>,
}

/// Which rows to read: those started (sampled) at or after `since_ns`,
/// and, with `trace_id`, only that trace's spans.
///
/// ```
/// use monitor_runtime::otlp::Selection;
///
/// let all = Selection::default();
/// let recent = Selection::since(1_700_000_000_000_000_000);
/// let one = Selection::trace(42);
/// assert_eq!((all.since_ns, recent.trace_id, one.trace_id), (0, None, Some(42)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Selection {
    /// Rows at or after this time (Unix ns); partitions whose hour ended
    /// before it are not read.
    pub since_ns: u64,
    /// Only the spans of this trace (its low 64 bits, the file's
    /// `trace_id`). Resource samples are not filtered by it.
    pub trace_id: Option<i64>,
}

impl Selection {
    /// Every row at or after `since_ns`.
    pub fn since(since_ns: u64) -> Selection {
        Selection {
            since_ns,
            trace_id: None,
        }
    }

    /// The spans of one trace, wherever they are.
    pub fn trace(trace_id: i64) -> Selection {
        Selection {
            since_ns: 0,
            trace_id: Some(trace_id),
        }
    }
}

/// Calls `each` with every span `selection` picks, one partition at a time,
/// oldest partition first; within one, in the partition's order. Only one
/// row is held at a time. An error of `each` stops the read and is returned.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use monitor_runtime::otlp::{read_spans, Selection};
/// use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};
///
/// static WORK: Callsite = Callsite::new("work", module_path!(), "jobs", file!(), line!(), SpanKind::Sync);
/// let dir = tempfile::tempdir()?;
/// let db = dir.path().join("m.db");
/// let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
/// drop(EnteredSpan::new(&WORK));
/// guard.flush();
///
/// let conn = rusqlite::Connection::open(&db)?;
/// let mut names = Vec::new();
/// read_spans(&conn, Selection::default(), |row| {
///     names.push(row.name);
///     Ok::<_, rusqlite::Error>(())
/// })?;
/// assert_eq!(names, ["work"]);
/// # Ok(()) }
/// ```
pub fn read_spans<E: From<rusqlite::Error>>(
    conn: &Connection,
    selection: Selection,
    mut each: impl FnMut(SpanRow) -> Result<(), E>,
) -> Result<(), E> {
    for partition in schema::span_partitions(conn)? {
        if !partition.reaches(selection.since_ns) {
            continue;
        }
        let sql = format!(
            "SELECT {SPAN_COLUMNS} FROM ({}) \
             WHERE start_ns >= ?1 AND (?2 IS NULL OR trace_id = ?2)",
            schema::spans_select(&partition.table)
        );
        let mut stmt = conn.prepare(&sql)?;
        let since = i64::try_from(selection.since_ns).unwrap_or(i64::MAX);
        let mut rows = stmt.query(rusqlite::params![since, selection.trace_id])?;
        while let Some(r) = rows.next()? {
            each(span_row(r)?)?;
        }
    }
    Ok(())
}

/// The columns [`span_row`] reads, in its order.
pub(crate) const SPAN_COLUMNS: &str = "span_id, parent_id, trace_hi, trace_id, name, module, \
    group_name, kind, file, line, status, error, start_ns, duration_ns, busy_ns, items, thread, \
    pid, fields, rss_bytes, cpu_ns, alloc_bytes";

/// A row selected with [`SPAN_COLUMNS`] first.
pub(crate) fn span_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SpanRow> {
    // Text columns come from the callsite and thread joins: a row whose
    // callsite is missing (a damaged file) still exports.
    let text = |i: usize| -> rusqlite::Result<String> {
        Ok(r.get::<_, Option<String>>(i)?.unwrap_or_default())
    };
    Ok(SpanRow {
        span_id: r.get(0)?,
        parent_id: r.get(1)?,
        trace_hi: r.get(2)?,
        trace_id: r.get(3)?,
        name: text(4)?,
        module: text(5)?,
        group_name: text(6)?,
        kind: text(7)?,
        file: text(8)?,
        line: r.get::<_, Option<i64>>(9)?.unwrap_or_default(),
        status: text(10)?,
        error: r.get(11)?,
        start_ns: r.get(12)?,
        duration_ns: r.get(13)?,
        busy_ns: r.get(14)?,
        items: r.get(15)?,
        thread: text(16)?,
        pid: r.get::<_, Option<i64>>(17)?.unwrap_or_default(),
        fields: r.get(18)?,
        rss_bytes: r.get(19)?,
        cpu_ns: r.get(20)?,
        alloc_bytes: r.get(21)?,
    })
}

/// Calls `each` with every resource sample taken at or after
/// `selection.since_ns` (whatever `trace_id` says), oldest partition first.
pub fn read_samples<E: From<rusqlite::Error>>(
    conn: &Connection,
    selection: Selection,
    mut each: impl FnMut(SampleRow) -> Result<(), E>,
) -> Result<(), E> {
    for partition in schema::resource_partitions(conn)? {
        if !partition.reaches(selection.since_ns) {
            continue;
        }
        let sql = format!(
            "SELECT ts_ns, pid, cpu_percent, rss_bytes, virtual_bytes, threads, \
             system_memory_used_bytes, system_memory_total_bytes FROM ({}) \
             WHERE ts_ns >= ?1 ORDER BY ts_ns",
            schema::resource_samples_select(&partition.table)
        );
        let mut stmt = conn.prepare(&sql)?;
        let since = i64::try_from(selection.since_ns).unwrap_or(i64::MAX);
        let mut rows = stmt.query([since])?;
        while let Some(r) = rows.next()? {
            each(SampleRow {
                ts_ns: r.get(0)?,
                pid: r.get(1)?,
                cpu_percent: r.get(2)?,
                rss_bytes: r.get(3)?,
                virtual_bytes: r.get(4)?,
                threads: r.get(5)?,
                system_memory_used_bytes: r.get(6)?,
                system_memory_total_bytes: r.get(7)?,
            })?;
        }
    }
    Ok(())
}
