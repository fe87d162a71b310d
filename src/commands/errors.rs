//! `monitor errors`: the latest errors and panics, newest first.

use rusqlite::types::Value;

use crate::db::Db;
use crate::render::{self, Out};
use crate::Failure;

pub fn run(
    db: &Db,
    out: &Out,
    since: Option<u64>,
    name: Option<&str>,
    limit: usize,
) -> Result<(), Failure> {
    let (filter, params) = match name {
        Some(name) => (
            "status IN ('error', 'panic') AND name = ?",
            vec![Value::Text(name.to_owned())],
        ),
        None => ("status IN ('error', 'panic')", Vec::new()),
    };
    // The newest `limit` of each partition, then of all.
    let mut rows = Vec::new();
    db.for_each_span(
        since,
        filter,
        &params,
        &format!("ORDER BY start_ns DESC LIMIT {limit}"),
        |row| {
            rows.push(row);
            Ok(())
        },
    )?;
    rows.sort_by_key(|r| std::cmp::Reverse(r.start_ns));
    rows.truncate(limit);

    let json = rows.iter().map(|r| r.to_json()).collect();
    out.emit(json, || {
        if rows.is_empty() {
            println!("no errors or panics in {}", db.path.display());
            return;
        }
        let mut table = render::table(&["time (UTC)", "function", "status", "message", "trace"], 5);
        for row in &rows {
            table.add_row(vec![
                render::timestamp(row.start_ns),
                format!(
                    "{} ({})",
                    render::text(&row.name),
                    render::text(&row.module)
                ),
                render::text(&row.status),
                render::text(row.error.as_deref().unwrap_or_default()),
                row.trace_id.to_string(),
            ]);
        }
        println!("{table}");
    });
    Ok(())
}
