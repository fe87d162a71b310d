//! `#[monitor(...)]` options, read back from the file.

mod common;

use common::{session, session_with};
use monitor_runtime::monitor;
use serde_json::json;

#[monitor(name = "load_user", group = "db", args, skip(cache), fields(shard = id % 16, label = "primary"))]
fn load(id: u64, password: &str, cache: &[u8], api_key: String, user_token: &str) -> usize {
    cache.len() + password.len() + api_key.len() + user_token.len()
}

#[derive(Debug)]
struct Point {
    x: i32,
    y: i32,
}

struct Opaque;

#[monitor(args)]
fn shapes(p: Point, tags: Vec<&str>, flag: bool, ratio: f64, _hidden: Opaque) -> i32 {
    p.x + p.y + tags.len() as i32 + i32::from(flag) + ratio as i32
}

#[monitor(ret)]
fn make_list(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[monitor(ret)]
fn answer() -> u64 {
    42
}

#[monitor(ret)]
fn checked(ok: bool) -> Result<u8, String> {
    if ok {
        Ok(1)
    } else {
        Err("bad".into())
    }
}

#[monitor(args, ret)]
async fn async_options(secret: &str, n: u32) -> u32 {
    tokio::task::yield_now().await;
    n + secret.len() as u32
}

#[monitor(args, fields(token = format!("{prefix}-{}", 99)))]
fn with_secret_field(prefix: &str) -> usize {
    prefix.len()
}

/// Counts its `Debug` calls: a secret argument must never be formatted.
struct Tripwire;

static TRIPWIRE_FORMATTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl std::fmt::Debug for Tripwire {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        TRIPWIRE_FORMATTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        f.write_str("Tripwire")
    }
}

#[monitor(args, fields(db_password = Tripwire))]
fn connect(password: Tripwire, plain: Tripwire) -> usize {
    let _ = (password, plain);
    1
}

#[monitor(args)]
fn big(blob: &str, items: &[u64]) -> usize {
    blob.len() + items.len()
}

#[monitor(fields(r#type = "batch"))]
fn raw_key() {}

#[monitor(sample = 0.0)]
fn never_sampled(fail: bool) -> Result<(), String> {
    if fail {
        Err("kept anyway".into())
    } else {
        Ok(())
    }
}

#[monitor(sample = 0.5)]
fn half_sampled() {}

mod reexport {
    pub use monitor_runtime as instrumentation;
}

#[monitor(crate = reexport::instrumentation, args)]
fn through_reexport(x: u8) -> u8 {
    x
}

/// A module whose names shadow the prelude and std must not break the
/// generated code.
mod shadowing {
    #![allow(dead_code)]
    use monitor_runtime::monitor;

    pub struct String;
    pub struct Box;
    pub struct Vec;
    pub struct Option;
    pub mod core {}
    pub mod std {}
    type Result<T> = ::core::result::Result<T, ::std::string::String>;

    #[monitor(args, ret)]
    pub fn shadowed(x: u32) -> Result<u32> {
        if x == 0 {
            Err(::std::string::String::from("zero"))
        } else {
            Ok(x)
        }
    }
}

#[test]
fn name_group_args_skip_and_fields() {
    let s = session();
    assert_eq!(
        load(42, "hunter2", &[1, 2], "sk-live-123".into(), "tok"),
        2 + 7 + 11 + 3
    );
    let row = s.one("load_user");
    assert_eq!(row.group_name, "db");
    assert_eq!(row.module, "macro_options");
    assert_eq!(
        row.fields,
        Some(json!({
            "id": 42, "password": "***", "api_key": "***", "user_token": "***", "shard": 10, "label": "primary"
        }))
    );
}

#[test]
fn values_are_json_scalars_debug_text_or_type_names() {
    let s = session();
    shapes(Point { x: 1, y: 2 }, vec!["a", "b"], true, 0.5, Opaque);
    let fields = s.one("shapes").fields.unwrap();
    assert_eq!(fields["p"], json!("Point { x: 1, y: 2 }"));
    assert_eq!(fields["tags"], json!("[\"a\", \"b\"]"));
    assert_eq!(fields["flag"], json!(true));
    assert_eq!(fields["ratio"], json!(0.5));
    assert_eq!(fields["_hidden"], json!("<macro_options::Opaque>"));
}

#[test]
fn ret_records_the_return_value() {
    let s = session();
    make_list(3);
    answer();
    let _ = checked(true);
    let _ = checked(false);
    assert_eq!(
        s.one("make_list").fields,
        Some(json!({"return": "[0, 1, 2]"}))
    );
    assert_eq!(s.one("answer").fields, Some(json!({"return": 42})));
    let checked = s.named("checked", 2);
    assert_eq!(checked[0].fields, Some(json!({"return": "Ok(1)"})));
    assert_eq!(
        (checked[1].status.as_str(), checked[1].fields.clone()),
        ("error", Some(json!({"return": "Err(\"bad\")"})))
    );
}

#[test]
fn async_functions_take_the_same_options() {
    let s = session();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(async_options("pw", 5)), 7);
    assert_eq!(
        s.one("async_options").fields,
        Some(json!({"secret": "***", "n": 5, "return": 7}))
    );
}

#[test]
fn secrets_never_reach_the_file() {
    let s = session();
    load(
        1,
        "correct-horse-battery",
        &[],
        "sk-do-not-store".into(),
        "bearer-xyz",
    );
    with_secret_field("hidden-prefix");
    let row = s.one("with_secret_field");
    assert_eq!(
        row.fields,
        Some(json!({"prefix": "hidden-prefix", "token": "***"}))
    );
    drop(s.guard);
    let mut bytes = std::fs::read(&s.path).unwrap();
    for extra in ["-wal", "-shm"] {
        let mut p = s.path.clone().into_os_string();
        p.push(extra);
        bytes.extend(std::fs::read(p).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&bytes);
    for secret in [
        "correct-horse-battery",
        "sk-do-not-store",
        "bearer-xyz",
        "hidden-prefix-99",
    ] {
        assert!(!text.contains(secret), "{secret} is in the database file");
    }
    assert!(text.contains("hidden-prefix"), "the search itself works");
}

#[test]
fn secret_arguments_and_fields_are_never_formatted() {
    let s = session();
    connect(Tripwire, Tripwire);
    let row = s.one("connect");
    assert_eq!(
        row.fields,
        Some(json!({"password": "***", "plain": "Tripwire", "db_password": "***"}))
    );
    assert_eq!(
        TRIPWIRE_FORMATTED.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "only the plain argument was formatted"
    );
}

#[test]
fn long_values_are_cut_to_the_configured_length() {
    let s = session_with(|c| c.max_value_len(64));
    let blob = "x".repeat(5 * 1024 * 1024);
    let items: Vec<u64> = (0..1_000_000).collect();
    assert_eq!(big(&blob, &items), blob.len() + items.len());
    let fields = s.one("big").fields.unwrap();
    for key in ["blob", "items"] {
        let value = fields[key].as_str().unwrap();
        assert!(value.ends_with('…'), "{key}: {value}");
        assert_eq!(value.len(), 64 + '…'.len_utf8(), "{key}");
    }
    assert!(fields["items"].as_str().unwrap().starts_with("[0, 1, 2,"));
}

#[test]
fn sampling_is_decided_at_the_end_and_keeps_every_error() {
    let s = session();
    for i in 0..200 {
        let _ = never_sampled(i % 40 == 0);
    }
    for _ in 0..2000 {
        half_sampled();
    }
    let kept = s.named("never_sampled", 5);
    assert!(kept
        .iter()
        .all(|r| r.status == "error" && r.error.as_deref() == Some("kept anyway")));
    let half = s
        .spans()
        .into_iter()
        .filter(|r| r.name == "half_sampled")
        .count();
    assert!(
        (800..=1200).contains(&half),
        "kept {half} of 2000 at rate 0.5"
    );
    let conn = rusqlite::Connection::open(&s.path).unwrap();
    let sampled_out: i64 = conn
        .query_row("SELECT sum(sampled_out) FROM monitor_stats", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(sampled_out, 195 + (2000 - half as i64));
}

#[test]
fn a_re_exported_crate_path_and_shadowed_names_work() {
    let s = session();
    assert_eq!(through_reexport(3), 3);
    assert_eq!(shadowing::shadowed(0), Err("zero".to_owned()));
    assert_eq!(s.one("through_reexport").fields, Some(json!({"x": 3})));
    raw_key();
    assert_eq!(s.one("raw_key").fields, Some(json!({"type": "batch"})));
    let row = s.one("shadowed");
    assert_eq!(
        (row.status.as_str(), row.error.as_deref()),
        ("error", Some("zero"))
    );
}
