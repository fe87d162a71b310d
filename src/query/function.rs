//! One function in depth (`/api/fn/<name>`): its figures, a latency
//! histogram, its recent errors, and who calls it and whom it calls.

use std::collections::HashMap;

use rusqlite::types::Value;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

use super::summary::{summary_by, FunctionStats};
use super::{callsites, int, named, scan, status_name, Window};
use crate::db::Db;
use crate::Failure;

/// Where a function is defined (a name may be defined in several modules).
#[derive(Clone, Debug, Serialize)]
pub struct Site {
    pub module: String,
    pub group: String,
    pub kind: String,
    pub file: String,
    pub line: i64,
}

/// Spans of a histogram's bin: durations up to `le_ns`, above the bin before.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Bin {
    pub le_ns: i64,
    pub count: u64,
}

/// A recent error or panic.
#[derive(Clone, Debug, Serialize)]
pub struct Failed {
    pub span_id: String,
    pub trace_id: String,
    pub start_ns: i64,
    pub status: &'static str,
    pub error: Option<String>,
}

/// Another function and how many of this one's spans it accounts for.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub calls: u64,
}

/// All of it.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionDetail {
    pub name: String,
    pub sites: Vec<Site>,
    /// Its figures over the window, all sites together.
    pub stats: Option<FunctionStats>,
    pub histogram: Vec<Bin>,
    pub recent_errors: Vec<Failed>,
    /// The functions of its spans' parents (in the window).
    pub callers: Vec<Link>,
    /// The functions of its spans' children (in the window).
    pub callees: Vec<Link>,
}

/// Recent errors shown.
const RECENT_ERRORS: usize = 20;

/// Bins of 1, 2 and 5 times a power of ten, from 100 ns up to the first that
/// holds `max`.
fn bounds(max: i64) -> Vec<i64> {
    let mut bounds = Vec::new();
    let mut decade: i64 = 100;
    loop {
        for m in [1, 2, 5] {
            let bound = decade.saturating_mul(m);
            bounds.push(bound);
            if bound >= max {
                return bounds;
            }
        }
        decade = decade.saturating_mul(10);
    }
}

/// `None` when no callsite has this name.
pub fn function(db: &Db, name: &str, window: Window) -> Result<Option<FunctionDetail>, Failure> {
    let sites = callsites(db)?;
    let mine = named(&sites, name);
    if mine.is_empty() {
        return Ok(None);
    }
    let mut own_sites: Vec<Site> = Vec::new();
    for id in &mine {
        let s = &sites[id];
        if !own_sites
            .iter()
            .any(|o| o.module == s.module && o.file == s.file && o.line == s.line)
        {
            own_sites.push(Site {
                module: s.module.clone(),
                group: s.group.clone(),
                kind: s.kind.clone(),
                file: s.file.clone(),
                line: s.line,
            });
        }
    }

    // Its spans (SQLite picks them), then everyone's links to them.
    let mut durations = Vec::new();
    let mut own_ids: FxHashSet<i64> = FxHashSet::default();
    let mut parents: FxHashMap<i64, u64> = FxHashMap::default();
    scan(
        db,
        window,
        "span_id, parent_id, duration_ns",
        Some(&mine),
        |row| {
            own_ids.insert(int(row, 0)?);
            if let Some(parent) = row.get_ref(1)?.as_i64_or_null()? {
                *parents.entry(parent).or_default() += 1;
            }
            durations.push(int(row, 2)?);
            Ok(())
        },
    )?;
    let mut callers: HashMap<i64, u64> = HashMap::new();
    let mut callees: HashMap<i64, u64> = HashMap::new();
    scan(db, window, "span_id, parent_id, callsite_id", None, |row| {
        let site = int(row, 2)?;
        if let Some(&n) = parents.get(&int(row, 0)?) {
            *callers.entry(site).or_default() += n;
        }
        if row
            .get_ref(1)?
            .as_i64_or_null()?
            .is_some_and(|p| own_ids.contains(&p))
        {
            *callees.entry(site).or_default() += 1;
        }
        Ok(())
    })?;
    let links = |by_site: HashMap<i64, u64>| {
        let mut by_name: HashMap<String, u64> = HashMap::new();
        for (site, calls) in by_site {
            let name = sites
                .get(&site)
                .map_or_else(|| format!("<callsite {site}>"), |s| s.name.clone());
            *by_name.entry(name).or_default() += calls;
        }
        let mut links: Vec<Link> = by_name
            .into_iter()
            .map(|(name, calls)| Link { name, calls })
            .collect();
        links.sort_by(|a, b| b.calls.cmp(&a.calls).then_with(|| a.name.cmp(&b.name)));
        links
    };

    durations.sort_unstable();
    let histogram = match durations.last() {
        None => Vec::new(),
        Some(&max) => {
            let bounds = bounds(max);
            let mut bins: Vec<Bin> = bounds
                .iter()
                .map(|&le_ns| Bin { le_ns, count: 0 })
                .collect();
            let mut at = 0;
            for d in &durations {
                while *d > bins[at].le_ns {
                    at += 1;
                }
                bins[at].count += 1;
            }
            // From the first bin with spans: the ones below it are empty.
            let first = bins.iter().position(|b| b.count > 0).unwrap_or(0);
            bins.split_off(first)
        }
    };

    let (stats, _) = summary_by(db, window, |site| {
        (site.name == name).then(|| (name.to_owned(), String::new()))
    })?;
    let stats = stats.into_iter().next();
    let recent_errors = recent_errors(db, window, &mine)?;
    Ok(Some(FunctionDetail {
        name: name.to_owned(),
        sites: own_sites,
        stats,
        histogram,
        recent_errors,
        callers: links(callers),
        callees: links(callees),
    }))
}

/// The newest errors and panics of the callsites `mine`.
fn recent_errors(db: &Db, window: Window, mine: &[i64]) -> Result<Vec<Failed>, Failure> {
    let mut failed = Vec::new();
    let (condition, params) = window.condition();
    for partition in db.span_partitions(None)?.iter().rev() {
        if !window.reaches(partition) || failed.len() >= RECENT_ERRORS {
            continue;
        }
        let marks = vec!["?"; mine.len()].join(", ");
        let sql = format!(
            "SELECT span_id, trace_id, start_ns, status, error FROM \"{}\" \
             WHERE {condition} AND status IN (1, 2) AND callsite_id IN ({marks}) \
             ORDER BY start_ns DESC LIMIT {RECENT_ERRORS}",
            partition.table
        );
        let mut values: Vec<Value> = params.iter().map(|&p| Value::Integer(p)).collect();
        values.extend(mine.iter().map(|&id| Value::Integer(id)));
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(values), |r| {
                Ok(Failed {
                    span_id: r.get::<_, i64>(0)?.to_string(),
                    trace_id: r.get::<_, i64>(1)?.to_string(),
                    start_ns: r.get(2)?,
                    status: status_name(r.get(3)?),
                    error: r.get(4)?,
                })
            })
            .map_err(|e| db.fail(e))?;
        for row in rows {
            failed.push(row.map_err(|e| db.fail(e))?);
        }
    }
    failed.sort_by_key(|f| std::cmp::Reverse(f.start_ns));
    failed.truncate(RECENT_ERRORS);
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::bounds;

    #[test]
    fn bins_go_one_two_five_until_the_largest_fits() {
        assert_eq!(bounds(50), vec![100]);
        assert_eq!(bounds(150), vec![100, 200]);
        assert_eq!(bounds(1_000), vec![100, 200, 500, 1_000]);
        assert_eq!(bounds(1_001), vec![100, 200, 500, 1_000, 2_000]);
    }
}
