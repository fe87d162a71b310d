//! Per function: calls, errors, exact percentiles of duration, busy vs
//! wall time, items (`monitor summary`, `/api/summary`, `/metrics`).

use std::collections::HashMap;

use serde::Serialize;

use rustc_hash::FxHashMap;

use super::{callsites, int, is_failure, percentile, scan, Callsite, Window};
use crate::db::Db;
use crate::Failure;

/// What one function did in a window. Callsites of one function (other
/// lines, other builds) share a row: a function is its name and module.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionStats {
    pub name: String,
    pub module: String,
    pub group: String,
    pub kind: String,
    pub calls: u64,
    pub errors: u64,
    pub error_pct: f64,
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub p99_ns: i64,
    pub max_ns: i64,
    pub mean_wall_ns: i64,
    pub mean_busy_ns: i64,
    /// Items yielded, for streams and iterators.
    pub items: Option<i64>,
}

impl FunctionStats {
    fn empty(site: &Callsite) -> FunctionStats {
        FunctionStats {
            name: site.name.clone(),
            module: site.module.clone(),
            group: site.group.clone(),
            kind: site.kind.clone(),
            calls: 0,
            errors: 0,
            error_pct: 0.0,
            p50_ns: 0,
            p95_ns: 0,
            p99_ns: 0,
            max_ns: 0,
            mean_wall_ns: 0,
            mean_busy_ns: 0,
            items: None,
        }
    }
}

#[derive(Default)]
struct Tally {
    durations: Vec<i64>,
    errors: u64,
    busy_sum: i128,
    items: Option<i64>,
}

/// The functions with spans in `window` (of `group`, when given), by name,
/// with the number of spans read.
pub fn summary(
    db: &Db,
    window: Window,
    group: Option<&str>,
) -> Result<(Vec<FunctionStats>, u64), Failure> {
    summary_by(db, window, |site| {
        group
            .is_none_or(|g| g == site.group)
            .then(|| (site.name.clone(), site.module.clone()))
    })
}

/// The spans in `window` tallied by `key` of their callsite: the spans of
/// callsites with one key make one row; a callsite keyed `None` is left
/// out. A row's name, module, group and kind are its first callsite's.
pub fn summary_by(
    db: &Db,
    window: Window,
    key: impl Fn(&Callsite) -> Option<(String, String)>,
) -> Result<(Vec<FunctionStats>, u64), Failure> {
    let (rows, spans) = samples_by(db, window, key)?;
    Ok((rows.into_iter().map(|(stats, _)| stats).collect(), spans))
}

/// A function's figures and its durations, sorted.
pub type Sample = (FunctionStats, Vec<i64>);

/// [`summary_by`], with each row's durations.
pub fn samples_by(
    db: &Db,
    window: Window,
    key: impl Fn(&Callsite) -> Option<(String, String)>,
) -> Result<(Vec<Sample>, u64), Failure> {
    let sites = callsites(db)?;
    // Callsite id -> index in `functions`.
    let mut functions: Vec<(FunctionStats, Tally)> = Vec::new();
    // Callsite ids are hashes of the callsite's facts: a map, with a hash
    // cheaper than SipHash for a lookup on every row.
    let mut by_callsite: FxHashMap<i64, Option<usize>> = FxHashMap::default();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    let mut spans = 0u64;
    scan(
        db,
        window,
        "callsite_id, status, duration_ns, busy_ns, items",
        None,
        |row| {
            let callsite = int(row, 0)?;
            let at = *by_callsite.entry(callsite).or_insert_with(|| {
                // No `callsites` row (a damaged file): shown, not skipped.
                let unknown;
                let site = match sites.get(&callsite) {
                    Some(site) => site,
                    None => {
                        unknown = Callsite::unknown(callsite);
                        &unknown
                    }
                };
                let key = key(site)?;
                Some(*by_key.entry(key).or_insert_with(|| {
                    functions.push((FunctionStats::empty(site), Tally::default()));
                    functions.len() - 1
                }))
            });
            let Some(at) = at else { return Ok(()) };
            let tally = &mut functions[at].1;
            tally.durations.push(int(row, 2)?);
            tally.busy_sum += i128::from(int(row, 3)?);
            if let Some(items) = row.get_ref(4)?.as_i64_or_null()? {
                *tally.items.get_or_insert(0) += items;
            }
            if is_failure(int(row, 1)?) {
                tally.errors += 1;
            }
            spans += 1;
            Ok(())
        },
    )?;
    let mut stats: Vec<Sample> = functions
        .into_iter()
        .filter(|(_, tally)| !tally.durations.is_empty())
        .map(|(mut stats, mut tally)| {
            tally.durations.sort_unstable();
            let calls = tally.durations.len();
            let wall_sum: i128 = tally.durations.iter().map(|&d| i128::from(d)).sum();
            stats.calls = calls as u64;
            stats.errors = tally.errors;
            stats.error_pct = 100.0 * tally.errors as f64 / calls as f64;
            stats.p50_ns = percentile(&tally.durations, 50.0);
            stats.p95_ns = percentile(&tally.durations, 95.0);
            stats.p99_ns = percentile(&tally.durations, 99.0);
            stats.max_ns = tally.durations[calls - 1];
            stats.mean_wall_ns = (wall_sum / calls as i128) as i64;
            stats.mean_busy_ns = (tally.busy_sum / calls as i128) as i64;
            stats.items = tally.items;
            (stats, tally.durations)
        })
        .collect();
    // A stable order for equal figures, whatever the scan met first.
    stats.sort_by(|(a, _), (b, _)| (&a.name, &a.module).cmp(&(&b.name, &b.module)));
    Ok((stats, spans))
}
