use monitor_runtime::monitor;

#[monitor]
struct Config {
    path: String,
}

#[monitor]
impl Config {
    fn path(&self) -> &str {
        &self.path
    }
}

fn main() {}
