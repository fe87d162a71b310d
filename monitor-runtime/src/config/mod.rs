//! Configuration: `monitor.toml`, then environment overrides, or a builder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::clock::Clock;
use crate::error::Error;

mod alerts;
pub(crate) mod otlp;

pub use alerts::{AlertMetric, AlertOp, AlertRule, ThresholdText};
pub use otlp::{OtlpConfig, ENV_OTLP_ENDPOINT};

/// Everything `init` needs; `Config::default()` is what an empty
/// `monitor.toml` gives.
///
/// ```
/// use monitor_runtime::{Config, Overflow};
///
/// let config = Config::from_toml_str(r#"
///     db_path = "app.db"
///     [queue]
///     capacity = 10_000
///     overflow = "block"
/// "#).unwrap();
/// assert_eq!(config.queue.capacity, 10_000);
/// assert_eq!(config.queue.overflow, Overflow::Block);
///
/// let err = Config::from_toml_str("[queue]\ncapcity = 1").unwrap_err().to_string();
/// assert!(err.contains("queue.capcity"), "{err}");
///
/// let built = Config::default().db_path("other.db").retention_hours(48);
/// assert_eq!(built.retention.hours, 48);
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// The SQLite file spans are written to.
    pub db_path: PathBuf,
    /// `false` makes `init` start nothing and spans record nothing.
    pub enabled: bool,
    /// Permission bits of a database file `init` creates, and of its WAL
    /// and spill files (`0o600`: the owner only). Must let the owner read
    /// and write, and no one else write. An existing file that others may
    /// write (a `0o666` file made by hand) has those bits taken away.
    pub file_mode: u32,
    /// What `init` does with a file that is not a monitor database (random
    /// bytes, a truncated file, another program's SQLite file).
    pub on_corrupt: OnCorrupt,
    /// How long a write waits for another process's lock before the writer
    /// spills to `<db_path>-spill.jsonl` instead.
    pub busy_timeout_ms: u64,
    /// How long the process may wait at exit for what is still queued to be
    /// committed, when the guard was not dropped (`std::process::exit`, a
    /// guard in a `static` or leaked); `0` waits not at all. What the
    /// database has not taken by three quarters of it goes to the spill file.
    pub shutdown_timeout_ms: u64,
    /// Bound of the spill file in bytes; `0` means unbounded. Past it,
    /// non-error records are dropped (and counted in `monitor_stats.dropped`)
    /// instead of spilled; error records are spilled as long as the disk
    /// takes them.
    pub spill_max_bytes: u64,
    /// The queue between spans and the writer.
    pub queue: QueueConfig,
    /// How long partitions are kept.
    pub retention: RetentionConfig,
    /// The resource sampler.
    pub resources: ResourcesConfig,
    /// Captured argument, return and field values.
    pub capture: CaptureConfig,
    /// `[[alerts]]`: the rules `monitor check` evaluates.
    pub alerts: Vec<AlertRule>,
    /// `[otlp]`: the OpenTelemetry collector spans are exported to, if any
    /// (`monitor export --format otlp`).
    pub otlp: Option<OtlpConfig>,
    /// The time source of spans; [`Clock::system`] unless set in code.
    #[serde(skip)]
    pub clock: Clock,
    /// The resource sampler; `sysinfo` unless set in code.
    #[serde(skip)]
    pub(crate) sampler: SamplerSlot,
}

/// The sampler set with [`Config::resource_sampler`], if any.
#[derive(Clone, Default)]
pub(crate) struct SamplerSlot(pub(crate) Option<crate::resources::SharedSampler>);

impl std::fmt::Debug for SamplerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "custom"
        } else {
            "sysinfo"
        })
    }
}

/// `[queue]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Bound of the normal lane in records; `0` means unbounded. Each thread
    /// also buffers up to `min(capacity, 1024)` records of its own before
    /// handing them over. The error lane is bounded by `error_max_bytes` alone.
    pub capacity: usize,
    /// Bound of the normal lane's memory in bytes (each record's size plus
    /// its captured text: `args`, `ret`, `fields`, messages); `0` means
    /// unbounded. Whichever of `capacity` and `max_bytes` is reached first
    /// applies.
    pub max_bytes: usize,
    /// Bound of the error lane's memory in bytes, counted as `max_bytes`
    /// counts; `0` means unbounded. Error records are never dropped: past
    /// this bound the thread that ends one appends it to the spill file,
    /// from which the writer replays it.
    pub error_max_bytes: usize,
    /// What a full normal lane does.
    pub overflow: Overflow,
    /// How often the writer collects what idle threads have buffered.
    pub flush_interval_ms: u64,
}

/// What `init` does with a database file it cannot use.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnCorrupt {
    /// Refuse it: `init` returns an error naming the file, which is left
    /// untouched.
    Error,
    /// Move it (and its WAL) to `<db_path>.corrupt-<unix seconds>` and
    /// start a new file; the move is recorded in `monitor_events`.
    Rotate,
}

/// What happens to a normal (non-error) record when the normal lane is full.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Overflow {
    /// Drop the record and count it in `monitor_stats.dropped`.
    Drop,
    /// Wait until the writer makes room.
    Block,
}

/// `[retention]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RetentionConfig {
    /// Partitions whose hour ended more than this many hours ago are dropped.
    pub hours: i64,
    /// Seconds between retention passes.
    pub cleanup_interval_secs: u64,
    /// When set, a partition is copied here before it is dropped.
    pub archive_dir: PathBuf,
    /// Give the space back to the filesystem after drops.
    pub vacuum: bool,
}

/// `[capture]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct CaptureConfig {
    /// Longest text stored for one captured value or error message, in
    /// bytes; longer ones are cut and end with `…`.
    pub max_value_len: usize,
    /// Names that hold secrets, besides the built-in ones
    /// ([`is_secret_name`](crate::is_secret_name)): an argument, field or
    /// key inside captured text holding one of these names' words (any case,
    /// any separator) is stored as `***`.
    pub secret_names: Vec<String>,
    /// Regular expressions (the `regex` crate's syntax) of secret values,
    /// such as card numbers or JWTs: every match in captured text and
    /// messages is replaced by `***`.
    pub redact_patterns: Vec<String>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            max_value_len: 1024,
            secret_names: Vec::new(),
            redact_patterns: Vec::new(),
        }
    }
}

/// `[resources]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResourcesConfig {
    /// Milliseconds between resource samples; `0` disables the sampler.
    pub interval_ms: u64,
    /// Measure per-span thread CPU time.
    pub thread_cpu: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db_path: PathBuf::from("monitor.db"),
            enabled: true,
            file_mode: 0o600,
            on_corrupt: OnCorrupt::Error,
            busy_timeout_ms: 5_000,
            shutdown_timeout_ms: 5_000,
            spill_max_bytes: 1 << 30,
            queue: QueueConfig::default(),
            retention: RetentionConfig::default(),
            resources: ResourcesConfig::default(),
            capture: CaptureConfig::default(),
            alerts: Vec::new(),
            otlp: None,
            clock: Clock::system(),
            sampler: SamplerSlot::default(),
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 1_000_000,
            max_bytes: 256 << 20,
            error_max_bytes: 64 << 20,
            overflow: Overflow::Drop,
            flush_interval_ms: 100,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            hours: 6,
            cleanup_interval_secs: 60,
            archive_dir: PathBuf::new(),
            vacuum: true,
        }
    }
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            interval_ms: 1000,
            thread_cpu: false,
        }
    }
}

/// Where an error is, as the user would write the key: `queue.capacity`,
/// with a segment that is not a bare TOML key quoted (`"."`, `""`), and
/// `(file)` for an error in the file as a whole (broken TOML).
fn dotted_key(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segments: Vec<String> = path
        .iter()
        .map(|segment| match segment {
            Segment::Map { key } => toml_key(key),
            Segment::Enum { variant } => toml_key(variant),
            Segment::Seq { index } => index.to_string(),
            Segment::Unknown => "?".to_owned(),
        })
        .collect();
    if segments.is_empty() {
        "(file)".to_owned()
    } else {
        segments.join(".")
    }
}

/// A key as TOML writes it: bare when it can be, else a basic string.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        return key.to_owned();
    }
    let mut quoted = String::from("\"");
    for c in key.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The environment variables `Config::load` reads.
pub const ENV_CONFIG: &str = "MONITOR_CONFIG";
/// Overrides `db_path`.
pub const ENV_DB: &str = "MONITOR_DB";
/// Overrides `enabled`.
pub const ENV_ENABLED: &str = "MONITOR_ENABLED";
/// Overrides `retention.hours`.
pub const ENV_RETENTION_HOURS: &str = "MONITOR_RETENTION_HOURS";

impl Config {
    /// What `init()` uses: the file named by `MONITOR_CONFIG`, else
    /// `monitor.toml` in the working directory when present, else the
    /// defaults; then the `MONITOR_*` environment overrides.
    pub fn load() -> Result<Config, Error> {
        Config::load_with(|key| std::env::var(key).ok())
    }

    /// [`Config::load`] with the environment given as a lookup function.
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let config = match env(ENV_CONFIG) {
            Some(path) => Config::from_file(path)?,
            None if Path::new("monitor.toml").exists() => Config::from_file("monitor.toml")?,
            None => Config::default(),
        };
        config.with_env_overrides(env)
    }

    /// Reads a TOML file; unknown keys and bad values are errors naming the key.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text.
    pub fn from_toml_str(text: &str) -> Result<Config, Error> {
        Config::parse(text, "monitor.toml")
    }

    fn parse(text: &str, origin: &str) -> Result<Config, Error> {
        let deserializer = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let mut key = dotted_key(err.path());
            let mut message = err.into_inner().message().trim().to_owned();
            // `alerts.2.op` is `alerts[2].op`, in the rule the text names.
            if let Some((at, rule)) = alerts::locate(&key, text) {
                key = at;
                if let Some(rule) = rule {
                    message = format!("in rule {rule:?}: {message}");
                }
            }
            Error::Config {
                origin: origin.to_owned(),
                key,
                message,
            }
        })?;
        config.validate(origin)
    }

    /// Applies `MONITOR_DB`, `MONITOR_ENABLED`, `MONITOR_OTLP_ENDPOINT` (which
    /// adds an `[otlp]` table with the defaults when there is none) and
    /// `MONITOR_RETENTION_HOURS`.
    pub fn with_env_overrides(
        mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let bad = |key: &str, message: String| Error::Config {
            origin: "the environment".to_owned(),
            key: key.to_owned(),
            message,
        };
        if let Some(db) = env(ENV_DB) {
            if db.is_empty() {
                return Err(bad(
                    ENV_DB,
                    "expected a file path, got an empty value".into(),
                ));
            }
            self.db_path = db.into();
        }
        if let Some(value) = env(ENV_ENABLED) {
            self.enabled = match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(bad(
                        ENV_ENABLED,
                        format!("expected true or false, got {value:?}"),
                    ))
                }
            };
        }
        if let Some(endpoint) = env(ENV_OTLP_ENDPOINT) {
            if let Err(message) = otlp::check_endpoint(&endpoint) {
                return Err(bad(ENV_OTLP_ENDPOINT, message));
            }
            match &mut self.otlp {
                Some(otlp) => otlp.endpoint = endpoint,
                None => self.otlp = Some(OtlpConfig::new(endpoint)),
            }
        }
        if let Some(value) = env(ENV_RETENTION_HOURS) {
            self.retention.hours = value.trim().parse().map_err(|_| {
                bad(
                    ENV_RETENTION_HOURS,
                    format!("expected a whole number of hours, got {value:?}"),
                )
            })?;
        }
        self.validate("the environment")
    }

    /// Checks the values serde cannot: ranges and combinations.
    pub(crate) fn validate(mut self, origin: &str) -> Result<Config, Error> {
        let bad = |key: &str, message: String| {
            Err(Error::Config {
                origin: origin.to_owned(),
                key: key.to_owned(),
                message,
            })
        };
        if self.db_path.as_os_str().is_empty() {
            return bad(
                "db_path",
                "expected a file path, got an empty string".into(),
            );
        }
        if self.file_mode > 0o777 || self.file_mode & 0o600 != 0o600 || self.file_mode & 0o022 != 0
        {
            return bad(
                "file_mode",
                format!(
                    "expected permission bits that let the owner read and write and no one else \
                     write, such as 0o600 or 0o640, got {:#o}",
                    self.file_mode
                ),
            );
        }
        if self.retention.hours < 1 {
            return bad(
                "retention.hours",
                format!(
                    "expected a whole number of hours of at least 1, got {}",
                    self.retention.hours
                ),
            );
        }
        if self.queue.flush_interval_ms == 0 {
            return bad(
                "queue.flush_interval_ms",
                "expected at least 1 millisecond, got 0".into(),
            );
        }
        if self.retention.cleanup_interval_secs == 0 {
            return bad(
                "retention.cleanup_interval_secs",
                "expected at least 1 second, got 0".into(),
            );
        }
        if let Err((key, message)) = alerts::check_all(&mut self.alerts) {
            return bad(&key, message);
        }
        if let Err((key, message)) =
            crate::redact::Redactor::new(&self.capture.secret_names, &self.capture.redact_patterns)
        {
            return bad(&key, message);
        }
        if let Some(Err((key, message))) = self.otlp.as_ref().map(OtlpConfig::check) {
            return bad(&key, message);
        }
        Ok(self)
    }

    /// Sets `db_path`.
    pub fn db_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.db_path = path.into();
        self
    }
    /// Sets `enabled`.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
    /// Sets `file_mode` (`0o640` lets the group read the file).
    pub fn file_mode(mut self, mode: u32) -> Self {
        self.file_mode = mode;
        self
    }
    /// Sets `on_corrupt`.
    pub fn on_corrupt(mut self, on_corrupt: OnCorrupt) -> Self {
        self.on_corrupt = on_corrupt;
        self
    }
    /// Sets `busy_timeout_ms`.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout_ms = timeout.as_millis() as u64;
        self
    }
    /// Sets `shutdown_timeout_ms`.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout_ms = timeout.as_millis() as u64;
        self
    }
    /// Sets `queue.capacity` (`0` = unbounded).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue.capacity = capacity;
        self
    }
    /// Sets `queue.max_bytes` (`0` = unbounded).
    pub fn queue_max_bytes(mut self, bytes: usize) -> Self {
        self.queue.max_bytes = bytes;
        self
    }
    /// Sets `queue.error_max_bytes` (`0` = unbounded).
    pub fn queue_error_max_bytes(mut self, bytes: usize) -> Self {
        self.queue.error_max_bytes = bytes;
        self
    }
    /// Sets `spill_max_bytes` (`0` = unbounded).
    pub fn spill_max_bytes(mut self, bytes: u64) -> Self {
        self.spill_max_bytes = bytes;
        self
    }
    /// Sets `queue.overflow`.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.queue.overflow = overflow;
        self
    }
    /// Sets `queue.flush_interval_ms`.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.queue.flush_interval_ms = interval.as_millis() as u64;
        self
    }
    /// Sets `retention.hours`.
    pub fn retention_hours(mut self, hours: i64) -> Self {
        self.retention.hours = hours;
        self
    }
    /// Samples resources with `sampler` instead of `sysinfo` (a
    /// [`ScriptedSampler`](crate::resources::ScriptedSampler) in tests).
    pub fn resource_sampler(
        mut self,
        sampler: impl crate::resources::ResourceSampler + 'static,
    ) -> Self {
        self.sampler = SamplerSlot(Some(std::sync::Arc::new(std::sync::Mutex::new(sampler))));
        self
    }

    /// Sets `resources.thread_cpu`: each span's thread CPU time in `cpu_ns`.
    pub fn thread_cpu(mut self, on: bool) -> Self {
        self.resources.thread_cpu = on;
        self
    }

    /// Sets `resources.interval_ms` (`0` disables the sampler).
    pub fn resource_interval(mut self, interval: Duration) -> Self {
        self.resources.interval_ms = interval.as_millis() as u64;
        self
    }
    /// Adds to `capture.secret_names`.
    pub fn secret_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.capture
            .secret_names
            .extend(names.into_iter().map(Into::into));
        self
    }
    /// Adds to `capture.redact_patterns`.
    pub fn redact_patterns<S: Into<String>>(
        mut self,
        patterns: impl IntoIterator<Item = S>,
    ) -> Self {
        self.capture
            .redact_patterns
            .extend(patterns.into_iter().map(Into::into));
        self
    }
    /// Sets `capture.max_value_len`.
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.capture.max_value_len = bytes;
        self
    }
    /// Sets `[otlp]`.
    pub fn otlp(mut self, otlp: OtlpConfig) -> Self {
        self.otlp = Some(otlp);
        self
    }
    /// Sets the time source (see [`Clock::starting_at`] for tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}
