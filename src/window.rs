//! `--since` windows: `30s`, `15m`, `1h`, `2d`, or a sum such as `1h30m`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::Failure;

/// The Unix nanoseconds `window` ago.
pub fn since(window: &str) -> Result<u64, Failure> {
    let span = parse(window)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    Ok(now.saturating_sub(span))
}

/// The length of `window` in nanoseconds.
pub fn parse(window: &str) -> Result<u64, Failure> {
    let bad = |why: &str| {
        Failure(format!(
            "bad time window `{window}`: {why}; expected a duration such as 30s, 15m, 1h, 2d or 1h30m"
        ))
    };
    let text = window.trim();
    if text.is_empty() {
        return Err(bad("it is empty"));
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a number must come before each unit"));
        }
        let amount: u64 = rest[..digits]
            .parse()
            .map_err(|_| bad("the number is too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ns: u64 = match &rest[..unit_len] {
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "" => return Err(bad("the number has no unit")),
            _ => return Err(bad("the unit must be s, m, h or d")),
        };
        rest = &rest[unit_len..];
        total = amount
            .checked_mul(unit_ns)
            .and_then(|ns| total.checked_add(ns))
            .ok_or_else(|| bad("the window is too long"))?;
    }
    if total == 0 {
        return Err(bad("it is zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse;

    const S: u64 = 1_000_000_000;

    #[test]
    fn windows_parse_and_add_up() {
        assert_eq!(parse("30s").unwrap(), 30 * S);
        assert_eq!(parse("15m").unwrap(), 900 * S);
        assert_eq!(parse("1h30m").unwrap(), 5_400 * S);
        assert_eq!(parse(" 2d ").unwrap(), 172_800 * S);
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (input, why) in [
            ("", "it is empty"),
            ("h", "a number must come before each unit"),
            ("10", "the number has no unit"),
            ("3w", "the unit must be s, m, h or d"),
            ("-1h", "a number must come before each unit"),
            ("0m", "it is zero"),
            ("99999999999999999999d", "the number is too large"),
            ("9999999999d", "the window is too long"),
        ] {
            let message = parse(input).unwrap_err().0;
            assert!(message.contains(why), "{input}: {message}");
            assert!(message.contains(&format!("`{input}`")), "{message}");
        }
    }
}
