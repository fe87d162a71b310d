//! `monitor summary`: per function, calls, errors, exact percentiles of
//! duration, busy vs wall time, items.

use serde_json::json;

use crate::db::Db;
use crate::query::summary::{summary, FunctionStats};
use crate::query::Window;
use crate::render::{self, Out};
use crate::{Failure, SortBy};

pub fn run(
    db: &Db,
    out: &Out,
    since: Option<u64>,
    group: Option<&str>,
    sort: SortBy,
) -> Result<(), Failure> {
    let (mut functions, spans) = summary(db, Window::since(since), group)?;
    match sort {
        SortBy::Calls => functions.sort_by_key(|f| std::cmp::Reverse(f.calls)),
        SortBy::Errors => functions.sort_by_key(|f| std::cmp::Reverse(f.errors)),
        SortBy::P99 => functions.sort_by_key(|f| std::cmp::Reverse(f.p99_ns)),
    }
    let json = json!(functions);
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
            table.add_row(row(f));
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

/// A function's line of the table.
fn row(f: &FunctionStats) -> Vec<String> {
    // Sync calls are busy all along; the ratio says something for futures,
    // streams and iterators.
    let busy = if f.kind == "sync" {
        String::new()
    } else {
        format!(
            "{:.0}%",
            100.0 * f.mean_busy_ns as f64 / f.mean_wall_ns.max(1) as f64
        )
    };
    vec![
        render::text(&f.name),
        render::text(&f.module),
        render::text(&f.kind),
        f.calls.to_string(),
        f.errors.to_string(),
        format!("{:.1}", f.error_pct),
        render::duration(f.p50_ns),
        render::duration(f.p95_ns),
        render::duration(f.p99_ns),
        render::duration(f.max_ns),
        busy,
        f.items.map(|n| n.to_string()).unwrap_or_default(),
    ]
}
