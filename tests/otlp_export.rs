//! `monitor export --format otlp`: real spans written by the runtime, sent
//! by the CLI binary to a receiver on loopback that decodes them with
//! opentelemetry-proto's own types.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::otlp::{int_attribute, string_attribute, Receiver, Reply};
use common::{monitor_on, read_spans, Row, Session};
use monitor_runtime::monitor;
use opentelemetry_proto::tonic::metrics::v1::metric;
use opentelemetry_proto::tonic::trace::v1::{span, status};
use serde_json::Value;

#[monitor(group = "checkout", fields(region = "eu", ratio = 0.5, fast = true))]
fn handle(order: u64) -> Result<u64, String> {
    let total = price(order) + price(order + 1);
    lookup(order)?;
    Ok(total)
}

#[monitor(args)]
fn price(item: u64) -> u64 {
    item * 10
}

#[monitor]
fn lookup(order: u64) -> Result<(), String> {
    if order % 2 == 1 {
        Err(format!("no order {order}"))
    } else {
        Ok(())
    }
}

#[monitor]
fn explode() {
    panic!("inventory exploded");
}

/// Two traces (one ending in an error), a panic caught, samples: 9 spans.
fn workload(s: &Session) -> Vec<Row> {
    assert_eq!(handle(2), Ok(50));
    assert_eq!(handle(3), Err("no order 3".into()));
    assert!(std::panic::catch_unwind(explode).is_err());
    s.guard.sample_resources();
    s.guard.flush();
    let rows = read_spans(&s.path);
    assert_eq!(rows.len(), 9, "{rows:#?}");
    rows
}

fn span_id(id: i64) -> Vec<u8> {
    (id as u64).to_be_bytes().to_vec()
}

/// `monitor export --format otlp` on `db` with `args`; returns the exit
/// code and the `--json` report.
fn export(db: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json", "export", "--format", "otlp"];
    all.extend_from_slice(args);
    let out = monitor_on(db, &all);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}); stderr: {stderr}"));
    (out.status.code().expect("an exit code"), report)
}

#[test]
fn every_span_arrives_once_with_its_links_status_attributes_and_resource() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::start();
    let (code, report) = export(
        &s.path,
        &[
            "--endpoint",
            &receiver.url,
            "--service-name",
            "shop",
            "--header",
            "x-tenant=acme",
            "--header",
            "authorization=Bearer abc",
            "--max-batch",
            "2",
        ],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["spans"]["sent"], 9, "{report}");
    assert_eq!(report["spans"]["refused"], 0);
    assert_eq!(report["spans"]["retries"], 0);
    assert_eq!(report["spans"]["batches"], 5, "9 spans in batches of 2");

    // Batching: five requests, none over two spans.
    let traces = receiver.requests_to("/v1/traces");
    let mut sizes: Vec<usize> = traces.iter().map(|r| r.span_count()).collect();
    // Two requests travel at once: they may arrive in either order.
    sizes.sort();
    assert_eq!(sizes, [1, 2, 2, 2, 2]);
    for request in receiver.requests() {
        let header = |name: &str| request.headers.get(name).map(|v| v.to_str().unwrap());
        assert_eq!(header("content-type"), Some("application/x-protobuf"));
        assert_eq!(header("content-encoding"), Some("gzip"));
        assert_eq!(header("x-tenant"), Some("acme"));
        assert_eq!(header("authorization"), Some("Bearer abc"));
    }

    let spans = receiver.accepted_spans();
    let mut by_id: HashMap<Vec<u8>, _> = HashMap::new();
    for (resource, span) in &spans {
        assert!(
            by_id
                .insert(span.span_id.clone(), (resource, span))
                .is_none(),
            "span {:?} arrived twice",
            span.span_id
        );
    }
    assert_eq!(by_id.len(), rows.len());
    for row in &rows {
        let (resource, span) = by_id[&span_id(row.span_id)];
        assert_eq!(span.name, row.name);
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
        let parent = row.parent_id.map(span_id).unwrap_or_default();
        assert_eq!(span.parent_span_id, parent, "{}", row.name);
        let mut trace = vec![0u8; 8];
        trace.extend(span_id(row.trace_id));
        assert_eq!(span.trace_id, trace, "{}", row.name);
        assert_eq!(
            span.end_time_unix_nano - span.start_time_unix_nano,
            row.duration_ns as u64
        );
        let a = &span.attributes;
        assert_eq!(
            string_attribute(a, "code.function"),
            Some(row.name.as_str())
        );
        assert_eq!(string_attribute(a, "code.namespace"), Some("otlp_export"));
        assert_eq!(
            string_attribute(a, "code.filepath"),
            Some(row.file.as_str())
        );
        assert_eq!(int_attribute(a, "code.lineno"), Some(row.line));
        assert_eq!(
            string_attribute(a, "thread.name"),
            Some(row.thread.as_str())
        );
        assert_eq!(string_attribute(a, "monitor.kind"), Some("sync"));
        assert_eq!(
            string_attribute(a, "monitor.group"),
            Some(row.group_name.as_str())
        );
        assert_eq!(int_attribute(a, "monitor.busy_ns"), Some(row.busy_ns));
        let status = span.status.clone().unwrap_or_default();
        match row.status.as_str() {
            "ok" => {
                assert_eq!(status.code, status::StatusCode::Unset as i32);
                assert_eq!(string_attribute(a, "monitor.status"), None);
            }
            "error" => {
                assert_eq!(status.code, status::StatusCode::Error as i32);
                assert_eq!(Some(status.message.as_str()), row.error.as_deref());
                assert_eq!(string_attribute(a, "monitor.status"), None);
            }
            "panic" => {
                assert_eq!(status.code, status::StatusCode::Error as i32);
                assert_eq!(status.message, "inventory exploded");
                assert_eq!(string_attribute(a, "monitor.status"), Some("panic"));
            }
            other => panic!("unexpected status {other}"),
        }
        let r = &resource.attributes;
        assert_eq!(string_attribute(r, "service.name"), Some("shop"));
        assert_eq!(
            int_attribute(r, "process.pid"),
            Some(i64::from(std::process::id()))
        );
        let host = string_attribute(r, "host.name").expect("host.name");
        #[cfg(target_os = "linux")]
        assert_eq!(
            host,
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap()
                .trim()
        );
        assert!(!host.is_empty());
    }

    // Fields: JSON numbers, floats, booleans and text keep their types.
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let handles: Vec<_> = spans.iter().filter(|(_, s)| s.name == "handle").collect();
    assert_eq!(handles.len(), 2);
    let a = &handles[0].1.attributes;
    assert_eq!(string_attribute(a, "monitor.field.region"), Some("eu"));
    assert_eq!(
        common::otlp::attribute(a, "monitor.field.ratio"),
        Some(&Any::DoubleValue(0.5))
    );
    assert_eq!(
        common::otlp::attribute(a, "monitor.field.fast"),
        Some(&Any::BoolValue(true))
    );
    let mut prices: Vec<i64> = spans
        .iter()
        .filter(|(_, s)| s.name == "price")
        .map(|(_, s)| int_attribute(&s.attributes, "monitor.field.item").unwrap())
        .collect();
    prices.sort();
    assert_eq!(prices, [2, 3, 3, 4]);

    // Resource samples as gauges, one point per sample with the figure.
    let samples: i64 = rusqlite::Connection::open(&s.path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM resource_samples WHERE rss_bytes IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(samples >= 1);
    let mut rss_points = 0;
    for request in receiver.requests_to("/v1/metrics") {
        for resource_metrics in request.metrics().resource_metrics {
            let r = &resource_metrics.resource.unwrap().attributes;
            assert_eq!(string_attribute(r, "service.name"), Some("shop"));
            for metric in &resource_metrics.scope_metrics[0].metrics {
                let Some(metric::Data::Gauge(gauge)) = &metric.data else {
                    panic!("{} is not a gauge", metric.name)
                };
                if metric.name == "process.memory.usage" {
                    assert_eq!(metric.unit, "By");
                    rss_points += gauge.data_points.len() as i64;
                }
            }
        }
    }
    assert_eq!(rss_points, samples);
    assert_eq!(report["metric_points"]["refused"], 0);
}

#[test]
fn unavailable_twice_then_accepted_is_all_sent_with_two_retries() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::scripted([
        Reply::Status(503, Some("0")),
        // No Retry-After: the client's own backoff.
        Reply::Status(503, None),
    ]);
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["spans"]["sent"], rows.len());
    assert_eq!(report["spans"]["retries"], 2);
    assert_eq!(report["spans"]["batches"], 1);
    let traces = receiver.requests_to("/v1/traces");
    assert_eq!(traces.len(), 3, "the same request three times");
    assert!(traces.iter().all(|r| r.body == traces[0].body));
    assert_eq!(receiver.accepted_spans().len(), rows.len());
}

#[test]
fn a_bad_request_is_refused_for_good_and_exits_1() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::scripted([Reply::Status(400, None)]);
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url, "--max-batch", "4"]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["spans"]["refused"], 4, "the first batch");
    assert_eq!(report["spans"]["sent"], rows.len() - 4);
    assert_eq!(report["spans"]["retries"], 0, "a 400 is not retried");
    let error = report["last_error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 400") && error.contains("scripted refusal"),
        "{error}"
    );
    assert_eq!(receiver.requests_to("/v1/traces").len(), 3);
}

#[test]
fn a_partial_success_counts_its_rejected_spans_as_refused() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::scripted([Reply::RejectSome(2)]);
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url]);
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["spans"]["refused"], 2);
    assert_eq!(report["spans"]["sent"], rows.len() - 2);
    let error = report["last_error"].as_str().unwrap();
    assert!(error.contains("spans too old"), "{error}");
}

#[test]
fn the_config_gives_endpoint_headers_and_service_and_the_flags_win() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::start();
    let config = s.path.with_file_name("otlp.toml");
    std::fs::write(
        &config,
        format!(
            "[otlp]\nendpoint = \"{}/v1/traces\"\nservice_name = \"from-config\"\n\
             max_batch = 3\nheaders = {{ x-tenant = \"config\", x-team = \"core\" }}\n",
            receiver.url
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (code, report) = export(&s.path, &["--config", config, "--header", "X-Tenant=flag"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["spans"]["batches"], 3, "max_batch = 3");
    let first = &receiver.requests_to("/v1/traces")[0];
    assert_eq!(first.headers["x-tenant"], "flag");
    assert_eq!(first.headers["x-team"], "core");
    assert!(
        !receiver.requests_to("/v1/metrics").is_empty(),
        "the metrics URL is the sibling of a .../v1/traces endpoint"
    );
    let spans = receiver.accepted_spans();
    assert_eq!(spans.len(), rows.len());
    let service = string_attribute(&spans[0].0.attributes, "service.name");
    assert_eq!(service, Some("from-config"));

    let (code, _) = export(
        &s.path,
        &[
            "--config",
            config,
            "--service-name",
            "flag",
            "--max-batch",
            "9",
        ],
    );
    assert_eq!(code, 0);
    let last = receiver.requests_to("/v1/traces").pop().unwrap();
    let resource = last.traces().resource_spans[0].resource.clone().unwrap();
    assert_eq!(
        string_attribute(&resource.attributes, "service.name"),
        Some("flag")
    );
    assert_eq!(last.span_count(), 9, "--max-batch wins over the config");
}

#[test]
fn one_trace_only_and_an_unknown_trace_is_an_error() {
    let s = common::session();
    let rows = workload(&s);
    let receiver = Receiver::start();
    let failed = rows
        .iter()
        .find(|r| r.name == "lookup" && r.status == "error");
    let trace = failed.unwrap().trace_id;
    let in_trace = rows.iter().filter(|r| r.trace_id == trace).count();
    assert_eq!(in_trace, 4, "handle, two prices and lookup");
    let (code, report) = export(
        &s.path,
        &["--endpoint", &receiver.url, "--trace", &trace.to_string()],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["spans"]["sent"], in_trace);
    assert!(receiver.requests_to("/v1/metrics").is_empty());

    let out = monitor_on(
        &s.path,
        &[
            "export",
            "--format",
            "otlp",
            "--endpoint",
            &receiver.url,
            "--trace",
            "12345",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no trace 12345"), "{stderr}");
}

#[test]
fn usage_errors_exit_2_and_say_what_is_wrong() {
    let s = common::session();
    workload(&s);
    let empty = s.path.with_file_name("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--config",
                empty.to_str().unwrap(),
                "export",
                "--format",
                "otlp",
            ],
            "no OTLP endpoint",
        ),
        (
            &[
                "export",
                "--format",
                "otlp",
                "--endpoint",
                "http://127.0.0.1:9",
                "-o",
                "x.json",
            ],
            "'--output <FILE>' cannot be used with '--format otlp'",
        ),
        (
            &[
                "export",
                "--format",
                "csv",
                "-o",
                "x.csv",
                "--endpoint",
                "http://127.0.0.1:9",
            ],
            "'--endpoint' is for '--format otlp' only",
        ),
        (&["export", "--format", "csv"], "--output"),
        (
            &["export", "--format", "otlp", "--endpoint", "localhost:4318"],
            "http://",
        ),
    ];
    for (args, expected) in cases {
        let out = monitor_on(&s.path, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let out = monitor_on(
        &s.path,
        &[
            "export",
            "--format",
            "otlp",
            "--endpoint",
            "http://c",
            "--max-batch",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("from 1 to 100000"));
}

#[test]
fn since_sends_only_the_window_of_spans_and_samples() {
    use std::time::Duration;
    let hour = 3_600_000_000_000;
    let clock = monitor_runtime::Clock::starting_at(common::requests::real_now() - 3 * hour);
    // The sampler's own interval never comes: samples are taken on demand.
    let s = common::session_with(|c| {
        c.clock(clock.clone())
            .resource_interval(Duration::from_secs(3600))
    });
    assert_eq!(price(1), 10); // three hours ago
    s.guard.sample_resources();
    s.guard.flush();
    clock.set(common::requests::real_now());
    assert_eq!(price(2), 20); // now
    s.guard.sample_resources();
    s.guard.flush();
    assert_eq!(read_spans(&s.path).len(), 2);

    let receiver = Receiver::start();
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url, "--since", "1h"]);
    assert_eq!(code, 0, "{report}");
    let spans = receiver.accepted_spans();
    assert_eq!(spans.len(), 1, "{report}");
    assert_eq!(
        int_attribute(&spans[0].1.attributes, "monitor.field.item"),
        Some(2)
    );
    let mut times = Vec::new();
    for request in receiver.requests_to("/v1/metrics") {
        for resource_metrics in request.metrics().resource_metrics {
            for metric in &resource_metrics.scope_metrics[0].metrics {
                if let Some(metric::Data::Gauge(gauge)) = &metric.data {
                    times.extend(gauge.data_points.iter().map(|p| p.time_unix_nano));
                }
            }
        }
    }
    let samples: Vec<i64> = {
        let conn = rusqlite::Connection::open(&s.path).unwrap();
        let mut stmt = conn.prepare("SELECT ts_ns FROM resource_samples").unwrap();
        let ts = stmt.query_map([], |r| r.get(0)).unwrap();
        ts.collect::<Result<_, _>>().unwrap()
    };
    let old = samples
        .iter()
        .filter(|&&t| (t as u64) < common::requests::real_now() - hour);
    assert!(old.count() >= 1, "a sample of three hours ago: {samples:?}");
    assert!(!times.is_empty());
    let window_start = common::requests::real_now() - hour;
    assert!(times.iter().all(|&t| t >= window_start), "{times:?}");
}

#[monitor(parent = traceparent)]
fn remote_handler(traceparent: &str) {
    price(1);
}

/// A span under a remote parent leaves with the caller's 128-bit trace id
/// and the caller's span as its parent, so the collector joins the two.
#[test]
fn a_remote_parent_s_trace_id_leaves_whole() {
    let s = common::session();
    remote_handler("00-4bf92f3577b34da6a3ce929d0e0e4736-f067aa0ba902b7c1-01");
    s.guard.flush();
    let receiver = Receiver::start();
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url]);
    assert_eq!(code, 0, "{report}");
    let spans = receiver.accepted_spans();
    let trace = 0x4bf92f3577b34da6a3ce929d0e0e4736u128
        .to_be_bytes()
        .to_vec();
    let handler = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "remote_handler")
        .expect("the handler arrived");
    assert_eq!(handler.trace_id, trace);
    assert_eq!(
        handler.parent_span_id,
        0xf067aa0ba902b7c1u64.to_be_bytes().to_vec()
    );
    let child = spans
        .iter()
        .map(|(_, span)| span)
        .find(|span| span.name == "price")
        .expect("the child arrived");
    assert_eq!(child.trace_id, trace);
    assert_eq!(child.parent_span_id, handler.span_id);
}

/// Without a configured service name, each process is named by its own
/// program, which `init` wrote into the file's `processes` table.
#[test]
fn the_service_defaults_to_the_program_that_wrote_the_spans() {
    let s = common::session();
    assert_eq!(price(3), 30);
    s.guard.flush();
    let receiver = Receiver::start();
    let (code, report) = export(&s.path, &["--endpoint", &receiver.url]);
    assert_eq!(code, 0, "{report}");
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_str().unwrap();
    let spans = receiver.accepted_spans();
    assert!(!spans.is_empty());
    for (resource, _) in &spans {
        let r = &resource.attributes;
        assert_eq!(string_attribute(r, "service.name"), Some(exe));
        assert_eq!(string_attribute(r, "process.executable.name"), Some(exe));
    }
}
