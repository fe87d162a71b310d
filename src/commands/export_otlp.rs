//! `monitor export --format otlp`: the file's spans (and resource samples,
//! as gauges) posted to an OpenTelemetry collector over OTLP/HTTP, in
//! batches of at most `max_batch` spans, with the runtime's encoder and
//! client (`monitor_runtime::otlp`).

use std::process::ExitCode;
use std::time::Instant;

use monitor_runtime::otlp::{
    encode_samples, encode_spans, read_samples, read_spans, Client, ClientSettings, Outcome,
    ResourceSettings, SampleRow, Selection, SpanRow,
};
use monitor_runtime::Config;
use serde_json::json;

use crate::db::Db;
use crate::render::Out;
use crate::Failure;

/// What the command line says about the export; each `None` falls back on
/// the config's `[otlp]` table, then the defaults.
#[derive(Debug, Default)]
pub struct Options {
    pub endpoint: Option<String>,
    pub headers: Vec<(String, String)>,
    pub service_name: Option<String>,
    pub host_name: Option<String>,
    pub max_batch: Option<usize>,
    pub trace: Option<i64>,
    pub since: Option<u64>,
}

/// Totals of one signal.
#[derive(Default)]
struct Shipped {
    outcome: Outcome,
    /// Requests made (not counting retries).
    batches: u64,
}

impl Shipped {
    fn json(&self) -> serde_json::Value {
        json!({
            "sent": self.outcome.sent,
            "refused": self.outcome.refused,
            "failed": self.outcome.failed,
            "retries": self.outcome.retries,
            "batches": self.batches,
        })
    }
}

/// Exits 0 when every span and data point was delivered, 1 when any was
/// refused or could not be delivered; errors (no endpoint, a bad file)
/// exit 2, as `check` and `diff` do (see `Command::reports_findings`).
pub fn run(db: &Db, out: &Out, config: &Config, options: Options) -> Result<ExitCode, Failure> {
    let table = config.otlp.as_ref();
    let Some(endpoint) = options
        .endpoint
        .clone()
        .or_else(|| table.map(|t| t.endpoint.clone()))
    else {
        return Err(Failure(
            "no OTLP endpoint: pass --endpoint http://HOST:4318, or set [otlp] endpoint in \
             monitor.toml (or MONITOR_OTLP_ENDPOINT)"
                .into(),
        ));
    };
    let mut settings = match table {
        Some(t) => ClientSettings::from_config(t),
        None => ClientSettings::new(""),
    };
    settings.endpoint = endpoint;
    // A header given on the command line replaces the config's of that name.
    for (name, value) in options.headers {
        settings
            .headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        settings.headers.push((name, value));
    }
    let client = Client::new(settings).map_err(|e| Failure(e.to_string()))?;
    let resource = ResourceSettings::new(
        options
            .service_name
            .as_deref()
            .or(table.and_then(|t| t.service_name.as_deref())),
        options.host_name.as_deref(),
    );
    let max_batch = options
        .max_batch
        .or(table.map(|t| t.max_batch))
        .unwrap_or(512);
    let selection = match options.trace {
        Some(id) => Selection::trace(id),
        None => Selection::since(options.since.unwrap_or(0)),
    };

    let started = Instant::now();
    let mut spans = Shipped::default();
    let mut batch: Vec<SpanRow> = Vec::with_capacity(max_batch);
    let mut ship_spans = |batch: &mut Vec<SpanRow>| {
        spans
            .outcome
            .add(&client.export_spans(&encode_spans(batch, &resource)));
        spans.batches += 1;
        batch.clear();
    };
    read_spans(&db.conn, selection, |row| {
        batch.push(row);
        if batch.len() >= max_batch {
            ship_spans(&mut batch);
        }
        Ok::<_, rusqlite::Error>(())
    })
    .map_err(|e| db.fail(e))?;
    if !batch.is_empty() {
        ship_spans(&mut batch);
    }
    let span_count = spans.outcome.sent + spans.outcome.refused + spans.outcome.failed;
    if let (Some(id), 0) = (options.trace, span_count) {
        return Err(Failure(format!("no trace {id} in {}", db.path.display())));
    }
    let span_elapsed = started.elapsed();

    // Samples belong to a process, not to a trace: with `--trace` none go.
    let mut metrics = Shipped::default();
    if options.trace.is_none() {
        let mut samples: Vec<SampleRow> = Vec::with_capacity(max_batch);
        let mut ship_samples = |samples: &mut Vec<SampleRow>| {
            metrics
                .outcome
                .add(&client.export_metrics(&encode_samples(samples, &resource)));
            metrics.batches += 1;
            samples.clear();
        };
        read_samples(&db.conn, selection, |sample| {
            samples.push(sample);
            if samples.len() >= max_batch {
                ship_samples(&mut samples);
            }
            Ok::<_, rusqlite::Error>(())
        })
        .map_err(|e| db.fail(e))?;
        if !samples.is_empty() {
            ship_samples(&mut samples);
        }
    }
    let elapsed = started.elapsed();

    let per_second = span_count as f64 / span_elapsed.as_secs_f64().max(1e-9);
    let last_error = metrics
        .outcome
        .last_error
        .clone()
        .or(spans.outcome.last_error.clone());
    let report = json!({
        "traces_url": client.url(monitor_runtime::otlp::Signal::Traces),
        "spans": spans.json(),
        "metric_points": metrics.json(),
        "elapsed_s": elapsed.as_secs_f64(),
        "spans_per_s": per_second.round(),
        "last_error": last_error,
    });
    if out.json {
        println!("{report:#}");
    } else {
        let s = &spans.outcome;
        eprintln!(
            "sent {} spans to {} in {} batches: {} refused, {} failed, {} retries; {:.2} s, {} spans/s",
            s.sent,
            client.url(monitor_runtime::otlp::Signal::Traces),
            spans.batches,
            s.refused,
            s.failed,
            s.retries,
            span_elapsed.as_secs_f64(),
            per_second.round(),
        );
        let m = &metrics.outcome;
        if metrics.batches > 0 {
            eprintln!(
                "sent {} metric points in {} batches: {} refused, {} failed, {} retries",
                m.sent, metrics.batches, m.refused, m.failed, m.retries
            );
        }
        if let Some(error) = &last_error {
            eprintln!("last error: {}", crate::render::text(error));
        }
    }
    let delivered = spans.outcome.all_delivered() && metrics.outcome.all_delivered();
    Ok(if delivered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
