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
    assert!(child >= 1 << 20, "child {child}");
    assert!(parent >= child + 1000, "parent {parent}, child {child}");
    assert!(
        parent < child + (4 << 20),
        "the other thread's 8 MiB counted: {parent}"
    );
    assert_eq!(alloc("nothing"), 0);
    drop(kept);
    drop(guard);
}
