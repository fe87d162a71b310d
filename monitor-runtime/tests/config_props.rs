//! Properties of `monitor.toml` and the `MONITOR_*` overrides, over generated
//! input: whatever a user writes, parsing never crashes; a file of valid
//! values gives back exactly those values; a bad value or an unknown key is an
//! error naming that dotted key (`queue.capacity`) in its message.

use std::path::PathBuf;

use monitor_runtime::{Config, Error, Overflow};
use proptest::prelude::*;

const CASES: u32 = 512;

// ---------------------------------------------------------------------------
// Writing TOML the many ways a user can.

/// A TOML string: basic (`"..."`, escaped) or, when it can be, literal (`'...'`).
fn toml_string(text: &str, literal: bool) -> String {
    if literal && !text.chars().any(|c| c == '\'' || c.is_control()) {
        return format!("'{text}'");
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How an integer is spelt: `1000`, `1_000`, `0x3e8`, `+1000`.
#[derive(Clone, Copy, Debug)]
enum IntStyle {
    Plain,
    Grouped,
    Hex,
    Plus,
}

fn int_style() -> impl Strategy<Value = IntStyle> {
    prop_oneof![
        Just(IntStyle::Plain),
        Just(IntStyle::Grouped),
        Just(IntStyle::Hex),
        Just(IntStyle::Plus),
    ]
}

fn toml_int(n: i64, style: IntStyle) -> String {
    match style {
        IntStyle::Hex if n >= 0 => format!("0x{n:x}"),
        IntStyle::Plus if n >= 0 => format!("+{n}"),
        IntStyle::Grouped => {
            let digits = n.unsigned_abs().to_string();
            let mut grouped = String::new();
            for (i, digit) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push('_');
                }
                grouped.push(digit);
            }
            if n < 0 {
                format!("-{grouped}")
            } else {
                grouped
            }
        }
        _ => n.to_string(),
    }
}

/// One `key = value` line, in table `table` (`""` is the top level).
#[derive(Clone, Debug)]
struct Entry {
    table: String,
    key: String,
    literal: String,
}

fn entry(table: &str, key: &str, literal: String) -> Entry {
    Entry {
        table: table.to_owned(),
        key: key.to_owned(),
        literal,
    }
}

fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        toml_string(key, false)
    }
}

/// How a table is written: `[queue]` then its lines, `queue.capacity = 1` at
/// the top, or `queue = { capacity = 1 }`.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Section,
    Dotted,
    Inline,
}

fn layouts() -> impl Strategy<Value = Vec<Layout>> {
    proptest::collection::vec(
        prop_oneof![
            3 => Just(Layout::Section),
            1 => Just(Layout::Dotted),
            1 => Just(Layout::Inline),
        ],
        4,
    )
}

fn render(entries: &[Entry], layouts: &[Layout]) -> String {
    let mut tables: Vec<&str> = Vec::new();
    for e in entries {
        if !e.table.is_empty() && !tables.contains(&e.table.as_str()) {
            tables.push(&e.table);
        }
    }
    let line = |e: &Entry| format!("{} = {}", toml_key(&e.key), e.literal);
    let mut top: Vec<String> = entries
        .iter()
        .filter(|e| e.table.is_empty())
        .map(line)
        .collect();
    let mut sections = Vec::new();
    for (i, table) in tables.iter().enumerate() {
        let lines: Vec<String> = entries
            .iter()
            .filter(|e| e.table == *table)
            .map(line)
            .collect();
        match layouts[i % layouts.len()] {
            Layout::Section => {
                sections.push(format!("[{}]\n{}", toml_key(table), lines.join("\n")))
            }
            Layout::Dotted => top.extend(lines.iter().map(|l| format!("{}.{l}", toml_key(table)))),
            Layout::Inline => top.push(format!("{} = {{ {} }}", toml_key(table), lines.join(", "))),
        }
    }
    top.extend(sections);
    top.join("\n") + "\n"
}

// ---------------------------------------------------------------------------
// Valid files.

/// The documented keys, each set or left to its default.
#[derive(Clone, Debug)]
struct File {
    db_path: Option<String>,
    enabled: Option<bool>,
    capacity: Option<i64>,
    overflow: Option<Overflow>,
    flush_interval_ms: Option<i64>,
    hours: Option<i64>,
    cleanup_interval_secs: Option<i64>,
    archive_dir: Option<String>,
    vacuum: Option<bool>,
    interval_ms: Option<i64>,
    thread_cpu: Option<bool>,
    max_value_len: Option<i64>,
}

/// Small numbers mostly, any up to the TOML maximum too.
fn count(min: i64) -> impl Strategy<Value = i64> {
    prop_oneof![3 => min..1_000, 1 => min..=i64::MAX]
}

fn set<T: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(0.7, value)
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z0-9_/.-]{1,24}", "\\PC{1,16}", any::<String>()]
}

fn overflow() -> impl Strategy<Value = Overflow> {
    prop_oneof![Just(Overflow::Drop), Just(Overflow::Block)]
}

fn valid_file() -> impl Strategy<Value = File> {
    (
        (
            set(path().prop_filter("db_path is non-empty", |p| !p.is_empty())),
            set(any::<bool>()),
        ),
        (set(count(0)), set(overflow()), set(count(1))),
        (
            set(count(1)),
            set(count(1)),
            set(path()),
            set(any::<bool>()),
        ),
        (set(count(0)), set(any::<bool>()), set(count(0))),
    )
        .prop_map(
            |(
                (db_path, enabled),
                (capacity, overflow, flush_interval_ms),
                (hours, cleanup_interval_secs, archive_dir, vacuum),
                (interval_ms, thread_cpu, max_value_len),
            )| File {
                db_path,
                enabled,
                capacity,
                overflow,
                flush_interval_ms,
                hours,
                cleanup_interval_secs,
                archive_dir,
                vacuum,
                interval_ms,
                thread_cpu,
                max_value_len,
            },
        )
}

/// Every set key as a TOML line; `(ints, strings)` choose the spellings.
fn entries(file: &File, ints: IntStyle, literal: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let string = |s: &String| toml_string(s, literal);
    let int = |n: &i64| toml_int(*n, ints);
    let overflow = |o: &Overflow| match o {
        Overflow::Drop => "\"drop\"".to_owned(),
        Overflow::Block => "'block'".to_owned(),
    };
    let mut push = |table: &str, key: &str, value: Option<String>| {
        if let Some(literal) = value {
            out.push(entry(table, key, literal));
        }
    };
    push("", "db_path", file.db_path.as_ref().map(string));
    push("", "enabled", file.enabled.map(|b| b.to_string()));
    push("queue", "capacity", file.capacity.as_ref().map(int));
    push("queue", "overflow", file.overflow.as_ref().map(overflow));
    push(
        "queue",
        "flush_interval_ms",
        file.flush_interval_ms.as_ref().map(int),
    );
    push("retention", "hours", file.hours.as_ref().map(int));
    push(
        "retention",
        "cleanup_interval_secs",
        file.cleanup_interval_secs.as_ref().map(int),
    );
    push(
        "retention",
        "archive_dir",
        file.archive_dir.as_ref().map(string),
    );
    push("retention", "vacuum", file.vacuum.map(|b| b.to_string()));
    push(
        "resources",
        "interval_ms",
        file.interval_ms.as_ref().map(int),
    );
    push(
        "resources",
        "thread_cpu",
        file.thread_cpu.map(|b| b.to_string()),
    );
    push(
        "capture",
        "max_value_len",
        file.max_value_len.as_ref().map(int),
    );
    out
}

fn assert_parsed_as(config: &Config, file: &File) -> Result<(), TestCaseError> {
    let d = Config::default();
    let n = |v: Option<i64>| v.map(|n| n as u64);
    prop_assert_eq!(
        &config.db_path,
        &file.db_path.as_ref().map_or(d.db_path, PathBuf::from)
    );
    prop_assert_eq!(config.enabled, file.enabled.unwrap_or(d.enabled));
    prop_assert_eq!(
        config.queue.capacity as u64,
        n(file.capacity).unwrap_or(d.queue.capacity as u64)
    );
    prop_assert_eq!(
        config.queue.overflow,
        file.overflow.unwrap_or(d.queue.overflow)
    );
    prop_assert_eq!(
        config.queue.flush_interval_ms,
        n(file.flush_interval_ms).unwrap_or(d.queue.flush_interval_ms)
    );
    prop_assert_eq!(
        config.retention.hours,
        file.hours.unwrap_or(d.retention.hours)
    );
    prop_assert_eq!(
        config.retention.cleanup_interval_secs,
        n(file.cleanup_interval_secs).unwrap_or(d.retention.cleanup_interval_secs)
    );
    prop_assert_eq!(
        &config.retention.archive_dir,
        &file
            .archive_dir
            .as_ref()
            .map_or(d.retention.archive_dir, PathBuf::from)
    );
    prop_assert_eq!(
        config.retention.vacuum,
        file.vacuum.unwrap_or(d.retention.vacuum)
    );
    prop_assert_eq!(
        config.resources.interval_ms,
        n(file.interval_ms).unwrap_or(d.resources.interval_ms)
    );
    prop_assert_eq!(
        config.resources.thread_cpu,
        file.thread_cpu.unwrap_or(d.resources.thread_cpu)
    );
    prop_assert_eq!(
        config.capture.max_value_len as u64,
        n(file.max_value_len).unwrap_or(d.capture.max_value_len as u64)
    );
    Ok(())
}

/// The error is a configuration error for exactly `expected`, and says so.
fn assert_names_key(
    result: Result<Config, Error>,
    expected: &str,
    text: &str,
) -> Result<(), TestCaseError> {
    match result {
        Err(err @ Error::Config { .. }) => {
            let shown = err.to_string();
            let Error::Config { key, .. } = err else {
                unreachable!()
            };
            prop_assert_eq!(&key, expected, "{}\n--- file:\n{}", shown, text);
            prop_assert!(shown.contains(&format!("`{expected}`")), "{shown}");
        }
        other => prop_assert!(
            false,
            "expected an error naming {expected}, got {other:?}\n--- file:\n{text}"
        ),
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Bad values, one documented key at a time.

const DATETIME: &str = "1979-05-27T07:32:00Z";

fn not_an_integer() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>().prop_map(|s| toml_string(&s, false)),
        any::<bool>().prop_map(|b| b.to_string()),
        (-1e12f64..1e12).prop_map(|f| format!("{f:?}")),
        Just("inf".to_owned()),
        Just("nan".to_owned()),
        Just(DATETIME.to_owned()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
    ]
    .boxed()
}

fn not_a_bool() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "true|false|yes|no|on|off|1|0|\\PC{0,8}".prop_map(|s| toml_string(&s, false)),
        Just("1.0".to_owned()),
        Just(DATETIME.to_owned()),
        Just("[true]".to_owned()),
        Just("{}".to_owned()),
    ]
    .boxed()
}

fn not_a_path() -> BoxedStrategy<String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("2.5".to_owned()),
        Just(DATETIME.to_owned()),
        Just("[\"a\"]".to_owned()),
        Just("{ path = \"a\" }".to_owned()),
    ]
    .boxed()
}

/// An integer below `min`, or not an integer at all.
fn below(min: i64) -> BoxedStrategy<String> {
    prop_oneof![
        (i64::MIN..min, int_style()).prop_map(|(n, style)| toml_int(n, style)),
        not_an_integer(),
    ]
    .boxed()
}

/// A documented dotted key and a value it refuses.
fn bad_value() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        prop_oneof![
            Just(toml_string("", false)),
            Just("''".to_owned()),
            not_a_path()
        ]
        .prop_map(|v| ("db_path", v)),
        not_a_bool().prop_map(|v| ("enabled", v)),
        below(0).prop_map(|v| ("queue.capacity", v)),
        prop_oneof![
            "\\PC{0,8}"
                .prop_filter("not a valid overflow", |s| s != "drop" && s != "block")
                .prop_map(|s| toml_string(&s, false)),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
        ]
        .prop_map(|v| ("queue.overflow", v)),
        below(1).prop_map(|v| ("queue.flush_interval_ms", v)),
        below(1).prop_map(|v| ("retention.hours", v)),
        below(1).prop_map(|v| ("retention.cleanup_interval_secs", v)),
        not_a_path().prop_map(|v| ("retention.archive_dir", v)),
        not_a_bool().prop_map(|v| ("retention.vacuum", v)),
        below(0).prop_map(|v| ("resources.interval_ms", v)),
        not_a_bool().prop_map(|v| ("resources.thread_cpu", v)),
        below(0).prop_map(|v| ("capture.max_value_len", v)),
    ]
}

/// `(table, key)` of a dotted key.
fn split(dotted: &str) -> (&str, &str) {
    dotted.rsplit_once('.').unwrap_or(("", dotted))
}

// ---------------------------------------------------------------------------
// Unknown keys.

const TOP_KEYS: &[&str] = &[
    "db_path",
    "enabled",
    "file_mode",
    "on_corrupt",
    "busy_timeout_ms",
    "shutdown_timeout_ms",
    "queue",
    "retention",
    "resources",
    "capture",
];

fn known_in(table: &str) -> &'static [&'static str] {
    match table {
        "" => TOP_KEYS,
        "queue" => &["capacity", "max_bytes", "overflow", "flush_interval_ms"],
        "retention" => &["hours", "cleanup_interval_secs", "archive_dir", "vacuum"],
        "resources" => &["interval_ms", "thread_cpu"],
        "capture" => &["max_value_len", "secret_names", "redact_patterns"],
        _ => &[],
    }
}

/// A key name: bare (`capcity`) or quoted (`"queue size"`), never empty.
fn key_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z_][A-Za-z0-9_-]{0,11}",
        1 => "\\PC{1,8}",
    ]
}

/// A table (`""`: the top level) and a key it does not know.
fn unknown_key() -> impl Strategy<Value = (String, String)> {
    (
        prop_oneof![
            Just(""),
            Just("queue"),
            Just("retention"),
            Just("resources"),
            Just("capture")
        ],
        key_name(),
    )
        .prop_filter("the key is unknown there", |(table, key)| {
            !known_in(table).contains(&key.as_str())
        })
        .prop_map(|(table, key)| (table.to_owned(), key))
}

// ---------------------------------------------------------------------------
// Any text.

/// Lines that look like a `monitor.toml`, right or wrong, and lines that do not.
fn toml_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        3 => proptest::sample::select(vec![
            "db_path", "enabled", "queue", "retention", "resources", "capture", "capacity",
            "overflow", "flush_interval_ms", "hours", "cleanup_interval_secs", "archive_dir",
            "vacuum", "interval_ms", "thread_cpu", "max_value_len", "secret_names",
            "redact_patterns", "queue.capacity",
            "retention.hours", "\"\"", "''", "a.\"\".b",
        ])
        .prop_map(str::to_owned),
        1 => "[a-z_.\"]{0,10}",
    ];
    let value = prop_oneof![
        (any::<i64>(), int_style()).prop_map(|(n, style)| toml_int(n, style)),
        "\\PC{0,6}".prop_map(|s| toml_string(&s, false)),
        proptest::sample::select(vec![
            "true",
            "false",
            "\"drop\"",
            "\"block\"",
            "0",
            "1",
            "-1",
            "1.5",
            "nan",
            DATETIME,
            "[]",
            "{}",
            "{ capacity = 1 }",
            "[1, \"a\"]",
            "\"\"\"\n\"\"\"",
            "0x",
            "1__0",
        ])
        .prop_map(str::to_owned),
    ];
    let line = prop_oneof![
        4 => (key.clone(), value).prop_map(|(k, v)| format!("{k} = {v}")),
        2 => key.clone().prop_map(|k| format!("[{k}]")),
        1 => key.prop_map(|k| format!("[[{k}]]")),
        1 => "\\PC{0,20}",
        1 => Just("# a comment".to_owned()),
    ];
    proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

// ---------------------------------------------------------------------------
// Environment overrides.

/// A `MONITOR_*` value and what it should do.
#[derive(Clone, Debug)]
enum EnvValue<T> {
    Takes(String, T),
    Refused(String),
}

impl<T> EnvValue<T> {
    fn text(&self) -> &str {
        match self {
            EnvValue::Takes(text, _) | EnvValue::Refused(text) => text,
        }
    }
}

/// Any case, ASCII spaces around: how a shell hands a value over.
fn padded(word: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (
        "[ \\t]{0,2}",
        word,
        proptest::collection::vec(any::<bool>(), 8),
        "[ \\t\\n]{0,2}",
    )
        .prop_map(|(before, word, upper, after)| {
            let word: String = word
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            format!("{before}{word}{after}")
        })
}

fn env_db() -> impl Strategy<Value = EnvValue<PathBuf>> {
    prop_oneof![
        4 => path()
            .prop_filter("non-empty", |p| !p.is_empty())
            .prop_map(|p| EnvValue::Takes(p.clone(), PathBuf::from(p))),
        1 => Just(EnvValue::Refused(String::new())),
    ]
}

fn env_enabled() -> impl Strategy<Value = EnvValue<bool>> {
    let word =
        |words: &'static [&'static str]| proptest::sample::select(words).prop_map(str::to_owned);
    prop_oneof![
        padded(word(&["1", "true", "yes", "on"])).prop_map(|t| EnvValue::Takes(t, true)),
        padded(word(&["0", "false", "no", "off"])).prop_map(|t| EnvValue::Takes(t, false)),
        prop_oneof![
            Just(String::new()),
            word(&["2", "-1", "y", "n", "tru", "enabled", "off!", "o n"]),
            "\\PC{0,8}",
        ]
        .prop_filter("not a boolean word", |t| {
            !["1", "true", "yes", "on", "0", "false", "no", "off"]
                .contains(&t.trim().to_ascii_lowercase().as_str())
        })
        .prop_map(EnvValue::Refused),
    ]
}

/// `Ok(hours)` for a whole number (at least 1 or not), `Err` otherwise.
fn env_hours() -> impl Strategy<Value = EnvValue<i64>> {
    prop_oneof![
        3 => (padded(Just(String::new())), prop_oneof![1i64..10_000, any::<i64>()])
            .prop_map(|(pad, n)| EnvValue::Takes(format!("{pad}{n}{pad}"), n)),
        1 => prop_oneof![
            Just(String::new()),
            proptest::sample::select(&["six", "1.5", "1h", "1 2", "0x10", "99999999999999999999", "--1"][..])
                .prop_map(str::to_owned),
            "[a-z]{1,6}",
        ]
        .prop_map(EnvValue::Refused),
    ]
}

// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// A file that sets any documented keys to valid values, in any TOML
    /// spelling and table layout, gives back exactly those values and the
    /// defaults for the rest.
    #[test]
    fn a_valid_file_gives_back_exactly_its_values(
        file in valid_file(),
        ints in int_style(),
        literal in any::<bool>(),
        layouts in layouts(),
    ) {
        let text = render(&entries(&file, ints, literal), &layouts);
        match Config::from_toml_str(&text) {
            Ok(config) => assert_parsed_as(&config, &file)?,
            Err(err) => prop_assert!(false, "{err}\n--- file:\n{text}"),
        }
    }

    /// One bad value among valid ones: the error names exactly that key,
    /// dotted (`queue.capacity`), whatever the layout of its table.
    #[test]
    fn a_bad_value_is_an_error_naming_exactly_its_key(
        file in valid_file(),
        (dotted, bad) in bad_value(),
        layouts in layouts(),
    ) {
        let (table, key) = split(dotted);
        let mut lines = entries(&file, IntStyle::Plain, false);
        lines.retain(|e| !(e.table == table && e.key == key));
        lines.push(entry(table, key, bad));
        let text = render(&lines, &layouts);
        assert_names_key(Config::from_toml_str(&text), dotted, &text)?;
    }

    /// A misspelt or unknown key is an error naming it, dotted, instead of
    /// being ignored.
    #[test]
    fn an_unknown_key_is_an_error_naming_it(
        file in valid_file(),
        (table, key) in unknown_key(),
        value in prop_oneof![Just("1".to_owned()), Just("\"x\"".to_owned()), Just("{ a = 1 }".to_owned())],
        layouts in layouts(),
    ) {
        let mut lines = entries(&file, IntStyle::Plain, false);
        lines.push(entry(&table, &key, value));
        let text = render(&lines, &layouts);
        let expected = if table.is_empty() {
            shown_key(&key)
        } else {
            format!("{table}.{}", shown_key(&key))
        };
        assert_names_key(Config::from_toml_str(&text), &expected, &text)?;
    }

    /// Whatever the file holds, parsing never crashes; a file that parses
    /// passes every check `init` relies on, and a refused one names a key
    /// (or `(file)` for broken TOML) in its message.
    #[test]
    fn any_text_parses_or_names_a_key(text in prop_oneof![toml_like(), any::<String>()]) {
        match Config::from_toml_str(&text) {
            Ok(config) => {
                prop_assert!(!config.db_path.as_os_str().is_empty());
                prop_assert!(config.retention.hours >= 1);
                prop_assert!(config.queue.flush_interval_ms >= 1);
                prop_assert!(config.retention.cleanup_interval_secs >= 1);
            }
            Err(err @ Error::Config { .. }) => {
                let shown = err.to_string();
                let Error::Config { key, .. } = err else { unreachable!() };
                prop_assert!(!key.is_empty(), "empty key: {shown}\n--- file:\n{text}");
                prop_assert!(shown.contains(&format!("`{key}`")), "{shown}");
            }
            Err(other) => prop_assert!(false, "not a configuration error: {other:?}"),
        }
    }

    /// `MONITOR_DB`, `MONITOR_ENABLED` and `MONITOR_RETENTION_HOURS` replace
    /// the file's values (case and surrounding spaces do not matter); a
    /// value that cannot be used is an error naming the variable, or
    /// `retention.hours` for a count below 1.
    #[test]
    fn environment_overrides_replace_the_file_or_name_the_variable(
        file in valid_file(),
        db in proptest::option::of(env_db()),
        enabled in proptest::option::of(env_enabled()),
        hours in proptest::option::of(env_hours()),
    ) {
        let text = render(&entries(&file, IntStyle::Plain, false), &[Layout::Section]);
        let base = Config::from_toml_str(&text).expect("a valid file");
        let lookup = |name: &str| match name {
            "MONITOR_DB" => db.as_ref().map(|v| v.text().to_owned()),
            "MONITOR_ENABLED" => enabled.as_ref().map(|v| v.text().to_owned()),
            "MONITOR_RETENTION_HOURS" => hours.as_ref().map(|v| v.text().to_owned()),
            _ => None,
        };
        let mut refused = Vec::new();
        if let Some(EnvValue::Refused(_)) = db {
            refused.push("MONITOR_DB");
        }
        if let Some(EnvValue::Refused(_)) = enabled {
            refused.push("MONITOR_ENABLED");
        }
        match hours {
            Some(EnvValue::Refused(_)) => refused.push("MONITOR_RETENTION_HOURS"),
            Some(EnvValue::Takes(_, n)) if n < 1 => refused.push("retention.hours"),
            _ => {}
        }
        match base.clone().with_env_overrides(lookup) {
            Ok(config) => {
                prop_assert!(refused.is_empty(), "accepted although {refused:?} should be refused");
                let want_db = match &db { Some(EnvValue::Takes(_, p)) => p.clone(), _ => base.db_path.clone() };
                let want_enabled = match &enabled { Some(EnvValue::Takes(_, b)) => *b, _ => base.enabled };
                let want_hours = match &hours { Some(EnvValue::Takes(_, n)) => *n, _ => base.retention.hours };
                prop_assert_eq!(config.db_path, want_db);
                prop_assert_eq!(config.enabled, want_enabled);
                prop_assert_eq!(config.retention.hours, want_hours);
                prop_assert_eq!(config.queue, base.queue);
            }
            Err(err @ Error::Config { .. }) => {
                let shown = err.to_string();
                let Error::Config { key, .. } = err else { unreachable!() };
                prop_assert!(refused.contains(&key.as_str()), "{shown}, expected one of {refused:?}");
                prop_assert!(shown.contains(&format!("`{key}`")), "{shown}");
            }
            Err(other) => prop_assert!(false, "not a configuration error: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Found by the properties above: keys that are not bare TOML keys are named
// as TOML quotes them.

/// `key` as an error names it: bare when TOML allows, else quoted.
fn shown_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        toml_string(key, false)
    }
}

/// `"" = 1` is refused, naming the key `""`.
#[test]
fn an_empty_top_level_key_is_named() {
    let err = Config::from_toml_str("\"\" = 1").unwrap_err();
    let shown = err.to_string();
    let Error::Config { key, .. } = err else {
        panic!("{shown}")
    };
    assert_eq!(key, "\"\"", "{shown}");
}

/// `"." = 1` is refused as unknown field `.`, naming the key `"."`, not
/// `(file)` (the name for a broken file).
#[test]
fn a_top_level_key_named_dot_is_named() {
    let err = Config::from_toml_str("\".\" = 1").unwrap_err();
    let shown = err.to_string();
    let Error::Config { key, .. } = err else {
        panic!("{shown}")
    };
    assert_eq!(key, "\".\"", "{shown}");
    let err = Config::from_toml_str("[queue]\n\"a.b\" = 1").unwrap_err();
    assert!(err.to_string().contains("`queue.\"a.b\"`"), "{err}");
}
