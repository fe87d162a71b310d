//! `[[alerts]]`: threshold rules over the file's figures, which `monitor
//! check` evaluates. They live in the runtime's config because the one
//! `monitor.toml` is read by both, and an unknown key is an error in both.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// One `[[alerts]]` table: "`metric` of `fn` (or `group`) over the last
/// `window` is `op` `threshold`".
///
/// ```
/// use monitor_runtime::{AlertMetric, Config};
///
/// let config = Config::from_toml_str(r#"
///     [[alerts]]
///     name = "checkout is slow"
///     fn = "checkout"
///     metric = "p99"
///     op = ">"
///     threshold = "250ms"
///     window = "5m"
///     min_calls = 20
/// "#).unwrap();
/// let rule = &config.alerts[0];
/// assert_eq!(rule.metric, AlertMetric::P99);
/// assert_eq!(rule.threshold(), 250_000_000.0); // nanoseconds
/// assert_eq!(rule.window().as_secs(), 300);
///
/// let err = Config::from_toml_str(r#"
///     [[alerts]]
///     name = "errors"
///     metric = "error_rate"
///     op = ">"
///     threshold = "250ms"
///     window = "5m"
/// "#).unwrap_err().to_string();
/// assert!(err.contains("alerts[0].threshold") && err.contains("\"errors\""), "{err}");
/// ```
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AlertRule {
    /// Names the rule in `monitor check`'s output and in `alert_events`;
    /// unique in the file.
    pub name: String,
    /// The function (`name`, or `module::name`) whose spans are measured.
    #[serde(rename = "fn", default)]
    pub function: Option<String>,
    /// The group whose spans are measured (instead of `fn`). With neither,
    /// every span counts.
    #[serde(default)]
    pub group: Option<String>,
    /// What is measured.
    pub metric: AlertMetric,
    /// Fires when the value is above (`>`) or below (`<`) the threshold.
    pub op: AlertOp,
    /// As written: a duration for the percentiles and `max` (`"250ms"`), a
    /// fraction or percentage for `error_rate` (`0.05`, `"5%"`), a count for
    /// `calls`, bytes for `rss` (`"512MiB"`). See [`AlertRule::threshold`].
    pub threshold: ThresholdText,
    /// How far back from now the rule looks (`"5m"`, `"1h"`).
    window: String,
    /// Fewer calls than this in the window is `no data`, not a verdict: two
    /// calls do not make a p99. Not for `calls` or `rss`.
    #[serde(default)]
    pub min_calls: u64,
    /// `threshold` and `window` in base units, set by validation.
    #[serde(skip)]
    parsed: Parsed,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Parsed {
    threshold: f64,
    window: Duration,
}

/// What an [`AlertRule`] measures over its window.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum AlertMetric {
    /// Median duration.
    P50,
    /// 95th percentile duration.
    P95,
    /// 99th percentile duration.
    P99,
    /// Longest duration.
    Max,
    /// Errors and panics over calls, from 0 to 1.
    ErrorRate,
    /// Spans started in the window.
    Calls,
    /// The highest resident memory any sample of the window saw.
    Rss,
}

impl AlertMetric {
    /// The name `monitor.toml` uses.
    pub fn name(self) -> &'static str {
        match self {
            AlertMetric::P50 => "p50",
            AlertMetric::P95 => "p95",
            AlertMetric::P99 => "p99",
            AlertMetric::Max => "max",
            AlertMetric::ErrorRate => "error_rate",
            AlertMetric::Calls => "calls",
            AlertMetric::Rss => "rss",
        }
    }

    /// A duration, in nanoseconds.
    pub fn is_duration(self) -> bool {
        matches!(
            self,
            AlertMetric::P50 | AlertMetric::P95 | AlertMetric::P99 | AlertMetric::Max
        )
    }
}

impl fmt::Display for AlertMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `>` or `<`.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum AlertOp {
    /// Fires above the threshold.
    #[serde(rename = ">")]
    Above,
    /// Fires below the threshold.
    #[serde(rename = "<")]
    Below,
}

impl AlertOp {
    /// Whether `value` fires against `threshold`.
    ///
    /// ```
    /// use monitor_runtime::AlertOp;
    /// assert!(AlertOp::Above.fires(3.0, 2.0) && !AlertOp::Above.fires(2.0, 2.0));
    /// assert!(AlertOp::Below.fires(1.0, 2.0));
    /// ```
    pub fn fires(self, value: f64, threshold: f64) -> bool {
        match self {
            AlertOp::Above => value > threshold,
            AlertOp::Below => value < threshold,
        }
    }
}

impl fmt::Display for AlertOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AlertOp::Above => ">",
            AlertOp::Below => "<",
        })
    }
}

/// A threshold as TOML gives it: a number or a string with a unit.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ThresholdText {
    /// `0.05`, `100`.
    Number(f64),
    /// `"250ms"`, `"5%"`, `"512MiB"`.
    Text(String),
}

impl fmt::Display for ThresholdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdText::Number(n) => write!(f, "{n}"),
            ThresholdText::Text(t) => write!(f, "{t:?}"),
        }
    }
}

impl AlertRule {
    /// The threshold in the metric's base unit: nanoseconds, a fraction,
    /// calls or bytes.
    pub fn threshold(&self) -> f64 {
        self.parsed.threshold
    }

    /// How far back the rule looks.
    pub fn window(&self) -> Duration {
        self.parsed.window
    }

    /// The window as written (`"5m"`).
    pub fn window_text(&self) -> &str {
        &self.window
    }

    /// Checks one rule and fills in its parsed values; an error is the key
    /// (`threshold`) and what was wrong with it.
    fn check(&mut self) -> Result<(), (&'static str, String)> {
        if self.name.trim().is_empty() {
            return Err((
                "name",
                "expected a name for the rule, got an empty string".into(),
            ));
        }
        if self.function.is_some() && self.group.is_some() {
            return Err((
                "group",
                "expected `fn` or `group`, not both: a rule measures one function or one group"
                    .into(),
            ));
        }
        for (key, value) in [("fn", &self.function), ("group", &self.group)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err((key, "expected a name, got an empty string".into()));
            }
        }
        if self.metric == AlertMetric::Rss && (self.function.is_some() || self.group.is_some()) {
            return Err((
                if self.function.is_some() {
                    "fn"
                } else {
                    "group"
                },
                "metric `rss` is the process's memory, not a function's: remove `fn`/`group`"
                    .into(),
            ));
        }
        if self.min_calls > 0 && matches!(self.metric, AlertMetric::Calls | AlertMetric::Rss) {
            return Err((
                "min_calls",
                format!(
                    "`min_calls` applies to percentiles, `max` and `error_rate`, not to `{}`",
                    self.metric
                ),
            ));
        }
        let window = humantime::parse_duration(self.window.trim()).map_err(|e| {
            (
                "window",
                format!(
                    "expected a duration such as \"5m\" or \"1h\", got {:?} ({e})",
                    self.window
                ),
            )
        })?;
        if window < Duration::from_secs(1) {
            return Err((
                "window",
                format!("expected at least 1s, got {:?}", self.window),
            ));
        }
        self.parsed = Parsed {
            threshold: parse_threshold(self.metric, &self.threshold)
                .map_err(|message| ("threshold", message))?,
            window,
        };
        Ok(())
    }
}

/// `threshold` in `metric`'s base unit, or what was expected instead.
fn parse_threshold(metric: AlertMetric, threshold: &ThresholdText) -> Result<f64, String> {
    use ThresholdText::{Number, Text};
    let expected = match metric {
        m if m.is_duration() => "a duration with its unit, such as \"250ms\" or \"1.5s\"",
        AlertMetric::ErrorRate => {
            "a fraction from 0 to 1 such as 0.05, or a percentage such as \"5%\""
        }
        AlertMetric::Calls => "a whole number of calls such as 100",
        _ => "a size such as \"512MiB\" or \"2GB\", or a number of bytes",
    };
    let bad = || format!("expected {expected} for metric `{metric}`, got {threshold}");
    let value = match (metric, threshold) {
        (m, Text(text)) if m.is_duration() => humantime::parse_duration(text.trim())
            .map_err(|_| bad())?
            .as_nanos() as f64,
        (AlertMetric::ErrorRate, Number(n)) => *n,
        (AlertMetric::ErrorRate, Text(text)) => {
            let percent = text.trim().strip_suffix('%').ok_or_else(bad)?;
            percent.trim().parse::<f64>().map_err(|_| bad())? / 100.0
        }
        (AlertMetric::Calls, Number(n)) if n.fract() == 0.0 => *n,
        (AlertMetric::Rss, Number(n)) if n.fract() == 0.0 => *n,
        (AlertMetric::Rss, Text(text)) => text
            .trim()
            .parse::<bytesize::ByteSize>()
            .map_err(|_| bad())?
            .as_u64() as f64,
        _ => return Err(bad()),
    };
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    if metric == AlertMetric::ErrorRate && value > 1.0 {
        return Err(bad());
    }
    Ok(value)
}

/// Checks every rule; an error is `(key, message)` with the key as the user
/// finds it (`alerts[2].threshold`) and the rule's name in the message.
pub(crate) fn check_all(rules: &mut [AlertRule]) -> Result<(), (String, String)> {
    for i in 0..rules.len() {
        let (before, rest) = rules.split_at_mut(i);
        let rule = &mut rest[0];
        let name = rule.name.clone();
        let named = |message: String| format!("in rule {name:?}: {message}");
        if let Err((key, message)) = rule.check() {
            return Err((format!("alerts[{i}].{key}"), named(message)));
        }
        if let Some(first) = before.iter().position(|r| r.name == rule.name) {
            return Err((
                format!("alerts[{i}].name"),
                named(format!(
                    "expected a name of its own; alerts[{first}] has it too"
                )),
            ));
        }
    }
    Ok(())
}

/// `alerts.2.threshold` as serde reports it, as the user finds it:
/// `alerts[2].threshold`, with the rule's name when the text has one.
pub(crate) fn locate(key: &str, text: &str) -> Option<(String, Option<String>)> {
    let rest = key.strip_prefix("alerts.")?;
    let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
    let index: usize = index.parse().ok()?;
    let name = text.parse::<toml::Table>().ok().and_then(|t| {
        t.get("alerts")?
            .get(index)?
            .get("name")?
            .as_str()
            .map(str::to_owned)
    });
    let key = if tail.is_empty() {
        format!("alerts[{index}]")
    } else {
        format!("alerts[{index}].{tail}")
    };
    Some((key, name))
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn rule(body: &str) -> Result<Config, String> {
        Config::from_toml_str(&format!("[[alerts]]\nname = \"r\"\n{body}"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn thresholds_are_read_in_their_metrics_units() {
        for (body, expected) in [
            ("metric = \"p50\"\nthreshold = \"250ms\"", 250e6),
            ("metric = \"max\"\nthreshold = \"1s 500ms\"", 1.5e9),
            ("metric = \"error_rate\"\nthreshold = 0.05", 0.05),
            ("metric = \"error_rate\"\nthreshold = \"5%\"", 0.05),
            ("metric = \"calls\"\nthreshold = 100", 100.0),
            ("metric = \"rss\"\nthreshold = \"512MiB\"", 536_870_912.0),
            ("metric = \"rss\"\nthreshold = 4096", 4096.0),
        ] {
            let config = rule(&format!("{body}\nop = \">\"\nwindow = \"5m\"")).unwrap();
            let got = config.alerts[0].threshold();
            assert!((got - expected).abs() < 1e-9, "{body}: {got}");
        }
    }

    #[test]
    fn each_bad_key_is_named_with_the_rule() {
        let base = "op = \">\"\nwindow = \"5m\"";
        for (body, key, why) in [
            (
                "metric = \"p99\"\nthreshold = 250",
                "threshold",
                "a duration with its unit",
            ),
            (
                "metric = \"p99\"\nthreshold = \"fast\"",
                "threshold",
                "got \"fast\"",
            ),
            (
                "metric = \"error_rate\"\nthreshold = 5",
                "threshold",
                "from 0 to 1",
            ),
            (
                "metric = \"error_rate\"\nthreshold = \"250ms\"",
                "threshold",
                "percentage",
            ),
            (
                "metric = \"calls\"\nthreshold = 2.5",
                "threshold",
                "whole number",
            ),
            (
                "metric = \"rss\"\nthreshold = \"lots\"",
                "threshold",
                "512MiB",
            ),
            (
                "metric = \"rss\"\nfn = \"f\"\nthreshold = 1",
                "fn",
                "process's memory",
            ),
            (
                "metric = \"calls\"\nthreshold = 1\nmin_calls = 5",
                "min_calls",
                "not to `calls`",
            ),
            (
                "metric = \"p99\"\nthreshold = \"1s\"\nfn = \"f\"\ngroup = \"g\"",
                "group",
                "not both",
            ),
            (
                "metric = \"p99\"\nthreshold = \"1s\"\nfn = \"\"",
                "fn",
                "empty",
            ),
        ] {
            let err = rule(&format!("{body}\n{base}")).unwrap_err();
            assert!(err.contains(&format!("`alerts[0].{key}`")), "{body}: {err}");
            assert!(
                err.contains("rule \"r\"") && err.contains(why),
                "{body}: {err}"
            );
        }
        let err = rule("metric = \"p99\"\nthreshold = \"1s\"\nop = \">\"\nwindow = \"soon\"")
            .unwrap_err();
        assert!(
            err.contains("`alerts[0].window`") && err.contains("\"5m\""),
            "{err}"
        );
        let err = rule("metric = \"p99\"\nthreshold = \"1s\"\nop = \">\"\nwindow = \"10ms\"")
            .unwrap_err();
        assert!(err.contains("at least 1s"), "{err}");
    }

    #[test]
    fn serde_errors_name_the_rule_too() {
        for (body, key, why) in [
            ("metric = \"p42\"\nop = \">\"", "alerts[0].metric", "p99"),
            ("metric = \"p99\"\nop = \">=\"", "alerts[0].op", ">"),
            (
                "metric = \"p99\"\nop = \">\"\ntresh = 1",
                "alerts[0].tresh",
                "unknown field",
            ),
        ] {
            let err = rule(&format!("{body}\nthreshold = \"1s\"\nwindow = \"5m\"")).unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{body}: {err}");
            assert!(
                err.contains("rule \"r\"") && err.contains(why),
                "{body}: {err}"
            );
        }
        let err = rule("metric = \"p99\"\nthreshold = \"1s\"\nop = \">\"").unwrap_err();
        assert!(
            err.contains("window") && err.contains("rule \"r\""),
            "{err}"
        );
    }

    #[test]
    fn rule_names_are_unique() {
        let one = "metric = \"calls\"\nop = \"<\"\nthreshold = 1\nwindow = \"1h\"";
        let err = Config::from_toml_str(&format!(
            "[[alerts]]\nname = \"a\"\n{one}\n[[alerts]]\nname = \"a\"\n{one}"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`alerts[1].name`") && err.contains("alerts[0] has it"),
            "{err}"
        );
    }
}
