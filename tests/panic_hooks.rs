//! A panic's message reaches the file whatever panic hook the program
//! installs, before or after `init` (color-eyre's among them): the span
//! reads it from the payload where it ends, and the panic goes on with the
//! same payload, the program's hook having run once.
//!
//! The panic hook is global: every test here holds the session lock (tests
//! take turns) while it installs one.

mod common;

use std::cell::{Cell, RefCell};
use std::panic::{self, catch_unwind, panic_any, AssertUnwindSafe};
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{session, session_with, Session};
use futures::stream::{self, Stream, StreamExt};
use monitor_runtime::monitor;

/// Panics of this test binary that the counting hook saw.
static HOOK_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A program's own hook, as a test that silences panics installs it.
fn counting_hook() {
    HOOK_CALLS.store(0, Ordering::SeqCst);
    panic::set_hook(Box::new(|info| {
        HOOK_CALLS.fetch_add(1, Ordering::SeqCst);
        eprintln!("the program's hook: {info}");
    }));
}

/// Puts the default hook back.
fn default_hook() {
    let _ = panic::take_hook();
}

#[monitor]
fn fails(n: u32) -> u32 {
    if n > 0 {
        panic!("failed at step {n}");
    }
    n
}

#[monitor]
fn outer() -> u32 {
    middle() + 1
}

#[monitor]
fn middle() -> u32 {
    inner() + 1
}

#[monitor]
fn inner() -> u32 {
    panic!("deep failure")
}

#[derive(Debug, PartialEq)]
struct Code(u32);

#[monitor]
fn panics_with_a_value() -> Result<(), String> {
    panic_any(Code(7))
}

/// `(status, error)` of the one span named `name`.
fn outcome(s: &Session, name: &str) -> (String, Option<String>) {
    let row = s.one(name);
    (row.status, row.error)
}

fn panicked(message: &str) -> (String, Option<String>) {
    ("panic".to_owned(), Some(message.to_owned()))
}

#[test]
fn a_hook_replaced_after_init_keeps_the_message() {
    let s = session();
    counting_hook();
    let payload = catch_unwind(|| fails(3)).expect_err("the panic goes on");
    default_hook();
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "the program's hook ran once"
    );
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("failed at step 3"),
        "the caller gets the payload"
    );
    assert_eq!(outcome(&s, "fails"), panicked("failed at step 3"));
}

#[test]
fn a_hook_replaced_before_init_keeps_the_message() {
    // Installed with the session lock held, before `init` runs.
    let s = session_with(|config| {
        counting_hook();
        config
    });
    let payload = catch_unwind(|| fails(4)).expect_err("the panic goes on");
    default_hook();
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "the program's hook ran once"
    );
    assert!(payload.downcast_ref::<String>().is_some());
    assert_eq!(outcome(&s, "fails"), panicked("failed at step 4"));
}

#[test]
fn color_eyre_installed_keeps_the_message() {
    let s = session();
    color_eyre::install().expect("installed once in this process");
    let payload = catch_unwind(|| fails(5)).expect_err("the panic goes on");
    default_hook();
    assert!(payload.downcast_ref::<String>().is_some());
    assert_eq!(outcome(&s, "fails"), panicked("failed at step 5"));
}

#[test]
fn each_of_three_nested_spans_gets_the_message() {
    let s = session();
    counting_hook();
    let payload = catch_unwind(outer).expect_err("the panic goes on");
    default_hook();
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        1,
        "one panic, one hook call"
    );
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"deep failure"));
    let (o, m, i) = (s.one("outer"), s.one("middle"), s.one("inner"));
    assert_eq!(
        (m.parent_id, i.parent_id),
        (Some(o.span_id), Some(m.span_id))
    );
    for row in [o, m, i] {
        assert_eq!(
            (row.status.as_str(), row.error.as_deref()),
            ("panic", Some("deep failure")),
            "{}",
            row.name
        );
    }
}

#[test]
fn a_non_string_payload_reaches_the_caller_and_is_named() {
    let s = session();
    counting_hook();
    let payload = catch_unwind(panics_with_a_value).expect_err("the panic goes on");
    default_hook();
    assert_eq!(HOOK_CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(
        payload.downcast_ref::<Code>(),
        Some(&Code(7)),
        "same payload"
    );
    assert_eq!(
        outcome(&s, "panics_with_a_value"),
        panicked("panic with a non-string payload")
    );
}

#[monitor]
fn readings(fail_at: u32) -> impl Stream<Item = u32> {
    stream::iter(0..5).map(move |i| {
        if i == fail_at {
            panic!("sensor {i} gave up");
        }
        i
    })
}

#[monitor]
async fn fetch(n: u32) -> u32 {
    tokio::task::yield_now().await;
    if n > 0 {
        panic!("fetch {n} timed out");
    }
    n
}

#[test]
fn panics_in_poll_next_and_poll_on_a_tokio_worker_keep_their_messages() {
    let s = session();
    counting_hook();
    let rt = common::tokio_runtime();
    let stream_panic = rt
        .block_on(rt.spawn(async {
            let mut items = pin!(readings(2));
            while items.next().await.is_some() {}
        }))
        .expect_err("the task panicked");
    let future_panic = rt
        .block_on(rt.spawn(fetch(9)))
        .expect_err("the task panicked");
    drop(rt);
    default_hook();
    assert_eq!(
        HOOK_CALLS.load(Ordering::SeqCst),
        2,
        "two panics, two hook calls"
    );
    for (err, message) in [
        (stream_panic, "sensor 2 gave up"),
        (future_panic, "fetch 9 timed out"),
    ] {
        let payload = err.into_panic();
        assert_eq!(
            payload.downcast_ref::<String>().map(String::as_str),
            Some(message)
        );
    }
    let stream_row = s.one("readings");
    assert_eq!(
        (stream_row.status.as_str(), stream_row.error.as_deref()),
        ("panic", Some("sensor 2 gave up"))
    );
    assert_eq!(stream_row.items, Some(2), "two items came before the panic");
    assert_eq!(outcome(&s, "fetch"), panicked("fetch 9 timed out"));
}

/// Arguments that are not `UnwindSafe` (`&Cell`, `&mut`, `Rc<RefCell>`):
/// catching the unwind must not make that a requirement.
#[monitor]
fn tally(seen: &Cell<u32>, log: &mut Vec<u32>, shared: Rc<RefCell<u32>>) -> u32 {
    seen.set(seen.get() + 1);
    log.push(seen.get());
    *shared.borrow_mut() += 1;
    if seen.get() == 2 {
        panic!("tally overflow at {}", log.len());
    }
    seen.get()
}

#[monitor]
async fn tally_async(log: &mut Vec<u32>, shared: Rc<RefCell<u32>>) -> usize {
    log.push(*shared.borrow());
    if log.len() > 1 {
        panic!("async tally overflow");
    }
    log.len()
}

#[test]
fn arguments_need_not_be_unwind_safe() {
    let s = session();
    let (seen, shared) = (Cell::new(0), Rc::new(RefCell::new(0)));
    let mut log = Vec::new();
    assert_eq!(tally(&seen, &mut log, shared.clone()), 1);
    let caught = catch_unwind(AssertUnwindSafe(|| tally(&seen, &mut log, shared.clone())));
    assert!(caught.is_err());
    assert_eq!(log, [1, 2], "the body ran as written");
    let rows = s.named("tally", 2);
    assert_eq!(
        (rows[1].status.as_str(), rows[1].error.as_deref()),
        ("panic", Some("tally overflow at 2"))
    );

    let mut log = vec![0];
    let caught = catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(tally_async(&mut log, shared.clone()))
    }));
    assert!(caught.is_err());
    assert_eq!(outcome(&s, "tally_async"), panicked("async tally overflow"));
}
