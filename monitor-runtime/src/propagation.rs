//! W3C trace context: carry a trace across processes in the `traceparent`
//! header (<https://www.w3.org/TR/trace-context/>).
//!
//! The calling side puts [`inject`] in its request; the called side reads
//! the header with [`extract`] and starts its span under it, with
//! `#[monitor(parent = ...)]` or [`Span::child_of_remote`](crate::Span::child_of_remote).
//! Both sides' spans then carry the same 128-bit trace id, and the called
//! side's span names the caller's span as its parent: written to one file
//! they are one tree, and exported over OTLP they are one trace.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use monitor_runtime::{monitor, propagation, Config};
//!
//! #[monitor]
//! fn call_service() -> Option<String> {
//!     propagation::inject() // this span's `traceparent`, for the request
//! }
//!
//! #[monitor(parent = header)]
//! fn handle(header: &str) -> Option<propagation::TraceContext> {
//!     monitor_runtime::current_span().map(|ids| ids.trace_context())
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let guard = monitor_runtime::init_with(Config::default().db_path(dir.path().join("m.db")))?;
//! let header = call_service().expect("a span is current");
//! let caller = propagation::extract(&header)?;
//! let callee = handle(&header).expect("a span is current");
//! assert_eq!(callee.trace_id, caller.trace_id);
//! assert_ne!(callee.span_id, caller.span_id);
//! # drop(guard); Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;

use crate::span::{current_span, SpanIds};

/// A span of another process, as a `traceparent` header names it: the
/// parent of the spans this process starts under it.
///
/// ```
/// use monitor_runtime::propagation::TraceContext;
///
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let context: TraceContext = header.parse().unwrap();
/// assert_eq!(context.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(context.span_id, 0x00f067aa0ba902b7);
/// assert!(context.sampled);
/// assert_eq!(context.to_string(), header);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The 128-bit trace id, never 0.
    pub trace_id: u128,
    /// The id of the span the request was made in (W3C `parent-id`),
    /// never 0.
    pub span_id: u64,
    /// The caller's `sampled` flag. `monitor` records every span whatever
    /// it says (sampling is decided at a span's end, by `sample`); it is
    /// kept so that a proxy can pass it on.
    pub sampled: bool,
}

impl TraceContext {
    /// The `traceparent` header value, version `00`.
    pub fn traceparent(&self) -> String {
        self.to_string()
    }

    /// The ids a span started under this context takes as its parent's.
    pub fn as_parent(&self) -> SpanIds {
        SpanIds {
            span_id: self.span_id,
            trace_id: self.trace_id as u64,
            trace_hi: (self.trace_id >> 64) as u64,
        }
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

impl FromStr for TraceContext {
    type Err = TraceparentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        extract(s)
    }
}

impl From<SpanIds> for TraceContext {
    /// The context a request made inside this span carries. Spans are
    /// always recorded here, so it says `sampled`.
    fn from(ids: SpanIds) -> Self {
        TraceContext {
            trace_id: ids.trace_id_128(),
            span_id: ids.span_id,
            sampled: true,
        }
    }
}

/// Why a `traceparent` value was refused. The message names the part that
/// is wrong and what the header must hold.
///
/// ```
/// let err = monitor_runtime::propagation::extract("00-abc-def-01").unwrap_err();
/// assert!(err.to_string().contains("55 characters"), "{err}");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Too short, too long for its version, or its parts not separated by
    /// `-` where they must be.
    #[error(
        "traceparent {value:?}: {problem}; expected \"00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>\" (55 characters)"
    )]
    Shape {
        /// The value, cut to 64 characters.
        value: String,
        /// What is wrong with its shape.
        problem: &'static str,
    },
    /// A part holds something other than lowercase hex digits.
    #[error("traceparent {part} {text:?} is not {len} lowercase hex digits")]
    NotHex {
        /// `version`, `trace-id`, `parent-id` or `trace-flags`.
        part: &'static str,
        /// The part as written (cut to 64 characters).
        text: String,
        /// How many digits the part has.
        len: usize,
    },
    /// Version `ff`, which the specification forbids.
    #[error("traceparent version ff is invalid")]
    InvalidVersion,
    /// An all-zero trace id or parent id, which stands for "none".
    #[error("traceparent {part} is all zeros, which the specification reserves as invalid")]
    Zero {
        /// `trace-id` or `parent-id`.
        part: &'static str,
    },
}

/// The current span's `traceparent`, for the request it is about to make;
/// `None` when no span is current (or monitoring is off).
///
/// ```
/// assert_eq!(monitor_runtime::propagation::inject(), None);
/// ```
pub fn inject() -> Option<String> {
    current_span().map(|ids| ids.trace_context().to_string())
}

/// Parses a `traceparent` header value. Whitespace around it (HTTP's
/// optional whitespace) is ignored; anything else out of the W3C format is
/// an error, never a panic. A version above `00` is read by its first four
/// parts, as the specification asks.
///
/// ```
/// use monitor_runtime::propagation::extract;
///
/// let context = extract(" 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00 ").unwrap();
/// assert!(!context.sampled);
/// assert!(extract("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_err());
/// assert!(extract("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_err());
/// ```
pub fn extract(value: &str) -> Result<TraceContext, TraceparentError> {
    let value = value.trim_matches([' ', '\t']);
    let shape = |problem| TraceparentError::Shape {
        value: cut(value),
        problem,
    };
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return Err(shape("too short"));
    }
    if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
        return Err(shape(
            "its parts are not separated by '-' at characters 3, 36 and 53",
        ));
    }
    let version = hex_part(&value[..2], "version")? as u8;
    if version == 0xff {
        return Err(TraceparentError::InvalidVersion);
    }
    if version == 0 && bytes.len() != 55 {
        return Err(shape("version 00 is exactly 55 characters"));
    }
    // A later version may add parts, after another '-'.
    if bytes.len() > 55 && bytes[55] != b'-' {
        return Err(shape("the flags are not followed by '-' or the end"));
    }
    let trace_id = hex_part(&value[3..35], "trace-id")?;
    let span_id = hex_part(&value[36..52], "parent-id")? as u64;
    let flags = hex_part(&value[53..55], "trace-flags")? as u8;
    if trace_id == 0 {
        return Err(TraceparentError::Zero { part: "trace-id" });
    }
    if span_id == 0 {
        return Err(TraceparentError::Zero { part: "parent-id" });
    }
    Ok(TraceContext {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// A part of at most 32 lowercase hex digits as a number.
fn hex_part(text: &str, part: &'static str) -> Result<u128, TraceparentError> {
    let lowercase_hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    if !text.bytes().all(|b| lowercase_hex(&b)) {
        return Err(TraceparentError::NotHex {
            part,
            text: cut(text),
            len: text.len(),
        });
    }
    // Checked above: digits only, at most 32 of them.
    u128::from_str_radix(text, 16).map_err(|_| TraceparentError::NotHex {
        part,
        text: cut(text),
        len: text.len(),
    })
}

/// At most 64 characters of untrusted input for an error message.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// What `#[monitor(parent = ...)]` accepts: a remote context, the ids of a
/// span, a `traceparent` text, an `Option` or `Result` of one, or a
/// reference to any of these. The value is only looked at, never moved,
/// so an argument named in the option is still there for the body. `None`,
/// an `Err` or a malformed text means no remote parent: the span's parent
/// is then the current span, as without the option (the W3C rule: a
/// request with a bad `traceparent` starts a trace of its own).
///
/// ```
/// use monitor_runtime::propagation::{extract, ParentSpan, TraceContext};
///
/// let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let parent = header.parent_span().unwrap();
/// assert_eq!(parent.span_id, 0x00f067aa0ba902b7);
/// assert_eq!(parent.trace_id_128(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
/// assert_eq!(extract(header).parent_span(), Some(parent));
/// assert_eq!("garbage".parent_span(), None);
/// assert_eq!(None::<TraceContext>.parent_span(), None);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name a span's parent",
    label = "expected a `TraceContext`, a `traceparent` text, `SpanIds`, or an `Option` or `Result` of one"
)]
pub trait ParentSpan {
    /// The parent's ids, if there is one.
    fn parent_span(&self) -> Option<SpanIds>;
}

impl ParentSpan for SpanIds {
    fn parent_span(&self) -> Option<SpanIds> {
        Some(*self)
    }
}

impl ParentSpan for TraceContext {
    fn parent_span(&self) -> Option<SpanIds> {
        Some(self.as_parent())
    }
}

impl ParentSpan for str {
    fn parent_span(&self) -> Option<SpanIds> {
        extract(self).ok().map(|context| context.as_parent())
    }
}

impl ParentSpan for String {
    fn parent_span(&self) -> Option<SpanIds> {
        self.as_str().parent_span()
    }
}

impl<T: ParentSpan> ParentSpan for Option<T> {
    fn parent_span(&self) -> Option<SpanIds> {
        self.as_ref().and_then(ParentSpan::parent_span)
    }
}

impl<T: ParentSpan, E> ParentSpan for Result<T, E> {
    fn parent_span(&self) -> Option<SpanIds> {
        self.as_ref().ok().and_then(ParentSpan::parent_span)
    }
}

impl<T: ParentSpan + ?Sized> ParentSpan for &T {
    fn parent_span(&self) -> Option<SpanIds> {
        (**self).parent_span()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_round_trips() {
        let context = extract(VALID).unwrap();
        assert_eq!(context.traceparent(), VALID);
        let max = TraceContext {
            trace_id: u128::MAX,
            span_id: u64::MAX,
            sampled: false,
        };
        assert_eq!(extract(&max.to_string()), Ok(max));
    }

    #[test]
    fn each_malformed_part_is_named() {
        let cases: &[(&str, &str)] = &[
            ("", "too short"),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "too short",
            ),
            (
                "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "separated",
            ),
            (
                "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version",
            ),
            (
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "version ff",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
                "exactly 55",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e473G-00f067aa0ba902b7-01",
                "trace-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
                "parent-id",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
                "trace-flags",
            ),
            (
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "trace-id is all zeros",
            ),
            (
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "parent-id is all zeros",
            ),
            (
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
                "followed by",
            ),
            (
                "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "trace-id",
            ),
        ];
        for (input, expected) in cases {
            let err = extract(input).expect_err(input).to_string();
            assert!(err.contains(expected), "{input:?}: {err}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_four_parts() {
        let later = format!("cc{}-what-comes-next", &VALID[2..]);
        let context = extract(&later).unwrap();
        assert_eq!(context, extract(VALID).unwrap());
    }

    #[test]
    fn multibyte_text_is_an_error_not_a_panic() {
        // 55 bytes whose separators fall inside a multi-byte character.
        let tricky = "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01";
        assert!(extract(tricky).is_err());
        let dashes = "é".repeat(30);
        assert!(extract(&dashes).is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_errs_without_panicking(s in "\\PC{0,80}") {
            let _ = extract(&s);
        }

        #[test]
        fn near_valid_headers_never_panic(pos in 0usize..55, byte in proptest::num::u8::ANY) {
            let mut bytes = VALID.as_bytes().to_vec();
            bytes[pos] = byte;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = extract(text);
            }
        }

        #[test]
        fn every_context_round_trips(trace in 1u128.., span in 1u64.., sampled: bool) {
            let context = TraceContext { trace_id: trace, span_id: span, sampled };
            proptest::prop_assert_eq!(extract(&context.to_string()), Ok(context));
        }
    }
}
