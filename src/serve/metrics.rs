//! `GET /metrics`: the file's figures in the OpenMetrics text format, which
//! Prometheus scrapes. Encoded by `prometheus-client`, built anew from the
//! file at each scrape. The writer's totals (`monitor_stats` rows, never
//! dropped) are counters; what the retained partitions hold are gauges.

use std::sync::atomic::AtomicU64;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ApiError, App};
use crate::db::Db;
use crate::query::{health, summary, Window};
use crate::window::now_ns;

type Labels = Vec<(&'static str, Escaped)>;

/// A label value as the text format must have it: `\\`, `"` and newlines
/// escaped. prometheus-client 0.23 writes values as they are, and a
/// function's name is the program's text: a quote or a newline in it broke
/// the whole scrape, or forged a line.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Escaped(String);

impl Escaped {
    fn new(text: &str) -> Escaped {
        Escaped(
            text.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        )
    }
}

impl EncodeLabelValue for Escaped {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> std::fmt::Result {
        encoder.write_str(&self.0)
    }
}

/// The window of the latency quantiles: recent enough to alert on.
const QUANTILE_WINDOW_NS: u64 = 5 * 60 * 1_000_000_000;

pub async fn metrics(State(app): State<App>) -> Result<Response, ApiError> {
    let text = app.read(|db| Ok(encode_file(db, now_ns())?)).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The registry of one scrape, encoded.
fn encode_file(db: &Db, now_ns: u64) -> Result<String, crate::Failure> {
    let mut registry = <Registry>::default();
    let labels = |f: &summary::FunctionStats| -> Labels {
        vec![
            ("function", Escaped::new(&f.name)),
            ("module", Escaped::new(&f.module)),
        ]
    };

    // Gauges, not counters: retention drops whole hours, and a counter that
    // fell would read as a reset to `rate()`.
    let spans = Family::<Labels, Gauge>::default();
    let errors = Family::<Labels, Gauge>::default();
    let (all, _) = summary::summary(db, Window::ALL, None)?;
    for f in &all {
        spans.get_or_create(&labels(f)).set(f.calls as i64);
        errors.get_or_create(&labels(f)).set(f.errors as i64);
    }
    registry.register(
        "monitor_function_spans",
        "Spans of the function in the file (its retained partitions)",
        spans,
    );
    registry.register(
        "monitor_function_errors",
        "Spans of the function ending in error or panic, in the file (its retained partitions)",
        errors,
    );

    let quantiles = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let since = Window::since(Some(now_ns.saturating_sub(QUANTILE_WINDOW_NS)));
    let (recent, _) = summary::summary(db, since, None)?;
    for f in &recent {
        for (q, ns) in [
            ("0.5", f.p50_ns),
            ("0.95", f.p95_ns),
            ("0.99", f.p99_ns),
            ("1", f.max_ns),
        ] {
            let mut l = labels(f);
            l.push(("quantile", Escaped::new(q)));
            quantiles.get_or_create(&l).set(ns as f64 / 1e9);
        }
    }
    registry.register(
        "monitor_span_duration_seconds",
        "Span duration quantiles per function over the last 5 minutes",
        quantiles,
    );

    let stats = health::stats(db)?;
    for (name, help, value) in [
        (
            "monitor_records_enqueued",
            "Records handed to the writer",
            stats.enqueued,
        ),
        ("monitor_records_written", "Records stored", stats.written),
        (
            "monitor_records_dropped",
            "Records dropped by a full queue",
            stats.dropped,
        ),
        (
            "monitor_errors_written",
            "Error and panic records stored",
            stats.errors_written,
        ),
        (
            "monitor_records_failed",
            "Records the database refused",
            stats.failed,
        ),
        (
            "monitor_records_sampled_out",
            "Spans left out by sampling",
            stats.sampled_out,
        ),
        (
            "monitor_records_spilled",
            "Records spilled while the database refused writes",
            stats.spilled,
        ),
        (
            "monitor_records_replayed",
            "Spilled records replayed into the database",
            stats.replayed,
        ),
    ] {
        let counter = Counter::<u64>::default();
        counter.inc_by(value.max(0) as u64);
        registry.register(name, help, counter);
    }
    let depth = Gauge::<i64>::default();
    depth.set(stats.queue_depth);
    registry.register(
        "monitor_queue_depth",
        "Records waiting in the queue at the last stats row",
        depth,
    );

    let mut text = String::new();
    encode(&mut text, &registry).map_err(|e| format!("cannot encode the metrics: {e}"))?;
    Ok(text)
}
