//! Saying something on stderr from the monitor's own threads (the writer,
//! retention, the sampler): what a program's user should see even when
//! the database cannot record it.

use std::io::Write as _;

/// Writes `monitor: <message>` on stderr without ever panicking (stderr may
/// be closed).
pub(crate) fn report(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "monitor: {message}");
}
