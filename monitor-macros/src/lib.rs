//! The `#[monitor]` attribute, re-exported by `monitor_runtime`.
//!
//! Option parsing (`attr`) and code generation (`expand`) arrive with the
//! macro issue; until then the crate only reserves its place in the data
//! flow: macro -> guard -> queue -> writer -> SQLite -> CLI.
