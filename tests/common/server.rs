//! `monitor serve` started on a free loopback port, and requests to it.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use monitor_runtime::Clock;
use serde_json::Value;

use super::requests::{real_now, requests};
use super::{session_with, Session};

/// [`requests`], starting 20 minutes ago.
pub fn recorded() -> Session {
    recorded_with_clock().0
}

/// [`recorded`], and the clock its spans read.
pub fn recorded_with_clock() -> (Session, Clock) {
    let clock = Clock::starting_at(real_now() - 20 * 60 * 1_000_000_000);
    let s = session_with(|c| c.clock(clock.clone()).resource_interval(Duration::ZERO));
    requests(&clock, &s.guard);
    (s, clock)
}

/// A running `monitor serve`; killed when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
}

impl Server {
    /// Serves `db` on 127.0.0.1 and a port of the system's choosing; returns
    /// once the server has printed where it listens.
    pub fn start(db: &Path) -> Server {
        Server::start_with(db, &[])
    }

    /// [`Server::start`] with more arguments (`--config PATH`).
    pub fn start_with(db: &Path, more: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_monitor"))
            .args([
                "serve",
                "--db",
                db.to_str().unwrap(),
                "--addr",
                "127.0.0.1:0",
            ])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start monitor serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_owned();
        Server { child, url }
    }

    /// `GET path`: the status, the response's headers (lower-case names)
    /// and its body as text.
    pub fn get(&self, path: &str) -> Response {
        let response = match ureq::get(&format!("{}{path}", self.url)).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("GET {path}: {e}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .map(|name| {
                let value = response.header(&name).unwrap_or_default().to_owned();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        let body = response.into_string().expect("a text body");
        Response {
            status,
            headers,
            body,
        }
    }

    /// `GET path`, which must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let response = self.get(path);
        assert_eq!(response.status, 200, "GET {path}: {}", response.body);
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Server {
    /// Ctrl-C (SIGINT), then the server's exit status.
    pub fn interrupt(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `error` of a JSON error answer.
    pub fn error(&self) -> String {
        let json: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{e}: not JSON: {}", self.body));
        json["error"].as_str().expect("an error message").to_owned()
    }
}
