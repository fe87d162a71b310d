//! `monitor check` and `monitor alerts` end to end: `[[alerts]]` rules in a
//! config file, evaluated over files written in the test with known
//! durations (a movable clock set a few minutes in the past, so that the
//! spans fall inside the rules' windows ending now).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::requests::{real_now, requests, MS};
use common::{monitor_ok, monitor_on, rule_states, session_with, Session};
use monitor_runtime::resources::{ResourceReading, ScriptedSampler};
use monitor_runtime::{Clock, EnteredSpan};
use serde_json::Value;

const MIN: u64 = 60_000_000_000;
const HOUR: u64 = 60 * MIN;

/// `requests` (query: i ms for i in 1..=100, every 10th an error; handle:
/// i + 8 ms, no error) starting 4 minutes ago, and resource samples of
/// 300 MiB.
fn recorded() -> Session {
    let clock = Clock::starting_at(real_now() - 4 * MIN);
    let readings = (0..3).map(|_| ResourceReading::new(Some(5.0), Some(300 << 20)));
    let s = session_with(|c| {
        c.clock(clock.clone())
            .resource_interval(Duration::from_secs(3600))
            .resource_sampler(ScriptedSampler::new(readings))
    });
    s.guard.sample_resources();
    requests(&clock, &s.guard);
    s
}

/// A config file holding `rules` (TOML), in the session's directory.
fn config(s: &Session, rules: &str) -> PathBuf {
    let path = s.path.with_file_name("monitor.toml");
    std::fs::write(&path, rules).unwrap();
    path
}

/// One `[[alerts]]` table.
fn rule(name: &str, body: &str) -> String {
    format!("[[alerts]]\nname = \"{name}\"\nwindow = \"5m\"\n{body}\n")
}

fn monitor(db: &Path, config: &Path, args: &[&str]) -> Output {
    monitor_on(
        db,
        &[&["--config", config.to_str().unwrap()], args].concat(),
    )
}

/// `monitor check --json`: its exit code and each rule by name.
fn check(s: &Session, rules: &str, extra: &[&str]) -> (i32, Vec<Value>) {
    let out = monitor(
        &s.path,
        &config(s, rules),
        &[&["--json", "check"], extra].concat(),
    );
    let code = out.status.code().unwrap();
    assert!(
        code == 0 || code == 1,
        "exit {code}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    (code, json["rules"].as_array().unwrap().clone())
}

fn state(rules: &[Value], name: &str) -> (String, Value) {
    let rule = rules
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("{name} in {rules:#?}"));
    (
        rule["state"].as_str().unwrap().to_owned(),
        rule["value"].clone(),
    )
}

/// `value` (ns) is `ms` milliseconds, give or take a millisecond of real time.
fn about_ms(value: &Value, ms: i64) -> bool {
    let ns = value.as_f64().unwrap() as i64;
    (ms * MS..ms * MS + MS).contains(&ns)
}

#[test]
fn every_rule_kind_fires_above_its_threshold_and_not_below() {
    let s = recorded();
    // Each metric twice: a threshold just under the value, which fires, and
    // one over it, which does not.
    // Durations only grow with the real time a span takes (the clock runs
    // at real speed between moves): the `ok` thresholds leave 20 ms for it.
    let cases = [
        ("p50", "49ms", "70ms", 50),
        ("p95", "94ms", "115ms", 95),
        ("p99", "98ms", "119ms", 99),
        ("max", "99ms", "120ms", 100),
    ];
    let mut rules = String::new();
    for (metric, under, over, _) in cases {
        let body = format!("fn = \"query\"\nmetric = \"{metric}\"\nop = \">\"");
        rules += &rule(
            &format!("{metric} fires"),
            &format!("{body}\nthreshold = \"{under}\""),
        );
        rules += &rule(
            &format!("{metric} ok"),
            &format!("{body}\nthreshold = \"{over}\""),
        );
    }
    for (name, body) in [
        (
            "error_rate fires",
            "fn = \"query\"\nmetric = \"error_rate\"\nop = \">\"\nthreshold = 0.05",
        ),
        (
            "error_rate ok",
            "fn = \"query\"\nmetric = \"error_rate\"\nop = \">\"\nthreshold = \"15%\"",
        ),
        (
            "clean handler",
            "fn = \"handle\"\nmetric = \"error_rate\"\nop = \">\"\nthreshold = 0",
        ),
        (
            "calls fires",
            "group = \"db\"\nmetric = \"calls\"\nop = \"<\"\nthreshold = 101",
        ),
        (
            "calls ok",
            "group = \"db\"\nmetric = \"calls\"\nop = \"<\"\nthreshold = 100",
        ),
        (
            "all calls",
            "metric = \"calls\"\nop = \">\"\nthreshold = 199",
        ),
        (
            "rss fires",
            "metric = \"rss\"\nop = \">\"\nthreshold = \"256MiB\"",
        ),
        (
            "rss ok",
            "metric = \"rss\"\nop = \">\"\nthreshold = \"512MiB\"",
        ),
        (
            "by module path",
            "fn = \"app::db::query\"\nmetric = \"max\"\nop = \">\"\nthreshold = \"99ms\"",
        ),
        (
            "min_calls met",
            "fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"98ms\"\nmin_calls = 100",
        ),
    ] {
        rules += &rule(name, body);
    }
    let (code, evaluated) = check(&s, &rules, &[]);
    assert_eq!(code, 1, "some rules fire");
    for (metric, _, _, ms) in cases {
        let (fires, value) = state(&evaluated, &format!("{metric} fires"));
        assert_eq!(fires, "firing", "{metric}");
        assert!(about_ms(&value, ms), "{metric}: {value}");
        assert_eq!(
            state(&evaluated, &format!("{metric} ok")).0,
            "ok",
            "{metric}"
        );
    }
    let expect = |name: &str, want: &str, value: f64| {
        let (got, v) = state(&evaluated, name);
        assert_eq!(got, want, "{name}");
        assert!((v.as_f64().unwrap() - value).abs() < 1e-9, "{name}: {v}");
    };
    expect("error_rate fires", "firing", 0.1);
    expect("error_rate ok", "ok", 0.1);
    expect("clean handler", "ok", 0.0);
    expect("calls fires", "firing", 100.0);
    expect("calls ok", "ok", 100.0);
    expect("all calls", "firing", 200.0);
    expect("rss fires", "firing", (300 << 20) as f64);
    expect("rss ok", "ok", (300 << 20) as f64);
    assert_eq!(state(&evaluated, "by module path").0, "firing");
    assert_eq!(state(&evaluated, "min_calls met").0, "firing");
    let query_rule = evaluated.iter().find(|r| r["rule"] == "p99 fires").unwrap();
    assert_eq!(query_rule["calls"], 100);
    assert_eq!(query_rule["threshold"], 98e6);

    // The table a person reads, and an exit code of 0 once nothing fires.
    let quiet = rule(
        "p99 ok",
        "fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"1s\"",
    );
    let out = monitor(&s.path, &config(&s, &quiet), &["check"]);
    assert_eq!(out.status.code(), Some(0));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table.lines().find(|l| l.contains("p99 ok")).expect("a row");
    assert!(
        row.contains("ok") && row.contains("99.") && row.contains("> 1.00 s"),
        "{row}"
    );
    assert!(table.contains("0 of 1 rules firing"), "{table}");
}

#[test]
fn windows_without_data_say_so_and_do_not_fire() {
    let s = recorded();
    let rules = [
        rule(
            "nothing",
            "fn = \"missing\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"1ms\"",
        ),
        rule(
            "few calls",
            "fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"1ms\"\nmin_calls = 101",
        ),
        rule(
            "no errors to rate",
            "fn = \"missing\"\nmetric = \"error_rate\"\nop = \">\"\nthreshold = 0",
        ),
        // Zero calls is a value: a job that stopped running fires.
        rule(
            "stopped",
            "fn = \"missing\"\nmetric = \"calls\"\nop = \"<\"\nthreshold = 1",
        ),
    ]
    .concat();
    let (code, evaluated) = check(&s, &rules, &[]);
    assert_eq!(code, 1);
    for name in ["nothing", "few calls", "no errors to rate"] {
        let (got, value) = state(&evaluated, name);
        assert_eq!((got.as_str(), value), ("no data", Value::Null), "{name}");
    }
    let few = evaluated.iter().find(|r| r["rule"] == "few calls").unwrap();
    assert_eq!(few["reason"], "100 calls, fewer than min_calls = 101");
    assert_eq!(state(&evaluated, "stopped"), ("firing".into(), 0.0.into()));

    // A file with no resource samples has no rss.
    let clock = Clock::starting_at(real_now() - MIN);
    drop(s);
    let bare = session_with(|c| c.clock(clock.clone()).resource_interval(Duration::ZERO));
    drop(EnteredSpan::new(&common::requests::QUERY));
    bare.guard.flush();
    let (code, evaluated) = check(
        &bare,
        &rule("rss", "metric = \"rss\"\nop = \">\"\nthreshold = 1"),
        &[],
    );
    assert_eq!(code, 0);
    assert_eq!(state(&evaluated, "rss").0, "no data");
}

#[test]
fn a_partition_missing_from_the_middle_of_the_window_is_read_as_it_is() {
    // One query in each of three hours; the middle hour's table is gone.
    let now = real_now();
    let clock = Clock::starting_at(now - 2 * HOUR - HOUR / 2);
    let s = session_with(|c| c.clock(clock.clone()));
    for hours_ago in [2, 1, 0] {
        clock.set(now - hours_ago * HOUR - 10 * MIN);
        let span = EnteredSpan::new(&common::requests::QUERY);
        clock.advance(Duration::from_millis(10 * (hours_ago + 1)));
        drop(span);
    }
    s.guard.flush();
    let tables: Vec<String> = {
        let conn = rusqlite::Connection::open(&s.path).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'spans_*' ORDER BY name")
            .unwrap();
        let names = stmt.query_map([], |r| r.get(0)).unwrap();
        names.collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(tables.len(), 3, "{tables:?}");
    rusqlite::Connection::open(&s.path)
        .unwrap()
        .execute_batch(&format!("DROP TABLE \"{}\"", tables[1]))
        .unwrap();
    let three_hours = |name: &str, body: &str| {
        format!(
            "[[alerts]]\nname = \"{name}\"\nwindow = \"3h\"\nfn = \"query\"\nop = \">\"\n{body}\n"
        )
    };
    let rules = three_hours("calls", "metric = \"calls\"\nthreshold = 0")
        + &three_hours("max", "metric = \"max\"\nthreshold = \"25ms\"");
    let (_, evaluated) = check(&s, &rules, &[]);
    assert_eq!(
        state(&evaluated, "calls").1,
        2.0,
        "the first and last hours"
    );
    let (fires, max) = state(&evaluated, "max");
    assert_eq!(fires, "firing");
    assert!(about_ms(&max, 30), "{max}");
}

#[test]
fn record_keeps_each_change_of_state_and_alerts_lists_them() {
    let s = recorded();
    let slow = |threshold: &str| {
        rule(
            "slow queries",
            &format!("fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"{threshold}\""),
        )
    };
    let gone = rule(
        "gone",
        "fn = \"missing\"\nmetric = \"max\"\nop = \">\"\nthreshold = \"1ms\"",
    );
    // Firing, firing again (no change), then ok; `gone` is `no data` once.
    check(&s, &(slow("50ms") + &gone), &["--record"]);
    check(&s, &(slow("50ms") + &gone), &["--record"]);
    let (code, _) = check(&s, &(slow("1s") + &gone), &["--record"]);
    assert_eq!(code, 0);

    let events: Value = serde_json::from_str(&monitor_ok(&s.path, &["--json", "alerts"])).unwrap();
    let seen = rule_states(&events);
    assert_eq!(
        seen,
        [
            ("slow queries", "firing"),
            ("gone", "no data"),
            ("slow queries", "ok")
        ]
    );
    let first = &events[0];
    assert!(about_ms(&first["value"], 99), "{first}");
    assert_eq!(first["threshold"], 50e6);
    assert_eq!(first["metric"], "p99");
    assert!(events[2]["ts_ns"].as_i64() >= first["ts_ns"].as_i64());

    let only: Value = serde_json::from_str(&monitor_ok(
        &s.path,
        &["--json", "alerts", "--rule", "gone"],
    ))
    .unwrap();
    assert_eq!(only.as_array().unwrap().len(), 1);
    let table = monitor_ok(&s.path, &["alerts"]);
    assert!(
        table.contains("slow queries") && table.contains("firing"),
        "{table}"
    );
}

#[test]
fn config_and_file_errors_exit_with_2_and_say_what_is_wrong() {
    let s = recorded();
    let run = |rules: &str| {
        let out = monitor(&s.path, &config(&s, rules), &["check"]);
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    for (rules, key, why) in [
        (rule("r", "metric = \"p99\"\nop = \">\"\nthreshold = 0.5"), "alerts[0].threshold", "250ms"),
        (rule("r", "metric = \"p98\"\nop = \">\"\nthreshold = \"1s\""), "alerts[0].metric", "p99"),
        (rule("r", "metric = \"p99\"\nop = \"=\"\nthreshold = \"1s\""), "alerts[0].op", "`>`"),
        (rule("r", "metric = \"p99\"\nop = \">\"\nthreshold = \"1s\"\nfn = \"f\"\ngroup = \"g\""), "alerts[0].group", "not both"),
        (rule("r", "metric = \"p99\"\nop = \">\"\nthreshold = \"1s\"\nlimit = 3"), "alerts[0].limit", "unknown field"),
        ("[[alerts]]\nname = \"r\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"1s\"\nwindow = \"5 parsecs\"\n".into(), "alerts[0].window", "\"5m\""),
    ] {
        let (code, stderr) = run(&rules);
        assert_eq!(code, Some(2), "{rules}: {stderr}");
        assert!(stderr.contains(&format!("`{key}`")), "{rules}: {stderr}");
        assert!(stderr.contains("rule \"r\"") && stderr.contains(why), "{rules}: {stderr}");
    }
    let (code, stderr) = run("db_path = \"x.db\"\n");
    assert_eq!(code, Some(2));
    assert!(stderr.contains("no [[alerts]] rules"), "{stderr}");

    let fine = rule("r", "metric = \"calls\"\nop = \">\"\nthreshold = 1");
    let cfg = config(&s, &fine);
    let missing = s.path.with_file_name("nowhere.db");
    let out = monitor(&missing, &cfg, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn record_works_on_a_copy_in_rollback_journal_mode() {
    // `VACUUM INTO` copies (and retention's archives) are not in WAL mode:
    // the check's own read snapshot must not lock its write out.
    let s = recorded();
    let copy = s.path.with_file_name("copy.db");
    rusqlite::Connection::open(&s.path)
        .unwrap()
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    let rules = rule(
        "slow",
        "fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"50ms\"",
    );
    let started = std::time::Instant::now();
    let out = monitor(&copy, &config(&s, &rules), &["check", "--record"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "it waited for a lock"
    );
    let events: Value = serde_json::from_str(&monitor_ok(&copy, &["--json", "alerts"])).unwrap();
    assert_eq!(events[0]["state"], "firing");
}

#[test]
fn an_alert_events_table_of_another_shape_is_completed_or_refused() {
    let s = recorded();
    let rules = rule(
        "slow",
        "fn = \"query\"\nmetric = \"p99\"\nop = \">\"\nthreshold = \"50ms\"",
    );
    // The issue's four columns, with a row of its own.
    let conn = rusqlite::Connection::open(&s.path).unwrap();
    conn.execute_batch(
        "CREATE TABLE alert_events (ts_ns INTEGER, rule TEXT, state TEXT, value REAL);
         INSERT INTO alert_events VALUES (1, 'old rule', 'firing', 2.5);",
    )
    .unwrap();
    check(&s, &rules, &["--record"]);
    let events: Value = serde_json::from_str(&monitor_ok(&s.path, &["--json", "alerts"])).unwrap();
    assert_eq!(events[0]["rule"], "old rule");
    assert_eq!(events[0]["metric"], Value::Null);
    assert_eq!(events[1]["rule"], "slow");
    assert_eq!(events[1]["metric"], "p99");

    // Without a column every row needs: a message naming it, exit 2.
    conn.execute_batch(
        "DROP TABLE alert_events; CREATE TABLE alert_events (ts_ns INTEGER, rule TEXT)",
    )
    .unwrap();
    let out = monitor(&s.path, &config(&s, &rules), &["check", "--record"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no column `state`"), "{stderr}");
    let out = monitor(&s.path, &config(&s, &rules), &["alerts"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no column `state`"));
}

#[test]
fn a_name_with_colons_is_matched_whole_too() {
    static GET: monitor_runtime::Callsite = monitor_runtime::Callsite::new(
        "Cache::get",
        "app::cache",
        "cache",
        "src/cache.rs",
        7,
        monitor_runtime::SpanKind::Sync,
    );
    let clock = Clock::starting_at(real_now() - MIN);
    let s = session_with(|c| c.clock(clock.clone()).resource_interval(Duration::ZERO));
    for _ in 0..3 {
        drop(EnteredSpan::new(&GET));
    }
    s.guard.flush();
    let calls = |f: &str| {
        let body = format!("fn = \"{f}\"\nmetric = \"calls\"\nop = \">\"\nthreshold = 0");
        state(&check(&s, &rule("calls", &body), &[]).1, "calls").1
    };
    assert_eq!(calls("Cache::get"), 3.0);
    assert_eq!(calls("app::cache::Cache::get"), 3.0);
    assert_eq!(calls("cache::Cache::get"), 0.0);
}
