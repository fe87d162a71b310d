use monitor_runtime::monitor;

#[monitor(name = 42)]
fn named() {}

#[monitor(sample = "often")]
fn sampled() {}

#[monitor(sample = 1.5)]
fn oversampled() {}

fn main() {
    named();
    sampled();
    oversampled();
}
