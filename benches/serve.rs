//! `monitor serve`'s API over the `cli` bench's file of 1,000,000 spans,
//! plus one trace of 10,000 spans: each request as the pages make it, over
//! loopback HTTP, a snapshot opened per request. Targets (issue 15): every
//! call of the overview under 300 ms; `/api/trace/<id>` of 10,000 spans
//! under 200 ms.
//!
//! Run: `cargo bench --bench serve`. Figures go in BENCHMARKS.md.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

mod common;

const SPANS: usize = 1_000_000;
const TRACE_SPANS: usize = 10_000;

fn serve(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    let trace_id = common::record_file(&db, SPANS, TRACE_SPANS).unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_monitor"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--addr",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let get = |path: &str| -> serde_json::Value {
        ureq::get(&format!("{url}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .into_json()
            .unwrap()
    };
    // What is timed answers with everything in it.
    let trace = format!("/api/trace/{trace_id}");
    assert_eq!(get(&trace)["spans"].as_array().unwrap().len(), TRACE_SPANS);
    let calls: u64 = get("/api/summary?since=1h")["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["calls"].as_u64().unwrap())
        .sum();
    assert_eq!(calls as usize, SPANS.div_ceil(3) * 3 + TRACE_SPANS);

    let mut group = c.benchmark_group("serve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, path) in [
        ("overview_summary_1m", "/api/summary?since=1h"),
        ("overview_series_1m", "/api/series?since=1h"),
        ("traces_1m", "/api/traces?since=1h&limit=50"),
        ("function_1m", "/api/fn/f03?since=1h"),
        ("trace_10k_spans", trace.as_str()),
        ("metrics_1m", "/metrics"),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                ureq::get(&format!("{url}{path}"))
                    .call()
                    .unwrap()
                    .into_string()
                    .unwrap()
            })
        });
    }
    group.finish();
    let _ = server.kill();
    let _ = server.wait();
}

criterion_group!(benches, serve);
criterion_main!(benches);
