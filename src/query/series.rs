//! A window cut into equal steps: calls, errors and p99 per step
//! (`/api/series`, the overview's and the function page's charts).

use serde::Serialize;

use super::{int, is_failure, percentile, scan, Window};
use crate::db::Db;
use crate::Failure;

/// The most steps one series may have.
pub const MAX_STEPS: u64 = 2_000;

/// One step of a series.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Bucket {
    /// The step's start, Unix ns.
    pub ts_ns: u64,
    pub calls: u64,
    pub errors: u64,
    /// Percentiles of the step's durations; `0` for a step without calls.
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub p99_ns: i64,
}

/// The spans started in `[since, until)` (of the callsites `only`, when
/// given) in steps of `step_ns` from `since`; every step is present, the
/// empty ones with zeros.
pub fn series(
    db: &Db,
    since: u64,
    until: u64,
    step_ns: u64,
    only: Option<&[i64]>,
) -> Result<Vec<Bucket>, Failure> {
    let steps = until.saturating_sub(since).div_ceil(step_ns.max(1));
    if steps > MAX_STEPS {
        return Err(Failure(format!(
            "{steps} steps: at most {MAX_STEPS} (a longer step, or a shorter window)"
        )));
    }
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); steps as usize];
    let mut errors = vec![0u64; steps as usize];
    let window = Window {
        since: Some(since),
        until: Some(until),
    };
    scan(db, window, "start_ns, duration_ns, status", only, |row| {
        let start = int(row, 0)?;
        // The scan keeps [since, until): a row outside is a damaged file.
        let Some(at) = u64::try_from(start)
            .ok()
            .and_then(|start| start.checked_sub(since))
            .map(|offset| (offset / step_ns) as usize)
            .filter(|&at| at < durations.len())
        else {
            return Ok(());
        };
        durations[at].push(int(row, 1)?);
        if is_failure(int(row, 2)?) {
            errors[at] += 1;
        }
        Ok(())
    })?;
    Ok(durations
        .into_iter()
        .zip(errors)
        .enumerate()
        .map(|(i, (mut step, errors))| {
            step.sort_unstable();
            Bucket {
                ts_ns: since + i as u64 * step_ns,
                calls: step.len() as u64,
                errors,
                p50_ns: percentile(&step, 50.0),
                p95_ns: percentile(&step, 95.0),
                p99_ns: percentile(&step, 99.0),
            }
        })
        .collect())
}
