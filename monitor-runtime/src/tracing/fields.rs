//! `tracing` fields as the capture rules store them: a span's fields, an
//! event's fields, and an event's text.

use std::fmt::{self, Write as _};

use tracing_core::field::{Field, Visit};

use crate::record::FieldValue;
use crate::span::Span;

/// Records a `tracing` span's fields into its monitor span.
pub(super) struct Fields<'a>(pub(super) &'a mut Span);

impl Fields<'_> {
    /// Text, formatted only up to `max_value_len`, secrets masked.
    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        self.0
            .__record_checked(field.name(), checked_text(field, value));
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

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.text(field, format_args!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field, format_args!("{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.record(field.name(), value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.record(field.name(), value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.record(field.name(), value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.record(field.name(), value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.text(field, format_args!("{value}"));
    }
}

/// An event's fields but its message, with the secret rule and
/// `capture.max_value_len` applied.
pub(super) struct EventFields(pub(super) Vec<(std::borrow::Cow<'static, str>, FieldValue)>);

impl EventFields {
    fn push(&mut self, field: &Field, value: FieldValue) {
        if field.name() == "message" {
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
        self.0.push((field.name().into(), value));
    }

    fn text(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if field.name() != "message" {
            self.0
                .push((field.name().into(), checked_text(field, value)));
        }
    }
}

impl Visit for EventFields {
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
