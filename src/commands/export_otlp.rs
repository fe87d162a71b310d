//! `monitor export --format otlp`: the file's spans (and resource samples,
//! as gauges) posted to an OpenTelemetry collector over OTLP/HTTP, in
//! batches of at most `max_batch` spans, with the runtime's encoder and
//! client (`monitor_runtime::otlp`).

use std::process::ExitCode;
use std::time::Instant;

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Mutex, PoisonError};

use monitor_runtime::otlp::prost::Message;
use monitor_runtime::otlp::{
    encode_samples, encode_spans, read_samples, read_spans, Client, ClientSettings, Outcome,
    ResourceSettings, SampleRow, Selection, Signal, SpanRow,
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

/// Requests in flight at once: the file is read and the next batch encoded
/// while they travel, and a collector's round trip does not bound the rate
/// (512 spans a request, one at a time, over a 10 ms link would be 51,200
/// spans/s at most).
const IN_FLIGHT: usize = 2;

/// One encoded request for a sender thread.
struct Job {
    signal: Signal,
    body: Vec<u8>,
    items: u64,
}

/// Totals of one signal.
#[derive(Default)]
struct Shipped {
    outcome: Outcome,
    /// Requests made (not counting retries).
    batches: u64,
}

impl Shipped {
    fn add(&mut self, other: &Shipped) {
        self.outcome.add(&other.outcome);
        self.batches += other.batches;
    }

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
    )
    .with_processes(&db.conn)
    .map_err(|e| db.fail(e))?;
    let max_batch = options
        .max_batch
        .or(table.map(|t| t.max_batch))
        .unwrap_or(512);
    let selection = match options.trace {
        Some(id) => Selection::trace(id),
        None => Selection::since(options.since.unwrap_or(0)),
    };

    let started = Instant::now();
    let (spans, metrics, span_count) = ship(db, &client, &resource, selection, max_batch)?;
    if let (Some(id), 0) = (options.trace, span_count) {
        return Err(Failure(format!("no trace {id} in {}", db.path.display())));
    }
    let elapsed = started.elapsed();

    let per_second = span_count as f64 / elapsed.as_secs_f64().max(1e-9);
    let last_error = spans
        .outcome
        .last_error
        .clone()
        .or(metrics.outcome.last_error.clone());
    let report = json!({
        "traces_url": client.url(Signal::Traces),
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
            client.url(Signal::Traces),
            spans.batches,
            s.refused,
            s.failed,
            s.retries,
            elapsed.as_secs_f64(),
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

/// Reads the selected spans (then, without `--trace`, the resource samples
/// of the same window) in batches of `max_batch`, encodes each batch on
/// this thread, and posts them from `IN_FLIGHT` sender threads. Returns the
/// totals of spans and of metric points, and the spans read.
fn ship(
    db: &Db,
    client: &Client,
    resource: &ResourceSettings,
    selection: Selection,
    max_batch: usize,
) -> Result<(Shipped, Shipped, u64), Failure> {
    let (jobs, queue) = sync_channel::<Job>(IN_FLIGHT);
    let queue = Mutex::new(queue);
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..IN_FLIGHT)
            .map(|_| scope.spawn(|| send_all(client, &queue)))
            .collect();
        let mut read = 0u64;
        let mut spans_read = |jobs: &std::sync::mpsc::SyncSender<Job>| {
            let mut batch: Vec<SpanRow> = Vec::with_capacity(max_batch);
            let mut post = |batch: &mut Vec<SpanRow>| {
                read += batch.len() as u64;
                let items = batch.len() as u64;
                let body = encode_spans(batch, resource).encode_to_vec();
                batch.clear();
                // The senders end only when this side hangs up.
                let _ = jobs.send(Job {
                    signal: Signal::Traces,
                    body,
                    items,
                });
            };
            read_spans(&db.conn, selection, |row| {
                batch.push(row);
                if batch.len() >= max_batch {
                    post(&mut batch);
                }
                Ok::<_, rusqlite::Error>(())
            })?;
            if !batch.is_empty() {
                post(&mut batch);
            }
            // Samples belong to a process, not to a trace: with `--trace`
            // none go.
            if selection.trace_id.is_some() {
                return Ok(());
            }
            let mut samples: Vec<SampleRow> = Vec::with_capacity(max_batch);
            let post = |samples: &mut Vec<SampleRow>| {
                let request = encode_samples(samples, resource);
                let items = monitor_runtime::otlp::data_points(&request);
                samples.clear();
                let _ = jobs.send(Job {
                    signal: Signal::Metrics,
                    body: request.encode_to_vec(),
                    items,
                });
            };
            read_samples(&db.conn, selection, |sample| {
                samples.push(sample);
                if samples.len() >= max_batch {
                    post(&mut samples);
                }
                Ok::<_, rusqlite::Error>(())
            })?;
            if !samples.is_empty() {
                post(&mut samples);
            }
            Ok::<_, rusqlite::Error>(())
        };
        let result = spans_read(&jobs);
        drop(jobs);
        let (mut spans, mut metrics) = (Shipped::default(), Shipped::default());
        for sender in senders {
            let (s, m) = sender.join().expect("a sender thread panicked");
            spans.add(&s);
            metrics.add(&m);
        }
        result.map_err(|e| db.fail(e))?;
        Ok((spans, metrics, read))
    })
}

/// A sender thread: posts jobs until the reader hangs up.
fn send_all(client: &Client, queue: &Mutex<Receiver<Job>>) -> (Shipped, Shipped) {
    let (mut spans, mut metrics) = (Shipped::default(), Shipped::default());
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else {
            return (spans, metrics);
        };
        let totals = match job.signal {
            Signal::Traces => &mut spans,
            Signal::Metrics => &mut metrics,
        };
        totals
            .outcome
            .add(&client.send(job.signal, &job.body, job.items));
        totals.batches += 1;
    }
}
