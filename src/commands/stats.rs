//! `monitor stats`: what the writer did (from `monitor_stats`), what
//! happened to it (`monitor_events`, a spill file waiting to be replayed),
//! and the partitions with their rows and sizes.

use crate::db::Db;
use crate::query::health;
use crate::render::{self, Out};
use crate::Failure;

pub fn run(db: &Db, out: &Out) -> Result<(), Failure> {
    let stats = health::stats(db)?;
    let health::Stats {
        enqueued,
        written,
        dropped,
        errors_written,
        failed,
        sampled_out,
        batches,
        batch_rows_max,
        batch_us_max,
        queue_depth,
        queue_depth_max,
        spilled,
        replayed,
        ref spill_file,
        ref events,
        file_bytes,
        ref partitions,
    } = stats;
    let json = serde_json::to_value(&stats).map_err(|e| e.to_string())?;
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
                if spill_file.lines == 0 {
                    "none".to_owned()
                } else {
                    format!(
                        "{} lines, {} in {}",
                        spill_file.lines,
                        render::bytes(spill_file.bytes),
                        spill_file.path
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
            for health::Event {
                ts_ns: ts,
                pid,
                kind,
                message,
            } in events
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
        for health::PartitionSize {
            table: name,
            rows,
            bytes,
        } in partitions
        {
            table.add_row(vec![name.clone(), rows.to_string(), render::bytes(*bytes)]);
        }
        println!("{table}");
    });
    Ok(())
}
