//! `monitor serve`'s pages in a real browser: headless Chromium (Debian's
//! `chromium`) over the DevTools protocol, against a server on loopback
//! reading a file the runtime wrote. What the pages show is checked against
//! what was recorded; every page must leave the console clean.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use browser::{drawn, element, screenshot, text, texts, Chromium};
use common::requests::{real_now, HANDLE, QUERY};
use common::server::{recorded_with_clock, Server};
use common::{record_alerts, session_with};
use monitor_runtime::resources::{ResourceReading, ScriptedSampler};
use monitor_runtime::{Callsite, Clock, EnteredSpan, SpanKind};

fn runtime() -> tokio::runtime::Runtime {
    common::tokio_runtime()
}

#[test]
fn a_click_goes_from_the_overview_to_a_functions_error_to_its_trace_and_span() {
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let (s, _) = recorded_with_clock();
    let server = Server::start(&s.path);
    runtime().block_on(async {
        let browser = Chromium::launch(&chromium).await;
        let (page, problems) = browser.tab().await;
        // The spans are 20 minutes old: a 1-minute window has none, and
        // offers longer ones.
        page.goto(format!("{}/?since=1m", server.url))
            .await
            .unwrap();
        drawn(&page, "/").await;
        element(&page, "#no-spans a").await.click().await.unwrap();
        drawn(&page, "/").await;
        let at = page.url().await.unwrap().unwrap_or_default();
        assert!(at.ends_with("/?since=24h"), "{at}");
        // The window picker follows the address.
        let picked: String = page
            .evaluate("document.getElementById('window').value")
            .await
            .unwrap()
            .into_value()
            .unwrap();
        assert_eq!(picked, "24h");
        let row = "#functions tr[data-name=\"query\"]";
        // function, kind, calls, errors: the file's figures.
        assert_eq!(text(&page, &format!("{row} td:nth-child(3)")).await, "100");
        assert_eq!(text(&page, &format!("{row} td:nth-child(4)")).await, "10");
        assert_eq!(text(&page, &format!("{row} td:nth-child(5)")).await, "10.0");

        element(&page, &format!("{row} a"))
            .await
            .click()
            .await
            .unwrap();
        drawn(&page, "/fn/query").await;
        assert_eq!(text(&page, "#fn-calls").await, "100");
        let first_error = "#fn-errors tbody tr:first-child";
        assert_eq!(
            text(&page, &format!("{first_error} td:nth-child(3)")).await,
            "connection reset 100"
        );
        assert_eq!(
            texts(&page, "#fn-callers tbody td:first-child").await,
            ["handle"]
        );

        element(&page, &format!("{first_error} td:nth-child(4) a"))
            .await
            .click()
            .await
            .unwrap();
        element(&page, "body[data-ready^=\"/trace/\"]").await;
        assert_eq!(text(&page, "#span-count").await, "2");
        let names = texts(&page, ".wf-row .wf-name").await;
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(
            names[0].ends_with("handle") && names[1].ends_with("query"),
            "{names:?}"
        );

        page.find_elements(".wf-row").await.unwrap()[1]
            .click()
            .await
            .unwrap();
        let details = text(&page, "#details dl").await;
        assert!(details.contains("connection reset 100"), "{details}");
        assert!(details.contains("src/db.rs:40"), "{details}");
        assert_eq!(problems.all(), Vec::<String>::new());
        browser.close().await;
    });
}

/// Names, errors and fields are the program's data: markup in them must
/// show as text, and nothing in them may run.
#[test]
fn hostile_names_errors_and_fields_show_verbatim_and_nothing_runs() {
    const NAME: &str = "<script>document.title='pwned'</script>";
    const ERROR: &str = "<img src=x onerror=\"document.title='pwned'\">";
    const FIELD: &str = "\"};document.title='pwned'//";
    static HOSTILE: Callsite = Callsite::new(NAME, "app", "app", "src/x.rs", 1, SpanKind::Sync);
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let s = session_with(|c| c.resource_interval(Duration::ZERO));
    let trace = {
        let mut span = EnteredSpan::new(&HOSTILE);
        span.record("note", FIELD);
        // Past 2^53: a JavaScript number would round it.
        span.record("id", u64::MAX);
        span.record_error(ERROR);
        span.ids().unwrap().trace_id as i64
    };
    s.guard.flush();
    let server = Server::start(&s.path);
    runtime().block_on(async {
        let browser = Chromium::launch(&chromium).await;
        let (page, problems) = browser.tab().await;
        let name_path = format!("/fn/{}", urlencoding(NAME));
        for (path, ready) in [
            ("/".to_owned(), "/".to_owned()),
            (format!("/trace/{trace}"), format!("/trace/{trace}")),
            (name_path.clone(), name_path.clone()),
        ] {
            page.goto(format!("{}{path}", server.url)).await.unwrap();
            drawn(&page, &ready).await;
            let body = text(&page, "main").await;
            assert!(body.contains(NAME), "{path}: {body}");
            assert_eq!(page.get_title().await.unwrap().as_deref(), Some("monitor"));
            assert!(page
                .find_elements("main img, main script")
                .await
                .unwrap()
                .is_empty());
        }
        // The error in the function page, and the field in the span's details.
        page.goto(format!("{}{name_path}", server.url))
            .await
            .unwrap();
        drawn(&page, &name_path).await;
        assert_eq!(text(&page, "#fn-errors td:nth-child(3)").await, ERROR);
        page.goto(format!("{}/trace/{trace}", server.url))
            .await
            .unwrap();
        element(&page, ".wf-row").await.click().await.unwrap();
        let details = text(&page, "#details").await;
        assert!(
            details.contains(ERROR)
                && details.contains("document.title='pwned'//")
                && details.contains("18446744073709551615"),
            "{details}"
        );
        assert_eq!(page.get_title().await.unwrap().as_deref(), Some("monitor"));
        assert_eq!(problems.all(), Vec::<String>::new());
        browser.close().await;
    });
}

/// What `encodeURIComponent` makes of `text`, for the few characters used here.
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'!'
            | b'~'
            | b'*'
            | b'\''
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn a_trace_of_ten_thousand_spans_draws_only_what_is_seen_and_collapses() {
    static ROOT: Callsite = Callsite::new("batch", "app", "app", "src/batch.rs", 1, SpanKind::Sync);
    static STEP: Callsite = Callsite::new("step", "app", "app", "src/batch.rs", 9, SpanKind::Sync);
    static LEAF: Callsite = Callsite::new("leaf", "app", "app", "src/batch.rs", 20, SpanKind::Sync);
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let s = session_with(|c| c.resource_interval(Duration::ZERO));
    let trace = {
        let root = EnteredSpan::new(&ROOT);
        for _ in 0..1_111 {
            let _step = EnteredSpan::new(&STEP);
            for _ in 0..8 {
                drop(EnteredSpan::new(&LEAF));
            }
        }
        root.ids().unwrap().trace_id as i64
    };
    s.guard.flush();
    let server = Server::start(&s.path);
    runtime().block_on(async {
        let browser = Chromium::launch(&chromium).await;
        let (page, problems) = browser.tab().await;
        // A browser already running, as a user's is: the first page load of
        // a fresh Chromium is not the trace's.
        page.goto(format!("{}/health", server.url)).await.unwrap();
        drawn(&page, "/health").await;
        let started = Instant::now();
        page.goto(format!("{}/trace/{trace}", server.url))
            .await
            .unwrap();
        drawn(&page, &format!("/trace/{trace}")).await;
        element(&page, ".wf-row").await;
        // A figure for BENCHMARKS.md, not a pass mark.
        eprintln!("10,000-span trace drawn in {:?}", started.elapsed());
        assert_eq!(text(&page, "#span-count").await, "10,000");
        let drawn_rows = page.find_elements(".wf-row").await.unwrap().len();
        assert!(
            (1..200).contains(&drawn_rows),
            "{drawn_rows} rows in the DOM"
        );
        // The last span is reachable by scrolling.
        page.evaluate("document.getElementById('waterfall').scrollTop = 1e9")
            .await
            .unwrap();
        let deadline = Instant::now() + browser::PATIENCE;
        loop {
            let names = texts(&page, ".wf-row .wf-name").await;
            if names.last().is_some_and(|n| n.ends_with("leaf"))
                && !names.iter().any(|n| n.contains("batch"))
            {
                break;
            }
            assert!(Instant::now() < deadline, "scrolled rows: {names:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Collapsing the root leaves one row.
        page.evaluate("document.getElementById('waterfall').scrollTop = 0")
            .await
            .unwrap();
        let deadline = Instant::now() + browser::PATIENCE;
        while !texts(&page, ".wf-row .wf-name")
            .await
            .first()
            .is_some_and(|n| n.contains("batch"))
        {
            assert!(Instant::now() < deadline, "the root came back into view");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        element(&page, ".wf-row .wf-toggle")
            .await
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + browser::PATIENCE;
        while page.find_elements(".wf-row").await.unwrap().len() != 1 {
            assert!(Instant::now() < deadline, "the root did not collapse");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let collapsed = text(&page, ".wf-row").await;
        assert!(
            collapsed.contains("batch") && collapsed.contains("(+1111)"),
            "{collapsed}"
        );
        assert_eq!(problems.all(), Vec::<String>::new());
        browser.close().await;
    });
}

/// Every page drawn from a workload with resources and stats: a screenshot
/// of each (under the target directory; `MONITOR_SCREENSHOTS=docs/img`
/// refreshes the README's), a clean console, and the live page showing a
/// span written after it opened, without a reload.
#[test]
fn every_page_draws_cleanly_and_live_shows_new_spans() {
    static PARSE: Callsite = Callsite::new(
        "parse_request",
        "app::http",
        "http",
        "src/http.rs",
        30,
        SpanKind::Sync,
    );
    static LIVE: Callsite = Callsite::new(
        "on_message",
        "app::live",
        "app",
        "src/live.rs",
        3,
        SpanKind::Sync,
    );
    let Some(chromium) = browser::chromium() else {
        return;
    };
    let clock = Clock::starting_at(real_now() - 20 * 60 * 1_000_000_000);
    let readings = (0..40).map(|i| {
        ResourceReading::new(Some(20.0 + (i % 7) as f64 * 9.0), Some((300 + i * 4) << 20))
    });
    let s = session_with(|c| {
        c.clock(clock.clone())
            .resource_interval(Duration::from_secs(3600))
            .resource_sampler(ScriptedSampler::new(readings))
    });
    for i in 1..=600u64 {
        {
            let _handle = EnteredSpan::new(&HANDLE);
            {
                let mut parse = EnteredSpan::new(&PARSE);
                clock.advance(Duration::from_micros(40 + (i * 31) % 200));
                if i % 97 == 0 {
                    parse.record_error("invalid digit found in string");
                }
            }
            let mut query = EnteredSpan::new(&QUERY);
            clock.advance(Duration::from_micros(300 + (i * 7919) % 9000));
            if i % 37 == 0 {
                query.record_error(format!("connection reset by peer (attempt {})", i % 5));
            }
            drop(query);
            clock.advance(Duration::from_millis(2));
        }
        if i % 15 == 0 {
            clock.advance(Duration::from_secs(30));
            s.guard.sample_resources();
        }
    }
    s.guard.flush();
    // Alert states for the health page: `slow queries` fired, then cleared.
    let slow = |threshold: &str| {
        format!(
            "[[alerts]]\nname = \"slow queries\"\nfn = \"query\"\nmetric = \"p99\"\nop = \">\"\n\
             threshold = \"{threshold}\"\nwindow = \"1h\"\n\
             [[alerts]]\nname = \"memory\"\nmetric = \"rss\"\nop = \">\"\nthreshold = \"300MiB\"\nwindow = \"1h\"\n"
        )
    };
    assert_eq!(record_alerts(&s.path, &slow("5ms")), 1);
    assert_eq!(record_alerts(&s.path, &slow("1s")), 1);
    let server = Server::start(&s.path);
    let trace = server.json("/api/traces?limit=1")["traces"][0]["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    runtime().block_on(async {
        let browser = Chromium::launch(&chromium).await;
        let (page, problems) = browser.tab().await;
        for (path, name) in [
            ("/".to_owned(), "overview.png"),
            ("/traces".to_owned(), "traces.png"),
            (format!("/trace/{trace}"), "trace.png"),
            ("/fn/query".to_owned(), "function.png"),
            ("/resources".to_owned(), "resources.png"),
            ("/health".to_owned(), "health.png"),
        ] {
            page.goto(format!("{}{path}?since=1h", server.url))
                .await
                .unwrap();
            drawn(&page, &path).await;
            if path.starts_with("/trace/") {
                element(&page, ".wf-row").await.click().await.unwrap();
                element(&page, "#details dl").await;
            }
            if path != "/traces" && !path.starts_with("/trace/") {
                element(&page, ".u-over").await; // a chart is drawn
            }
            if path == "/health" {
                let states = texts(&page, "#alerts-latest tbody tr").await;
                assert_eq!(states.len(), 2, "{states:?}");
                assert!(
                    states[0].contains("memory") && states[0].contains("firing"),
                    "{states:?}"
                );
                assert!(
                    states[1].contains("slow queries") && states[1].contains("ok"),
                    "{states:?}"
                );
                let changes = texts(&page, "#alerts-history tbody tr").await;
                assert_eq!(changes.len(), 3, "{changes:?}");
            }
            let shot = screenshot(&page, name).await;
            eprintln!("{path}: {}", shot.display());
            assert_eq!(problems.all(), Vec::<String>::new(), "{path}");
        }

        page.goto(format!("{}/live", server.url)).await.unwrap();
        drawn(&page, "/live").await;
        clock.set(real_now());
        let id = {
            let span = EnteredSpan::new(&LIVE);
            span.ids().unwrap().span_id as i64
        };
        s.guard.flush();
        element(&page, &format!("#live tr[data-span=\"{id}\"]")).await;
        screenshot(&page, "live.png").await;
        assert_eq!(problems.all(), Vec::<String>::new(), "/live");
        browser.close().await;
    });
}
