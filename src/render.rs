//! Output: tables for people, JSON for scripts, and the figures in them.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{CellAlignment, Table};
use serde_json::Value;

/// Where a command's result goes: a table or a JSON document.
pub struct Out {
    pub json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    /// Prints `json` in JSON mode, else runs `human`.
    pub fn emit(&self, json: Value, human: impl FnOnce()) {
        if self.json {
            println!("{json:#}");
        } else {
            human();
        }
    }
}

/// A table with a header; the columns from `right_from` on are numbers,
/// aligned right.
pub fn table(header: &[&str], right_from: usize) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.to_vec());
    for (i, column) in table.column_iter_mut().enumerate() {
        if i >= right_from {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// Stored text as a terminal may show it: control characters (an `ESC`
/// that would start an escape sequence, a newline that would fake a line)
/// are written as escapes (`\u{1b}`, `\n`). `--json` output stays exact.
pub fn text(stored: &str) -> String {
    if !stored.chars().any(char::is_control) {
        return stored.to_owned();
    }
    stored
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `1.25 ms`, `830 µs`, `2.41 s`.
pub fn duration(ns: i64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// `512 B`, `1.5 KiB`, `20.0 MiB`, `1.20 GiB`.
pub fn bytes(n: i64) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    if n >= K * K * K {
        format!("{:.2} GiB", n / (K * K * K))
    } else if n >= K * K {
        format!("{:.1} MiB", n / (K * K))
    } else if n >= K {
        format!("{:.1} KiB", n / K)
    } else {
        format!("{n:.0} B")
    }
}

/// `2026-11-22 04:53:03.123` (UTC).
pub fn timestamp(unix_ns: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ns))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// A bar of `width` cells, `share` (0 to 1) of it filled.
pub fn bar(share: f64, width: usize) -> String {
    let filled = ((share.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    "█".repeat(filled) + &"░".repeat(width - filled)
}

/// A sparkline of `values` squeezed to at most `width` characters, on a
/// scale from `low` to `high`.
pub fn sparkline(values: &[f64], width: usize, low: f64, high: f64) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let per_cell = values.len().div_ceil(width);
    values
        .chunks(per_cell)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .map(|v| {
            let level = if high > low {
                ((v - low) / (high - low) * 7.0).round().clamp(0.0, 7.0) as usize
            } else {
                0
            };
            LEVELS[level]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_naturally() {
        assert_eq!(text("plain ünïcode \"quoted\""), "plain ünïcode \"quoted\"");
        assert_eq!(
            text("a\u{1b}]0;owned\u{7}b\nc\td\u{9b}"),
            "a\\u{1b}]0;owned\\u{7}b\\nc\\td\\u{9b}"
        );
        assert_eq!(duration(1_250_000), "1.25 ms");
        assert_eq!(duration(830_000), "830.0 µs");
        assert_eq!(duration(2_410_000_000), "2.41 s");
        assert_eq!(duration(12), "12 ns");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(
            timestamp(1_763_787_183_123_000_000),
            "2025-11-22 04:53:03.123"
        );
        assert_eq!(bar(0.5, 10), "█████░░░░░");
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, 3.0], 4, 0.0, 3.0), "▁▃▆█");
        assert_eq!(sparkline(&[5.0; 3], 8, 5.0, 5.0), "▁▁▁");
        assert_eq!(sparkline(&[90.0; 2], 8, 0.0, 100.0), "▇▇");
    }
}
