//! Rendering captured values (`args`, `ret`, `fields`, error and panic
//! messages) into span fields, truncated to `capture.max_value_len` bytes
//! and with secrets masked ([`crate::redact`]).
//!
//! Which rendering a value gets is chosen at the macro's call site by
//! autoref specialisation: numbers, booleans and strings become JSON values,
//! slices, arrays, `Vec`s and `VecDeque`s of `Debug` values the `Debug` text
//! of their first elements, anything else with `Debug` its `Debug` text,
//! anything else its type name. Formatting stops as soon as the limit is
//! reached, so a 20 MB string or byte slice costs what its first kilobyte
//! costs. (A `Debug` impl refused further output still walks the rest of its
//! value: a struct holding a huge `Vec` costs a loop over its elements.)

use std::collections::VecDeque;
use std::fmt;

use crate::error::Error;
use crate::record::FieldValue;
use crate::redact::{Redactor, Scrub};

/// How captured text is rendered: its longest length and what is masked.
/// Generated code reads the running configuration's with
/// `__private::capture_rules()`.
#[doc(hidden)]
#[derive(Debug)]
pub struct CaptureRules {
    pub(crate) max_value_len: usize,
    pub(crate) redactor: Redactor,
}

impl CaptureRules {
    /// The rules without `init`: the default length and the built-in names.
    pub(crate) const DEFAULT: CaptureRules = CaptureRules {
        max_value_len: 1024,
        redactor: Redactor::NONE,
    };

    /// The rules `[capture]` asks for; a bad secret name or pattern names
    /// its key.
    pub(crate) fn from_config(config: &crate::config::CaptureConfig) -> Result<Self, Error> {
        let redactor = Redactor::new(&config.secret_names, &config.redact_patterns).map_err(
            |(key, message)| Error::Config {
                origin: "the configuration given to init".into(),
                key,
                message,
            },
        )?;
        Ok(CaptureRules {
            max_value_len: config.max_value_len,
            redactor,
        })
    }

    /// Whether `name` is one of the configured `capture.secret_names` (the
    /// built-in rule is checked at compile time).
    #[inline]
    pub fn is_configured_secret(&self, name: &str) -> bool {
        self.redactor.is_extra_secret(name)
    }

    /// `text` cut to the limit, with secrets masked.
    pub(crate) fn text(&self, text: &str) -> String {
        self.format(format_args!("{text}"))
    }

    /// Formats `args` into at most `max_value_len` bytes (a cut is marked
    /// with `…`), with secrets masked.
    pub(crate) fn format(&self, args: fmt::Arguments<'_>) -> String {
        self.run(|out| out.write_fmt(args))
    }

    /// Runs `write` through the scrubber into the bounded buffer, then
    /// applies the configured patterns.
    fn run(&self, write: impl FnOnce(&mut dyn fmt::Write) -> fmt::Result) -> String {
        let mut out = Bounded {
            // Most captured values are short: one allocation, not four.
            text: String::with_capacity(self.max_value_len.min(64)),
            max: self.max_value_len,
            truncated: false,
        };
        let mut scrub = Scrub::new(&mut out, &self.redactor, self.max_value_len);
        let _ = write(&mut scrub).and_then(|()| scrub.flush());
        if out.truncated {
            out.text.push('…');
        }
        self.redactor.apply_patterns(out.text)
    }

    /// A sequence's `Debug` text (`[a, b, c]`) cut at the limit, formatting
    /// no element past the cut: slice `Debug` would visit every element.
    fn seq<'a, T: fmt::Debug + 'a>(&self, items: impl IntoIterator<Item = &'a T>) -> String {
        self.run(|out| {
            out.write_char('[')?;
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.write_str(", ")?;
                }
                write!(out, "{item:?}")?;
            }
            out.write_char(']')
        })
    }
}

/// Wraps a captured value for the autoref-specialised `__monitor_*` methods.
#[doc(hidden)]
pub struct Capture<'a, T: ?Sized>(pub &'a T);

/// A `String` that refuses to grow past `max` bytes: `Display`/`Debug`
/// impls see an error and stop formatting.
struct Bounded {
    text: String,
    max: usize,
    truncated: bool,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.max - self.text.len();
        if s.len() <= room {
            self.text.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(&s[..cut]);
        self.truncated = true;
        Err(fmt::Error)
    }
}

/// Values stored as JSON scalars rather than `Debug` text.
#[doc(hidden)]
pub trait Scalar {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue;
}

macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn to_field(&self, _rules: &CaptureRules) -> FieldValue { FieldValue::from(*self) }
        }
    )*};
}
scalar!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, bool);

impl Scalar for str {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        FieldValue::Str(rules.text(self))
    }
}
impl Scalar for String {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        self.as_str().to_field(rules)
    }
}
impl<T: Scalar + ?Sized> Scalar for &T {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        (**self).to_field(rules)
    }
}
impl<T: Scalar + ?Sized> Scalar for &mut T {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        (**self).to_field(rules)
    }
}

/// Sequences whose text is cut element by element.
#[doc(hidden)]
pub trait Seq {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue;
}

impl<T: fmt::Debug> Seq for [T] {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        FieldValue::Str(rules.seq(self))
    }
}
impl<T: fmt::Debug, const N: usize> Seq for [T; N] {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        self.as_slice().to_field(rules)
    }
}
impl<T: fmt::Debug> Seq for Vec<T> {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        self.as_slice().to_field(rules)
    }
}
impl<T: fmt::Debug> Seq for VecDeque<T> {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        FieldValue::Str(rules.seq(self))
    }
}
impl<T: Seq + ?Sized> Seq for &T {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        (**self).to_field(rules)
    }
}
impl<T: Seq + ?Sized> Seq for &mut T {
    fn to_field(&self, rules: &CaptureRules) -> FieldValue {
        (**self).to_field(rules)
    }
}

/// First choice for a field: a JSON scalar.
#[doc(hidden)]
pub trait CaptureScalar {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue;
}
impl<T: Scalar + ?Sized> CaptureScalar for &&&Capture<'_, T> {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue {
        self.0.to_field(rules)
    }
}

/// Second choice for a field: a sequence's `Debug` text, cut early.
#[doc(hidden)]
pub trait CaptureSeq {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue;
}
impl<T: Seq + ?Sized> CaptureSeq for &&Capture<'_, T> {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue {
        self.0.to_field(rules)
    }
}

/// Third choice for a field: `Debug` text.
#[doc(hidden)]
pub trait CaptureDebug {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue;
}
impl<T: fmt::Debug + ?Sized> CaptureDebug for &Capture<'_, T> {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue {
        FieldValue::Str(rules.format(format_args!("{:?}", self.0)))
    }
}

/// Last resort for a field, and for an error message: the type's name.
#[doc(hidden)]
pub trait CaptureOpaque {
    fn __monitor_field(&self, rules: &CaptureRules) -> FieldValue;
    fn __monitor_message(&self, rules: &CaptureRules) -> String;
}
impl<T: ?Sized> CaptureOpaque for Capture<'_, T> {
    fn __monitor_field(&self, _rules: &CaptureRules) -> FieldValue {
        FieldValue::Str(format!("<{}>", std::any::type_name::<T>()))
    }
    fn __monitor_message(&self, _rules: &CaptureRules) -> String {
        format!("<{}>", std::any::type_name::<T>())
    }
}

/// First choice for an error message: `Display`.
#[doc(hidden)]
pub trait MessageDisplay {
    fn __monitor_message(&self, rules: &CaptureRules) -> String;
}
impl<T: fmt::Display + ?Sized> MessageDisplay for &&Capture<'_, T> {
    fn __monitor_message(&self, rules: &CaptureRules) -> String {
        rules.format(format_args!("{}", self.0))
    }
}

/// Second choice for an error message: `Debug`.
#[doc(hidden)]
pub trait MessageDebug {
    fn __monitor_message(&self, rules: &CaptureRules) -> String;
}
impl<T: fmt::Debug + ?Sized> MessageDebug for &Capture<'_, T> {
    fn __monitor_message(&self, rules: &CaptureRules) -> String {
        rules.format(format_args!("{:?}", self.0))
    }
}

#[cfg(test)]
#[allow(clippy::needless_borrow)] // the borrows pick the rendering
mod tests {
    use super::*;

    fn rules(max: usize) -> CaptureRules {
        CaptureRules {
            max_value_len: max,
            redactor: Redactor::NONE,
        }
    }

    fn bounded(max: usize, args: fmt::Arguments<'_>) -> String {
        rules(max).format(args)
    }

    #[test]
    fn long_values_are_cut_at_a_char_boundary_and_marked() {
        assert_eq!(bounded(4, format_args!("{}", "héllo")), "hél…");
        assert_eq!(bounded(5, format_args!("{}", "héllo")), "héll…");
        assert_eq!(bounded(6, format_args!("{}", "héllo")), "héllo");
        assert_eq!(bounded(0, format_args!("{}", "x")), "…");
    }

    #[test]
    fn formatting_stops_at_the_limit() {
        struct Endless;
        impl fmt::Debug for Endless {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                loop {
                    f.write_str("xxxxxxxx")?;
                }
            }
        }
        assert_eq!(
            bounded(10, format_args!("{:?}", Endless)).len(),
            10 + '…'.len_utf8()
        );
    }

    #[test]
    fn sequences_read_as_their_debug_text_and_stop_at_the_limit() {
        let v: Vec<u8> = vec![1, 2, 3];
        let slice: &[u8] = &v;
        for field in [
            (&&&&Capture(&v)).__monitor_field(&rules(64)),
            (&&&&Capture(&slice)).__monitor_field(&rules(64)),
            (&&&&Capture(&[1u8, 2, 3])).__monitor_field(&rules(64)),
            (&&&&Capture(&VecDeque::from(v.clone()))).__monitor_field(&rules(64)),
        ] {
            assert_eq!(field, FieldValue::Str(format!("{v:?}")));
        }
        let words = vec!["a\"b"; 3];
        assert_eq!(
            (&&&&Capture(&words)).__monitor_field(&rules(64)),
            FieldValue::Str(format!("{words:?}"))
        );
        // An element is never visited past the cut.
        struct Counted<'a>(&'a std::cell::Cell<usize>);
        impl fmt::Debug for Counted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.set(self.0.get() + 1);
                f.write_str("xxxx")
            }
        }
        let seen = std::cell::Cell::new(0);
        let many: Vec<Counted<'_>> = (0..100_000).map(|_| Counted(&seen)).collect();
        let field = (&&&&Capture(&many)).__monitor_field(&rules(20));
        assert_eq!(field, FieldValue::Str("[xxxx, xxxx, xxxx, x…".into()));
        assert_eq!(seen.get(), 4);
    }

    #[test]
    fn each_value_gets_the_best_rendering_it_has() {
        struct Opaque;
        #[derive(Debug)]
        struct Point {
            #[allow(dead_code)] // read through Debug
            x: i32,
        }
        let n = 42u16;
        let s = "text";
        assert_eq!(
            (&&&&Capture(&n)).__monitor_field(&rules(64)),
            FieldValue::U64(42)
        );
        assert_eq!(
            (&&&&Capture(&s)).__monitor_field(&rules(64)),
            FieldValue::Str("text".into())
        );
        assert_eq!(
            (&&&&Capture(&Point { x: 1 })).__monitor_field(&rules(64)),
            FieldValue::Str("Point { x: 1 }".into())
        );
        assert!(
            matches!((&&&&Capture(&Opaque)).__monitor_field(&rules(64)), FieldValue::Str(t) if t.contains("Opaque"))
        );
        let io = std::io::Error::other("disk full");
        assert_eq!(
            (&&&&Capture(&io)).__monitor_message(&rules(64)),
            "disk full"
        );
        assert_eq!(
            (&&&&Capture(&Point { x: 2 })).__monitor_message(&rules(64)),
            "Point { x: 2 }"
        );
    }
}
