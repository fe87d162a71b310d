//! The read layer: what the file says, as plain values. The CLI's commands
//! render it as tables and JSON, `monitor serve` as its JSON API and pages,
//! and `/metrics` as Prometheus text; each figure is computed here once.

pub mod alerts;
pub mod diff;
pub mod function;
pub mod health;
pub mod series;
pub mod summary;
pub mod traces;

use std::collections::HashMap;

use crate::db::Db;
use crate::Failure;

/// The spans started in `[since, until)`; `None`: unbounded on that side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Window {
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl Window {
    /// Every span.
    pub const ALL: Window = Window {
        since: None,
        until: None,
    };

    /// The spans started at or after `since`.
    pub fn since(since: Option<u64>) -> Window {
        Window { since, until: None }
    }

    /// An SQL condition on `start_ns` with its two parameters (`?1`, `?2`).
    fn condition(&self) -> (&'static str, [i64; 2]) {
        (
            "start_ns >= ?1 AND start_ns < ?2",
            [
                self.since.map_or(0, clamp),
                self.until.map_or(i64::MAX, clamp),
            ],
        )
    }

    /// Whether an instant is in the window.
    pub fn holds(&self, ns: i64) -> bool {
        let ns = u64::try_from(ns).unwrap_or(0);
        self.since.is_none_or(|s| ns >= s) && self.until.is_none_or(|u| ns < u)
    }

    /// Whether every span a partition can hold is in the window. A span is
    /// stored in the partition of the hour it started in.
    fn covers(&self, partition: &monitor_runtime::schema::Partition) -> bool {
        const HOUR_NS: u64 = 3_600_000_000_000;
        self.since.is_none_or(|s| partition.hour_start_ns >= s)
            && self
                .until
                .is_none_or(|u| partition.hour_start_ns + HOUR_NS <= u)
    }

    /// Whether a partition holds any of it.
    fn reaches(&self, partition: &monitor_runtime::schema::Partition) -> bool {
        self.since.is_none_or(|s| partition.reaches(s))
            && self.until.is_none_or(|u| partition.hour_start_ns < u)
    }
}

fn clamp(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// The nearest-rank percentile of sorted values (`0` for none).
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// An integer column of a scanned row: what `Row::get` does, less its
/// generic conversion, which was a tenth of a summary's time.
#[inline]
fn int(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<i64> {
    Ok(row.get_ref(column)?.as_i64()?)
}

/// A span's status as the partition tables store it.
pub fn status_name(code: i64) -> &'static str {
    match code {
        0 => "ok",
        1 => "error",
        2 => "panic",
        3 => "cancelled",
        _ => "unknown",
    }
}

/// Errors and panics count as errors (`1` and `2` in the tables).
fn is_failure(code: i64) -> bool {
    code == 1 || code == 2
}

/// What the `callsites` table says of one callsite.
#[derive(Clone, Debug)]
pub struct Callsite {
    pub name: String,
    pub module: String,
    pub group: String,
    pub kind: String,
    pub file: String,
    pub line: i64,
}

impl Callsite {
    /// A callsite id with no `callsites` row (a damaged file).
    fn unknown(id: i64) -> Callsite {
        Callsite {
            name: format!("<callsite {id}>"),
            module: "?".into(),
            group: "?".into(),
            kind: "?".into(),
            file: String::new(),
            line: 0,
        }
    }
}

/// The ids of the callsites of function `name` (one per module, line or
/// build that defines it), in order.
pub fn named(sites: &HashMap<i64, Callsite>, name: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = sites
        .iter()
        .filter(|(_, site)| site.name == name)
        .map(|(&id, _)| id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Every callsite by id.
pub fn callsites(db: &Db) -> Result<HashMap<i64, Callsite>, Failure> {
    let mut stmt = db
        .conn
        .prepare("SELECT id, name, module, group_name, kind, file, line FROM callsites")
        .map_err(|e| db.fail(e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Callsite {
                    name: r.get(1)?,
                    module: r.get(2)?,
                    group: r.get(3)?,
                    kind: r.get(4)?,
                    file: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    line: r.get::<_, Option<i64>>(6)?.unwrap_or_default(),
                },
            ))
        })
        .map_err(|e| db.fail(e))?;
    rows.collect::<Result<_, _>>().map_err(|e| db.fail(e))
}

/// Calls `each` with the named columns of every span in `window` (of the
/// callsites `only`, when given), reading the partition tables directly (no
/// join, no text per row) and only the partitions the window reaches. The
/// filtering is SQLite's, and a partition wholly inside the window is read
/// without a test of its times.
fn scan(
    db: &Db,
    window: Window,
    columns: &str,
    only: Option<&[i64]>,
    mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<()>,
) -> Result<(), Failure> {
    let (times, bounds) = window.condition();
    // Callsite ids are integers read from the file: written into the SQL,
    // not bound, as a list of any length.
    let sites = only.map(|ids| {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("callsite_id IN ({})", list.join(", "))
    });
    for partition in db.span_partitions(None)? {
        if !window.reaches(&partition) {
            continue;
        }
        let whole = window.covers(&partition);
        let conditions: Vec<&str> = [(!whole).then_some(times), sites.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        let mut sql = format!("SELECT {columns} FROM \"{}\"", partition.table);
        if !conditions.is_empty() {
            sql = format!("{sql} WHERE {}", conditions.join(" AND "));
        }
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let mut rows = if whole {
            stmt.query([])
        } else {
            stmt.query(bounds)
        }
        .map_err(|e| db.fail(e))?;
        while let Some(row) = rows.next().map_err(|e| db.fail(e))? {
            each(row).map_err(|e| db.fail(e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{percentile, Window};
    use monitor_runtime::schema::Partition;

    const HOUR: u64 = 3_600_000_000_000;

    fn hour(n: u64) -> Partition {
        Partition {
            table: format!("spans_{n}"),
            hour_start_ns: n * HOUR,
        }
    }

    #[test]
    fn a_window_reads_the_partitions_it_reaches_and_tests_rows_only_at_its_edges() {
        // From 10:30 to 12:00.
        let w = Window {
            since: Some(10 * HOUR + HOUR / 2),
            until: Some(12 * HOUR),
        };
        assert!(!w.reaches(&hour(9)));
        assert!(w.reaches(&hour(10)) && !w.covers(&hour(10)));
        assert!(w.reaches(&hour(11)) && w.covers(&hour(11)));
        assert!(!w.reaches(&hour(12)));
        let open = Window::since(Some(10 * HOUR));
        assert!(open.covers(&hour(10)) && open.covers(&hour(99)));
        assert!(Window::ALL.covers(&hour(0)));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 95.0), 95);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
