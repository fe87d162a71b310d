//! `monitor check`: every `[[alerts]]` rule's state, value and threshold;
//! with `--record`, each change of state appended to `alert_events`.

use std::path::Path;
use std::process::ExitCode;

use monitor_runtime::AlertRule;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use serde_json::json;

use crate::db::Db;
use crate::query::alerts::{evaluate, prepare_events_table, Evaluation, State, EVENTS_TABLE};
use crate::render::{self, Out};
use crate::Failure;

/// Exit codes: 0 when no rule fires, 1 when one does (a config or file
/// error is 2, in `main`).
pub fn run(
    db: &Db,
    out: &Out,
    rules: &[AlertRule],
    now_ns: u64,
    record: bool,
) -> Result<ExitCode, Failure> {
    let evaluations = evaluate(db, rules, now_ns)?;
    let recorded = if record {
        // Our read snapshot would keep a file in rollback-journal mode (a
        // `VACUUM INTO` copy, an archive) from taking our own write.
        db.refresh()?;
        self::record(&db.path, &evaluations, now_ns)?
    } else {
        0
    };
    let firing = evaluations
        .iter()
        .filter(|e| e.state == State::Firing)
        .count();
    out.emit(
        json!({ "rules": evaluations, "firing": firing, "recorded": recorded }),
        || {
            let mut table = render::table(
                &[
                    "rule",
                    "state",
                    "metric",
                    "value",
                    "threshold",
                    "window",
                    "calls",
                ],
                3,
            );
            for e in &evaluations {
                table.add_row(vec![
                    render::text(&e.rule),
                    e.state.name().to_owned(),
                    e.metric.to_owned(),
                    e.value.map_or_else(
                        || e.reason.clone().unwrap_or_default(),
                        |v| figure(e.metric, v),
                    ),
                    format!("{} {}", e.op, figure(e.metric, e.threshold)),
                    e.window.clone(),
                    e.calls.map(|n| n.to_string()).unwrap_or_default(),
                ]);
            }
            println!("{table}");
            println!(
                "{firing} of {} rules firing{}",
                evaluations.len(),
                if record {
                    format!("; {recorded} state changes recorded")
                } else {
                    String::new()
                }
            );
        },
    );
    Ok(if firing > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A value in its metric's unit, as people read it.
pub fn figure(metric: &str, value: f64) -> String {
    match metric {
        "error_rate" => format!("{:.2}%", 100.0 * value),
        "calls" => format!("{value:.0}"),
        "rss" => render::bytes(value as i64),
        _ => render::duration(value as i64),
    }
}

/// Appends a row to `alert_events` for each rule whose state differs from
/// its last recorded one (a rule never recorded counts as `ok`), in one
/// transaction; returns how many. The only write the CLI makes besides
/// `monitor retention`: a connection of its own, read-write.
fn record(path: &Path, evaluations: &[Evaluation], now_ns: u64) -> Result<usize, Failure> {
    let shown = path.display();
    let fail = |e: rusqlite::Error| Failure(format!("{shown}: cannot record alert states: {e}"));
    let mut conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(fail)?;
    // The program's writer holds the file for a moment per batch.
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(fail)?;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(fail)?;
    prepare_events_table(&tx)
        .map_err(|e| Failure(format!("{shown}: cannot record alert states: {e}")))?;
    let mut changes = 0;
    for e in evaluations {
        let last: Option<String> = tx
            .query_row(
                &format!(
                    "SELECT state FROM {EVENTS_TABLE} WHERE rule = ?1 \
                     ORDER BY ts_ns DESC, rowid DESC LIMIT 1"
                ),
                [&e.rule],
                |r| r.get(0),
            )
            .optional()
            .map_err(fail)?;
        if last.as_deref().unwrap_or(State::Ok.name()) == e.state.name() {
            continue;
        }
        tx.execute(
            &format!(
                "INSERT INTO {EVENTS_TABLE} (ts_ns, rule, state, value, metric, threshold) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            rusqlite::params![
                i64::try_from(now_ns).unwrap_or(i64::MAX),
                e.rule,
                e.state.name(),
                e.value,
                e.metric,
                e.threshold
            ],
        )
        .map_err(fail)?;
        changes += 1;
    }
    tx.commit().map_err(fail)?;
    Ok(changes)
}
