//! The API's query parameters: each is checked, and a bad or unknown one is
//! an HTTP 400 that names it and says what was expected.

use std::collections::HashMap;

use super::ApiError;
use crate::query::Window;
use crate::window;

/// One request's parameters, checked against the names it accepts.
pub struct Params {
    values: HashMap<String, String>,
}

impl Params {
    /// `pairs` as given; a name outside `accepted` or given twice is an error.
    pub fn new(pairs: Vec<(String, String)>, accepted: &[&str]) -> Result<Params, ApiError> {
        let mut values = HashMap::new();
        for (name, value) in pairs {
            if !accepted.contains(&name.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{name}`; expected one of: {}",
                    accepted.join(", ")
                )));
            }
            if values.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_request(format!(
                    "parameter `{name}` is given twice"
                )));
            }
        }
        Ok(Params { values })
    }

    /// A text parameter; empty counts as absent (a cleared form field).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn bad(name: &str, value: &str, expected: &str) -> ApiError {
        ApiError::bad_request(format!(
            "bad parameter `{name}`: `{value}`; expected {expected}"
        ))
    }

    /// A duration such as `90s`, `15m`, `1h30m`, in nanoseconds.
    pub fn duration(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|v| {
                window::parse(v)
                    .map_err(|e| ApiError::bad_request(format!("parameter `{name}`: {e}")))
            })
            .transpose()
    }

    /// A whole number in `range`.
    pub fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<Option<u64>, ApiError> {
        self.text(name)
            .map(|v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        Self::bad(
                            name,
                            v,
                            &format!("a whole number from {} to {}", range.start(), range.end()),
                        )
                    })
            })
            .transpose()
    }

    /// One of `choices`.
    pub fn choice(&self, name: &str, choices: &[&str]) -> Result<Option<String>, ApiError> {
        self.text(name)
            .map(|v| {
                if choices.contains(&v) {
                    Ok(v.to_owned())
                } else {
                    Err(Self::bad(
                        name,
                        v,
                        &format!("one of {}", choices.join(", ")),
                    ))
                }
            })
            .transpose()
    }

    /// `since` (default `default`) and `until` (default now), both how long
    /// ago: `since=2h&until=1h` is the hour before the last.
    pub fn window(&self, now_ns: u64, default: &str) -> Result<Window, ApiError> {
        let since = match self.duration("since")? {
            Some(ago) => ago,
            None => window::parse(default).expect("a valid default window"),
        };
        let until = self.duration("until")?;
        if until.is_some_and(|until| until >= since) {
            return Err(ApiError::bad_request(
                "parameter `until` must be less long ago than `since`",
            ));
        }
        Ok(Window {
            since: Some(now_ns.saturating_sub(since)),
            until: until.map(|ago| now_ns.saturating_sub(ago)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    fn params(pairs: &[(&str, &str)]) -> Result<Params, super::ApiError> {
        Params::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            &["since", "until", "limit"],
        )
    }

    #[test]
    fn unknown_and_repeated_names_are_refused_by_name() {
        let e = params(&[("sinse", "1h")]).err().unwrap();
        assert!(e.message.contains("`sinse`"), "{}", e.message);
        let e = params(&[("limit", "1"), ("limit", "2")]).err().unwrap();
        assert!(
            e.message.contains("`limit` is given twice"),
            "{}",
            e.message
        );
    }

    #[test]
    fn bad_values_name_the_parameter_and_what_was_expected() {
        let p = params(&[("limit", "0")]).unwrap();
        let e = p.number("limit", 1..=1000).err().unwrap();
        assert!(
            e.message.contains("`limit`") && e.message.contains("from 1 to 1000"),
            "{}",
            e.message
        );
        let p = params(&[("since", "1x")]).unwrap();
        let e = p.window(10_000_000_000_000, "1h").err().unwrap();
        assert!(e.message.contains("`since`"), "{}", e.message);
    }

    #[test]
    fn a_window_is_since_and_until_ago() {
        let now = 100 * 3_600_000_000_000;
        let p = params(&[("since", "2h"), ("until", "1h")]).unwrap();
        let w = p.window(now, "1h").unwrap();
        assert_eq!(w.since, Some(now - 2 * 3_600_000_000_000));
        assert_eq!(w.until, Some(now - 3_600_000_000_000));
        let p = params(&[("since", "1h"), ("until", "2h")]).unwrap();
        assert!(p.window(now, "1h").is_err());
        let w = params(&[]).unwrap().window(now, "15m").unwrap();
        assert_eq!(w.since, Some(now - 15 * 60_000_000_000));
        assert_eq!(w.until, None);
    }
}
