//! An OTLP/HTTP receiver on loopback for the export tests and bench: it
//! gunzips and decodes every request with opentelemetry-proto's own types
//! (not the exporter's code), keeps what it got, and answers as scripted.
//! Stands alone (no `super::`), so `benches/otlp.rs` can include it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with an empty `ExportTraceServiceResponse`.
    Accept,
    /// This status, with `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// 200 with a `partial_success` rejecting this many spans.
    RejectSome(i64),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    /// The body after gunzip.
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub reply: Reply,
}

impl Request {
    /// Whether the collector kept it (a 200, partial or not).
    pub fn accepted(&self) -> bool {
        !matches!(self.reply, Reply::Status(..))
    }

    pub fn traces(&self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(self.body.as_slice()).expect("a trace request")
    }

    pub fn metrics(&self) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest::decode(self.body.as_slice()).expect("a metrics request")
    }

    /// The spans of a trace request.
    pub fn span_count(&self) -> usize {
        self.traces()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

struct Shared {
    script: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<Request>>,
    /// Keep requests (tests), or only count them (the bench).
    keep: bool,
    spans: AtomicU64,
    requests_seen: AtomicU64,
    /// Rung at each request, for [`Receiver::wait_for_spans`].
    arrived: Condvar,
    arrived_lock: Mutex<()>,
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// Accepts everything and keeps every request.
    pub fn start() -> Receiver {
        Receiver::scripted([])
    }

    /// Answers the first requests to `/v1/traces` with `script`, in order,
    /// then accepts.
    pub fn scripted(script: impl IntoIterator<Item = Reply>) -> Receiver {
        Receiver::new(script.into_iter().collect(), true)
    }

    /// Accepts everything, at `addr` (`127.0.0.1:PORT`): a collector back
    /// where it was.
    pub fn at(addr: &str) -> Receiver {
        Receiver::bound(
            std::net::TcpListener::bind(addr).expect("bind again"),
            VecDeque::new(),
            true,
        )
    }

    /// Stops listening (a collector going away), keeping what arrived.
    pub fn stopped(mut self) -> Receiver {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
        self
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// Waits until at least `spans` spans arrived, for at most `limit`;
    /// whether they did.
    pub fn wait_for_spans(&self, spans: u64, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut lock = self.shared.arrived_lock.lock().unwrap();
        loop {
            if self.shared.spans.load(Ordering::SeqCst) >= spans {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            lock = self.shared.arrived.wait_timeout(lock, left).unwrap().0;
        }
    }

    /// Accepts everything, decodes it, and only counts spans (for a bench:
    /// a million decoded spans would not fit the point).
    pub fn counting() -> Receiver {
        Receiver::new(VecDeque::new(), false)
    }

    fn new(script: VecDeque<Reply>, keep: bool) -> Receiver {
        Receiver::bound(
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind"),
            script,
            keep,
        )
    }

    fn bound(listener: std::net::TcpListener, script: VecDeque<Reply>, keep: bool) -> Receiver {
        let shared = Arc::new(Shared {
            script: Mutex::new(script),
            requests: Mutex::new(Vec::new()),
            keep,
            spans: AtomicU64::new(0),
            requests_seen: AtomicU64::new(0),
            arrived: Condvar::new(),
            arrived_lock: Mutex::new(()),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(receive)
            .layer(DefaultBodyLimit::max(256 << 20))
            .with_state(shared.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            shared,
            runtime: Some(runtime),
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The requests to `path` (`/v1/traces`, `/v1/metrics`).
    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Each span the receiver accepted, with its resource, in arrival order.
    pub fn accepted_spans(&self) -> Vec<(Resource, Span)> {
        let mut spans = Vec::new();
        for request in self.requests_to("/v1/traces") {
            if !request.accepted() {
                continue;
            }
            for resource_spans in request.traces().resource_spans {
                let resource = resource_spans.resource.unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    assert_eq!(scope.scope.as_ref().unwrap().name, "monitor");
                    for span in scope.spans {
                        spans.push((resource.clone(), span));
                    }
                }
            }
        }
        spans
    }

    /// Spans decoded so far (all requests to `/v1/traces`, accepted or not).
    pub fn span_count(&self) -> u64 {
        self.shared.spans.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn request_count(&self) -> u64 {
        self.shared.requests_seen.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Waits for the listener to close: a test may bind its port
            // again at once (a collector coming back).
            runtime.shutdown_timeout(std::time::Duration::from_secs(2));
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = if headers
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes() == b"gzip")
    {
        let mut plain = Vec::new();
        if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain) {
            return (StatusCode::BAD_REQUEST, format!("gunzip: {e}")).into_response();
        }
        plain
    } else {
        body.to_vec()
    };
    let path = uri.path().to_owned();
    // Decoded here, so that a malformed request fails the test loudly.
    let spans = match path.as_str() {
        "/v1/traces" => match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(request) => request
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum(),
            Err(e) => return (StatusCode::BAD_REQUEST, format!("decode: {e}")).into_response(),
        },
        "/v1/metrics" => match ExportMetricsServiceRequest::decode(body.as_slice()) {
            Ok(_) => 0,
            Err(e) => return (StatusCode::BAD_REQUEST, format!("decode: {e}")).into_response(),
        },
        _ => return (StatusCode::NOT_FOUND, "not an OTLP path").into_response(),
    };
    shared.requests_seen.fetch_add(1, Ordering::SeqCst);
    // The script is for spans; metrics, which travel beside them, are
    // accepted.
    let scripted = match path.as_str() {
        "/v1/traces" => shared.script.lock().unwrap().pop_front(),
        _ => None,
    };
    let reply = scripted.unwrap_or(Reply::Accept);
    if shared.keep {
        shared.requests.lock().unwrap().push(Request {
            path,
            headers: headers.clone(),
            body,
            reply: reply.clone(),
        });
    }
    // Counted only once kept, so a waiter sees what it waited for.
    shared.spans.fetch_add(spans, Ordering::SeqCst);
    drop(shared.arrived_lock.lock().unwrap());
    shared.arrived.notify_all();
    let protobuf = [("content-type", "application/x-protobuf")];
    match reply {
        Reply::Accept => (
            protobuf,
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
            .into_response(),
        Reply::RejectSome(rejected_spans) => {
            let answer = ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans,
                    error_message: "spans too old".into(),
                }),
            };
            (protobuf, answer.encode_to_vec()).into_response()
        }
        Reply::Status(code, retry_after) => {
            let mut response =
                (StatusCode::from_u16(code).unwrap(), "scripted refusal").into_response();
            if let Some(after) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            response
        }
    }
}

/// The value of attribute `key`, if present (and present once).
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    let found: Vec<&KeyValue> = attributes.iter().filter(|kv| kv.key == key).collect();
    assert!(
        found.len() <= 1,
        "attribute {key} given {} times",
        found.len()
    );
    found.first()?.value.as_ref()?.value.as_ref()
}

/// A string attribute's value.
pub fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attribute(attributes, key)? {
        any_value::Value::StringValue(s) => Some(s),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

/// An int attribute's value.
pub fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        any_value::Value::IntValue(i) => Some(*i),
        other => panic!("{key} is not an int: {other:?}"),
    }
}
