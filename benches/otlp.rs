//! `monitor export --format otlp` of a file of 300,000 spans (20 functions,
//! three levels deep, as the `cli` bench's file) to a receiver on loopback
//! that gunzips and decodes every request: the whole command, process start
//! included, as a user runs it. Target: at least 200,000 spans/s.
//!
//! And the `#[monitor]` hot path with the live sender shipping what it
//! writes (`[otlp]`) against without it, side by side in one run: the
//! sender reads the file back on a thread of its own, so a call should
//! cost the same.
//!
//! Run: `cargo bench --bench otlp`. Figures go in BENCHMARKS.md.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SPANS: usize = 300_000;

mod common;
#[path = "../tests/common/otlp.rs"]
mod receiver;

fn export(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("big.db");
    common::record_file(&db, SPANS, 0);
    let spans = SPANS.div_ceil(3) * 3;
    let receiver = receiver::Receiver::counting();
    let run = || {
        let out = common::monitor_stdout(
            env!("CARGO_BIN_EXE_monitor"),
            &db,
            &[
                "--json",
                "export",
                "--format",
                "otlp",
                "--endpoint",
                &receiver.url,
            ],
        );
        let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(report["spans"]["sent"], spans, "{report}");
        report
    };
    let before = receiver.span_count();
    let report = run();
    assert_eq!(
        receiver.span_count() - before,
        spans as u64,
        "the receiver decoded every span"
    );
    eprintln!(
        "one run: {} spans/s as the command reports it (batches of 512)",
        report["spans_per_s"]
    );

    let mut group = c.benchmark_group("otlp");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(spans as u64));
    group.bench_function("export_300k_spans", |b| b.iter(run));
    group.finish();
}

#[monitor_runtime::monitor]
fn work(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

fn hot_path(c: &mut Criterion) {
    use monitor_runtime::{Config, OtlpConfig};
    let dir = tempfile::tempdir().unwrap();
    let receiver = receiver::Receiver::counting();
    let mut group = c.benchmark_group("live_export_hot_path");
    group.measurement_time(Duration::from_secs(5));
    // The case without the sender runs again last: a drift between the
    // first and the last shows what the order alone does.
    // A collector that is away: the sender runs, but mostly waits.
    let away = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let away_url = format!("http://{}", away.local_addr().unwrap());
    drop(away);
    for (name, endpoint) in [
        ("monitor", None),
        ("monitor_sender_collector_away", Some(&away_url)),
        ("monitor_live_export", Some(&receiver.url)),
        ("monitor_again", None),
    ] {
        let mut config = Config::default()
            .db_path(dir.path().join(format!("{name}.db")))
            .resource_interval(Duration::ZERO)
            .shutdown_timeout(Duration::from_millis(200));
        if let Some(endpoint) = endpoint {
            config = config.otlp(OtlpConfig::new(endpoint));
        }
        let guard = monitor_runtime::init_with(config).unwrap();
        group.bench_function(name, |b| b.iter(|| work(std::hint::black_box(7))));
        guard.flush();
        drop(guard);
    }
    group.finish();
    eprintln!(
        "the receiver decoded {} spans from the live sender",
        receiver.span_count()
    );
}

criterion_group!(benches, export, hot_path);
criterion_main!(benches);
