//! Headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol: pages opened, waited for, read, clicked and photographed, with
//! every console error, uncaught exception and CSP report collected.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::element::Element;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{Page, ScreenshotParams};
use futures::StreamExt;

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The browser: `$CHROME`, else Debian's `/usr/bin/chromium`. `None` when
/// neither is there; with `MONITOR_REQUIRE_BROWSER=1` (set by `.ci/run`)
/// that is a failure, not a skip.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("MONITOR_REQUIRE_BROWSER").is_none(),
        "{} is missing: install Debian's chromium (apt-get install chromium) or set CHROME",
        path.display()
    );
    eprintln!(
        "SKIPPED: no browser at {} (apt-get install chromium, or set CHROME); \
         .ci/run installs it and requires these tests",
        path.display()
    );
    None
}

/// A running headless Chromium with a profile of its own.
pub struct Chromium {
    pub browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    pub async fn launch(executable: &Path) -> Chromium {
        let profile = tempfile::tempdir().unwrap();
        let config = BrowserConfig::builder()
            .chrome_executable(executable)
            .new_headless_mode()
            // Root in a container has no user namespace for the sandbox.
            .no_sandbox()
            .user_data_dir(profile.path())
            .arg("--disable-gpu")
            .window_size(1400, 1000)
            .viewport(Viewport {
                width: 1400,
                height: 1000,
                ..Viewport::default()
            })
            .launch_timeout(Duration::from_secs(60))
            .request_timeout(Duration::from_secs(30))
            .build()
            .expect("browser config");
        let (browser, mut handler) = Browser::launch(config).await.expect("launch chromium");
        // The DevTools event loop: nothing moves unless it is polled.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Chromium {
            browser,
            handler,
            _profile: profile,
        }
    }

    /// A new tab, its problems collected from before it loads anything.
    pub async fn tab(&self) -> (Page, Problems) {
        let page = self.browser.new_page("about:blank").await.unwrap();
        let problems = Problems::attach(&page).await;
        (page, problems)
    }

    pub async fn close(mut self) {
        let closed = tokio::time::timeout(Duration::from_secs(10), self.browser.close()).await;
        let waited = tokio::time::timeout(Duration::from_secs(10), self.browser.wait()).await;
        if !matches!((closed, waited), (Ok(Ok(_)), Ok(Ok(_)))) {
            let _ = self.browser.kill().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.handler).await;
    }
}

/// Console errors, uncaught exceptions and the log's errors (CSP
/// violations, failed loads) of one tab.
#[derive(Clone, Default)]
pub struct Problems(Arc<Mutex<Vec<String>>>);

impl Problems {
    async fn attach(page: &Page) -> Problems {
        let problems = Problems::default();
        let mut console = page
            .event_listener::<EventConsoleApiCalled>()
            .await
            .unwrap();
        let mut exceptions = page.event_listener::<EventExceptionThrown>().await.unwrap();
        let mut log = page.event_listener::<EventEntryAdded>().await.unwrap();
        let sink = problems.clone();
        tokio::spawn(async move {
            while let Some(event) = console.next().await {
                if matches!(
                    event.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    let text: Vec<String> = event
                        .args
                        .iter()
                        .map(|a| match &a.value {
                            Some(v) => v.to_string(),
                            None => a.description.clone().unwrap_or_default(),
                        })
                        .collect();
                    sink.push(format!("console.error: {}", text.join(" ")));
                }
            }
        });
        let sink = problems.clone();
        tokio::spawn(async move {
            while let Some(event) = exceptions.next().await {
                let details = &event.exception_details;
                let text = details
                    .exception
                    .as_ref()
                    .and_then(|e| e.description.clone())
                    .unwrap_or_else(|| details.text.clone());
                sink.push(format!("exception: {text}"));
            }
        });
        let sink = problems.clone();
        tokio::spawn(async move {
            while let Some(event) = log.next().await {
                if event.entry.level == LogEntryLevel::Error {
                    let at = event.entry.url.as_deref().unwrap_or("");
                    sink.push(format!(
                        "log {:?}: {} {at}",
                        event.entry.source, event.entry.text
                    ));
                }
            }
        });
        problems
    }

    fn push(&self, problem: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(problem);
    }

    pub fn all(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Waits until the page has drawn `path` (the app sets `data-ready` on
/// `<body>` once a route's content is in place).
pub async fn drawn(page: &Page, path: &str) {
    let selector = format!("body[data-ready=\"{path}\"]");
    element(page, &selector).await;
}

/// The first element matching `selector`, once there is one.
pub async fn element(page: &Page, selector: &str) -> Element {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match page.find_element(selector).await {
            Ok(found) => return found,
            Err(e) if Instant::now() >= deadline => {
                panic!("no {selector} after {PATIENCE:?}: {e}")
            }
            // Polled: the page fetches and draws on its own schedule.
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// The visible text of the first element matching `selector`.
pub async fn text(page: &Page, selector: &str) -> String {
    element(page, selector)
        .await
        .inner_text()
        .await
        .unwrap()
        .unwrap_or_default()
}

/// The texts of every element matching `selector`, in order.
pub async fn texts(page: &Page, selector: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for found in page.find_elements(selector).await.unwrap_or_default() {
        texts.push(found.inner_text().await.unwrap().unwrap_or_default());
    }
    texts
}

/// A PNG of what the window shows (1400×1000), saved as `name` under the test's target
/// directory, and under `$MONITOR_SCREENSHOTS` too when set (the README's
/// pictures: `MONITOR_SCREENSHOTS=docs/img`).
pub async fn screenshot(page: &Page, name: &str) -> PathBuf {
    let png = page
        .screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .full_page(false)
                .build(),
        )
        .await
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap();
    if let Some(docs) = std::env::var_os("MONITOR_SCREENSHOTS") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join(docs);
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(name), &png).unwrap();
    }
    path
}
