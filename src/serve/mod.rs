//! `monitor serve`: the dashboard. A JSON API over the read layer
//! ([`crate::query`]), the pages that draw it (`assets/`, built into the
//! binary), and `/metrics` for Prometheus. Read-only: each request opens the
//! file read-only in a snapshot of its own, so the writer is never held.

mod api;
mod assets;
mod metrics;
mod params;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::db::Db;
use crate::Failure;

/// What every handler shares: the file it reads, and its idle
/// connections.
#[derive(Clone)]
struct App {
    path: Arc<PathBuf>,
    idle: Arc<Mutex<Vec<Pooled>>>,
    /// The config's `retention.hours`: the health page says which
    /// partitions the next pass drops.
    retention_hours: i64,
}

/// An open connection between requests, with no read transaction
/// running (so it holds back no checkpoint), and the file it opened.
struct Pooled {
    db: Db,
    file: Option<FileId>,
}

/// Which file a path names now: a file moved aside and replaced (a
/// rotated corrupt file) is another file, and needs a new connection.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

impl FileId {
    #[cfg(unix)]
    fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| FileId {
            device: m.dev(),
            inode: m.ino(),
        })
    }

    /// Elsewhere every request opens the file anew.
    #[cfg(not(unix))]
    fn of(_: &Path) -> Option<FileId> {
        None
    }
}

/// Idle connections kept: one per blocking reader a busy page keeps going.
const IDLE_KEPT: usize = 4;

/// An answer of the API that is not a success: its status and the
/// message, sent as `{"error": "..."}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

/// A file that cannot be read: the CLI's message, as a server error.
impl From<Failure> for ApiError {
    fn from(Failure(message): Failure) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl App {
    /// Runs `read` on a blocking thread with a connection of its own, in
    /// one snapshot however long it takes. Connections are kept between
    /// requests: SQLite's page cache outlives a read transaction while the
    /// file does not change, and reading the file anew was most of a
    /// request's time.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let file = FileId::of(&app.path);
            let pooled = app
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .filter(|p| file.is_some() && p.file == file);
            let db = match pooled {
                Some(p) => p.db,
                None => Db::open(&app.path)?,
            };
            let result = read(&db);
            // Ends the snapshot; the next request's first read takes a new one.
            if file.is_some() && db.refresh().is_ok() {
                let mut idle = app.idle.lock().unwrap_or_else(PoisonError::into_inner);
                if idle.len() < IDLE_KEPT {
                    idle.push(Pooled { db, file });
                }
            }
            result
        })
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("the request's reader failed: {e}"),
        })?
    }
}

/// The pages forbid what a stored name or message could smuggle in: no
/// inline script or style, nothing from elsewhere, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The host names a request may be addressed to; `None`: any (the server
/// was bound to an address other machines reach, with a warning).
type AllowedHosts = Option<Arc<Vec<String>>>;

/// The names a loopback server answers to. Any other `Host` is a page
/// elsewhere that rebound its own name to 127.0.0.1 (DNS rebinding) to read
/// the file through the user's browser.
fn allowed_hosts(bound: SocketAddr) -> AllowedHosts {
    bound.ip().is_loopback().then(|| {
        let ip = match bound.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        Arc::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "[::1]".to_owned(),
            ip,
        ])
    })
}

async fn check_host(
    axum::extract::State(allowed): axum::extract::State<AllowedHosts>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let (Some(allowed), Some(host)) = (allowed, request.headers().get(header::HOST)) {
        let host = host.to_str().unwrap_or("");
        // The name without its port; an IPv6 literal keeps its brackets.
        let name = match host.rfind(':') {
            Some(colon) if !host[colon..].contains(']') => &host[..colon],
            _ => host,
        };
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(name)) {
            return ApiError {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "this server answers to {} only, not to Host `{host}`",
                    allowed.join(", ")
                ),
            }
            .into_response();
        }
    }
    next.run(request).await
}

/// The whole site over the file at `path`.
fn router(path: &Path, retention_hours: i64, hosts: AllowedHosts) -> Router {
    let app = App {
        path: Arc::new(path.to_owned()),
        idle: Arc::default(),
        retention_hours,
    };
    Router::new()
        .route("/", get(assets::page))
        .route("/traces", get(assets::page))
        .route("/trace/{id}", get(assets::page))
        .route("/fn/{name}", get(assets::page))
        .route("/resources", get(assets::page))
        .route("/health", get(assets::page))
        .route("/live", get(assets::page))
        .route("/assets/{*file}", get(assets::asset))
        .route("/favicon.ico", get(assets::favicon))
        .route("/api/summary", get(api::summary))
        .route("/api/series", get(api::series))
        .route("/api/traces", get(api::traces))
        .route("/api/trace/{id}", get(api::trace))
        .route("/api/fn/{name}", get(api::function))
        .route("/api/resources", get(api::resources))
        .route("/api/stats", get(api::stats))
        .route("/api/alerts", get(api::alerts))
        .route("/api/tail", get(api::tail))
        .route("/metrics", get(metrics::metrics))
        .fallback(|| async { ApiError::not_found("no such page") })
        .layer(axum::middleware::from_fn_with_state(hosts, check_host))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

/// What to tell a user who serves on an address other machines can reach.
fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "serving on {addr}, which other machines can reach; \
             the pages show everything the file holds (names, errors, arguments)"
        )
    })
}

/// Serves the file at `path` on `addr` until Ctrl-C; `retention_hours` is
/// the config's, shown on the health page.
pub fn run(path: &Path, addr: SocketAddr, retention_hours: i64) -> Result<(), Failure> {
    // The file is checked first: a typo in `--db` is named at once.
    drop(Db::open(path)?);
    if let Some(warning) = exposure_warning(addr) {
        eprintln!("monitor: warning: {warning}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        // The first line is the address, for people and for scripts that
        // asked for port 0.
        println!("serving {} on http://{bound}/", path.display());
        axum::serve(
            listener,
            router(path, retention_hours, allowed_hosts(bound)),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Failure(format!("the server stopped: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::{allowed_hosts, exposure_warning};

    #[test]
    fn only_an_address_beyond_loopback_is_warned_about_and_answers_any_host() {
        for loopback in ["127.0.0.1:7878", "[::1]:7878"] {
            let addr = loopback.parse().unwrap();
            assert_eq!(exposure_warning(addr), None);
            assert!(allowed_hosts(addr).is_some());
        }
        let open = "0.0.0.0:7878".parse().unwrap();
        let warning = exposure_warning(open).unwrap();
        assert!(warning.contains("0.0.0.0:7878") && warning.contains("other machines"));
        assert!(allowed_hosts(open).is_none());
        let lan = "192.168.1.20:7878".parse().unwrap();
        assert!(exposure_warning(lan).is_some());
    }
}
