//! `[[alerts]]` rules evaluated over the file (`monitor check`), and the
//! history of their states (`alert_events`: `monitor alerts`, the
//! dashboard's health page).

use monitor_runtime::{AlertMetric, AlertRule};
use rusqlite::Connection;
use serde::Serialize;

use super::health::resources;
use super::summary::summary_by;
use super::Window;
use crate::db::Db;
use crate::Failure;

/// A rule's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum State {
    #[serde(rename = "ok")]
    Ok,
    #[serde(rename = "firing")]
    Firing,
    /// Nothing to judge: no span (or sample) in the window, or fewer calls
    /// than `min_calls`.
    #[serde(rename = "no data")]
    NoData,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Firing => "firing",
            State::NoData => "no data",
        }
    }
}

/// One rule's verdict over `[since_ns, until_ns)`.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub rule: String,
    pub metric: &'static str,
    pub op: String,
    /// In the metric's base unit: ns, a fraction, calls or bytes.
    pub threshold: f64,
    pub window: String,
    pub state: State,
    /// `None` with `no data`.
    pub value: Option<f64>,
    /// Spans in the window (`None` for `rss`).
    pub calls: Option<u64>,
    pub since_ns: u64,
    pub until_ns: u64,
    /// Why `no data`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every rule's verdict over its window ending at `now_ns`.
pub fn evaluate(db: &Db, rules: &[AlertRule], now_ns: u64) -> Result<Vec<Evaluation>, Failure> {
    rules
        .iter()
        .map(|rule| evaluate_one(db, rule, now_ns))
        .collect()
}

fn evaluate_one(db: &Db, rule: &AlertRule, now_ns: u64) -> Result<Evaluation, Failure> {
    let window_ns = u64::try_from(rule.window().as_nanos()).unwrap_or(u64::MAX);
    let since = now_ns.saturating_sub(window_ns);
    let window = Window {
        since: Some(since),
        until: Some(now_ns),
    };
    let (value, calls, reason) = if rule.metric == AlertMetric::Rss {
        let highest = resources(db, window)?
            .iter()
            .flat_map(|p| &p.samples)
            .filter_map(|s| s.rss_bytes)
            .max();
        let reason = highest
            .is_none()
            .then(|| "no resource sample in the window".to_owned());
        (highest.map(|b| b as f64), None, reason)
    } else {
        // The matching callsites tallied as one row.
        let (rows, _) = summary_by(db, window, |site| {
            let hit = match (&rule.function, &rule.group) {
                // `name = "Cache::get"` is a name with `::` in it.
                (Some(f), _) => {
                    *f == site.name
                        || f.strip_prefix(site.module.as_str())
                            .and_then(|rest| rest.strip_prefix("::"))
                            == Some(site.name.as_str())
                }
                (None, Some(g)) => *g == site.group,
                (None, None) => true,
            };
            hit.then(String::new).map(|k| (k, String::new()))
        })?;
        let stats = rows.first();
        let calls = stats.map_or(0, |s| s.calls);
        let value = match (rule.metric, stats) {
            (AlertMetric::Calls, _) => Some(calls as f64),
            (_, None) => None,
            (_, Some(_)) if calls < rule.min_calls => None,
            (AlertMetric::P50, Some(s)) => Some(s.p50_ns as f64),
            (AlertMetric::P95, Some(s)) => Some(s.p95_ns as f64),
            (AlertMetric::P99, Some(s)) => Some(s.p99_ns as f64),
            (AlertMetric::Max, Some(s)) => Some(s.max_ns as f64),
            (AlertMetric::ErrorRate, Some(s)) => Some(s.errors as f64 / s.calls as f64),
            (AlertMetric::Rss, _) => unreachable!("read from the resource samples"),
        };
        let reason = match (value, calls) {
            (Some(_), _) => None,
            (None, 0) => Some("no call in the window".to_owned()),
            (None, n) => Some(format!(
                "{n} calls, fewer than min_calls = {}",
                rule.min_calls
            )),
        };
        (value, Some(calls), reason)
    };
    let state = match value {
        None => State::NoData,
        Some(v) if rule.op.fires(v, rule.threshold()) => State::Firing,
        Some(_) => State::Ok,
    };
    Ok(Evaluation {
        rule: rule.name.clone(),
        metric: rule.metric.name(),
        op: rule.op.to_string(),
        threshold: rule.threshold(),
        window: rule.window_text().to_owned(),
        state,
        value,
        calls,
        since_ns: since,
        until_ns: now_ns,
        reason,
    })
}

/// The table `monitor check --record` writes a row to when a rule's state
/// changes.
pub const EVENTS_TABLE: &str = "alert_events";

/// The columns a reader and a writer of `alert_events` need.
const REQUIRED: [&str; 3] = ["ts_ns", "rule", "state"];
/// The columns this build adds, with their types: a table made by hand
/// from the issue's `ts_ns, rule, state, value` may lack some.
const OPTIONAL: [(&str, &str); 3] = [("value", "REAL"), ("metric", "TEXT"), ("threshold", "REAL")];

/// The columns of `alert_events`, `None` when there is no such table; an
/// error when it lacks one that every row needs.
fn events_columns(conn: &Connection) -> Result<Option<Vec<String>>, String> {
    let mut stmt = conn
        .prepare("SELECT name FROM pragma_table_info(?1)")
        .map_err(|e| e.to_string())?;
    let columns: Vec<String> = stmt
        .query_map([EVENTS_TABLE], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| e.to_string())?;
    if columns.is_empty() {
        return Ok(None);
    }
    if let Some(missing) = REQUIRED
        .iter()
        .find(|c| !columns.iter().any(|have| have == *c))
    {
        return Err(format!(
            "table {EVENTS_TABLE} has no column `{missing}` (it has {}); expected at least {}",
            columns.join(", "),
            REQUIRED.join(", ")
        ));
    }
    Ok(Some(columns))
}

/// Makes `alert_events` ready for rows: created when missing, the columns
/// it lacks added (a table of an older shape keeps its rows).
pub fn prepare_events_table(conn: &Connection) -> Result<(), String> {
    let columns = match events_columns(conn)? {
        Some(columns) => columns,
        None => {
            conn.execute_batch(&format!(
                "CREATE TABLE {EVENTS_TABLE} (ts_ns INTEGER NOT NULL, rule TEXT NOT NULL, \
                 state TEXT NOT NULL, value REAL, metric TEXT, threshold REAL);
                 CREATE INDEX {EVENTS_TABLE}_by_rule ON {EVENTS_TABLE} (rule, ts_ns);"
            ))
            .map_err(|e| e.to_string())?;
            return Ok(());
        }
    };
    for (name, kind) in OPTIONAL {
        if !columns.iter().any(|c| c == name) {
            conn.execute_batch(&format!(
                "ALTER TABLE {EVENTS_TABLE} ADD COLUMN {name} {kind}"
            ))
            .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// One change of a rule's state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AlertEvent {
    pub ts_ns: i64,
    pub rule: String,
    pub state: String,
    pub value: Option<f64>,
    pub metric: Option<String>,
    pub threshold: Option<f64>,
}

/// The state changes recorded in `window`, oldest first; none when no
/// `check --record` ever ran on the file. A column of this build's that
/// the table lacks reads as null.
pub fn history(db: &Db, window: Window) -> Result<Vec<AlertEvent>, Failure> {
    let columns = match events_columns(&db.conn) {
        Ok(Some(columns)) => columns,
        Ok(None) => return Ok(Vec::new()),
        Err(message) => return Err(Failure(format!("{}: {message}", db.path.display()))),
    };
    let optional: Vec<&str> = OPTIONAL
        .iter()
        .map(|(name, _)| {
            if columns.iter().any(|c| c == name) {
                *name
            } else {
                "NULL"
            }
        })
        .collect();
    let (condition, bounds) = window.condition();
    let sql = format!(
        "SELECT ts_ns, rule, state, {} FROM {EVENTS_TABLE} WHERE {} ORDER BY ts_ns, rowid",
        optional.join(", "),
        condition.replace("start_ns", "ts_ns")
    );
    let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
    let rows = stmt
        .query_map(bounds, |r| {
            Ok(AlertEvent {
                ts_ns: r.get(0)?,
                rule: r.get(1)?,
                state: r.get(2)?,
                value: r.get(3)?,
                metric: r.get(4)?,
                threshold: r.get(5)?,
            })
        })
        .map_err(|e| db.fail(e))?;
    rows.collect::<Result<_, _>>().map_err(|e| db.fail(e))
}
