//! Rows of the file as OTLP messages: spans as an
//! `ExportTraceServiceRequest`, resource samples as gauges of an
//! `ExportMetricsServiceRequest`. The types are opentelemetry-proto's
//! generated ones; nothing here writes protobuf by hand.
//!
//! The mapping is documented as a table in `docs/DESIGN.md` ("OTLP export").

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};

use super::rows::{SampleRow, SpanRow};

/// Attribute names: OpenTelemetry's semantic conventions where one exists,
/// `monitor.*` for the figures only monitor has.
pub mod attr {
    /// The function's name (`name`).
    pub const CODE_FUNCTION: &str = "code.function";
    /// The function's module path (`module`).
    pub const CODE_NAMESPACE: &str = "code.namespace";
    /// The source file (`file`).
    pub const CODE_FILEPATH: &str = "code.filepath";
    /// The line (`line`).
    pub const CODE_LINENO: &str = "code.lineno";
    /// The thread's name, else its id (`thread`).
    pub const THREAD_NAME: &str = "thread.name";
    /// `sync`, `async`, `stream`, `iter`, `tracing`.
    pub const KIND: &str = "monitor.kind";
    /// The `group` option, else the module path.
    pub const GROUP: &str = "monitor.group";
    /// Time spent running (polls of a future or stream), ns.
    pub const BUSY_NS: &str = "monitor.busy_ns";
    /// Items a stream or iterator yielded.
    pub const ITEMS: &str = "monitor.items";
    /// Resident memory at the span's end.
    pub const RSS_BYTES: &str = "monitor.rss_bytes";
    /// Thread CPU time of the span, ns.
    pub const CPU_NS: &str = "monitor.cpu_ns";
    /// Bytes allocated in the span.
    pub const ALLOC_BYTES: &str = "monitor.alloc_bytes";
    /// `panic` or `cancelled`, which OTLP's status codes cannot tell apart
    /// from `error` and `ok`.
    pub const STATUS: &str = "monitor.status";
    /// Prefix of each key of the `fields` JSON object.
    pub const FIELD_PREFIX: &str = "monitor.field.";
    /// `service.name` of the resource.
    pub const SERVICE_NAME: &str = "service.name";
    /// `host.name` of the resource.
    pub const HOST_NAME: &str = "host.name";
    /// `process.pid` of the resource.
    pub const PROCESS_PID: &str = "process.pid";
    /// The program's file name, from the file's `processes` table.
    pub const PROCESS_EXECUTABLE_NAME: &str = "process.executable.name";
}

/// The instrumentation scope of every span and metric: `monitor` and this
/// crate's version.
pub const SCOPE_NAME: &str = "monitor";

/// `service.name` when none is configured, as the OpenTelemetry SDKs say it.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// What the resource of each process says besides its pid.
///
/// ```
/// use monitor_runtime::otlp::ResourceSettings;
///
/// let settings = ResourceSettings::new(Some("checkout"), Some("web-1"));
/// let resource = settings.resource(4242);
/// let keys: Vec<&str> = resource.attributes.iter().map(|kv| kv.key.as_str()).collect();
/// assert_eq!(keys, ["service.name", "host.name", "process.pid"]);
///
/// let defaults = ResourceSettings::new(None, None);
/// assert_eq!(defaults.service_name, "unknown_service");
/// assert!(!defaults.host_name.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceSettings {
    /// `service.name` when neither the settings nor the file's `processes`
    /// table name one.
    pub service_name: String,
    /// `host.name` likewise.
    pub host_name: String,
    /// What the file's `processes` table says of each pid: its program's
    /// name and host ([`ResourceSettings::with_processes`]).
    pub processes: std::collections::HashMap<i64, ProcessFacts>,
    /// Whether `service_name` and `host_name` were given, and so win over
    /// the table.
    service_given: bool,
    host_given: bool,
}

/// A process that wrote the file, as its `processes` row says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFacts {
    /// The program's file name (`exe`).
    pub exe: String,
    /// The host it ran on (empty when the system had no name).
    pub host: String,
}

impl ResourceSettings {
    /// `service_name` defaults to `unknown_service`, `host_name` to this
    /// machine's host name (`localhost` when the system has none).
    pub fn new(service_name: Option<&str>, host_name: Option<&str>) -> ResourceSettings {
        ResourceSettings {
            service_name: service_name.unwrap_or(UNKNOWN_SERVICE).to_owned(),
            host_name: host_name
                .map(str::to_owned)
                .or_else(sysinfo::System::host_name)
                .unwrap_or_else(|| "localhost".to_owned()),
            processes: Default::default(),
            service_given: service_name.is_some(),
            host_given: host_name.is_some(),
        }
    }

    /// Reads the file's `processes` table: a process's own program name is
    /// then its `service.name`, and its own host its `host.name`, unless
    /// the settings name them. A file without the table keeps the defaults.
    pub fn with_processes(mut self, conn: &rusqlite::Connection) -> rusqlite::Result<Self> {
        self.processes.clear();
        let table: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'processes')",
            [],
            |r| r.get(0),
        )?;
        if !table {
            return Ok(self);
        }
        // The latest row of a pid wins: pids are reused.
        let mut stmt = conn.prepare("SELECT pid, exe, host FROM processes ORDER BY start_ns")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                ProcessFacts {
                    exe: r.get(1)?,
                    host: r.get(2)?,
                },
            ))
        })?;
        for row in rows {
            let (pid, facts) = row?;
            self.processes.insert(pid, facts);
        }
        Ok(self)
    }

    /// The resource of the process `pid`: the one place that chooses it.
    pub fn resource(&self, pid: i64) -> Resource {
        let facts = self.processes.get(&pid);
        let service = match facts {
            Some(f) if !self.service_given && !f.exe.is_empty() => &f.exe,
            _ => &self.service_name,
        };
        let host = match facts {
            Some(f) if !self.host_given && !f.host.is_empty() => &f.host,
            _ => &self.host_name,
        };
        let mut attributes = vec![
            string(attr::SERVICE_NAME, service),
            string(attr::HOST_NAME, host),
            int(attr::PROCESS_PID, pid),
        ];
        if let Some(f) = facts.filter(|f| !f.exe.is_empty()) {
            attributes.push(string(attr::PROCESS_EXECUTABLE_NAME, &f.exe));
        }
        Resource {
            attributes,
            ..Default::default()
        }
    }
}

/// A span id as OTLP carries it: the id's 64 bits, big-endian. The file
/// stores them as an `i64`, so a remote id above `i64::MAX` is negative
/// there and keeps its bits here.
///
/// ```
/// use monitor_runtime::otlp::span_id_bytes;
///
/// assert_eq!(span_id_bytes(0x0102), [0, 0, 0, 0, 0, 0, 1, 2]);
/// assert_eq!(span_id_bytes(-1), [0xff; 8]);
/// ```
pub fn span_id_bytes(id: i64) -> [u8; 8] {
    (id as u64).to_be_bytes()
}

/// A 128-bit trace id as OTLP carries it: `hi` then `lo`, each big-endian.
///
/// ```
/// use monitor_runtime::otlp::trace_id_bytes;
///
/// let bytes = trace_id_bytes(0, 7);
/// assert_eq!(bytes[..8], [0; 8]);
/// assert_eq!(bytes[8..], [0, 0, 0, 0, 0, 0, 0, 7]);
/// ```
pub fn trace_id_bytes(hi: i64, lo: i64) -> [u8; 16] {
    ((hi as u64 as u128) << 64 | lo as u64 as u128).to_be_bytes()
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    }
}

fn key_value(key: impl Into<String>, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    key_value(key, any_value::Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    key_value(key, any_value::Value::IntValue(value))
}

/// One span row as an OTLP span (see the module's mapping).
///
/// ```
/// use monitor_runtime::otlp::{encode_span, SpanRow};
///
/// let mut row = SpanRow::default();
/// row.span_id = 2;
/// row.parent_id = Some(1);
/// row.trace_id = 1;
/// row.name = "parse".into();
/// row.status = "error".into();
/// row.error = Some("bad input".into());
/// row.start_ns = 1_000;
/// row.duration_ns = 500;
/// let span = encode_span(&row);
/// assert_eq!(span.name, "parse");
/// assert_eq!(span.parent_span_id, [0, 0, 0, 0, 0, 0, 0, 1]);
/// assert_eq!((span.start_time_unix_nano, span.end_time_unix_nano), (1_000, 1_500));
/// assert_eq!(span.status.unwrap().message, "bad input");
/// ```
pub fn encode_span(row: &SpanRow) -> Span {
    let mut attributes = Vec::with_capacity(12);
    attributes.push(string(attr::CODE_FUNCTION, &row.name));
    attributes.push(string(attr::CODE_NAMESPACE, &row.module));
    attributes.push(string(attr::CODE_FILEPATH, &row.file));
    attributes.push(int(attr::CODE_LINENO, row.line));
    attributes.push(string(attr::THREAD_NAME, &row.thread));
    attributes.push(string(attr::KIND, &row.kind));
    attributes.push(string(attr::GROUP, &row.group_name));
    attributes.push(int(attr::BUSY_NS, row.busy_ns));
    for (key, value) in [
        (attr::ITEMS, row.items),
        (attr::RSS_BYTES, row.rss_bytes),
        (attr::CPU_NS, row.cpu_ns),
        (attr::ALLOC_BYTES, row.alloc_bytes),
    ] {
        if let Some(value) = value {
            attributes.push(int(key, value));
        }
    }
    if row.status == "panic" || row.status == "cancelled" {
        attributes.push(string(attr::STATUS, &row.status));
    }
    if let Some(fields) = &row.fields {
        push_fields(&mut attributes, fields);
    }
    // Instrumentation leaves a span that went well `Unset`: the spec keeps
    // `Ok` for an application or operator's explicit verdict.
    let status = matches!(row.status.as_str(), "error" | "panic").then(|| Status {
        message: row.error.clone().unwrap_or_default(),
        code: status::StatusCode::Error as i32,
    });
    Span {
        trace_id: trace_id_bytes(row.trace_hi, row.trace_id).to_vec(),
        span_id: span_id_bytes(row.span_id).to_vec(),
        parent_span_id: row
            .parent_id
            .map(|p| span_id_bytes(p).to_vec())
            .unwrap_or_default(),
        // W3C trace flags in the low byte: sampled, since it was recorded.
        flags: 1,
        name: row.name.clone(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: row.start_ns.max(0) as u64,
        end_time_unix_nano: row.start_ns.saturating_add(row.duration_ns).max(0) as u64,
        attributes,
        status,
        ..Default::default()
    }
}

/// `fields` (a JSON object) as `monitor.field.<key>` attributes: strings,
/// integers, floats and booleans as themselves, anything else as its JSON
/// text; text that is not an object as one `monitor.fields` attribute.
fn push_fields(attributes: &mut Vec<KeyValue>, fields: &str) {
    use serde_json::Value as Json;
    let Ok(object) = serde_json::from_str::<serde_json::Map<String, Json>>(fields) else {
        attributes.push(string("monitor.fields", fields));
        return;
    };
    for (key, value) in object {
        let value = match value {
            Json::String(s) => any_value::Value::StringValue(s),
            Json::Bool(b) => any_value::Value::BoolValue(b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => any_value::Value::IntValue(i),
                // A u64 above i64::MAX, or a float.
                None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
            },
            other => any_value::Value::StringValue(other.to_string()),
        };
        attributes.push(key_value(format!("{}{key}", attr::FIELD_PREFIX), value));
    }
}

/// Spans as one request: one `ResourceSpans` per process (`pid`), in the
/// order the processes first appear, each with one scope (`monitor`).
///
/// ```
/// use monitor_runtime::otlp::{encode_spans, ResourceSettings, SpanRow};
///
/// let rows: Vec<SpanRow> = [(1, 10), (2, 20), (3, 10)]
///     .into_iter()
///     .map(|(id, pid)| {
///         let mut row = SpanRow::default();
///         (row.span_id, row.trace_id, row.pid) = (id, id, pid);
///         row
///     })
///     .collect();
/// let request = encode_spans(&rows, &ResourceSettings::new(Some("svc"), Some("h")));
/// let per_process: Vec<usize> = request
///     .resource_spans
///     .iter()
///     .map(|r| r.scope_spans[0].spans.len())
///     .collect();
/// assert_eq!(per_process, [2, 1]);
/// ```
pub fn encode_spans(rows: &[SpanRow], settings: &ResourceSettings) -> ExportTraceServiceRequest {
    let mut by_pid: Vec<(i64, Vec<Span>)> = Vec::new();
    for row in rows {
        let at = match by_pid.iter().position(|(pid, _)| *pid == row.pid) {
            Some(at) => at,
            None => {
                by_pid.push((row.pid, Vec::new()));
                by_pid.len() - 1
            }
        };
        by_pid[at].1.push(encode_span(row));
    }
    ExportTraceServiceRequest {
        resource_spans: by_pid
            .into_iter()
            .map(|(pid, spans)| ResourceSpans {
                resource: Some(settings.resource(pid)),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The gauges made of resource samples: (name, unit, description).
/// CPU keeps monitor's own figure (percent of one core) under a
/// `monitor.*` name: `process.cpu.utilization` is a fraction of all the
/// CPUs available to the process, a count the file does not hold.
const GAUGES: [(&str, &str, &str); 6] = [
    (
        "monitor.process.cpu.percent",
        "%",
        "CPU time over wall time since the previous sample, in percent of one core",
    ),
    ("process.memory.usage", "By", "Resident memory (RSS)"),
    ("process.memory.virtual", "By", "Virtual memory"),
    ("process.thread.count", "{thread}", "Threads of the process"),
    ("system.memory.usage", "By", "Memory in use on the host"),
    ("system.memory.limit", "By", "Memory of the host"),
];

/// The data points a sample gives each of [`GAUGES`], in order.
fn sample_values(s: &SampleRow) -> [Option<number_data_point::Value>; 6] {
    use number_data_point::Value::{AsDouble, AsInt};
    [
        s.cpu_percent.map(AsDouble),
        s.rss_bytes.map(AsInt),
        s.virtual_bytes.map(AsInt),
        s.threads.map(AsInt),
        s.system_memory_used_bytes.map(AsInt),
        s.system_memory_total_bytes.map(AsInt),
    ]
}

/// Resource samples as gauges: one `ResourceMetrics` per process, one
/// metric per figure, one data point per sample that has the figure (a
/// NULL is no point). `system.memory.usage` points carry
/// `system.memory.state = used`, as the convention asks.
///
/// ```
/// use monitor_runtime::otlp::{encode_samples, ResourceSettings, SampleRow};
///
/// let mut sample = SampleRow::default();
/// (sample.ts_ns, sample.pid, sample.rss_bytes) = (5, 1, Some(1 << 20));
/// let request = encode_samples(&[sample], &ResourceSettings::new(None, Some("h")));
/// let metrics = &request.resource_metrics[0].scope_metrics[0].metrics;
/// let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
/// assert_eq!(names, ["process.memory.usage"]); // the sample's only figure
/// ```
pub fn encode_samples(
    samples: &[SampleRow],
    settings: &ResourceSettings,
) -> ExportMetricsServiceRequest {
    let mut by_pid: Vec<(i64, [Vec<NumberDataPoint>; 6])> = Vec::new();
    for sample in samples {
        let at = match by_pid.iter().position(|(pid, _)| *pid == sample.pid) {
            Some(at) => at,
            None => {
                by_pid.push((sample.pid, Default::default()));
                by_pid.len() - 1
            }
        };
        for (i, value) in sample_values(sample).into_iter().enumerate() {
            let Some(value) = value else { continue };
            let attributes = if GAUGES[i].0 == "system.memory.usage" {
                vec![string("system.memory.state", "used")]
            } else {
                Vec::new()
            };
            by_pid[at].1[i].push(NumberDataPoint {
                attributes,
                time_unix_nano: sample.ts_ns.max(0) as u64,
                value: Some(value),
                ..Default::default()
            });
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: by_pid
            .into_iter()
            .map(|(pid, points)| ResourceMetrics {
                resource: Some(settings.resource(pid)),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics: GAUGES
                        .iter()
                        .zip(points)
                        .filter(|(_, points)| !points.is_empty())
                        .map(|(&(name, unit, description), data_points)| Metric {
                            name: name.to_owned(),
                            unit: unit.to_owned(),
                            description: description.to_owned(),
                            data: Some(metric::Data::Gauge(Gauge { data_points })),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// The data points of a metrics request: what a collector's
/// `rejected_data_points` counts against.
pub fn data_points(request: &ExportMetricsServiceRequest) -> u64 {
    request
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(metric::Data::Gauge(g)) => g.data_points.len() as u64,
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> SpanRow {
        SpanRow {
            span_id: -2,
            parent_id: Some(0x0102_0304_0506_0708),
            trace_hi: 0x0a0b,
            trace_id: 0x0102_0304_0506_0708,
            name: "load".into(),
            module: "app::db".into(),
            group_name: "db".into(),
            kind: "async".into(),
            file: "src/db.rs".into(),
            line: 42,
            status: "panic".into(),
            error: Some("boom".into()),
            start_ns: 1_700_000_000_000_000_000,
            duration_ns: 2_500,
            busy_ns: 1_000,
            items: None,
            thread: "worker-1".into(),
            pid: 77,
            fields: Some(
                r#"{"user":"ann","n":3,"big":18446744073709551615,"ratio":0.5,"ok":true,"list":[1,2],"none":null}"#
                    .into(),
            ),
            rss_bytes: Some(4096),
            cpu_ns: None,
            alloc_bytes: Some(64),
        }
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a any_value::Value> {
        let found: Vec<_> = span.attributes.iter().filter(|kv| kv.key == key).collect();
        assert!(found.len() <= 1, "{key} twice");
        found.first()?.value.as_ref()?.value.as_ref()
    }

    #[test]
    fn one_row_maps_as_the_table_says() {
        use any_value::Value::{BoolValue, DoubleValue, IntValue, StringValue};
        let span = encode_span(&row());
        assert_eq!(
            span.span_id,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(span.parent_span_id, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(
            span.trace_id,
            [0, 0, 0, 0, 0, 0, 0x0a, 0x0b, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(span.name, "load");
        assert_eq!(span.kind, span::SpanKind::Internal as i32);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_000_000_002_500);
        let status = span.status.as_ref().unwrap();
        assert_eq!(status.code, status::StatusCode::Error as i32);
        assert_eq!(status.message, "boom");
        let s = |v: &str| Some(StringValue(v.into()));
        assert_eq!(attribute(&span, "code.function").cloned(), s("load"));
        assert_eq!(attribute(&span, "code.namespace").cloned(), s("app::db"));
        assert_eq!(attribute(&span, "code.filepath").cloned(), s("src/db.rs"));
        assert_eq!(attribute(&span, "code.lineno").cloned(), Some(IntValue(42)));
        assert_eq!(attribute(&span, "thread.name").cloned(), s("worker-1"));
        assert_eq!(attribute(&span, "monitor.kind").cloned(), s("async"));
        assert_eq!(attribute(&span, "monitor.group").cloned(), s("db"));
        assert_eq!(
            attribute(&span, "monitor.busy_ns").cloned(),
            Some(IntValue(1000))
        );
        assert_eq!(attribute(&span, "monitor.status").cloned(), s("panic"));
        assert_eq!(
            attribute(&span, "monitor.rss_bytes").cloned(),
            Some(IntValue(4096))
        );
        assert_eq!(
            attribute(&span, "monitor.alloc_bytes").cloned(),
            Some(IntValue(64))
        );
        assert_eq!(attribute(&span, "monitor.items"), None);
        assert_eq!(attribute(&span, "monitor.cpu_ns"), None);
        assert_eq!(attribute(&span, "monitor.field.user").cloned(), s("ann"));
        assert_eq!(
            attribute(&span, "monitor.field.n").cloned(),
            Some(IntValue(3))
        );
        assert_eq!(
            attribute(&span, "monitor.field.big").cloned(),
            Some(DoubleValue(u64::MAX as f64))
        );
        assert_eq!(
            attribute(&span, "monitor.field.ratio").cloned(),
            Some(DoubleValue(0.5))
        );
        assert_eq!(
            attribute(&span, "monitor.field.ok").cloned(),
            Some(BoolValue(true))
        );
        assert_eq!(attribute(&span, "monitor.field.list").cloned(), s("[1,2]"));
        assert_eq!(attribute(&span, "monitor.field.none").cloned(), s("null"));
    }

    #[test]
    fn statuses_map_to_codes() {
        let code = |status: &str, error: Option<&str>| {
            let mut r = row();
            r.status = status.into();
            r.error = error.map(Into::into);
            let span = encode_span(&r);
            let marked = attribute(&span, "monitor.status").cloned();
            (span.status.map(|s| (s.code, s.message)), marked)
        };
        let error = status::StatusCode::Error as i32;
        assert_eq!(code("ok", None), (None, None));
        assert_eq!(code("error", Some("e")), (Some((error, "e".into())), None));
        assert_eq!(
            code("cancelled", None),
            (
                None,
                Some(any_value::Value::StringValue("cancelled".into()))
            )
        );
    }

    #[test]
    fn a_root_has_no_parent_and_text_fields_are_kept() {
        let mut r = row();
        r.parent_id = None;
        r.fields = Some("not json".into());
        let span = encode_span(&r);
        assert!(span.parent_span_id.is_empty());
        assert_eq!(
            attribute(&span, "monitor.fields").cloned(),
            Some(any_value::Value::StringValue("not json".into()))
        );
    }

    #[test]
    fn negative_ids_keep_their_bits() {
        assert_eq!(span_id_bytes(i64::MIN), [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            span_id_bytes(i64::MAX),
            [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        let id = trace_id_bytes(-1, -1);
        assert_eq!(id, [0xff; 16]);
        let id = trace_id_bytes(1, -1);
        assert_eq!(id[..8], [0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(id[8..], [0xff; 8]);
    }

    #[test]
    fn samples_become_gauges_per_process() {
        let sample = |ts_ns, pid| SampleRow {
            ts_ns,
            pid,
            cpu_percent: Some(12.5),
            rss_bytes: Some(100),
            virtual_bytes: Some(200),
            threads: Some(3),
            system_memory_used_bytes: Some(1000),
            system_memory_total_bytes: Some(2000),
        };
        let request = encode_samples(
            &[sample(1, 10), sample(2, 11), sample(3, 10)],
            &ResourceSettings::new(Some("s"), Some("h")),
        );
        assert_eq!(request.resource_metrics.len(), 2);
        assert_eq!(data_points(&request), 18);
        let first = &request.resource_metrics[0];
        let pid = &first.resource.as_ref().unwrap().attributes[2];
        assert_eq!(pid.key, "process.pid");
        let metrics = &first.scope_metrics[0].metrics;
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "monitor.process.cpu.percent",
                "process.memory.usage",
                "process.memory.virtual",
                "process.thread.count",
                "system.memory.usage",
                "system.memory.limit"
            ]
        );
        let Some(metric::Data::Gauge(rss)) = &metrics[1].data else {
            panic!("a gauge")
        };
        let points: Vec<_> = rss
            .data_points
            .iter()
            .map(|p| (p.time_unix_nano, p.value))
            .collect();
        assert_eq!(
            points,
            [
                (1, Some(number_data_point::Value::AsInt(100))),
                (3, Some(number_data_point::Value::AsInt(100)))
            ]
        );
        let Some(metric::Data::Gauge(used)) = &metrics[4].data else {
            panic!("a gauge")
        };
        assert_eq!(used.data_points[0].attributes[0].key, "system.memory.state");
    }
}
