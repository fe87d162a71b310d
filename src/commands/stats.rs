//! `monitor stats`: what the writer did (from `monitor_stats`), what
//! happened to it (`monitor_events`, a spill file waiting to be replayed),
//! and the partitions with their rows and sizes.

use monitor_runtime::schema;
use serde_json::json;

use crate::db::Db;
use crate::render::{self, Out};
use crate::Failure;

/// The latest events shown.
const EVENTS_SHOWN: i64 = 20;

pub fn run(db: &Db, out: &Out) -> Result<(), Failure> {
    let totals: [i64; 13] = db
        .conn
        .query_row(
            "SELECT coalesce(sum(enqueued), 0), coalesce(sum(written), 0), coalesce(sum(dropped), 0),
                    coalesce(sum(errors_written), 0), coalesce(sum(failed), 0),
                    coalesce(sum(sampled_out), 0), coalesce(sum(batches), 0),
                    coalesce(max(batch_rows_max), 0), coalesce(max(batch_us_max), 0),
                    coalesce((SELECT queue_depth FROM monitor_stats ORDER BY ts_ns DESC LIMIT 1), 0),
                    coalesce(max(queue_depth_max), 0), coalesce(sum(spilled), 0),
                    coalesce(sum(replayed), 0)
             FROM monitor_stats",
            [],
            |r| {
                let mut v = [0i64; 13];
                for (i, slot) in v.iter_mut().enumerate() {
                    *slot = r.get(i)?;
                }
                Ok(v)
            },
        )
        .map_err(|e| db.fail(e))?;
    let [enqueued, written, dropped, errors_written, failed, sampled_out, batches, batch_rows_max, batch_us_max, queue_depth, queue_depth_max, spilled, replayed] =
        totals;

    // What happened to the writer, newest last.
    let mut events = Vec::new();
    let mut stmt = db
        .conn
        .prepare(
            "SELECT ts_ns, pid, kind, message FROM \
             (SELECT rowid, * FROM monitor_events ORDER BY ts_ns DESC, rowid DESC LIMIT ?1) \
             ORDER BY ts_ns, rowid",
        )
        .map_err(|e| db.fail(e))?;
    let rows = stmt
        .query_map([EVENTS_SHOWN], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(|e| db.fail(e))?;
    for row in rows {
        events.push(row.map_err(|e| db.fail(e))?);
    }

    // Records spilled and not replayed yet: they are in no table.
    let spill = schema::spill_path(&db.path);
    let (spill_lines, spill_bytes) = match std::fs::read(&spill) {
        Ok(bytes) => (
            bytes.iter().filter(|&&b| b == b'\n').count() as i64,
            bytes.len() as i64,
        ),
        Err(_) => (0, 0),
    };

    // Rows and bytes per partition; `dbstat` is compiled into the bundled SQLite.
    let mut partitions = Vec::new();
    let all = schema::span_partitions(&db.conn)
        .and_then(|s| {
            Ok(s.into_iter()
                .chain(schema::resource_partitions(&db.conn)?)
                .chain(schema::event_partitions(&db.conn)?))
        })
        .map_err(|e| db.fail(e))?;
    for partition in all {
        // A table name cannot be a parameter; it comes from sqlite_master
        // and is `prefix` + 10 digits.
        let (rows, bytes): (i64, Option<i64>) = db
            .conn
            .query_row(
                &format!(
                    "SELECT (SELECT count(*) FROM \"{}\"),
                            (SELECT sum(pgsize) FROM dbstat WHERE name = ?1)",
                    partition.table
                ),
                [&partition.table],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| db.fail(e))?;
        partitions.push((partition.table, rows, bytes.unwrap_or(0)));
    }
    let file_bytes = std::fs::metadata(&db.path).map_or(0, |m| m.len() as i64);

    let json = json!({
        "enqueued": enqueued,
        "written": written,
        "dropped": dropped,
        "errors_written": errors_written,
        "failed": failed,
        "sampled_out": sampled_out,
        "batches": batches,
        "batch_rows_max": batch_rows_max,
        "batch_us_max": batch_us_max,
        "queue_depth": queue_depth,
        "queue_depth_max": queue_depth_max,
        "spilled": spilled,
        "replayed": replayed,
        "spill_file": {"path": spill.display().to_string(), "lines": spill_lines, "bytes": spill_bytes},
        "events": events.iter().map(|(ts, pid, kind, message)| json!({
            "ts_ns": ts, "pid": pid, "kind": kind, "message": message,
        })).collect::<Vec<_>>(),
        "file_bytes": file_bytes,
        "partitions": partitions.iter().map(|(table, rows, bytes)| json!({
            "table": table, "rows": rows, "bytes": bytes,
        })).collect::<Vec<_>>(),
    });
    out.emit(json, || {
        let mut table = render::table(&["figure", "value"], 1);
        for (figure, value) in [
            ("enqueued", enqueued.to_string()),
            ("written", written.to_string()),
            ("dropped", dropped.to_string()),
            ("errors written", errors_written.to_string()),
            ("failed (refused by the database)", failed.to_string()),
            ("sampled out (by `sample`)", sampled_out.to_string()),
            ("batches", batches.to_string()),
            ("largest batch (rows)", batch_rows_max.to_string()),
            ("slowest batch", render::duration(batch_us_max * 1000)),
            ("queue depth (last)", queue_depth.to_string()),
            ("queue depth (largest)", queue_depth_max.to_string()),
            ("spilled (database refused)", spilled.to_string()),
            ("replayed from the spill file", replayed.to_string()),
            (
                "spill file waiting",
                if spill_lines == 0 {
                    "none".to_owned()
                } else {
                    format!(
                        "{spill_lines} lines, {} in {}",
                        render::bytes(spill_bytes),
                        spill.display()
                    )
                },
            ),
            ("file size", render::bytes(file_bytes)),
        ] {
            table.add_row(vec![figure.to_owned(), value]);
        }
        println!("{table}");
        if !events.is_empty() {
            let mut table = render::table(&["time", "pid", "event", "what happened"], 4);
            for (ts, pid, kind, message) in &events {
                table.add_row(vec![
                    render::timestamp(*ts),
                    pid.to_string(),
                    render::text(kind),
                    render::text(message),
                ]);
            }
            println!("{table}");
        }
        let mut table = render::table(&["partition", "rows", "size"], 1);
        for (name, rows, bytes) in &partitions {
            table.add_row(vec![name.clone(), rows.to_string(), render::bytes(*bytes)]);
        }
        println!("{table}");
    });
    Ok(())
}
