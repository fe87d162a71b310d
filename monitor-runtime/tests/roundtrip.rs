//! Every column of the `spans` view, for hand-made spans, read back from the file.

mod common;

use std::collections::HashMap;

use common::{count, reader, serial, temp_db};
use monitor_runtime::{current_span, Callsite, Config, EnteredSpan, Span, SpanKind, Status};

static ROOT: Callsite = Callsite::new(
    "root",
    "app::jobs",
    "jobs",
    "src/jobs.rs",
    10,
    SpanKind::Sync,
);
static MIDDLE: Callsite = Callsite::new(
    "middle",
    "app::jobs",
    "app::jobs",
    "src/jobs.rs",
    20,
    SpanKind::Async,
);
static LEAF: Callsite = Callsite::new("leaf", "app::db", "db", "src/db.rs", 30, SpanKind::Stream);

#[derive(Debug)]
struct Row {
    span_id: i64,
    parent_id: Option<i64>,
    trace_id: i64,
    name: String,
    module: String,
    group_name: String,
    kind: String,
    file: String,
    line: i64,
    status: String,
    error: Option<String>,
    start_ns: i64,
    duration_ns: i64,
    busy_ns: i64,
    items: Option<i64>,
    thread: String,
    pid: i64,
    fields: Option<String>,
    rss_bytes: Option<i64>,
    cpu_ns: Option<i64>,
    alloc_bytes: Option<i64>,
}

fn rows(path: &std::path::Path) -> Vec<Row> {
    let conn = reader(path);
    let mut stmt = conn
        .prepare(
            "SELECT span_id, parent_id, trace_id, name, module, group_name, kind, file, line, status, error, \
             start_ns, duration_ns, busy_ns, items, thread, pid, fields, rss_bytes, cpu_ns, alloc_bytes FROM spans",
        )
        .unwrap();
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
            start_ns: r.get(11)?,
            duration_ns: r.get(12)?,
            busy_ns: r.get(13)?,
            items: r.get(14)?,
            thread: r.get(15)?,
            pid: r.get(16)?,
            fields: r.get(17)?,
            rss_bytes: r.get(18)?,
            cpu_ns: r.get(19)?,
            alloc_bytes: r.get(20)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// root (sync, entered) > middle (polled twice, records fields) > leaf
/// (yields items, ends with an error).
fn three_deep(worker: usize) {
    let root = EnteredSpan::new(&ROOT);
    let root_ids = root.ids().unwrap();
    let mut middle = Span::new(&MIDDLE);
    for _ in 0..2 {
        let entered = middle.enter();
        assert_eq!(current_span(), entered.ids());
        let mut leaf = Span::new(&LEAF);
        leaf.add_items(2);
        leaf.add_items(1);
        leaf.record_error(format!("worker {worker} failed"));
        leaf.record_error("a second message is not kept");
        leaf.end();
    }
    assert_eq!(current_span(), Some(root_ids));
    middle.record("worker", worker);
    middle.record("label", "it's \"quoted\"");
    middle.end();
}

#[test]
fn every_column_round_trips_for_nested_spans_on_several_threads() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let workers: Vec<_> = (0..4)
        .map(|w| {
            std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn(move || three_deep(w))
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    guard.flush();
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;

    let rows = rows(&path);
    assert_eq!(rows.len(), 4 * (1 + 1 + 2));
    let by_id: HashMap<i64, &Row> = rows.iter().map(|r| (r.span_id, r)).collect();
    assert_eq!(by_id.len(), rows.len(), "span ids are unique");

    for row in &rows {
        let pid = std::process::id() as i64;
        assert_eq!(row.pid, pid);
        assert!(row.thread.starts_with("worker-"), "{}", row.thread);
        assert!(
            row.start_ns >= before && row.start_ns <= after,
            "start_ns {} outside the test",
            row.start_ns
        );
        assert!(row.duration_ns >= 0 && row.start_ns + row.duration_ns <= after);
        // The sampler is on by default: RSS comes from its first reading.
        // No counting allocator, no `thread_cpu`: those stay NULL.
        assert!(row.rss_bytes.is_some_and(|rss| rss > 0), "{row:?}");
        assert_eq!((row.cpu_ns, row.alloc_bytes), (None, None));
        match row.name.as_str() {
            "root" => {
                assert_eq!(row.parent_id, None);
                assert_eq!(row.trace_id, row.span_id);
                assert_eq!(
                    (row.module.as_str(), row.group_name.as_str()),
                    ("app::jobs", "jobs")
                );
                assert_eq!(
                    (row.kind.as_str(), row.file.as_str(), row.line),
                    ("sync", "src/jobs.rs", 10)
                );
                assert_eq!((row.status.as_str(), row.error.as_deref()), ("ok", None));
                assert_eq!(
                    row.busy_ns, row.duration_ns,
                    "a sync span is busy all along"
                );
                assert_eq!((row.items, row.fields.as_deref()), (None, None));
            }
            "middle" => {
                let parent = by_id[&row.parent_id.unwrap()];
                assert_eq!(parent.name, "root");
                assert_eq!(parent.thread, row.thread);
                assert_eq!(row.trace_id, parent.span_id);
                assert_eq!(
                    (row.kind.as_str(), row.line, row.group_name.as_str()),
                    ("async", 20, "app::jobs")
                );
                assert_eq!(row.status, "ok");
                assert!(row.busy_ns > 0 && row.busy_ns <= row.duration_ns);
                assert!(row.duration_ns <= parent.duration_ns);
                let fields: serde_json::Value =
                    serde_json::from_str(row.fields.as_deref().unwrap()).unwrap();
                let worker: i64 = row.thread.trim_start_matches("worker-").parse().unwrap();
                assert_eq!(
                    fields,
                    serde_json::json!({"worker": worker, "label": "it's \"quoted\""})
                );
            }
            "leaf" => {
                let parent = by_id[&row.parent_id.unwrap()];
                assert_eq!(parent.name, "middle");
                assert_eq!(row.trace_id, parent.trace_id);
                assert_eq!(
                    (row.module.as_str(), row.kind.as_str(), row.file.as_str()),
                    ("app::db", "stream", "src/db.rs")
                );
                assert_eq!(row.status, "error");
                let worker = row.thread.trim_start_matches("worker-");
                assert_eq!(
                    row.error.as_deref(),
                    Some(format!("worker {worker} failed").as_str())
                );
                assert_eq!(row.items, Some(3));
                assert_eq!(row.busy_ns, 0, "never entered");
            }
            other => panic!("unexpected span {other}"),
        }
    }
    // Static facts are stored once, not per row.
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM callsites WHERE name IN ('root', 'middle', 'leaf')"
        ),
        3
    );
    assert_eq!(count(&path, "SELECT count(*) FROM threads"), 4);
    drop(guard);
}

static PANICS: Callsite = Callsite::new("panics", "app", "app", "src/app.rs", 1, SpanKind::Sync);
static ABANDONED: Callsite =
    Callsite::new("abandoned", "app", "app", "src/app.rs", 2, SpanKind::Async);

#[test]
fn panics_and_cancellation_are_outcomes() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let unwound = std::panic::catch_unwind(|| {
        let _span = EnteredSpan::new(&PANICS);
        panic!("index 7 out of range");
    });
    assert!(unwound.is_err(), "the panic goes on");
    drop(Span::new(&ABANDONED));
    let mut explicit = Span::new(&ABANDONED);
    explicit.set_status(Status::Cancelled);
    explicit.end();
    guard.flush();

    let conn = reader(&path);
    let (status, error): (String, Option<String>) = conn
        .query_row(
            "SELECT status, error FROM spans WHERE name = 'panics'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (status.as_str(), error.as_deref()),
        ("panic", Some("index 7 out of range"))
    );
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM spans WHERE name = 'abandoned' AND status = 'cancelled'"
        ),
        2
    );
    drop(guard);
}

static FIRST: Callsite = Callsite::new("first", "app", "app", "src/app.rs", 4, SpanKind::Sync);
static SECOND: Callsite = Callsite::new("second", "app", "app", "src/app.rs", 5, SpanKind::Async);

#[test]
fn each_panic_span_keeps_its_own_panic_s_message() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let _ = std::panic::catch_unwind(|| {
        let _span = EnteredSpan::new(&FIRST);
        panic!("first failure");
    });
    // A span that is not current when the second panic starts.
    let _ = std::panic::catch_unwind(|| {
        let _span = Span::new(&SECOND);
        panic!("second failure");
    });
    guard.flush();
    let conn = reader(&path);
    let message = |name: &str| -> String {
        conn.query_row(
            "SELECT error FROM spans WHERE name = ?1 AND status = 'panic'",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(message("first"), "first failure");
    assert_eq!(message("second"), "second failure");
    drop(guard);
}

static HANDED: Callsite =
    Callsite::new("handed_over", "app", "app", "src/app.rs", 3, SpanKind::Sync);

#[test]
fn an_explicit_parent_links_work_on_another_thread() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let root = EnteredSpan::new(&ROOT);
    let parent = current_span();
    std::thread::spawn(move || {
        assert_eq!(current_span(), None, "the current span is per thread");
        let child = Span::with_parent(&HANDED, parent).entered();
        assert_eq!(child.ids().unwrap().trace_id, parent.unwrap().trace_id);
    })
    .join()
    .unwrap();
    drop(root);
    guard.flush();
    let linked = count(
        &path,
        "SELECT count(*) FROM spans c JOIN spans p ON c.parent_id = p.span_id \
         WHERE c.name = 'handed_over' AND p.name = 'root' AND c.trace_id = p.span_id AND c.thread <> p.thread",
    );
    assert_eq!(linked, 1);
    drop(guard);
}

static LOGIN: Callsite = Callsite::new("login", "app", "app", "src/app.rs", 4, SpanKind::Sync);

#[test]
fn fields_named_like_secrets_are_masked_by_the_span_api_too() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    {
        let mut span = EnteredSpan::new(&LOGIN);
        span.record("user", "ann");
        span.record("api_key", "sk-live-4242");
        span.record(String::from("sessionToken"), "tok-4242");
        span.record("retries", 3u64);
    }
    guard.flush();
    drop(guard);
    let fields: String = reader(&path)
        .query_row("SELECT fields FROM spans WHERE name = 'login'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        fields,
        r#"{"api_key":"***","retries":3,"sessionToken":"***","user":"ann"}"#
    );
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend(std::fs::read(format!("{}-wal", path.display())).unwrap_or_default());
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("4242"), "a secret value is in the file");
}

static POLLED: Callsite = Callsite::new("polled", "app", "app", "src/app.rs", 6, SpanKind::Async);
static IN_DROP: Callsite = Callsite::new("in_drop", "app", "app", "src/app.rs", 7, SpanKind::Sync);

#[test]
fn a_caught_panic_in_a_poll_stays_a_panic_and_cleanup_during_unwinding_is_ok() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let mut span = Span::new(&POLLED);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _entered = span.enter();
        panic!("poll failed");
    }));
    assert!(caught.is_err());
    drop(span); // later, outside the panic: still a panic, not `cancelled`

    struct Cleanup;
    impl Drop for Cleanup {
        fn drop(&mut self) {
            // Runs while the panic below unwinds, and completes normally.
            let _span = EnteredSpan::new(&IN_DROP);
        }
    }
    let _ = std::panic::catch_unwind(|| {
        let _cleanup = Cleanup;
        panic!("outer failure");
    });
    guard.flush();

    let conn = reader(&path);
    let outcome = |name: &str| -> (String, Option<String>) {
        conn.query_row(
            "SELECT status, error FROM spans WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    assert_eq!(
        outcome("polled"),
        ("panic".into(), Some("poll failed".into()))
    );
    assert_eq!(outcome("in_drop"), ("ok".into(), None));
    drop(guard);
}

/// The writer binds only what changed from the row before (bindings outlive
/// a statement's reset): parents, items, fields, errors and callsites that
/// come and go from one row to the next are each stored as that row had
/// them, never the row before's.
#[test]
fn rows_whose_optional_values_come_and_go_keep_each_their_own() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    type Expected = (
        &'static str,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let mut expected: HashMap<i64, Expected> = HashMap::new();
    let outer = EnteredSpan::new(&ROOT);
    let outer_id = outer.ids().unwrap().span_id as i64;
    for i in 0..300i64 {
        let (callsite, name) = if i % 2 == 0 {
            (&MIDDLE, "middle")
        } else {
            (&LEAF, "leaf")
        };
        let parent = (i % 4 < 2).then_some(outer_id);
        let mut span = Span::with_parent(callsite, parent.and(outer.ids()));
        let items = (i % 3 == 0).then(|| {
            span.add_items(i as u64);
            i
        });
        let fields = (i % 2 == 1).then(|| {
            span.record("i", i);
            format!(r#"{{"i":{i}}}"#)
        });
        let error = (i % 5 == 0).then(|| {
            span.record_error(format!("failed {i}"));
            format!("failed {i}")
        });
        let id = span.ids().unwrap().span_id as i64;
        expected.insert(id, (name, parent, items, fields, error));
        span.end();
    }
    drop(outer);
    guard.flush();
    drop(guard);

    let rows = rows(&path);
    assert_eq!(rows.len(), 301);
    for row in rows.iter().filter(|r| r.span_id != outer_id) {
        let (name, parent, items, fields, error) = &expected[&row.span_id];
        let got = (
            row.name.as_str(),
            row.parent_id,
            row.items,
            row.fields.clone(),
            row.error.clone(),
        );
        assert_eq!(
            got,
            (*name, *parent, *items, fields.clone(), error.clone()),
            "span {}",
            row.span_id
        );
        assert_eq!(row.status, if error.is_some() { "error" } else { "ok" });
    }
}
