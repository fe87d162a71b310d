//! `#[monitor]` in a `panic = "abort"` build: it compiles, a monitored
//! panic runs the program's hook once and aborts the process (nothing
//! unwinds, so nothing is caught), and spans flushed before it stay in the
//! file.
//!
//! `.ci/run` builds it with the `panic-abort` profile and checks all three:
//! `cargo run --profile panic-abort --example panic_abort -- abort.db`.

use monitor_runtime::{monitor, Config};

#[monitor]
fn step(n: u32) -> u32 {
    n + 1
}

#[monitor]
fn explode(n: u32) -> u32 {
    if n > 0 {
        panic!("abort build: step {n} failed");
    }
    n
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "panic_abort.db".into());
    let guard = monitor_runtime::init_with(Config::default().db_path(&db))?;
    step(1);
    guard.flush();
    std::panic::set_hook(Box::new(|info| eprintln!("program hook: {info}")));
    explode(2);
    unreachable!("a panic aborts this build");
}
