//! Misuse of `#[monitor]` is a compile error pointing at the offending token,
//! and a type error in the body still points at the user's line.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
