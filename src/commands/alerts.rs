//! `monitor alerts`: the history of the rules' states that `monitor check
//! --record` kept in `alert_events`, newest last.

use serde_json::json;

use super::check::figure;
use crate::db::Db;
use crate::query::alerts::history;
use crate::query::Window;
use crate::render::{self, Out};
use crate::Failure;

pub fn run(db: &Db, out: &Out, since: Option<u64>, rule: Option<&str>) -> Result<(), Failure> {
    let mut events = history(db, Window::since(since))?;
    if let Some(rule) = rule {
        events.retain(|e| e.rule == rule);
    }
    out.emit(json!(events), || {
        if events.is_empty() {
            println!(
                "{}: no alert state recorded (run `monitor check --record`)",
                db.path.display()
            );
            return;
        }
        let mut table = render::table(&["time (UTC)", "rule", "state", "value", "threshold"], 3);
        for e in &events {
            let metric = e.metric.as_deref().unwrap_or("");
            table.add_row(vec![
                render::timestamp(e.ts_ns),
                render::text(&e.rule),
                e.state.clone(),
                e.value.map(|v| figure(metric, v)).unwrap_or_default(),
                e.threshold.map(|v| figure(metric, v)).unwrap_or_default(),
            ]);
        }
        println!("{table}");
    });
    Ok(())
}
