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
    // Past every row of that commit (span ids are at most `i64::MAX`),
    // and of rows stored before version 4 (`seq` 0).
    conn.execute(
        "INSERT OR IGNORE INTO export_cursor (id, seq, span_id, updated_ns) \
         SELECT 1, seq, ?2, ?1 FROM monitor_seq WHERE id = 1",
        params![now_ns, i64::MAX],
    )?;
    stored(conn)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
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
/// What [`lease`] found.
#[cfg(feature = "otlp")]
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lease {
    /// This sender held it, and still does.
    Kept,
    /// This sender holds it now, after another (or none): it sends from
    /// the stored cursor, which the other moved meanwhile.
    Taken(Cursor),
    /// Another sender holds it, unexpired.
    Busy,
}

/// Takes or renews the sending lease for the sender `owner` (a token of
/// its own: two senders of one process differ) until `until_ns`. Two
/// senders on one file would send every span twice.
#[cfg(feature = "otlp")]
pub(crate) fn lease(
    conn: &Connection,
    owner: i64,
    now_ns: i64,
    until_ns: i64,
) -> rusqlite::Result<Lease> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let (holder, expires, cursor): (Option<i64>, i64, Cursor) = tx.query_row(
        "SELECT owner, lease_until_ns, seq, span_id FROM export_cursor WHERE id = 1",
        [],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                Cursor {
                    seq: r.get(2)?,
                    span_id: r.get(3)?,
                },
            ))
        },
    )?;
    let lease = match holder {
        Some(holder) if holder == owner => Lease::Kept,
        Some(_) if expires >= now_ns => return Ok(Lease::Busy),
        _ => Lease::Taken(cursor),
    };
    tx.execute(
        "UPDATE export_cursor SET owner = ?1, owner_pid = ?2, lease_until_ns = ?3 WHERE id = 1",
        params![owner, std::process::id(), until_ns],
    )?;
    tx.commit()?;
    Ok(lease)
}

/// Gives the lease up (at shutdown), so another sender may start at once.
#[cfg(feature = "otlp")]
pub(crate) fn release(conn: &Connection, owner: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE export_cursor SET owner = NULL, owner_pid = NULL, lease_until_ns = 0 \
         WHERE id = 1 AND owner = ?1",
        [owner],
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
    // One snapshot for every partition: a commit that stored rows in two
    // hours, landing between the reads of the two, would otherwise be
    // seen in one, and the cursor would move past the other's rows.
    let _snapshot = conn.unchecked_transaction()?;
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
    let _snapshot = conn.unchecked_transaction()?;
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
        assert_eq!(
            start,
            Cursor {
                seq: 7,
                span_id: i64::MAX
            }
        );
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

    /// Rows stored before version 4 (`seq` 0, and `monitor_seq` 0 after
    /// the upgrade) are history, not news: a new cursor is past them.
    #[test]
    fn a_migrated_file_s_history_is_behind_a_new_cursor() {
        let (_dir, conn) = file(&[(0, 0, 5), (0, 0, 6), (1, 0, 7)]);
        let start = load_or_start(&conn, 1).unwrap();
        assert!(read_after(&conn, start, 100).unwrap().is_empty());
        assert_eq!(pending(&conn, start).unwrap(), 0);
    }

    /// A writer commits rows into two partitions at once while the cursor
    /// follows: none is stepped over.
    #[test]
    fn a_commit_across_two_partitions_is_read_whole() {
        let (dir, conn) = file(&[(0, 0, 1), (1, 0, 2)]);
        let tables: Vec<String> = schema::span_partitions(&conn)
            .unwrap()
            .into_iter()
            .map(|p| p.table)
            .collect();
        let path = dir.path().join("m.db");
        let commits = 2_000i64;
        let writer = std::thread::spawn(move || {
            let w = Connection::open(&path).unwrap();
            w.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            w.execute_batch("PRAGMA synchronous = OFF").unwrap();
            for i in 1..=commits {
                let tx = w.unchecked_transaction().unwrap();
                let seq: i64 = tx
                    .query_row(
                        "UPDATE monitor_seq SET seq = seq + 1 WHERE id = 1 RETURNING seq",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                for (table, id) in [(&tables[0], i * 10 + 1), (&tables[1], i * 10 + 2)] {
                    tx.execute(
                        &format!(
                            "INSERT INTO {} (span_id, trace_id, callsite_id, thread_id, status, \
                             start_ns, duration_ns, busy_ns, seq) VALUES (?1, ?1, 1, 1, 0, 0, 1, 1, ?2)",
                            quote_ident(table)
                        ),
                        params![id, seq],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
        });
        let mut cursor = Cursor {
            seq: 0,
            span_id: i64::MAX,
        };
        let mut seen = std::collections::HashSet::new();
        loop {
            let finished = writer.is_finished();
            let batch = read_after(&conn, cursor, 100).unwrap();
            seen.extend(batch.iter().map(|(at, _)| at.span_id));
            match batch.last() {
                Some((last, _)) => cursor = *last,
                None if finished => break,
                None => {}
            }
        }
        writer.join().unwrap();
        assert_eq!(seen.len(), 2 * commits as usize, "rows stepped over");
    }

    #[test]
    fn one_sender_holds_the_lease_until_it_expires_or_is_released() {
        let (_dir, conn) = file(&[]);
        let start = load_or_start(&conn, 0).unwrap();
        let at = |seq| Cursor { seq, span_id: 0 };
        assert_eq!(lease(&conn, 1, 100, 200).unwrap(), Lease::Taken(start));
        assert_eq!(lease(&conn, 2, 150, 250).unwrap(), Lease::Busy, "held by 1");
        assert_eq!(lease(&conn, 1, 150, 300).unwrap(), Lease::Kept);
        // 1 moves the cursor; 2, taking over after expiry, starts there.
        advance(&conn, at(5), 160).unwrap();
        assert_eq!(lease(&conn, 2, 301, 400).unwrap(), Lease::Taken(at(5)));
        release(&conn, 1).unwrap();
        assert_eq!(
            lease(&conn, 1, 302, 500).unwrap(),
            Lease::Busy,
            "1 released nothing"
        );
        release(&conn, 2).unwrap();
        assert_eq!(lease(&conn, 1, 303, 500).unwrap(), Lease::Taken(at(5)));
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
