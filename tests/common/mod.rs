//! Helpers for the end-to-end tests: one runtime per process, spans read
//! back from the file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use monitor_runtime::{Config, Guard};
use rusqlite::Connection;

pub mod otlp;
pub mod requests;
pub mod server;

/// A tokio runtime with two workers, one per core of the CI machine.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A running runtime writing to a fresh file; tests of one binary take turns.
pub struct Session {
    pub guard: Guard,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

pub fn session() -> Session {
    session_with(|c| c)
}

pub fn session_with(configure: impl FnOnce(Config) -> Config) -> Session {
    static SERIAL: Mutex<()> = Mutex::new(());
    let serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("monitor.db");
    let guard =
        monitor_runtime::init_with(configure(Config::default().db_path(&path))).expect("init");
    Session {
        guard,
        path,
        _dir: dir,
        _serial: serial,
    }
}

/// [`session_with`] without the resource sampler: its samples would make
/// commits and stats the tests do not ask for.
pub fn quiet_session(configure: impl FnOnce(Config) -> Config) -> Session {
    session_with(|c| configure(c.resource_interval(std::time::Duration::ZERO)))
}

/// A child process, killed with SIGKILL and reaped when this drops, also
/// when the test fails first: a writer or a server started by a test must
/// not outlive it.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A connection holding the file's write lock, as another process in the
/// middle of a write would: the writer spills until it commits or drops.
pub fn lock_database(path: &Path) -> Connection {
    let holder = Connection::open(path).expect("open");
    holder
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    holder
}

/// One row of the `spans` view.
#[derive(Debug, Clone)]
pub struct Row {
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
    pub duration_ns: i64,
    pub busy_ns: i64,
    pub items: Option<i64>,
    pub thread: String,
    pub fields: Option<serde_json::Value>,
    /// The trace id's high 64 bits (0 for a trace started locally).
    pub trace_hi: i64,
    pub pid: i64,
}

impl Session {
    /// Flushes, then reads every span, oldest first.
    pub fn spans(&self) -> Vec<Row> {
        self.guard.flush();
        read_spans(&self.path)
    }

    /// The spans named `name`; panics unless there is exactly `n`.
    pub fn named(&self, name: &str, n: usize) -> Vec<Row> {
        let rows: Vec<Row> = self
            .spans()
            .into_iter()
            .filter(|r| r.name == name)
            .collect();
        assert_eq!(rows.len(), n, "spans named {name}: {rows:#?}");
        rows
    }

    /// The one span named `name`.
    pub fn one(&self, name: &str) -> Row {
        self.named(name, 1).remove(0)
    }
}

/// The names of the spans in the file, in no order.
pub fn span_names(path: &Path) -> Vec<String> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn.prepare("SELECT name FROM spans").expect("prepare");
    let names = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("names");
    names
}

/// `sum(column)` of `monitor_stats` (0 without rows).
pub fn stats_sum(path: &Path, column: &str) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row(
            &format!("SELECT coalesce(sum({column}), 0) FROM monitor_stats"),
            [],
            |r| r.get(0),
        )
        .expect(column)
}

pub fn read_spans(path: &Path) -> Vec<Row> {
    let conn = Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare(
            "SELECT span_id, parent_id, trace_id, name, module, group_name, kind, file, line, status, error, \
             duration_ns, busy_ns, items, thread, fields, trace_hi, pid FROM spans ORDER BY start_ns, span_id",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        Ok(Row {
            span_id: r.get(0)?,
            parent_id: r.get(1)?,
            trace_id: r.get(2)?,
            name: r.get(3)?,
            module: r.get(4)?,
            group_name: r.get(5)?,
            kind: r.get(6)?,
            file: r.get(7)?,
            line: r.get(8)?,
            status: r.get(9)?,
            error: r.get(10)?,
            duration_ns: r.get(11)?,
            busy_ns: r.get(12)?,
            items: r.get(13)?,
            thread: r.get(14)?,
            fields: r
                .get::<_, Option<String>>(15)?
                .map(|f| serde_json::from_str(&f).expect("fields is JSON")),
            trace_hi: r.get(16)?,
            pid: r.get(17)?,
        })
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// Depth of `row` in its tree (a root is 0).
pub fn depth(rows: &[Row], row: &Row) -> usize {
    let mut depth = 0;
    let mut parent = row.parent_id;
    while let Some(id) = parent {
        depth += 1;
        parent = rows
            .iter()
            .find(|r| r.span_id == id)
            .expect("parent stored")
            .parent_id;
    }
    depth
}

/// Runs the `monitor` CLI with `--db path` and `args`, whatever its exit
/// code.
pub fn monitor_on(path: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(["--db", path.to_str().unwrap()])
        .args(args)
        .output()
        .expect("run monitor")
}

/// Runs the `monitor` CLI with `--db path` and `args`; it must succeed.
/// Returns its stdout.
pub fn monitor_ok(path: &Path, args: &[&str]) -> String {
    let out = monitor_on(path, args);
    assert!(
        out.status.success(),
        "monitor {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `rules` (`[[alerts]]` TOML) to a config beside the file and runs
/// `monitor check --record` on it; returns its exit code (0: none fires, 1:
/// one does).
pub fn record_alerts(path: &Path, rules: &str) -> i32 {
    let config = path.with_file_name("alerts.toml");
    std::fs::write(&config, rules).expect("write the config");
    let out = monitor_on(
        path,
        &["--config", config.to_str().unwrap(), "check", "--record"],
    );
    let code = out.status.code().expect("an exit code");
    assert!(code < 2, "{}", String::from_utf8_lossy(&out.stderr));
    code
}

/// `(rule, state)` of each alert event in a JSON list (`monitor alerts
/// --json`, `/api/alerts`).
pub fn rule_states(events: &serde_json::Value) -> Vec<(&str, &str)> {
    events
        .as_array()
        .expect("a list of alert events")
        .iter()
        .map(|e| (e["rule"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect()
}

/// Starts `monitor --db path args` (a `tail`) and returns once it says it
/// is following the file.
pub fn following(path: &Path, args: &[&str]) -> std::process::Child {
    use std::io::BufRead;
    let mut tail = std::process::Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(["--db", path.to_str().unwrap()])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(tail.stderr.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert!(ready.starts_with("following"), "{ready}");
    tail
}
