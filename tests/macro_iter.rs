//! `#[monitor]` on functions returning an `Iterator`: one span per iterator,
//! from the call to its last item, with the items counted, `Err` items
//! recorded, early drops `cancelled`, and the iterator traits forwarded.

mod common;

use std::iter::FusedIterator;

use common::session;
use monitor_runtime::monitor;

#[monitor]
fn parse(text: &str) -> u32 {
    text.len() as u32
}

#[monitor]
fn words(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split_whitespace().map(parse)
}

#[monitor]
fn numbers(
    text: &str,
) -> impl DoubleEndedIterator<Item = Result<u32, std::num::ParseIntError>> + '_ {
    text.split(',').map(str::parse)
}

#[monitor]
fn exact(n: usize) -> impl ExactSizeIterator<Item = usize> + FusedIterator {
    0..n
}

#[monitor]
fn boxed(n: u32) -> Box<dyn Iterator<Item = u32> + Send> {
    if n == 0 {
        return Box::new(std::iter::empty());
    }
    Box::new(0..n)
}

type Lines<'a> = Box<dyn Iterator<Item = &'a str> + 'a>;

#[monitor(iter, item_spans)]
fn lines(text: &str) -> Lines<'_> {
    Box::new(text.lines().inspect(|line| {
        parse(line);
    }))
}

struct Queue {
    jobs: Vec<u32>,
}

impl Queue {
    #[monitor]
    fn drain(&mut self) -> impl Iterator<Item = u32> + '_ {
        self.jobs.drain(..)
    }
}

#[test]
fn a_consumed_iterator_is_one_ok_span_with_its_items() {
    let s = session();
    let lengths: Vec<u32> = words("one three five").collect();
    assert_eq!(lengths, [3, 5, 4]);

    let span = s.one("words");
    assert_eq!(span.kind, "iter");
    assert_eq!(span.status, "ok");
    assert_eq!(span.items, Some(3));
    assert!(span.busy_ns <= span.duration_ns);
    for child in s.named("parse", 3) {
        assert_eq!(child.parent_id, Some(span.span_id));
    }
}

#[test]
fn a_partly_consumed_iterator_is_cancelled_when_dropped() {
    let s = session();
    let first_two: Vec<u32> = words("a bb ccc dddd").take(2).collect();
    assert_eq!(first_two, [1, 2]);

    let span = s.one("words");
    assert_eq!(span.status, "cancelled");
    assert_eq!(span.items, Some(2));
}

#[test]
fn an_err_item_makes_the_iterator_an_error_and_iteration_goes_on() {
    let s = session();
    let parsed: Vec<_> = numbers("1,x,3,y").collect();
    assert_eq!(parsed.len(), 4);

    let span = s.one("numbers");
    assert_eq!(span.status, "error");
    assert_eq!(span.error.as_deref(), Some("invalid digit found in string"));
    assert_eq!(span.items, Some(4));
}

#[test]
fn iterator_traits_are_forwarded() {
    let s = session();
    let mut iter = exact(4);
    assert_eq!(iter.len(), 4);
    assert_eq!(iter.size_hint(), (4, Some(4)));
    assert_eq!(iter.next(), Some(0));
    assert_eq!(iter.len(), 3);
    assert_eq!(iter.by_ref().count(), 3);
    assert_eq!(iter.next(), None, "fused");
    drop(iter);

    let backwards: Vec<_> = numbers("1,2,3").rev().map(Result::unwrap).collect();
    assert_eq!(backwards, [3, 2, 1]);

    assert_eq!(s.one("exact").items, Some(4));
    let numbers = s.one("numbers");
    assert_eq!((numbers.status.as_str(), numbers.items), ("ok", Some(3)));
}

#[test]
fn boxed_and_aliased_iterators_keep_their_type_and_are_monitored() {
    let s = session();
    assert_eq!(boxed(0).count(), 0);
    assert_eq!(boxed(5).count(), 5);
    let text = "alpha\nbeta\ngamma";
    assert_eq!(lines(text).collect::<Vec<_>>(), ["alpha", "beta", "gamma"]);

    let rows = s.named("boxed", 2);
    assert_eq!((rows[0].items, rows[1].items), (Some(0), Some(5)));
    let span = s.one("lines");
    assert_eq!((span.kind.as_str(), span.items), ("iter", Some(3)));
    // `item_spans`: one child per item, and work done for an item is its child.
    let items = s.named("lines.item", 3);
    let work = s.named("parse", 3);
    for (item, work) in items.iter().zip(&work) {
        assert_eq!(item.parent_id, Some(span.span_id));
        assert_eq!(item.kind, "sync");
        assert_eq!(work.parent_id, Some(item.span_id));
    }
}

#[test]
fn a_method_returning_a_borrowing_iterator_works() {
    let s = session();
    let mut queue = Queue {
        jobs: vec![4, 5, 6],
    };
    assert_eq!(queue.drain().sum::<u32>(), 15);
    assert!(queue.jobs.is_empty());
    assert_eq!(s.one("drain").items, Some(3));
}

#[monitor]
fn fetch_page(page: u32) -> Option<u32> {
    (page < 2).then_some(page)
}

/// The last `next` does monitored work before it finds the end.
#[monitor(item_spans)]
fn pages() -> impl Iterator<Item = u32> {
    let mut page = 0;
    std::iter::from_fn(move || {
        let found = fetch_page(page);
        page += 1;
        found
    })
}

#[monitor(item_spans)]
fn flaky(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|i| if i == 1 { panic!("item {i} broke") } else { i })
}

#[monitor(item_spans, sample = 0.5)]
fn sampled(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[monitor]
fn debuggable(n: u32) -> impl Iterator<Item = u32> + std::fmt::Debug {
    0..n
}

#[monitor]
fn boxed_double_ended(n: u32) -> Box<dyn DoubleEndedIterator<Item = u32> + Send> {
    Box::new(0..n)
}

#[test]
fn spans_opened_by_the_last_next_keep_a_stored_parent() {
    let s = session();
    assert_eq!(pages().count(), 2);

    let rows = s.spans();
    let sequence = s.one("pages");
    assert_eq!(sequence.items, Some(2));
    let items = s.named("pages.item", 3);
    let counts: Vec<_> = items.iter().map(|i| i.items).collect();
    assert_eq!(
        counts,
        [Some(1), Some(1), Some(0)],
        "the last one found the end"
    );
    for fetch in s.named("fetch_page", 3) {
        let parent = fetch.parent_id.expect("a parent");
        assert!(rows.iter().any(|r| r.span_id == parent), "{fetch:?}");
    }
}

#[test]
fn a_panic_of_the_consumer_is_not_the_iterator_s() {
    let s = session();
    let outcome = std::panic::catch_unwind(|| {
        for x in words("a bb ccc") {
            if x == 2 {
                panic!("consumer broke");
            }
        }
    });
    assert!(outcome.is_err());
    let span = s.one("words");
    assert_eq!((span.status.as_str(), span.items), ("cancelled", Some(2)));
    assert_eq!(span.error, None);

    // Drained by a `Drop` while another panic unwinds: every `next` returned.
    struct DrainOnDrop(Option<Box<dyn Iterator<Item = u32>>>);
    impl Drop for DrainOnDrop {
        fn drop(&mut self) {
            assert_eq!(self.0.take().unwrap().count(), 3);
        }
    }
    let outcome = std::panic::catch_unwind(|| {
        let _drain = DrainOnDrop(Some(Box::new(words("x y z"))));
        panic!("unrelated");
    });
    assert!(outcome.is_err());
    let rows = s.named("words", 2);
    assert_eq!((rows[1].status.as_str(), rows[1].items), ("ok", Some(3)));
}

#[test]
fn a_caught_panic_ends_its_item_and_iteration_goes_on() {
    let s = session();
    let mut iter = flaky(4);
    assert_eq!(iter.next(), Some(0));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| iter.next()));
    assert!(caught.is_err());
    assert_eq!(iter.collect::<Vec<_>>(), [2, 3]);

    let span = s.one("flaky");
    assert_eq!(span.status, "panic");
    assert_eq!(span.error.as_deref(), Some("item 1 broke"));
    assert_eq!(span.items, Some(3));
    let statuses: Vec<String> = s
        .named("flaky.item", 4)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, ["ok", "panic", "ok", "ok"]);
}

#[test]
fn item_spans_follow_their_sequence_s_sampling() {
    let s = session();
    for _ in 0..200 {
        assert_eq!(sampled(5).count(), 5);
    }
    let rows = s.spans();
    let sequences: Vec<_> = rows.iter().filter(|r| r.name == "sampled").collect();
    let items: Vec<_> = rows.iter().filter(|r| r.name == "sampled.item").collect();
    assert!(
        (40..160).contains(&sequences.len()),
        "about half kept: {}",
        sequences.len()
    );
    assert_eq!(items.len(), sequences.len() * 5);
    for item in items {
        assert!(sequences.iter().any(|s| Some(s.span_id) == item.parent_id));
    }
}

#[test]
fn debug_and_boxed_subtraits_are_kept() {
    let s = session();
    let iter = debuggable(2);
    assert!(format!("{iter:?}").contains("0..2"));
    assert_eq!(iter.count(), 2);
    assert_eq!(boxed_double_ended(3).rev().collect::<Vec<_>>(), [2, 1, 0]);
    assert_eq!(s.one("debuggable").items, Some(2));
    assert_eq!(s.one("boxed_double_ended").kind, "iter");
}
