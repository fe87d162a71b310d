//! Fuzzes `monitor_runtime::propagation::extract`, the `traceparent`
//! parser: the header comes from the network, so any bytes must give a
//! context or an error, never a panic.
//!
//! Run from the repository root (nightly, cargo-fuzz):
//!     cargo +nightly fuzz run --target-dir /tmp/target-fuzz-nightly traceparent -- -max_total_time=120
//!
//! Checked: nothing panics; a context that parses has non-zero ids, and
//! what it writes parses back to itself; an error names the traceparent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use monitor_runtime::propagation::extract;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match extract(input) {
        Ok(context) => {
            assert!(context.trace_id != 0 && context.span_id != 0, "{input:?}");
            let written = context.to_string();
            assert_eq!(written.len(), 55);
            let again = extract(&written).expect("what it writes parses");
            assert_eq!(again.trace_id, context.trace_id);
            assert_eq!(again.span_id, context.span_id);
            assert_eq!(again.sampled, context.sampled);
        }
        Err(e) => assert!(e.to_string().contains("traceparent"), "{e}"),
    }
});
