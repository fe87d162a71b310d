//! W3C trace context: spans started under a remote parent keep its 128-bit
//! trace id and name it as their parent, and two processes writing one
//! file show one trace.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{monitor_ok, quiet_session, read_spans, KillOnDrop, Row};
use futures::StreamExt;
use monitor_runtime::propagation::{self, TraceContext};
use monitor_runtime::{current_span, monitor, Callsite, EnteredSpan, Span, SpanKind};

/// A context from a caller whose trace id uses all 128 bits, and whose
/// span id does not fit an `i64`.
const FOREIGN: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-f067aa0ba902b7c1-01";

fn foreign() -> TraceContext {
    propagation::extract(FOREIGN).unwrap()
}

/// Whether `row` is a child of the remote span of `context`.
fn assert_under(row: &Row, context: &TraceContext) {
    assert_eq!(row.parent_id, Some(context.span_id as i64), "{row:#?}");
    assert_eq!(row.trace_id as u64, context.trace_id as u64, "{row:#?}");
    assert_eq!(
        row.trace_hi as u64,
        (context.trace_id >> 64) as u64,
        "{row:#?}"
    );
}

#[monitor(parent = header)]
fn handle_sync(header: &str) -> Option<String> {
    nested();
    propagation::inject()
}

#[monitor]
fn nested() {}

#[monitor(parent = context)]
async fn handle_async(context: Option<TraceContext>) -> u32 {
    nested();
    7
}

/// The parser's own result, which is not `Copy`: only borrowed by the
/// option, so the body still has it.
#[monitor(parent = context)]
async fn handle_result(context: Result<TraceContext, propagation::TraceparentError>) -> bool {
    context.is_ok()
}

#[monitor(parent = context)]
fn numbers(context: TraceContext) -> impl futures::Stream<Item = u32> {
    futures::stream::iter([1, 2, 3])
}

#[test]
fn a_remote_parent_gives_its_trace_id_to_the_whole_subtree() {
    let s = quiet_session(|c| c);
    let injected = handle_sync(FOREIGN).expect("a span is current");
    let rows = s.spans();
    let handler = rows.iter().find(|r| r.name == "handle_sync").unwrap();
    let child = rows.iter().find(|r| r.name == "nested").unwrap();
    assert_under(handler, &foreign());
    assert_eq!(child.parent_id, Some(handler.span_id));
    assert_eq!(
        (child.trace_id, child.trace_hi),
        (handler.trace_id, handler.trace_hi)
    );
    // What the handler would send on: the same trace, itself as parent.
    let sent = propagation::extract(&injected).unwrap();
    assert_eq!(sent.trace_id, foreign().trace_id);
    assert_eq!(sent.span_id as i64, handler.span_id);
}

#[test]
fn no_parent_or_a_malformed_one_leaves_the_span_under_the_current_span() {
    static OUTER: Callsite = Callsite::new(
        "outer",
        module_path!(),
        module_path!(),
        file!(),
        line!(),
        SpanKind::Sync,
    );
    let s = quiet_session(|c| c);
    {
        let _outer = EnteredSpan::new(&OUTER);
        handle_sync("00-not-a-header");
        futures::executor::block_on(handle_async(None));
    }
    let rows = s.spans();
    let outer = rows.iter().find(|r| r.name == "outer").unwrap();
    for name in ["handle_sync", "handle_async"] {
        let row = rows.iter().find(|r| r.name == name).unwrap();
        assert_eq!(row.parent_id, Some(outer.span_id), "{name}");
        assert_eq!((row.trace_id, row.trace_hi), (outer.span_id, 0), "{name}");
    }
}

#[test]
fn async_fns_and_streams_take_a_remote_parent_too() {
    let s = quiet_session(|c| c);
    let context = foreign();
    assert_eq!(futures::executor::block_on(handle_async(Some(context))), 7);
    let items: Vec<u32> = futures::executor::block_on(numbers(context).collect());
    assert_eq!(items, [1, 2, 3]);
    assert!(futures::executor::block_on(handle_result(
        propagation::extract(FOREIGN)
    )));
    let rows = s.spans();
    for name in ["handle_async", "numbers", "handle_result"] {
        assert_under(rows.iter().find(|r| r.name == name).unwrap(), &context);
    }
    // `nested` ran inside the future: under the handler, in its trace.
    let handler = rows.iter().find(|r| r.name == "handle_async").unwrap();
    let child = rows.iter().find(|r| r.name == "nested").unwrap();
    assert_eq!(child.parent_id, Some(handler.span_id));
    assert_eq!(child.trace_hi, handler.trace_hi);
}

#[test]
fn child_of_remote_and_inject_by_hand() {
    static HANDLER: Callsite = Callsite::new(
        "by_hand",
        module_path!(),
        module_path!(),
        file!(),
        line!(),
        SpanKind::Async,
    );
    let s = quiet_session(|c| c);
    assert_eq!(propagation::inject(), None, "no span is current");
    let mut span = Span::child_of_remote(&HANDLER, &foreign());
    let inside = span.in_scope(|| (propagation::inject(), current_span()));
    span.end();
    let ids = inside.1.unwrap();
    assert_eq!(
        inside.0.unwrap(),
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{:016x}-01",
            ids.span_id
        )
    );
    let row = s.one("by_hand");
    assert_under(&row, &foreign());
    // `monitor tree` finds it by its whole id, as other tools print it.
    let tree = monitor_ok(
        &s.path,
        &["tree", "4bf92f3577b34da6a3ce929d0e0e4736", "--json"],
    );
    let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
    assert_eq!(tree["trace"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(tree["nodes"][0]["name"], "by_hand");
}

// ---- two processes -------------------------------------------------------

/// Set in the child process: the file both write, for the server side.
const SERVER_DB: &str = "MONITOR_TEST_PROPAGATION_SERVER_DB";

/// Service B's handler: joins the caller's trace from its header.
#[monitor(parent = traceparent.as_deref())]
async fn serve_lookup(traceparent: Option<String>, key: String) -> String {
    nested();
    format!("value of {key}")
}

/// Service A's call to B, with this span's `traceparent`.
#[monitor]
fn call_lookup(url: &str) -> Result<String, Box<ureq::Error>> {
    let header = propagation::inject().expect("a span is current");
    let response = ureq::get(url)
        .set("traceparent", &header)
        // Not kept for another request: B shuts down once it is closed.
        .set("connection", "close")
        .call()?;
    Ok(response.into_string().map_err(ureq::Error::from)?)
}

#[monitor]
fn client_request(url: &str) -> Result<String, Box<ureq::Error>> {
    call_lookup(url)
}

/// Process B: an HTTP server on loopback that answers one request, then
/// flushes and exits. It runs only when the test below starts this test
/// binary again with [`SERVER_DB`] set, and passes trivially otherwise.
#[test]
fn two_process_server_side() {
    let Some(db) = std::env::var_os(SERVER_DB) else {
        return;
    };
    use axum::http::HeaderMap;
    let guard = monitor_runtime::init_with(
        monitor_runtime::Config::default()
            .db_path(db)
            .resource_interval(std::time::Duration::ZERO),
    )
    .unwrap();
    let runtime = common::tokio_runtime();
    runtime.block_on(async {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let done = std::sync::Mutex::new(Some(done_tx));
        let done = std::sync::Arc::new(done);
        let app = axum::Router::new().route(
            "/lookup/{key}",
            axum::routing::get(
                move |headers: HeaderMap, axum::extract::Path(key): axum::extract::Path<String>| {
                    let done = done.clone();
                    async move {
                        let traceparent = headers
                            .get("traceparent")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = serve_lookup(traceparent, key).await;
                        if let Some(tx) = done.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                        body
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = done_rx.await;
            })
            .await
            .unwrap();
    });
    guard.flush();
}

#[test]
fn two_processes_writing_one_file_show_one_trace() {
    let s = quiet_session(|c| c);
    let mut server = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "two_process_server_side",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SERVER_DB, &s.path)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start process B"),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        // libtest may print the test's name on the same line first.
        .find_map(|line| {
            line.split_once("listening on ")
                .map(|(_, addr)| addr.to_owned())
        })
        .expect("process B says where it listens");
    let body = client_request(&format!("http://{addr}/lookup/k1")).expect("B answers");
    assert_eq!(body, "value of k1");
    // B answers, then flushes and exits.
    let status = server.0.wait().unwrap();
    assert!(status.success(), "process B: {status}");
    s.guard.flush();

    let rows = read_spans(&s.path);
    let by = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name}: {rows:#?}"))
    };
    let (root, call, handler, inner) = (
        by("client_request"),
        by("call_lookup"),
        by("serve_lookup"),
        by("nested"),
    );
    assert_ne!(root.pid, handler.pid, "two processes wrote the file");
    assert_eq!(call.parent_id, Some(root.span_id));
    assert_eq!(handler.parent_id, Some(call.span_id));
    assert_eq!(inner.parent_id, Some(handler.span_id));
    for row in [call, handler, inner] {
        assert_eq!((row.trace_id, row.trace_hi), (root.span_id, 0), "{row:#?}");
    }

    // `monitor tree` draws it as one tree across both processes.
    let tree = monitor_ok(&s.path, &["tree", &root.span_id.to_string(), "--json"]);
    let tree: serde_json::Value = serde_json::from_str(&tree).unwrap();
    let nodes: Vec<(String, u64, i64)> = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["depth"].as_u64().unwrap(),
                n["pid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("client_request".to_owned(), 0, root.pid),
            ("call_lookup".to_owned(), 1, root.pid),
            ("serve_lookup".to_owned(), 2, handler.pid),
            ("nested".to_owned(), 3, handler.pid),
        ]
    );

    // The dashboard's trace page reads the same four spans, both pids.
    let server = common::server::Server::start(&s.path);
    let trace = server.json(&format!("/api/trace/{}", root.span_id));
    let pids: Vec<(String, i64)> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|span| {
            (
                span["name"].as_str().unwrap().to_owned(),
                span["pid"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pids,
        [
            ("client_request".to_owned(), root.pid),
            ("call_lookup".to_owned(), root.pid),
            ("serve_lookup".to_owned(), handler.pid),
            ("nested".to_owned(), handler.pid),
        ],
        "{trace}"
    );
}
