//! Which names hold secrets: one rule for `#[monitor]` (which decides at
//! compile time, so a secret argument is never formatted), for
//! [`Span::record`](crate::span::Span::record) (which decides when called)
//! and for the keys found inside captured text ([`crate::redact`]).

use crate::record::FieldValue;

/// What a secret's value is stored as.
pub(crate) const MASK: &str = "***";

/// The value stored in place of a secret.
pub fn masked() -> FieldValue {
    FieldValue::Static(MASK)
}

/// Words that make a name secret wherever they stand in it.
const WORDS: [&[u8]; 21] = [
    b"password",
    b"passwords",
    b"passwd",
    b"pwd",
    b"passphrase",
    b"secret",
    b"secrets",
    b"token",
    b"key",
    b"apikey",
    b"privatekey",
    b"credential",
    b"credentials",
    b"auth",
    b"authorization",
    b"bearer",
    b"cookie",
    b"cookies",
    b"sessionid",
    b"ssn",
    b"jwt",
];

/// Two words that make a name secret when they stand side by side.
const PHRASES: [(&[u8], &[u8]); 4] = [
    (b"session", b"id"),
    (b"card", b"number"),
    (b"credit", b"card"),
    (b"card", b"cvv"),
];

/// Endings that make a name secret even inside a word (`userpassword`,
/// `csrftoken`). `key` is not one: `monkey` and `turkey` are not secrets.
const ENDINGS: [&[u8]; 5] = [b"password", b"passwd", b"secret", b"token", b"apikey"];

/// Whether a field, argument or key named `name` holds a secret, whose value
/// is stored as `"***"`.
///
/// A name is split into words at `_`, `-`, `.`, spaces and case changes
/// (`apiKey` is `api` `key`, `APIKey` is `API` `Key`). It is secret, in any
/// case, when
/// - one of its words is `password`, `passwords`, `passwd`, `pwd`,
///   `passphrase`, `secret`, `secrets`, `token`, `key`, `apikey`,
///   `privatekey`, `credential`, `credentials`, `auth`, `authorization`,
///   `bearer`, `cookie`, `cookies`, `sessionid`, `ssn` or `jwt`;
/// - two of its words side by side are `session id`, `card number`,
///   `credit card` or `card cvv`;
/// - or it ends in `password`, `passwd`, `secret`, `token` or `apikey`.
///
/// `[capture] secret_names` adds names to this rule at run time. A `const
/// fn`, so generated code decides at compile time.
///
/// ```
/// use monitor_runtime::is_secret_name;
///
/// assert!(is_secret_name("password"));
/// assert!(is_secret_name("api_key"));
/// assert!(is_secret_name("userToken"));
/// assert!(is_secret_name("x-api-key"));
/// assert!(is_secret_name("session_id"));
/// assert!(is_secret_name("Authorization"));
/// assert!(!is_secret_name("keyboard"));
/// assert!(!is_secret_name("monkey"));
/// assert!(!is_secret_name("user_id"));
/// ```
pub const fn is_secret_name(name: &str) -> bool {
    is_secret_bytes(name.as_bytes())
}

/// [`is_secret_name`] for a name's bytes.
pub(crate) const fn is_secret_bytes(name: &[u8]) -> bool {
    let mut previous: Option<(usize, usize)> = None;
    let mut at = 0;
    while let Some((start, end)) = next_word(name, at) {
        if is_secret_word(name, start, end) {
            return true;
        }
        // Every phrase starts with `s` or `c`.
        if let Some((p_start, p_end)) = previous {
            let mut i = if matches!(name[p_start].to_ascii_lowercase(), b's' | b'c') {
                0
            } else {
                PHRASES.len()
            };
            while i < PHRASES.len() {
                let (first, second) = PHRASES[i];
                if eq_word(name, p_start, p_end, first) && eq_word(name, start, end, second) {
                    return true;
                }
                i += 1;
            }
        }
        previous = Some((start, end));
        at = end;
    }
    let last = match name.last() {
        Some(last) => last.to_ascii_lowercase() as usize,
        None => return false,
    };
    let mut e = 0;
    while ENDING_LASTS[last] && e < ENDINGS.len() {
        let ending = ENDINGS[e];
        if name.len() >= ending.len()
            && eq_word(name, name.len() - ending.len(), name.len(), ending)
        {
            return true;
        }
        e += 1;
    }
    false
}

/// For each first byte, the `WORDS` (as bits) that start with it.
const WORDS_BY_FIRST: [u32; 256] = {
    let mut by_first = [0; 256];
    let mut w = 0;
    while w < WORDS.len() {
        by_first[WORDS[w][0] as usize] |= 1 << w;
        w += 1;
    }
    by_first
};

/// For each length, the `WORDS` (as bits) of that length.
const WORDS_BY_LEN: [u32; 16] = {
    let mut by_len = [0; 16];
    let mut w = 0;
    while w < WORDS.len() {
        by_len[WORDS[w].len()] |= 1 << w;
        w += 1;
    }
    by_len
};

/// Whether `name[start..end]` is one of `WORDS`, in any case: only the
/// words of its length and first letter are compared (mostly none).
const fn is_secret_word(name: &[u8], start: usize, end: usize) -> bool {
    let len = end - start;
    if len >= WORDS_BY_LEN.len() {
        return false;
    }
    let mut candidates =
        WORDS_BY_FIRST[name[start].to_ascii_lowercase() as usize] & WORDS_BY_LEN[len];
    while candidates != 0 {
        if eq_word(
            name,
            start,
            end,
            WORDS[candidates.trailing_zeros() as usize],
        ) {
            return true;
        }
        candidates &= candidates - 1;
    }
    false
}

/// The last bytes of `ENDINGS`.
const ENDING_LASTS: [bool; 256] = {
    let mut lasts = [false; 256];
    let mut e = 0;
    while e < ENDINGS.len() {
        lasts[ENDINGS[e][ENDINGS[e].len() - 1] as usize] = true;
        e += 1;
    }
    lasts
};

/// Bytes that separate the words of a name.
const fn is_separator(b: u8) -> bool {
    matches!(b, b'_' | b'-' | b'.' | b' ')
}

/// The next word of `name` at or after `from`, as `(start, end)`.
pub(crate) const fn next_word(name: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut start = from;
    while start < name.len() && is_separator(name[start]) {
        start += 1;
    }
    if start == name.len() {
        return None;
    }
    let mut end = start + 1;
    while end < name.len() && !is_separator(name[end]) {
        let (before, here) = (name[end - 1], name[end]);
        // `apiKey`: a capital after a small letter or digit starts a word;
        // `APIKey`: so does the last capital of a run before a small letter.
        let camel = here.is_ascii_uppercase() && !before.is_ascii_uppercase() && before != b'_';
        let acronym_end = here.is_ascii_uppercase()
            && before.is_ascii_uppercase()
            && end + 1 < name.len()
            && name[end + 1].is_ascii_lowercase();
        if camel || acronym_end {
            break;
        }
        end += 1;
    }
    Some((start, end))
}

/// Whether `name[start..end]` is `lower`, in any case.
pub(crate) const fn eq_word(name: &[u8], start: usize, end: usize, lower: &[u8]) -> bool {
    if end - start != lower.len() {
        return false;
    }
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
    fn secret_words_phrases_and_endings_in_any_case() {
        for name in [
            "password",
            "passwords",
            "passwd",
            "pwd",
            "passphrase",
            "token",
            "secret",
            "secrets",
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
            "APIKey",
            "userpassword",
            "clientSecret",
            "sshKey",
            "x_PWD",
            "password_len",
            "key_count",
            "authorization",
            "Authorization",
            "auth",
            "x-auth-header",
            "bearer",
            "cookie",
            "set-cookie",
            "Set-Cookie",
            "session_id",
            "sessionId",
            "SESSION_ID",
            "sessionid",
            "private_key",
            "privateKey",
            "privatekey",
            "client_secret",
            "refresh_token",
            "refreshToken",
            "access_token",
            "csrftoken",
            "ssn",
            "user_ssn",
            "card_number",
            "cardNumber",
            "credit_card",
            "x-api-key",
            "X-Api-Key",
            "jwt",
            "config.db.password",
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
            "Keyboard",
            "monkey",
            "monkey_count",
            "turkey",
            "hockey_score",
            "keystone",
            "tokens",
            "max_tokens",
            "author",
            "author_id",
            "authority",
            "secretary",
            "session",
            "session_count",
            "card",
            "card_type",
            "number",
            "cookbook",
            "passage",
        ] {
            assert!(!is_secret_name(name), "{name} should be kept");
        }
    }

    // `#[monitor]` calls it in a `const` block: the build fails here if it
    // stops being usable there.
    const _: () = assert!(is_secret_name("api_key") && !is_secret_name("user_id"));
}
