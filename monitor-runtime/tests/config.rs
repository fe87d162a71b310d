//! Configuration errors name the key and what was expected.

use std::collections::HashMap;
use std::path::PathBuf;

use monitor_runtime::{Config, Error, OnCorrupt, Overflow};

fn error_of(toml: &str) -> (String, String) {
    match Config::from_toml_str(toml) {
        Err(Error::Config { key, message, .. }) => (key, message),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn the_documented_file_parses_into_every_key() {
    let config = Config::from_toml_str(
        r#"
        db_path = "data/app.db"
        enabled = true
        file_mode = 0o640
        on_corrupt = "rotate"
        busy_timeout_ms = 250
        [queue]
        capacity = 1_000
        overflow = "block"
        flush_interval_ms = 250
        [retention]
        hours = 72
        cleanup_interval_secs = 30
        archive_dir = "archive"
        vacuum = false
        [resources]
        interval_ms = 0
        thread_cpu = true
        "#,
    )
    .unwrap();
    assert_eq!(config.db_path, PathBuf::from("data/app.db"));
    assert_eq!(
        (config.file_mode, config.on_corrupt, config.busy_timeout_ms),
        (0o640, OnCorrupt::Rotate, 250)
    );
    assert_eq!(
        (
            config.queue.capacity,
            config.queue.overflow,
            config.queue.flush_interval_ms
        ),
        (1000, Overflow::Block, 250)
    );
    assert_eq!(
        (
            config.retention.hours,
            config.retention.cleanup_interval_secs
        ),
        (72, 30)
    );
    assert_eq!(
        (config.retention.archive_dir, config.retention.vacuum),
        (PathBuf::from("archive"), false)
    );
    assert_eq!(
        (config.resources.interval_ms, config.resources.thread_cpu),
        (0, true)
    );
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let config = Config::from_toml_str("").unwrap();
    let default = Config::default();
    assert_eq!(config.db_path, default.db_path);
    assert_eq!(config.queue, default.queue);
    assert_eq!(config.retention, default.retention);
}

#[test]
fn a_typo_d_key_is_named() {
    let (key, message) = error_of("[queue]\ncapcity = 10\n");
    assert_eq!(key, "queue.capcity");
    assert!(
        message.contains("unknown field `capcity`") && message.contains("capacity"),
        "{message}"
    );
    let (key, _) = error_of("db_pth = \"x.db\"\n");
    assert_eq!(key, "db_pth");
}

#[test]
fn a_negative_or_zero_hour_count_is_refused() {
    let (key, message) = error_of("[retention]\nhours = -3\n");
    assert_eq!(key, "retention.hours");
    assert!(
        message.contains("at least 1") && message.contains("-3"),
        "{message}"
    );
    let (key, _) = error_of("[retention]\nhours = 0\n");
    assert_eq!(key, "retention.hours");
}

#[test]
fn a_wrong_type_names_the_key_and_the_expected_type() {
    let (key, message) = error_of("[queue]\ncapacity = \"lots\"\n");
    assert_eq!(key, "queue.capacity");
    assert!(
        message.contains("invalid type") && message.contains("string"),
        "{message}"
    );
    let (key, message) = error_of("[queue]\noverflow = \"wait\"\n");
    assert_eq!(key, "queue.overflow");
    assert!(
        message.contains("`drop`") && message.contains("`block`"),
        "{message}"
    );
    let (key, _) = error_of("enabled = \"yes\"\n");
    assert_eq!(key, "enabled");
    let (key, _) = error_of("[queue]\ncapacity = -1\n");
    assert_eq!(key, "queue.capacity");
}

#[test]
fn the_error_says_where_the_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(&file, "[resources]\nthread_cpu = 3\n").unwrap();
    let err = Config::from_file(&file).unwrap_err().to_string();
    assert!(
        err.contains("custom.toml") && err.contains("resources.thread_cpu"),
        "{err}"
    );
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |key| map.get(key).cloned()
}

#[test]
fn environment_overrides_apply_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.toml");
    std::fs::write(&file, "db_path = \"file.db\"\n[retention]\nhours = 6\n").unwrap();
    let file = file.to_str().unwrap();
    let config = Config::load_with(env(&[
        ("MONITOR_CONFIG", file),
        ("MONITOR_DB", "env.db"),
        ("MONITOR_ENABLED", "false"),
        ("MONITOR_RETENTION_HOURS", "720"),
    ]))
    .unwrap();
    assert_eq!(config.db_path, PathBuf::from("env.db"));
    assert!(!config.enabled);
    assert_eq!(config.retention.hours, 720);
}

#[test]
fn bad_environment_values_name_the_variable() {
    for (var, value, expect) in [
        ("MONITOR_ENABLED", "maybe", "expected true or false"),
        ("MONITOR_RETENTION_HOURS", "six", "whole number of hours"),
        ("MONITOR_RETENTION_HOURS", "-1", "at least 1"),
        ("MONITOR_DB", "", "empty"),
    ] {
        let err = Config::load_with(env(&[(var, value)]))
            .unwrap_err()
            .to_string();
        let key = if var == "MONITOR_RETENTION_HOURS" && value == "-1" {
            "retention.hours"
        } else {
            var
        };
        assert!(
            err.contains(key) && err.contains(expect),
            "{var}={value}: {err}"
        );
    }
}

#[test]
fn a_missing_config_file_named_by_the_environment_is_an_error() {
    let err =
        Config::load_with(env(&[("MONITOR_CONFIG", "/nonexistent/monitor.toml")])).unwrap_err();
    assert!(matches!(err, Error::ConfigFile { .. }));
    assert!(err.to_string().contains("/nonexistent/monitor.toml"));
}
