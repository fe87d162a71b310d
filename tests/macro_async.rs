//! `#[monitor]` on async code: spans start at the call, time the future's
//! run, record errors, panics and cancellation, and link parents across
//! `.await` and `tokio::spawn`.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use common::session;
use monitor_runtime::prelude::*;
use monitor_runtime::{current_span, SpanIds};

const MS: i64 = 1_000_000;

#[monitor]
async fn fetch(id: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(20)).await;
    id * 2
}

#[monitor]
async fn fetch_checked(id: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    if id == 0 {
        return Err(format!("no record {id}"));
    }
    Ok(id)
}

#[monitor]
async fn load_io(fail: bool) -> std::io::Result<()> {
    tokio::task::yield_now().await;
    if fail {
        Err(std::io::Error::other("socket closed"))?;
    }
    Ok(())
}

#[monitor]
async fn generic_len<T: AsRef<str> + Send>(value: T) -> usize {
    value.as_ref().len()
}

#[monitor]
async fn borrows<'a>(text: &'a str, other: &str) -> &'a str {
    tokio::task::yield_now().await;
    if other.is_empty() {
        text
    } else {
        &text[..1]
    }
}

#[monitor]
async fn patterns((a, b): (u32, u32), _: u8, mut total: u32) -> u32 {
    total += a + b;
    total
}

#[monitor]
async fn panics_async() -> u32 {
    tokio::task::yield_now().await;
    panic!("async failure {}", 7);
}

#[monitor]
async fn sleeps_long() {
    tokio::time::sleep(Duration::from_secs(30)).await;
}

#[monitor]
fn sync_child() -> u32 {
    1
}

#[monitor]
async fn async_child() -> u32 {
    tokio::task::yield_now().await;
    sync_child() + 1
}

#[monitor]
async fn async_parent() -> (u32, Option<SpanIds>) {
    let own = current_span();
    let a = async_child().await;
    let b = sync_child();
    (a + b, own)
}

#[monitor]
async fn spawner() -> u32 {
    let handle = tokio::spawn(async { async_child().await }.in_current_span());
    handle.await.unwrap()
}

struct Db {
    rows: Vec<u64>,
}

impl Db {
    #[monitor]
    async fn row(&self, i: usize) -> Option<u64> {
        tokio::task::yield_now().await;
        self.rows.get(i).copied()
    }

    #[monitor]
    async fn insert(&mut self, v: u64) -> usize {
        self.rows.push(v);
        self.rows.len()
    }

    #[monitor]
    async fn open() -> Self {
        Self { rows: vec![1] }
    }
}

trait Store {
    async fn load(&self, id: u64) -> Result<u64, String>;
}

impl Store for Db {
    #[monitor]
    async fn load(&self, id: u64) -> Result<u64, String> {
        self.rows
            .get(id as usize)
            .copied()
            .ok_or_else(|| format!("missing {id}"))
    }
}

#[async_trait]
trait Cache {
    async fn get(&self, key: &str) -> Result<String, String>;
}

struct Memory;

#[async_trait]
impl Cache for Memory {
    #[monitor]
    async fn get(&self, key: &str) -> Result<String, String> {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if key.is_empty() {
            return Err("empty key".to_owned());
        }
        Ok(key.to_uppercase())
    }
}

#[monitor]
fn future_tail(x: u32) -> impl Future<Output = u32> {
    async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        x + 1
    }
}

#[monitor]
fn boxed_tail(x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send>> {
    Box::pin(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if x == 0 {
            Err("zero".into())
        } else {
            Ok(x)
        }
    })
}

#[monitor]
fn ready_value(x: u32) -> impl Future<Output = u32> {
    std::future::ready(x)
}

#[test]
fn async_spans_start_at_the_call_and_count_only_polls_as_busy() {
    let s = session();
    let rt = common::tokio_runtime();
    let future = fetch(21);
    // Created now, first polled 30 ms later: the span covers both.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(rt.block_on(future), 42);
    let row = s.one("fetch");
    assert_eq!((row.kind.as_str(), row.status.as_str()), ("async", "ok"));
    assert!(
        row.duration_ns >= 50 * MS,
        "duration {} ns",
        row.duration_ns
    );
    assert!(
        row.busy_ns > 0 && row.busy_ns < row.duration_ns / 2,
        "busy {} of {}",
        row.busy_ns,
        row.duration_ns
    );
}

#[test]
fn async_functions_of_every_shape_are_recorded() {
    let s = session();
    let rt = common::tokio_runtime();
    rt.block_on(async {
        assert_eq!(generic_len("four").await, 4);
        assert_eq!(generic_len(String::from("xy")).await, 2);
        assert_eq!(borrows("hello", "").await, "hello");
        assert_eq!(borrows("hello", "x").await, "h");
        assert_eq!(patterns((1, 2), 0, 10).await, 13);
        let mut db = Db::open().await;
        assert_eq!(db.insert(5).await, 2);
        assert_eq!(db.row(1).await, Some(5));
        assert_eq!(db.load(0).await, Ok(1));
        assert_eq!(db.load(9).await, Err("missing 9".into()));
        assert_eq!(future_tail(1).await, 2);
        assert_eq!(boxed_tail(3).await, Ok(3));
        assert_eq!(boxed_tail(0).await, Err("zero".into()));
        assert_eq!(ready_value(8).await, 8);
    });
    for (name, calls) in [
        ("generic_len", 2),
        ("borrows", 2),
        ("patterns", 1),
        ("open", 1),
        ("insert", 1),
        ("row", 1),
        ("load", 2),
        ("future_tail", 1),
        ("boxed_tail", 2),
        ("ready_value", 1),
    ] {
        let rows = s.named(name, calls);
        assert!(rows.iter().all(|r| r.kind == "async"), "{name}: {rows:?}");
    }
    let load: Vec<_> = s
        .named("load", 2)
        .into_iter()
        .map(|r| (r.status, r.error))
        .collect();
    assert_eq!(
        load,
        [
            ("ok".into(), None),
            ("error".into(), Some("missing 9".into()))
        ]
    );
    let boxed: Vec<_> = s
        .named("boxed_tail", 2)
        .into_iter()
        .map(|r| (r.status, r.error))
        .collect();
    assert_eq!(
        boxed,
        [("ok".into(), None), ("error".into(), Some("zero".into()))]
    );
    // A future returned by a plain fn is timed over its run, not its construction.
    assert!(s.one("future_tail").duration_ns >= 20 * MS);
    assert!(s
        .named("boxed_tail", 2)
        .iter()
        .all(|r| r.duration_ns >= 20 * MS));
}

#[test]
fn async_trait_methods_time_the_body_not_the_boxing() {
    let s = session();
    let rt = common::tokio_runtime();
    let cache = Memory;
    assert_eq!(rt.block_on(cache.get("k")), Ok("K".into()));
    assert_eq!(rt.block_on(cache.get("")), Err("empty key".into()));
    let rows = s.named("get", 2);
    for row in &rows {
        assert_eq!(row.kind, "async");
        assert!(
            row.duration_ns >= 20 * MS,
            "the 20 ms sleep is inside the span: {}",
            row.duration_ns
        );
        assert!(row.busy_ns < row.duration_ns);
    }
    assert_eq!(
        (rows[1].status.as_str(), rows[1].error.as_deref()),
        ("error", Some("empty key"))
    );
}

#[test]
fn async_errors_panics_and_cancellation_are_outcomes() {
    let s = session();
    let rt = common::tokio_runtime();
    rt.block_on(async {
        assert!(fetch_checked(0).await.is_err());
        assert!(fetch_checked(1).await.is_ok());
        assert!(load_io(true).await.is_err());
        let timed_out = tokio::time::timeout(Duration::from_millis(10), sleeps_long()).await;
        assert!(timed_out.is_err());
    });
    let joined = rt.block_on(rt.spawn(panics_async()));
    assert!(joined.unwrap_err().is_panic(), "the panic goes on");

    let outcomes: Vec<_> = s
        .named("fetch_checked", 2)
        .into_iter()
        .map(|r| (r.status, r.error))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("error".into(), Some("no record 0".into())),
            ("ok".into(), None)
        ]
    );
    let io = s.one("load_io");
    assert_eq!(
        (io.status.as_str(), io.error.as_deref()),
        ("error", Some("socket closed"))
    );
    let cancelled = s.one("sleeps_long");
    assert_eq!(cancelled.status, "cancelled");
    assert!(cancelled.duration_ns >= 10 * MS && cancelled.duration_ns < 30_000 * MS);
    let panicked = s.one("panics_async");
    assert_eq!(
        (panicked.status.as_str(), panicked.error.as_deref()),
        ("panic", Some("async failure 7"))
    );
}

#[test]
fn parents_link_across_await_and_spawn() {
    let s = session();
    let rt = common::tokio_runtime();
    let (sum, own) = rt.block_on(async_parent());
    assert_eq!(sum, 3);
    let parent = s.one("async_parent");
    assert_eq!(
        own.map(|ids| ids.span_id as i64),
        Some(parent.span_id),
        "current_span() inside the body"
    );
    let child = s.one("async_child");
    assert_eq!(
        child.parent_id,
        Some(parent.span_id),
        "async child of async parent"
    );
    let syncs = s.named("sync_child", 2);
    let under_child = syncs
        .iter()
        .filter(|r| r.parent_id == Some(child.span_id))
        .count();
    let under_parent = syncs
        .iter()
        .filter(|r| r.parent_id == Some(parent.span_id))
        .count();
    assert_eq!(
        (under_child, under_parent),
        (1, 1),
        "sync children inside async parents"
    );
    assert!(syncs.iter().all(|r| r.trace_id == parent.span_id));

    assert_eq!(rt.block_on(spawner()), 2);
    let spawner = s.one("spawner");
    let spawned = s
        .named("async_child", 2)
        .into_iter()
        .find(|r| r.trace_id == spawner.span_id)
        .expect("linked");
    assert_eq!(
        spawned.parent_id,
        Some(spawner.span_id),
        "tokio::spawn with in_current_span"
    );
}

struct Labelled {
    label: String,
}

impl Labelled {
    #[monitor]
    async fn label(&self) -> &str {
        tokio::task::yield_now().await;
        &self.label
    }
}

#[monitor]
async fn always_panics() -> u64 {
    panic!("never polled here")
}

struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[monitor]
async fn holds(_: DropFlag, (a, _b): (u32, DropFlag)) -> u32 {
    tokio::task::yield_now().await;
    a
}

#[monitor]
fn prepares() -> impl Future<Output = u32> {
    let n = sync_child();
    async move { n + 1 }
}

#[test]
fn arguments_live_as_long_as_the_future_and_setup_is_inside_the_span() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let s = session();
    let rt = common::tokio_runtime();
    let (first, second) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let future = holds(DropFlag(first.clone()), (5, DropFlag(second.clone())));
    assert!(
        !first.load(Ordering::SeqCst) && !second.load(Ordering::SeqCst),
        "an async fn keeps `_` arguments until it ends"
    );
    assert_eq!(rt.block_on(future), 5);
    assert!(first.load(Ordering::SeqCst) && second.load(Ordering::SeqCst));

    assert_eq!(rt.block_on(prepares()), 2);
    let prepares = s.one("prepares");
    assert_eq!(
        s.one("sync_child").parent_id,
        Some(prepares.span_id),
        "work before the async block is inside the span"
    );

    let labelled = Labelled {
        label: "tag".into(),
    };
    assert_eq!(rt.block_on(labelled.label()), "tag");
    drop(always_panics()); // created, never polled
    assert_eq!(s.one("always_panics").status, "cancelled");
    assert_eq!(s.one("label").status, "ok");
}
