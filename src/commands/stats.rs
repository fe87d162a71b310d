//! `monitor stats`: what the writer did (from `monitor_stats`), what
//! happened to it (`monitor_events`, a spill file waiting to be replayed),
//! and the partitions with their rows and sizes.

use crate::db::Db;
use crate::query::health;
use crate::render::{self, Out};
use crate::Failure;

pub fn run(db: &Db, out: &Out) -> Result<(), Failure> {
    let stats = health::stats(db)?;
    let json = serde_json::to_value(&stats).map_err(|e| e.to_string())?;
    out.emit(json, || {
        let mut table = render::table(&["figure", "value"], 1);
        for (figure, value) in [
            ("enqueued", stats.enqueued.to_string()),
            ("written", stats.written.to_string()),
            ("dropped", stats.dropped.to_string()),
            ("errors written", stats.errors_written.to_string()),
            ("failed (refused by the database)", stats.failed.to_string()),
            ("sampled out (by `sample`)", stats.sampled_out.to_string()),
            ("batches", stats.batches.to_string()),
            ("largest batch (rows)", stats.batch_rows_max.to_string()),
            ("slowest batch", render::duration(stats.batch_us_max * 1000)),
            ("queue depth (last)", stats.queue_depth.to_string()),
            ("queue depth (largest)", stats.queue_depth_max.to_string()),
            ("spilled (database refused)", stats.spilled.to_string()),
            ("replayed from the spill file", stats.replayed.to_string()),
            (
                "spill file waiting",
                if stats.spill_file.lines == 0 {
                    "none".to_owned()
                } else {
                    format!(
                        "{} lines, {} in {}",
                        stats.spill_file.lines,
                        render::bytes(stats.spill_file.bytes),
                        stats.spill_file.path
                    )
                },
            ),
            ("file size", render::bytes(stats.file_bytes)),
        ] {
            table.add_row(vec![figure.to_owned(), value]);
        }
        if let Some(export) = &stats.export {
            for (figure, value) in [
                ("OTLP: sent", export.sent.to_string()),
                ("OTLP: refused by the collector", export.refused.to_string()),
                (
                    "OTLP: sends given up (sent again)",
                    export.failed.to_string(),
                ),
                ("OTLP: retries", export.retries.to_string()),
                (
                    "OTLP: lost (retention before sending)",
                    export.lost.to_string(),
                ),
                (
                    "OTLP: waiting (at the last stats row)",
                    export.pending.to_string(),
                ),
                (
                    "OTLP: cursor moved",
                    render::timestamp(export.cursor_updated_ns),
                ),
            ] {
                table.add_row(vec![figure.to_owned(), value]);
            }
        }
        println!("{table}");
        if !stats.events.is_empty() {
            let mut table = render::table(&["time", "pid", "event", "what happened"], 4);
            for health::Event {
                ts_ns: ts,
                pid,
                kind,
                message,
            } in &stats.events
            {
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
        for p in &stats.partitions {
            table.add_row(vec![
                p.table.clone(),
                p.rows.to_string(),
                render::bytes(p.bytes),
            ]);
        }
        println!("{table}");
    });
    Ok(())
}
