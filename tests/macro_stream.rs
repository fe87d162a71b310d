//! `#[monitor]` on functions returning a `Stream`: one span per stream, from
//! the call to its last item, with the items counted, `Err` items, panics
//! and early drops recorded, and the span current while an item is made.

mod common;

use std::pin::Pin;
use std::time::Duration;

use async_stream::{stream, try_stream};
use common::session;
use futures::executor::block_on;
use futures::stream::{self, BoxStream, FusedStream, Stream, StreamExt};
use monitor_runtime::prelude::*;

const MS: i64 = 1_000_000;

#[derive(Debug)]
struct TickError(u32);

impl std::fmt::Display for TickError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tick {} failed", self.0)
    }
}

#[monitor]
fn inner_work(n: u32) -> u32 {
    n + 1
}

#[monitor]
fn ticks(n: u32) -> impl Stream<Item = u32> {
    stream! {
        for i in 0..n {
            yield inner_work(i);
        }
    }
}

#[monitor]
fn checked_ticks(n: u32) -> impl Stream<Item = Result<u32, TickError>> {
    try_stream! {
        for i in 0..n {
            if i == 1 {
                Err(TickError(i))?;
            }
            yield i;
        }
    }
}

/// Unlike `try_stream!`, a stream of results that goes on after an `Err`.
#[monitor]
fn results(n: u32) -> impl Stream<Item = Result<u32, TickError>> {
    stream::iter((0..n).map(|i| if i == 2 { Err(TickError(i)) } else { Ok(i) }))
}

#[monitor(item_spans)]
fn paced(n: u32) -> impl Stream<Item = u32> {
    stream! {
        for i in 0..n {
            tokio::time::sleep(Duration::from_millis(2)).await;
            yield inner_work(i);
        }
    }
}

#[monitor]
fn boxed(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

#[monitor]
fn pinned(n: u32) -> Pin<Box<dyn Stream<Item = u32> + Send>> {
    Box::pin(stream::iter(0..n))
}

type Numbers = Pin<Box<dyn Stream<Item = Result<u32, TickError>> + Send>>;

#[monitor(stream)]
fn aliased(n: u32) -> Numbers {
    Box::pin(stream::iter((0..n).map(|i| {
        if i == 0 {
            Err(TickError(i))
        } else {
            Ok(i)
        }
    })))
}

#[monitor]
fn early_return(empty: bool) -> BoxStream<'static, u32> {
    if empty {
        return stream::empty().boxed();
    }
    stream::iter(0..3).boxed()
}

#[monitor]
fn panicking() -> impl Stream<Item = u32> {
    stream::iter(0..3).map(|i| if i == 1 { panic!("item {i} broke") } else { i })
}

#[monitor]
fn fused(n: u32) -> impl FusedStream<Item = u32> {
    stream::iter(0..n).fuse()
}

#[monitor]
async fn consume(n: u32) -> u32 {
    paced(n).fold(0, |sum, i| async move { sum + i }).await
}

#[test]
fn a_consumed_stream_is_one_ok_span_with_its_items() {
    let s = session();
    let items: Vec<u32> = block_on(ticks(4).collect());
    assert_eq!(items, [1, 2, 3, 4]);

    let span = s.one("ticks");
    assert_eq!(span.kind, "stream");
    assert_eq!(span.status, "ok");
    assert_eq!(span.items, Some(4));
    assert!(span.busy_ns <= span.duration_ns);
    // Work done while an item is produced is the stream's child.
    let children = s.named("inner_work", 4);
    for child in &children {
        assert_eq!(child.parent_id, Some(span.span_id));
        assert_eq!(child.trace_id, span.trace_id);
    }
}

#[test]
fn an_err_item_makes_the_stream_an_error_and_iteration_goes_on() {
    let s = session();
    let items: Vec<_> = block_on(results(4).collect());
    assert_eq!(items.len(), 4);

    let span = s.one("results");
    assert_eq!(span.status, "error");
    assert_eq!(span.error.as_deref(), Some("tick 2 failed"));
    assert_eq!(span.items, Some(4));

    let items: Vec<_> = block_on(checked_ticks(4).collect());
    assert_eq!(items.len(), 2, "try_stream! ends at its first error");
    let span = s.one("checked_ticks");
    assert_eq!(span.status, "error");
    assert_eq!(span.error.as_deref(), Some("tick 1 failed"));
    assert_eq!(span.items, Some(2));
}

#[test]
fn a_stream_dropped_early_is_cancelled_with_the_items_it_gave() {
    let s = session();
    let first = block_on(async {
        let mut stream = Box::pin(ticks(5));
        stream.next().await
    });
    assert_eq!(first, Some(1));

    let span = s.one("ticks");
    assert_eq!(span.status, "cancelled");
    assert_eq!(span.items, Some(1));
}

#[test]
fn a_stream_that_never_yields_an_item_is_ok_with_zero_items() {
    let s = session();
    assert_eq!(block_on(early_return(true).count()), 0);
    assert_eq!(block_on(early_return(false).count()), 3);

    let rows = s.named("early_return", 2);
    assert_eq!(rows[0].items, Some(0));
    assert_eq!(rows[1].items, Some(3));
    assert!(rows.iter().all(|r| r.status == "ok" && r.kind == "stream"));
}

#[test]
fn boxed_and_aliased_streams_keep_their_type_and_are_monitored() {
    let s = session();
    assert_eq!(block_on(boxed(3).count()), 3);
    assert_eq!(block_on(pinned(2).count()), 2);
    assert_eq!(block_on(aliased(3).count()), 3);

    assert_eq!(s.one("boxed").items, Some(3));
    assert_eq!(s.one("pinned").items, Some(2));
    let aliased = s.one("aliased");
    assert_eq!(aliased.kind, "stream");
    assert_eq!(aliased.status, "error");
    assert_eq!(aliased.error.as_deref(), Some("tick 0 failed"));
    assert_eq!(aliased.items, Some(3));
}

#[test]
fn a_panic_inside_poll_next_is_recorded() {
    let s = session();
    let outcome = std::panic::catch_unwind(|| block_on(panicking().count()));
    assert!(outcome.is_err());

    let span = s.one("panicking");
    assert_eq!(span.status, "panic");
    assert_eq!(span.error.as_deref(), Some("item 1 broke"));
    assert_eq!(span.items, Some(1));
}

#[test]
fn size_hint_and_fused_are_forwarded() {
    let s = session();
    let mut stream = fused(3);
    assert_eq!(stream.size_hint(), (3, Some(3)));
    assert!(!stream.is_terminated());
    assert_eq!(block_on((&mut stream).count()), 3);
    assert!(stream.is_terminated());
    assert_eq!(block_on(stream.next()), None);
    drop(stream);
    // The span ended at the first `None`, once.
    assert_eq!(s.one("fused").status, "ok");
}

#[test]
fn item_spans_add_one_child_per_item() {
    let s = session();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let total = runtime.block_on(paced(3).fold(0, |sum, i| async move { sum + i }));
    assert_eq!(total, 1 + 2 + 3);

    let stream = s.one("paced");
    let items = s.named("paced.item", 3);
    for item in &items {
        assert_eq!(item.parent_id, Some(stream.span_id));
        assert_eq!(item.kind, "async");
        assert_eq!(item.status, "ok");
        // Each item waited its 2 ms sleep.
        assert!(item.duration_ns >= 2 * MS, "{item:?}");
    }
    // Work done while an item is produced is that item's child.
    let work = s.named("inner_work", 3);
    for (child, item) in work.iter().zip(&items) {
        assert_eq!(child.parent_id, Some(item.span_id));
    }
    assert_eq!(stream.items, Some(3));
}

#[test]
fn twenty_concurrent_streams_are_linked_and_counted() {
    let s = session();
    let runtime = common::tokio_runtime();
    let totals = runtime.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|_| tokio::spawn(consume(10).in_current_span()))
            .collect();
        let mut totals = Vec::new();
        for task in tasks {
            totals.push(task.await.unwrap());
        }
        totals
    });
    assert!(totals.iter().all(|&t| t == (1..=10).sum::<u32>()));

    let consumers = s.named("consume", 20);
    let streams = s.named("paced", 20);
    assert_eq!(s.named("paced.item", 200).len(), 200);
    for stream in &streams {
        assert_eq!(stream.items, Some(10));
        assert_eq!(stream.status, "ok");
        assert!(stream.duration_ns >= 10 * 2 * MS);
        let parent = consumers
            .iter()
            .find(|c| Some(c.span_id) == stream.parent_id)
            .expect("each stream's parent is the task that consumed it");
        assert_eq!(parent.trace_id, stream.trace_id);
        // Sleeping is not busy time.
        assert!(stream.busy_ns < stream.duration_ns / 2, "{stream:?}");
    }
}

#[test]
fn a_stream_polled_on_another_thread_links_to_its_span() {
    let s = session();
    let stream = ticks(2);
    let items = std::thread::spawn(move || block_on(stream.collect::<Vec<_>>()))
        .join()
        .unwrap();
    assert_eq!(items, [1, 2]);

    let span = s.one("ticks");
    for child in s.named("inner_work", 2) {
        assert_eq!(child.parent_id, Some(span.span_id));
        assert_ne!(Some(child.thread.as_str()), std::thread::current().name());
    }
}

#[monitor]
fn err_then_panic() -> impl Stream<Item = Result<u32, TickError>> {
    stream::iter(0..3).map(|i| match i {
        0 => Err(TickError(0)),
        1 => panic!("row {i} exploded"),
        _ => Ok(i),
    })
}

#[monitor]
fn try_ticks(n: u32) -> impl futures::TryStream<Ok = u32, Error = TickError> {
    stream::iter((0..n).map(|i| if i == 1 { Err(TickError(i)) } else { Ok(i) }))
}

#[monitor]
fn unpin_box(n: u32) -> Box<dyn Stream<Item = u32> + Unpin + Send> {
    Box::new(stream::iter(0..n))
}

#[test]
fn a_panic_after_an_err_item_keeps_the_panic_s_message() {
    let s = session();
    let outcome = std::panic::catch_unwind(|| block_on(err_then_panic().count()));
    assert!(outcome.is_err());
    let span = s.one("err_then_panic");
    assert_eq!(span.status, "panic");
    assert_eq!(span.error.as_deref(), Some("row 1 exploded"));
}

#[test]
fn try_streams_and_unpin_boxes_are_streams() {
    let s = session();
    use futures::TryStreamExt;
    let items: Vec<_> = block_on(try_ticks(3).into_stream().collect());
    assert_eq!(items.len(), 3);
    let mut boxed = unpin_box(2);
    assert_eq!(block_on(boxed.next()), Some(0));
    assert_eq!(block_on(boxed.count()), 1);

    let span = s.one("try_ticks");
    assert_eq!(
        (span.kind.as_str(), span.status.as_str()),
        ("stream", "error")
    );
    assert_eq!(span.error.as_deref(), Some("tick 1 failed"));
    assert_eq!(s.one("unpin_box").items, Some(2));
}

#[test]
fn a_stream_dropped_by_a_panicking_consumer_is_cancelled() {
    let s = session();
    let outcome = std::panic::catch_unwind(|| {
        block_on(async {
            let mut stream = Box::pin(ticks(5));
            stream.next().await;
            panic!("consumer broke");
        })
    });
    assert!(outcome.is_err());
    let span = s.one("ticks");
    assert_eq!((span.status.as_str(), span.items), ("cancelled", Some(1)));
}
