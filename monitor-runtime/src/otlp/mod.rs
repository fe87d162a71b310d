//! OTLP export (feature `otlp`): the file's spans and resource samples as
//! OpenTelemetry protobuf, sent over OTLP/HTTP to any collector.
//!
//! Three parts, one job each: [`read_spans`] and [`read_samples`] read the
//! file one partition at a time; [`encode_spans`] and [`encode_samples`]
//! build the export requests (opentelemetry-proto's generated types);
//! [`Client`] posts them, gzipped, with retries. `monitor export --format
//! otlp` is these three in a loop:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use monitor_runtime::otlp::{encode_spans, read_spans, Client, ClientSettings, Outcome, ResourceSettings, Selection};
//!
//! let conn = rusqlite::Connection::open("monitor.db")?;
//! let client = Client::new(ClientSettings::new("http://localhost:4318"))?;
//! let resource = ResourceSettings::new(Some("my-service"), None);
//! let mut batch = Vec::new();
//! let mut total = Outcome::default();
//! read_spans(&conn, Selection::default(), |row| {
//!     batch.push(row);
//!     if batch.len() == 512 {
//!         total.add(&client.export_spans(&encode_spans(&batch, &resource)));
//!         batch.clear();
//!     }
//!     Ok::<_, rusqlite::Error>(())
//! })?;
//! if !batch.is_empty() {
//!     total.add(&client.export_spans(&encode_spans(&batch, &resource)));
//! }
//! println!("{} sent, {} refused", total.sent, total.refused);
//! # Ok(()) }
//! ```
//!
//! Retries: 429, 502, 503 and 504 answers and connection errors are tried
//! again, after `Retry-After` when the answer has one, else after an
//! exponential backoff with jitter, up to `max_attempts`; every other
//! error answer is a refusal, final. A [`Stop`] bounds how long a client
//! may keep a shutdown waiting.

mod client;
mod encode;
pub(crate) mod live;
pub(crate) mod rows;

pub use client::{
    parse_retry_after, signal_url, Client, ClientSettings, EndpointError, Outcome, Signal, Stop,
};
pub use encode::{
    attr, data_points, encode_samples, encode_span, encode_spans, span_id_bytes, trace_id_bytes,
    ProcessFacts, ResourceSettings, SCOPE_NAME, UNKNOWN_SERVICE,
};
pub use rows::{read_samples, read_spans, SampleRow, Selection, SpanRow};

/// The generated OTLP types (`opentelemetry_proto::tonic`) the encoder
/// builds, for callers that inspect or extend a request.
pub use opentelemetry_proto::tonic as proto;

/// The protobuf crate of [`proto`]'s types (`Message::encode_to_vec`,
/// `decode`), re-exported so a caller encodes with the same version.
pub use prost;

/// The largest `max_batch` an `[otlp]` table accepts.
pub use crate::config::otlp::MAX_BATCH_LIMIT;
