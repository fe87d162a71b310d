//! `[otlp]`: where and how spans are sent to an OpenTelemetry collector.
//! Parsed whatever the crate's features, so that one `monitor.toml` serves
//! a program built without the `otlp` feature and the `monitor` CLI alike.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The `[otlp]` table: an OTLP/HTTP collector and how to talk to it.
///
/// ```
/// use monitor_runtime::Config;
///
/// let config = Config::from_toml_str(r#"
///     [otlp]
///     endpoint = "http://localhost:4318"
///     headers = { authorization = "Bearer abc" }
///     service_name = "checkout"
///     max_batch = 1000
/// "#).unwrap();
/// let otlp = config.otlp.unwrap();
/// assert_eq!(otlp.endpoint, "http://localhost:4318");
/// assert_eq!(otlp.headers["authorization"], "Bearer abc");
/// assert_eq!(otlp.service_name.as_deref(), Some("checkout"));
/// assert_eq!((otlp.interval_ms, otlp.timeout_ms, otlp.max_batch), (1000, 10_000, 1000));
///
/// // Without the table there is nothing to send to.
/// assert!(Config::from_toml_str("").unwrap().otlp.is_none());
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP address, `http://host:4318` (`/v1/traces`
    /// and `/v1/metrics` are appended), or a full `.../v1/traces` URL, used
    /// as it is. Required when the table is present.
    #[serde(default)]
    pub endpoint: String,
    /// Sent with every request (`authorization`, a tenant id).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The resource's `service.name`. When unset, each process is named by
    /// its program's file name (the file's `processes` table), else
    /// `unknown_service`, as the OpenTelemetry SDKs say it.
    #[serde(default)]
    pub service_name: Option<String>,
    /// How often a live sender ships what is new, in milliseconds.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// How long one request may take, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The most spans in one request, from 1 to 100,000.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
}

/// The largest `max_batch` accepted: a collector's default request limit
/// (4 MiB in the OpenTelemetry Collector's gRPC receiver, which OTLP/HTTP
/// batches often meet on their way) is about 10,000 spans.
pub const MAX_BATCH_LIMIT: usize = 100_000;

fn default_interval_ms() -> u64 {
    1000
}
fn default_timeout_ms() -> u64 {
    10_000
}
fn default_max_batch() -> usize {
    512
}

/// Overrides (or sets) `otlp.endpoint`.
pub const ENV_OTLP_ENDPOINT: &str = "MONITOR_OTLP_ENDPOINT";

impl OtlpConfig {
    /// The defaults, sending to `endpoint`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use monitor_runtime::OtlpConfig;
    ///
    /// let otlp = OtlpConfig::new("http://collector:4318")
    ///     .header("x-tenant", "a")
    ///     .service_name("api")
    ///     .timeout(Duration::from_secs(2))
    ///     .max_batch(100);
    /// assert_eq!(otlp.check(), Ok(()));
    /// assert_eq!(otlp.timeout_ms, 2000);
    /// ```
    pub fn new(endpoint: impl Into<String>) -> OtlpConfig {
        OtlpConfig {
            endpoint: endpoint.into(),
            headers: BTreeMap::new(),
            service_name: None,
            interval_ms: default_interval_ms(),
            timeout_ms: default_timeout_ms(),
            max_batch: default_max_batch(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets `service_name`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Sets `interval_ms`.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval_ms = interval.as_millis() as u64;
        self
    }

    /// Sets `timeout_ms`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = timeout.as_millis() as u64;
        self
    }

    /// Sets `max_batch`.
    pub fn max_batch(mut self, spans: usize) -> Self {
        self.max_batch = spans;
        self
    }

    /// Checks the values: `Err((key, message))` names the first bad key,
    /// dotted as in `monitor.toml` (`otlp.endpoint`,
    /// `otlp.headers.<name>`).
    ///
    /// ```
    /// use monitor_runtime::OtlpConfig;
    ///
    /// let (key, message) = OtlpConfig::new("localhost:4318").check().unwrap_err();
    /// assert_eq!(key, "otlp.endpoint");
    /// assert!(message.contains("http://"), "{message}");
    /// ```
    pub fn check(&self) -> Result<(), (String, String)> {
        let bad = |key: &str, message: String| Err((key.to_owned(), message));
        if let Err(message) = check_endpoint(&self.endpoint) {
            return bad("otlp.endpoint", message);
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_token_byte) {
                return bad(
                    &format!("otlp.headers.{}", super::toml_key(name)),
                    format!(
                        "expected a header name (letters, digits and !#$%&'*+-.^_`|~), got {name:?}"
                    ),
                );
            }
            if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                return bad(
                    &format!("otlp.headers.{}", super::toml_key(name)),
                    "expected a header value without control characters (a newline would \
                     start another header)"
                        .into(),
                );
            }
        }
        if self.service_name.as_deref() == Some("") {
            return bad(
                "otlp.service_name",
                "expected a name, got an empty string (leave it out for the program's name)".into(),
            );
        }
        if self.interval_ms == 0 {
            return bad(
                "otlp.interval_ms",
                "expected at least 1 millisecond, got 0".into(),
            );
        }
        if self.timeout_ms == 0 {
            return bad(
                "otlp.timeout_ms",
                "expected at least 1 millisecond, got 0".into(),
            );
        }
        if !(1..=MAX_BATCH_LIMIT).contains(&self.max_batch) {
            return bad(
                "otlp.max_batch",
                format!(
                    "expected from 1 to {MAX_BATCH_LIMIT} spans a request, got {}",
                    self.max_batch
                ),
            );
        }
        Ok(())
    }
}

/// An `http://` or `https://` URL with a host: what ureq can be handed
/// without surprises. Not a full URL parser; the client reports the rest.
pub(crate) fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err("expected the collector's http:// or https:// URL (such as \
             http://localhost:4318), got none"
            .into());
    }
    let lower = endpoint.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
    else {
        return Err(format!(
            "expected an http:// or https:// URL (such as http://localhost:4318), got {endpoint:?}"
        ));
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(format!(
            "expected a host after the scheme, got {endpoint:?}"
        ));
    }
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "expected a URL without spaces or control characters, got {endpoint:?}"
        ));
    }
    Ok(())
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn error_of(toml: &str) -> String {
        Config::from_toml_str(toml).unwrap_err().to_string()
    }

    #[test]
    fn a_table_without_endpoint_names_it() {
        let err = error_of("[otlp]\nservice_name = \"a\"");
        assert!(
            err.contains("`otlp.endpoint`") && err.contains("got none"),
            "{err}"
        );
    }

    #[test]
    fn an_endpoint_without_scheme_names_it() {
        let err = error_of("[otlp]\nendpoint = \"collector:4318\"");
        assert!(
            err.contains("`otlp.endpoint`") && err.contains("\"collector:4318\""),
            "{err}"
        );
        let err = error_of("[otlp]\nendpoint = \"ftp://collector\"");
        assert!(err.contains("`otlp.endpoint`"), "{err}");
        let err = error_of("[otlp]\nendpoint = \"http://\"");
        assert!(
            err.contains("`otlp.endpoint`") && err.contains("host"),
            "{err}"
        );
        let err = error_of("[otlp]\nendpoint = \"http://a b\"");
        assert!(
            err.contains("`otlp.endpoint`") && err.contains("spaces"),
            "{err}"
        );
    }

    #[test]
    fn https_and_upper_case_schemes_are_urls() {
        for endpoint in ["https://c:4318", "HTTP://c", "http://[::1]:4318/v1/traces"] {
            let config = Config::from_toml_str(&format!("[otlp]\nendpoint = {endpoint:?}"));
            assert!(config.is_ok(), "{endpoint}: {config:?}");
        }
    }

    #[test]
    fn a_bad_header_names_it() {
        let err = error_of("[otlp]\nendpoint = \"http://c\"\nheaders = { \"a b\" = \"x\" }");
        assert!(err.contains("`otlp.headers.\"a b\"`"), "{err}");
        let err = error_of("[otlp]\nendpoint = \"http://c\"\nheaders = { x = \"1\\r\\nEvil: 2\" }");
        assert!(
            err.contains("`otlp.headers.x`") && err.contains("newline"),
            "{err}"
        );
        let err = error_of("[otlp]\nendpoint = \"http://c\"\nheaders = { x = 1 }");
        assert!(err.contains("`otlp.headers.x`"), "{err}");
    }

    #[test]
    fn bounds_name_their_key() {
        for (key, value) in [
            ("max_batch", "0"),
            ("max_batch", "100001"),
            ("interval_ms", "0"),
            ("timeout_ms", "0"),
            ("service_name", "\"\""),
        ] {
            let err = error_of(&format!("[otlp]\nendpoint = \"http://c\"\n{key} = {value}"));
            assert!(
                err.contains(&format!("`otlp.{key}`")),
                "{key} = {value}: {err}"
            );
        }
        let err = error_of("[otlp]\nendpoint = \"http://c\"\nmax_batch = -1");
        assert!(err.contains("`otlp.max_batch`"), "{err}");
        let config = Config::from_toml_str("[otlp]\nendpoint = \"http://c\"\nmax_batch = 100000");
        assert_eq!(config.unwrap().otlp.unwrap().max_batch, 100_000);
    }

    #[test]
    fn an_unknown_key_names_it() {
        let err = error_of("[otlp]\nendpoint = \"http://c\"\nendpont = \"x\"");
        assert!(err.contains("`otlp.endpont`"), "{err}");
    }

    #[test]
    fn the_environment_sets_or_overrides_the_endpoint() {
        let env = |value: &'static str| {
            move |key: &str| (key == super::ENV_OTLP_ENDPOINT).then(|| value.to_owned())
        };
        let set = Config::default()
            .with_env_overrides(env("http://from-env:4318"))
            .unwrap();
        assert_eq!(set.otlp.unwrap().endpoint, "http://from-env:4318");
        let file =
            Config::from_toml_str("[otlp]\nendpoint = \"http://file\"\nmax_batch = 7").unwrap();
        let overridden = file
            .with_env_overrides(env("http://env"))
            .unwrap()
            .otlp
            .unwrap();
        assert_eq!(
            (overridden.endpoint.as_str(), overridden.max_batch),
            ("http://env", 7)
        );
        let err = Config::default()
            .with_env_overrides(env("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`MONITOR_OTLP_ENDPOINT`") && err.contains("\"nope\""),
            "{err}"
        );
    }
}
