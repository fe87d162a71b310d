//! `monitor tree`: one trace's spans as an indented tree, each with its
//! duration, status and a bar of its share of the root's duration.

use std::collections::{HashMap, HashSet};

use monitor_runtime::schema;
use rusqlite::types::Value;
use serde_json::json;

use crate::db::{Db, SpanRow};
use crate::render::{self, Out};
use crate::Failure;

const BAR_WIDTH: usize = 20;

/// The trace of the latest span named `name`, or of the latest root.
fn latest_trace(db: &Db, name: Option<&str>) -> Result<i64, Failure> {
    let (filter, params): (&str, Vec<Value>) = match name {
        Some(name) => ("name = ?1", vec![Value::Text(name.to_owned())]),
        None => ("parent_id IS NULL", Vec::new()),
    };
    // Newest partition first: the answer is usually in the last hour.
    for partition in db.span_partitions(None)?.iter().rev() {
        let sql = format!(
            "SELECT trace_id FROM ({}) WHERE {filter} ORDER BY start_ns DESC LIMIT 1",
            schema::spans_select(&partition.table)
        );
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(&params))
            .map_err(|e| db.fail(e))?;
        if let Some(row) = rows.next().map_err(|e| db.fail(e))? {
            return row.get(0).map_err(|e| db.fail(e));
        }
    }
    Err(Failure(match name {
        Some(name) => format!("no span named `{name}` in {}", db.path.display()),
        None => format!("no spans in {}", db.path.display()),
    }))
}

pub fn run(db: &Db, out: &Out, trace_id: Option<i64>, name: Option<&str>) -> Result<(), Failure> {
    let trace_id = match trace_id {
        Some(id) => id,
        None => latest_trace(db, name)?,
    };
    let mut spans = db.spans(None, "trace_id = ?", &[Value::Integer(trace_id)])?;
    if spans.is_empty() {
        return Err(Failure(format!(
            "no trace {trace_id} in {}",
            db.path.display()
        )));
    }
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let ids: HashSet<i64> = spans.iter().map(|s| s.span_id).collect();
    let mut children: HashMap<Option<i64>, Vec<&SpanRow>> = HashMap::new();
    for span in &spans {
        // A span whose parent is missing (dropped, or not yet written) is
        // shown at the top rather than lost.
        let parent = span.parent_id.filter(|p| ids.contains(p));
        children.entry(parent).or_default().push(span);
    }
    let roots = children.get(&None).cloned().unwrap_or_default();
    let root_ns = roots
        .iter()
        .map(|r| r.duration_ns)
        .max()
        .unwrap_or(1)
        .max(1);

    fn to_json(
        span: &SpanRow,
        children: &HashMap<Option<i64>, Vec<&SpanRow>>,
    ) -> serde_json::Value {
        let mut node = span.to_json();
        node["children"] = json!(children
            .get(&Some(span.span_id))
            .map(|c| c.iter().map(|s| to_json(s, children)).collect::<Vec<_>>())
            .unwrap_or_default());
        node
    }
    let json = json!({
        "trace_id": trace_id,
        "spans": spans.len(),
        "roots": roots.iter().map(|r| to_json(r, &children)).collect::<Vec<_>>(),
    });

    out.emit(json, || {
        let mut lines = Vec::new();
        fn walk<'a>(
            span: &'a SpanRow,
            lead: &str,
            last: bool,
            top: bool,
            children: &HashMap<Option<i64>, Vec<&'a SpanRow>>,
            lines: &mut Vec<(String, &'a SpanRow)>,
        ) {
            let branch = match (top, last) {
                (true, _) => "",
                (false, true) => "└─ ",
                (false, false) => "├─ ",
            };
            lines.push((format!("{lead}{branch}{}", span.name), span));
            let next_lead = match (top, last) {
                (true, _) => lead.to_owned(),
                (false, true) => format!("{lead}   "),
                (false, false) => format!("{lead}│  "),
            };
            let kids = children
                .get(&Some(span.span_id))
                .map_or(&[][..], Vec::as_slice);
            for (i, child) in kids.iter().enumerate() {
                walk(
                    child,
                    &next_lead,
                    i + 1 == kids.len(),
                    false,
                    children,
                    lines,
                );
            }
        }
        for root in &roots {
            walk(root, "", true, true, &children, &mut lines);
        }
        let width = lines
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0);
        println!(
            "trace {trace_id}: {} spans, started {} UTC",
            spans.len(),
            render::timestamp(spans[0].start_ns)
        );
        for (label, span) in &lines {
            let share = span.duration_ns as f64 / root_ns as f64;
            let status = match &span.error {
                Some(error) => format!("{}: {error}", span.status),
                None => span.status.clone(),
            };
            println!(
                "{label:<width$}  {:>10}  {} {:>5.1}%  {status}",
                render::duration(span.duration_ns),
                render::bar(share, BAR_WIDTH),
                100.0 * share,
            );
        }
    });
    Ok(())
}
