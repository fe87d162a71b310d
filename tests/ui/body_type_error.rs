use monitor_runtime::monitor;

#[monitor]
fn count(items: &[u32]) -> Result<usize, String> {
    let total: u32 = items.len();
    Ok(total)
}

#[monitor]
async fn fetch(id: u64) -> u64 {
    let label: &str = id;
    label.len() as u64
}

fn main() {
    let _ = count(&[]);
    let _ = fetch(1);
}
