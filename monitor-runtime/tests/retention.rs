//! Retention: expired hourly partitions archived, dropped, the space given
//! back; the current hour untouched; a pass beside a busy writer loses
//! nothing. Hours pass on an injected clock.

mod common;

use std::path::Path;

use common::{count, reader, serial, temp_db, LEAF};
use monitor_runtime::retention::{self, RetentionReport};
use monitor_runtime::{schema, Clock, Config, EnteredSpan, Error, Guard, RetentionConfig};

const HOUR: u64 = 3_600_000_000_000;
/// 2025-11-01T00:00:00Z, a UTC hour boundary.
const NOV_1_2025: u64 = 1_761_955_200 * 1_000_000_000;
/// Ten minutes into 2025-11-01T10:00Z: "now" in these tests.
const NOW: u64 = NOV_1_2025 + 10 * HOUR + 600_000_000_000;

fn tables(path: &Path) -> Vec<String> {
    schema::span_partitions(&reader(path))
        .unwrap()
        .into_iter()
        .map(|p| p.table)
        .collect()
}

/// `per_hour` spans in each of the hours 00:00 to 10:00 (the current one).
fn eleven_hours(path: &Path, per_hour: usize, config: impl FnOnce(Config) -> Config) -> Guard {
    let clock = Clock::starting_at(NOV_1_2025 + 60_000_000_000);
    let guard = monitor_runtime::init_with(config(
        Config::default()
            .db_path(path)
            .clock(clock.clone())
            .resource_interval(std::time::Duration::ZERO),
    ))
    .unwrap();
    for hour in 0..=10 {
        clock.set(NOV_1_2025 + hour * HOUR + 60_000_000_000);
        for _ in 0..per_hour {
            drop(EnteredSpan::new(&LEAF));
        }
    }
    clock.set(NOW);
    guard.flush();
    guard
}

fn rules(hours: i64) -> RetentionConfig {
    let mut rules = RetentionConfig::default();
    rules.hours = hours;
    rules
}

#[test]
fn expired_partitions_are_dropped_and_newer_ones_kept() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = eleven_hours(&path, 10, |c| c);
    assert_eq!(tables(&path).len(), 11);

    // 6 hours back from 10:10 is 04:10: hours that ended by then go.
    let report = retention::run_pass(&path, &rules(6), NOW, false).unwrap();
    let dropped: Vec<&str> = report.expired.iter().map(|p| p.table.as_str()).collect();
    assert_eq!(
        dropped,
        [
            "spans_2025110100",
            "spans_2025110101",
            "spans_2025110102",
            "spans_2025110103"
        ]
    );
    assert_eq!(report.rows(), 40);
    assert!(report
        .expired
        .iter()
        .all(|p| p.bytes > 0 && p.archive.is_none()));
    assert_eq!(tables(&path).first().unwrap(), "spans_2025110104");
    assert_eq!(tables(&path).len(), 7);
    assert_eq!(count(&path, "SELECT count(*) FROM spans"), 70);

    // With 1 hour: 09:00 ended 10 minutes ago, so it stays with the current hour.
    let report = retention::run_pass(&path, &rules(1), NOW, false).unwrap();
    assert_eq!(report.expired.len(), 5);
    assert_eq!(tables(&path), ["spans_2025110109", "spans_2025110110"]);
    // Just before noon, 09:00 has been over for more than an hour; 10:00 has not.
    let report = retention::run_pass(&path, &rules(1), NOV_1_2025 + 12 * HOUR - 1, false).unwrap();
    assert_eq!(report.expired.len(), 1);
    assert_eq!(tables(&path), ["spans_2025110110"]);
    drop(guard);
}

#[test]
fn a_dry_run_changes_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = eleven_hours(&path, 5, |c| c);
    let before = std::fs::read(&path).unwrap();
    let report = retention::run_pass(&path, &rules(6), NOW, true).unwrap();
    assert!(report.dry_run);
    assert_eq!((report.expired.len(), report.rows()), (4, 20));
    assert_eq!(tables(&path).len(), 11);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    drop(guard);
}

#[test]
fn an_archive_is_complete_and_readable_before_the_drop() {
    let _serial = serial();
    let (dir, path) = temp_db();
    let archive_dir = dir.path().join("archive");
    std::fs::create_dir(&archive_dir).unwrap();
    let guard = eleven_hours(&path, 7, |c| c);
    let mut rules = rules(9);
    rules.archive_dir = archive_dir.clone();

    let report = retention::run_pass(&path, &rules, NOW, false).unwrap();
    assert_eq!(report.expired.len(), 1);
    let file = archive_dir.join("spans_2025110100.db");
    assert_eq!(report.expired[0].archive.as_deref(), Some(file.as_path()));
    let wal = archive_dir.join("spans_2025110100.db-wal");
    assert!(!wal.exists(), "an archive is a single file");
    let journal: String = reader(&file)
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "delete");
    // A monitor database of its own: the view joins the callsites it needs.
    assert_eq!(
        count(
            &file,
            "SELECT count(*) FROM spans WHERE name = 'leaf' AND thread IS NOT NULL"
        ),
        7
    );
    assert_eq!(tables(&file), ["spans_2025110100"]);
    assert!(!tables(&path).contains(&"spans_2025110100".to_owned()));

    drop(guard);
}

#[test]
fn the_file_shrinks_after_the_drop() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = eleven_hours(&path, 5_000, |c| c);
    // Everything into the main file, so its size says what it holds.
    let checkpointed_size = || {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        std::fs::metadata(&path).unwrap().len()
    };
    let before = checkpointed_size();

    // Without `vacuum`, the pages go to SQLite's free list: no shrink.
    let mut keep_pages = rules(9);
    keep_pages.vacuum = false;
    let report = retention::run_pass(&path, &keep_pages, NOW, false).unwrap();
    assert_eq!(report.rows(), 5_000);
    assert_eq!(checkpointed_size(), before);

    let report = retention::run_pass(&path, &rules(1), NOW, false).unwrap();
    assert_eq!(report.rows(), 40_000, "01:00 to 08:00");
    assert_eq!(report.file_bytes_before, before);
    let after = std::fs::metadata(&path).unwrap().len();
    assert_eq!(report.file_bytes_after, after);
    // Nine of eleven hours gone: well under half the size is left.
    assert!(after < before / 2, "{before} -> {after} bytes");
    drop(guard);
}

#[test]
fn a_pass_beside_a_busy_writer_loses_nothing() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = eleven_hours(&path, 1_000, |c| c);
    let writing = std::thread::spawn(|| {
        for _ in 0..50_000 {
            drop(EnteredSpan::new(&LEAF));
        }
    });
    let report = guard.run_retention().unwrap();
    assert_eq!(
        report.expired.len(),
        4,
        "the guard's pass uses the runtime clock"
    );
    writing.join().unwrap();
    guard.flush();
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans_2025110110"),
        1_000 + 50_000
    );
    assert_eq!(
        count(
            &path,
            "SELECT sum(dropped) + sum(failed) FROM monitor_stats"
        ),
        0
    );
    drop(guard);
}

#[test]
fn bad_rules_are_clear_errors() {
    let _serial = serial();
    let (dir, path) = temp_db();
    let guard = eleven_hours(&path, 1, |c| c);
    let message = |result: Result<RetentionReport, Error>| result.unwrap_err().to_string();

    for hours in [0, -3] {
        let m = message(retention::run_pass(&path, &rules(hours), NOW, false));
        assert!(
            m.contains("retention.hours") && m.contains("at least 1"),
            "{m}"
        );
    }
    let mut missing = rules(6);
    missing.archive_dir = dir.path().join("nowhere");
    let m = message(retention::run_pass(&path, &missing, NOW, false));
    assert!(
        m.contains("retention.archive_dir") && m.contains("nowhere"),
        "{m}"
    );

    let mut not_a_dir = rules(6);
    not_a_dir.archive_dir = path.clone();
    let m = message(retention::run_pass(&path, &not_a_dir, NOW, false));
    assert!(m.contains("not a directory"), "{m}");
    assert_eq!(tables(&path).len(), 11, "nothing dropped after an error");

    // More hours than the clock holds: nothing is that old, and no overflow.
    let report = retention::run_pass(&path, &rules(i64::MAX), NOW, false).unwrap();
    assert!(report.expired.is_empty());

    let m = message(retention::run_pass(
        &dir.path().join("absent.db"),
        &rules(6),
        NOW,
        false,
    ));
    assert!(m.contains("no such file"), "{m}");
    drop(guard);

    // The same rules are refused by `init`, naming the key.
    let err = monitor_runtime::init_with(Config::default().db_path(&path).retention_hours(0))
        .unwrap_err();
    assert!(err.to_string().contains("retention.hours"), "{err}");
    let mut config = Config::default().db_path(&path);
    config.retention.archive_dir = dir.path().join("nowhere");
    let err = monitor_runtime::init_with(config).unwrap_err();
    assert!(err.to_string().contains("retention.archive_dir"), "{err}");
}

/// The archive directory is checked for writing with a probe file: a link
/// planted at the name it used to take (`.monitor-probe-<pid>`) must not
/// lead it to truncate the link's target.
#[cfg(unix)]
#[test]
fn a_link_planted_at_the_probe_name_leaves_its_target_alone() {
    let _serial = serial();
    let (dir, path) = temp_db();
    let archive_dir = dir.path().join("archive");
    std::fs::create_dir(&archive_dir).unwrap();
    let precious = dir.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let planted = archive_dir.join(format!(".monitor-probe-{}", std::process::id()));
    std::os::unix::fs::symlink(&precious, &planted).unwrap();

    let guard = eleven_hours(&path, 1, |c| c);
    let mut rules = rules(9);
    rules.archive_dir = archive_dir.clone();
    let report = retention::run_pass(&path, &rules, NOW, false).unwrap();
    assert_eq!(report.expired.len(), 1);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    assert!(planted.is_symlink(), "the planted link is left as it was");
    let probes = std::fs::read_dir(&archive_dir)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with(".monitor-probe-")
                && name != planted.file_name().unwrap()
        })
        .count();
    assert_eq!(probes, 0, "the probe is removed");
    drop(guard);
}
