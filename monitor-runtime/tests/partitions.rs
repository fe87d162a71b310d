//! Hourly partitions and the views over them, driven by an injected clock.

mod common;

use std::time::Duration;

use common::{count, reader, serial, temp_db, LEAF};
use monitor_runtime::{Clock, Config, EnteredSpan};

const HOUR: u64 = 3_600_000_000_000;
/// 2025-11-01T00:00:00Z, a UTC hour boundary.
const NOV_1_2025: u64 = 1_761_955_200 * 1_000_000_000;

fn partitions(path: &std::path::Path) -> Vec<String> {
    let conn = reader(path);
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'spans_%' ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn spans_on_both_sides_of_an_hour_land_in_two_partitions_and_one_view() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let midnight = NOV_1_2025 + 24 * HOUR; // Nov 2, 00:00 UTC
    let clock = Clock::starting_at(NOV_1_2025);
    let guard =
        monitor_runtime::init_with(Config::default().db_path(&path).clock(clock.clone())).unwrap();
    // The clock runs at real speed: a minute of margin on each side.
    clock.set(midnight - 60_000_000_000);
    for _ in 0..3 {
        let _span = EnteredSpan::new(&LEAF);
    }
    clock.advance(Duration::from_secs(120));
    for _ in 0..2 {
        let _span = EnteredSpan::new(&LEAF);
    }
    guard.flush();

    assert_eq!(partitions(&path), ["spans_2025110123", "spans_2025110200"]);
    assert_eq!(count(&path, "SELECT count(*) FROM spans_2025110123"), 3);
    assert_eq!(count(&path, "SELECT count(*) FROM spans_2025110200"), 2);
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans WHERE name = 'leaf'"),
        5
    );
    let boundary = midnight as i64;
    assert_eq!(
        count(
            &path,
            &format!("SELECT count(*) FROM spans WHERE start_ns >= {boundary}")
        ),
        2
    );
    drop(guard);
}

#[test]
fn thirty_days_of_partitions_show_in_the_views_for_any_sqlite_reader() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let clock = Clock::starting_at(NOV_1_2025);
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&path)
            .clock(clock.clone())
            .resource_interval(Duration::ZERO),
    )
    .unwrap();
    let hours = 30 * 24;
    for _ in 0..hours {
        let _span = EnteredSpan::new(&LEAF);
        clock.advance(Duration::from_secs(3600));
    }
    guard.flush();
    drop(guard);

    assert_eq!(partitions(&path).len(), hours);
    // More than SQLite's 500-term limit on one compound SELECT: nested views.
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), hours as i64);
    assert_eq!(
        count(
            &path,
            "SELECT count(DISTINCT start_ns / 3600000000000) FROM spans"
        ),
        hours as i64
    );
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM sqlite_master WHERE type = 'view' AND name LIKE 'spans_union_%'"
        ),
        2
    );
    // The resource_samples view exists and is queryable with no partitions yet.
    assert_eq!(count(&path, "SELECT count(*) FROM resource_samples"), 0);
}
