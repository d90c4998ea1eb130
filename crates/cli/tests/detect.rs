//! `porchlight detect` through the real binary: JSON output on a real test
//! image, and clear errors (naming the file, exit 1) on a text file and a
//! missing file. The image tests need `../shared/testdata/images` beside the
//! repository: skipped with a note when it is missing, a failure under
//! `PORCHLIGHT_REQUIRE_TOOLS=1`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_porchlight");

/// The binary with no PORCHLIGHT_… variable from the developer's shell,
/// run in a scratch folder so nothing is read from or written to the repo.
fn porchlight(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORCHLIGHT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .output()
        .expect("porchlight runs")
}

fn dog_jpg() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/images/dog.jpg");
    if p.is_file() {
        return Some(p);
    }
    if std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() == Ok("1") {
        panic!("{} is required (PORCHLIGHT_REQUIRE_TOOLS=1)", p.display());
    }
    eprintln!("SKIPPED: no test image at {}", p.display());
    None
}

#[test]
fn detect_json_on_dog_jpg_finds_dog_and_bicycle() {
    let Some(dog) = dog_jpg() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = porchlight(tmp.path(), &["detect", dog.to_str().unwrap(), "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let items = v.as_array().expect("an array");
    let find = |class: &str| {
        items
            .iter()
            .find(|d| d["class"] == class)
            .unwrap_or_else(|| panic!("no {class} in {stdout}"))
    };
    let dog_d = find("dog");
    assert_eq!(dog_d["label"], "animal");
    assert!(dog_d["score"].as_f64().unwrap() >= 0.5);
    for k in ["x", "y", "width", "height"] {
        assert!(dog_d["box"][k].is_u64(), "box.{k} in {dog_d}");
    }
    assert!(dog_d["box"]["width"].as_u64().unwrap() > 50);
    assert_eq!(find("bicycle")["label"], "vehicle");
    // Nothing made up: every label is one of Porchlight's or null.
    for d in items {
        assert!(
            d["label"].is_null()
                || ["person", "vehicle", "animal", "parcel"]
                    .contains(&d["label"].as_str().unwrap()),
            "{d}"
        );
    }
    // And the plain text form has one line per detection.
    let out = porchlight(tmp.path(), &["detect", dog.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert_eq!(text.lines().count(), items.len(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("dog") && l.contains("animal")),
        "{text}"
    );
}

#[test]
fn detect_on_a_text_file_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("notes.txt");
    std::fs::write(&f, "not a picture\n").unwrap();
    let out = porchlight(tmp.path(), &["detect", f.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("notes.txt") && stderr.contains("not an image"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn detect_on_a_missing_file_fails_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = porchlight(tmp.path(), &["detect", "no-such-photo.jpg"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no-such-photo.jpg") && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
