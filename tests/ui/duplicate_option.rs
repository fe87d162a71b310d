use monitor_runtime::monitor;

#[monitor(name = "a", group = "g", name = "b")]
fn work() {}

fn main() {
    work();
}
