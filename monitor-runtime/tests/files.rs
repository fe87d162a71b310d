//! Starting up: bad files are refused untouched, init twice is an error,
//! and `enabled = false` records nothing.

mod common;

use common::{count, serial, temp_db, LEAF};
use monitor_runtime::{current_span, Config, EnteredSpan, Error};

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
