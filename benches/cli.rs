//! `monitor summary` (and `errors`, `tree`, `diff`) over a file of 1,000,000 spans (20 functions, three
//! levels deep): the whole command, process start included, as a user runs
//! it. Target (issue 7): under 2 s.
//!
//! Run: `cargo bench --bench cli`. Figures go in BENCHMARKS.md.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};

const SPANS: usize = 1_000_000;

mod common;

fn summary(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    common::record_file(&db, SPANS, 0);
    let run = |args: &[&str]| common::monitor_stdout(env!("CARGO_BIN_EXE_monitor"), &db, args);
    let calls: i64 = serde_json::from_slice::<serde_json::Value>(&run(&["--json", "summary"]))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["calls"].as_i64().unwrap())
        .sum();
    assert_eq!(
        calls as usize,
        SPANS.div_ceil(3) * 3,
        "every span summarised"
    );

    let mut group = c.benchmark_group("cli");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("summary_1m_spans", |b| b.iter(|| run(&["summary"])));
    group.bench_function("errors_1m_spans", |b| b.iter(|| run(&["errors"])));
    group.bench_function("tree_last_1m_spans", |b| {
        b.iter(|| run(&["tree", "--last"]))
    });
    // The file against itself: every duration read twice (2,000,000) and
    // a Mann-Whitney U test per function.
    let baseline = db.to_str().unwrap().to_owned();
    group.bench_function("diff_baseline_1m_spans", |b| {
        b.iter(|| run(&["diff", "--baseline", &baseline]))
    });
    group.finish();
}

criterion_group!(benches, summary);
criterion_main!(benches);
