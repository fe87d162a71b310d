//! `monitor`: reads the SQLite file that `monitor_runtime` writes.
//!
//! This first version answers one question: what is in the file, per
//! function. Percentiles, call trees, tail, resources and export come with
//! the CLI issue.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rusqlite::{Connection, OpenFlags};

/// Summarise a monitor database: spans per function, errors, partitions.
#[derive(Parser, Debug)]
#[command(name = "monitor", version, about)]
struct Cli {
    /// The database file.
    #[arg(long, default_value = "monitor.db")]
    db: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("monitor: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let path = &cli.db;
    if !path.exists() {
        return Err(format!(
            "{}: no such file (run a monitored program first, or pass --db)",
            path.display()
        ));
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let is_monitor: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'monitor_meta')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| format!("{}: not a readable SQLite database ({e})", path.display()))?;
    if !is_monitor {
        return Err(format!(
            "{}: not a monitor database (no monitor_meta table)",
            path.display()
        ));
    }
    let sql_err = |e: rusqlite::Error| format!("{}: {e}", path.display());

    let partitions: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name GLOB 'spans_[0-9]*'",
            [],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let (spans, errors): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('error', 'panic')) FROM spans",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_err)?;
    let (written, dropped): (i64, i64) = conn
        .query_row(
            "SELECT coalesce(sum(written), 0), coalesce(sum(dropped), 0) FROM monitor_stats",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(sql_err)?;
    println!(
        "{}: {spans} spans ({errors} errors or panics) in {partitions} hourly partitions",
        path.display()
    );
    println!("writer: {written} written, {dropped} dropped");
    println!();
    println!(
        "{:<32} {:<24} {:>8} {:>8} {:>14}",
        "function", "group", "calls", "errors", "max ms"
    );
    let mut stmt = conn
        .prepare(
            "SELECT name, group_name, count(*), count(*) FILTER (WHERE status IN ('error', 'panic')), \
             max(duration_ns) FROM spans GROUP BY name, module, group_name ORDER BY count(*) DESC, name",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(sql_err)?;
    for row in rows {
        let (name, group, calls, errors, max_ns) = row.map_err(sql_err)?;
        println!(
            "{name:<32} {group:<24} {calls:>8} {errors:>8} {:>14.3}",
            max_ns as f64 / 1e6
        );
    }
    Ok(())
}
