//! What a finished span hands to the queue.

use std::borrow::Cow;
use std::fmt;

/// How a span ended; stored as the `status` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Status {
    /// Returned normally.
    Ok = 0,
    /// Returned `Err`, or a stream/iterator yielded an `Err` item.
    Error = 1,
    /// Unwound with a panic.
    Panic = 2,
    /// Dropped before it completed (a future, stream or iterator).
    Cancelled = 3,
}

impl Status {
    /// The text the `spans` view shows.
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
            Status::Panic => "panic",
            Status::Cancelled => "cancelled",
        }
    }

    /// Error and panic records go to the error lane and are never dropped.
    #[inline]
    pub const fn is_failure(self) -> bool {
        matches!(self, Status::Error | Status::Panic)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value recorded in a span's `fields` JSON object.
///
/// ```
/// use monitor_runtime::FieldValue;
/// assert_eq!(FieldValue::from(3u8), FieldValue::U64(3));
/// assert_eq!(FieldValue::from("x"), FieldValue::Str("x".into()));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum FieldValue {
    /// A signed integer.
    I64(i64),
    /// An unsigned integer.
    U64(u64),
    /// A float (non-finite values are stored as `null`).
    F64(f64),
    /// A boolean.
    Bool(bool),
    /// Text, such as a `Debug` rendering.
    Str(String),
    /// Text known for the whole program (a `tracing` level, the secret
    /// mask), stored without a copy.
    Static(&'static str),
}

macro_rules! field_from {
    ($($t:ty => $variant:ident as $as:ty),* $(,)?) => {$(
        impl From<$t> for FieldValue {
            fn from(v: $t) -> Self { FieldValue::$variant(v as $as) }
        }
    )*};
}
field_from!(
    i8 => I64 as i64, i16 => I64 as i64, i32 => I64 as i64, i64 => I64 as i64, isize => I64 as i64,
    u8 => U64 as u64, u16 => U64 as u64, u32 => U64 as u64, u64 => U64 as u64, usize => U64 as u64,
    f32 => F64 as f64, f64 => F64 as f64,
);

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}
impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Str(v.to_owned())
    }
}
impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Str(v)
    }
}

/// Fields serialised as one JSON object.
struct JsonObject<'a>(&'a [&'a (Cow<'static, str>, FieldValue)]);

impl serde::Serialize for JsonObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k.as_ref(), v)))
    }
}

impl serde::Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::I64(v) => serializer.serialize_i64(*v),
            FieldValue::U64(v) => serializer.serialize_u64(*v),
            FieldValue::F64(v) if v.is_finite() => serializer.serialize_f64(*v),
            FieldValue::F64(_) => serializer.serialize_unit(),
            FieldValue::Bool(v) => serializer.serialize_bool(*v),
            FieldValue::Str(v) => serializer.serialize_str(v),
            FieldValue::Static(v) => serializer.serialize_str(v),
        }
    }
}

impl FieldValue {
    #[cfg(test)]
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::I64(v) => (*v).into(),
            FieldValue::U64(v) => (*v).into(),
            FieldValue::F64(v) => {
                serde_json::Number::from_f64(*v).map_or(serde_json::Value::Null, Into::into)
            }
            FieldValue::Bool(v) => (*v).into(),
            FieldValue::Str(v) => v.as_str().into(),
            FieldValue::Static(v) => (*v).into(),
        }
    }
}

/// The rarely present, heap-held parts of a record, boxed so that the common
/// record stays small.
#[derive(Debug, Default)]
pub(crate) struct Detail {
    pub(crate) error: Option<String>,
    pub(crate) fields: Vec<(Cow<'static, str>, FieldValue)>,
    /// The first ERROR event of `tracing` while the span was current: its
    /// error at the end, unless it has one of its own by then.
    #[cfg(feature = "tracing")]
    pub(crate) event_error: Option<String>,
}

/// Stands for SQL NULL in a record's optional figures: a plain `u64` keeps
/// the record small, and the hot path copies it.
pub(crate) const NULL: u64 = u64::MAX;

/// One finished span, as the writer stores it. `0` stands for "no parent",
/// [`NULL`] for an absent `items` or resource figure.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) span_id: u64,
    pub(crate) parent_id: u64,
    pub(crate) trace_id: u64,
    /// The trace id's high half: 0 unless the trace came from elsewhere.
    pub(crate) trace_hi: u64,
    pub(crate) callsite: &'static crate::callsite::Callsite,
    pub(crate) thread_id: u64,
    /// Raw clock readings ([`raw_now`](crate::clock::raw_now)) at the start
    /// and end, which the writer converts ([`Record::times`]): the span
    /// pays for two TSC reads and no arithmetic.
    pub(crate) start_raw: u64,
    pub(crate) end_raw: u64,
    /// Time spent current (polls), or [`BUSY_THROUGHOUT`]: all of it.
    pub(crate) busy_ns: u64,
    pub(crate) items: u64,
    pub(crate) rss_bytes: u64,
    pub(crate) cpu_ns: u64,
    pub(crate) alloc_bytes: u64,
    pub(crate) status: Status,
    /// `0`: a span. `1..=5`: an event of `tracing` at ERROR, WARN, INFO,
    /// DEBUG or TRACE, stored in `events`: `span_id` is the span it
    /// happened in (`0` for none), `start_raw` its time, the error its
    /// message.
    pub(crate) event_level: u8,
    pub(crate) detail: Option<Box<Detail>>,
}

/// A record's `busy_ns` when the span was busy for all of its duration (a
/// call). The same bits as [`NULL`], which busy time never is: it is read
/// only by [`Record::times`].
pub(crate) const BUSY_THROUGHOUT: u64 = u64::MAX;

/// A record's times in Unix nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Times {
    pub(crate) start_ns: u64,
    pub(crate) duration_ns: u64,
    pub(crate) busy_ns: u64,
}

/// The `level` column of an event record.
pub(crate) fn event_level_name(level: u8) -> &'static str {
    match level {
        1 => "ERROR",
        2 => "WARN",
        3 => "INFO",
        4 => "DEBUG",
        _ => "TRACE",
    }
}

/// The `fields` of a span with only its callsite's `level`.
fn level_only_json(level: &str) -> Option<&'static str> {
    Some(match level {
        "ERROR" => r#"{"level":"ERROR"}"#,
        "WARN" => r#"{"level":"WARN"}"#,
        "INFO" => r#"{"level":"INFO"}"#,
        "DEBUG" => r#"{"level":"DEBUG"}"#,
        "TRACE" => r#"{"level":"TRACE"}"#,
        _ => return None,
    })
}

impl Record {
    /// The `fields` column: a JSON object, or NULL when nothing was recorded.
    pub(crate) fn fields_json(&self) -> Option<Cow<'static, str>> {
        let level = self.callsite.level().filter(|_| self.event_level == 0);
        let own = self
            .detail
            .as_ref()
            .map_or(&[][..], |d| d.fields.as_slice());
        match (level, own.is_empty()) {
            (None, true) => return None,
            // Most `tracing` spans: no fields but the level, the same text
            // for every span of the callsite (no allocation per row).
            (Some(level), true) => {
                if let Some(json) = level_only_json(level) {
                    return Some(Cow::Borrowed(json));
                }
            }
            _ => {}
        }
        // The callsite's `level` first: a field of the span's own with that
        // name comes later and wins.
        let level = level.map(|level| (Cow::Borrowed("level"), FieldValue::Static(level)));
        // Keys sorted and the last value of a key kept, as an object built
        // key by key holds them, but written straight out: no map and no
        // copy of each key and value (the writer does this for every row).
        let mut fields: Vec<&(Cow<'static, str>, FieldValue)> = level.iter().chain(own).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        fields.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        serde_json::to_string(&JsonObject(&fields))
            .ok()
            .map(Cow::Owned)
    }

    /// Start, duration and busy time, the readings converted by `clock`
    /// as it read when each was taken.
    pub(crate) fn times(&self, clock: &crate::Clock) -> Times {
        let start_ns = clock.unix_of(self.start_raw);
        let duration_ns = clock.unix_of(self.end_raw).saturating_sub(start_ns);
        let busy_ns = match self.busy_ns {
            BUSY_THROUGHOUT => duration_ns,
            busy => busy,
        };
        Times {
            start_ns,
            duration_ns,
            busy_ns,
        }
    }

    pub(crate) fn error(&self) -> Option<&str> {
        self.detail.as_ref()?.error.as_deref()
    }

    /// The memory the record holds, its captured text included, as
    /// `queue.max_bytes` counts it.
    #[inline]
    pub(crate) fn weight(&self) -> usize {
        std::mem::size_of::<Record>() + self.detail.as_ref().map_or(0, |d| d.weight())
    }
}

impl Detail {
    fn weight(&self) -> usize {
        let text = |v: &FieldValue| match v {
            FieldValue::Str(s) => s.capacity(),
            _ => 0,
        };
        std::mem::size_of::<Detail>()
            + self.error.as_ref().map_or(0, String::capacity)
            + self.fields.capacity() * std::mem::size_of::<(Cow<'static, str>, FieldValue)>()
            + self
                .fields
                .iter()
                .map(|(key, value)| {
                    let key = match key {
                        Cow::Owned(k) => k.capacity(),
                        Cow::Borrowed(_) => 0,
                    };
                    key + text(value)
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
impl Record {
    /// An `ok` record with `span_id` and a heap-held error text (so that a
    /// record dropped twice or never shows).
    pub(crate) fn for_tests(span_id: u64) -> Record {
        static CALLSITE: crate::callsite::Callsite = crate::callsite::Callsite::new(
            "for_tests",
            "m",
            "m",
            "f.rs",
            1,
            crate::callsite::SpanKind::Sync,
        );
        Record {
            span_id,
            parent_id: 0,
            trace_id: span_id,
            trace_hi: 0,
            callsite: &CALLSITE,
            thread_id: 1,
            start_raw: 0,
            end_raw: 0,
            busy_ns: 0,
            items: NULL,
            rss_bytes: NULL,
            cpu_ns: NULL,
            alloc_bytes: NULL,
            status: Status::Ok,
            event_level: 0,
            detail: Some(Box::new(Detail {
                error: Some(format!("record {span_id}")),
                ..Detail::default()
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: Vec<(&'static str, FieldValue)>) -> Record {
        Record {
            detail: Some(Box::new(Detail {
                fields: fields.into_iter().map(|(k, v)| (k.into(), v)).collect(),
                ..Detail::default()
            })),
            ..Record::for_tests(1)
        }
    }

    #[test]
    fn fields_are_the_object_a_map_built_key_by_key_would_be() {
        let fields = vec![
            ("zeta", FieldValue::I64(-1)),
            ("alpha", FieldValue::Str("a \"quoted\"\n text".into())),
            ("nan", FieldValue::F64(f64::NAN)),
            ("alpha", FieldValue::Static("last one wins")),
            ("flag", FieldValue::Bool(true)),
            ("big", FieldValue::U64(u64::MAX)),
        ];
        let by_map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_json()))
            .collect();
        let expected = serde_json::Value::Object(by_map).to_string();
        assert_eq!(record(fields).fields_json().unwrap(), expected);
        assert_eq!(record(Vec::new()).fields_json(), None);
    }

    #[cfg(feature = "tracing")]
    #[test]
    fn a_callsites_level_is_a_field_unless_the_span_has_its_own() {
        static LEVELED: crate::callsite::Callsite = crate::callsite::Callsite::new(
            "t",
            "m",
            "m",
            "f.rs",
            1,
            crate::callsite::SpanKind::Tracing,
        )
        .with_level("INFO");
        let mut r = record(Vec::new());
        r.callsite = &LEVELED;
        r.detail = None;
        assert_eq!(r.fields_json().unwrap(), r#"{"level":"INFO"}"#);
        let mut r = record(vec![
            ("level", FieldValue::Static("mine")),
            ("a", 1u8.into()),
        ]);
        r.callsite = &LEVELED;
        assert_eq!(r.fields_json().unwrap(), r#"{"a":1,"level":"mine"}"#);
        r.event_level = 3;
        assert_eq!(r.fields_json().unwrap(), r#"{"a":1,"level":"mine"}"#);
    }

    /// The texts kept for a level alone are what the JSON writer makes.
    #[test]
    fn a_level_alone_is_the_same_json_as_written_field_by_field() {
        for level in ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"] {
            let fields = [(Cow::Borrowed("level"), FieldValue::Static(level))];
            let refs: Vec<_> = fields.iter().collect();
            assert_eq!(
                level_only_json(level),
                serde_json::to_string(&JsonObject(&refs)).ok().as_deref()
            );
        }
        assert_eq!(level_only_json("custom"), None);
    }
}
