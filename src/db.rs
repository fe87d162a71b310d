//! Opening the file read-only, checking that it is a monitor database, and
//! reading spans from the partitions a time window needs.

use std::path::{Path, PathBuf};

use monitor_runtime::schema::{self, Partition};
use monitor_runtime::Config;
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row};

use crate::Failure;

/// `--db`, else `db_path` of `--config`, else of `monitor.toml` / the
/// `MONITOR_*` environment, else `monitor.db`.
pub fn resolve_path(db: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, Failure> {
    match db {
        Some(db) => Ok(db.to_owned()),
        None => Ok(load_config(config)
            .map_err(|Failure(e)| Failure(format!("{e} (or pass --db)")))?
            .db_path),
    }
}

/// `--config PATH`, else `monitor.toml` and the `MONITOR_*` environment,
/// as `init` reads them.
pub fn load_config(config: Option<&Path>) -> Result<Config, Failure> {
    let config = match config {
        Some(path) => Config::from_file(path),
        None => Config::load(),
    };
    Ok(config?)
}

/// An open monitor database.
pub struct Db {
    pub conn: Connection,
    pub path: PathBuf,
}

/// One row of the `spans` view.
#[derive(Clone, Debug)]
pub struct SpanRow {
    pub span_id: i64,
    pub parent_id: Option<i64>,
    pub trace_id: i64,
    pub name: String,
    pub module: String,
    pub group_name: String,
    pub kind: String,
    pub file: String,
    pub line: i64,
    pub status: String,
    pub error: Option<String>,
    pub start_ns: i64,
    pub duration_ns: i64,
    pub busy_ns: i64,
    pub items: Option<i64>,
    pub thread: String,
    pub pid: i64,
    pub fields: Option<String>,
    pub rss_bytes: Option<i64>,
    pub cpu_ns: Option<i64>,
    pub alloc_bytes: Option<i64>,
    /// The `threads` row's id: thread names repeat (tokio's workers).
    pub thread_id: i64,
    /// The trace id's high 64 bits: 0 unless the trace came from another
    /// process with a 128-bit id (W3C trace context).
    pub trace_hi: i64,
}

/// The view's columns, in `SpanRow`'s order.
pub const SPAN_COLUMNS: &str = "span_id, parent_id, trace_id, name, module, group_name, kind, \
    file, line, status, error, start_ns, duration_ns, busy_ns, items, thread, pid, fields, \
    rss_bytes, cpu_ns, alloc_bytes, thread_id, trace_hi";

impl SpanRow {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<SpanRow> {
        Ok(SpanRow {
            span_id: r.get(0)?,
            parent_id: r.get(1)?,
            trace_id: r.get(2)?,
            name: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            module: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            group_name: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            kind: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
            file: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            line: r.get::<_, Option<i64>>(8)?.unwrap_or_default(),
            status: r.get(9)?,
            error: r.get(10)?,
            start_ns: r.get(11)?,
            duration_ns: r.get(12)?,
            busy_ns: r.get(13)?,
            items: r.get(14)?,
            thread: r.get::<_, Option<String>>(15)?.unwrap_or_default(),
            pid: r.get::<_, Option<i64>>(16)?.unwrap_or_default(),
            fields: r.get(17)?,
            rss_bytes: r.get(18)?,
            cpu_ns: r.get(19)?,
            alloc_bytes: r.get(20)?,
            thread_id: r.get(21)?,
            trace_hi: r.get(22)?,
        })
    }

    pub fn end_ns(&self) -> i64 {
        self.start_ns + self.duration_ns
    }
}

impl Db {
    /// Opens `path` read-only; a missing file, a file that is not SQLite
    /// and a SQLite file that monitor did not write are errors.
    pub fn open(path: &Path) -> Result<Db, Failure> {
        let shown = path.display();
        if !path.exists() {
            return Err(Failure(format!(
                "{shown}: no such file (run a monitored program first, or pass --db)"
            )));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("{shown}: cannot open: {e}"))?;
        let unreadable = |e: rusqlite::Error| {
            let e = e.to_string();
            if e.contains("readonly") || e.contains("unable to open") {
                // WAL readers need the -shm file beside the database.
                format!(
                    "{shown}: cannot read it: its directory is not writable, and SQLite's WAL \
                     mode needs a `-shm` file beside it (copy the file somewhere writable) ({e})"
                )
            } else {
                format!("{shown}: not a readable SQLite database ({e})")
            }
        };
        // A writer holds the file for a moment per batch.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| format!("{shown}: {e}"))?;
        let (is_monitor, version): (bool, i64) = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'monitor_meta'),
                        (SELECT user_version FROM pragma_user_version)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(unreadable)?;
        if !is_monitor {
            return Err(Failure(format!(
                "{shown}: not a monitor database (no monitor_meta table)"
            )));
        }
        if (schema::MIGRATES_FROM..schema::SCHEMA_VERSION).contains(&version) {
            // An older file is upgraded in place, as `init` would: readers
            // and writers then agree on one shape.
            drop(conn);
            schema::upgrade(path).map_err(|e| {
                format!(
                    "{shown}: schema version {version} needs an upgrade to {}, which failed: {e}",
                    schema::SCHEMA_VERSION
                )
            })?;
            return Db::open(path);
        }
        if version != schema::SCHEMA_VERSION {
            return Err(Failure(format!(
                "{shown}: schema version {version}, but this monitor reads version {}",
                schema::SCHEMA_VERSION
            )));
        }
        // One snapshot for the whole command: retention dropping a
        // partition between two reads cannot fail it midway.
        conn.execute_batch("BEGIN")
            .map_err(|e| format!("{shown}: {e}"))?;
        Ok(Db {
            conn,
            path: path.to_owned(),
        })
    }

    /// Ends the snapshot and starts a new one, to see what was written since.
    pub fn refresh(&self) -> Result<(), Failure> {
        self.conn
            .execute_batch("COMMIT; BEGIN")
            .map_err(|e| self.fail(e))
    }

    /// An SQL error, with the file it came from.
    pub fn fail(&self, e: rusqlite::Error) -> Failure {
        Failure(format!("{}: {e}", self.path.display()))
    }

    /// The spans partitions that hold spans started at or after `since`.
    pub fn span_partitions(&self, since: Option<u64>) -> Result<Vec<Partition>, Failure> {
        let all = schema::span_partitions(&self.conn).map_err(|e| self.fail(e))?;
        Ok(all
            .into_iter()
            .filter(|p| since.is_none_or(|s| p.reaches(s)))
            .collect())
    }

    /// The spans started at or after `since` that match `filter` (an SQL
    /// condition on the view's columns with `?` parameters `params`), oldest
    /// partition first.
    pub fn spans(
        &self,
        since: Option<u64>,
        filter: &str,
        params: &[Value],
    ) -> Result<Vec<SpanRow>, Failure> {
        let mut rows = Vec::new();
        self.for_each_span(since, filter, params, "", |row| {
            rows.push(row);
            Ok(())
        })?;
        Ok(rows)
    }

    /// Calls `each` for every span started at or after `since` (partitions
    /// outside the window are not read) that matches `filter`, one partition
    /// at a time, oldest first; `tail` (`ORDER BY .. LIMIT ..`) applies
    /// within each partition. Nothing is held in memory but one row.
    pub fn for_each_span(
        &self,
        since: Option<u64>,
        filter: &str,
        params: &[Value],
        tail: &str,
        mut each: impl FnMut(SpanRow) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        for partition in self.span_partitions(since)? {
            let sql = format!(
                "SELECT {SPAN_COLUMNS} FROM ({}) WHERE start_ns >= ? AND ({filter}) {tail}",
                schema::spans_select(&partition.table)
            );
            let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
            let mut values = vec![Value::Integer(since.unwrap_or(0) as i64)];
            values.extend_from_slice(params);
            let mut rows = stmt
                .query(rusqlite::params_from_iter(values))
                .map_err(|e| self.fail(e))?;
            while let Some(row) = rows.next().map_err(|e| self.fail(e))? {
                each(SpanRow::from_row(row).map_err(|e| self.fail(e))?)?;
            }
        }
        Ok(())
    }
}

/// One row of the `events` view: an event of `tracing`
/// (`MonitorLayer::events`).
#[derive(Clone, Debug)]
pub struct EventRow {
    pub span_id: Option<i64>,
    pub ts_ns: i64,
    pub level: String,
    pub target: Option<String>,
    pub message: Option<String>,
    pub fields: Option<String>,
}

impl EventRow {
    /// The row as a JSON object; `fields` is embedded as JSON, not text.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "span_id": self.span_id,
            "ts_ns": self.ts_ns,
            "level": self.level,
            "target": self.target,
            "message": self.message,
            "fields": self.fields.as_deref().map(embedded_json),
        })
    }

    /// `LEVEL message {fields}`, for people (control characters escaped).
    pub fn describe(&self) -> String {
        let mut text = self.level.clone();
        for part in [&self.message, &self.fields].into_iter().flatten() {
            text.push(' ');
            text.push_str(part);
        }
        crate::render::text(&text)
    }
}

/// Stored JSON text as JSON, or as a string if it is not JSON.
fn embedded_json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::from(text))
}

impl Db {
    /// The events of `tracing` matching `filter` (an SQL condition on the
    /// `events` view's columns with `?` parameters `params`), oldest first;
    /// none in a file written before the view existed.
    pub fn events(&self, filter: &str, params: &[Value]) -> Result<Vec<EventRow>, Failure> {
        let has_view: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = 'events')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(e))?;
        if !has_view {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT span_id, ts_ns, level, target, message, fields FROM events \
             WHERE {filter} ORDER BY ts_ns"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.fail(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok(EventRow {
                    span_id: r.get(0)?,
                    ts_ns: r.get(1)?,
                    level: r.get(2)?,
                    target: r.get(3)?,
                    message: r.get(4)?,
                    fields: r.get(5)?,
                })
            })
            .map_err(|e| self.fail(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(e))
    }

    /// The events of the spans `span_ids`, by span.
    pub fn events_of(
        &self,
        span_ids: impl IntoIterator<Item = i64>,
    ) -> Result<std::collections::HashMap<i64, Vec<EventRow>>, Failure> {
        let ids: Vec<i64> = span_ids.into_iter().collect();
        let mut by_span: std::collections::HashMap<i64, Vec<EventRow>> = Default::default();
        // Within SQLite's limit on parameters per statement.
        for chunk in ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk.iter().map(|&id| Value::Integer(id)).collect();
            for event in self.events(&format!("span_id IN ({marks})"), &params)? {
                if let Some(span_id) = event.span_id {
                    by_span.entry(span_id).or_default().push(event);
                }
            }
        }
        Ok(by_span)
    }
}

impl SpanRow {
    /// The row as a JSON object; `fields` is embedded as JSON, not text.
    pub fn to_json(&self) -> serde_json::Value {
        let fields = self
            .fields
            .as_deref()
            .map(|f| serde_json::from_str(f).unwrap_or_else(|_| serde_json::Value::from(f)));
        serde_json::json!({
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "trace_id": self.trace_id,
            "name": self.name,
            "module": self.module,
            "group_name": self.group_name,
            "kind": self.kind,
            "file": self.file,
            "line": self.line,
            "status": self.status,
            "error": self.error,
            "start_ns": self.start_ns,
            "duration_ns": self.duration_ns,
            "busy_ns": self.busy_ns,
            "items": self.items,
            "thread": self.thread,
            "pid": self.pid,
            "fields": fields,
            "rss_bytes": self.rss_bytes,
            "cpu_ns": self.cpu_ns,
            "alloc_bytes": self.alloc_bytes,
            "trace_hi": self.trace_hi,
        })
    }

    /// The 128-bit trace id as W3C trace context and OTLP write it: 32
    /// lowercase hex digits.
    pub fn trace_hex(&self) -> String {
        format!("{:016x}{:016x}", self.trace_hi as u64, self.trace_id as u64)
    }
}
