//! Tests that need root, or programs this machine may lack, say so and skip on a developer's
//! machine, but fail where every test must run: as root, in CI, or with
//! `FLATLAB_TESTS_REQUIRE_ALL=1` (which `scripts/test.sh` sets there). `FLATLAB_TESTS_REQUIRE_ALL=0`
//! lets them skip anywhere.

#![allow(dead_code)] // Each test crate uses a part.

pub fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout == b"0\n")
}

/// Whether a test that cannot run here must fail rather than skip.
pub fn must_run() -> bool {
    match std::env::var("FLATLAB_TESTS_REQUIRE_ALL").as_deref() {
        Ok("1") => true,
        Ok("0") => false,
        _ => std::env::var_os("CI").is_some_and(|v| !v.is_empty()) || is_root(),
    }
}

/// A test cannot run here, for `why`: fails where every test must run, else says so and skips.
#[track_caller]
pub fn cannot_run<T>(why: &str) -> Option<T> {
    assert!(!must_run(), "this test must run here (as root, in CI) but cannot: {why}");
    eprintln!("skipping: {why}");
    None
}
