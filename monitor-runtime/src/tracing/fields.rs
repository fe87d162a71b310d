//! `tracing` fields as the capture rules store them: a span's fields, an
//! event's fields, and an event's text.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};

use crate::record::FieldValue;
use crate::span::Span;

/// A span's or an event's fields, with the secret rule and
/// `capture.max_value_len` applied: gathered first, so that no user
/// `Debug` runs while a span's lock is held.
#[derive(Default)]
pub(super) struct Fields {
    pub(super) values: Vec<(&'static str, FieldValue)>,
    /// An event's `message` is its text, kept apart ([`Message`]).
    skip_message: bool,
}

impl Fields {
    pub(super) fn of_event() -> Fields {
        Fields {
            values: Vec::new(),
            skip_message: true,
        }
    }

    /// Records them into `span`.
    pub(super) fn apply(self, span: &mut Span) {
        for (key, value) in self.values {
            span.__record_checked(key, value);
        }
    }

    fn keeps(&self, field: &Field) -> bool {
        !(self.skip_message && field.name() == "message")
    }

    fn push(&mut self, field: &Field, value: FieldValue) {
        if !self.keeps(field) {
            return;
        }
        let value = if crate::runtime::capture_rules()
            .redactor
            .is_secret(field.name())
        {
            crate::secret::masked()
        } else {
            value
        };
        self.values.push((field.name(), value));
    }

    /// Text, formatted only up to `max_value_len`, secrets masked.
    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if self.keeps(field) {
            self.values.push((field.name(), checked_text(field, value)));
        }
    }
}

/// A field's text as the capture rules store it: masked when its name is
/// secret, else formatted up to `max_value_len` with secrets inside masked.
fn checked_text(field: &Field, value: fmt::Arguments<'_>) -> FieldValue {
    let rules = crate::runtime::capture_rules();
    if rules.redactor.is_secret(field.name()) {
        crate::secret::masked()
    } else {
        FieldValue::Str(rules.format(value))
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format_args!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, format_args!("{value}"));
    }
}

/// An event's text: its `message`, then its other fields as `name=value`.
#[derive(Default)]
pub(super) struct Message {
    pub(super) message: String,
    fields: String,
}

impl Message {
    pub(super) fn text(&self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message.clone(),
            (true, false) => self.fields.clone(),
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
            return;
        }
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        // The secret rule by name, as for fields; text values keep their
        // quotes (`Debug`), so the scrubber sees where a value ends.
        if crate::runtime::capture_rules()
            .redactor
            .is_secret(field.name())
        {
            let _ = write!(self.fields, "{}={}", field.name(), crate::secret::MASK);
        } else {
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}
