//! Compile-time behaviour of `#[cluster_client]`: `tests/ui/pass/*.rs` must compile (and run), every
//! `tests/ui/fail/*.rs` must fail with exactly the diagnostics in its `.stderr` snapshot.
//!
//! One concern per file. After changing a message, regenerate the snapshots with
//!
//! ```text
//! TRYBUILD=overwrite cargo test --test ui
//! ```
//!
//! and then READ every changed `.stderr`: the caret must sit on the offending tokens and the message must
//! say what to write instead. `overwrite` accepts whatever the compiler printed, so an unread snapshot
//! proves nothing.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
