//! `#[monitor]` on sync functions of every shape users write, each read back
//! from the file.

mod common;

use std::fmt::Debug;
use std::io;

use common::{depth, session};
use monitor_runtime::monitor;

#[monitor]
fn plain(x: u32) -> u32 {
    x + 1
}

#[monitor]
pub(crate) fn crate_visible() -> &'static str {
    "ok"
}

/// Doc comments and other attributes stay on the function.
#[monitor]
#[inline]
#[must_use]
fn with_attributes(x: u8) -> u8 {
    x
}

#[monitor]
unsafe fn raw_read(p: *const u32) -> u32 {
    *p
}

#[monitor]
fn const_generic<const N: usize>(values: [u8; N]) -> usize {
    values.len() * N
}

#[monitor]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[monitor]
fn first_word(s: &str) -> &str {
    s.split(' ').next().unwrap_or("")
}

#[monitor]
fn bounded<T>(value: T) -> String
where
    T: Debug + Clone,
{
    format!("{:?}", value.clone())
}

#[monitor]
fn impl_trait_io(items: impl IntoIterator<Item = u32>) -> impl Iterator<Item = u32> {
    items
        .into_iter()
        .map(|x| x * 2)
        .collect::<Vec<_>>()
        .into_iter()
}

#[monitor]
fn patterns((a, b): (u32, u32), mut acc: Vec<u32>, _: bool, Wrapper(inner): Wrapper) -> Vec<u32> {
    acc.push(a + b + inner);
    acc
}

struct Wrapper(u32);

#[monitor]
fn early_return(x: i32) -> i32 {
    if x < 0 {
        return 0;
    }
    x * 2
}

#[monitor]
fn parse_number(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.trim().parse()?;
    Ok(n * 10)
}

#[monitor]
fn read_config(path: &str) -> io::Result<String> {
    if path.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "no path given"));
    }
    Ok(path.to_owned())
}

#[monitor]
fn with_anyhow(fail: bool) -> anyhow::Result<u8> {
    if fail {
        anyhow::bail!("upstream said no");
    }
    Ok(1)
}

#[monitor]
fn boxed_error(fail: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if fail {
        Err("boxed failure")?;
    }
    Ok(())
}

#[derive(Debug)]
struct NoDisplay {
    #[allow(dead_code)] // shown through Debug only
    code: u16,
}

#[monitor]
fn debug_only_error() -> Result<(), NoDisplay> {
    Err(NoDisplay { code: 503 })
}

#[monitor]
fn explodes(n: usize) -> usize {
    let v: Vec<usize> = Vec::new();
    v[n]
}

#[monitor]
fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

#[monitor]
fn outer() -> u32 {
    middle() + middle()
}

#[monitor]
fn middle() -> u32 {
    inner()
}

#[monitor]
fn inner() -> u32 {
    7
}

struct Counter {
    count: u64,
}

impl Counter {
    #[monitor]
    fn new() -> Self {
        Self { count: 0 }
    }

    #[monitor]
    fn get(&self) -> u64 {
        self.count
    }

    #[monitor]
    fn bump(&mut self) -> &mut Self {
        self.count += 1;
        self
    }

    #[monitor]
    fn into_count(self) -> u64 {
        let Self { count } = self;
        count
    }
}

struct Stack<T> {
    items: Vec<T>,
}

impl<T: Clone + Debug> Stack<T> {
    #[monitor]
    fn push(&mut self, item: T) -> usize {
        self.items.push(item);
        self.items.len()
    }

    #[monitor]
    fn peek(&self) -> Option<&T> {
        self.items.last()
    }
}

trait Shape {
    fn area(&self) -> f64;
    fn describe(&self) -> String;
}

struct Square(f64);

impl Shape for Square {
    #[monitor]
    fn area(&self) -> f64 {
        self.0 * self.0
    }

    #[monitor(name = "square_describe")]
    fn describe(&self) -> String {
        format!("square of area {}", self.area())
    }
}

#[test]
fn functions_of_every_shape_are_recorded_and_behave_the_same() {
    let s = session();
    assert_eq!(plain(1), 2);
    assert_eq!(crate_visible(), "ok");
    assert_eq!(with_attributes(3), 3);
    let value = 41u32;
    // SAFETY: `value` is a live u32.
    assert_eq!(unsafe { raw_read(&value) }, 41);
    assert_eq!(const_generic([1, 2, 3]), 9);
    assert_eq!(longest("ab", "abc"), "abc");
    assert_eq!(first_word("hello world"), "hello");
    assert_eq!(bounded(vec![1]), "[1]");
    assert_eq!(impl_trait_io(vec![1, 2]).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(patterns((1, 2), vec![9], true, Wrapper(3)), [9, 6]);
    assert_eq!(early_return(-5), 0);
    assert_eq!(early_return(5), 10);

    for name in [
        "plain",
        "crate_visible",
        "with_attributes",
        "raw_read",
        "const_generic",
        "longest",
        "first_word",
        "bounded",
        "patterns",
    ] {
        let row = s.one(name);
        assert_eq!(
            (row.status.as_str(), row.kind.as_str()),
            ("ok", "sync"),
            "{name}"
        );
        assert_eq!(row.module, "macro_sync", "{name}");
        assert_eq!(row.group_name, "macro_sync", "{name}");
        assert!(
            row.file.ends_with("tests/macro_sync.rs"),
            "{name}: {}",
            row.file
        );
        assert_eq!(row.busy_ns, row.duration_ns, "{name}");
        assert_eq!(
            (row.error, row.fields, row.items),
            (None, None, None),
            "{name}"
        );
    }
    // A returned iterator is followed to its end (see macro_iter.rs).
    let iter = s.one("impl_trait_io");
    assert_eq!((iter.kind.as_str(), iter.items), ("iter", Some(2)));
    assert_eq!(
        s.named("early_return", 2)
            .iter()
            .filter(|r| r.status == "ok")
            .count(),
        2
    );
    // The line is where the function is defined.
    let source = include_str!("macro_sync.rs");
    let def_line = source
        .lines()
        .position(|l| l.starts_with("fn plain("))
        .unwrap() as i64
        + 1;
    assert_eq!(s.one("plain").line, def_line);
}

#[test]
fn methods_of_every_receiver_are_recorded() {
    let s = session();
    let mut counter = Counter::new();
    counter.bump().bump();
    assert_eq!(counter.get(), 2);
    assert_eq!(counter.into_count(), 2);
    let mut stack = Stack { items: Vec::new() };
    assert_eq!(stack.push("a"), 1);
    assert_eq!(stack.peek(), Some(&"a"));
    let square = Square(3.0);
    assert_eq!(square.describe(), "square of area 9");

    for (name, calls) in [
        ("new", 1),
        ("bump", 2),
        ("get", 1),
        ("into_count", 1),
        ("push", 1),
        ("peek", 1),
    ] {
        assert!(
            s.named(name, calls).iter().all(|r| r.status == "ok"),
            "{name}"
        );
    }
    let describe = s.one("square_describe");
    let area = s.one("area");
    assert_eq!(
        area.parent_id,
        Some(describe.span_id),
        "a trait method called from another"
    );
}

#[test]
fn errors_of_any_result_type_are_recorded_with_their_message() {
    let s = session();
    assert_eq!(parse_number(" 4 ").unwrap(), 40);
    assert!(parse_number("four").is_err());
    assert!(read_config("").is_err());
    assert!(read_config("a.toml").is_ok());
    assert!(with_anyhow(true).is_err());
    assert!(with_anyhow(false).is_ok());
    assert!(boxed_error(true).is_err());
    assert!(debug_only_error().is_err());

    let outcomes = |name: &str| -> Vec<(String, Option<String>)> {
        s.spans()
            .into_iter()
            .filter(|r| r.name == name)
            .map(|r| (r.status, r.error))
            .collect()
    };
    let ok = || ("ok".to_owned(), None);
    let err = |m: &str| ("error".to_owned(), Some(m.to_owned()));
    assert_eq!(
        outcomes("parse_number"),
        [ok(), err("invalid digit found in string")]
    );
    assert_eq!(outcomes("read_config"), [err("no path given"), ok()]);
    assert_eq!(outcomes("with_anyhow"), [err("upstream said no"), ok()]);
    assert_eq!(outcomes("boxed_error"), [err("boxed failure")]);
    // No Display: the Debug text.
    assert_eq!(
        outcomes("debug_only_error"),
        [err("NoDisplay { code: 503 }")]
    );
}

#[test]
fn a_panic_is_recorded_with_its_message_and_goes_on() {
    let s = session();
    let caught = std::panic::catch_unwind(|| explodes(3));
    let payload = caught.expect_err("the panic continues");
    let message = payload
        .downcast_ref::<String>()
        .expect("index panics carry a String");
    assert!(message.contains("index out of bounds"), "{message}");
    let row = s.one("explodes");
    assert_eq!(row.status, "panic");
    assert_eq!(row.error.as_deref(), Some(message.as_str()));
}

#[test]
fn nesting_and_recursion_build_one_tree() {
    let s = session();
    assert_eq!(outer(), 14);
    let root = s.one("outer");
    assert_eq!((root.parent_id, root.trace_id), (None, root.span_id));
    let middles = s.named("middle", 2);
    let inners = s.named("inner", 2);
    for (m, i) in middles.iter().zip(&inners) {
        assert_eq!(m.parent_id, Some(root.span_id));
        assert_eq!(i.parent_id, Some(m.span_id));
        assert_eq!((m.trace_id, i.trace_id), (root.span_id, root.span_id));
        assert!(i.duration_ns <= m.duration_ns && m.duration_ns <= root.duration_ns);
    }

    assert_eq!(fib(10), 55);
    let rows: Vec<_> = s.spans().into_iter().filter(|r| r.name == "fib").collect();
    assert_eq!(rows.len(), 177);
    let root = rows.iter().find(|r| r.parent_id.is_none()).unwrap();
    assert!(rows.iter().all(|r| r.trace_id == root.span_id), "one trace");
    assert_eq!(rows.iter().map(|r| depth(&rows, r)).max(), Some(9));
}

#[monitor]
fn borrowed_result(s: &str) -> Result<&str, String> {
    s.strip_prefix('#').ok_or_else(|| format!("no # in {s:?}"))
}

#[monitor]
fn result_of_impl(n: u32) -> Result<impl Iterator<Item = u32>, String> {
    if n == 0 {
        return Err("empty".into());
    }
    Ok(0..n)
}

#[test]
fn results_holding_borrows_or_impl_trait_are_observed() {
    let s = session();
    assert_eq!(borrowed_result("#tag"), Ok("tag"));
    assert!(borrowed_result("tag").is_err());
    assert_eq!(result_of_impl(3).map(Iterator::count), Ok(3));
    assert!(result_of_impl(0).is_err());
    let statuses = |name: &str| -> Vec<(String, Option<String>)> {
        s.spans()
            .into_iter()
            .filter(|r| r.name == name)
            .map(|r| (r.status, r.error))
            .collect()
    };
    assert_eq!(
        statuses("borrowed_result"),
        [
            ("ok".into(), None),
            ("error".into(), Some("no # in \"tag\"".into()))
        ]
    );
    assert_eq!(
        statuses("result_of_impl"),
        [("ok".into(), None), ("error".into(), Some("empty".into()))]
    );
}

struct Named {
    name: String,
    bytes: Vec<u8>,
}

impl Named {
    #[monitor]
    fn name(&self) -> Result<&str, String> {
        Ok(&self.name) // &String coerces to &str, as without the attribute
    }

    #[monitor]
    fn first_byte(&mut self) -> Result<&mut u8, String> {
        self.bytes.first_mut().ok_or_else(|| "empty".to_owned())
    }
}

#[monitor]
#[rustfmt::skip] // one line on purpose: the expansion must not trip `unused_braces`
fn one_line(a: u32, b: u32) -> u32 { a + b }

#[test]
fn coercions_mut_borrows_and_one_line_bodies_compile_unchanged() {
    let s = session();
    let mut named = Named {
        name: "n".into(),
        bytes: vec![1],
    };
    assert_eq!(named.name(), Ok("n"));
    *named.first_byte().unwrap() = 9;
    assert_eq!(named.bytes, [9]);
    named.bytes.clear();
    assert!(named.first_byte().is_err());
    assert_eq!(one_line(1, 2), 3);
    assert_eq!(s.one("name").status, "ok");
    let first: Vec<_> = s
        .named("first_byte", 2)
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(first, ["ok", "error"]);
    assert_eq!(s.one("one_line").status, "ok");
}

/// A type that only happens to be called `Result` (like actix's
/// `Self::Result`): no error to record, and it must compile.
mod own_result {
    use monitor_runtime::monitor;

    #[derive(Debug, PartialEq)]
    pub struct Result(pub u32);

    #[monitor]
    pub fn answer() -> Result {
        Result(42)
    }
}

#[test]
fn a_non_std_type_named_result_is_an_ordinary_value() {
    let s = session();
    assert_eq!(own_result::answer(), own_result::Result(42));
    let row = s.one("answer");
    assert_eq!((row.status.as_str(), row.error), ("ok", None));
}
