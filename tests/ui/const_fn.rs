use monitor_runtime::monitor;

#[monitor]
const fn square(x: u32) -> u32 {
    x * x
}

fn main() {
    square(2);
}
