//! Traces: the recent ones with their root, size and worst outcome
//! (`/api/traces`), and one whole (`/api/trace/<id>`, `monitor tree`).

use std::collections::HashMap;

use rusqlite::types::Value;
use rustc_hash::FxHashMap;
use serde::Serialize;

use super::{callsites, int, scan, status_name, Window};
use crate::db::{Db, SpanRow};
use crate::Failure;

/// One trace in a list.
#[derive(Clone, Debug, Serialize)]
pub struct TraceSummary {
    /// Decimal text: JavaScript's numbers lose 64-bit ids.
    pub trace_id: String,
    /// The root's name; `None` while the root is not in the file (it has
    /// not ended yet, or was dropped).
    pub root: Option<String>,
    pub start_ns: i64,
    /// From the first start to the last end among its spans.
    pub duration_ns: i64,
    pub spans: u64,
    /// The worst among its spans: panic, error, cancelled, ok.
    pub status: &'static str,
}

/// What a list of traces keeps.
#[derive(Clone, Debug, Default)]
pub struct TraceFilter {
    /// Only traces with a span of this function.
    pub name: Option<String>,
    /// Only traces whose worst status is this.
    pub status: Option<String>,
    /// Only traces lasting this long or longer.
    pub min_ns: Option<i64>,
    pub limit: usize,
}

/// Worst first: panic, error, cancelled, ok.
fn severity(code: i64) -> u8 {
    match code {
        2 => 3,
        1 => 2,
        3 => 1,
        _ => 0,
    }
}

#[derive(Default)]
struct Tally {
    start: i64,
    end: i64,
    spans: u64,
    worst: i64,
    has_name: bool,
}

/// The newest traces with a span started in `window` that pass `filter`,
/// newest first.
pub fn traces(db: &Db, window: Window, filter: &TraceFilter) -> Result<Vec<TraceSummary>, Failure> {
    let sites = callsites(db)?;
    let named: Vec<i64> = filter
        .name
        .as_deref()
        .map_or_else(Vec::new, |name| super::named(&sites, name));
    let mut by_trace: FxHashMap<i64, Tally> = FxHashMap::default();
    scan(
        db,
        window,
        "trace_id, callsite_id, start_ns, duration_ns, status",
        None,
        |row| {
            let start = int(row, 2)?;
            let end = start.saturating_add(int(row, 3)?);
            let status = int(row, 4)?;
            let tally = by_trace.entry(int(row, 0)?).or_insert(Tally {
                start,
                end,
                ..Tally::default()
            });
            tally.start = tally.start.min(start);
            tally.end = tally.end.max(end);
            tally.spans += 1;
            if severity(status) > severity(tally.worst) {
                tally.worst = status;
            }
            tally.has_name |= named.contains(&int(row, 1)?);
            Ok(())
        },
    )?;
    let mut kept: Vec<(i64, Tally)> = by_trace
        .into_iter()
        .filter(|(_, t)| {
            (filter.name.is_none() || t.has_name)
                && filter
                    .status
                    .as_deref()
                    .is_none_or(|s| s == status_name(t.worst))
                && filter.min_ns.is_none_or(|min| t.end - t.start >= min)
        })
        .collect();
    kept.sort_by_key(|(id, t)| (std::cmp::Reverse(t.start), *id));
    kept.truncate(filter.limit);
    let roots = roots(db, kept.iter().map(|(id, _)| *id))?;
    Ok(kept
        .into_iter()
        .map(|(id, t)| TraceSummary {
            trace_id: id.to_string(),
            root: roots
                .get(&id)
                .and_then(|site| sites.get(site))
                .map(|site| site.name.clone()),
            start_ns: t.start,
            duration_ns: t.end - t.start,
            spans: t.spans,
            status: status_name(t.worst),
        })
        .collect())
}

/// The callsite of each trace's root (whose span id is the trace id), by
/// primary key in each partition.
fn roots(db: &Db, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, i64>, Failure> {
    let ids: Vec<i64> = ids.collect();
    let mut found = HashMap::new();
    for partition in db.span_partitions(None)? {
        let mut stmt = db
            .conn
            .prepare(&format!(
                "SELECT callsite_id FROM \"{}\" WHERE span_id = ?1",
                partition.table
            ))
            .map_err(|e| db.fail(e))?;
        for &id in &ids {
            if found.contains_key(&id) {
                continue;
            }
            if let Some(site) = stmt
                .query_row([id], |r| r.get::<_, i64>(0))
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })
                .map_err(|e| db.fail(e))?
            {
                found.insert(id, site);
            }
        }
    }
    Ok(found)
}

/// A trace id as a user gives it: the decimal `trace_id` column (its low
/// 64 bits), or all 128 bits as 32 hex digits, the form of a W3C
/// `traceparent` and of OpenTelemetry tools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceKey {
    /// The `trace_id` column.
    pub low: i64,
    /// The `trace_hi` column, when the id was given whole.
    pub high: Option<i64>,
}

impl std::str::FromStr for TraceKey {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let id = u128::from_str_radix(text, 16).map_err(|e| e.to_string())?;
            return Ok(TraceKey {
                low: id as u64 as i64,
                high: Some((id >> 64) as u64 as i64),
            });
        }
        text.parse()
            .map(|low| TraceKey { low, high: None })
            .map_err(|_| {
                format!("bad trace id `{text}`; expected a decimal 64-bit id or 32 hex digits")
            })
    }
}

impl std::fmt::Display for TraceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.high {
            Some(high) => write!(f, "{:016x}{:016x}", high as u64, self.low as u64),
            None => write!(f, "{}", self.low),
        }
    }
}

impl From<i64> for TraceKey {
    fn from(low: i64) -> Self {
        TraceKey { low, high: None }
    }
}

/// Every span of a trace, by start (empty for an unknown trace).
pub fn trace(db: &Db, key: TraceKey) -> Result<Vec<SpanRow>, Failure> {
    let mut spans = match key.high {
        Some(high) => db.spans(
            None,
            "trace_id = ? AND trace_hi = ?",
            &[Value::Integer(key.low), Value::Integer(high)],
        )?,
        None => db.spans(None, "trace_id = ?", &[Value::Integer(key.low)])?,
    };
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::TraceKey;

    #[test]
    fn trace_ids_are_read_in_decimal_or_as_32_hex_digits() {
        assert_eq!("42".parse(), Ok(TraceKey::from(42)));
        let whole: TraceKey = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
        assert_eq!(whole.high, Some(0x4bf92f3577b34da6));
        assert_eq!(whole.low as u64, 0xa3ce929d0e0e4736);
        assert_eq!(whole.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let err = "x12".parse::<TraceKey>().unwrap_err();
        assert!(err.contains("32 hex digits"), "{err}");
    }
}
