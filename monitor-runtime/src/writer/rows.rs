//! The rows the writer stores, one set of types for both of its sources: the
//! queue, and the spill file it falls back on while the database cannot be
//! written. Each spill line is one [`Line`], so a replay inserts exactly
//! what the writer would have.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::{params, Transaction};
use serde::{Deserialize, Serialize};

use super::schema::{self, Family, EVENTS, RESOURCE_SAMPLES, SPANS};
use crate::callsite::Callsite;
use crate::clock::Clock;
use crate::record::{Record, NULL};
use crate::resources::Sample;

/// A row of `callsites`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CallsiteRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) module: String,
    pub(crate) group_name: String,
    pub(crate) kind: String,
    pub(crate) file: String,
    pub(crate) line: u32,
}

impl From<&'static Callsite> for CallsiteRow {
    fn from(cs: &'static Callsite) -> Self {
        CallsiteRow {
            id: cs.id() as i64,
            name: cs.name().to_owned(),
            module: cs.module().to_owned(),
            group_name: cs.group().to_owned(),
            kind: cs.kind().as_str().to_owned(),
            file: cs.file().to_owned(),
            line: cs.line(),
        }
    }
}

/// A row of `threads`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ThreadRow {
    pub(crate) id: i64,
    pub(crate) pid: u32,
    pub(crate) name: String,
}

/// A row of a `spans_*` partition. Borrowed from a record when written
/// straight from the queue, owned when read back from a spill file.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SpanRow<'a> {
    pub(crate) span_id: i64,
    pub(crate) parent_id: Option<i64>,
    pub(crate) trace_id: i64,
    /// Absent from the lines of spill files written before version 4.
    #[serde(default)]
    pub(crate) trace_hi: i64,
    pub(crate) callsite_id: i64,
    pub(crate) thread_id: i64,
    pub(crate) status: u8,
    pub(crate) error: Option<Cow<'a, str>>,
    pub(crate) start_ns: u64,
    pub(crate) duration_ns: i64,
    pub(crate) busy_ns: i64,
    pub(crate) items: Option<i64>,
    pub(crate) fields: Option<Cow<'a, str>>,
    pub(crate) rss_bytes: Option<i64>,
    pub(crate) cpu_ns: Option<i64>,
    pub(crate) alloc_bytes: Option<i64>,
}

impl<'a> SpanRow<'a> {
    /// The row of a span record, its readings converted by `clock`.
    pub(crate) fn new(r: &'a Record, clock: &Clock) -> Self {
        let opt = |v: u64| (v != NULL).then_some(v as i64);
        let times = r.times(clock);
        SpanRow {
            span_id: r.span_id as i64,
            parent_id: (r.parent_id != 0).then_some(r.parent_id as i64),
            trace_id: r.trace_id as i64,
            trace_hi: r.trace_hi as i64,
            callsite_id: r.callsite.id() as i64,
            thread_id: r.thread_id as i64,
            status: r.status as u8,
            error: r.error().map(Cow::Borrowed),
            start_ns: times.start_ns,
            duration_ns: times.duration_ns as i64,
            busy_ns: times.busy_ns as i64,
            items: opt(r.items),
            fields: r.fields_json(),
            rss_bytes: opt(r.rss_bytes),
            cpu_ns: opt(r.cpu_ns),
            alloc_bytes: opt(r.alloc_bytes),
        }
    }
}

impl SpanRow<'_> {
    fn is_failure(&self) -> bool {
        matches!(self.status, 1 | 2)
    }
}

/// A row of an `events_*` partition: an event of `tracing`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TracingEventRow<'a> {
    pub(crate) span_id: Option<i64>,
    pub(crate) trace_id: Option<i64>,
    pub(crate) callsite_id: i64,
    pub(crate) thread_id: i64,
    pub(crate) ts_ns: u64,
    pub(crate) level: Cow<'a, str>,
    pub(crate) message: Option<Cow<'a, str>>,
    pub(crate) fields: Option<Cow<'a, str>>,
}

impl<'a> TracingEventRow<'a> {
    /// The row of an event record, its time converted by `clock`.
    pub(crate) fn new(r: &'a Record, clock: &Clock) -> Self {
        TracingEventRow {
            span_id: (r.span_id != 0).then_some(r.span_id as i64),
            trace_id: (r.span_id != 0).then_some(r.trace_id as i64),
            callsite_id: r.callsite.id() as i64,
            thread_id: r.thread_id as i64,
            ts_ns: clock.unix_of(r.start_raw),
            level: Cow::Borrowed(crate::record::event_level_name(r.event_level)),
            message: r.error().map(Cow::Borrowed),
            fields: r.fields_json(),
        }
    }
}

/// A row of a `resource_samples_*` partition.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SampleRow {
    pub(crate) ts_ns: u64,
    pub(crate) pid: u32,
    pub(crate) cpu_percent: Option<f64>,
    pub(crate) rss_bytes: Option<u64>,
    pub(crate) virtual_bytes: Option<u64>,
    pub(crate) threads: Option<u64>,
    pub(crate) system_memory_used_bytes: Option<u64>,
    pub(crate) system_memory_total_bytes: Option<u64>,
}

impl SampleRow {
    pub(crate) fn new(sample: &Sample, pid: u32) -> SampleRow {
        let r = &sample.reading;
        SampleRow {
            ts_ns: sample.ts_ns,
            pid,
            cpu_percent: r.cpu_percent,
            rss_bytes: r.rss_bytes,
            virtual_bytes: r.virtual_bytes,
            threads: r.threads,
            system_memory_used_bytes: r.system_memory_used_bytes,
            system_memory_total_bytes: r.system_memory_total_bytes,
        }
    }
}

/// A row of `monitor_stats`: counts since the previous row.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct StatsRow {
    pub(crate) ts_ns: u64,
    pub(crate) pid: u32,
    pub(crate) enqueued: u64,
    pub(crate) written: u64,
    pub(crate) dropped: u64,
    pub(crate) errors_written: u64,
    pub(crate) failed: u64,
    pub(crate) queue_depth: u64,
    pub(crate) queue_depth_max: u64,
    pub(crate) batches: u64,
    pub(crate) batch_rows_max: u64,
    pub(crate) batch_us_avg: u64,
    pub(crate) batch_us_max: u64,
    pub(crate) sampled_out: u64,
    pub(crate) spilled: u64,
    pub(crate) replayed: u64,
}

/// A row of `monitor_events`: something that happened to the writer.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EventRow {
    pub(crate) ts_ns: u64,
    pub(crate) pid: u32,
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// One line of a spill file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Line<'a> {
    Callsite(CallsiteRow),
    Thread(ThreadRow),
    Span(SpanRow<'a>),
    Sample(SampleRow),
    Stats(StatsRow),
    Event(EventRow),
    TracingEvent(TracingEventRow<'a>),
}

impl<'a> Line<'a> {
    /// The line of a record: a span, or an event of `tracing`.
    pub(crate) fn of(record: &'a Record, clock: &Clock) -> Line<'a> {
        if record.event_level == 0 {
            Line::Span(SpanRow::new(record, clock))
        } else {
            Line::TracingEvent(TracingEventRow::new(record, clock))
        }
    }
}

/// What a run of span inserts did.
#[derive(Debug, Default)]
pub(crate) struct SpansStored {
    pub(crate) written: u64,
    pub(crate) errors: u64,
    /// Rows refused by a constraint (an id already in the file).
    pub(crate) rejected: u64,
    pub(crate) first_rejection: Option<String>,
}

/// Inserts rows inside a transaction, creating partitions as needed and
/// rebuilding the views once at the end if it did.
pub(crate) struct Inserter<'t, 'c> {
    tx: &'t Transaction<'c>,
    /// Partition names by hour known to exist (kept across transactions by
    /// the writer; cleared when the schema changes under it).
    tables: &'t mut HashMap<u64, String>,
    /// Families with a partition created in this transaction.
    stale: Vec<&'static Family>,
    /// This transaction's number in the file's commit sequence, taken
    /// when it first stores a span.
    seq: Option<i64>,
}

impl<'t, 'c> Inserter<'t, 'c> {
    pub(crate) fn new(tx: &'t Transaction<'c>, tables: &'t mut HashMap<u64, String>) -> Self {
        Inserter {
            tx,
            tables,
            stale: Vec::new(),
            seq: None,
        }
    }

    /// The `seq` of the spans this transaction stores: one more than any
    /// transaction's before it, in any process (the write lock orders them).
    fn seq(&mut self) -> rusqlite::Result<i64> {
        if let Some(seq) = self.seq {
            return Ok(seq);
        }
        let seq = self.tx.query_row(
            "UPDATE monitor_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq",
            [],
            |row| row.get(0),
        )?;
        Ok(*self.seq.insert(seq))
    }

    /// Creates `table` of `family` if missing.
    fn partition(&mut self, family: &'static Family, table: &str) -> rusqlite::Result<()> {
        if family.create_partition(self.tx, table)?
            && !self.stale.iter().any(|f| f.view == family.view)
        {
            self.stale.push(family);
        }
        Ok(())
    }

    pub(crate) fn callsites<'r>(
        &mut self,
        rows: impl IntoIterator<Item = &'r CallsiteRow>,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR IGNORE INTO callsites (id, name, module, group_name, kind, file, line) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for cs in rows {
            stmt.execute(params![
                cs.id,
                cs.name,
                cs.module,
                cs.group_name,
                cs.kind,
                cs.file,
                cs.line
            ])?;
        }
        Ok(())
    }

    pub(crate) fn threads<'r>(
        &mut self,
        rows: impl IntoIterator<Item = &'r ThreadRow>,
    ) -> rusqlite::Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("INSERT OR IGNORE INTO threads (id, pid, name) VALUES (?1, ?2, ?3)")?;
        for t in rows {
            stmt.execute(params![t.id, t.pid, t.name])?;
        }
        Ok(())
    }

    /// Inserts spans into their hours' partitions. A row refused by a
    /// constraint (an id collision, or a replayed row already stored) is
    /// counted, not fatal; any other error aborts.
    pub(crate) fn spans<'r>(
        &mut self,
        rows: impl IntoIterator<Item = SpanRow<'r>>,
    ) -> rusqlite::Result<SpansStored> {
        let mut stored = SpansStored::default();
        let seq = self.seq()?;
        let mut current: Option<(u64, rusqlite::CachedStatement<'_>)> = None;
        let mut bound = Bound::FRESH;
        for row in rows {
            let hour = row.start_ns / schema::HOUR_NS;
            let stmt = match &mut current {
                Some((h, stmt)) if *h == hour => stmt,
                _ => {
                    // Out of the cache with every parameter NULL.
                    bound = Bound::FRESH;
                    let table = match self.tables.get(&hour) {
                        Some(table) => table.clone(),
                        None => {
                            let table = SPANS.table_for(row.start_ns);
                            self.partition(&SPANS, &table)?;
                            self.tables.insert(hour, table.clone());
                            table
                        }
                    };
                    &mut current
                        .insert((hour, self.tx.prepare_cached(&insert_span_sql(&table))?))
                        .1
                }
            };
            match bound
                .span(stmt, &row, seq)
                .and_then(|()| stmt.raw_execute())
            {
                Ok(_) => {
                    stored.written += 1;
                    stored.errors += u64::from(row.is_failure());
                }
                Err(rusqlite::Error::SqliteFailure(e, msg))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    stored.rejected += 1;
                    stored
                        .first_rejection
                        .get_or_insert_with(|| msg.unwrap_or_else(|| e.to_string()));
                }
                Err(other) => return Err(other),
            }
        }
        Ok(stored)
    }

    pub(crate) fn samples<'r>(
        &mut self,
        rows: impl IntoIterator<Item = &'r SampleRow>,
    ) -> rusqlite::Result<()> {
        for s in rows {
            let table = RESOURCE_SAMPLES.table_for(s.ts_ns);
            self.partition(&RESOURCE_SAMPLES, &table)?;
            let int = |v: Option<u64>| v.map(|n| n as i64);
            self.tx
                .prepare_cached(&format!(
                    "INSERT INTO \"{table}\" (ts_ns, pid, cpu_percent, rss_bytes, virtual_bytes, threads, \
                     system_memory_used_bytes, system_memory_total_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                ))?
                .execute(params![
                    s.ts_ns as i64,
                    s.pid,
                    s.cpu_percent,
                    int(s.rss_bytes),
                    int(s.virtual_bytes),
                    int(s.threads),
                    int(s.system_memory_used_bytes),
                    int(s.system_memory_total_bytes),
                ])?;
        }
        Ok(())
    }

    /// Inserts events of `tracing` into their hours' partitions; returns
    /// how many.
    pub(crate) fn tracing_events<'r>(
        &mut self,
        rows: impl IntoIterator<Item = TracingEventRow<'r>>,
    ) -> rusqlite::Result<u64> {
        let mut written = 0;
        // The partition is looked up (and its statement prepared) once per
        // hour the rows reach, not per row.
        let mut current: Option<(u64, rusqlite::CachedStatement<'_>)> = None;
        for e in rows {
            let hour = e.ts_ns / schema::HOUR_NS;
            let stmt = match &mut current {
                Some((h, stmt)) if *h == hour => stmt,
                _ => {
                    let table = EVENTS.table_for(e.ts_ns);
                    self.partition(&EVENTS, &table)?;
                    let sql = format!(
                        "INSERT INTO \"{table}\" (span_id, trace_id, callsite_id, thread_id, ts_ns, \
                         level, message, fields) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    );
                    &mut current.insert((hour, self.tx.prepare_cached(&sql)?)).1
                }
            };
            stmt.execute(params![
                e.span_id,
                e.trace_id,
                e.callsite_id,
                e.thread_id,
                e.ts_ns as i64,
                e.level,
                e.message,
                e.fields,
            ])?;
            written += 1;
        }
        Ok(written)
    }

    pub(crate) fn stats(&mut self, s: &StatsRow) -> rusqlite::Result<()> {
        insert_stats(self.tx, s)
    }

    pub(crate) fn event(&mut self, e: &EventRow) -> rusqlite::Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO monitor_events (ts_ns, pid, kind, message) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![e.ts_ns as i64, e.pid, e.kind, e.message])?;
        Ok(())
    }

    /// Rebuilds the views over partitions this inserter created.
    pub(crate) fn finish(self) -> rusqlite::Result<()> {
        for family in self.stale {
            family.rebuild_views(self.tx)?;
        }
        Ok(())
    }
}

/// Appends a `monitor_stats` row (also outside a batch's transaction).
pub(crate) fn insert_stats(conn: &rusqlite::Connection, s: &StatsRow) -> rusqlite::Result<()> {
    let n = |v: u64| v as i64;
    conn.prepare_cached(
        "INSERT INTO monitor_stats (ts_ns, pid, enqueued, written, dropped, errors_written, failed, \
         queue_depth, queue_depth_max, batches, batch_rows_max, batch_us_avg, batch_us_max, \
         sampled_out, spilled, replayed) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        n(s.ts_ns),
        s.pid,
        n(s.enqueued),
        n(s.written),
        n(s.dropped),
        n(s.errors_written),
        n(s.failed),
        n(s.queue_depth),
        n(s.queue_depth_max),
        n(s.batches),
        n(s.batch_rows_max),
        n(s.batch_us_avg),
        n(s.batch_us_max),
        n(s.sampled_out),
        n(s.spilled),
        n(s.replayed),
    ])?;
    Ok(())
}

/// What a span insert statement has bound, parameter by parameter, so
/// that a row binds only what differs from the row before: bindings
/// outlive the statement's `reset`, and most rows share their NULLs, their
/// callsite, thread and status with the row before (each bind is a call
/// into SQLite that unbinds the old value first). The statement cache
/// clears the bindings, so a statement fresh from it is [`Bound::FRESH`].
/// Binding column by column also skips the `&dyn ToSql` slice and the
/// parameter-count check of `execute`: the batch loop is the writer's
/// whole cost.
struct Bound([Param; 17]);

#[derive(Clone, Copy, PartialEq)]
enum Param {
    Null,
    Int(i64),
    /// Text, bound again each row (comparing it would cost what binding
    /// does).
    Text,
}

impl Bound {
    const FRESH: Bound = Bound([Param::Null; 17]);

    fn span(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        r: &SpanRow<'_>,
        seq: i64,
    ) -> rusqlite::Result<()> {
        self.int(stmt, 1, Some(r.span_id))?;
        self.int(stmt, 2, r.parent_id)?;
        self.int(stmt, 3, Some(r.trace_id))?;
        self.int(stmt, 4, Some(r.callsite_id))?;
        self.int(stmt, 5, Some(r.thread_id))?;
        self.int(stmt, 6, Some(i64::from(r.status)))?;
        self.text(stmt, 7, r.error.as_deref())?;
        self.int(stmt, 8, Some(r.start_ns as i64))?;
        self.int(stmt, 9, Some(r.duration_ns))?;
        self.int(stmt, 10, Some(r.busy_ns))?;
        self.int(stmt, 11, r.items)?;
        self.text(stmt, 12, r.fields.as_deref())?;
        self.int(stmt, 13, r.rss_bytes)?;
        self.int(stmt, 14, r.cpu_ns)?;
        self.int(stmt, 15, r.alloc_bytes)?;
        self.int(stmt, 16, Some(r.trace_hi))?;
        self.int(stmt, 17, Some(seq))
    }

    #[inline]
    fn int(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        index: usize,
        value: Option<i64>,
    ) -> rusqlite::Result<()> {
        let param = value.map_or(Param::Null, Param::Int);
        if self.0[index - 1] != param {
            stmt.raw_bind_parameter(index, value)?;
            self.0[index - 1] = param;
        }
        Ok(())
    }

    #[inline]
    fn text(
        &mut self,
        stmt: &mut rusqlite::Statement<'_>,
        index: usize,
        value: Option<&str>,
    ) -> rusqlite::Result<()> {
        let param = value.map_or(Param::Null, |_| Param::Text);
        if param != Param::Null || self.0[index - 1] != Param::Null {
            stmt.raw_bind_parameter(index, value)?;
            self.0[index - 1] = param;
        }
        Ok(())
    }
}

fn insert_span_sql(table: &str) -> String {
    format!(
        "INSERT INTO \"{table}\" (span_id, parent_id, trace_id, callsite_id, thread_id, status, error, \
         start_ns, duration_ns, busy_ns, items, fields, rss_bytes, cpu_ns, alloc_bytes, trace_hi, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    )
}
