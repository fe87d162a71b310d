//! `monitor export`: spans as a Chrome trace (Perfetto, chrome://tracing),
//! CSV, or JSON lines, streamed to the file one partition at a time
//! (`--format otlp` is `export_otlp`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rusqlite::types::Value;
use serde_json::json;

use crate::db::{Db, SpanRow};
use crate::{ExportFormat, Failure};

pub fn run(
    db: &Db,
    format: ExportFormat,
    output: &Path,
    trace: Option<i64>,
    since: Option<u64>,
) -> Result<(), Failure> {
    if format == ExportFormat::Otlp {
        // `main` sends it to `export_otlp`: it writes no file.
        return Err(Failure(
            "--format otlp sends to a collector, not a file".into(),
        ));
    }
    let (filter, params, since) = match trace {
        Some(id) => ("trace_id = ?", vec![Value::Integer(id)], None),
        None => ("1", Vec::new(), since),
    };
    // Chrome times are microseconds; counted from the first span they keep
    // their nanoseconds, where microseconds since 1970 in an f64 would not.
    let Some(base_ns) = first_start(db, since, filter, &params)? else {
        return match trace {
            Some(id) => Err(Failure(format!("no trace {id} in {}", db.path.display()))),
            None => Err(Failure(format!(
                "no spans to export in {}",
                db.path.display()
            ))),
        };
    };
    let shown = output.display();
    let file = File::create(output).map_err(|e| format!("{shown}: cannot create: {e}"))?;
    let mut out = BufWriter::new(file);
    let io = |e: std::io::Error| Failure(format!("{shown}: {e}"));
    let mut count = 0u64;
    match format {
        ExportFormat::Chrome => {
            let mut tracks: HashMap<(i64, i64), (usize, String)> = HashMap::new();
            write!(
                out,
                "{{\"displayTimeUnit\":\"ns\",\"otherData\":{{\"base_unix_ns\":{base_ns}}},\"traceEvents\":["
            )
            .map_err(io)?;
            db.for_each_span(since, filter, &params, "", |span| {
                let next = tracks.len() + 1;
                let (tid, _) = tracks
                    .entry((span.pid, span.thread_id))
                    .or_insert_with(|| (next, span.thread.clone()));
                for event in chrome_events(&span, *tid, base_ns) {
                    if count > 0 {
                        out.write_all(b",").map_err(io)?;
                    }
                    serde_json::to_writer(&mut out, &event).map_err(|e| io(e.into()))?;
                    count += 1;
                }
                Ok(())
            })?;
            for ((pid, _), (tid, name)) in &tracks {
                let meta = json!({
                    "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                    "args": {"name": name},
                });
                if count > 0 {
                    out.write_all(b",").map_err(io)?;
                }
                serde_json::to_writer(&mut out, &meta).map_err(|e| io(e.into()))?;
                count += 1;
            }
            out.write_all(b"]}").map_err(io)?;
        }
        ExportFormat::Csv => {
            let mut writer = csv::Writer::from_writer(&mut out);
            let header: Vec<&str> = crate::db::SPAN_COLUMNS.split(", ").map(str::trim).collect();
            writer.write_record(&header).map_err(|e| io(e.into()))?;
            db.for_each_span(since, filter, &params, "", |s| {
                count += 1;
                writer
                    .write_record(csv_record(&s))
                    .map_err(|e| io(e.into()))
            })?;
            writer.flush().map_err(io)?;
        }
        // Refused above.
        ExportFormat::Otlp => {}
        ExportFormat::Jsonl => {
            db.for_each_span(since, filter, &params, "", |s| {
                count += 1;
                writeln!(out, "{}", s.to_json()).map_err(io)
            })?;
        }
    }
    out.flush().map_err(io)?;
    eprintln!("wrote {count} records to {shown}");
    Ok(())
}

/// The earliest start among the spans to export, `None` when there are none.
fn first_start(
    db: &Db,
    since: Option<u64>,
    filter: &str,
    params: &[Value],
) -> Result<Option<i64>, Failure> {
    let mut first: Option<i64> = None;
    // One row per partition (its earliest), not every row.
    db.for_each_span(since, filter, params, "ORDER BY start_ns LIMIT 1", |s| {
        first = Some(first.map_or(s.start_ns, |f| f.min(s.start_ns)));
        Ok(())
    })?;
    Ok(first)
}

/// Trace Event Format: a sync call is a complete (`X`) event on its thread's
/// track; a future, stream or iterator, which may overlap others on one
/// thread, is an async (`b`/`e`) pair with its id. Ids are strings: they
/// exceed what a JSON reader's doubles hold exactly.
fn chrome_events(span: &SpanRow, tid: usize, base_ns: i64) -> Vec<serde_json::Value> {
    let us = |ns: i64| (ns - base_ns) as f64 / 1e3;
    let fields = span.to_json()["fields"].take();
    let args = json!({
        "span_id": span.span_id.to_string(),
        "parent_id": span.parent_id.map(|p| p.to_string()),
        "trace_id": span.trace_id.to_string(),
        "kind": span.kind,
        "status": span.status,
        "error": span.error,
        "busy_ns": span.busy_ns,
        "items": span.items,
        "module": span.module,
        "location": format!("{}:{}", span.file, span.line),
        "fields": fields,
    });
    if span.kind == "sync" {
        return vec![json!({
            "name": span.name, "cat": span.group_name, "ph": "X",
            "ts": us(span.start_ns), "dur": span.duration_ns as f64 / 1e3,
            "pid": span.pid, "tid": tid, "args": args,
        })];
    }
    let id = format!("0x{:x}", span.span_id);
    vec![
        json!({
            "name": span.name, "cat": span.group_name, "ph": "b", "id": id,
            "ts": us(span.start_ns), "pid": span.pid, "tid": tid, "args": args,
        }),
        json!({
            "name": span.name, "cat": span.group_name, "ph": "e", "id": id,
            "ts": us(span.end_ns()), "pid": span.pid, "tid": tid,
        }),
    ]
}

fn csv_record(s: &SpanRow) -> [String; 23] {
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    [
        s.span_id.to_string(),
        opt(s.parent_id),
        s.trace_id.to_string(),
        s.name.clone(),
        s.module.clone(),
        s.group_name.clone(),
        s.kind.clone(),
        s.file.clone(),
        s.line.to_string(),
        s.status.clone(),
        s.error.clone().unwrap_or_default(),
        s.start_ns.to_string(),
        s.duration_ns.to_string(),
        s.busy_ns.to_string(),
        opt(s.items),
        s.thread.clone(),
        s.pid.to_string(),
        s.fields.clone().unwrap_or_default(),
        opt(s.rss_bytes),
        opt(s.cpu_ns),
        opt(s.alloc_bytes),
        s.thread_id.to_string(),
        s.trace_hi.to_string(),
    ]
}
