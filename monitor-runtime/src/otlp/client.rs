//! A blocking OTLP/HTTP sender: one POST per request, gzip, retries with
//! backoff. No global state: a CLI makes one, and a sender thread can own
//! one and be stopped through its [`Stop`] handle.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::config::otlp::check_endpoint;
use crate::OtlpConfig;

/// What a request carries, and so the path it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Spans: `/v1/traces`.
    Traces,
    /// Metrics: `/v1/metrics`.
    Metrics,
}

impl Signal {
    /// The path OTLP/HTTP gives this signal.
    pub fn path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }
}

/// The URL a signal is posted to. An endpoint whose path ends in a signal's
/// path (`/v1/traces`, `/v1/metrics`) names that signal's URL, which is
/// used as it is; the other signal's is its sibling. Any other endpoint is
/// a base, and the signal's path is appended (after its trailing `/`). This
/// is the OpenTelemetry spec's rule for `OTEL_EXPORTER_OTLP_ENDPOINT` (a
/// base) and `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), told apart
/// by the path, since `[otlp]` has one key.
///
/// ```
/// use monitor_runtime::otlp::{signal_url, Signal};
///
/// assert_eq!(signal_url("http://c:4318", Signal::Traces), "http://c:4318/v1/traces");
/// assert_eq!(signal_url("http://c:4318/", Signal::Metrics), "http://c:4318/v1/metrics");
/// assert_eq!(signal_url("http://c/otlp", Signal::Traces), "http://c/otlp/v1/traces");
/// assert_eq!(signal_url("http://c/v1/traces", Signal::Traces), "http://c/v1/traces");
/// assert_eq!(signal_url("http://c/v1/traces", Signal::Metrics), "http://c/v1/metrics");
/// assert_eq!(signal_url("http://c/?t=1", Signal::Traces), "http://c/v1/traces?t=1");
/// ```
pub fn signal_url(endpoint: &str, signal: Signal) -> String {
    let (base, query) = match endpoint.find(['?', '#']) {
        Some(at) => endpoint.split_at(at),
        None => (endpoint, ""),
    };
    let base = base.trim_end_matches('/');
    let root = [Signal::Traces, Signal::Metrics]
        .iter()
        .find_map(|s| base.strip_suffix(s.path()))
        .unwrap_or(base);
    format!("{root}{}{query}", signal.path())
}

/// How a [`Client`] talks to the collector.
///
/// ```
/// use std::time::Duration;
/// use monitor_runtime::otlp::ClientSettings;
/// use monitor_runtime::OtlpConfig;
///
/// let settings = ClientSettings::from_config(&OtlpConfig::new("http://c:4318").header("k", "v"))
///     .max_attempts(3)
///     .backoff(Duration::from_millis(50), Duration::from_secs(1));
/// assert_eq!(settings.headers, [("k".to_owned(), "v".to_owned())]);
/// assert_eq!(settings.timeout, Duration::from_secs(10));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientSettings {
    /// The collector (see [`signal_url`]).
    pub endpoint: String,
    /// Sent with every request.
    pub headers: Vec<(String, String)>,
    /// How long one attempt may take, connecting included.
    pub timeout: Duration,
    /// Attempts per request, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait before the first retry; it doubles for each further one.
    pub backoff_base: Duration,
    /// The longest wait between two attempts without `Retry-After`.
    pub backoff_max: Duration,
    /// The longest `Retry-After` honoured; a longer one is cut to it.
    pub retry_after_max: Duration,
    /// gzip level, 0 to 9 (1: fast; 512 spans of one function, 312 bytes
    /// each in protobuf, shrink 18 times at level 1 and 22 at level 6).
    pub gzip_level: u32,
}

impl ClientSettings {
    /// Defaults: 10 s timeout, 5 attempts, backoff from 200 ms doubling to
    /// 5 s, `Retry-After` up to 30 s, gzip level 1.
    pub fn new(endpoint: impl Into<String>) -> ClientSettings {
        ClientSettings {
            endpoint: endpoint.into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            max_attempts: 5,
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            retry_after_max: Duration::from_secs(30),
            gzip_level: 1,
        }
    }

    /// The endpoint, headers and timeout of an `[otlp]` table; the rest as
    /// [`ClientSettings::new`].
    pub fn from_config(config: &OtlpConfig) -> ClientSettings {
        ClientSettings {
            headers: config
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            timeout: Duration::from_millis(config.timeout_ms),
            ..ClientSettings::new(config.endpoint.clone())
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets `max_attempts`.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets `backoff_base` and `backoff_max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Sets `retry_after_max`.
    pub fn retry_after_max(mut self, max: Duration) -> Self {
        self.retry_after_max = max;
        self
    }
}

/// What became of the items (spans, or metric data points) of one or more
/// requests.
///
/// ```
/// use monitor_runtime::otlp::Outcome;
///
/// let mut total = Outcome::default();
/// let mut one = Outcome::default();
/// (one.sent, one.refused, one.retries) = (10, 2, 1);
/// total.add(&one);
/// total.add(&one);
/// assert_eq!((total.sent, total.refused, total.retries), (20, 4, 2));
/// assert!(!total.all_delivered());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// Accepted by the collector.
    pub sent: u64,
    /// Refused for good: a status that must not be retried (4xx other than
    /// 429, 500, 501, ...), or rejected by a `partial_success`.
    pub refused: u64,
    /// Not delivered: attempts used up, stopped, or a transport error that
    /// cannot pass (a malformed URL).
    pub failed: u64,
    /// Attempts after the first.
    pub retries: u64,
    /// The last error (or partial-success message), for people.
    pub last_error: Option<String>,
}

impl Outcome {
    /// Adds `other`'s counts; its error, when it has one, becomes the last.
    pub fn add(&mut self, other: &Outcome) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.failed += other.failed;
        self.retries += other.retries;
        if other.last_error.is_some() {
            self.last_error.clone_from(&other.last_error);
        }
    }

    /// Whether every item reached the collector and was kept.
    pub fn all_delivered(&self) -> bool {
        self.refused == 0 && self.failed == 0
    }
}

/// Tells a [`Client`] to give up: now ([`Stop::stop`]) or at a deadline
/// ([`Stop::stop_at`]). A backoff wait ends at once when it would reach
/// past the deadline, and no attempt lasts past it, so a shutdown waits for
/// the client at most until the deadline (plus the time to close a
/// connection). Clones share the state.
///
/// ```
/// use std::time::{Duration, Instant};
/// use monitor_runtime::otlp::Stop;
///
/// let stop = Stop::new();
/// assert!(!stop.is_stopped());
/// stop.stop_at(Instant::now() + Duration::from_secs(60));
/// assert!(!stop.is_stopped());
/// stop.clone().stop();
/// assert!(stop.is_stopped());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Stop {
    inner: Arc<(Mutex<Option<Instant>>, Condvar)>,
}

impl Stop {
    /// Not stopped.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Gives up now: waits end, no attempt starts.
    pub fn stop(&self) {
        self.stop_at(Instant::now());
    }

    /// Gives up at `deadline` (an earlier deadline already set stays).
    pub fn stop_at(&self, deadline: Instant) {
        let (lock, wake) = &*self.inner;
        let mut at = lock.lock().unwrap_or_else(PoisonError::into_inner);
        *at = Some(at.map_or(deadline, |d| d.min(deadline)));
        wake.notify_all();
    }

    /// The deadline, if one is set.
    pub fn deadline(&self) -> Option<Instant> {
        *self.inner.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the deadline has passed.
    pub fn is_stopped(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the deadline; `None` without one.
    fn remaining(&self) -> Option<Duration> {
        self.deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Waits `delay`, unless the deadline comes first (then at once, since
    /// no attempt could follow): whether the caller may go on.
    fn sleep(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        let (lock, wake) = &*self.inner;
        let mut at = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if at.is_some_and(|d| d <= until) {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            at = wake
                .wait_timeout(at, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Why a [`Client`] could not be made.
#[derive(Debug, thiserror::Error)]
#[error("OTLP endpoint: {0}")]
pub struct EndpointError(String);

/// A blocking OTLP/HTTP client (protobuf, gzip). Keeps its connection
/// between requests.
///
/// ```no_run
/// use monitor_runtime::otlp::{encode_spans, Client, ClientSettings, ResourceSettings, SpanRow};
///
/// let client = Client::new(ClientSettings::new("http://localhost:4318"))?;
/// let request = encode_spans(&[SpanRow::default()], &ResourceSettings::new(Some("svc"), None));
/// let outcome = client.export_spans(&request);
/// println!("sent {}, refused {}, failed {}", outcome.sent, outcome.refused, outcome.failed);
/// # Ok::<(), monitor_runtime::otlp::EndpointError>(())
/// ```
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    settings: ClientSettings,
    traces_url: String,
    metrics_url: String,
    stop: Stop,
    /// Jitter's xorshift state (no `rand` for one number per retry).
    jitter: AtomicU64,
}

impl Client {
    /// A client for `settings.endpoint`, which must be an `http://` URL
    /// (https needs a TLS stack this build does not have).
    pub fn new(settings: ClientSettings) -> Result<Client, EndpointError> {
        check_endpoint(&settings.endpoint).map_err(EndpointError)?;
        if settings
            .endpoint
            .to_ascii_lowercase()
            .starts_with("https://")
        {
            return Err(EndpointError(format!(
                "{}: https is not supported yet (no TLS in this build); use http://, such as a \
                 collector on localhost",
                settings.endpoint
            )));
        }
        let agent = ureq::AgentBuilder::new()
            // A 3xx to a POST would be followed as a GET, without the body.
            .redirects(0)
            .build();
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Ok(Client {
            agent,
            traces_url: signal_url(&settings.endpoint, Signal::Traces),
            metrics_url: signal_url(&settings.endpoint, Signal::Metrics),
            settings,
            stop: Stop::new(),
            jitter: AtomicU64::new(seed),
        })
    }

    /// Shares `stop` (one handle for several clients).
    pub fn with_stop(mut self, stop: Stop) -> Client {
        self.stop = stop;
        self
    }

    /// A handle that stops this client's waits and attempts.
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// The URL `signal` is posted to.
    pub fn url(&self, signal: Signal) -> &str {
        match signal {
            Signal::Traces => &self.traces_url,
            Signal::Metrics => &self.metrics_url,
        }
    }

    /// Sends spans; the items counted are the request's spans.
    pub fn export_spans(&self, request: &ExportTraceServiceRequest) -> Outcome {
        let spans = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum();
        self.send(Signal::Traces, &request.encode_to_vec(), spans)
    }

    /// Sends metrics; the items counted are the request's data points.
    pub fn export_metrics(&self, request: &ExportMetricsServiceRequest) -> Outcome {
        let points = super::encode::data_points(request);
        self.send(Signal::Metrics, &request.encode_to_vec(), points)
    }

    /// Posts `body` (an encoded export request of `signal` holding `items`
    /// spans or data points), gzipped, retrying as the module says.
    pub fn send(&self, signal: Signal, body: &[u8], items: u64) -> Outcome {
        let mut outcome = Outcome::default();
        let url = self.url(signal);
        let body = match gzip(body, self.settings.gzip_level) {
            Ok(body) => body,
            Err(e) => {
                outcome.failed = items;
                outcome.last_error = Some(format!("gzip: {e}"));
                return outcome;
            }
        };
        let mut attempt = 1;
        loop {
            let timeout = match self.stop.remaining() {
                Some(left) if left.is_zero() => {
                    outcome.failed = items;
                    outcome.last_error = Some(stopped(outcome.last_error.take()));
                    return outcome;
                }
                Some(left) => left.min(self.settings.timeout),
                None => self.settings.timeout,
            };
            let mut request = self
                .agent
                .post(url)
                .timeout(timeout)
                .set("Content-Type", "application/x-protobuf")
                .set("Content-Encoding", "gzip");
            for (name, value) in &self.settings.headers {
                request = request.set(name, value);
            }
            let retry_after = match request.send_bytes(&body) {
                Ok(response) => {
                    let (count, message) = rejected(signal, response);
                    // A collector cannot reject more than it was sent.
                    let count = count.min(items);
                    outcome.sent = items - count;
                    outcome.refused = count;
                    if count > 0 || message.is_some() {
                        outcome.last_error = Some(format!(
                            "{url}: partial success, {count} rejected: {}",
                            message.unwrap_or_default()
                        ));
                    }
                    return outcome;
                }
                Err(ureq::Error::Status(code, response)) => {
                    let wait = response
                        .header("Retry-After")
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    outcome.last_error = Some(format!("{url}: HTTP {code}{}", body_text(response)));
                    if !matches!(code, 429 | 502 | 503 | 504) {
                        outcome.refused = items;
                        return outcome;
                    }
                    wait
                }
                Err(ureq::Error::Transport(e)) => {
                    outcome.last_error = Some(format!("{url}: {e}"));
                    use ureq::ErrorKind::*;
                    if matches!(e.kind(), InvalidUrl | UnknownScheme | InvalidProxyUrl) {
                        outcome.failed = items;
                        return outcome;
                    }
                    None
                }
            };
            if attempt >= self.settings.max_attempts.max(1) {
                outcome.failed = items;
                return outcome;
            }
            let delay = match retry_after {
                Some(wait) => wait.min(self.settings.retry_after_max),
                None => self.backoff(attempt),
            };
            if !self.stop.sleep(delay) {
                outcome.failed = items;
                outcome.last_error = Some(stopped(outcome.last_error.take()));
                return outcome;
            }
            attempt += 1;
            outcome.retries += 1;
        }
    }

    /// The wait after the `attempt`th failure: `backoff_base` doubled per
    /// attempt, capped at `backoff_max`, with full jitter over its upper
    /// half (so that many clients told to wait do not come back together).
    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(20));
        let cap = doubled.min(self.settings.backoff_max);
        let mut x = self.jitter.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter.store(x, Ordering::Relaxed);
        let fraction = 0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
        cap.mul_f64(fraction)
    }
}

fn stopped(error: Option<String>) -> String {
    match error {
        Some(e) => format!("stopped before a retry succeeded (last: {e})"),
        None => "stopped before the request was sent".to_owned(),
    }
}

fn gzip(body: &[u8], level: u32) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4 + 64),
        flate2::Compression::new(level.min(9)),
    );
    encoder.write_all(body)?;
    encoder.finish()
}

/// Reads up to 64 KiB of an answer (the rest is not needed, and reading
/// it whole lets the connection be reused).
fn read_body(response: ureq::Response) -> Vec<u8> {
    let mut body = Vec::new();
    let _ = response.into_reader().take(64 << 10).read_to_end(&mut body);
    body
}

/// `: <text>` of an error answer, when it is short text (a JSON or plain
/// message), for the report.
fn body_text(response: ureq::Response) -> String {
    let protobuf = response.content_type() == "application/x-protobuf";
    let body = read_body(response);
    match std::str::from_utf8(&body) {
        Ok(text) if !protobuf && !text.trim().is_empty() => {
            let text: String = text.trim().chars().take(200).collect();
            format!(": {text}")
        }
        _ => String::new(),
    }
}

/// Items a 2xx answer's `partial_success` rejected, with its message. An
/// answer that is not a protobuf response (empty, or JSON) rejects none.
fn rejected(signal: Signal, response: ureq::Response) -> (u64, Option<String>) {
    let body = read_body(response);
    if body.is_empty() {
        return (0, None);
    }
    let (count, message) = match signal {
        Signal::Traces => match ExportTraceServiceResponse::decode(body.as_slice()) {
            Ok(r) => r
                .partial_success
                .map_or((0, String::new()), |p| (p.rejected_spans, p.error_message)),
            Err(_) => return (0, None),
        },
        Signal::Metrics => match ExportMetricsServiceResponse::decode(body.as_slice()) {
            Ok(r) => r.partial_success.map_or((0, String::new()), |p| {
                (p.rejected_data_points, p.error_message)
            }),
            Err(_) => return (0, None),
        },
    };
    (
        count.max(0) as u64,
        (!message.is_empty()).then_some(message),
    )
}

/// `Retry-After` (RFC 9110): a number of seconds, or an HTTP-date, which
/// counts from `now` (a date already past is no wait).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use monitor_runtime::otlp::parse_retry_after;
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_480); // Wed, 21 Oct 2015 07:28:00 GMT
/// assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
/// assert_eq!(
///     parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
///     Some(Duration::from_secs(30))
/// );
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // An absurd number of seconds still parses: the client caps it.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "-1", "1.5", "tomorrow"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn endpoint_paths() {
        let url = |e: &str, s| signal_url(e, s);
        assert_eq!(
            url("http://c:4318", Signal::Traces),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            url("http://c:4318///", Signal::Traces),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            url("http://c:4318/v1/metrics", Signal::Metrics),
            "http://c:4318/v1/metrics"
        );
        assert_eq!(
            url("http://c:4318/v1/metrics", Signal::Traces),
            "http://c:4318/v1/traces"
        );
        assert_eq!(
            url("http://c/v1/traces/", Signal::Traces),
            "http://c/v1/traces"
        );
        // Only a whole signal path counts.
        assert_eq!(
            url("http://c/v1/tracesx", Signal::Traces),
            "http://c/v1/tracesx/v1/traces"
        );
        assert_eq!(
            url("http://c/a/v1/traces?k=v", Signal::Metrics),
            "http://c/a/v1/metrics?k=v"
        );
    }

    #[test]
    fn backoff_doubles_within_jitter_and_cap() {
        let client = Client::new(
            ClientSettings::new("http://127.0.0.1:9")
                .backoff(Duration::from_millis(100), Duration::from_millis(350)),
        )
        .unwrap();
        for _ in 0..100 {
            let waits: Vec<Duration> = (1..=4).map(|a| client.backoff(a)).collect();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            assert!((50.0..=100.0).contains(&ms(waits[0])), "{waits:?}");
            assert!((100.0..=200.0).contains(&ms(waits[1])), "{waits:?}");
            assert!((175.0..=350.0).contains(&ms(waits[2])), "{waits:?}");
            assert!((175.0..=350.0).contains(&ms(waits[3])), "{waits:?}");
        }
    }

    #[test]
    fn https_and_non_urls_are_refused_up_front() {
        let err = Client::new(ClientSettings::new("https://c:4318")).unwrap_err();
        assert!(err.to_string().contains("https is not supported"), "{err}");
        let err = Client::new(ClientSettings::new("c:4318")).unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }

    #[test]
    fn a_stop_ends_backoff_waits_and_attempts() {
        // Nothing listens on the discard port of loopback: connection
        // refused, at once, every attempt.
        let client = Client::new(
            ClientSettings::new("http://127.0.0.1:9")
                .max_attempts(1000)
                .backoff(Duration::from_secs(3600), Duration::from_secs(3600)),
        )
        .unwrap();
        let stop = client.stop_handle();
        stop.stop_at(Instant::now() + Duration::from_secs(30));
        let started = Instant::now();
        let outcome = client.send(Signal::Traces, b"", 3);
        // The hour-long wait would pass the deadline: given up at once.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert_eq!((outcome.sent, outcome.failed, outcome.retries), (0, 3, 0));
        assert!(outcome.last_error.unwrap().contains("stopped"));

        let waiting = Stop::new();
        let other = waiting.clone();
        let stopper = std::thread::spawn(move || other.stop());
        // Whenever the stop lands, the sleep ends without its hour.
        let went_on = waiting.sleep(Duration::from_secs(3600));
        stopper.join().unwrap();
        assert!(!went_on);
        assert!(waiting.is_stopped());
        assert!(!waiting.sleep(Duration::ZERO));
    }
}
