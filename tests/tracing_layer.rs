//! `tracing` spans in the same file through `MonitorLayer`: their rows,
//! fields and errors, and parent links both ways with `#[monitor]` spans,
//! across `tokio::spawn` and threads, with real instrumented libraries.

mod common;

use std::sync::Once;
use std::time::Duration;

use common::{following, monitor_ok as cli, session_with, Row, Session};
use monitor_runtime::prelude::*;
use monitor_runtime::tracing::MonitorLayer;
use monitor_runtime::Config;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

/// One subscriber for the whole binary (tokio's worker threads see only a
/// global one): the registry with `MonitorLayer` storing INFO events and
/// above, and `fmt` into nothing, to show that it composes.
fn session() -> Session {
    session_configured(|c| c)
}

fn session_configured(configure: impl FnOnce(Config) -> Config) -> Session {
    static SUBSCRIBER: Once = Once::new();
    SUBSCRIBER.call_once(|| {
        let subscriber = tracing_subscriber::registry()
            .with(MonitorLayer::new().events(tracing::Level::INFO))
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink));
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    session_with(|c: Config| configure(c.resource_interval(Duration::ZERO)))
}

fn by_name<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    let found: Vec<&Row> = rows.iter().filter(|r| r.name == name).collect();
    assert_eq!(found.len(), 1, "one span named {name}: {rows:#?}");
    found[0]
}

/// Asserts that `child`'s parent is `parent`, in the same trace.
fn assert_child(rows: &[Row], child: &str, parent: &str) {
    let (c, p) = (by_name(rows, child), by_name(rows, parent));
    assert_eq!(
        c.parent_id,
        Some(p.span_id),
        "{child} under {parent}: {rows:#?}"
    );
    assert_eq!(c.trace_id, p.trace_id, "{child} in {parent}'s trace");
}

#[test]
fn a_tracing_span_is_a_row_with_its_fields_level_and_busy_time() {
    let s = session();
    let line = line!() + 1;
    let span = tracing::info_span!(
        "load",
        user_id = 7,
        password = "hunter2",
        cache = tracing::field::Empty
    );
    span.in_scope(|| std::thread::sleep(Duration::from_millis(20)));
    std::thread::sleep(Duration::from_millis(30));
    span.record("cache", "miss");
    span.in_scope(|| std::thread::sleep(Duration::from_millis(20)));
    drop(span);

    let row = s.one("load");
    assert_eq!((row.kind.as_str(), row.status.as_str()), ("tracing", "ok"));
    assert_eq!(row.module, "tracing_layer", "the target");
    assert!(row.file.ends_with("tracing_layer.rs"), "{}", row.file);
    assert_eq!(row.line, i64::from(line));
    let fields = row.fields.unwrap();
    assert_eq!(fields["level"], "INFO");
    assert_eq!(fields["user_id"], 7);
    assert_eq!(fields["password"], "***", "the secret rule");
    assert_eq!(fields["cache"], "miss", "recorded later");
    // Busy while entered (about 40 ms), not the 70 ms from creation to close.
    assert!(row.busy_ns >= 40_000_000 && row.busy_ns < row.duration_ns);
    assert!(row.duration_ns >= 70_000_000);
}

#[monitor]
fn monitored_leaf() -> u32 {
    1
}

#[monitor]
fn monitored_middle() -> u32 {
    tracing::info_span!("inner").in_scope(monitored_leaf)
}

#[tracing::instrument]
fn instrumented_outer() -> u32 {
    monitored_middle()
}

#[test]
fn parent_links_go_both_ways_in_one_trace() {
    let s = session();
    assert_eq!(instrumented_outer(), 1);
    let rows = s.spans();
    assert_eq!(rows.len(), 4, "{rows:#?}");
    assert_eq!(by_name(&rows, "instrumented_outer").parent_id, None);
    assert_child(&rows, "monitored_middle", "instrumented_outer");
    assert_child(&rows, "inner", "monitored_middle");
    assert_child(&rows, "monitored_leaf", "inner");
}

#[monitor]
async fn fetch_row() -> u32 {
    tokio::time::sleep(Duration::from_millis(5)).await;
    2
}

#[tracing::instrument]
async fn traced_handler() -> u32 {
    // `tracing`'s own: the task keeps this `tracing` span.
    tokio::spawn(Instrument::in_current_span(fetch_row()))
        .await
        .unwrap()
}

#[monitor]
async fn handle_request() -> u32 {
    // A task under a `tracing` span. (`fetch_row()` called out here would
    // take this span as parent, as `#[instrument] async fn` does: an async
    // span begins when its future is made.)
    let spawned = tokio::spawn(async { fetch_row().await }.instrument(tracing::info_span!("task")));
    // `monitor`'s `in_current_span`: the task keeps this `#[monitor]` span.
    let kept = tokio::spawn(InCurrentSpan::in_current_span(async {
        tracing::info_span!("kept").in_scope(|| 1)
    }));
    // A thread, with the span carried over explicitly.
    let carried = tracing::info_span!("carried");
    let thread = std::thread::spawn(move || carried.in_scope(monitored_leaf));
    let traced = traced_handler().await;
    spawned.await.unwrap() + kept.await.unwrap() + thread.join().unwrap() + traced
}

#[test]
fn chains_stay_linked_across_spawn_and_threads() {
    let s = session();
    let runtime = common::tokio_runtime();
    assert_eq!(runtime.block_on(handle_request()), 6);
    let rows = s.spans();
    let root = by_name(&rows, "handle_request");
    assert!(
        rows.iter().all(|r| r.trace_id == root.trace_id),
        "{rows:#?}"
    );
    assert_child(&rows, "task", "handle_request");
    assert_child(&rows, "kept", "handle_request");
    assert_child(&rows, "carried", "handle_request");
    assert_child(&rows, "monitored_leaf", "carried");
    assert_child(&rows, "traced_handler", "handle_request");
    let fetches: Vec<&Row> = rows.iter().filter(|r| r.name == "fetch_row").collect();
    assert_eq!(fetches.len(), 2);
    let mut parents: Vec<_> = fetches.iter().map(|r| r.parent_id).collect();
    parents.sort();
    let mut expected = vec![
        Some(by_name(&rows, "task").span_id),
        Some(by_name(&rows, "traced_handler").span_id),
    ];
    expected.sort();
    assert_eq!(parents, expected, "{rows:#?}");
}

#[tracing::instrument(err)]
fn instrumented_failing(id: u32) -> Result<(), String> {
    Err(format!("no row {id}"))
}

#[monitor]
fn logs_an_error() -> Result<(), String> {
    tracing::error!(table = "users", "database unreachable");
    Ok(())
}

#[monitor]
fn logs_and_fails() -> Result<(), String> {
    tracing::error!("logged first");
    Err("its own error".into())
}

#[monitor]
async fn logs_while_polled() {
    tokio::time::sleep(Duration::from_millis(1)).await;
    tracing::error!("failed between polls");
}

#[monitor]
fn logs_a_secret() {
    tracing::error!(
        password = "correct horse battery",
        user = "ann",
        "login failed"
    );
}

#[monitor]
fn logs_a_warning() {
    tracing::warn!("only a warning");
}

#[test]
fn error_events_mark_their_span_unless_it_has_an_error_of_its_own() {
    let s = session();
    let _ = instrumented_failing(3);
    let _ = logs_an_error();
    let _ = logs_and_fails();
    logs_a_warning();
    logs_a_secret();
    // An explicit parent, not entered anywhere: it gets the error.
    let detached = tracing::info_span!("detached");
    tracing::error!(parent: &detached, "failed elsewhere");
    drop(detached);
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(logs_while_polled());
    let rows = s.spans();
    assert_eq!(
        by_name(&rows, "detached").error.as_deref(),
        Some("failed elsewhere")
    );
    let polled = by_name(&rows, "logs_while_polled");
    assert_eq!(
        (polled.status.as_str(), polled.error.as_deref()),
        ("error", Some("failed between polls")),
        "an async span takes the event of the poll it happened in"
    );
    assert_eq!(
        by_name(&rows, "logs_a_secret").error.as_deref(),
        Some("login failed password=*** user=\"ann\""),
        "the secret rule applies to an event's fields in the message"
    );
    let failing = by_name(&rows, "instrumented_failing");
    assert_eq!(failing.status, "error");
    assert_eq!(failing.error.as_deref(), Some("error=no row 3"));
    let logged = by_name(&rows, "logs_an_error");
    assert_eq!(logged.status, "error");
    assert_eq!(
        logged.error.as_deref(),
        Some("database unreachable table=\"users\"")
    );
    let own = by_name(&rows, "logs_and_fails");
    assert_eq!(own.error.as_deref(), Some("its own error"));
    assert_eq!(by_name(&rows, "logs_a_warning").status, "ok");
}

#[monitor]
async fn lookup_user(id: u32) -> String {
    format!("user {id}")
}

#[test]
fn tower_http_requests_and_the_monitored_handler_are_one_tree() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let s = session();
    let app =
        axum::Router::new()
            .route(
                "/users/{id}",
                axum::routing::get(
                    |axum::extract::Path(id): axum::extract::Path<u32>| async move {
                        lookup_user(id).await
                    },
                ),
            )
            .layer(tower_http::trace::TraceLayer::new_for_http());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let response = runtime.block_on(async {
        app.oneshot(Request::get("/users/42").body(Body::empty()).unwrap())
            .await
            .unwrap()
    });
    assert_eq!(response.status(), 200);
    drop(response);
    let rows = s.spans();
    assert_eq!(
        rows.len(),
        2,
        "the request and the handler's call: {rows:#?}"
    );
    let request = by_name(&rows, "request");
    assert_eq!(request.parent_id, None, "the request is the root");
    assert_eq!(request.kind, "tracing");
    assert_eq!(request.module, "tower_http::trace::make_span");
    let fields = request.fields.as_ref().unwrap();
    assert_eq!(fields["uri"], "/users/42");
    assert_eq!(fields["method"], "GET");
    assert_child(&rows, "lookup_user", "request");
}

/// A `tracing` span still open when the guard drops (its handle leaked, or
/// closed later) is not stored: it is counted as dropped, once.
#[test]
fn a_span_still_open_when_the_guard_drops_is_counted_as_dropped() {
    let mut s = session();
    std::mem::forget(tracing::info_span!("never_closed"));
    let closes_late = tracing::info_span!("closes_late");
    let closed = tracing::info_span!("closed");
    drop(closed);
    // Drop the guard, keeping the session's serial lock and directory.
    let disabled = monitor_runtime::init_with_or_disabled(
        Config::default().db_path(s.path.join("not-a-dir").join("x.db")),
    );
    drop(std::mem::replace(&mut s.guard, disabled));
    // Counted when the guard dropped: not stored, nor counted again.
    drop(closes_late);
    assert_eq!(common::span_names(&s.path), ["closed"]);
    assert_eq!(common::stats_sum(&s.path, "dropped"), 2);
}

#[monitor]
fn load_rows() {
    tracing::info!(rows = 3, "loaded");
    tracing::debug!("below the level: not stored");
}

/// (span_id, level, target, message, fields) of every stored event.
type EventRow = (Option<i64>, String, String, Option<String>, Option<String>);

#[test]
fn events_at_the_chosen_level_are_rows_of_events_with_their_span() {
    let s = session();
    tracing::info_span!("job").in_scope(|| {
        tracing::warn!(password = "hunter2", "slow disk");
        load_rows();
    });
    tracing::info!("outside any span");
    let rows = s.spans();
    let conn = rusqlite::Connection::open(&s.path).unwrap();
    let events: Vec<EventRow> = conn
        .prepare("SELECT span_id, level, target, message, fields FROM events ORDER BY ts_ns")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let job = by_name(&rows, "job").span_id;
    let load = by_name(&rows, "load_rows").span_id;
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        events,
        [
            (
                Some(job),
                "WARN".into(),
                "tracing_layer".into(),
                text("slow disk"),
                text(r#"{"password":"***"}"#)
            ),
            (
                Some(load),
                "INFO".into(),
                "tracing_layer".into(),
                text("loaded"),
                text(r#"{"rows":3}"#)
            ),
            (
                None,
                "INFO".into(),
                "tracing_layer".into(),
                text("outside any span"),
                None
            ),
        ]
    );
    // Events do not change their span's status below ERROR.
    assert_eq!(by_name(&rows, "job").status, "ok");
}

#[test]
fn tree_and_tail_show_a_spans_events_under_it() {
    let s = session();
    tracing::info_span!("job").in_scope(|| {
        tracing::warn!(attempt = 2, "retrying\u{1b}]0;title\u{7}");
        load_rows();
    });
    let rows = s.spans();
    let trace = by_name(&rows, "job").trace_id.to_string();

    let text = cli(&s.path, &["tree", &trace]);
    let lines: Vec<&str> = text.lines().collect();
    let job = lines.iter().position(|l| l.starts_with("job ")).unwrap();
    // Under its span, control characters escaped.
    assert!(
        lines[job + 1].ends_with(r#"· WARN retrying\u{1b}]0;title\u{7} {"attempt":2}"#),
        "{text}"
    );
    assert!(lines[job + 2].contains("load_rows"), "{text}");
    assert!(
        lines[job + 3].ends_with(r#"· INFO loaded {"rows":3}"#),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&cli(&s.path, &["--json", "tree", &trace])).unwrap();
    let load = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "load_rows")
        .unwrap();
    assert_eq!(load["events"][0]["message"], "loaded");
    assert_eq!(load["events"][0]["fields"]["rows"], 3);
    // `monitor stats` lists the events partitions with the others.
    let stats = cli(&s.path, &["--json", "stats"]);
    assert!(stats.contains("\"events_20"), "{stats}");

    // `tail`: spans written after it starts, each with its events.
    let tail = following(
        &s.path,
        &["--json", "tail", "--max", "1", "--interval-ms", "20"],
    );
    load_rows();
    s.guard.flush();
    // A tail that never prints must fail the test, not hang it.
    let pid = tail.id();
    let (done, finished) = crossbeam_channel::bounded::<()>(1);
    std::thread::spawn(move || {
        if let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
            finished.recv_timeout(Duration::from_secs(60))
        {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    });
    let out = tail.wait_with_output().unwrap();
    drop(done);
    let span: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(span["name"], "load_rows");
    assert_eq!(span["events"][0]["level"], "INFO");
    assert_eq!(span["events"][0]["target"], "tracing_layer");
}

/// A file made before the `events` view existed: the CLI reads it as having
/// no events, and the next `init` adds the (empty) view.
#[test]
fn a_file_without_the_events_view_reads_and_gets_it_back() {
    let mut s = session();
    load_rows();
    let rows = s.spans();
    let trace = by_name(&rows, "load_rows").trace_id.to_string();
    let disabled = monitor_runtime::init_with_or_disabled(
        Config::default().db_path(s.path.join("not-a-dir").join("x.db")),
    );
    drop(std::mem::replace(&mut s.guard, disabled));
    let conn = rusqlite::Connection::open(&s.path).unwrap();
    conn.execute_batch("DROP VIEW events; DROP VIEW IF EXISTS events_union_0;")
        .unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE name GLOB 'events_*' AND type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for table in tables {
        conn.execute_batch(&format!("DROP TABLE \"{table}\""))
            .unwrap();
    }
    drop(conn);

    let text = cli(&s.path, &["tree", &trace]);
    assert!(text.contains("load_rows") && !text.contains('·'), "{text}");

    s.guard = monitor_runtime::init_with(Config::default().db_path(&s.path)).unwrap();
    let count: i64 = rusqlite::Connection::open(&s.path)
        .unwrap()
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 0, "the view is back, empty");
}

/// A span entered on two threads at once: each thread's calls are its
/// children, and each thread leaves it behind when it exits.
#[test]
fn a_span_entered_on_two_threads_at_once_parents_both() {
    let s = session();
    let shared = tracing::info_span!("shared");
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                shared.in_scope(|| {
                    // Both threads inside at once.
                    barrier.wait();
                    monitored_leaf();
                    barrier.wait();
                });
                // Not current any more on this thread.
                monitored_middle_free();
            });
        }
    });
    drop(shared);
    let rows = s.spans();
    let shared = by_name(&rows, "shared");
    let leaves: Vec<&Row> = rows.iter().filter(|r| r.name == "monitored_leaf").collect();
    assert_eq!(leaves.len(), 2);
    assert!(
        leaves.iter().all(|r| r.parent_id == Some(shared.span_id)),
        "{rows:#?}"
    );
    let free: Vec<&Row> = rows
        .iter()
        .filter(|r| r.name == "monitored_middle_free")
        .collect();
    assert_eq!(free.len(), 2);
    assert!(free.iter().all(|r| r.parent_id.is_none()), "{rows:#?}");
}

#[monitor]
fn monitored_middle_free() {}

/// Events (and spans) of `tracing` that meet a locked database go to the
/// spill file and are replayed once it takes writes, each once.
#[test]
fn events_spilled_while_the_database_is_locked_are_replayed() {
    let s = session_configured(|c| c.busy_timeout(Duration::from_millis(50)));
    load_rows();
    s.guard.flush();
    let holder = common::lock_database(&s.path);
    tracing::info_span!("while_locked").in_scope(|| {
        tracing::error!("disk on fire");
        tracing::info!(n = 1, "still going");
    });
    s.guard.flush();
    let spill = std::fs::read_to_string(monitor_runtime::schema::spill_path(&s.path)).unwrap();
    assert_eq!(spill.matches("{\"tracing_event\"").count(), 2, "{spill}");
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    let conn = rusqlite::Connection::open(&s.path).unwrap();
    let messages: Vec<String> = conn
        .prepare(
            "SELECT e.message FROM events e JOIN spans s ON s.span_id = e.span_id \
             WHERE s.name = 'while_locked' ORDER BY e.ts_ns",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(messages, ["disk on fire", "still going"]);
    let row = s.one("while_locked");
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("error", Some("disk on fire"))
    );
}

/// An events partition that refuses rows costs the events (counted as
/// failed), not the spans of their batch.
#[test]
fn an_events_table_that_refuses_rows_does_not_sink_the_spans() {
    // 2026-01-01 00:00 UTC: the hour's partition name is known.
    let t0 = 1_767_225_600_000_000_000;
    let s = session_configured(|c| c.clock(monitor_runtime::Clock::starting_at(t0)));
    rusqlite::Connection::open(&s.path)
        .unwrap()
        .execute_batch("CREATE VIEW events_2026010100 AS SELECT 1 AS x")
        .unwrap();
    tracing::info_span!("with_event").in_scope(|| tracing::warn!("cannot be stored"));
    let rows = s.spans();
    assert_eq!(by_name(&rows, "with_event").status, "ok");
    assert_eq!(
        common::stats_sum(&s.path, "failed"),
        1,
        "the event, counted"
    );
}

/// Enters `span` through its dispatcher, as code holding only its id does:
/// no guard, and no handle kept by the enter.
fn enter_without_guard(span: &tracing::Span) -> (tracing::Dispatch, tracing::Id) {
    let id = span.id().expect("enabled");
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    dispatch.enter(&id);
    (dispatch, id)
}

/// A span whose last handle goes while it is entered closes then: with the
/// time entered so far, and no longer current on this thread.
#[test]
fn a_span_closed_while_entered_keeps_its_busy_time_and_leaves_the_stack() {
    let s = session();
    let span = tracing::info_span!("let_go");
    let (dispatch, id) = enter_without_guard(&span);
    monitored_leaf();
    // The registry holds no reference for an enter: this closes the span.
    drop(span);
    monitored_middle_free();
    dispatch.exit(&id);
    let rows = s.spans();
    assert_child(&rows, "monitored_leaf", "let_go");
    let let_go = by_name(&rows, "let_go");
    assert!(
        let_go.busy_ns > 0 && let_go.busy_ns <= let_go.duration_ns,
        "{let_go:#?}"
    );
    assert_eq!(by_name(&rows, "monitored_middle_free").parent_id, None);
}

/// Two subscribers number their spans alike: a span of one is never taken
/// for the other's span of the same id.
#[test]
fn spans_of_two_subscribers_with_the_same_id_stay_apart() {
    let s = session();
    let second = tracing::Dispatch::new(tracing_subscriber::registry().with(MonitorLayer::new()));
    let first = tracing::Dispatch::new(tracing_subscriber::registry().with(MonitorLayer::new()));
    let in_second = tracing::dispatcher::with_default(&second, || tracing::info_span!("in_second"));
    let in_first = tracing::dispatcher::with_default(&first, || tracing::info_span!("in_first"));
    assert_eq!(in_first.id(), in_second.id(), "the case under test");
    in_second.in_scope(monitored_leaf);
    in_first.in_scope(monitored_middle_free);
    drop((in_first, in_second));
    let rows = s.spans();
    assert_child(&rows, "monitored_leaf", "in_second");
    assert_child(&rows, "monitored_middle_free", "in_first");
    assert!(by_name(&rows, "in_second").busy_ns > 0);
    assert!(by_name(&rows, "in_first").busy_ns > 0);
}

/// A span closed on another thread while entered here without its exit:
/// stored with the enters that ended (none here), and current here until
/// this thread exits it.
#[test]
fn a_span_closed_elsewhere_while_entered_here_is_stored_with_its_ended_enters() {
    let s = session();
    let span = tracing::info_span!("closed_elsewhere");
    let (dispatch, id) = enter_without_guard(&span);
    std::thread::spawn(move || drop(span)).join().unwrap();
    monitored_leaf();
    dispatch.exit(&id);
    monitored_middle_free();
    let rows = s.spans();
    let closed = by_name(&rows, "closed_elsewhere");
    assert_eq!((closed.status.as_str(), closed.busy_ns), ("ok", 0));
    assert_child(&rows, "monitored_leaf", "closed_elsewhere");
    assert_eq!(by_name(&rows, "monitored_middle_free").parent_id, None);
}

/// Spans made on one thread, then entered, re-entered and closed on four
/// others: each stored once, busy, with its own child under it.
#[test]
fn spans_made_on_one_thread_and_used_on_others_keep_their_children() {
    let s = session();
    let n = 2000;
    let made: Vec<tracing::Span> = (0..n).map(|i| tracing::info_span!("made", i)).collect();
    let made = std::sync::Mutex::new(made);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some(span) = made.lock().unwrap().pop() {
                    let again = span.clone();
                    span.in_scope(|| tracing::info_span!("made_child").in_scope(|| {}));
                    drop(span);
                    again.in_scope(|| {});
                }
            });
        }
    });
    let rows = s.spans();
    let parents: std::collections::HashSet<i64> = rows
        .iter()
        .filter(|r| r.name == "made")
        .map(|r| r.span_id)
        .collect();
    assert_eq!(parents.len(), n);
    assert!(rows
        .iter()
        .filter(|r| r.name == "made")
        .all(|r| r.busy_ns > 0));
    let children: std::collections::HashSet<i64> = rows
        .iter()
        .filter(|r| r.name == "made_child")
        .map(|r| r.parent_id.expect("a parent"))
        .collect();
    assert_eq!(children, parents, "one child under each");
}
