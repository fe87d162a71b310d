//! Secrets stay out of every file `monitor` writes: arguments named like
//! secrets are masked, and so are the values after secret-named keys inside
//! captured text (`args`, `ret`, `fields`, error and panic messages,
//! `Span::record`), in `Debug`, JSON and `k=v` form; configured names and
//! patterns add to the rule. A property test hides random markers under
//! secret-named keys in random nested values and searches the bytes of the
//! database, its WAL, the spill file and an archive for them.

mod common;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use common::{session, session_with};
use monitor_runtime::{monitor, retention, Callsite, Config, EnteredSpan, SpanKind};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::json;

#[derive(Debug, Clone)]
#[allow(dead_code)] // read through Debug
struct LoginRequest {
    user: String,
    password: String,
}

#[monitor(args)]
fn login(req: &LoginRequest) -> Result<(), String> {
    Err(format!("auth failed for {} token=abc123", req.user))
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Credentials {
    name: &'static str,
    api_key: &'static str,
}

#[monitor(ret)]
fn credentials() -> Credentials {
    Credentials {
        name: "svc",
        api_key: "sk-live-123",
    }
}

#[monitor(args)]
fn words(keyboard: &str, monkey: u32, authorization: &str, session_id: u64, card_number: &str) {
    let _ = (keyboard, monkey, authorization, session_id, card_number);
}

#[monitor(fields(query = "?page=2&api_key=k-9".to_owned()))]
fn search() {}

#[monitor]
fn unlock(pin: &str) {
    panic!("wrong passphrase: {pin}, password=hunter2 retry");
}

fn fields_of(s: &common::Session, name: &str) -> serde_json::Value {
    s.one(name).fields.expect("fields recorded")
}

#[test]
fn values_after_secret_keys_are_masked_in_args_ret_fields_and_messages() {
    let s = session();
    let req = LoginRequest {
        user: "ann".into(),
        password: "hunter2".into(),
    };
    assert!(login(&req).is_err());
    let row = s.one("login");
    assert_eq!(
        row.fields,
        Some(json!({"req": r#"LoginRequest { user: "ann", password: "***" }"#}))
    );
    assert_eq!(row.error.as_deref(), Some("auth failed for ann token=***"));

    credentials();
    assert_eq!(
        fields_of(&s, "credentials"),
        json!({"return": r#"Credentials { name: "svc", api_key: "***" }"#})
    );

    search();
    assert_eq!(
        fields_of(&s, "search"),
        json!({"query": "?page=2&api_key=***"})
    );

    let _ = std::panic::catch_unwind(|| unlock("1234"));
    assert_eq!(
        s.one("unlock").error.as_deref(),
        Some("wrong passphrase: ***, password=*** retry")
    );
}

#[test]
fn the_name_rule_masks_new_names_and_keeps_ordinary_ones() {
    let s = session();
    words("qwerty", 3, "Bearer abc", 77, "4111 1111");
    assert_eq!(
        fields_of(&s, "words"),
        json!({
            "keyboard": "qwerty",
            "monkey": 3,
            "authorization": "***",
            "session_id": "***",
            "card_number": "***",
        })
    );
}

static BY_HAND: Callsite = Callsite::new(
    "by_hand",
    module_path!(),
    module_path!(),
    file!(),
    line!(),
    SpanKind::Sync,
);

#[test]
fn hand_recorded_fields_and_errors_are_scrubbed_and_cut() {
    let s = session_with(|c| c.max_value_len(64));
    {
        let mut span = EnteredSpan::new(&BY_HAND);
        span.record("header", "Authorization: Bearer eyJh.eyJz.sig");
        span.record("refresh_token", "rt-1");
        span.record("long", "x".repeat(1000));
        span.record_error(format_args!("{{\"client_secret\":\"cs-1\",\"ok\":true}}"));
    }
    let row = s.one("by_hand");
    let fields = row.fields.unwrap();
    assert_eq!(fields["header"], "Authorization: ***");
    assert_eq!(fields["refresh_token"], "***");
    assert_eq!(fields["long"], format!("{}…", "x".repeat(64)));
    assert_eq!(
        row.error.as_deref(),
        Some(r#"{"client_secret":"***","ok":true}"#)
    );
}

#[monitor]
fn explode_at_length(n: usize) {
    panic!("{}", "p".repeat(n));
}

/// A panic message is cut to `max_value_len` as any captured text is.
#[test]
fn a_long_panic_message_is_cut() {
    let s = session_with(|c| c.max_value_len(64));
    let _ = std::panic::catch_unwind(|| explode_at_length(100_000));
    let row = s.one("explode_at_length");
    assert_eq!(row.status, "panic");
    assert_eq!(row.error.unwrap(), format!("{}…", "p".repeat(64)));
}

#[monitor(args)]
fn charge(customer: &str, note: &str, user_pin: u32, pinned: bool) -> Result<(), String> {
    let _ = (customer, user_pin, pinned);
    Err(format!("declined: {note}"))
}

#[test]
fn configured_names_and_patterns_add_to_the_rule() {
    let s = session_with(|c| {
        c.secret_names(["pin"])
            .redact_patterns([r"\b\d{4}(?:[ -]?\d{4}){3}\b", r"eyJ[\w-]+\.[\w-]+\.[\w-]+"])
    });
    let card = "4111 1111 1111 1111";
    let jwt = "eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl";
    assert!(charge("ann", &format!("card {card} via {jwt}"), 1234, true).is_err());
    let row = s.one("charge");
    assert_eq!(
        row.fields,
        Some(json!({
            "customer": "ann",
            "note": "card *** via ***",
            "user_pin": "***",
            "pinned": true,
        }))
    );
    assert_eq!(row.error.as_deref(), Some("declined: card *** via ***"));
}

#[test]
fn a_bad_pattern_or_name_is_refused_naming_its_key() {
    let good = Config::from_toml_str(
        "[capture]\nsecret_names = [\"pin\"]\nredact_patterns = ['\\b\\d{16}\\b']",
    )
    .unwrap();
    assert_eq!(good.capture.secret_names, ["pin"]);
    assert_eq!(good.capture.redact_patterns, [r"\b\d{16}\b"]);
    for (toml, key) in [
        (
            "[capture]\nredact_patterns = [\"ok\", \"(unclosed\"]",
            "capture.redact_patterns[1]",
        ),
        (
            "[capture]\nredact_patterns = [\"a*\"]",
            "capture.redact_patterns[0]",
        ),
        (
            "[capture]\nsecret_names = [\"__\"]",
            "capture.secret_names[0]",
        ),
    ] {
        let err = Config::from_toml_str(toml).unwrap_err().to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
    let Err(err) = monitor_runtime::init_with(Config::default().redact_patterns(["[z-a]"])) else {
        panic!("init took a bad pattern");
    };
    let err = err.to_string();
    assert!(err.contains("capture.redact_patterns[0]"), "{err}");
}

// ---------------------------------------------------------------------------
// The property test.

/// A value of random shape whose `Debug` is what derived impls, maps and
/// lists write, and whose JSON is what `serde_json` writes.
#[derive(Clone)]
enum Value {
    Str(String),
    Num(i64),
    Bool(bool),
    None,
    Some(Box<Value>),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
    Struct(String, Vec<(String, Value)>),
    Tuple(String, Vec<Value>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => fmt::Debug::fmt(s, f),
            Value::Num(n) => fmt::Debug::fmt(n, f),
            Value::Bool(b) => fmt::Debug::fmt(b, f),
            Value::None => f.write_str("None"),
            Value::Some(v) => f.debug_tuple("Some").field(v).finish(),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Map(entries) => f
                .debug_map()
                .entries(entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Struct(name, fields) => {
                let mut s = f.debug_struct(name);
                for (k, v) in fields {
                    s.field(k, v);
                }
                s.finish()
            }
            Value::Tuple(name, items) => {
                let mut t = f.debug_tuple(name);
                for v in items {
                    t.field(v);
                }
                t.finish()
            }
        }
    }
}

impl Value {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => json!(s),
            Value::Num(n) => json!(n),
            Value::Bool(b) => json!(b),
            Value::None => serde_json::Value::Null,
            Value::Some(v) => v.to_json(),
            Value::List(items) | Value::Tuple(_, items) => {
                items.iter().map(Value::to_json).collect()
            }
            Value::Map(entries) | Value::Struct(_, entries) => entries
                .iter()
                .map(|(k, v)| (k.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// Puts `field` into the `at`-th struct or map (counted depth first),
    /// or wraps the value in a struct that holds it.
    fn insert(self, field: (String, Value), at: usize) -> Value {
        let holders = self.holders();
        if holders == 0 {
            return Value::Struct("Wrapper".into(), vec![("data".into(), self), field]);
        }
        let mut target = at % holders;
        let mut field = Some(field);
        let mut value = self;
        value.insert_at(&mut target, &mut field);
        value
    }

    fn holders(&self) -> usize {
        match self {
            Value::Map(entries) | Value::Struct(_, entries) => {
                1 + entries.iter().map(|(_, v)| v.holders()).sum::<usize>()
            }
            Value::List(items) | Value::Tuple(_, items) => items.iter().map(Value::holders).sum(),
            Value::Some(v) => v.holders(),
            _ => 0,
        }
    }

    fn insert_at(&mut self, target: &mut usize, field: &mut Option<(String, Value)>) {
        match self {
            Value::Map(entries) | Value::Struct(_, entries) => {
                if *target == 0 {
                    if let Some(f) = field.take() {
                        let at = f.0.len() % (entries.len() + 1);
                        entries.insert(at, f);
                    }
                    return;
                }
                *target -= 1;
                for (_, v) in entries {
                    v.insert_at(target, field);
                }
            }
            Value::List(items) | Value::Tuple(_, items) => {
                for v in items {
                    v.insert_at(target, field);
                }
            }
            Value::Some(v) => v.insert_at(target, field),
            _ => {}
        }
    }
}

/// Names that are not secret, for ordinary fields.
const ORDINARY: &[&str] = &[
    "user", "id", "name", "items", "monkey", "keyboard", "count", "tokens", "author", "note",
    "session", "card",
];

/// Names the built-in rule calls secret.
const SECRET: &[&str] = &[
    "password",
    "api_key",
    "authToken",
    "client_secret",
    "session_id",
    "Authorization",
    "cookie",
    "card_number",
    "private_key",
    "refresh_token",
    "ssn",
    "x-api-key",
];

fn ordinary_text() -> impl Strategy<Value = String> {
    // Quotes, backslashes, brackets and separators included: ordinary text
    // must not put the scrubber off its guard.
    "[a-zA-Z0-9 _:={}\\[\\]()\"'\\\\,;&-]{0,12}"
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ordinary_text().prop_map(Value::Str),
        any::<i64>().prop_map(Value::Num),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::None),
    ];
    let name = prop::sample::select(ORDINARY).prop_map(str::to_owned);
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            inner.clone().prop_map(|v| Value::Some(Box::new(v))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            prop::collection::vec((name.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            prop::collection::vec((name.clone(), inner.clone()), 0..4)
                .prop_map(|f| Value::Struct("Record".into(), f)),
            prop::collection::vec(inner, 1..3).prop_map(|i| Value::Tuple("Wrap".into(), i)),
        ]
    })
}

/// How the secret is held under its key.
fn secret_value(marker: String) -> impl Strategy<Value = Value> {
    let m = marker;
    prop_oneof![
        Just(Value::Str(m.clone())),
        Just(Value::Some(Box::new(Value::Str(m.clone())))),
        Just(Value::Struct(
            "Secret".into(),
            vec![("inner".into(), Value::Str(m.clone()))]
        )),
        Just(Value::Tuple("Secret".into(), vec![Value::Str(m.clone())])),
        Just(Value::List(vec![Value::Str(m.clone()), Value::Num(1)])),
        Just(Value::Map(vec![("inner".into(), Value::Str(m))])),
    ]
}

/// A random value holding a secret marker under a secret-named key, and a
/// visible marker under an ordinary one.
#[derive(Debug)]
struct Case {
    value: Value,
    key: String,
    marker: String,
    visible: String,
}

fn case() -> impl Strategy<Value = Case> {
    (
        value(),
        prop::sample::select(SECRET),
        "[A-Z0-9]{10}",
        "[A-Z0-9]{10}",
        any::<usize>(),
    )
        .prop_flat_map(|(value, key, marker, visible, at)| {
            let marker = format!("MK{marker}");
            let visible = format!("VIS{visible}");
            (
                secret_value(marker.clone()),
                Just((value, key, marker, visible, at)),
            )
        })
        .prop_map(|(held, (value, key, marker, visible, at))| {
            // The visible marker first: the secret's own value must not
            // become the visible marker's holder.
            let value = value
                .insert(("note".into(), Value::Str(visible.clone())), at / 7)
                .insert((key.to_owned(), held), at);
            Case {
                value,
                key: key.to_owned(),
                marker,
                visible,
            }
        })
}

#[derive(Debug)]
struct Failure(String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[monitor(args, ret)]
fn handle(input: &Value, json: &str) -> Value {
    let _ = json;
    input.clone()
}

#[monitor(args)]
fn reject(input: &Value, reason: &str) -> Result<(), Failure> {
    let _ = input;
    Err(Failure(reason.to_owned()))
}

#[monitor(fields(context = context.as_str()))]
fn crash(context: String, message: String) {
    let _ = context;
    panic!("{message}");
}

/// Every way a case's value reaches the file: `Debug` args and `ret`, JSON
/// text, a `k=v` error message, a `Debug` error, a panic message, a field.
fn exercise(case: &Case) {
    let json = case.value.to_json().to_string();
    handle(&case.value, &json);
    let _ = reject(
        &case.value,
        &format!(
            "{} failed for {}={} & more",
            case.visible, case.key, case.marker
        ),
    );
    let _ = std::panic::catch_unwind(|| {
        crash(
            format!("{{\"{}\": \"{}\", \"note\": 1}}", case.key, case.marker),
            format!("{}: {} then {:?}", case.key, case.marker, case.value),
        )
    });
}

/// The bytes of `path` and of its `-wal`, as text.
fn file_text(path: &Path) -> String {
    let mut bytes = std::fs::read(path).unwrap_or_default();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn check(text: &str, case: &Case, place: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        !text.contains(&case.marker),
        "{} (under {:?}) is in the {place}",
        case.marker,
        case.key
    );
    prop_assert!(
        text.contains(&case.visible),
        "the {place} holds the visible marker"
    );
    Ok(())
}

#[test]
fn no_secret_marker_reaches_the_database_wal_spill_file_or_archive() {
    let s = session_with(|c| {
        c.busy_timeout(Duration::from_millis(50))
            .resource_interval(Duration::ZERO)
            .max_value_len(4096)
    });
    // Panics are expected here: keep the output quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let config = ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    };

    let markers = std::cell::RefCell::new(Vec::new());

    // The database and its WAL.
    let mut runner = TestRunner::new(config.clone());
    let result = runner.run(&case(), |case| {
        markers.borrow_mut().push(case.marker.clone());
        exercise(&case);
        s.guard.flush();
        check(&file_text(&s.path), &case, "database or its WAL")
    });

    // The spill file, while another process holds the database.
    let spill = monitor_runtime::schema::spill_path(&s.path);
    let holder = common::lock_database(&s.path);
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 16,
        ..config
    });
    let spilled = runner.run(&case(), |case| {
        markers.borrow_mut().push(case.marker.clone());
        exercise(&case);
        s.guard.flush();
        check(
            &std::fs::read_to_string(&spill).unwrap(),
            &case,
            "spill file",
        )
    });
    holder.execute_batch("COMMIT").unwrap();
    drop(holder);
    s.guard.flush();
    let _ = std::panic::take_hook();
    result.unwrap();
    spilled.unwrap();
    assert!(!spill.exists(), "replayed");

    // An archive of the partitions, once they expire.
    let archive_dir = tempfile::tempdir().unwrap();
    let mut rules = monitor_runtime::RetentionConfig::default();
    rules.hours = 1;
    rules.archive_dir = archive_dir.path().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let report = retention::run_pass(&s.path, &rules, now + 3 * 3_600_000_000_000, false).unwrap();
    assert!(!report.expired.is_empty());
    let mut archived = String::new();
    for entry in std::fs::read_dir(archive_dir.path()).unwrap() {
        archived.push_str(&file_text(&entry.unwrap().path()));
    }
    assert!(archived.contains("VIS"), "the archive holds the spans");
    for marker in markers.into_inner() {
        assert!(!archived.contains(&marker), "{marker} is in the archive");
    }
}
