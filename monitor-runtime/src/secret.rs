//! Which argument and field names hold secrets: one rule for `#[monitor]`
//! (which decides at compile time, so a secret is never formatted) and for
//! [`Span::record`](crate::span::Span::record) (which decides when called).

use crate::record::FieldValue;

/// What a secret's value is stored as.
const MASK: &str = "***";

/// The value stored in place of a secret.
pub fn masked() -> FieldValue {
    FieldValue::Str(MASK.to_owned())
}

/// Words that make a name secret when they stand between `_`s.
const WORDS: [&[u8]; 9] = [
    b"password",
    b"passwd",
    b"pwd",
    b"token",
    b"secret",
    b"key",
    b"apikey",
    b"credential",
    b"credentials",
];

/// Endings that make a name secret even inside a word (`apiToken`,
/// `userpassword`).
const ENDINGS: [&[u8]; 4] = [b"password", b"token", b"secret", b"key"];

/// Whether a field or argument named `name` is stored as `"***"`.
///
/// A name is secret when one of its `_`-separated words is `password`,
/// `passwd`, `pwd`, `token`, `secret`, `key`, `apikey` or `credential(s)`,
/// or when it ends in `password`, `token`, `secret` or `key`, in any case.
/// A `const fn`, so generated code decides at compile time.
///
/// ```
/// use monitor_runtime::is_secret_name;
///
/// assert!(is_secret_name("password"));
/// assert!(is_secret_name("api_key"));
/// assert!(is_secret_name("userToken"));
/// assert!(is_secret_name("_Secret_header"));
/// assert!(!is_secret_name("keyboard"));
/// assert!(!is_secret_name("user_id"));
/// ```
pub const fn is_secret_name(name: &str) -> bool {
    let name = name.as_bytes();
    let mut word_start = 0;
    let mut i = 0;
    while i <= name.len() {
        if i == name.len() || name[i] == b'_' {
            if i > word_start && is_one_of(name, word_start, i, &WORDS) {
                return true;
            }
            word_start = i + 1;
        }
        i += 1;
    }
    let mut e = 0;
    while e < ENDINGS.len() {
        let ending = ENDINGS[e];
        if name.len() >= ending.len() && eq_ignore_case(name, name.len() - ending.len(), ending) {
            return true;
        }
        e += 1;
    }
    false
}

/// Whether `name[start..end]` is one of `words`, in any case.
const fn is_one_of(name: &[u8], start: usize, end: usize, words: &[&[u8]]) -> bool {
    let mut w = 0;
    while w < words.len() {
        if words[w].len() == end - start && eq_ignore_case(name, start, words[w]) {
            return true;
        }
        w += 1;
    }
    false
}

/// Whether `name[start..start + lower.len()]` is `lower`, in any case.
const fn eq_ignore_case(name: &[u8], start: usize, lower: &[u8]) -> bool {
    let mut i = 0;
    while i < lower.len() {
        if name[start + i].to_ascii_lowercase() != lower[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::is_secret_name;

    #[test]
    fn secret_words_and_endings_in_any_case() {
        for name in [
            "password",
            "passwd",
            "pwd",
            "token",
            "secret",
            "key",
            "apikey",
            "credential",
            "credentials",
            "api_key",
            "user_token",
            "db_password_hash",
            "_secret",
            "__Token",
            "PASSWORD",
            "apiToken",
            "userpassword",
            "clientSecret",
            "sshKey",
            "x_PWD",
            "password_len",
            "key_count",
        ] {
            assert!(is_secret_name(name), "{name} should be secret");
        }
    }

    #[test]
    fn other_names_are_kept() {
        for name in [
            "",
            "_",
            "id",
            "user_id",
            "keyboard",
            "monkey_count",
            "tokens",
            "author",
            "secretary",
            "passwords",
        ] {
            assert!(!is_secret_name(name), "{name} should be kept");
        }
    }

    // `#[monitor]` calls it in a `const` block: the build fails here if it
    // stops being usable there.
    const _: () = assert!(is_secret_name("api_key") && !is_secret_name("user_id"));
}
