//! Quickstart: record a small workload into `monitor.db`, then summarise it
//! with `cargo run -- --db monitor.db`.
//!
//! Sync calls, an async handler on tokio with a spawned task, a stream, and
//! errors: every call becomes a row of the `spans` view, linked to its
//! parent.

use std::error::Error;
use std::time::Duration;

use futures::stream::{self, Stream, StreamExt};
use monitor_runtime::prelude::*;

#[monitor(group = "parse")]
fn parse(input: &str) -> Result<u64, std::num::ParseIntError> {
    input.trim().parse::<u64>()
}

#[monitor(group = "db", args, fields(shard = id % 4))]
fn query(id: u64, password: &str) -> u64 {
    // `password` is stored as "***" whatever `args` says.
    (0..id % 1000).map(|x| x * x).sum::<u64>() + password.len() as u64
}

#[monitor(group = "db")]
async fn fetch_remote(id: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    if id % 97 == 0 {
        return Err(format!("remote refused id {id}"));
    }
    Ok(id * 2)
}

/// One span for the whole stream: its items, and an `Err` item's message.
#[monitor(group = "db")]
fn scan(id: u64) -> impl Stream<Item = Result<u64, String>> {
    stream::iter(0..4).map(move |i| {
        if (id + i) % 499 == 0 {
            Err(format!("row {i} of {id} unreadable"))
        } else {
            Ok(i)
        }
    })
}

#[monitor(group = "http")]
async fn handle_request(input: String) -> Result<u64, String> {
    let id = parse(&input).map_err(|e| e.to_string())?;
    let local = query(id, "hunter2");
    let rows = scan(id).filter_map(|row| async { row.ok() }).count().await as u64;
    // Work handed to another task stays in this request's trace.
    let remote = tokio::spawn(fetch_remote(id).in_current_span())
        .await
        .map_err(|e| e.to_string())??;
    Ok(local + remote + rows)
}

fn main() -> Result<(), Box<dyn Error>> {
    // Reads monitor.toml / MONITOR_* when present; writes monitor.db here.
    let guard = monitor_runtime::init()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let requests = (0..2_000u64).map(|i| {
            // Every 50th request carries a malformed id.
            let input = if i % 50 == 0 {
                format!("{i}x")
            } else {
                i.to_string()
            };
            tokio::spawn(handle_request(input))
        });
        for request in requests.collect::<Vec<_>>() {
            let _ = request.await;
        }
    });

    guard.flush();
    println!(
        "wrote 2000 requests to {}",
        guard
            .db_path()
            .map_or("nothing".into(), |p| p.display().to_string())
    );
    Ok(())
}
