use monitor_runtime::monitor;

#[monitor(nmae = "typo")]
fn work() {}

fn main() {
    work();
}
