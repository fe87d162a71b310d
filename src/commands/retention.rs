//! `monitor retention`: one retention pass with the config's rules, safe
//! while the instrumented program writes (see `monitor_runtime::retention`).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use monitor_runtime::retention;
use monitor_runtime::RetentionConfig;
use serde_json::json;

use crate::render::{self, Out};
use crate::Failure;

pub fn run(db: &Path, out: &Out, rules: &RetentionConfig, dry_run: bool) -> Result<(), Failure> {
    // The file is checked the way every command checks it.
    drop(crate::db::Db::open(db)?);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let report = retention::run_pass(db, rules, now, dry_run)?;
    let freed: u64 = report.expired.iter().map(|p| p.bytes).sum();
    let json = json!({
        "dry_run": report.dry_run,
        "hours": rules.hours,
        "partitions": report.expired.iter().map(|p| json!({
            "table": p.table,
            "hour_start_ns": p.hour_start_ns,
            "rows": p.rows,
            "bytes": p.bytes,
            "archive": p.archive.as_ref().map(|a| a.display().to_string()),
        })).collect::<Vec<_>>(),
        "rows": report.rows(),
        "bytes": freed,
        "file_bytes_before": report.file_bytes_before,
        "file_bytes_after": report.file_bytes_after,
    });
    out.emit(json, || {
        let verb = if dry_run { "would drop" } else { "dropped" };
        if report.expired.is_empty() {
            println!(
                "{}: nothing older than {} hours to drop",
                db.display(),
                rules.hours
            );
            return;
        }
        let mut table = render::table(&["partition", "hour (UTC)", "rows", "size", "archive"], 2);
        for p in &report.expired {
            table.add_row(vec![
                p.table.clone(),
                render::timestamp(p.hour_start_ns as i64)[..13].to_owned() + ":00",
                p.rows.to_string(),
                render::bytes(p.bytes as i64),
                p.archive
                    .as_ref()
                    .map(|a| a.display().to_string())
                    .unwrap_or_default(),
            ]);
        }
        println!("{table}");
        println!(
            "{verb} {} partitions: {} rows, {}",
            report.expired.len(),
            report.rows(),
            render::bytes(freed as i64)
        );
        if !dry_run {
            println!(
                "file: {} -> {}",
                render::bytes(report.file_bytes_before as i64),
                render::bytes(report.file_bytes_after as i64)
            );
        }
    });
    Ok(())
}
