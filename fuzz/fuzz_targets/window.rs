//! Fuzzes the CLI's `--since` window parser, `src/window.rs`, included as a
//! module since the CLI is a binary crate.
//!
//! Run from the repository root (nightly, cargo-fuzz):
//!     cargo +nightly fuzz run --target-dir /tmp/target-fuzz-nightly window -- -max_total_time=120
//!
//! Checked: nothing panics; a window that parses is a positive number of
//! nanoseconds that spaces around it do not change; an error is the CLI's
//! message quoting the input in backticks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/window.rs"]
mod window;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match window::parse(input) {
        Ok(ns) => {
            assert!(ns > 0, "{input:?}");
            assert_eq!(window::parse(&format!(" {input}\t")), Ok(ns), "{input:?}");
        }
        Err(message) => {
            assert!(message.starts_with("bad time window `"), "{message}");
            assert!(message.contains(&format!("`{input}`")), "{message}");
        }
    }
    let _ = window::since(input);
});
