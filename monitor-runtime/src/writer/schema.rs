//! The file users query: tables, hourly partitions and the views over them.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::Error;

/// `PRAGMA user_version` of the files this build writes.
pub const SCHEMA_VERSION: i64 = 2;

/// Nanoseconds in an hour: partitions are UTC hours.
pub const HOUR_NS: u64 = 3_600_000_000_000;

/// SQLite refuses compound SELECTs of more than 500 terms, in every reader;
/// views over more partitions nest.
const MAX_COMPOUND: usize = 500;

/// How long a write waits for another process's lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A family of hourly tables, `{prefix}YYYYMMDDHH`, with one view over all.
pub(crate) struct Family {
    pub(crate) prefix: &'static str,
    pub(crate) view: &'static str,
    columns_ddl: &'static str,
    /// The view's columns, in order, for the empty view.
    view_columns: &'static [&'static str],
    /// One term of the view; `{table}` is replaced by a partition's name.
    view_term: &'static str,
}

pub(crate) const SPANS: Family = Family {
    prefix: "spans_",
    view: "spans",
    columns_ddl: "span_id INTEGER PRIMARY KEY, parent_id INTEGER, trace_id INTEGER NOT NULL, \
        callsite_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT, \
        start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL, busy_ns INTEGER NOT NULL, items INTEGER, \
        fields TEXT, rss_bytes INTEGER, cpu_ns INTEGER, alloc_bytes INTEGER",
    view_columns: &[
        "span_id", "parent_id", "trace_id", "name", "module", "group_name", "kind", "file", "line",
        "status", "error", "start_ns", "duration_ns", "busy_ns", "items", "thread", "pid", "fields",
        "rss_bytes", "cpu_ns", "alloc_bytes", "thread_id",
    ],
    view_term: "SELECT s.span_id AS span_id, s.parent_id AS parent_id, s.trace_id AS trace_id, \
        c.name AS name, c.module AS module, c.group_name AS group_name, c.kind AS kind, c.file AS file, \
        c.line AS line, \
        CASE s.status WHEN 0 THEN 'ok' WHEN 1 THEN 'error' WHEN 2 THEN 'panic' WHEN 3 THEN 'cancelled' END AS status, \
        s.error AS error, s.start_ns AS start_ns, s.duration_ns AS duration_ns, s.busy_ns AS busy_ns, \
        s.items AS items, t.name AS thread, t.pid AS pid, s.fields AS fields, s.rss_bytes AS rss_bytes, \
        s.cpu_ns AS cpu_ns, s.alloc_bytes AS alloc_bytes, s.thread_id AS thread_id \
        FROM \"{table}\" AS s LEFT JOIN callsites AS c ON c.id = s.callsite_id \
        LEFT JOIN threads AS t ON t.id = s.thread_id",
};

pub(crate) const RESOURCE_SAMPLES: Family = Family {
    prefix: "resource_samples_",
    view: "resource_samples",
    columns_ddl:
        "ts_ns INTEGER NOT NULL, pid INTEGER NOT NULL, cpu_percent REAL, rss_bytes INTEGER, \
        virtual_bytes INTEGER, threads INTEGER, system_memory_used_bytes INTEGER, \
        system_memory_total_bytes INTEGER",
    view_columns: &[
        "ts_ns",
        "pid",
        "cpu_percent",
        "rss_bytes",
        "virtual_bytes",
        "threads",
        "system_memory_used_bytes",
        "system_memory_total_bytes",
    ],
    view_term: "SELECT ts_ns, pid, cpu_percent, rss_bytes, virtual_bytes, threads, \
        system_memory_used_bytes, system_memory_total_bytes FROM \"{table}\"",
};

pub(crate) const FAMILIES: [&Family; 2] = [&SPANS, &RESOURCE_SAMPLES];

impl Family {
    /// The partition table holding the hour that contains `unix_ns`.
    pub(crate) fn table_for(&self, unix_ns: u64) -> String {
        let hour_start = (unix_ns / HOUR_NS * 3600) as i64;
        let t = time::OffsetDateTime::from_unix_timestamp(hour_start)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        format!(
            "{}{:04}{:02}{:02}{:02}",
            self.prefix,
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour()
        )
    }

    /// The partitions in the file, oldest first.
    pub(crate) fn partitions(&self, conn: &Connection) -> rusqlite::Result<Vec<String>> {
        let pattern = format!("{}{}", self.prefix, "[0-9]".repeat(10));
        let mut stmt = conn.prepare_cached(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB ?1 ORDER BY name",
        )?;
        let names = stmt.query_map([pattern], |row| row.get(0))?;
        names.collect()
    }

    /// One partition's rows with the view's columns (for readers that skip
    /// partitions outside a time window).
    pub(crate) fn select_from(&self, table: &str) -> String {
        self.view_term.replace("{table}", table)
    }

    /// The start (Unix ns) of the hour a partition of this family holds.
    pub(crate) fn hour_of(&self, table: &str) -> Option<u64> {
        let digits = table.strip_prefix(self.prefix)?;
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let number = |range: std::ops::Range<usize>| digits[range].parse::<u8>().ok();
        let year: i32 = digits[..4].parse().ok()?;
        let month = time::Month::try_from(number(4..6)?).ok()?;
        let date = time::Date::from_calendar_date(year, month, number(6..8)?).ok()?;
        let at = date.with_hms(number(8..10)?, 0, 0).ok()?.assume_utc();
        u64::try_from(at.unix_timestamp())
            .ok()
            .map(|s| s * 1_000_000_000)
    }

    /// Creates a partition if missing; returns whether it did (the views
    /// then need [`Family::rebuild_views`]).
    pub(crate) fn create_partition(
        &self,
        conn: &Connection,
        table: &str,
    ) -> rusqlite::Result<bool> {
        let exists: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |row| row.get(0),
        )?;
        if !exists {
            conn.execute_batch(&format!("CREATE TABLE \"{table}\" ({})", self.columns_ddl))?;
        }
        Ok(!exists)
    }

    /// Recreates the view over every partition: nested views of at most 500
    /// terms each, since no SQLite reader accepts a longer compound SELECT.
    pub(crate) fn rebuild_views(&self, conn: &Connection) -> rusqlite::Result<()> {
        let inner_pattern = format!("{}_union_*", self.view);
        let old: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'view' AND name GLOB ?1")?
            .query_map([&inner_pattern], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut sql = format!("DROP VIEW IF EXISTS {};\n", quote_ident(self.view));
        for name in old {
            sql += &format!("DROP VIEW IF EXISTS {};\n", quote_ident(&name));
        }
        let partitions = self.partitions(conn)?;
        if partitions.is_empty() {
            let nulls: Vec<String> = self
                .view_columns
                .iter()
                .map(|c| format!("NULL AS {c}"))
                .collect();
            sql += &format!(
                "CREATE VIEW \"{}\" AS SELECT {} LIMIT 0;\n",
                self.view,
                nulls.join(", ")
            );
        } else {
            let mut inner = Vec::new();
            for (k, group) in partitions.chunks(MAX_COMPOUND).enumerate() {
                let name = format!("{}_union_{k}", self.view);
                let terms: Vec<String> = group
                    .iter()
                    .map(|table| self.view_term.replace("{table}", table))
                    .collect();
                sql += &format!(
                    "CREATE VIEW \"{name}\" AS {};\n",
                    terms.join("\nUNION ALL ")
                );
                inner.push(format!("SELECT * FROM \"{name}\""));
            }
            sql += &format!(
                "CREATE VIEW \"{}\" AS {};\n",
                self.view,
                inner.join(" UNION ALL ")
            );
        }
        conn.execute_batch(&sql)
    }
}

/// `name` as an SQL identifier, whatever characters it holds.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Opens the database, creating the schema in a new or empty file. A file
/// that is not SQLite, another program's SQLite file, or one from another
/// schema version is refused before anything in it is changed.
pub(crate) fn open(path: &Path) -> Result<Connection, Error> {
    let fail = |reason: String| Error::Database {
        path: path.to_owned(),
        reason,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn =
        Connection::open_with_flags(path, flags).map_err(|e| fail(format!("cannot open: {e}")))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| fail(format!("cannot set the busy timeout: {e}")))?;
    check_format(&conn).map_err(fail)?;

    let setup = || -> rusqlite::Result<()> {
        // Only takes effect while the file has no tables: lets retention give
        // space back with `PRAGMA incremental_vacuum`.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        Ok(())
    };
    setup().map_err(|e| fail(format!("cannot configure: {e}")))?;
    create_schema(&conn).map_err(|e| fail(format!("cannot create the schema: {e}")))?;
    Ok(conn)
}

/// Whether the file is one of ours at this version (not a new file).
pub(crate) fn check_ours(conn: &Connection) -> Result<(), String> {
    let (version, ours): (i64, bool) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
                    EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'monitor_meta')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| format!("not a readable SQLite database ({e})"))?;
    if !ours {
        return Err("not a monitor database (no monitor_meta table)".into());
    }
    if version != SCHEMA_VERSION {
        return Err(format!(
            "schema version {version}, but this monitor uses version {SCHEMA_VERSION}"
        ));
    }
    Ok(())
}

/// Whether the file is new, or already one of ours at this version.
fn check_format(conn: &Connection) -> Result<(), String> {
    // One statement, so one snapshot: another process may create the schema
    // between two separate reads (then the tables exist but the version
    // read earlier is still 0).
    let (version, tables, ours): (i64, i64, bool) = conn
        .query_row(
            "SELECT (SELECT user_version FROM pragma_user_version), \
                    (SELECT count(*) FROM sqlite_master), \
                    EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'monitor_meta')",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(|e| format!("not a readable SQLite database ({e})"))?;
    match (version, ours) {
        (0, false) if tables == 0 => Ok(()),
        (SCHEMA_VERSION, true) => Ok(()),
        (_, false) => Err(format!(
            "not a monitor database: it is an SQLite file with {tables} other schema objects \
             and no monitor_meta table; point db_path at a new file"
        )),
        (v, true) if v < SCHEMA_VERSION => Err(format!(
            "written by an older monitor (schema version {v}); this build reads version {SCHEMA_VERSION}"
        )),
        (v, true) => Err(format!(
            "written by a newer monitor (schema version {v}); this build reads version {SCHEMA_VERSION}"
        )),
    }
}

fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    // IMMEDIATE: two processes creating one new file take turns.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == 0 {
        tx.execute_batch(
            "CREATE TABLE monitor_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO monitor_meta (key, value) VALUES ('format', 'monitor');
             CREATE TABLE callsites (id INTEGER PRIMARY KEY, name TEXT NOT NULL, module TEXT NOT NULL,
                 group_name TEXT NOT NULL, kind TEXT NOT NULL, file TEXT NOT NULL, line INTEGER NOT NULL);
             CREATE TABLE threads (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, name TEXT NOT NULL);
             CREATE TABLE monitor_stats (ts_ns INTEGER NOT NULL, pid INTEGER NOT NULL,
                 enqueued INTEGER NOT NULL, written INTEGER NOT NULL, dropped INTEGER NOT NULL,
                 errors_written INTEGER NOT NULL, failed INTEGER NOT NULL, queue_depth INTEGER NOT NULL,
                 batches INTEGER NOT NULL, batch_rows_max INTEGER NOT NULL,
                 batch_us_avg INTEGER NOT NULL, batch_us_max INTEGER NOT NULL,
                 sampled_out INTEGER NOT NULL);",
        )?;
        for family in FAMILIES {
            family.rebuild_views(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    tx.commit()
}
