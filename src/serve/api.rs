//! The JSON API (`/api/...`): each handler checks its parameters, reads
//! through [`crate::query`] in a snapshot of its own, and answers JSON.
//! Ids are decimal strings (JavaScript's numbers hold 53 bits), times Unix
//! ns, durations ns.

use crate::window::now_ns;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::types::Value as SqlValue;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::params::Params;
use super::{ApiError, App};
use crate::db::{Db, SpanRow};
use crate::query::{self, health, series::MAX_STEPS, traces::TraceFilter, Window};

type Pairs = Query<Vec<(String, String)>>;
type Answer = Result<Json<Value>, ApiError>;

/// `value` as a JSON response, serialized now.
fn serialized(value: &impl Serialize) -> Result<Response, ApiError> {
    let body =
        serde_json::to_vec(value).map_err(|e| ApiError::from(crate::Failure(e.to_string())))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn to_json(value: impl Serialize) -> Answer {
    serde_json::to_value(value)
        .map(Json)
        .map_err(|e| ApiError::from(crate::Failure(e.to_string())))
}

/// A row of the `spans` view as the API gives it: ids as decimal text,
/// `fields` as the JSON it is, and the span's events when it has any.
/// Serialized straight from the row: a trace of 10,000 spans built as
/// `serde_json::Value`s spent a third of its time in the allocator.
#[derive(Serialize)]
pub struct SpanOut<'a> {
    span_id: String,
    parent_id: Option<String>,
    trace_id: String,
    name: &'a str,
    module: &'a str,
    group_name: &'a str,
    kind: &'a str,
    file: &'a str,
    line: i64,
    status: &'a str,
    error: Option<&'a str>,
    start_ns: i64,
    duration_ns: i64,
    busy_ns: i64,
    items: Option<i64>,
    thread: &'a str,
    pid: i64,
    fields: Option<Fields<'a>>,
    rss_bytes: Option<i64>,
    cpu_ns: Option<i64>,
    alloc_bytes: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<Value>>,
}

/// Stored `fields`: JSON as JSON, anything else (a damaged row) as text.
#[derive(Serialize)]
#[serde(untagged)]
enum Fields<'a> {
    Json(Box<RawValue>),
    Text(&'a str),
}

impl<'a> SpanOut<'a> {
    pub fn new(span: &'a SpanRow) -> SpanOut<'a> {
        SpanOut {
            span_id: span.span_id.to_string(),
            parent_id: span.parent_id.map(|p| p.to_string()),
            trace_id: span.trace_id.to_string(),
            name: &span.name,
            module: &span.module,
            group_name: &span.group_name,
            kind: &span.kind,
            file: &span.file,
            line: span.line,
            status: &span.status,
            error: span.error.as_deref(),
            start_ns: span.start_ns,
            duration_ns: span.duration_ns,
            busy_ns: span.busy_ns,
            items: span.items,
            thread: &span.thread,
            pid: span.pid,
            fields: span.fields.as_deref().map(|text| {
                RawValue::from_string(text.to_owned()).map_or(Fields::Text(text), Fields::Json)
            }),
            rss_bytes: span.rss_bytes,
            cpu_ns: span.cpu_ns,
            alloc_bytes: span.alloc_bytes,
            events: None,
        }
    }
}

/// An event of `tracing` as the API gives it: its span id as text.
fn event_json(event: &crate::db::EventRow) -> Value {
    let mut json = event.to_json();
    json["span_id"] = event.span_id.map(|id| id.to_string()).into();
    json
}

/// The callsite ids of function `name`; 404 when it has none.
fn callsites_named(db: &Db, name: &str) -> Result<Vec<i64>, ApiError> {
    let ids = query::named(&query::callsites(db)?, name);
    if ids.is_empty() {
        return Err(ApiError::not_found(format!("no function named `{name}`")));
    }
    Ok(ids)
}

/// `?since=1h&until=&group=g`: per function, the figures of `monitor summary`.
pub async fn summary(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(pairs, &["since", "until", "group"])?;
    let window = params.window(now_ns(), "1h")?;
    let group = params.text("group").map(str::to_owned);
    app.read(move |db| {
        let (functions, spans) = query::summary::summary(db, window, group.as_deref())?;
        Ok(json!({ "functions": functions, "spans": spans }))
    })
    .await
    .map(Json)
}

/// A step near a window's sixtieth, rounded to a step people read.
fn default_step(window_ns: u64) -> u64 {
    const S: u64 = 1_000_000_000;
    const STEPS: [u64; 12] = [
        S,
        5 * S,
        10 * S,
        30 * S,
        60 * S,
        300 * S,
        600 * S,
        1_800 * S,
        3_600 * S,
        6 * 3_600 * S,
        12 * 3_600 * S,
        86_400 * S,
    ];
    let wanted = window_ns / 60;
    STEPS
        .into_iter()
        .find(|&s| s >= wanted)
        .unwrap_or(STEPS[STEPS.len() - 1])
}

/// `?since=1h&until=&name=f&step=60s`: calls, errors and p99 per step.
pub async fn series(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(pairs, &["since", "until", "name", "step"])?;
    let now = now_ns();
    let window = params.window(now, "1h")?;
    let (since, until) = (window.since.unwrap_or(0), window.until.unwrap_or(now));
    let step = match params.duration("step")? {
        Some(0) => {
            return Err(ApiError::bad_request(
                "parameter `step` must be longer than 0s",
            ))
        }
        Some(step) => step,
        None => default_step(until - since),
    };
    // Steps start at multiples of the step: a refresh moves the chart by
    // whole steps, and a step's figures do not shift with the clock.
    let since = since - since % step;
    if (until - since).div_ceil(step) > MAX_STEPS {
        return Err(ApiError::bad_request(format!(
            "parameter `step`: the window would have more than {MAX_STEPS} steps; expected a longer step"
        )));
    }
    let name = params.text("name").map(str::to_owned);
    app.read(move |db| {
        let only = name
            .as_deref()
            .map(|n| callsites_named(db, n))
            .transpose()?;
        let buckets = query::series::series(db, since, until, step, only.as_deref())?;
        Ok(json!({ "step_ns": step, "buckets": buckets }))
    })
    .await
    .map(Json)
}

/// `?since=1h&until=&name=f&status=error&min_ns=N&limit=50`: recent traces.
pub async fn traces(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(
        pairs,
        &["since", "until", "name", "status", "min_ns", "limit"],
    )?;
    let window = params.window(now_ns(), "1h")?;
    let filter = TraceFilter {
        name: params.text("name").map(str::to_owned),
        status: params.choice("status", &["ok", "error", "panic", "cancelled"])?,
        min_ns: params
            .number("min_ns", 0..=i64::MAX as u64)?
            .map(|n| n as i64),
        limit: params.number("limit", 1..=1_000)?.unwrap_or(50) as usize,
    };
    app.read(move |db| {
        let traces = query::traces::traces(db, window, &filter)?;
        Ok(json!({ "traces": traces }))
    })
    .await
    .map(Json)
}

/// Every span of one trace, by start, with its events of `tracing`.
pub async fn trace(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(pairs): Pairs,
) -> Result<Response, ApiError> {
    Params::new(pairs, &[])?;
    let key: query::traces::TraceKey = id.parse().map_err(ApiError::bad_request)?;
    let trace_id = key.low;
    app.read(move |db| {
        let spans = query::traces::trace(db, key)?;
        if spans.is_empty() {
            return Err(ApiError::not_found(format!("no trace {key} in the file")));
        }
        let mut events = db.events_of(spans.iter().map(|s| s.span_id))?;
        let spans: Vec<SpanOut> = spans
            .iter()
            .map(|span| SpanOut {
                events: events
                    .remove(&span.span_id)
                    .map(|events| events.iter().map(event_json).collect()),
                ..SpanOut::new(span)
            })
            .collect();
        #[derive(Serialize)]
        struct TraceOut<'a> {
            trace_id: String,
            spans: Vec<SpanOut<'a>>,
        }
        // Written out here, where the rows are, with no `Value` between.
        serialized(&TraceOut {
            trace_id: trace_id.to_string(),
            spans,
        })
    })
    .await
}

/// `?since=1h&until=`: one function in depth.
pub async fn function(
    State(app): State<App>,
    Path(name): Path<String>,
    Query(pairs): Pairs,
) -> Answer {
    let params = Params::new(pairs, &["since", "until"])?;
    let window = params.window(now_ns(), "1h")?;
    app.read(
        move |db| match query::function::function(db, &name, window)? {
            Some(detail) => Ok(detail),
            None => Err(ApiError::not_found(format!("no function named `{name}`"))),
        },
    )
    .await
    .and_then(to_json)
}

/// `?since=1h&until=`: the resource sampler's readings, per process.
pub async fn resources(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(pairs, &["since", "until"])?;
    let window = params.window(now_ns(), "1h")?;
    app.read(move |db| Ok(json!({ "processes": health::resources(db, window)? })))
        .await
        .map(Json)
}

/// `?since=1h&until=`: what `monitor stats --json` says, the
/// `monitor_stats` rows of the window as `history`, and `retention`: the
/// config's `hours` and the `cutoff_ns` before which a partition's hour
/// must end for the next pass to drop it.
pub async fn stats(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(pairs, &["since", "until"])?;
    let now = now_ns();
    let window = params.window(now, "1h")?;
    let retention_hours = app.retention_hours;
    app.read(move |db| {
        let mut json = serde_json::to_value(health::stats(db)?)
            .map_err(|e| ApiError::from(crate::Failure(e.to_string())))?;
        json["history"] = serde_json::to_value(health::history(db, window)?)
            .map_err(|e| ApiError::from(crate::Failure(e.to_string())))?;
        // Partitions whose hour ended before this go at the next pass.
        let cutoff = (retention_hours.max(0) as u64)
            .checked_mul(3_600_000_000_000)
            .map_or(0, |kept| now.saturating_sub(kept));
        json["retention"] = json!({ "hours": retention_hours, "cutoff_ns": cutoff });
        Ok(json)
    })
    .await
    .map(Json)
}

/// `?since=1h&until=`: the alert rules' changes of state in the window
/// (`monitor alerts`), and `latest`: each rule's last recorded state,
/// whenever it was recorded.
pub async fn alerts(State(app): State<App>, Query(pairs): Pairs) -> Answer {
    let params = Params::new(pairs, &["since", "until"])?;
    let window = params.window(now_ns(), "1h")?;
    app.read(move |db| {
        let all = query::alerts::history(db, Window::ALL)?;
        let mut latest: Vec<&query::alerts::AlertEvent> = Vec::new();
        for event in all.iter().rev() {
            if !latest.iter().any(|e| e.rule == event.rule) {
                latest.push(event);
            }
        }
        latest.sort_by(|a, b| a.rule.cmp(&b.rule));
        let events: Vec<_> = all.iter().filter(|e| window.holds(e.ts_ns)).collect();
        Ok(json!({ "events": events, "latest": latest }))
    })
    .await
    .map(Json)
}

/// Spans reach the file a flush interval or more after they end: a poll
/// looks back this far before its watermark, and the page skips what it has.
const TAIL_LOOK_BACK_NS: u64 = 30_000_000_000;
/// A poll's answer holds at most this many spans, the latest to end.
const TAIL_LIMIT: usize = 500;
/// Spans longer than a day are not followed (their partition is too old).
const LONGEST_SPAN_NS: u64 = 86_400_000_000_000;

/// `?after=<watermark>&errors=1`: the spans that ended since the watermark
/// (and a look-back before it), oldest end first, with the next watermark.
pub async fn tail(State(app): State<App>, Query(pairs): Pairs) -> Result<Response, ApiError> {
    let params = Params::new(pairs, &["after", "errors"])?;
    let now = now_ns();
    let after = params
        .number("after", 0..=i64::MAX as u64)?
        .unwrap_or(now.saturating_sub(60_000_000_000));
    let errors_only = params.choice("errors", &["0", "1"])?.as_deref() == Some("1");
    let floor = after.saturating_sub(TAIL_LOOK_BACK_NS);
    app.read(move |db| {
        let filter = if errors_only {
            "start_ns + duration_ns >= ? AND status IN ('error', 'panic')"
        } else {
            "start_ns + duration_ns >= ?"
        };
        let window = Window::since(Some(floor.saturating_sub(LONGEST_SPAN_NS)));
        let mut spans = db.spans(window.since, filter, &[SqlValue::Integer(floor as i64)])?;
        spans.sort_by_key(|s| (s.end_ns(), s.span_id));
        let skip = spans.len().saturating_sub(TAIL_LIMIT);
        #[derive(Serialize)]
        struct TailOut<'a> {
            watermark: u64,
            spans: Vec<SpanOut<'a>>,
            /// Older spans of the look-back were left out.
            more: bool,
        }
        serialized(&TailOut {
            watermark: now,
            spans: spans[skip..].iter().map(SpanOut::new).collect(),
            more: skip > 0,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::default_step;

    #[test]
    fn default_steps_give_about_sixty_points() {
        const M: u64 = 60_000_000_000;
        assert_eq!(default_step(15 * M), 30_000_000_000);
        assert_eq!(default_step(60 * M), M);
        assert_eq!(default_step(24 * 60 * M), 30 * M);
    }
}
