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
