//! `monitor serve`'s API end to end: spans recorded through the runtime,
//! served by the binary on loopback, and the answers checked against the
//! file and against the CLI, which shares the read layer.

mod common;

use common::requests::{about_ms, function, real_now, MS};
use common::server::{recorded, recorded_with_clock, Server};
use common::{monitor_ok, record_alerts, rule_states, Session};
use monitor_runtime::{Callsite, EnteredSpan, SpanKind};
use serde_json::Value;

/// A count from the `spans` view, read with SQLite directly.
fn count(s: &Session, condition: &str) -> i64 {
    rusqlite::Connection::open(&s.path)
        .unwrap()
        .query_row(
            &format!("SELECT count(*) FROM spans WHERE {condition}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn the_summary_is_the_files_and_the_clis() {
    let s = recorded();
    let server = Server::start(&s.path);
    let api = server.json("/api/summary?since=1h");
    let query = function(&api["functions"], "query");
    assert_eq!(query["calls"], count(&s, "name = 'query'"));
    assert_eq!(query["calls"], 100);
    assert_eq!(
        query["errors"],
        count(&s, "name = 'query' AND status = 'error'")
    );
    assert_eq!(query["errors"], 10);
    assert_eq!(query["group"], "db");
    for (key, ms) in [
        ("p50_ns", 50),
        ("p95_ns", 95),
        ("p99_ns", 99),
        ("max_ns", 100),
    ] {
        assert!(about_ms(&query[key], ms), "{key}: {}", query[key]);
    }
    assert_eq!(api["spans"], 200);
    // The CLI reads through the same layer: the same figures, to the ns.
    let cli: Value = serde_json::from_str(&monitor_ok(
        &s.path,
        &["--json", "summary", "--since", "1h"],
    ))
    .unwrap();
    for name in ["handle", "query"] {
        assert_eq!(function(&api["functions"], name), function(&cli, name));
    }
    // A group keeps its functions only; a window before the spans has none.
    let db = server.json("/api/summary?since=1h&group=db");
    assert_eq!(db["functions"].as_array().unwrap().len(), 1);
    let before = server.json("/api/summary?since=2h&until=1h");
    assert_eq!(before["functions"], Value::Array(vec![]));
}

#[test]
fn traces_list_filter_and_open_whole() {
    let s = recorded();
    let server = Server::start(&s.path);
    let all = server.json("/api/traces?limit=1000");
    let traces = all["traces"].as_array().unwrap();
    assert_eq!(traces.len() as i64, count(&s, "parent_id IS NULL"));
    assert_eq!(traces.len(), 100);
    assert!(traces
        .iter()
        .all(|t| t["spans"] == 2 && t["root"] == "handle"));
    // Newest first: the 100th request leads: its 100 ms query (failed),
    // then 8 ms more.
    assert!(about_ms(&traces[0]["duration_ns"], 108));
    assert_eq!(traces[0]["status"], "error");
    let starts: Vec<i64> = traces
        .iter()
        .map(|t| t["start_ns"].as_i64().unwrap())
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let failed = server.json("/api/traces?status=error&limit=1000");
    assert_eq!(failed["traces"].as_array().unwrap().len(), 10);
    // Requests 95 to 100 last 103 ms or more.
    let slow = server.json(&format!("/api/traces?min_ns={}&limit=1000", 103 * MS));
    assert_eq!(slow["traces"].as_array().unwrap().len(), 6);
    let named = server.json("/api/traces?name=query&limit=5");
    assert_eq!(named["traces"].as_array().unwrap().len(), 5);
    let none = server.json("/api/traces?name=nobody");
    assert_eq!(none["traces"], Value::Array(vec![]));

    // One trace: both spans, linked, ids as decimal text.
    let id = traces[0]["trace_id"].as_str().unwrap();
    let trace = server.json(&format!("/api/trace/{id}"));
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let (root, child) = (&spans[0], &spans[1]);
    assert_eq!(root["name"], "handle");
    assert_eq!(root["span_id"], id);
    assert_eq!(root["parent_id"], Value::Null);
    assert_eq!(child["parent_id"], root["span_id"]);
    assert_eq!(child["trace_id"], id);
    assert_eq!(child["error"], "connection reset 100");
    assert_eq!(child["file"], "src/db.rs");
}

#[test]
fn a_function_page_has_its_figures_errors_and_neighbours() {
    let s = recorded();
    let server = Server::start(&s.path);
    let query = server.json("/api/fn/query");
    assert_eq!(query["stats"]["calls"], 100);
    assert_eq!(query["stats"]["errors"], 10);
    assert_eq!(query["sites"][0]["file"], "src/db.rs");
    assert_eq!(query["sites"][0]["line"], 40);
    let bins = query["histogram"].as_array().unwrap();
    let binned: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(binned, 100);
    // 1..=100 ms in 1-2-5 bins: (0.5 ms, 1 ms] has the 1 ms query, and so on.
    let bin = |le: i64| {
        bins.iter()
            .find(|b| b["le_ns"] == le)
            .map(|b| b["count"].clone())
    };
    assert_eq!(bin(2 * MS), Some(1.into()), "{bins:?}"); // 1.x ms
    assert_eq!(bin(100 * MS), Some(50.into()), "{bins:?}"); // 50.x to 99.x ms
    let errors = query["recent_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 10);
    assert_eq!(errors[0]["error"], "connection reset 100");
    assert_eq!(errors[9]["error"], "connection reset 10");
    assert_eq!(
        query["callers"],
        serde_json::json!([{"name": "handle", "calls": 100}])
    );
    assert_eq!(query["callees"], Value::Array(vec![]));
    let handle = server.json("/api/fn/handle");
    assert_eq!(
        handle["callees"],
        serde_json::json!([{"name": "query", "calls": 100}])
    );
    assert_eq!(handle["stats"]["errors"], 0);
}

#[test]
fn series_count_every_span_once_in_aligned_steps() {
    let s = recorded();
    let server = Server::start(&s.path);
    let series = server.json("/api/series?since=1h&step=60s");
    assert_eq!(series["step_ns"], 60_000_000_000u64);
    let buckets = series["buckets"].as_array().unwrap();
    let sum = |key: &str| -> u64 { buckets.iter().map(|b| b[key].as_u64().unwrap()).sum() };
    assert_eq!(sum("calls"), 200);
    assert_eq!(sum("errors"), 10);
    assert!(buckets
        .iter()
        .all(|b| b["ts_ns"].as_u64().unwrap() % 60_000_000_000 == 0));
    let query = server.json("/api/series?since=1h&step=60s&name=query");
    let calls: u64 = query["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls, 100);
}

#[test]
fn bad_requests_name_what_was_wrong_and_unknown_things_are_404() {
    let s = recorded();
    let server = Server::start(&s.path);
    for (path, named) in [
        ("/api/summary?since=1x", "`since`"),
        ("/api/summary?sinse=1h", "`sinse`"),
        ("/api/summary?since=1h&until=2h", "`until`"),
        ("/api/traces?limit=0", "`limit`"),
        ("/api/traces?status=broken", "`status`"),
        ("/api/traces?min_ns=-1", "`min_ns`"),
        ("/api/series?step=0s", "`step`"),
        ("/api/series?since=7d&step=1s", "`step`"),
        ("/api/trace/abc", "`abc`"),
        ("/api/tail?after=soon", "`after`"),
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}: {}", response.body);
        assert!(
            response.error().contains(named),
            "{path}: {}",
            response.error()
        );
    }
    for path in [
        "/api/trace/12345",
        "/api/fn/nobody",
        "/api/series?name=nobody",
        "/nowhere",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 404, "{path}: {}", response.body);
        assert!(!response.error().is_empty());
    }
}

#[test]
fn pages_forbid_inline_script_and_ship_their_assets() {
    let s = recorded();
    let server = Server::start(&s.path);
    for page in [
        "/",
        "/traces",
        "/trace/1",
        "/fn/query",
        "/resources",
        "/health",
        "/live",
    ] {
        let response = server.get(page);
        assert_eq!(response.status, 200, "{page}");
        let csp = response.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(response.body.contains("/assets/app.js"));
    }
    for asset in [
        "/assets/app.js",
        "/assets/style.css",
        "/assets/uplot/uPlot.iife.min.js",
    ] {
        let response = server.get(asset);
        assert_eq!(response.status, 200, "{asset}");
        assert!(response.body.len() > 1000, "{asset}");
    }
    let licence = server.get("/assets/uplot/LICENSE");
    assert!(licence.body.contains("MIT License"));
}

#[test]
fn metrics_are_openmetrics_text_of_the_files_figures() {
    // A name is the program's text: quotes and a newline in it must not
    // break the scrape or forge a line.
    static ODD: Callsite = Callsite::new(
        "say \"hi\"\nfake_metric 1",
        "app",
        "app",
        "src/odd.rs",
        1,
        SpanKind::Sync,
    );
    let s = recorded();
    drop(EnteredSpan::new(&ODD));
    s.guard.flush();
    let server = Server::start(&s.path);
    let response = server.get("/metrics");
    assert_eq!(response.status, 200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = response.body;
    for line in [
        r#"monitor_function_spans{function="query",module="app::db"} 100"#,
        r#"monitor_function_errors{function="query",module="app::db"} 10"#,
        r#"monitor_function_spans{function="handle",module="app::http"} 100"#,
        r#"monitor_function_spans{function="say \"hi\"\nfake_metric 1",module="app"} 1"#,
        "# TYPE monitor_function_spans gauge",
        "monitor_records_written_total 201",
        "monitor_records_dropped_total 0",
        "# EOF",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    assert!(
        !text.lines().any(|l| l.starts_with("fake_metric")),
        "{text}"
    );
}

#[test]
fn the_server_reads_and_never_writes() {
    let s = recorded();
    drop(s.guard);
    let before = std::fs::read(&s.path).unwrap();
    let server = Server::start(&s.path);
    for path in [
        "/api/summary",
        "/api/traces",
        "/api/fn/query",
        "/api/stats",
        "/api/resources",
        "/api/tail",
        "/metrics",
    ] {
        assert_eq!(server.get(path).status, 200, "{path}");
    }
    drop(server);
    assert!(
        std::fs::read(&s.path).unwrap() == before,
        "the file changed"
    );

    // A missing file is the CLI's error, before anything is served.
    let missing = s.path.with_file_name("missing.db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args([
            "serve",
            "--db",
            missing.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.db: no such file"), "{stderr}");
}

#[test]
fn stats_and_tail_follow_the_writer() {
    let (s, clock) = recorded_with_clock();
    let server = Server::start(&s.path);
    let stats = server.json("/api/stats?since=1h");
    assert_eq!(stats["written"], 200);
    assert_eq!(stats["dropped"], 0);
    assert!(!stats["history"].as_array().unwrap().is_empty());
    // A span ended now is in the next poll after the watermark.
    let first = server.json("/api/tail");
    let watermark = first["watermark"].as_u64().unwrap();
    static LIVE: Callsite = Callsite::new("live", "app", "app", "src/live.rs", 1, SpanKind::Sync);
    clock.set(real_now());
    drop(EnteredSpan::new(&LIVE));
    s.guard.flush();
    let next = server.json(&format!("/api/tail?after={watermark}"));
    let names: Vec<&str> = next["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"live"), "{names:?}");
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let s = recorded();
    let server = Server::start(&s.path);
    assert_eq!(server.get("/api/stats").status, 200);
    let url = server.url.clone();
    let status = server.interrupt();
    assert_eq!(status.code(), Some(0), "Ctrl-C ends the server normally");
    assert!(
        ureq::get(&format!("{url}/api/stats")).call().is_err(),
        "still listening"
    );
}

#[test]
fn a_foreign_file_is_refused_with_the_clis_message() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let serve = std::process::Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args([
            "serve",
            "--db",
            foreign.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    let summary = std::process::Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args(["summary", "--db", foreign.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(1));
    let said = String::from_utf8_lossy(&serve.stderr);
    assert!(said.contains("not a monitor database"), "{said}");
    assert_eq!(said, String::from_utf8_lossy(&summary.stderr));
}

#[test]
fn health_says_which_partitions_the_next_retention_pass_drops() {
    const HOUR: u64 = 3_600_000_000_000;
    let (s, clock) = recorded_with_clock();
    // One span ten hours ago: past the default 6 hours, within 24.
    let ten_hours_ago = real_now() - 10 * HOUR;
    clock.set(ten_hours_ago);
    drop(EnteredSpan::new(&common::requests::QUERY));
    s.guard.flush();
    let old_table = {
        let stats = Server::start(&s.path).json("/api/stats");
        stats["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["hour_start_ns"] == ten_hours_ago / HOUR * HOUR)
            .expect("the old span's partition")["table"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // (table, dropped at the next pass) of every spans partition.
    let due = |server: &Server| -> Vec<(String, bool)> {
        let stats = server.json("/api/stats");
        let cutoff = stats["retention"]["cutoff_ns"].as_u64().unwrap();
        stats["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["table"].as_str().unwrap().starts_with("spans_"))
            .map(|p| {
                let start = p["hour_start_ns"].as_u64().unwrap();
                (
                    p["table"].as_str().unwrap().to_owned(),
                    start + HOUR <= cutoff,
                )
            })
            .collect()
    };
    let server = Server::start(&s.path);
    assert_eq!(server.json("/api/stats")["retention"]["hours"], 6);
    let by_default = due(&server);
    assert!(by_default.len() >= 2, "{by_default:?}");
    for (table, dropped) in &by_default {
        assert_eq!(*dropped, *table == old_table, "{by_default:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("monitor.toml");
    std::fs::write(&config, "[retention]\nhours = 24\n").unwrap();
    let server = Server::start_with(&s.path, &["--config", config.to_str().unwrap()]);
    assert_eq!(server.json("/api/stats")["retention"]["hours"], 24);
    assert!(due(&server).iter().all(|(_, dropped)| !dropped));
}

#[test]
fn a_request_for_another_host_is_refused() {
    // A page elsewhere that rebinds its name to 127.0.0.1 sends its own
    // name as Host; the user's browser must not read the file for it.
    let s = recorded();
    let server = Server::start(&s.path);
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let get = |host: &str| match ureq::get(&format!("{}/api/summary", server.url))
        .set("Host", host)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(get("evil.example"), 403);
    assert_eq!(get(&format!("evil.example:{port}")), 403);
    assert_eq!(get(&format!("localhost:{port}")), 200);
    assert_eq!(get(&format!("127.0.0.1:{port}")), 200);
}

#[test]
fn each_request_reads_one_snapshot_while_the_program_writes() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    // A function's page reads the file three times (its figures, its
    // spans, their neighbours); with writes landing meanwhile, only one
    // snapshot makes its call count and its histogram agree.
    let s = recorded();
    let server = Server::start(&s.path);
    let requests = AtomicUsize::new(0);
    let writing = AtomicBool::new(true);
    std::thread::scope(|scope| {
        // Bounded whatever the other side does: a test that fails must
        // not leave a writer filling the disk.
        scope.spawn(|| {
            for round in 0..2_000 {
                if round >= 20 && requests.load(Ordering::Relaxed) >= 10 {
                    break;
                }
                for _ in 0..200 {
                    drop(EnteredSpan::new(&common::requests::QUERY));
                }
                s.guard.flush();
            }
            writing.store(false, Ordering::Relaxed);
        });
        let mut seen = std::collections::BTreeSet::new();
        while writing.load(Ordering::Relaxed) {
            let f = server.json("/api/fn/query");
            let binned: u64 = f["histogram"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["count"].as_u64().unwrap())
                .sum();
            assert_eq!(f["stats"]["calls"].as_u64().unwrap(), binned);
            seen.insert(binned);
            requests.fetch_add(1, Ordering::Relaxed);
        }
        // The writes did land between requests.
        assert!(seen.len() > 1, "{seen:?}");
    });
}

#[test]
fn alerts_are_the_recorded_changes_of_state_with_each_rules_latest() {
    let s = recorded();
    let rule = |threshold: &str| {
        format!(
            "[[alerts]]\nname = \"slow queries\"\nfn = \"query\"\nmetric = \"p99\"\nop = \">\"\n\
             threshold = \"{threshold}\"\nwindow = \"1h\"\n\
             [[alerts]]\nname = \"errors\"\nmetric = \"error_rate\"\nop = \">\"\nthreshold = 0.01\nwindow = \"1h\"\n"
        )
    };
    let server = Server::start(&s.path);
    // Nothing recorded yet: no table, no events.
    let none = server.json("/api/alerts");
    assert_eq!(none, serde_json::json!({ "events": [], "latest": [] }));

    assert_eq!(record_alerts(&s.path, &rule("50ms")), 1);
    assert_eq!(record_alerts(&s.path, &rule("1s")), 1);
    let alerts = server.json("/api/alerts?since=1h");
    let events = rule_states(&alerts["events"]);
    assert_eq!(
        events,
        [
            ("slow queries", "firing"),
            ("errors", "firing"),
            ("slow queries", "ok")
        ]
    );
    let latest = rule_states(&alerts["latest"]);
    assert_eq!(latest, [("errors", "firing"), ("slow queries", "ok")]);
    // 10 failed queries among 200 spans (100 queries, 100 handlers).
    assert_eq!(alerts["latest"][0]["value"], 0.05);
    let p99 = alerts["events"][0]["value"].as_f64().unwrap();
    assert!((99e6..100e6).contains(&p99), "{p99}");
    // The same rows as the CLI's.
    let cli: Value = serde_json::from_str(&monitor_ok(&s.path, &["--json", "alerts"])).unwrap();
    assert_eq!(cli, alerts["events"]);
    // A window before they were recorded holds none of them; `latest` stays.
    let old = server.json("/api/alerts?since=3h&until=2h");
    assert_eq!(old["events"], serde_json::json!([]));
    assert_eq!(old["latest"], alerts["latest"]);

    // A table that lost a column every row needs: 503 naming it; the
    // health page's other figures are still served.
    rusqlite::Connection::open(&s.path)
        .unwrap()
        .execute_batch("ALTER TABLE alert_events DROP COLUMN state")
        .unwrap();
    let broken = server.get("/api/alerts");
    assert_eq!(broken.status, 503, "{}", broken.body);
    assert!(broken.body.contains("no column `state`"), "{}", broken.body);
    assert_eq!(server.get("/api/stats").status, 200);
}
