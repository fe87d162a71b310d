use monitor_runtime::monitor;

#[monitor(parent = request_id)]
fn handle(request_id: u64) {}

#[monitor(parent = traceparent)]
async fn handle_async(traceparent: String) {}

fn main() {}
