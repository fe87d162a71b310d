use monitor_runtime::monitor;

#[monitor(parent)]
fn no_value() {}

fn main() {}
