//! The monitor's own health: what the writer did (`monitor_stats`), what
//! happened to it (`monitor_events`, a spill file waiting), the partitions
//! with their sizes (`monitor stats`, `/api/stats`, the health page), and
//! the resource sampler's series (`monitor resources`, `/api/resources`).

use std::collections::BTreeMap;

use monitor_runtime::schema;
use serde::Serialize;

use super::Window;
use crate::db::Db;
use crate::Failure;

/// The latest events shown.
const EVENTS_SHOWN: i64 = 20;

/// Totals over every `monitor_stats` row, and the rest of what is known.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub enqueued: i64,
    pub written: i64,
    pub dropped: i64,
    pub errors_written: i64,
    pub failed: i64,
    pub sampled_out: i64,
    pub batches: i64,
    pub batch_rows_max: i64,
    pub batch_us_max: i64,
    pub queue_depth: i64,
    pub queue_depth_max: i64,
    pub spilled: i64,
    pub replayed: i64,
    pub spill_file: SpillFile,
    /// What happened to the writer, newest last.
    pub events: Vec<Event>,
    pub file_bytes: i64,
    pub partitions: Vec<PartitionSize>,
    /// The live OTLP export, `None` where it never ran.
    pub export: Option<Export>,
}

/// The live OTLP export: totals of `export_stats`, and its cursor.
#[derive(Clone, Debug, Serialize)]
pub struct Export {
    pub sent: i64,
    pub refused: i64,
    /// Spans whose sending was given up after retries (sent again later).
    pub failed: i64,
    pub retries: i64,
    /// Dropped by retention before they were sent.
    pub lost: i64,
    /// Committed and not sent yet, at the last stats row.
    pub pending: i64,
    /// When the cursor last moved.
    pub cursor_updated_ns: i64,
}

/// Records spilled and not replayed yet: they are in no table.
#[derive(Clone, Debug, Serialize)]
pub struct SpillFile {
    pub path: String,
    pub lines: i64,
    pub bytes: i64,
}

/// A row of `monitor_events`.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    pub ts_ns: i64,
    pub pid: i64,
    pub kind: String,
    pub message: String,
}

/// A partition's rows and bytes.
#[derive(Clone, Debug, Serialize)]
pub struct PartitionSize {
    pub table: String,
    /// The start of its UTC hour.
    pub hour_start_ns: u64,
    pub rows: i64,
    pub bytes: i64,
}

/// The export's totals, if a live sender ever started on the file.
fn export(db: &Db) -> Result<Option<Export>, Failure> {
    db.conn
        .query_row(
            "SELECT (SELECT updated_ns FROM export_cursor WHERE id = 1),
                    CAST(total(sent) AS INTEGER), CAST(total(refused) AS INTEGER),
                    CAST(total(failed) AS INTEGER), CAST(total(retries) AS INTEGER),
                    CAST(total(lost) AS INTEGER),
                    coalesce((SELECT pending FROM export_stats WHERE lost = 0
                              ORDER BY ts_ns DESC LIMIT 1), 0)
             FROM export_stats",
            [],
            |r| {
                let Some(cursor_updated_ns) = r.get::<_, Option<i64>>(0)? else {
                    return Ok(None);
                };
                Ok(Some(Export {
                    cursor_updated_ns,
                    sent: r.get(1)?,
                    refused: r.get(2)?,
                    failed: r.get(3)?,
                    retries: r.get(4)?,
                    lost: r.get(5)?,
                    pending: r.get(6)?,
                }))
            },
        )
        .map_err(|e| db.fail(e))
}

/// What the file says of the monitor itself.
pub fn stats(db: &Db) -> Result<Stats, Failure> {
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

    let mut stmt = db
        .conn
        .prepare(
            "SELECT ts_ns, pid, kind, message FROM \
             (SELECT rowid, * FROM monitor_events ORDER BY ts_ns DESC, rowid DESC LIMIT ?1) \
             ORDER BY ts_ns, rowid",
        )
        .map_err(|e| db.fail(e))?;
    let events = stmt
        .query_map([EVENTS_SHOWN], |r| {
            Ok(Event {
                ts_ns: r.get(0)?,
                pid: r.get(1)?,
                kind: r.get(2)?,
                message: r.get(3)?,
            })
        })
        .map_err(|e| db.fail(e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| db.fail(e))?;

    let export = export(db)?;
    let spill = schema::spill_path(&db.path);
    let (lines, bytes) = match std::fs::read(&spill) {
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
        partitions.push(PartitionSize {
            hour_start_ns: partition.hour_start_ns,
            table: partition.table,
            rows,
            bytes: bytes.unwrap_or(0),
        });
    }
    Ok(Stats {
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
        spill_file: SpillFile {
            path: spill.display().to_string(),
            lines,
            bytes,
        },
        events,
        file_bytes: std::fs::metadata(&db.path).map_or(0, |m| m.len() as i64),
        partitions,
        export,
    })
}

/// One `monitor_stats` row: counts since the row before it (of its process).
#[derive(Clone, Debug, Serialize)]
pub struct StatsRow {
    pub ts_ns: i64,
    pub pid: i64,
    pub enqueued: i64,
    pub written: i64,
    pub dropped: i64,
    pub errors_written: i64,
    pub failed: i64,
    pub sampled_out: i64,
    pub queue_depth: i64,
    pub queue_depth_max: i64,
    pub spilled: i64,
    pub replayed: i64,
    pub batches: i64,
    pub batch_us_max: i64,
}

/// The `monitor_stats` rows in `window`, oldest first.
pub fn history(db: &Db, window: Window) -> Result<Vec<StatsRow>, Failure> {
    let (_, [since, until]) = window.condition();
    let mut stmt = db
        .conn
        .prepare(
            "SELECT ts_ns, pid, enqueued, written, dropped, errors_written, failed, sampled_out, \
                    queue_depth, queue_depth_max, spilled, replayed, batches, batch_us_max \
             FROM monitor_stats WHERE ts_ns >= ?1 AND ts_ns < ?2 ORDER BY ts_ns",
        )
        .map_err(|e| db.fail(e))?;
    let rows = stmt
        .query_map([since, until], |r| {
            Ok(StatsRow {
                ts_ns: r.get(0)?,
                pid: r.get(1)?,
                enqueued: r.get(2)?,
                written: r.get(3)?,
                dropped: r.get(4)?,
                errors_written: r.get(5)?,
                failed: r.get(6)?,
                sampled_out: r.get(7)?,
                queue_depth: r.get(8)?,
                queue_depth_max: r.get(9)?,
                spilled: r.get(10)?,
                replayed: r.get(11)?,
                batches: r.get(12)?,
                batch_us_max: r.get(13)?,
            })
        })
        .map_err(|e| db.fail(e))?;
    rows.collect::<Result<_, _>>().map_err(|e| db.fail(e))
}

/// One reading of the resource sampler.
#[derive(Clone, Debug, Serialize)]
pub struct Sample {
    pub ts_ns: i64,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<i64>,
}

/// One process's readings, oldest first: two programs sharing a file are
/// two series, not one.
#[derive(Clone, Debug, Serialize)]
pub struct Process {
    pub pid: i64,
    pub samples: Vec<Sample>,
}

/// The resource samples taken in `window`, by process.
pub fn resources(db: &Db, window: Window) -> Result<Vec<Process>, Failure> {
    let mut by_pid: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
    let (_, params) = window.condition();
    let partitions = schema::resource_partitions(&db.conn).map_err(|e| db.fail(e))?;
    for partition in partitions.iter().filter(|p| window.reaches(p)) {
        let sql = format!(
            "SELECT ts_ns, pid, cpu_percent, rss_bytes FROM ({}) \
             WHERE ts_ns >= ?1 AND ts_ns < ?2 ORDER BY ts_ns",
            schema::resource_samples_select(&partition.table)
        );
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let rows = stmt
            .query_map(params, |r| {
                Ok((
                    r.get::<_, i64>(1)?,
                    Sample {
                        ts_ns: r.get(0)?,
                        cpu_percent: r.get(2)?,
                        rss_bytes: r.get(3)?,
                    },
                ))
            })
            .map_err(|e| db.fail(e))?;
        for row in rows {
            let (pid, sample) = row.map_err(|e| db.fail(e))?;
            by_pid.entry(pid).or_default().push(sample);
        }
    }
    Ok(by_pid
        .into_iter()
        .map(|(pid, samples)| Process { pid, samples })
        .collect())
}
