//! Fuzzes `Config::from_toml_str` and `Config::with_env_overrides`.
//!
//! Run from the repository root (nightly, cargo-fuzz):
//!     cargo +nightly fuzz run --target-dir /tmp/target-fuzz-nightly config -- -max_total_time=120 -dict=fuzz/config.dict
//!
//! The input is the TOML text, then optionally a NUL byte and up to three
//! NUL-separated values for `MONITOR_DB`, `MONITOR_ENABLED` and
//! `MONITOR_RETENTION_HOURS` (a missing one is unset). Checked: nothing
//! panics; an error is `Error::Config` with a non-empty key that its message
//! names; a config that is accepted passes the checks `init` relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_runtime::{Config, Error, ENV_DB, ENV_ENABLED, ENV_RETENTION_HOURS};

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let Ok(text) = std::str::from_utf8(parts.next().unwrap_or_default()) else {
        return;
    };
    let values: Vec<String> = parts
        .take(3)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let Some(config) = check(Config::from_toml_str(text), text) else {
        return;
    };
    let env = |name: &str| {
        let i = [ENV_DB, ENV_ENABLED, ENV_RETENTION_HOURS]
            .iter()
            .position(|&known| known == name)?;
        values.get(i).cloned()
    };
    check(config.with_env_overrides(env), text);
});

/// The config if accepted, after checking the error's shape if not.
fn check(result: Result<Config, Error>, text: &str) -> Option<Config> {
    match result {
        Ok(config) => {
            assert!(!config.db_path.as_os_str().is_empty(), "{text:?}");
            assert!(config.retention.hours >= 1, "{text:?}");
            assert!(config.queue.flush_interval_ms >= 1, "{text:?}");
            assert!(config.retention.cleanup_interval_secs >= 1, "{text:?}");
            Some(config)
        }
        Err(err @ Error::Config { .. }) => {
            let shown = err.to_string();
            let Error::Config { key, .. } = err else {
                unreachable!()
            };
            assert!(!key.is_empty(), "empty key: {shown}\n{text:?}");
            assert!(shown.contains(&format!("`{key}`")), "{shown}\n{text:?}");
            None
        }
        Err(other) => panic!("not a configuration error: {other:?}\n{text:?}"),
    }
}
