//! `monitor diff` end to end: the same workload in two windows (or two
//! files) is `same` everywhere; a function made 30% slower is `slower`, one
//! made 30% faster is `faster`. Durations are drawn from one seeded
//! distribution with noise and outliers, so each window is a different
//! sample of the same workload, as two hours of a real service are.

mod common;

use std::path::Path;
use std::time::Duration;

use common::requests::real_now;
use common::{monitor_on, session_with, Session};
use monitor_runtime::{Callsite, Clock, EnteredSpan, SpanKind};
use serde_json::Value;

const MIN: u64 = 60_000_000_000;
const HOUR: u64 = 60 * MIN;

macro_rules! callsites {
    ($($name:literal),*) => {
        [$(Callsite::new($name, "app::svc", "svc", "src/svc.rs", 1, SpanKind::Sync)),*]
    };
}

/// Ten functions of one workload, and three that change between windows.
static STEADY: [Callsite; 10] =
    callsites!("f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9");
static SLOWED: Callsite =
    Callsite::new("slowed", "app::svc", "svc", "src/svc.rs", 2, SpanKind::Sync);
static SPED_UP: Callsite = Callsite::new(
    "sped_up",
    "app::svc",
    "svc",
    "src/svc.rs",
    3,
    SpanKind::Sync,
);
static RARE: Callsite = Callsite::new("rare", "app::svc", "svc", "src/svc.rs", 4, SpanKind::Sync);
static OLD_ONLY: Callsite = Callsite::new(
    "retired",
    "app::svc",
    "svc",
    "src/svc.rs",
    5,
    SpanKind::Sync,
);
static NEW_ONLY: Callsite = Callsite::new(
    "launched",
    "app::svc",
    "svc",
    "src/svc.rs",
    6,
    SpanKind::Sync,
);

/// A seeded xorshift: the same run every time, a different sample per seed.
struct Noise(u64);

impl Noise {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `base` ± 25%, and one call in 50 five times as long (a GC pause, a
    /// cold cache).
    fn duration(&mut self, base: Duration) -> Duration {
        let jitter = 0.75 + 0.5 * self.unit();
        let outlier = if self.unit() < 0.02 { 5.0 } else { 1.0 };
        base.mul_f64(jitter * outlier)
    }
}

/// `calls` spans of `site`, each `scale` times a noisy `base`.
fn calls(
    s: &Session,
    clock: &Clock,
    noise: &mut Noise,
    site: &'static Callsite,
    calls: usize,
    base: Duration,
    scale: f64,
) {
    for _ in 0..calls {
        let span = EnteredSpan::new(site);
        clock.advance(noise.duration(base).mul_f64(scale));
        drop(span);
        clock.advance(Duration::from_micros(100));
    }
    // The clock converts queued spans' times through its last 4,096 moves.
    s.guard.flush();
}

/// One window's workload from `start`: the steady functions at 1 to 10
/// ms, `slowed` and `sped_up` at 4 ms times their scales, `rare` 5 times.
fn workload(s: &Session, clock: &Clock, start: u64, seed: u64, slowed: f64, sped_up: f64) {
    clock.set(start);
    let mut noise = Noise(seed);
    for (i, site) in STEADY.iter().enumerate() {
        calls(
            s,
            clock,
            &mut noise,
            site,
            200,
            Duration::from_millis(i as u64 + 1),
            1.0,
        );
    }
    calls(
        s,
        clock,
        &mut noise,
        &SLOWED,
        200,
        Duration::from_millis(4),
        slowed,
    );
    calls(
        s,
        clock,
        &mut noise,
        &SPED_UP,
        200,
        Duration::from_millis(4),
        sped_up,
    );
    calls(
        s,
        clock,
        &mut noise,
        &RARE,
        5,
        Duration::from_millis(4),
        1.0,
    );
}

/// Two hours of the workload: two to one hour ago with seed 1, the last
/// hour with seed 2 and `slowed` 30% slower, `sped_up` 30% faster;
/// `retired` only in the first hour and `launched` only in the second.
fn two_hours() -> Session {
    let now = real_now();
    let clock = Clock::starting_at(now - 2 * HOUR + MIN);
    let s = session_with(|c| c.clock(clock.clone()));
    workload(&s, &clock, now - 2 * HOUR + MIN, 1, 1.0, 1.0);
    calls(
        &s,
        &clock,
        &mut Noise(3),
        &OLD_ONLY,
        50,
        Duration::from_millis(1),
        1.0,
    );
    workload(&s, &clock, now - HOUR + MIN, 2, 1.3, 0.7);
    calls(
        &s,
        &clock,
        &mut Noise(4),
        &NEW_ONLY,
        50,
        Duration::from_millis(1),
        1.0,
    );
    s.guard.flush();
    s
}

/// `monitor --json diff args`: the exit code and each function's verdict.
fn diff(db: &Path, args: &[&str]) -> (i32, Value) {
    let out = monitor_on(db, &[&["--json", "diff"], args].concat());
    let code = out.status.code().unwrap();
    assert!(code < 2, "{}", String::from_utf8_lossy(&out.stderr));
    (code, serde_json::from_slice(&out.stdout).unwrap())
}

fn verdicts(json: &Value) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["verdict"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    all.sort();
    all
}

fn function<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {json:#}"))
}

/// What every function but the changed ones should get.
fn expected(
    slowed: &str,
    sped_up: &str,
    retired: Option<&str>,
    launched: Option<&str>,
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = STEADY
        .iter()
        .map(|s| (s.name().to_owned(), "same".to_owned()))
        .collect();
    all.push(("slowed".into(), slowed.into()));
    all.push(("sped_up".into(), sped_up.into()));
    all.push(("rare".into(), "too few".into()));
    all.extend(retired.map(|v| ("retired".to_owned(), v.to_owned())));
    all.extend(launched.map(|v| ("launched".to_owned(), v.to_owned())));
    all.sort();
    all
}

#[test]
fn two_windows_of_one_workload_are_the_same_and_a_30_percent_change_is_found() {
    let s = two_hours();
    // The default: the last hour against the hour before it.
    let (code, json) = diff(&s.path, &[]);
    assert_eq!(code, 0, "no --fail-on");
    assert_eq!(
        verdicts(&json),
        expected("slower", "faster", Some("gone"), Some("new"))
    );
    let slowed = function(&json, "slowed");
    let change = slowed["p50_change_pct"].as_f64().unwrap();
    assert!((25.0..35.0).contains(&change), "{slowed:#}");
    assert!(slowed["p_value"].as_f64().unwrap() < 1e-6, "{slowed:#}");
    assert_eq!(slowed["before"]["calls"], 200);
    assert_eq!(slowed["after"]["calls"], 200);
    for site in &STEADY {
        let f = function(&json, site.name());
        let change = f["p50_change_pct"].as_f64().unwrap();
        assert!(change.abs() < 5.0, "{f:#}");
    }

    // The same windows spelled out, and CI's exit code.
    let (code, spelled) = diff(
        &s.path,
        &["--before", "2h..1h", "--after", "1h", "--fail-on", "slower"],
    );
    assert_eq!(code, 1, "a function got slower");
    assert_eq!(verdicts(&spelled), verdicts(&json));

    // The table a person reads.
    let out = monitor_on(&s.path, &["diff"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table.lines().find(|l| l.contains("slowed")).expect("a row");
    assert!(
        row.contains("slower") && row.contains("200 → 200") && row.contains("+"),
        "{row}"
    );
    assert!(table.contains("1 slower"), "{table}");
}

#[test]
fn a_baseline_file_is_compared_with_this_one() {
    let now = real_now();
    let dir = tempfile::tempdir().unwrap();
    let baseline = dir.path().join("before-deploy.db");
    {
        let clock = Clock::starting_at(now - 30 * MIN);
        let s = session_with(|c| c.clock(clock.clone()));
        workload(&s, &clock, now - 30 * MIN, 5, 1.0, 1.0);
        s.guard.flush();
        rusqlite::Connection::open(&s.path)
            .unwrap()
            .execute("VACUUM INTO ?1", [baseline.to_str().unwrap()])
            .unwrap();
    }
    let clock = Clock::starting_at(now - 20 * MIN);
    let s = session_with(|c| c.clock(clock.clone()));
    workload(&s, &clock, now - 20 * MIN, 6, 1.3, 0.7);
    s.guard.flush();

    let base = baseline.to_str().unwrap();
    let (code, json) = diff(&s.path, &["--baseline", base, "--fail-on", "slower"]);
    assert_eq!(code, 1);
    assert_eq!(verdicts(&json), expected("slower", "faster", None, None));
    assert!(
        json["before"]
            .as_str()
            .unwrap()
            .contains("before-deploy.db"),
        "{json}"
    );

    // Without a change, the same files pass CI.
    let (code, json) = diff(
        &s.path,
        &[
            "--baseline",
            base,
            "--fail-on",
            "slower",
            "--group",
            "nothing",
        ],
    );
    assert_eq!((code, json["functions"].as_array().unwrap().len()), (0, 0));
    // A looser bar on the change: 40% is more than either moved.
    let (code, json) = diff(&s.path, &["--baseline", base, "--min-change", "40"]);
    assert_eq!(code, 0);
    assert_eq!(verdicts(&json), expected("same", "same", None, None));
}

#[test]
fn bad_arguments_and_files_exit_with_2() {
    let s = two_hours();
    for (args, says) in [
        (vec!["--before", "1h..2h"], "`1h..2h`"),
        (vec!["--before", "2h", "--after", "1h"], "overlap"),
        (vec!["--after", "soon"], "`soon`"),
        (vec!["--alpha", "1.5"], "--alpha"),
        (vec!["--min-change", "-1"], "--min-change"),
        (vec!["--baseline", "/nonexistent/old.db"], "no such file"),
    ] {
        let out = monitor_on(&s.path, &[&["diff"], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
