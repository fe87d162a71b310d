//! End to end: spans recorded through the runtime, read back by the `monitor`
//! binary. Durations are set with a movable clock, so the figures the CLI
//! prints are known in advance (give or take the real microseconds a span
//! takes).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::requests::{about_ms, function, real_now, requests, HANDLE, QUERY};
use common::{following, monitor_ok as ok, session_with, Session};
use monitor_runtime::resources::{ResourceReading, ScriptedSampler};
use monitor_runtime::{Callsite, Clock, EnteredSpan, SpanKind};
use serde_json::Value;

/// 2026-11-22 10:00:00 UTC.
const T0: u64 = 1_795_341_600_000_000_000;

fn monitor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(args)
        .output()
        .expect("run monitor")
}

/// `monitor export --format chrome` of the file, parsed.
fn chrome_export(path: &Path) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.json");
    ok(
        path,
        &["export", "--format", "chrome", "-o", file.to_str().unwrap()],
    );
    serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap()
}

fn json(path: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(path, &all)).expect("--json prints JSON")
}

/// [`requests`] from `T0`. Resource samples: CPU 10, 20, 30 % and RSS 100,
/// 200, 300 MiB.
fn recorded() -> (Session, Clock) {
    let clock = Clock::starting_at(T0);
    let readings =
        (1..=3).map(|i| ResourceReading::new(Some(10.0 * i as f64), Some((i * 100) << 20)));
    let s = session_with(|c| {
        c.clock(clock.clone())
            .resource_interval(Duration::from_secs(3600))
            .resource_sampler(ScriptedSampler::new(readings))
    });
    s.guard.sample_resources();
    s.guard.sample_resources();
    requests(&clock, &s.guard);
    (s, clock)
}

#[test]
fn summary_gives_calls_errors_and_exact_percentiles() {
    let (s, _) = recorded();
    let summary = json(&s.path, &["summary"]);
    let query = function(&summary, "query");
    assert_eq!(query["module"], "app::db");
    assert_eq!(query["group"], "db");
    assert_eq!(query["calls"], 100);
    assert_eq!(query["errors"], 10);
    assert_eq!(query["error_pct"], 10.0);
    for (key, ms) in [
        ("p50_ns", 50),
        ("p95_ns", 95),
        ("p99_ns", 99),
        ("max_ns", 100),
    ] {
        assert!(about_ms(&query[key], ms), "{key}: {}", query[key]);
    }
    let handle = function(&summary, "handle");
    assert_eq!(
        (handle["calls"].as_i64(), handle["errors"].as_i64()),
        (Some(100), Some(0))
    );

    // Filters and order.
    let db_only = json(&s.path, &["summary", "--group", "db"]);
    assert_eq!(db_only.as_array().unwrap().len(), 1);
    let by_errors = json(&s.path, &["summary", "--sort", "errors"]);
    assert_eq!(by_errors[0]["name"], "query");

    // The table a person reads.
    let table = ok(&s.path, &["summary"]);
    let row = table
        .lines()
        .find(|l| l.contains("query"))
        .expect("a row for query");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(
        cells.windows(4).any(|w| w == ["sync", "100", "10", "10.0"]),
        "{row}"
    );
    assert!(row.contains("50.") && row.contains("99."), "{row}");
    // Without a subcommand, the summary is what `monitor` prints.
    assert_eq!(ok(&s.path, &[]), table);
}

#[test]
fn since_keeps_only_recent_spans() {
    // Spans an hour old and spans from now, in two partitions.
    let now = real_now();
    let clock = Clock::starting_at(now - 2 * 3_600_000_000_000);
    let s = session_with(|c| c.clock(clock.clone()));
    for _ in 0..3 {
        drop(EnteredSpan::new(&QUERY));
    }
    clock.set(now);
    for _ in 0..5 {
        drop(EnteredSpan::new(&QUERY));
    }
    s.guard.flush();
    assert_eq!(function(&json(&s.path, &["summary"]), "query")["calls"], 8);
    assert_eq!(
        function(&json(&s.path, &["summary", "--since", "30m"]), "query")["calls"],
        5
    );
}

#[test]
fn errors_lists_the_latest_failures_first() {
    let (s, _) = recorded();
    let errors = json(&s.path, &["errors", "--name", "query"]);
    let messages: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["error"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=10)
        .rev()
        .map(|i| format!("connection reset {}", i * 10))
        .collect();
    assert_eq!(messages, expected);
    assert!(errors[0]["trace_id"].as_i64().unwrap() > 0);

    assert_eq!(
        json(&s.path, &["errors", "--limit", "3"])
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Parameters are bound, never spliced into the SQL.
    let injected = json(&s.path, &["errors", "--name", "x' OR '1'='1"]);
    assert_eq!(injected.as_array().unwrap().len(), 0);
    let table = ok(&s.path, &["errors", "--limit", "1"]);
    assert!(table.contains("connection reset 100"), "{table}");
    assert!(table.contains("2026-11-22 10:"), "{table}");
}

#[test]
fn tree_nests_a_trace_with_each_share_of_the_root() {
    let (s, _) = recorded();
    let last = json(&s.path, &["tree", "--last"]);
    let nodes = last["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(
        (&nodes[0]["name"], &nodes[0]["depth"]),
        (&"handle".into(), &0.into())
    );
    assert_eq!(
        (&nodes[1]["name"], &nodes[1]["depth"]),
        (&"query".into(), &1.into())
    );
    assert_eq!(nodes[1]["parent_id"], nodes[0]["span_id"]);
    assert_eq!(nodes[1]["status"], "error");
    assert!(about_ms(&nodes[1]["duration_ns"], 100));
    assert_eq!(last["spans"], 2);

    let trace_id = last["trace_id"].as_i64().unwrap().to_string();
    let by_id = json(&s.path, &["tree", &trace_id]);
    assert_eq!(by_id, last);
    let text = ok(&s.path, &["tree", &trace_id]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[1].starts_with("handle") && lines[1].contains("100.0%"),
        "{text}"
    );
    assert!(lines[2].starts_with("└─ query"), "{text}");
    assert!(lines[2].contains("error: connection reset 100"), "{text}");
    // 100 ms of the root's 108 ms.
    assert!(lines[2].contains("92.6%"), "{text}");

    let named = json(&s.path, &["tree", "--last", "--name", "query"]);
    assert_eq!(named["trace_id"], last["trace_id"]);
}

#[test]
fn export_writes_chrome_csv_and_json_lines() {
    let (s, _) = recorded();
    let trace = chrome_export(&s.path);
    let events = trace["traceEvents"].as_array().unwrap();
    let spans: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(spans.len(), 200);
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["name"] == "thread_name"));
    // Each child lies inside its parent, on the same thread's track.
    for child in spans.iter().filter(|e| e["name"] == "query") {
        let parent = spans
            .iter()
            .find(|p| p["args"]["span_id"] == child["args"]["parent_id"])
            .expect("parent exported");
        let (ts, dur) = (
            child["ts"].as_f64().unwrap(),
            child["dur"].as_f64().unwrap(),
        );
        let (pts, pdur) = (
            parent["ts"].as_f64().unwrap(),
            parent["dur"].as_f64().unwrap(),
        );
        assert!(pts <= ts && ts + dur <= pts + pdur, "{child} in {parent}");
        assert_eq!(child["tid"], parent["tid"]);
    }

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("spans.csv");
    ok(
        &s.path,
        &["export", "--format", "csv", "-o", csv.to_str().unwrap()],
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 201);
    assert!(text.starts_with("span_id,parent_id,trace_id,name,"));

    let jsonl = dir.path().join("spans.jsonl");
    let trace = json(&s.path, &["tree", "--last"])["trace_id"].clone();
    let trace_id = trace.to_string();
    ok(
        &s.path,
        &[
            "export",
            "--format",
            "jsonl",
            "--trace",
            &trace_id,
            "-o",
            jsonl.to_str().unwrap(),
        ],
    );
    let lines: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["trace_id"] == trace));
}

#[test]
fn stats_and_resources_report_the_file() {
    let (s, _) = recorded();
    let stats = json(&s.path, &["stats"]);
    assert_eq!(stats["written"], 200);
    assert_eq!(stats["dropped"], 0);
    assert_eq!(stats["errors_written"], 10);
    let partitions = stats["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 2);
    assert_eq!(partitions[0]["table"], "spans_2026112210");
    assert_eq!(partitions[0]["rows"], 200);
    assert!(partitions[0]["bytes"].as_i64().unwrap() > 0);
    assert_eq!(partitions[1]["table"], "resource_samples_2026112210");
    assert_eq!(partitions[1]["rows"], 3);
    assert!(ok(&s.path, &["stats"]).contains("spans_2026112210"));

    let resources = json(&s.path, &["resources"]);
    assert_eq!(resources["samples"], 3);
    let process = &resources["processes"][0];
    assert_eq!(process["pid"], std::process::id());
    assert_eq!(process["cpu_percent"]["min"], 10.0);
    assert_eq!(process["cpu_percent"]["mean"], 20.0);
    assert_eq!(process["cpu_percent"]["max"], 30.0);
    assert_eq!(process["rss_bytes"]["max"], (300u64 << 20) as f64);
    let text = ok(&s.path, &["resources"]);
    assert!(
        text.contains("3 samples") && text.contains("300.0 MiB"),
        "{text}"
    );
    assert!(
        text.contains("▁") && text.contains("█"),
        "a sparkline: {text}"
    );

    // A file without samples says so (one session at a time).
    drop(s);
    let quiet = session_with(|c| c.resource_interval(Duration::ZERO));
    drop(EnteredSpan::new(&QUERY));
    quiet.guard.flush();
    assert_eq!(json(&quiet.path, &["resources"])["samples"], 0);
    assert!(ok(&quiet.path, &["resources"]).contains("no resource samples"));
}

#[test]
fn tail_follows_spans_as_they_are_written() {
    let clock = Clock::starting_at(real_now() - 120_000_000_000);
    let s = session_with(|c| c.clock(clock.clone()));
    // A span that started two minutes before the tail and ends after it
    // started is news too.
    let long = EnteredSpan::new(&HANDLE);
    clock.set(real_now());
    // Write only once the tail has started following.
    let tail = following(
        &s.path,
        &["--json", "tail", "--max", "5", "--interval-ms", "20"],
    );
    for i in 0..3 {
        let _handle = EnteredSpan::new(&HANDLE);
        if i == 1 {
            EnteredSpan::new(&QUERY).record_error("timeout");
        }
    }
    drop(long);
    s.guard.flush();
    let out = tail.wait_with_output().unwrap();
    assert!(out.status.success());
    let spans: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(spans.len(), 5);
    assert!(spans
        .iter()
        .any(|s| s["name"] == "query" && s["error"] == "timeout"));
    assert!(spans
        .iter()
        .any(|s| s["duration_ns"].as_i64().unwrap() >= 120_000_000_000));
}

#[test]
fn deep_trees_and_async_spans_export_and_print() {
    static FETCH: Callsite =
        Callsite::new("fetch", "app::io", "io", "src/io.rs", 7, SpanKind::Async);
    let s = session_with(|c| c);
    // 5,000 levels of recursion.
    let mut guards: Vec<EnteredSpan> = (0..5_000).map(|_| EnteredSpan::new(&QUERY)).collect();
    let mut fetch = monitor_runtime::Span::new(&FETCH);
    drop(fetch.enter());
    fetch.end();
    while guards.pop().is_some() {}
    s.guard.flush();

    let text = ok(&s.path, &["tree", "--last"]);
    assert_eq!(text.lines().count(), 1 + 5_001);
    assert!(
        text.contains("[+4967] query"),
        "deep levels are marked, not indented"
    );
    let tree = json(&s.path, &["tree", "--last"]);
    assert_eq!(tree["spans"], 5_001);

    let trace = chrome_export(&s.path);
    let events = trace["traceEvents"].as_array().unwrap();
    let (begin, end): (Vec<&Value>, Vec<&Value>) = (
        events.iter().filter(|e| e["ph"] == "b").collect(),
        events.iter().filter(|e| e["ph"] == "e").collect(),
    );
    assert_eq!(
        (begin.len(), end.len()),
        (1, 1),
        "an async span is a b/e pair"
    );
    assert_eq!(begin[0]["id"], end[0]["id"]);
    assert_eq!(begin[0]["name"], "fetch");
    // Ids are strings: JSON readers hold numbers as doubles.
    assert!(begin[0]["args"]["span_id"].is_string());
    assert_eq!(events.iter().filter(|e| e["ph"] == "X").count(), 5_000);
    // Times count from the first span, so they keep their precision.
    assert!(events.iter().all(|e| e["ts"].as_f64().unwrap_or(0.0) < 1e9));
}

#[test]
fn bad_input_is_a_clear_error_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&str], expected: &str| {
        let out = monitor(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    };

    let missing = dir.path().join("absent.db");
    fails(
        &["--db", missing.to_str().unwrap(), "summary"],
        "absent.db: no such file",
    );
    assert!(!missing.exists(), "the CLI must not create the file");

    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE spans (x INTEGER)")
        .unwrap();
    fails(
        &["--db", foreign.to_str().unwrap(), "stats"],
        "not a monitor database",
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 4096]).unwrap();
    fails(
        &["--db", garbage.to_str().unwrap()],
        "not a readable SQLite database",
    );

    // The window is checked before the file.
    fails(
        &[
            "--db",
            missing.to_str().unwrap(),
            "summary",
            "--since",
            "3 weeks",
        ],
        "bad time window `3 weeks`",
    );

    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, "[queue]\ncapcity = 5\n").unwrap();
    fails(
        &["--config", config.to_str().unwrap(), "summary"],
        "queue.capcity",
    );

    std::fs::write(
        &config,
        format!("db_path = {:?}\n", missing.to_str().unwrap()),
    )
    .unwrap();
    fails(
        &["--config", config.to_str().unwrap(), "errors"],
        "absent.db: no such file",
    );

    let (s, _) = recorded();
    fails(
        &["--db", s.path.to_str().unwrap(), "tree", "12345"],
        "no trace 12345",
    );
    fails(
        &[
            "--db",
            s.path.to_str().unwrap(),
            "tree",
            "--last",
            "--name",
            "nothing",
        ],
        "no span named `nothing`",
    );
}

#[cfg(unix)]
#[test]
fn tail_stops_cleanly_on_ctrl_c() {
    let s = session_with(|c| c);
    let mut tail = following(&s.path, &["tail"]);
    let killed = Command::new("kill")
        .args(["-INT", &tail.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tail.wait().unwrap();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends the tail normally");
}

#[test]
fn retention_drops_old_partitions_and_dry_run_only_reports() {
    const HOUR: u64 = 3_600_000_000_000;
    let now = real_now();
    let clock = Clock::starting_at(now - 10 * HOUR);
    let s = session_with(|c| c.clock(clock.clone()).resource_interval(Duration::ZERO));
    for hours_ago in (0..=10).rev() {
        clock.set(now - hours_ago * HOUR);
        for _ in 0..4 {
            drop(EnteredSpan::new(&QUERY));
        }
    }
    s.guard.flush();
    let partitions = || {
        json(&s.path, &["stats"])["partitions"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(partitions(), 11);

    let dry = json(&s.path, &["retention", "--dry-run", "--hours", "6"]);
    assert_eq!(dry["dry_run"], true);
    // Hours that ended more than 6 hours ago: 4 (or 3 right at an hour's start).
    let expired = dry["partitions"].as_array().unwrap().len();
    assert!((3..=4).contains(&expired), "{dry:#}");
    assert_eq!(dry["rows"], 4 * expired as u64);
    assert_eq!(partitions(), 11, "a dry run changes nothing");
    let text = ok(&s.path, &["retention", "--dry-run", "--hours", "6"]);
    assert!(
        text.contains(&format!("would drop {expired} partitions")),
        "{text}"
    );

    let done = json(&s.path, &["retention", "--hours", "6"]);
    assert_eq!(done["partitions"], dry["partitions"]);
    assert_eq!(partitions(), 11 - expired);
    let summary = json(&s.path, &["summary"]);
    assert_eq!(
        function(&summary, "query")["calls"],
        4 * (11 - expired) as u64
    );

    for hours in ["0", "-3"] {
        let path = s.path.to_str().unwrap();
        let out = monitor(&["--db", path, "retention", "--hours", hours]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("retention.hours"), "{stderr}");
    }
}

#[test]
fn stats_shows_a_spill_waiting_then_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("monitor.db");
    {
        let s = session_with(|c| c.db_path(&path).resource_interval(Duration::ZERO));
        drop(EnteredSpan::new(&QUERY));
        s.guard.flush();
        s.guard.__with_writer_connection(|c| {
            c.execute_batch("PRAGMA query_only = 1").unwrap();
        });
        for _ in 0..40 {
            drop(EnteredSpan::new(&QUERY));
        }
        // Dropped while the database refuses: 40 spans wait in the spill file.
    }
    let stats = json(&path, &["stats"]);
    assert_eq!(stats["written"], 1);
    assert_eq!(stats["spilled"], 0, "the counts are in the spill file too");
    assert!(
        stats["spill_file"]["lines"].as_i64().unwrap() >= 40,
        "{stats:#}"
    );
    let text = ok(&path, &["stats"]);
    assert!(text.contains("-spill.jsonl"), "{text}");

    // The next run replays it.
    let s = session_with(|c| c.db_path(&path).resource_interval(Duration::ZERO));
    s.guard.flush();
    drop(s);
    let stats = json(&path, &["stats"]);
    assert_eq!(
        (&stats["written"], &stats["spilled"], &stats["replayed"]),
        (&Value::from(1), &Value::from(40), &Value::from(40))
    );
    assert_eq!(stats["spill_file"]["lines"], 0);
    let kinds: Vec<&str> = stats["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["spilling"]);
    let text = ok(&path, &["stats"]);
    assert!(
        text.contains("spilling") && text.contains("readonly database"),
        "{text}"
    );
}

static QUOTED: Callsite = Callsite::new(
    "it's \"x\"'); DROP TABLE spans; --",
    "app::odd",
    "g'roup\"; DELETE FROM callsites; --",
    "src/odd.rs",
    7,
    SpanKind::Sync,
);

#[test]
fn names_with_quotes_and_sql_are_stored_and_shown_verbatim() {
    let s = session_with(|c| c.resource_interval(Duration::ZERO));
    let mut span = EnteredSpan::new(&QUOTED);
    span.record_error("bad ' \" ; DROP TABLE spans");
    drop(span);
    s.guard.flush();
    let summary = json(&s.path, &["summary"]);
    let row = function(&summary, QUOTED.name());
    assert_eq!(row["calls"], 1);
    let grouped = json(&s.path, &["summary", "--group", QUOTED.group()]);
    assert_eq!(function(&grouped, QUOTED.name())["group"], QUOTED.group());
    let errors = json(&s.path, &["errors"]);
    assert_eq!(errors[0]["error"], "bad ' \" ; DROP TABLE spans");
    assert_eq!(errors[0]["name"], QUOTED.name());
    let text = ok(&s.path, &["errors", "--name", QUOTED.name()]);
    assert!(text.contains("DROP TABLE spans"), "{text}");
}

static CONTROLLING: Callsite = Callsite::new(
    "retitle\u{1b}]0;owned\u{7}",
    "app::odd",
    "app::odd",
    "src/odd.rs",
    9,
    SpanKind::Sync,
);

#[test]
fn control_characters_in_stored_text_are_escaped_for_people_and_exact_in_json() {
    let s = session_with(|c| c.resource_interval(Duration::ZERO));
    let mut span = EnteredSpan::new(&CONTROLLING);
    span.record_error("\u{1b}[2Jcleared\nfake line");
    drop(span);
    s.guard.flush();
    for args in [&["summary"][..], &["errors"], &["tree", "--last"]] {
        let text = ok(&s.path, args);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "monitor {args:?} printed a control character: {text:?}"
        );
        assert!(
            text.contains(r"retitle\u{1b}]0;owned\u{7}"),
            "{args:?}: {text}"
        );
    }
    let errors = ok(&s.path, &["errors"]);
    assert!(errors.contains(r"\u{1b}[2Jcleared\nfake line"), "{errors}");
    let json = json(&s.path, &["errors"]);
    assert_eq!(json[0]["name"], CONTROLLING.name());
    assert_eq!(json[0]["error"], "\u{1b}[2Jcleared\nfake line");
}
