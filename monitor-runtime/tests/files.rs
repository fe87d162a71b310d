//! Starting up: bad files are refused untouched, init twice is an error,
//! and `enabled = false` records nothing.

mod common;

use common::{count, reader, serial, temp_db, LEAF};
use monitor_runtime::{current_span, Config, EnteredSpan, Error, OnCorrupt};

fn init_error(config: Config) -> String {
    match monitor_runtime::init_with(config) {
        Ok(_) => panic!("init accepted a bad setup"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn random_bytes_are_refused_and_left_alone() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let bytes: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = init_error(Config::default().db_path(&path));
    assert!(
        err.contains("monitor.db") && err.contains("not a readable SQLite database"),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn another_program_s_sqlite_file_is_refused_and_left_alone() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE spans (id INTEGER); INSERT INTO spans VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = init_error(Config::default().db_path(&path));
    assert!(err.contains("not a monitor database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_foreign_file_with_a_leftover_wal_is_left_alone_too() {
    let _serial = serial();
    let (dir, path) = temp_db();
    // Another program's WAL database, copied while its WAL is not yet
    // checkpointed, as after a crash.
    let original = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&original).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE spans (id INTEGER); INSERT INTO spans VALUES (1);",
    )
    .unwrap();
    std::fs::copy(&original, &path).unwrap();
    let wal = dir.path().join("monitor.db-wal");
    std::fs::copy(dir.path().join("other.db-wal"), &wal).unwrap();
    drop(conn);
    let (db_before, wal_before) = (std::fs::read(&path).unwrap(), std::fs::read(&wal).unwrap());
    assert!(!wal_before.is_empty());
    let err = init_error(Config::default().db_path(&path));
    assert!(err.contains("not a monitor database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), db_before);
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        wal_before,
        "the WAL is not checkpointed away"
    );
}

#[test]
fn a_file_from_another_schema_version_is_refused() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    drop(monitor_runtime::init_with(Config::default().db_path(&path)).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 99").unwrap();
    drop(conn);
    let err = init_error(Config::default().db_path(&path));
    assert!(err.contains("newer monitor (schema version 99)"), "{err}");
}

#[test]
fn an_unopenable_path_is_a_clear_error() {
    let _serial = serial();
    let (dir, _) = temp_db();
    let path = dir.path().join("no/such/dir/monitor.db");
    let err = init_error(Config::default().db_path(&path));
    assert!(
        err.contains("no/such/dir/monitor.db") && err.contains("cannot create the file"),
        "{err}"
    );
}

#[test]
fn init_twice_is_an_error_not_a_second_writer() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    assert!(matches!(
        monitor_runtime::init_with(Config::default().db_path(&path)),
        Err(Error::AlreadyInitialized)
    ));
    drop(guard);
    // Once the first guard is gone, a new init works.
    let again = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    {
        let _span = EnteredSpan::new(&LEAF);
    }
    again.flush();
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), 1);
}

#[test]
fn disabled_monitoring_creates_no_file_and_records_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard =
        monitor_runtime::init_with(Config::default().db_path(&path).enabled(false)).unwrap();
    assert!(!guard.is_enabled());
    {
        let span = EnteredSpan::new(&LEAF);
        assert!(!span.is_recording());
        assert_eq!(current_span(), None);
    }
    guard.flush();
    assert!(!path.exists());
    assert!(matches!(
        monitor_runtime::init_with(Config::default()),
        Err(Error::AlreadyInitialized)
    ));
}

/// The first `len` bytes of a real monitor file holding some spans.
fn truncated_monitor_file(path: &std::path::Path) -> Vec<u8> {
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(path)
            .resource_interval(std::time::Duration::ZERO),
    )
    .unwrap();
    for _ in 0..5_000 {
        drop(EnteredSpan::new(&LEAF));
    }
    drop(guard);
    let mut bytes = std::fs::read(path).unwrap();
    assert!(bytes.len() > 3 * 4096, "spans beyond the first pages");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn a_truncated_file_is_refused_and_left_alone() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let bytes = truncated_monitor_file(&path);
    let err = init_error(Config::default().db_path(&path));
    assert!(err.contains("truncated"), "{err}");
    assert!(
        err.contains("on_corrupt = \"rotate\""),
        "the error says the way out: {err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// Writes a bad file at the path; returns its bytes.
type MakeFile = dyn Fn(&std::path::Path) -> Vec<u8>;

#[test]
fn on_corrupt_rotate_moves_a_bad_file_aside_and_starts_a_new_one() {
    let _serial = serial();
    let foreign = |path: &std::path::Path| {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("CREATE TABLE spans (id INTEGER); INSERT INTO spans VALUES (1);")
            .unwrap();
        drop(conn);
        std::fs::read(path).unwrap()
    };
    let random = |path: &std::path::Path| {
        let bytes: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
        std::fs::write(path, &bytes).unwrap();
        bytes
    };
    let cases: [(&str, &MakeFile); 3] = [
        ("random bytes", &random),
        ("truncated", &truncated_monitor_file),
        ("foreign", &foreign),
    ];
    for (case, make) in cases {
        let (dir, path) = temp_db();
        let bytes = make(&path);
        let config = Config::default()
            .db_path(&path)
            .on_corrupt(OnCorrupt::Rotate)
            .resource_interval(std::time::Duration::ZERO);
        let guard = monitor_runtime::init_with(config).unwrap();
        drop(EnteredSpan::new(&LEAF));
        guard.flush();
        drop(guard);
        assert_eq!(count(&path, "SELECT count(*) FROM spans"), 1, "{case}");
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with("monitor.db.corrupt-") && !name.ends_with("-wal"))
            .collect();
        assert_eq!(aside.len(), 1, "{case}: {aside:?}");
        let moved = std::fs::read(dir.path().join(&aside[0])).unwrap();
        assert_eq!(moved, bytes, "{case}: moved as it was");
        let message: String = reader(&path)
            .query_row(
                "SELECT message FROM monitor_events WHERE kind = 'rotated'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(message.contains(&aside[0]), "{case}: {message}");
    }
}

#[test]
fn a_newer_monitor_s_file_is_never_rotated() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    drop(monitor_runtime::init_with(Config::default().db_path(&path)).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = init_error(
        Config::default()
            .db_path(&path)
            .on_corrupt(OnCorrupt::Rotate),
    );
    assert!(err.contains("newer monitor"), "{err}");
}

/// Undoes what version 4 added: 128-bit trace ids, the commit sequence,
/// `processes` and the export tables, leaving the shape version 3 wrote.
fn downgrade_to_version_3(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let views: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'view' AND name GLOB 'spans*'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for view in views {
        conn.execute_batch(&format!("DROP VIEW \"{view}\""))
            .unwrap();
    }
    for p in monitor_runtime::schema::span_partitions(&conn).unwrap() {
        let t = &p.table;
        conn.execute_batch(&format!(
            "DROP INDEX \"{t}_seq\";
             ALTER TABLE \"{t}\" DROP COLUMN seq;
             ALTER TABLE \"{t}\" DROP COLUMN trace_hi;"
        ))
        .unwrap();
    }
    conn.execute_batch(
        "DROP TABLE monitor_seq; DROP TABLE processes; DROP TABLE export_cursor;
         DROP TABLE export_stats; PRAGMA user_version = 3;",
    )
    .unwrap();
}

#[test]
fn a_version_3_file_is_upgraded_in_place() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    downgrade_to_version_3(&path);
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    assert_eq!(count(&path, "PRAGMA user_version"), 4);
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), 2);
    // The old row reads as a local trace from before any commit counted.
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans WHERE trace_hi = 0"),
        2
    );
    assert_eq!(count(&path, "SELECT count(*) FROM spans WHERE seq = 0"), 1);
    assert_eq!(count(&path, "SELECT count(*) FROM spans WHERE seq > 0"), 1);
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM processes WHERE pid = (SELECT pid FROM spans WHERE seq > 0)"
        ),
        1
    );
}

#[test]
fn a_version_2_file_is_upgraded_in_place() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    downgrade_to_version_3(&path);
    // Undo what version 3 added.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP TABLE monitor_events;
             ALTER TABLE monitor_stats DROP COLUMN spilled;
             ALTER TABLE monitor_stats DROP COLUMN replayed;
             ALTER TABLE monitor_stats DROP COLUMN queue_depth_max;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    assert_eq!(count(&path, "PRAGMA user_version"), 4);
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), 2);
    assert_eq!(
        count(
            &path,
            "SELECT CAST(total(spilled) AS INTEGER) FROM monitor_stats"
        ),
        0
    );
    assert_eq!(count(&path, "SELECT count(*) FROM monitor_events"), 0);
}

#[cfg(unix)]
#[test]
fn the_file_is_private_unless_configured_wider() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = serial();
    let mode_of =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for (configured, expected) in [(None, 0o600), (Some(0o640), 0o640), (Some(0o644), 0o644)] {
        let (_dir, path) = temp_db();
        let mut config = Config::default().db_path(&path);
        if let Some(mode) = configured {
            config = config.file_mode(mode);
        }
        let guard = monitor_runtime::init_with(config).unwrap();
        drop(EnteredSpan::new(&LEAF));
        guard.flush();
        assert_eq!(mode_of(&path), expected, "{configured:?}");
        let wal = path.with_file_name("monitor.db-wal");
        assert_eq!(mode_of(&wal), expected, "the WAL follows the database");
        drop(guard);
    }
    for refused in [0o200, 0o666, 0o620] {
        let err = init_error(Config::default().file_mode(refused));
        assert!(
            err.contains("`file_mode`") && err.contains(&format!("{refused:#o}")),
            "{err}"
        );
    }
}

/// A database, WAL and shared-memory file that others may write, made by
/// hand before `init`, lose the group and other write bits.
#[cfg(unix)]
#[test]
fn existing_files_others_may_write_are_narrowed() {
    use std::os::unix::fs::PermissionsExt;
    let _serial = serial();
    let (_dir, path) = temp_db();
    let mode_of =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let set = |path: &std::path::Path| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666)).unwrap()
    };
    {
        // A file of ours with a WAL left behind, then opened wide.
        let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
        drop(EnteredSpan::new(&LEAF));
        guard.flush();
        drop(guard);
    }
    std::fs::write(path.with_file_name("monitor.db-wal"), b"").unwrap();
    for suffix in ["", "-wal"] {
        set(&path.with_file_name(format!("monitor.db{suffix}")));
    }
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    drop(EnteredSpan::new(&LEAF));
    guard.flush();
    assert_eq!(mode_of(&path), 0o644, "the database");
    assert_eq!(
        mode_of(&path.with_file_name("monitor.db-wal")),
        0o644,
        "the WAL"
    );
    drop(guard);

    // A file that is not ours is refused with its mode as it was.
    let (_dir, foreign) = temp_db();
    std::fs::write(&foreign, vec![0x5a; 8192]).unwrap();
    set(&foreign);
    init_error(Config::default().db_path(&foreign));
    assert_eq!(mode_of(&foreign), 0o666, "a refused file is left untouched");
}

/// A directory, or a link to nothing, at `db_path` is named as what it is.
#[cfg(unix)]
#[test]
fn a_directory_or_a_dangling_link_is_named_for_what_it_is() {
    let _serial = serial();
    let (dir, path) = temp_db();
    std::fs::create_dir(&path).unwrap();
    let err = init_error(Config::default().db_path(&path));
    assert!(err.contains("a directory"), "{err}");
    assert!(!err.contains("I/O") && !err.contains("rotate"), "{err}");

    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(dir.path().join("gone.db"), &link).unwrap();
    let err = init_error(Config::default().db_path(&link));
    assert!(
        err.contains("symbolic link") && err.contains("gone.db") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.contains("rotate") && !err.contains("corrupt"), "{err}");
    assert!(
        !dir.path().join("gone.db").exists(),
        "nothing created through the link"
    );
}

/// A program that must run whatever happens to monitoring gets a guard
/// that records nothing, and can start monitoring later; a disabled guard
/// never frees the slot of a live one.
#[test]
fn init_or_disabled_keeps_the_program_running() {
    let _serial = serial();
    let (dir, path) = temp_db();
    std::fs::create_dir(&path).unwrap();
    let off = monitor_runtime::init_with_or_disabled(Config::default().db_path(&path));
    assert!(!off.is_enabled());
    drop(EnteredSpan::new(&LEAF)); // records nothing, panics nowhere
    off.flush();
    drop(off);

    let db = dir.path().join("later.db");
    let live = monitor_runtime::init_with(Config::default().db_path(&db)).unwrap();
    let second = monitor_runtime::init_with_or_disabled(Config::default().db_path(&db));
    assert!(!second.is_enabled(), "one runtime at a time");
    drop(second);
    assert!(
        monitor_runtime::init_with(Config::default().db_path(&db)).is_err(),
        "the live guard still holds its slot"
    );
    drop(EnteredSpan::new(&LEAF));
    live.flush();
    assert_eq!(count(&db, "SELECT count(*) FROM spans"), 1);
    drop(live);
}

/// A writer of version 3 still running beside an upgraded one makes its
/// next hour's partition without `trace_hi` and `seq`: the new writer adds
/// them when it first writes there, instead of failing its inserts.
#[test]
fn a_partition_made_by_an_older_writer_is_completed_when_used() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let hour = 3_600_000_000_000u64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let next_hour = (now / hour + 1) * hour;
    let in_next_hour = || {
        Config::default()
            .db_path(&path)
            .clock(monitor_runtime::Clock::starting_at(
                next_hour + 60_000_000_000,
            ))
    };
    // Learn the next hour's partition name, then make it as version 3 did.
    drop(monitor_runtime::init_with(in_next_hour()).unwrap());
    let guard = monitor_runtime::init_with(in_next_hour()).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let table = monitor_runtime::schema::span_partitions(&conn)
        .unwrap()
        .pop()
        .unwrap()
        .table;
    conn.execute_batch(&format!(
        "DROP TABLE {table};
         CREATE TABLE {table} (span_id INTEGER PRIMARY KEY, parent_id INTEGER, \
         trace_id INTEGER NOT NULL, callsite_id INTEGER NOT NULL, thread_id INTEGER NOT NULL, \
         status INTEGER NOT NULL, error TEXT, start_ns INTEGER NOT NULL, \
         duration_ns INTEGER NOT NULL, busy_ns INTEGER NOT NULL, items INTEGER, fields TEXT, \
         rss_bytes INTEGER, cpu_ns INTEGER, alloc_bytes INTEGER);"
    ))
    .unwrap();
    drop(conn);
    let guard = monitor_runtime::init_with(in_next_hour()).unwrap();
    drop(EnteredSpan::new(&LEAF));
    drop(guard);
    assert_eq!(
        count(
            &path,
            &format!("SELECT count(*) FROM {table} WHERE seq > 0 AND trace_hi = 0")
        ),
        1
    );
    assert_eq!(count(&path, "SELECT count(*) FROM spans WHERE seq > 0"), 1);
}
