//! External programs some tests talk to (the stock `age` CLI, `ffprobe`,
//! Chromium). A test asks [`external`] first: where the tool is missing it
//! is skipped with a note on a developer's machine, but CI sets
//! `PORCHLIGHT_REQUIRE_TOOLS=1` and there a missing tool is a failure — so
//! a green CI never hides a test that did not run.

use std::process::{Command, Stdio};

/// True when `program` runs (`program --version` or `-version` exits).
/// Panics when it does not and `PORCHLIGHT_REQUIRE_TOOLS=1`.
pub fn external(program: &str) -> bool {
    let runs = ["--version", "-version"].iter().any(|flag| {
        Command::new(program)
            .arg(flag)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !runs {
        if std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("`{program}` is required (PORCHLIGHT_REQUIRE_TOOLS=1) but cannot be run; scripts/install-test-deps installs it");
        }
        eprintln!("SKIPPED: `{program}` is not installed (scripts/install-test-deps installs it)");
    }
    runs
}
