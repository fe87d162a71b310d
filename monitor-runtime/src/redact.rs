//! Secrets inside captured text: the value after a secret-named key is
//! replaced by `***` while the text is formatted, and configured patterns
//! are replaced after.
//!
//! [`Scrub`] sits between a `Debug`/`Display` impl and the bounded buffer, so
//! it sees the text as it is written, a piece at a time, and never holds a
//! secret: the bytes of a masked value are skipped as they pass. It knows
//! the three shapes a key takes in captured text:
//! - `Debug`: `Login { user: "ann", password: "hunter2" }`, `api_key: Some("x")`,
//!   `token: Token { inner: "x" }`;
//! - JSON-ish: `{"password":"hunter2"}`, `{\"token\": \"x\"}` inside a string;
//! - `k=v`: `auth failed for token=abc123`, `?api_key=x&page=2`,
//!   `Authorization: Bearer x`.
//!
//! A quoted value keeps its quotes (`"***"`), so JSON stays JSON; a bare
//! value ends at `,` `;` `&` a closing bracket, a quote or a space (a `{` or
//! `(` after the space continues a `Debug` struct).

use std::fmt;

use regex::Regex;

use crate::secret::{eq_word, is_secret_bytes, next_word, MASK};

/// What the configuration adds to the built-in rule: more secret names
/// (`capture.secret_names`) and patterns of secret values
/// (`capture.redact_patterns`).
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    /// Each name as its lowercase words.
    extra_names: Vec<Vec<String>>,
    patterns: Vec<Regex>,
}

impl Redactor {
    /// No additions: the built-in rule only.
    pub(crate) const NONE: Redactor = Redactor {
        extra_names: Vec::new(),
        patterns: Vec::new(),
    };

    /// Compiles the configured names and patterns; a bad one is reported
    /// as `(key, message)`.
    pub(crate) fn new(names: &[String], patterns: &[String]) -> Result<Redactor, (String, String)> {
        let mut extra_names = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let words = words_of(name);
            if words.is_empty() {
                return Err((
                    format!("capture.secret_names[{i}]"),
                    format!("expected a name with at least one letter or digit, got {name:?}"),
                ));
            }
            extra_names.push(words);
        }
        let mut compiled = Vec::with_capacity(patterns.len());
        for (i, pattern) in patterns.iter().enumerate() {
            let regex = Regex::new(pattern).map_err(|err| {
                (
                    format!("capture.redact_patterns[{i}]"),
                    format!("expected a regular expression, got {pattern:?}: {err}"),
                )
            })?;
            if regex.is_match("") {
                return Err((
                    format!("capture.redact_patterns[{i}]"),
                    format!("expected a pattern that does not match empty text, got {pattern:?}"),
                ));
            }
            compiled.push(regex);
        }
        Ok(Redactor {
            extra_names,
            patterns: compiled,
        })
    }

    /// Whether `name` is secret by the built-in rule or a configured name.
    pub(crate) fn is_secret(&self, name: &str) -> bool {
        self.is_secret_bytes(name.as_bytes())
    }

    fn is_secret_bytes(&self, name: &[u8]) -> bool {
        is_secret_bytes(name) || self.is_extra_secret_bytes(name)
    }

    /// Whether `name` holds one of the configured names' word sequences
    /// (`pin` makes `user_pin` secret, not `pinned`).
    #[inline]
    pub(crate) fn is_extra_secret(&self, name: &str) -> bool {
        self.is_extra_secret_bytes(name.as_bytes())
    }

    fn is_extra_secret_bytes(&self, bytes: &[u8]) -> bool {
        if self.extra_names.is_empty() {
            return false;
        }
        let mut words = Vec::new();
        let mut at = 0;
        while let Some((start, end)) = next_word(bytes, at) {
            words.push((start, end));
            at = end;
        }
        self.extra_names.iter().any(|extra| {
            words.windows(extra.len()).any(|window| {
                window
                    .iter()
                    .zip(extra)
                    .all(|(&(start, end), word)| eq_word(bytes, start, end, word.as_bytes()))
            })
        })
    }

    /// Replaces every match of the configured patterns with `***`.
    pub(crate) fn apply_patterns(&self, text: String) -> String {
        let mut text = text;
        for pattern in &self.patterns {
            if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(&text, MASK) {
                text = replaced;
            }
        }
        text
    }
}

/// A name's words, in lowercase.
fn words_of(name: &str) -> Vec<String> {
    let bytes = name.as_bytes();
    let mut words = Vec::new();
    let mut at = 0;
    while let Some((start, end)) = next_word(bytes, at) {
        words.push(name[start..end].to_ascii_lowercase());
        at = end;
    }
    words
}

/// The longest key judged; a longer one is judged by its first bytes.
const KEY_MAX: usize = 64;

/// Bytes of small pieces gathered before they are scanned.
const STAGE: usize = 256;

/// Fillers allowed between a key and its `:` or `=` (quotes, backslashes,
/// spaces).
const FILLER_MAX: u8 = 8;

/// Where the scrubber is in the text.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Ordinary text; `key` gathers the name being written.
    Text,
    /// A name ended: waiting for its `:` or `=`, past `filler` quotes,
    /// backslashes or spaces; `quoted`: one of them was `"` (JSON's
    /// `"key":`).
    AfterKey {
        filler: u8,
        spaced: bool,
        quoted: bool,
    },
    /// After a secret key's separator: spaces, then the value.
    BeforeValue { backslash: bool, quoted_key: bool },
    /// Inside a quoted secret value, skipped to its closing quote. `escaped`:
    /// the quotes are `\"` (JSON inside a `Debug` string); `run` counts the
    /// backslashes just seen.
    Quoted { quote: u8, escaped: bool, run: u32 },
    /// An unquoted secret value, skipped to its end.
    Bare(Bare),
    /// Spaces after a bare value: a `{` or `(` continues it (`Token { .. }`),
    /// a word continues it after an auth scheme (`Bearer x`); anything else
    /// ends it and the spaces are written.
    BareSpace { spaces: u32, bare: Bare },
}

#[derive(Clone, Copy, Debug)]
struct Bare {
    depth: u32,
    /// Inside a quoted string within brackets: its quote and the backslash run.
    string: Option<(u8, u32)>,
    /// The value's first bytes, to know an auth scheme (`Bearer`).
    prefix: [u8; 8],
    prefix_len: u8,
    /// The word after a scheme is already being skipped.
    after_scheme: bool,
}

impl Bare {
    const fn new(after_scheme: bool) -> Bare {
        Bare {
            depth: 0,
            string: None,
            prefix: [0; 8],
            prefix_len: 0,
            after_scheme,
        }
    }

    /// Whether the value so far is an HTTP auth scheme, whose credentials
    /// follow after a space.
    fn is_scheme(&self) -> bool {
        let prefix = &self.prefix[..usize::from(self.prefix_len)];
        !self.after_scheme
            && [&b"bearer"[..], b"basic", b"digest", b"token"]
                .iter()
                .any(|s| prefix.eq_ignore_ascii_case(s))
    }
}

/// A byte a name is made of.
const NAME: u8 = 1;
/// A byte that may stand between a name and its separator, or be it.
const AFTER_NAME: u8 = 2;

/// The class of each byte, for the text loop.
const CLASS: [u8; 256] = {
    let mut class = [0; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.') {
            class[b] = NAME;
        } else if matches!(c, b':' | b'=' | b'"' | b'\'' | b'\\' | b' ') {
            class[b] = AFTER_NAME;
        }
        b += 1;
    }
    class
};

/// Bytes a name is made of.
#[inline]
fn is_name_byte(b: u8) -> bool {
    CLASS[usize::from(b)] & NAME != 0
}

/// Follows `"` strings through a byte written as it is: whether the text
/// is inside one, and the run of backslashes before the next byte.
#[inline]
fn follow(c: u8, in_string: &mut bool, backslashes: &mut u32) {
    if c == b'\\' {
        *backslashes += 1;
    } else {
        if c == b'"' && *backslashes % 2 == 0 {
            *in_string = !*in_string;
        }
        *backslashes = 0;
    }
}

/// A `fmt::Write` that passes text to `out`, writing `***` in place of the
/// value after a secret-named key.
pub(crate) struct Scrub<'a, W> {
    out: W,
    redactor: &'a Redactor,
    mode: Mode,
    key: [u8; KEY_MAX],
    key_len: usize,
    /// Text written but not scanned yet.
    stage: [u8; STAGE],
    staged: usize,
    /// Bytes written so far, and how many may be gathered before each
    /// piece is scanned as it comes (the output's limit).
    taken: usize,
    limit: usize,
    /// Whether the text written so far is inside a `"` string, and the
    /// backslashes just before: a key at the end of a string (`"a token:"`)
    /// is followed by the string's closing quote, not by a quoted value.
    in_string: bool,
    backslashes: u32,
}

impl<'a, W: fmt::Write> Scrub<'a, W> {
    /// A scrubber writing to `out`, which refuses text past `limit` bytes.
    pub(crate) fn new(out: W, redactor: &'a Redactor, limit: usize) -> Self {
        Scrub {
            out,
            redactor,
            mode: Mode::Text,
            key: [0; KEY_MAX],
            key_len: 0,
            stage: [0; STAGE],
            staged: 0,
            taken: 0,
            limit,
            in_string: false,
            backslashes: 0,
        }
    }

    /// Follows the strings of the text that is written as it is.
    #[inline]
    fn pass(&mut self, c: u8) {
        follow(c, &mut self.in_string, &mut self.backslashes);
    }

    /// Ordinary text from `b[i]`, where most bytes are: a tight loop that
    /// also looks past a name for its separator, and returns where a
    /// secret value starts (or the chunk ends) with the mode set.
    #[inline]
    fn text(&mut self, b: &[u8], mut i: usize) -> usize {
        // The name being written starts at `key_from` in this chunk, after
        // the `key_len` bytes of it that earlier chunks held.
        let mut key_from = None;
        let (mut in_string, mut backslashes) = (self.in_string, self.backslashes);
        while i < b.len() {
            let c = b[i];
            let class = CLASS[usize::from(c)];
            if class & NAME != 0 {
                key_from.get_or_insert(i);
                backslashes = 0;
                i += 1;
                while i < b.len() && CLASS[usize::from(b[i])] & NAME != 0 {
                    i += 1;
                }
                continue;
            }
            let has_key = key_from.is_some() || self.key_len > 0;
            if class & AFTER_NAME == 0 || !has_key {
                key_from = None;
                self.key_len = 0;
                follow(c, &mut in_string, &mut backslashes);
                i += 1;
                continue;
            }
            // After a name: quotes, backslashes, spaces, then `:` or `=`?
            let key_end = i;
            let (mut spaced, mut quoted, mut filler) = (false, false, 0);
            while i < b.len() && filler < FILLER_MAX && matches!(b[i], b'"' | b'\'' | b'\\' | b' ')
            {
                spaced |= b[i] == b' ';
                quoted |= b[i] == b'"';
                follow(b[i], &mut in_string, &mut backslashes);
                filler += 1;
                i += 1;
            }
            // The name's bytes are gathered only where it is judged.
            let gather = |this: &mut Self, key_from: &mut Option<usize>| {
                if let Some(from) = key_from.take() {
                    this.push_key(&b[from..key_end]);
                }
            };
            if i == b.len() {
                gather(self, &mut key_from);
                // The chunk ends between a name and what follows it.
                self.mode = Mode::AfterKey {
                    filler,
                    spaced,
                    quoted,
                };
                break;
            }
            let next = b[i];
            if matches!(next, b':' | b'=') {
                follow(next, &mut in_string, &mut backslashes);
                i += 1;
                gather(self, &mut key_from);
                if self.key_is_secret() {
                    self.key_len = 0;
                    self.mode = Mode::BeforeValue {
                        backslash: false,
                        quoted_key: quoted,
                    };
                    break;
                }
            } else if spaced
                && is_name_byte(next)
                && self.key_len + key_end - key_from.unwrap_or(key_end) == b"bearer".len()
                && {
                    gather(self, &mut key_from);
                    self.key_is(b"bearer")
                }
            {
                // `Bearer abc`: the scheme itself is the key.
                self.key_len = 0;
                self.mode = Mode::BeforeValue {
                    backslash: false,
                    quoted_key: false,
                };
                break;
            }
            key_from = None;
            self.key_len = 0;
        }
        if let (Some(from), Mode::Text) = (key_from, self.mode) {
            self.push_key(&b[from..]);
        }
        self.in_string = in_string;
        self.backslashes = backslashes;
        i
    }

    /// Adds the bytes of a name written in pieces (up to `KEY_MAX`).
    #[inline]
    fn push_key(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(KEY_MAX - self.key_len);
        self.key[self.key_len..self.key_len + n].copy_from_slice(&bytes[..n]);
        self.key_len += n;
    }

    fn key_is_secret(&self) -> bool {
        self.redactor.is_secret_bytes(&self.key[..self.key_len])
    }

    fn key_is(&self, word: &[u8]) -> bool {
        self.key[..self.key_len].eq_ignore_ascii_case(word)
    }
}

impl<W: fmt::Write> fmt::Write for Scrub<'_, W> {
    /// Small pieces (a `Debug` impl writes a field name, `: `, a quote, ...
    /// one call each) are gathered on the stack and scanned together.
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.taken = self.taken.saturating_add(s.len());
        if self.taken > self.limit {
            // Near the output's limit: scan at once, so the `Debug` impl
            // hears of a full buffer before it formats anything more.
            self.flush()?;
            return self.scan(s);
        }
        if s.len() <= STAGE - self.staged {
            self.stage[self.staged..self.staged + s.len()].copy_from_slice(s.as_bytes());
            self.staged += s.len();
            return Ok(());
        }
        self.flush()?;
        if s.len() > STAGE / 2 {
            return self.scan(s);
        }
        self.stage[..s.len()].copy_from_slice(s.as_bytes());
        self.staged = s.len();
        Ok(())
    }
}

impl<W: fmt::Write> Scrub<'_, W> {
    /// Scans what is gathered; call it when the text is complete.
    pub(crate) fn flush(&mut self) -> fmt::Result {
        if self.staged == 0 {
            return Ok(());
        }
        let (stage, staged) = (self.stage, self.staged);
        self.staged = 0;
        // The stage holds whole `&str` pieces, one after another.
        let text = std::str::from_utf8(&stage[..staged]).map_err(|_| fmt::Error)?;
        self.scan(text)
    }

    /// Passes `s` on, masking the values of secret keys.
    fn scan(&mut self, s: &str) -> fmt::Result {
        let b = s.as_bytes();
        // `b[from..i]` is text still to be written; it is only ever cut at
        // ASCII bytes, so at char boundaries.
        let mut from = 0;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match self.mode {
                Mode::Text => i = self.text(b, i),
                Mode::AfterKey {
                    filler,
                    spaced,
                    quoted,
                } => match c {
                    b':' | b'=' => {
                        self.mode = if self.key_is_secret() {
                            Mode::BeforeValue {
                                backslash: false,
                                quoted_key: quoted,
                            }
                        } else {
                            Mode::Text
                        };
                        self.key_len = 0;
                        self.pass(c);
                        i += 1;
                    }
                    b'"' | b'\'' | b'\\' | b' ' if filler < FILLER_MAX => {
                        self.mode = Mode::AfterKey {
                            filler: filler + 1,
                            spaced: spaced || c == b' ',
                            quoted: quoted || c == b'"',
                        };
                        self.pass(c);
                        i += 1;
                    }
                    // `Bearer abc`: the scheme itself is the key.
                    _ if spaced && is_name_byte(c) && self.key_is(b"bearer") => {
                        self.key_len = 0;
                        self.mode = Mode::BeforeValue {
                            backslash: false,
                            quoted_key: false,
                        };
                    }
                    _ => {
                        self.key_len = 0;
                        self.mode = Mode::Text;
                    }
                },
                Mode::BeforeValue {
                    backslash,
                    quoted_key,
                } => match c {
                    b' ' | b'\t' if !backslash => {
                        self.pass(c);
                        i += 1;
                    }
                    b'\\' if !backslash => {
                        self.mode = Mode::BeforeValue {
                            backslash: true,
                            quoted_key,
                        };
                        self.pass(c);
                        i += 1;
                    }
                    // `"a token:"`: the key ended a string, which this
                    // quote closes. (A JSON key is quoted itself.)
                    b'"' if !backslash && !quoted_key && self.in_string => {
                        self.pass(c);
                        self.mode = Mode::Text;
                        i += 1;
                    }
                    b'"' | b'\'' => {
                        self.out.write_str(&s[from..=i])?;
                        self.out.write_str(MASK)?;
                        self.mode = Mode::Quoted {
                            quote: c,
                            escaped: backslash,
                            run: 0,
                        };
                        i += 1;
                    }
                    _ => {
                        self.out.write_str(&s[from..i])?;
                        self.out.write_str(MASK)?;
                        self.mode = Mode::Bare(Bare::new(false));
                    }
                },
                Mode::Quoted {
                    quote,
                    escaped,
                    run,
                } => {
                    // Plain quotes close after an even run of backslashes;
                    // `\"` quotes after a run of 1, 5, ... (an escaped
                    // quote inside them is `\\\"`).
                    let closes = c == quote && if escaped { run % 4 == 1 } else { run % 2 == 0 };
                    if closes {
                        if escaped {
                            self.out.write_char('\\')?;
                        }
                        from = i;
                        self.backslashes = 0;
                        self.mode = Mode::Text;
                    } else {
                        let run = if c == b'\\' { run + 1 } else { 0 };
                        self.mode = Mode::Quoted {
                            quote,
                            escaped,
                            run,
                        };
                    }
                    i += 1;
                }
                Mode::Bare(mut bare) => {
                    if let Some((quote, run)) = bare.string {
                        bare.string = if c == quote && run % 2 == 0 {
                            None
                        } else {
                            Some((quote, if c == b'\\' { run + 1 } else { 0 }))
                        };
                        self.mode = Mode::Bare(bare);
                        i += 1;
                        continue;
                    }
                    match c {
                        b'(' | b'[' | b'{' => bare.depth += 1,
                        b')' | b']' | b'}' if bare.depth > 0 => bare.depth -= 1,
                        b'"' | b'\'' if bare.depth > 0 => bare.string = Some((c, 0)),
                        _ if bare.depth > 0 => {}
                        b' ' | b'\t' => {
                            self.mode = Mode::BareSpace { spaces: 1, bare };
                            i += 1;
                            continue;
                        }
                        b',' | b';' | b'&' | b')' | b']' | b'}' | b'"' | b'\'' | b'\\' | b'\n'
                        | b'\r' | b'<' | b'>' | b'|' => {
                            from = i;
                            self.backslashes = 0;
                            self.mode = Mode::Text;
                            continue;
                        }
                        _ => {
                            if usize::from(bare.prefix_len) < bare.prefix.len() {
                                bare.prefix[usize::from(bare.prefix_len)] = c;
                                bare.prefix_len += 1;
                            }
                        }
                    }
                    self.mode = Mode::Bare(bare);
                    i += 1;
                }
                Mode::BareSpace { spaces, bare } => match c {
                    b' ' | b'\t' => {
                        self.mode = Mode::BareSpace {
                            spaces: spaces + 1,
                            bare,
                        };
                        i += 1;
                    }
                    b'{' | b'(' => {
                        self.mode = Mode::Bare(Bare { depth: 1, ..bare });
                        i += 1;
                    }
                    _ if is_name_byte(c) && bare.is_scheme() => {
                        self.mode = Mode::Bare(Bare::new(true));
                    }
                    _ => {
                        for _ in 0..spaces {
                            self.out.write_char(' ')?;
                        }
                        from = i;
                        self.backslashes = 0;
                        self.mode = Mode::Text;
                    }
                },
            }
        }
        match self.mode {
            Mode::Text | Mode::AfterKey { .. } | Mode::BeforeValue { .. } => {
                self.out.write_str(&s[from..])
            }
            Mode::Quoted { .. } | Mode::Bare(_) | Mode::BareSpace { .. } => Ok(()),
        }
    }
}

/// `text` with secret values masked, as [`Scrub`] writes it.
#[cfg(test)]
pub(crate) fn scrub_str(text: &str, redactor: &Redactor) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    let mut scrub = Scrub::new(&mut out, redactor, usize::MAX);
    let _ = scrub.write_str(text);
    let _ = scrub.flush();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(text: &str) -> String {
        scrub_str(text, &Redactor::NONE)
    }

    #[test]
    fn debug_struct_fields() {
        assert_eq!(
            scrub(r#"Login { user: "ann", password: "hunter2" }"#),
            r#"Login { user: "ann", password: "***" }"#
        );
        assert_eq!(
            scrub(r#"Req { api_key: Some("abc"), page: 2 }"#),
            r#"Req { api_key: ***, page: 2 }"#
        );
        assert_eq!(
            scrub(r#"S { token: Token { inner: "a b", n: [1, 2] }, id: 7 }"#),
            r#"S { token: ***, id: 7 }"#
        );
        assert_eq!(
            scrub(r#"S { key: Key("a\"b)"), x: 1 }"#),
            r#"S { key: ***, x: 1 }"#
        );
        assert_eq!(
            scrub("S { pin: 1, secret: 42 }"),
            "S { pin: 1, secret: *** }"
        );
        assert_eq!(
            scrub(r#"S { keyboard: "qwerty" }"#),
            r#"S { keyboard: "qwerty" }"#
        );
    }

    #[test]
    fn json_and_escaped_json() {
        assert_eq!(
            scrub(r#"{"password":"hunter2","user":"ann"}"#),
            r#"{"password":"***","user":"ann"}"#
        );
        assert_eq!(
            scrub(r#"{"token": "a\"b", "n": 1}"#),
            r#"{"token": "***", "n": 1}"#
        );
        assert_eq!(
            scrub(r#"Body("{\"api_key\":\"abc\",\"q\":1}")"#),
            r#"Body("{\"api_key\":\"***\",\"q\":1}")"#
        );
        assert_eq!(
            scrub(r#"{"secret": {"a": [1, "}"]}, "b": 2}"#),
            r#"{"secret": ***, "b": 2}"#
        );
    }

    #[test]
    fn key_value_text() {
        assert_eq!(
            scrub("auth failed for token=abc123"),
            "auth failed for token=***"
        );
        assert_eq!(scrub("password=hunter2 user=ann"), "password=*** user=ann");
        assert_eq!(
            scrub("GET /x?api_key=abc&page=2"),
            "GET /x?api_key=***&page=2"
        );
        assert_eq!(
            scrub("Authorization: Bearer abc.def-ghi, next"),
            "Authorization: ***, next"
        );
        assert_eq!(scrub("sent Bearer abc.def now"), "sent Bearer *** now");
        assert_eq!(scrub("cookie = a1b2; path=/"), "cookie = ***; path=/");
        assert_eq!(scrub("x-api-key: k1"), "x-api-key: ***");
    }

    #[test]
    fn a_key_at_the_end_of_a_string_does_not_swallow_the_next_field() {
        assert_eq!(
            scrub(r#"R { note: "x token:", password: "hunter2" }"#),
            r#"R { note: "x token:", password: "***" }"#
        );
        assert_eq!(
            scrub(r#"R { note: "a key: ", password: "hunter2" }"#),
            r#"R { note: "a key: ", password: "***" }"#
        );
        assert_eq!(
            scrub(r#"level=warn token="abc def" next=1"#),
            r#"level=warn token="***" next=1"#
        );
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for text in [
            "hello world",
            "monkey: 3, keyboard=qwerty",
            r#"User { name: "password", role: "admin" }"#,
            "a: 1, b = 2; c",
            "tokens: 5",
            "Bearer",
            "ünïcödé key… ok",
        ] {
            assert_eq!(scrub(text), text);
        }
    }

    #[test]
    fn pieces_written_one_byte_at_a_time_give_the_same_text() {
        let text = r#"Login { user: "ann", password: "hun\"ter2", auth: Bearer x y, key: K { a: "}" } } token=abc&q=1 é"#;
        let none = Redactor::NONE;
        let whole = scrub_str(text, &none);
        let mut pieces = String::new();
        let mut scrub = Scrub::new(&mut pieces, &none, usize::MAX);
        // Straight to the scanner: the stage would gather the pieces.
        for (i, ch) in text.char_indices() {
            let _ = scrub.scan(&text[i..i + ch.len_utf8()]);
        }
        assert_eq!(pieces, whole);
        assert!(!whole.contains("hun") && !whole.contains("abc") && !whole.contains("x y"));
    }

    proptest::proptest! {
        /// `Debug` writes in pieces: wherever text is cut, the result is
        /// the same, and no text makes the scrubber panic.
        #[test]
        fn pieces_never_change_the_result(
            text in "([a-z_]{0,6}|[:= \"'\\\\,;&(){}\\[\\]]|password|token|Bearer|é|\\PC){0,40}",
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let none = Redactor::NONE;
            let whole = scrub_str(&text, &none);
            let mut at: Vec<usize> = cuts
                .into_iter()
                .map(|c| c % (text.len() + 1))
                .filter(|&c| text.is_char_boundary(c))
                .collect();
            at.push(0);
            at.push(text.len());
            at.sort_unstable();
            let mut pieces = String::new();
            let mut scrub = Scrub::new(&mut pieces, &none, usize::MAX);
            // Straight to the scanner: the stage would gather the pieces.
            for w in at.windows(2) {
                let _ = scrub.scan(&text[w[0]..w[1]]);
            }
            proptest::prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn configured_names_and_patterns() {
        let redactor = Redactor::new(
            &["pin".into(), "account_no".into()],
            &[r"\b\d{4}-\d{4}-\d{4}-\d{4}\b".into()],
        )
        .unwrap();
        assert!(redactor.is_secret("user_pin"));
        assert!(redactor.is_secret("AccountNo"));
        assert!(!redactor.is_secret("pinned"));
        assert_eq!(
            scrub_str("S { user_pin: 1234, pinned: true }", &redactor),
            "S { user_pin: ***, pinned: true }"
        );
        assert_eq!(
            redactor.apply_patterns("card 1234-5678-9012-3456 ok".into()),
            "card *** ok"
        );
        let err = Redactor::new(&[], &["(".into()]).unwrap_err();
        assert_eq!(err.0, "capture.redact_patterns[0]");
        let err = Redactor::new(&["--".into()], &[]).unwrap_err();
        assert_eq!(err.0, "capture.secret_names[0]");
        let err = Redactor::new(&[], &["x*".into()]).unwrap_err();
        assert!(err.1.contains("empty"), "{}", err.1);
    }
}
