use monitor_runtime::monitor;

#[monitor(crate)]
fn no_path() {}

#[monitor(name)]
fn no_name() {}

#[monitor(sample)]
fn no_rate() {}

fn main() {}
