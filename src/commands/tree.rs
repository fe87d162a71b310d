//! `monitor tree`: one trace's spans as an indented tree, each with its
//! duration, status and a bar of its share of the root's duration.

use std::collections::HashMap;

use monitor_runtime::schema;
use rusqlite::types::Value;
use serde_json::json;

use crate::db::{Db, SpanRow};
use crate::query::traces::TraceKey;
use crate::render::{self, Out};
use crate::Failure;

const BAR_WIDTH: usize = 20;
/// Deeper levels are drawn at this indent, marked with how many more.
const MAX_INDENT: usize = 32;

/// One printed line of the tree.
struct Line {
    /// Index of the span in the sorted list.
    index: usize,
    depth: usize,
    /// The last of its siblings.
    last: bool,
    /// For each ancestor level below the root: whether a sibling follows.
    guides: Vec<bool>,
    /// Its root's duration: the bar's 100%.
    root_ns: i64,
}

/// The spans in tree order, walked with an explicit stack (recursion depth
/// is the user's). Spans whose parent is not in the trace (not yet written,
/// or dropped), and any caught in a cycle of ids, become roots: every span
/// is shown once.
fn layout(spans: &[SpanRow]) -> Vec<Line> {
    let index: HashMap<i64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut tops = Vec::new();
    for (i, span) in spans.iter().enumerate() {
        match span.parent_id.and_then(|p| index.get(&p)) {
            Some(&parent) if parent != i => children[parent].push(i),
            _ => tops.push(i),
        }
    }
    let mut visited = vec![false; spans.len()];
    let mut lines = Vec::with_capacity(spans.len());
    let walk = |top: usize, lines: &mut Vec<Line>, visited: &mut Vec<bool>| {
        let root_ns = spans[top].duration_ns;
        // (span, depth, last, guides)
        let mut stack = vec![(top, 0usize, true, Vec::new())];
        while let Some((i, depth, last, guides)) = stack.pop() {
            if std::mem::replace(&mut visited[i], true) {
                continue;
            }
            let kids = &children[i];
            let mut next_guides = guides.clone();
            // Only the drawn levels need guides (deep chains stay cheap).
            if depth > 0 && next_guides.len() < MAX_INDENT {
                next_guides.push(!last);
            }
            for (k, &child) in kids.iter().enumerate().rev() {
                stack.push((child, depth + 1, k + 1 == kids.len(), next_guides.clone()));
            }
            lines.push(Line {
                index: i,
                depth,
                last,
                guides,
                root_ns,
            });
        }
    };
    for top in tops {
        walk(top, &mut lines, &mut visited);
    }
    // Whatever a cycle kept from every root.
    for i in 0..spans.len() {
        if !visited[i] {
            walk(i, &mut lines, &mut visited);
        }
    }
    lines
}

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

pub fn run(
    db: &Db,
    out: &Out,
    trace_id: Option<TraceKey>,
    name: Option<&str>,
) -> Result<(), Failure> {
    let key = match trace_id {
        Some(key) => key,
        None => latest_trace(db, name)?.into(),
    };
    let spans = crate::query::traces::trace(db, key)?;
    let trace_id = key.low;
    if spans.is_empty() {
        return Err(Failure(format!("no trace {key} in {}", db.path.display())));
    }
    let lines = layout(&spans);
    let mut events: HashMap<i64, Vec<crate::db::EventRow>> = HashMap::new();
    for event in db.events("trace_id = ?", &[Value::Integer(trace_id)])? {
        if let Some(span_id) = event.span_id {
            events.entry(span_id).or_default().push(event);
        }
    }
    let events_of = |span: &SpanRow| events.get(&span.span_id).map_or(&[][..], Vec::as_slice);

    // Flat, in tree order, with each span's depth: a nested document would
    // be as deep as the user's recursion, and JSON tools recurse.
    let json = json!({
        "trace_id": trace_id,
        "trace": spans[0].trace_hex(),
        "spans": spans.len(),
        "nodes": lines.iter().map(|line| {
            let span = &spans[line.index];
            let mut node = span.to_json();
            node["depth"] = json!(line.depth);
            let span_events = events_of(span);
            if !span_events.is_empty() {
                node["events"] = span_events.iter().map(|e| e.to_json()).collect();
            }
            node["root_share"] =
                json!(spans[line.index].duration_ns as f64 / line.root_ns.max(1) as f64);
            node
        }).collect::<Vec<_>>(),
    });

    out.emit(json, || {
        let label = |line: &Line| {
            let name = render::text(&spans[line.index].name);
            if line.depth == 0 {
                return name;
            }
            let shown = line.depth.min(MAX_INDENT);
            let lead: String = line.guides[..(shown - 1).min(line.guides.len())]
                .iter()
                .map(|&more| if more { "│  " } else { "   " })
                .collect();
            let branch = if line.last { "└─ " } else { "├─ " };
            let deeper = if line.depth > MAX_INDENT {
                format!("[+{}] ", line.depth - MAX_INDENT)
            } else {
                String::new()
            };
            format!("{lead}{branch}{deeper}{name}")
        };
        let labels: Vec<String> = lines.iter().map(label).collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        // A trace from another process is known by its 128-bit id there.
        let shown = match spans[0].trace_hi {
            0 => trace_id.to_string(),
            _ => spans[0].trace_hex(),
        };
        println!(
            "trace {shown}: {} spans, started {} UTC",
            spans.len(),
            render::timestamp(spans[0].start_ns)
        );
        for (line, label) in lines.iter().zip(&labels) {
            let span = &spans[line.index];
            let share = span.duration_ns as f64 / line.root_ns.max(1) as f64;
            let status = render::text(&match &span.error {
                Some(error) => format!("{}: {error}", span.status),
                None => span.status.clone(),
            });
            println!(
                "{label:<width$}  {:>10}  {} {:>5.1}%  {status}",
                render::duration(span.duration_ns),
                render::bar(share, BAR_WIDTH),
                100.0 * share,
            );
            // Its events (`MonitorLayer::events`), under its name.
            let indent = " ".repeat(3 * line.depth.min(MAX_INDENT));
            for event in events_of(span) {
                println!("{indent}   · {}", event.describe());
            }
        }
    });
    Ok(())
}
