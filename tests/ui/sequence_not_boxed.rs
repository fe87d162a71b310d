use monitor_runtime::monitor;

struct Countdown(u32);

impl Iterator for Countdown {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        self.0 = self.0.checked_sub(1)?;
        Some(self.0)
    }
}

#[monitor(iter)]
fn countdown(n: u32) -> Countdown {
    Countdown(n)
}

fn main() {
    countdown(3);
}
