//! The pages' files, built into the binary: no Node at run time, no CDN,
//! and the dashboard works offline. One HTML page serves every route; its
//! script draws the route it finds.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// `(path under /assets/, content type, bytes)`.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("assets/icon.svg"),
    ),
    (
        "uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/uplot-1.6.32/uPlot.iife.min.js"),
    ),
    (
        "uplot/uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/vendor/uplot-1.6.32/uPlot.min.css"),
    ),
    (
        "uplot/LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("assets/vendor/uplot-1.6.32/LICENSE"),
    ),
];

const INDEX: &str = include_str!("assets/index.html");

/// Any page: the one HTML document.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX,
    )
        .into_response()
}

/// `/assets/<file>`.
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, bytes)) => (
            [
                (header::CONTENT_TYPE, *kind),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// `/favicon.ico`, which browsers ask for whatever the page links.
pub async fn favicon() -> Response {
    asset(Path("icon.svg".to_owned())).await
}
