//! A `/healthz` route for the program's own probes: 200 with the writer's
//! health as JSON while it stores what the program records, 503 otherwise
//! (spilling, failed, disabled).
//!
//! ```text
//! cargo run --example healthz             # serve, ask /healthz once, print the answer, exit
//! cargo run --example healthz -- --serve  # serve on 127.0.0.1:3000 until Ctrl-C
//! ```

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use monitor_runtime::{monitor, Health, HealthProbe};

/// `guard.health()` through a probe the router owns: a few atomic loads per
/// request.
async fn healthz(State(probe): State<HealthProbe>) -> (StatusCode, Json<Health>) {
    let health = probe.health();
    let status = if health.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

#[monitor]
async fn hello() -> &'static str {
    "hello\n"
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let guard = monitor_runtime::init()?; // monitor.toml / MONITOR_* / monitor.db
    let app = Router::new()
        .route("/", get(hello))
        .route("/healthz", get(healthz))
        .with_state(guard.health_probe());

    let serve = std::env::args().any(|a| a == "--serve");
    let listener = tokio::net::TcpListener::bind(if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    })
    .await?;
    let url = format!("http://{}/healthz", listener.local_addr()?);
    if serve {
        println!("{url} (Ctrl-C to stop)");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
    } else {
        tokio::spawn(async move { axum::serve(listener, app).await });
        let answer = tokio::task::spawn_blocking(move || match ureq::get(&url).call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => {
                Ok((response.status(), response.into_string()?))
            }
            Err(e) => Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
        })
        .await??;
        println!("{} {}", answer.0, answer.1);
    }
    // Not a drop: the writer drains on its own thread, not this runtime's.
    guard.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
