//! `alloc_bytes` with the counting allocator installed in this test binary.

mod common;

use common::{reader, serial, temp_db};
use monitor_runtime::alloc::CountingAllocator;
use monitor_runtime::{Callsite, Config, EnteredSpan, SpanKind};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

static PARENT: Callsite = Callsite::new("parent", "t", "t", file!(), 1, SpanKind::Sync);
static CHILD: Callsite = Callsite::new("child", "t", "t", file!(), 2, SpanKind::Sync);
static NOTHING: Callsite = Callsite::new("nothing", "t", "t", file!(), 3, SpanKind::Sync);

#[test]
fn a_span_counts_what_its_thread_allocated_children_included() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    let kept;
    {
        let _parent = EnteredSpan::new(&PARENT);
        let small = vec![1u8; 1000];
        {
            let _child = EnteredSpan::new(&CHILD);
            kept = vec![0u8; 1 << 20];
        }
        drop(small);
        // Another thread's allocations are not this span's.
        std::thread::spawn(|| vec![0u8; 8 << 20]).join().unwrap();
    }
    drop(EnteredSpan::new(&NOTHING));
    guard.flush();

    let alloc = |name: &str| -> i64 {
        reader(&path)
            .query_row(
                "SELECT alloc_bytes FROM spans WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .unwrap()
    };
    let (parent, child) = (alloc("parent"), alloc("child"));
    assert_eq!(child, 1 << 20, "the child allocated exactly its vector");
    // Its own 1,000 bytes and what `thread::spawn` allocates here (a few
    // hundred). The monitor's queue buffers (over 100 KB for a new thread)
    // are not charged, and the other thread's 8 MiB are not this thread's.
    let own = parent - child;
    assert!(
        (1000..2000).contains(&own),
        "parent {parent}, child {child}"
    );
    assert_eq!(alloc("nothing"), 0);
    drop(kept);
    drop(guard);
}

static HANDED: Callsite = Callsite::new("handed", "t", "t", file!(), 4, SpanKind::Sync);

#[test]
fn a_span_handed_to_another_thread_counts_that_thread() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(Config::default().db_path(&path)).unwrap();
    // Allocations on this thread before the hand-off are not the span's.
    let span = monitor_runtime::Span::with_parent(&HANDED, None);
    let before = vec![0u8; 2 << 20];
    std::thread::spawn(move || {
        let _call = span.entered();
        drop(std::hint::black_box(vec![0u8; 4 << 20]));
    })
    .join()
    .unwrap();
    drop(before);
    guard.flush();
    let handed: i64 = reader(&path)
        .query_row(
            "SELECT alloc_bytes FROM spans WHERE name = 'handed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(handed, 4 << 20);
    drop(guard);
}
