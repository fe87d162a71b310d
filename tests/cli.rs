//! End to end: spans recorded through the runtime, read back by the CLI binary.

use std::path::Path;
use std::process::{Command, Output};

use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};

static HANDLE: Callsite = Callsite::new(
    "handle",
    "app::http",
    "http",
    "src/http.rs",
    12,
    SpanKind::Sync,
);
static QUERY: Callsite = Callsite::new("query", "app::db", "db", "src/db.rs", 40, SpanKind::Sync);

fn monitor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(args)
        .output()
        .expect("run monitor")
}

fn record(db: &Path) {
    let guard = monitor_runtime::init_with(Config::default().db_path(db)).unwrap();
    for i in 0..30 {
        let _handle = EnteredSpan::new(&HANDLE);
        let mut query = EnteredSpan::new(&QUERY);
        if i % 10 == 0 {
            query.record_error("connection reset");
        }
    }
    drop(guard);
}

#[test]
fn the_cli_counts_what_the_runtime_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("monitor.db");
    record(&db);

    let out = monitor(&["--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("60 spans (3 errors or panics) in 1 hourly partitions"),
        "{stdout}"
    );
    assert!(stdout.contains("writer: 60 written, 0 dropped"), "{stdout}");
    let query_line = stdout
        .lines()
        .find(|l| l.starts_with("query"))
        .expect("a line for query");
    let cols: Vec<&str> = query_line.split_whitespace().collect();
    assert_eq!(&cols[..4], ["query", "db", "30", "3"], "{query_line}");
    let handle_line = stdout
        .lines()
        .find(|l| l.starts_with("handle"))
        .expect("a line for handle");
    let cols: Vec<&str> = handle_line.split_whitespace().collect();
    assert_eq!(&cols[..4], ["handle", "http", "30", "0"], "{handle_line}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.db");
    let out = monitor(&["--db", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("absent.db: no such file"), "{stderr}");
    assert!(!missing.exists(), "the CLI must not create the file");
}

#[test]
fn a_file_that_is_not_a_monitor_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE spans (x INTEGER)")
        .unwrap();
    let out = monitor(&["--db", foreign.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a monitor database"), "{stderr}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    let out = monitor(&["--db", garbage.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("not a readable SQLite database"));
}
