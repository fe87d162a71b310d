//! The file users query: tables, hourly partitions and the views over them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::error::Error;

/// `PRAGMA user_version` of the files this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// Nanoseconds in an hour: partitions are UTC hours.
pub const HOUR_NS: u64 = 3_600_000_000_000;

/// SQLite refuses compound SELECTs of more than 500 terms, in every reader;
/// views over more partitions nest.
const MAX_COMPOUND: usize = 500;

/// How long a write waits for another process's lock, unless configured.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the database file is opened.
#[derive(Clone, Debug)]
pub(crate) struct FileOptions {
    /// Permission bits of a file this opens first (and of its WAL and spill
    /// files, which follow the database's).
    pub(crate) mode: u32,
    pub(crate) busy_timeout: Duration,
    /// Move a corrupt or foreign file aside and start a new one, instead of
    /// refusing it.
    pub(crate) rotate_corrupt: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            mode: 0o600,
            busy_timeout: BUSY_TIMEOUT,
            rotate_corrupt: false,
        }
    }
}

impl FileOptions {
    pub(crate) fn from_config(config: &crate::config::Config) -> FileOptions {
        FileOptions {
            mode: config.file_mode,
            busy_timeout: Duration::from_millis(config.busy_timeout_ms),
            rotate_corrupt: config.on_corrupt == crate::config::OnCorrupt::Rotate,
        }
    }
}

/// An open database, and what opening it had to do first.
pub(crate) struct Opened {
    pub(crate) conn: Connection,
    /// Where a corrupt file was moved, with why it was refused.
    pub(crate) rotated: Option<(PathBuf, String)>,
}

/// A family of hourly tables, `{prefix}YYYYMMDDHH`, with one view over all.
pub(crate) struct Family {
    pub(crate) prefix: &'static str,
    pub(crate) view: &'static str,
    columns_ddl: &'static str,
    /// The view's columns, in order, for the empty view.
    view_columns: &'static [&'static str],
    /// One term of the view; `{table}` is replaced by a partition's name.
    view_term: &'static str,
    /// Columns indexed in each partition (beyond its primary key).
    indexes: &'static [&'static str],
    /// Columns added to partitions after they were first defined (name,
    /// definition), with their defaults: a partition made by an older
    /// writer gets them when it is next used, or when the file is upgraded.
    added: &'static [(&'static str, &'static str)],
}

pub(crate) const SPANS: Family = Family {
    prefix: "spans_",
    view: "spans",
    columns_ddl: "span_id INTEGER PRIMARY KEY, parent_id INTEGER, trace_id INTEGER NOT NULL, \
        callsite_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT, \
        start_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL, busy_ns INTEGER NOT NULL, items INTEGER, \
        fields TEXT, rss_bytes INTEGER, cpu_ns INTEGER, alloc_bytes INTEGER, \
        trace_hi INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0",
    view_columns: &[
        "span_id", "parent_id", "trace_id", "name", "module", "group_name", "kind", "file", "line",
        "status", "error", "start_ns", "duration_ns", "busy_ns", "items", "thread", "pid", "fields",
        "rss_bytes", "cpu_ns", "alloc_bytes", "thread_id", "trace_hi", "seq",
    ],
    view_term: "SELECT s.span_id AS span_id, s.parent_id AS parent_id, s.trace_id AS trace_id, \
        c.name AS name, c.module AS module, c.group_name AS group_name, c.kind AS kind, c.file AS file, \
        c.line AS line, \
        CASE s.status WHEN 0 THEN 'ok' WHEN 1 THEN 'error' WHEN 2 THEN 'panic' WHEN 3 THEN 'cancelled' END AS status, \
        s.error AS error, s.start_ns AS start_ns, s.duration_ns AS duration_ns, s.busy_ns AS busy_ns, \
        s.items AS items, t.name AS thread, t.pid AS pid, s.fields AS fields, s.rss_bytes AS rss_bytes, \
        s.cpu_ns AS cpu_ns, s.alloc_bytes AS alloc_bytes, s.thread_id AS thread_id, \
        s.trace_hi AS trace_hi, s.seq AS seq \
        FROM \"{table}\" AS s LEFT JOIN callsites AS c ON c.id = s.callsite_id \
        LEFT JOIN threads AS t ON t.id = s.thread_id",
    // Readers of what was committed since a point (the OTLP sender) seek
    // by `seq`.
    indexes: &["seq"],
    added: &[
        ("trace_hi", "INTEGER NOT NULL DEFAULT 0"),
        ("seq", "INTEGER NOT NULL DEFAULT 0"),
    ],
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
    indexes: &[],
    added: &[],
};

/// Events of `tracing` (`MonitorLayer::events`), with the span they
/// happened in.
pub(crate) const EVENTS: Family = Family {
    prefix: "events_",
    view: "events",
    columns_ddl: "span_id INTEGER, trace_id INTEGER, callsite_id INTEGER NOT NULL, \
        thread_id INTEGER NOT NULL, ts_ns INTEGER NOT NULL, level TEXT NOT NULL, message TEXT, \
        fields TEXT",
    view_columns: &[
        "span_id", "trace_id", "ts_ns", "level", "target", "message", "fields", "file", "line",
        "thread", "pid",
    ],
    view_term: "SELECT e.span_id AS span_id, e.trace_id AS trace_id, e.ts_ns AS ts_ns, \
        e.level AS level, c.module AS target, e.message AS message, e.fields AS fields, \
        c.file AS file, c.line AS line, t.name AS thread, t.pid AS pid \
        FROM \"{table}\" AS e LEFT JOIN callsites AS c ON c.id = e.callsite_id \
        LEFT JOIN threads AS t ON t.id = e.thread_id",
    // Readers look events up by their span and trace (`monitor tree`).
    indexes: &["span_id", "trace_id"],
    added: &[],
};

pub(crate) const FAMILIES: [&Family; 3] = [&SPANS, &RESOURCE_SAMPLES, &EVENTS];

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
            self.create_indexes(conn, table)?;
            return Ok(true);
        }
        self.complete_partition(conn, table)
    }

    fn create_indexes(&self, conn: &Connection, table: &str) -> rusqlite::Result<()> {
        for column in self.indexes {
            conn.execute_batch(&format!(
                "CREATE INDEX IF NOT EXISTS \"{table}_{column}\" ON \"{table}\" ({column})"
            ))?;
        }
        Ok(())
    }

    /// Adds the columns (and their indexes) a partition made by an older
    /// writer lacks; returns whether it did (the views then need
    /// [`Family::rebuild_views`]). Adding a column with a default rewrites
    /// no row; an index reads the partition once.
    pub(crate) fn complete_partition(
        &self,
        conn: &Connection,
        table: &str,
    ) -> rusqlite::Result<bool> {
        if self.added.is_empty() {
            return Ok(false);
        }
        let mut changed = false;
        for (column, definition) in self.added {
            let present: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
                [table, column],
                |row| row.get(0),
            )?;
            if !present {
                conn.execute_batch(&format!(
                    "ALTER TABLE {} ADD COLUMN {column} {definition}",
                    quote_ident(table)
                ))?;
                changed = true;
            }
        }
        if changed {
            self.create_indexes(conn, table)?;
        }
        Ok(changed)
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
/// that is not SQLite, is truncated, is another program's SQLite file, or
/// is from another schema version is refused before anything in it is
/// changed; with `rotate_corrupt`, all but the last are moved aside instead
/// (a newer monitor's file is never touched).
pub(crate) fn open(path: &Path, options: &FileOptions) -> Result<Opened, Error> {
    let fail = |reason: String| Error::Database {
        path: path.to_owned(),
        reason,
    };
    match open_checked(path, options) {
        Ok(conn) => Ok(Opened {
            conn,
            rotated: None,
        }),
        Err(Refusal::Corrupt(reason)) if options.rotate_corrupt => {
            let aside = rotate(path).map_err(|e| {
                fail(format!(
                    "{reason}; moving it aside (on_corrupt = \"rotate\") failed: {e}"
                ))
            })?;
            let conn = open_checked(path, options).map_err(|r| fail(r.into_reason()))?;
            Ok(Opened {
                conn,
                rotated: Some((aside, reason)),
            })
        }
        Err(refusal) => Err(fail(refusal.into_reason())),
    }
}

/// Why a file was not opened.
enum Refusal {
    /// Not a monitor file at all, or a damaged one: `on_corrupt` applies.
    Corrupt(String),
    /// Anything else (permissions, another schema version).
    Other(String),
}

impl Refusal {
    fn into_reason(self) -> String {
        match self {
            Refusal::Corrupt(reason) => {
                format!(
                    "{reason}; set on_corrupt = \"rotate\" to move it aside and start a new file"
                )
            }
            Refusal::Other(reason) => reason,
        }
    }
}

fn open_checked(path: &Path, options: &FileOptions) -> Result<Connection, Refusal> {
    check_kind(path).map_err(Refusal::Other)?;
    create_with_mode(path, options.mode)
        .map_err(|e| Refusal::Other(format!("cannot create the file: {e}")))?;
    check_length(path).map_err(Refusal::Corrupt)?;
    // Judged read-only first: closing a read-write connection would
    // checkpoint and remove another program's leftover WAL.
    {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)
            .map_err(|e| Refusal::Other(format!("cannot open: {e}")))?;
        check_format(&conn)?;
    }
    // Ours (or new): a file others may write loses those bits. A refused
    // file is left untouched, its mode too.
    #[cfg(unix)]
    for file in [
        path.to_owned(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        narrow_mode(&file).map_err(|e| {
            Refusal::Other(format!("cannot narrow the mode of {}: {e}", file.display()))
        })?;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| Refusal::Other(format!("cannot open: {e}")))?;
    super::busy::install(&conn, options.busy_timeout)
        .map_err(|e| Refusal::Other(format!("cannot set the busy handler: {e}")))?;
    // Again on this connection: another process may have made the file
    // meanwhile.
    check_format(&conn)?;

    let setup = || -> rusqlite::Result<()> {
        // Both only take effect while the file has no tables. 16 KiB pages
        // write 1.5× the rows per second of 4 KiB ones (benches/writer.rs:
        // 207 ms against 318 ms per 200k); 64 KiB gain 8% more but make
        // every small commit write four times as much WAL. Incremental
        // auto-vacuum lets retention give space back.
        conn.execute_batch("PRAGMA page_size = 16384; PRAGMA auto_vacuum = INCREMENTAL")?;
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        Ok(())
    };
    setup().map_err(|e| classify(format!("cannot configure: {e}"), &e))?;
    create_schema(&conn).map_err(|e| classify(format!("cannot create the schema: {e}"), &e))?;
    Ok(conn)
}

/// What is at `path`, when it cannot hold a database file: a directory, or
/// a link to nothing. (SQLite would report a disk I/O error, and a link to
/// nothing would be taken for a damaged file.)
fn check_kind(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_symlink() && !path.exists() {
        let target =
            std::fs::read_link(path).map_or_else(|_| "?".into(), |t| t.display().to_string());
        return Err(format!(
            "a symbolic link to {target}, which does not exist; expected a database file or no file"
        ));
    }
    if path.is_dir() {
        return Err("a directory; expected a database file or no file".into());
    }
    Ok(())
}

/// A damaged file shows as `SQLITE_CORRUPT` or `SQLITE_NOTADB`.
fn classify(reason: String, e: &rusqlite::Error) -> Refusal {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            Refusal::Corrupt(reason)
        }
        _ => Refusal::Other(reason),
    }
}

/// Creates a missing file with `mode` exactly (not narrowed by the umask),
/// so that SQLite, which gives the WAL the database's mode, starts from it.
fn create_with_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    match options.open(path) {
        Ok(file) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            drop(file);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `path` with `suffix` added to its name (`monitor.db-wal`).
#[cfg(unix)]
fn sibling(path: &Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Takes group and other write bits off an existing file (a link is left
/// alone): spans and secrets written into a file others may rewrite could
/// be forged or read back changed.
#[cfg(unix)]
fn narrow_mode(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_file() || mode & 0o022 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & !0o022))?;
    eprintln!(
        "monitor: {} could be written by others (mode {:#o}); it is now {:#o}",
        path.display(),
        mode & 0o777,
        mode & 0o755
    );
    Ok(())
}

/// A file shorter than the page count its header gives was truncated: SQLite
/// would only notice when it reads a missing page. Not checked while a WAL
/// is beside it: a checkpoint cut short writes page 1 before the pages
/// that extend the file, and the WAL still holds them.
fn check_length(path: &Path) -> Result<(), String> {
    use std::io::Read;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let mut header = [0u8; 100];
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read: {e}"))?
        .len();
    if len < 100
        || file.read_exact(&mut header).is_err()
        || !header.starts_with(b"SQLite format 3\0")
    {
        return Ok(()); // a new file, or not SQLite at all (`check_format` says so)
    }
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    // The count is only valid when it was written by the same change as the
    // change counter (offset 92 matches offset 24).
    let valid = header[24..28] == header[92..96];
    if valid && len < pages * page_size {
        return Err(format!(
            "the file is truncated: its header says {pages} pages of {page_size} bytes, but it holds {len} bytes"
        ));
    }
    Ok(())
}

/// Moves a refused file (and its WAL and shared-memory files) to
/// `<name>.corrupt-<unix seconds>`; returns the new path of the database.
fn rotate(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{secs}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    for extra in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(extra);
        let mut to = aside.as_os_str().to_owned();
        to.push(extra);
        match std::fs::rename(&from, &to) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(aside)
}

/// Adds this process to `processes`: OTLP export names a span's service
/// and host from the row of its `pid`. Best effort: a file that refuses
/// the row still takes spans, and readers fall back on defaults.
pub(crate) fn register_process(conn: &Connection) {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|path| Some(path.file_name()?.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".to_owned());
    let host = sysinfo::System::host_name().unwrap_or_default();
    let now_ns = crate::clock::system_unix_ns() as i64;
    let _ = conn.execute(
        "INSERT OR IGNORE INTO processes (pid, start_ns, exe, host) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![std::process::id(), now_ns, exe, host],
    );
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

/// Whether the file is new, or already one of ours at this version (or at
/// one `create_schema` migrates).
fn check_format(conn: &Connection) -> Result<(), Refusal> {
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
        .map_err(|e| classify(format!("not a readable SQLite database ({e})"), &e))?;
    match (version, ours) {
        (0, false) if tables == 0 => Ok(()),
        (MIGRATES_FROM..=SCHEMA_VERSION, true) => Ok(()),
        (_, false) => Err(Refusal::Corrupt(format!(
            "not a monitor database: it is an SQLite file with {tables} other schema objects \
             and no monitor_meta table; point db_path at a new file"
        ))),
        (v, true) if v < SCHEMA_VERSION => Err(Refusal::Other(format!(
            "written by an older monitor (schema version {v}); this build reads versions {MIGRATES_FROM} to {SCHEMA_VERSION}"
        ))),
        (v, true) => Err(Refusal::Other(format!(
            "written by a newer monitor (schema version {v}); this build reads version {SCHEMA_VERSION}"
        ))),
    }
}

/// The oldest schema version `create_schema` upgrades in place.
pub const MIGRATES_FROM: i64 = 2;

/// What happened to the writer: spills, replays, recreated files, panics.
const EVENTS_DDL: &str =
    "CREATE TABLE monitor_events (ts_ns INTEGER NOT NULL, pid INTEGER NOT NULL, \
     kind TEXT NOT NULL, message TEXT NOT NULL)";

/// Tables of version 4: the commit sequence behind each span row's `seq`
/// (one counter for every process writing the file: their transactions
/// take turns, so it only grows), the processes that wrote the file, and
/// the live OTLP export's cursor (how far it has sent, and which process
/// sends) and counters.
const V4_DDL: &str =
    "CREATE TABLE monitor_seq (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL);
     INSERT INTO monitor_seq (id, seq) VALUES (1, 0);
     CREATE TABLE processes (pid INTEGER NOT NULL, start_ns INTEGER NOT NULL, exe TEXT NOT NULL,
         host TEXT NOT NULL, PRIMARY KEY (pid, start_ns));
     CREATE TABLE export_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL,
         span_id INTEGER NOT NULL, owner INTEGER, owner_pid INTEGER,
         lease_until_ns INTEGER NOT NULL DEFAULT 0,
         updated_ns INTEGER NOT NULL);
     CREATE TABLE export_stats (ts_ns INTEGER NOT NULL, pid INTEGER NOT NULL, sent INTEGER NOT NULL,
         refused INTEGER NOT NULL, failed INTEGER NOT NULL, retries INTEGER NOT NULL,
         lost INTEGER NOT NULL, pending INTEGER NOT NULL);";

fn create_schema(conn: &Connection) -> rusqlite::Result<()> {
    // IMMEDIATE: two processes creating one new file take turns.
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version == 2 || version == 3 {
        if version == 2 {
            // Version 3 added the spill counters and the events table.
            tx.execute_batch(&format!(
                "ALTER TABLE monitor_stats ADD COLUMN queue_depth_max INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE monitor_stats ADD COLUMN spilled INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE monitor_stats ADD COLUMN replayed INTEGER NOT NULL DEFAULT 0;
             {EVENTS_DDL};"
            ))?;
        }
        // Version 4: 128-bit trace ids (`trace_hi`), the commit sequence
        // (`seq`, indexed) and `processes`. Adding a column with a default
        // rewrites no row; indexing `seq` reads each old partition once.
        for table in SPANS.partitions(&tx)? {
            SPANS.complete_partition(&tx, &table)?;
        }
        tx.execute_batch(&format!(
            "{V4_DDL}
             PRAGMA user_version = {SCHEMA_VERSION};"
        ))?;
        SPANS.rebuild_views(&tx)?;
    }
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
                 sampled_out INTEGER NOT NULL, queue_depth_max INTEGER NOT NULL DEFAULT 0,
                 spilled INTEGER NOT NULL DEFAULT 0, replayed INTEGER NOT NULL DEFAULT 0);",
        )?;
        tx.execute_batch(EVENTS_DDL)?;
        tx.execute_batch(V4_DDL)?;
        for family in FAMILIES {
            family.rebuild_views(&tx)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
    }
    // A family added since the file was made (`events`) gets its view:
    // readers query every view whether or not rows were written.
    for family in FAMILIES {
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'view' AND name = ?1)",
            [family.view],
            |row| row.get(0),
        )?;
        if !exists {
            family.rebuild_views(&tx)?;
        }
    }
    tx.commit()
}
