//! `--since` windows: `30s`, `15m`, `1h`, `2d`, or a sum such as `1h30m`.

//!
//! This file stands alone (no `crate::` imports) so that the fuzz target in
//! `fuzz/fuzz_targets/window.rs` can include it with `#[path]`; its errors are
//! the message `main` prints after `monitor: `.

use std::time::{SystemTime, UNIX_EPOCH};

/// The Unix nanoseconds `window` ago.
pub fn since(window: &str) -> Result<u64, String> {
    Ok(now_ns().saturating_sub(parse(window)?))
}

/// Unix nanoseconds now, from the system clock.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// `2h..1h` (from two hours ago to one hour ago) or `1h` (the last hour),
/// as Unix nanoseconds `[since, until)` before `now`.
pub fn range(text: &str, now: u64) -> Result<(u64, u64), String> {
    let Some((from, to)) = text.split_once("..") else {
        return Ok((now.saturating_sub(parse(text)?), now));
    };
    let (from, to) = (parse(from)?, parse(to)?);
    if from <= to {
        return Err(format!(
            "bad time range `{text}`: it must start further back than it ends, such as 2h..1h"
        ));
    }
    Ok((now.saturating_sub(from), now.saturating_sub(to)))
}

/// The length of `window` in nanoseconds.
pub fn parse(window: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "bad time window `{window}`: {why}; expected a duration such as 30s, 15m, 1h, 2d or 1h30m"
        )
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
            let message = parse(input).unwrap_err();
            assert!(message.contains(why), "{input}: {message}");
            assert!(message.contains(&format!("`{input}`")), "{message}");
        }
    }

    #[test]
    fn ranges_are_how_long_ago_they_start_and_end() {
        use super::range;
        let now = 100 * 3_600 * S;
        assert_eq!(
            range("2h..1h", now).unwrap(),
            (now - 7_200 * S, now - 3_600 * S)
        );
        assert_eq!(range("30m", now).unwrap(), (now - 1_800 * S, now));
        let message = range("1h..2h", now).unwrap_err();
        assert!(
            message.contains("`1h..2h`") && message.contains("2h..1h"),
            "{message}"
        );
        assert!(range("1h..", now).unwrap_err().contains("it is empty"));
        assert!(range("x..1h", now).unwrap_err().contains("`x`"));
    }

    mod props {
        use proptest::prelude::*;

        use super::{parse, S};

        /// A unit letter and its length in nanoseconds.
        fn unit() -> impl Strategy<Value = (char, u64)> {
            prop_oneof![
                Just(('s', S)),
                Just(('m', 60 * S)),
                Just(('h', 3_600 * S)),
                Just(('d', 86_400 * S)),
            ]
        }

        /// Small amounts, amounts near the overflow edge and any `u64`.
        fn amount() -> impl Strategy<Value = u64> {
            prop_oneof![
                4 => 0u64..1_000,
                1 => (u64::MAX / (86_400 * S))..=(u64::MAX / S),
                1 => any::<u64>(),
            ]
        }

        /// Text made of what windows are made of, and some of what they are not.
        fn window_like() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    6 => "[0-9]{1,4}",
                    1 => "[0-9]{18,22}",
                    4 => "[smhd]",
                    1 => "[a-zA-Z]{1,3}",
                    1 => "[ \\t\\n+\\-.,:_]",
                    1 => "\\PC",
                ],
                0..10,
            )
            .prop_map(|parts| parts.concat())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1_000))]

            /// Whatever is typed after `--since`, the answer is a length or a
            /// message quoting the input, never a crash, never zero.
            #[test]
            fn any_input_gives_a_positive_length_or_a_message_quoting_it(
                input in prop_oneof![window_like(), any::<String>()],
            ) {
                match parse(&input) {
                    Ok(ns) => prop_assert!(ns > 0, "{input:?} parsed to 0"),
                    Err(message) => {
                        prop_assert!(message.starts_with("bad time window `"), "{message}");
                        prop_assert!(message.contains(&format!("`{input}`")), "{message}");
                    }
                }
            }

            /// `1h30m`, `2d2d`, ` 007s `: a window is the exact sum of its
            /// parts, in any order, repeated units included, with leading
            /// zeros and surrounding spaces; a sum past `u64` nanoseconds is
            /// "too long" and a sum of zeros is "zero".
            #[test]
            fn a_sum_of_amounts_and_units_is_the_exact_sum_in_nanoseconds(
                parts in proptest::collection::vec((amount(), unit(), 0usize..3), 1..6),
                pad in ("[ \\t]{0,2}", "[ \\t\\n]{0,2}"),
            ) {
                let body: String = parts
                    .iter()
                    .map(|(amount, (letter, _), zeros)| format!("{}{amount}{letter}", "0".repeat(*zeros)))
                    .collect();
                let input = format!("{}{body}{}", pad.0, pad.1);
                let sum = parts.iter().try_fold(0u64, |total, (amount, (_, ns), _)| {
                    amount.checked_mul(*ns).and_then(|part| total.checked_add(part))
                });
                match (sum, parse(&input)) {
                    (Some(0), Err(message)) => prop_assert!(message.contains("it is zero"), "{message}"),
                    (Some(expected), Ok(ns)) => prop_assert_eq!(ns, expected, "{:?}", input),
                    (None, Err(message)) => {
                        prop_assert!(message.contains("the window is too long"), "{message}")
                    }
                    (expected, got) => prop_assert!(false, "{input:?}: expected {expected:?}, got {got:?}"),
                }
            }
        }
    }
}
