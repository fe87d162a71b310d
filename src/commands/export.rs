//! `monitor export`: spans as a Chrome trace (Perfetto, chrome://tracing),
//! CSV, or JSON lines.

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
    let mut spans = match trace {
        Some(id) => db.spans(None, "trace_id = ?", &[Value::Integer(id)])?,
        None => db.spans(since, "1", &[])?,
    };
    if let (Some(id), true) = (trace, spans.is_empty()) {
        return Err(Failure(format!("no trace {id} in {}", db.path.display())));
    }
    spans.sort_by_key(|s| (s.start_ns, s.span_id));
    let shown = output.display();
    let file = File::create(output).map_err(|e| format!("{shown}: cannot create: {e}"))?;
    let mut out = BufWriter::new(file);
    let written = match format {
        ExportFormat::Chrome => chrome(&spans, &mut out),
        ExportFormat::Csv => csv(&spans, &mut out),
        ExportFormat::Jsonl => spans
            .iter()
            .try_for_each(|s| writeln!(out, "{}", s.to_json()).map_err(|e| e.to_string())),
    };
    written
        .and_then(|()| out.flush().map_err(|e| e.to_string()))
        .map_err(|e| format!("{shown}: {e}"))?;
    eprintln!("wrote {} spans to {shown}", spans.len());
    Ok(())
}

/// The Trace Event Format: a complete (`X`) event per span, times in
/// microseconds, one track per thread, the span's figures in `args`.
fn chrome(spans: &[SpanRow], out: &mut impl Write) -> Result<(), String> {
    let mut tids: HashMap<(i64, &str), usize> = HashMap::new();
    let mut events = Vec::with_capacity(spans.len() + 8);
    for span in spans {
        let next = tids.len() + 1;
        let tid = *tids.entry((span.pid, span.thread.as_str())).or_insert(next);
        let mut event = span.to_json();
        let args = json!({
            "span_id": span.span_id,
            "parent_id": span.parent_id,
            "trace_id": span.trace_id,
            "kind": span.kind,
            "status": span.status,
            "error": span.error,
            "busy_ns": span.busy_ns,
            "items": span.items,
            "module": span.module,
            "location": format!("{}:{}", span.file, span.line),
            "fields": event["fields"].take(),
        });
        events.push(json!({
            "name": span.name,
            "cat": span.group_name,
            "ph": "X",
            "ts": span.start_ns as f64 / 1e3,
            "dur": span.duration_ns as f64 / 1e3,
            "pid": span.pid,
            "tid": tid,
            "args": args,
        }));
    }
    for ((pid, thread), tid) in &tids {
        events.push(json!({
            "name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
            "args": {"name": thread},
        }));
    }
    let document = json!({"traceEvents": events, "displayTimeUnit": "ns"});
    serde_json::to_writer(&mut *out, &document).map_err(|e| e.to_string())
}

fn csv(spans: &[SpanRow], out: &mut impl Write) -> Result<(), String> {
    let mut writer = csv::Writer::from_writer(out);
    let header: Vec<&str> = crate::db::SPAN_COLUMNS.split(", ").map(str::trim).collect();
    writer.write_record(&header).map_err(|e| e.to_string())?;
    let opt = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for s in spans {
        writer
            .write_record([
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
            ])
            .map_err(|e| e.to_string())?;
    }
    writer.flush().map_err(|e| e.to_string())
}
