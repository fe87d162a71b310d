//! How far the live OTLP sender has sent, kept in the file
//! (`export_cursor`), so that a restart resumes where the last run
//! stopped: no gap, no duplicate. Retention reads it too, to count what it
//! drops before it was sent.
//!
//! Every transaction that stores spans takes the next number of the file's
//! commit sequence, and its rows carry it (`seq`, indexed). Rows ordered by
//! `(seq, span_id)` are in commit order, and a reader that has seen a
//! transaction has seen all of it: the cursor is the last `(seq, span_id)`
//! sent, and what is past it is exactly what was committed since.

use rusqlite::{params, Connection, OptionalExtension};

#[cfg(feature = "otlp")]
use crate::otlp::rows::{span_row, SpanRow, SPAN_COLUMNS};
#[cfg(feature = "otlp")]
use crate::schema;
use crate::writer::schema::quote_ident;

/// A point in commit order: the last row sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Cursor {
    pub(crate) seq: i64,
    pub(crate) span_id: i64,
}

#[cfg(feature = "otlp")]
/// The file's cursor; a file that never exported starts at its latest
/// commit: the sender ships what is committed from now on (`monitor export
/// --format otlp --since` ships the past).
pub(crate) fn load_or_start(conn: &Connection, now_ns: i64) -> rusqlite::Result<Cursor> {
    conn.execute(
        "INSERT OR IGNORE INTO export_cursor (id, seq, span_id, updated_ns) \
         SELECT 1, seq, 0, ?1 FROM monitor_seq WHERE id = 1",
        [now_ns],
    )?;
    conn.query_row(
        "SELECT seq, span_id FROM export_cursor WHERE id = 1",
        [],
        |r| {
            Ok(Cursor {
                seq: r.get(0)?,
                span_id: r.get(1)?,
            })
        },
    )
}

/// The cursor as stored, if export ever started on this file.
pub(crate) fn stored(conn: &Connection) -> rusqlite::Result<Option<Cursor>> {
    conn.query_row(
        "SELECT seq, span_id FROM export_cursor WHERE id = 1",
        [],
        |r| {
            Ok(Cursor {
                seq: r.get(0)?,
                span_id: r.get(1)?,
            })
        },
    )
    .optional()
}

#[cfg(feature = "otlp")]
/// Stores `cursor` (it only moves forward).
pub(crate) fn advance(conn: &Connection, cursor: Cursor, now_ns: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE export_cursor SET seq = ?1, span_id = ?2, updated_ns = ?3 \
         WHERE id = 1 AND (seq < ?1 OR (seq = ?1 AND span_id < ?2))",
        params![cursor.seq, cursor.span_id, now_ns],
    )?;
    Ok(())
}

#[cfg(feature = "otlp")]
/// Takes or renews the sending lease for `pid` until `until_ns`; `false`
/// while another live process holds it (two senders on one file would
/// send every span twice).
pub(crate) fn lease(
    conn: &Connection,
    pid: u32,
    now_ns: i64,
    until_ns: i64,
) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "UPDATE export_cursor SET owner_pid = ?1, lease_until_ns = ?2 \
         WHERE id = 1 AND (owner_pid IS NULL OR owner_pid = ?1 OR lease_until_ns < ?3)",
        params![pid, until_ns, now_ns],
    )?;
    Ok(changed == 1)
}

#[cfg(feature = "otlp")]
/// Gives the lease up (at shutdown), so another process may send at once.
pub(crate) fn release(conn: &Connection, pid: u32) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE export_cursor SET owner_pid = NULL, lease_until_ns = 0 \
         WHERE id = 1 AND owner_pid = ?1",
        [pid],
    )?;
    Ok(())
}

/// The condition on a partition's rows past `?1` (seq), `?2` (span_id):
/// a range of the `seq` index.
const PAST: &str = "seq >= ?1 AND (seq > ?1 OR span_id > ?2)";

#[cfg(feature = "otlp")]
/// At most `limit` rows past `after`, in commit order.
pub(crate) fn read_after(
    conn: &Connection,
    after: Cursor,
    limit: usize,
) -> rusqlite::Result<Vec<(Cursor, SpanRow)>> {
    let mut rows: Vec<(Cursor, SpanRow)> = Vec::new();
    for partition in schema::span_partitions(conn)? {
        let table = quote_ident(&partition.table);
        // Most partitions have nothing new: one index lookup says so.
        let newest: Option<i64> =
            conn.query_row(&format!("SELECT max(seq) FROM {table}"), [], |r| r.get(0))?;
        if newest.is_none_or(|seq| seq < after.seq) {
            continue;
        }
        let sql = format!(
            "SELECT {SPAN_COLUMNS}, seq FROM ({}) WHERE {PAST} ORDER BY seq, span_id LIMIT ?3",
            schema::spans_select(&partition.table)
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut found = stmt.query(params![after.seq, after.span_id, limit as i64])?;
        while let Some(r) = found.next()? {
            let row = span_row(r)?;
            let at = Cursor {
                seq: r.get(22)?,
                span_id: row.span_id,
            };
            rows.push((at, row));
        }
    }
    // Rows of one commit may sit in several partitions (hours).
    rows.sort_by_key(|(at, _)| *at);
    rows.truncate(limit);
    Ok(rows)
}

#[cfg(feature = "otlp")]
/// How many rows are past `after`: the export's lag.
pub(crate) fn pending(conn: &Connection, after: Cursor) -> rusqlite::Result<u64> {
    let mut total = 0;
    for partition in schema::span_partitions(conn)? {
        let table = quote_ident(&partition.table);
        let n: i64 = conn.query_row(
            &format!("SELECT count(*) FROM {table} WHERE {PAST}"),
            params![after.seq, after.span_id],
            |r| r.get(0),
        )?;
        total += n as u64;
    }
    Ok(total)
}

/// Rows of `table` past the stored cursor, if export ever started: what
/// dropping the partition loses before it was sent (retention counts it).
pub(crate) fn unsent_in(conn: &Connection, table: &str) -> rusqlite::Result<u64> {
    let Some(cursor) = stored(conn)? else {
        return Ok(0);
    };
    let n: i64 = conn.query_row(
        &format!("SELECT count(*) FROM {} WHERE {PAST}", quote_ident(table)),
        params![cursor.seq, cursor.span_id],
        |r| r.get(0),
    )?;
    Ok(n as u64)
}

#[cfg(all(test, feature = "otlp"))]
mod tests {
    use super::*;
    use crate::writer::schema::{open, FileOptions, SPANS};

    const HOUR: u64 = 3_600_000_000_000;

    /// A file with rows `(hour, seq, span_id)`, hours counted from 2026.
    fn file(rows: &[(u64, i64, i64)]) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("m.db"), &FileOptions::default())
            .unwrap()
            .conn;
        let base = 1_767_225_600_000_000_000u64;
        for &(hour, seq, span_id) in rows {
            let start = base + hour * HOUR;
            let table = SPANS.table_for(start);
            SPANS.create_partition(&conn, &table).unwrap();
            conn.execute(
                &format!(
                    "INSERT INTO {} (span_id, trace_id, callsite_id, thread_id, status, start_ns, \
                     duration_ns, busy_ns, seq) VALUES (?1, ?1, 1, 1, 0, ?2, 1, 1, ?3)",
                    quote_ident(&table)
                ),
                params![span_id, start as i64, seq],
            )
            .unwrap();
        }
        SPANS.rebuild_views(&conn).unwrap();
        (dir, conn)
    }

    fn ids(rows: &[(Cursor, SpanRow)]) -> Vec<(i64, i64)> {
        rows.iter().map(|(at, _)| (at.seq, at.span_id)).collect()
    }

    #[test]
    fn rows_come_in_commit_order_across_partitions() {
        // One commit (seq 3) stored rows in two hours.
        let (_dir, conn) = file(&[(0, 1, 5), (0, 3, 2), (1, 2, 9), (1, 3, 1)]);
        let all = read_after(&conn, Cursor::default(), 10).unwrap();
        assert_eq!(ids(&all), [(1, 5), (2, 9), (3, 1), (3, 2)]);
        let next = read_after(&conn, Cursor { seq: 2, span_id: 9 }, 1).unwrap();
        assert_eq!(ids(&next), [(3, 1)]);
        assert_eq!(pending(&conn, Cursor { seq: 3, span_id: 1 }).unwrap(), 1);
        assert_eq!(pending(&conn, Cursor { seq: 3, span_id: 2 }).unwrap(), 0);
    }

    #[test]
    fn the_cursor_starts_at_the_latest_commit_and_only_moves_forward() {
        let (_dir, conn) = file(&[]);
        conn.execute("UPDATE monitor_seq SET seq = 7", []).unwrap();
        let start = load_or_start(&conn, 1).unwrap();
        assert_eq!(start, Cursor { seq: 7, span_id: 0 });
        advance(&conn, Cursor { seq: 9, span_id: 4 }, 2).unwrap();
        advance(
            &conn,
            Cursor {
                seq: 8,
                span_id: 99,
            },
            3,
        )
        .unwrap();
        assert_eq!(stored(&conn).unwrap(), Some(Cursor { seq: 9, span_id: 4 }));
        // A second start keeps it.
        assert_eq!(
            load_or_start(&conn, 4).unwrap(),
            Cursor { seq: 9, span_id: 4 }
        );
    }

    #[test]
    fn one_process_holds_the_lease_until_it_expires_or_is_released() {
        let (_dir, conn) = file(&[]);
        load_or_start(&conn, 0).unwrap();
        assert!(lease(&conn, 1, 100, 200).unwrap());
        assert!(!lease(&conn, 2, 150, 250).unwrap(), "held by 1");
        assert!(lease(&conn, 1, 150, 300).unwrap(), "renewed by its holder");
        assert!(lease(&conn, 2, 301, 400).unwrap(), "expired");
        release(&conn, 2).unwrap();
        assert!(lease(&conn, 1, 302, 500).unwrap(), "released");
    }

    #[test]
    fn unsent_rows_of_a_partition_are_counted_once_export_started() {
        let (_dir, conn) = file(&[(0, 1, 5), (0, 4, 6), (0, 5, 7)]);
        let table = schema::span_partitions(&conn).unwrap()[0].table.clone();
        assert_eq!(
            unsent_in(&conn, &table).unwrap(),
            0,
            "no export: nothing lost"
        );
        load_or_start(&conn, 0).unwrap();
        advance(&conn, Cursor { seq: 4, span_id: 6 }, 1).unwrap();
        assert_eq!(unsent_in(&conn, &table).unwrap(), 1);
    }
}
