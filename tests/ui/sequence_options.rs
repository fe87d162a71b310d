use monitor_runtime::monitor;

#[monitor(item_spans)]
fn not_a_sequence() -> u32 {
    1
}

#[monitor(ret)]
fn with_ret() -> impl Iterator<Item = u32> {
    0..3
}

#[monitor(iter)]
async fn async_iter() -> u32 {
    1
}

#[monitor(iter)]
fn mismatched() -> Box<dyn futures::Stream<Item = u32> + Unpin> {
    Box::new(futures::stream::iter(0..3))
}

#[monitor(stream, iter)]
fn both() -> impl Iterator<Item = u32> {
    0..3
}

#[monitor(iter)]
fn hidden() -> impl Clone {
    0..3
}

fn main() {}
