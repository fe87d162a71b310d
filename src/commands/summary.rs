//! `monitor summary`: per function, calls, errors, exact percentiles of
//! duration, busy vs wall time, items.

use std::collections::HashMap;

use serde_json::json;

use crate::db::Db;
use crate::render::{self, Out};
use crate::{Failure, SortBy};

/// What one function did in the window.
#[derive(Default)]
struct Function {
    name: String,
    module: String,
    group: String,
    kind: String,
    durations: Vec<i64>,
    errors: u64,
    busy_sum: i128,
    items: Option<i64>,
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn run(
    db: &Db,
    out: &Out,
    since: Option<u64>,
    group: Option<&str>,
    sort: SortBy,
) -> Result<(), Failure> {
    // Callsite id -> index in `functions`: ids of one function (other
    // lines, other builds) share a row.
    let mut functions: Vec<Function> = Vec::new();
    let mut by_callsite: HashMap<i64, usize> = HashMap::new();
    {
        let mut index: HashMap<(String, String), usize> = HashMap::new();
        let mut stmt = db
            .conn
            .prepare("SELECT id, name, module, group_name, kind FROM callsites ORDER BY id")
            .map_err(|e| db.fail(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(|e| db.fail(e))?;
        for row in rows {
            let (id, name, module, group_name, kind) = row.map_err(|e| db.fail(e))?;
            if group.is_some_and(|g| g != group_name) {
                continue;
            }
            let at = *index
                .entry((name.clone(), module.clone()))
                .or_insert_with(|| {
                    functions.push(Function {
                        name,
                        module,
                        group: group_name,
                        kind,
                        ..Function::default()
                    });
                    functions.len() - 1
                });
            by_callsite.insert(id, at);
        }
    }

    // The partition tables directly, not the view: no join or text per row.
    let mut spans = 0u64;
    for partition in db.span_partitions(since)? {
        let sql = format!(
            "SELECT callsite_id, status, duration_ns, busy_ns, items FROM \"{}\" WHERE start_ns >= ?1",
            partition.table
        );
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let mut rows = stmt
            .query([since.unwrap_or(0) as i64])
            .map_err(|e| db.fail(e))?;
        while let Some(row) = rows.next().map_err(|e| db.fail(e))? {
            let callsite: i64 = row.get(0).map_err(|e| db.fail(e))?;
            let at = match by_callsite.get(&callsite) {
                Some(&at) => at,
                // Filtered out by `--group`.
                None if group.is_some() => continue,
                // No `callsites` row (a damaged file): shown, not skipped.
                None => {
                    functions.push(Function {
                        name: format!("<callsite {callsite}>"),
                        module: "?".into(),
                        group: "?".into(),
                        kind: "?".into(),
                        ..Function::default()
                    });
                    by_callsite.insert(callsite, functions.len() - 1);
                    functions.len() - 1
                }
            };
            let function = &mut functions[at];
            let status: i64 = row.get(1).map_err(|e| db.fail(e))?;
            function.durations.push(row.get(2).map_err(|e| db.fail(e))?);
            function.busy_sum += i128::from(row.get::<_, i64>(3).map_err(|e| db.fail(e))?);
            if let Some(items) = row.get::<_, Option<i64>>(4).map_err(|e| db.fail(e))? {
                *function.items.get_or_insert(0) += items;
            }
            // 1 = error, 2 = panic in the partition tables.
            if status == 1 || status == 2 {
                function.errors += 1;
            }
            spans += 1;
        }
    }

    functions.retain(|f| !f.durations.is_empty());
    for function in &mut functions {
        function.durations.sort_unstable();
    }
    let p99 = |f: &Function| percentile(&f.durations, 99.0);
    match sort {
        SortBy::Calls => functions.sort_by_key(|f| std::cmp::Reverse(f.durations.len())),
        SortBy::Errors => functions.sort_by_key(|f| std::cmp::Reverse(f.errors)),
        SortBy::P99 => functions.sort_by_key(|f| std::cmp::Reverse(p99(f))),
    }

    let error_pct = |f: &Function| 100.0 * f.errors as f64 / f.durations.len() as f64;
    let mean = |sum: i128, f: &Function| (sum / f.durations.len() as i128) as i64;
    let wall_sum = |f: &Function| f.durations.iter().map(|&d| i128::from(d)).sum::<i128>();
    let json = json!(functions
        .iter()
        .map(|f| json!({
            "name": f.name,
            "module": f.module,
            "group": f.group,
            "kind": f.kind,
            "calls": f.durations.len(),
            "errors": f.errors,
            "error_pct": error_pct(f),
            "p50_ns": percentile(&f.durations, 50.0),
            "p95_ns": percentile(&f.durations, 95.0),
            "p99_ns": p99(f),
            "max_ns": f.durations.last(),
            "mean_wall_ns": mean(wall_sum(f), f),
            "mean_busy_ns": mean(f.busy_sum, f),
            "items": f.items,
        }))
        .collect::<Vec<_>>());
    out.emit(json, || {
        let mut table = render::table(
            &[
                "function",
                "module",
                "kind",
                "calls",
                "errors",
                "err %",
                "p50",
                "p95",
                "p99",
                "max",
                "busy/wall",
                "items",
            ],
            3,
        );
        for f in &functions {
            // Sync calls are busy all along; the ratio says something for
            // futures, streams and iterators.
            let busy = if f.kind == "sync" {
                String::new()
            } else {
                let wall = wall_sum(f).max(1);
                format!("{:.0}%", 100.0 * f.busy_sum as f64 / wall as f64)
            };
            table.add_row(vec![
                render::text(&f.name),
                render::text(&f.module),
                render::text(&f.kind),
                f.durations.len().to_string(),
                f.errors.to_string(),
                format!("{:.1}", error_pct(f)),
                render::duration(percentile(&f.durations, 50.0)),
                render::duration(percentile(&f.durations, 95.0)),
                render::duration(p99(f)),
                render::duration(*f.durations.last().unwrap_or(&0)),
                busy,
                f.items.map(|n| n.to_string()).unwrap_or_default(),
            ]);
        }
        println!(
            "{}: {spans} spans, {} functions",
            db.path.display(),
            functions.len()
        );
        println!("{table}");
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), 50);
        assert_eq!(percentile(&values, 95.0), 95);
        assert_eq!(percentile(&values, 99.0), 99);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[1, 2, 3], 50.0), 2);
    }
}
