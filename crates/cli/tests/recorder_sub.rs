//! A camera's sub-stream end to end, with the real binary against a peer no
//! one here wrote (../shared/tools/rtsp_cam.py: `/main` is 1280x720,
//! `/sub` 640x360): `camera add --sub-url` makes the hub keep a second
//! connection; the hub reports both streams connected with their own
//! frame and bit rates; a subscriber to the sub-stream (the restream at
//! `rtsp://HUB/NAME/sub`, which reads `LiveHub::subscribe_sub`) gets the
//! sub-stream's pictures and the main path still the main stream's; only
//! the main stream is recorded (design/storage.md).

#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{
    camera_sim, db_rows, free_port, ok, porchlight, probe_rtsp, simulator_available,
    wait_connected, Kill,
};

/// alice's password: URL-safe, for `rtsp://alice:PASSWORD@…`.
const ALICE_PW: &str = "porch-light-sub-stream-test";

/// (width, height) of an RTSP URL's video, or ffprobe's complaint.
fn probe_size(url: &str) -> Result<(u64, u64), String> {
    let (good, s, err) = probe_rtsp(url);
    match (s["width"].as_u64(), s["height"].as_u64()) {
        (Some(w), Some(h)) if good => Ok((w, h)),
        _ => Err(format!("ffprobe {url}: {err}")),
    }
}

/// (connected, fps, bitrate) of the main and sub status rows of camera `name`.
type Row = (bool, f64, f64);
fn statuses(db: &Path, name: &str) -> (Option<Row>, Option<Row>) {
    use sqlx::Row as _;
    let row = |table: &str| {
        db_rows(
            db,
            &format!(
                "SELECT s.connected, s.fps, s.bitrate_bps FROM {table} s JOIN cameras c ON c.id = s.camera_id WHERE c.name = ?"
            ),
            &[name],
        )
        .first()
        .map(|r| (r.get::<i64, _>(0) != 0, r.get::<f64, _>(1), r.get::<f64, _>(2)))
    };
    (row("camera_status"), row("camera_sub_status"))
}

/// The `stream` column of every recording.
fn recorded_streams(db: &Path) -> Vec<String> {
    use sqlx::Row as _;
    db_rows(db, "SELECT stream FROM recordings", &[])
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect()
}

#[test]
fn a_camera_with_a_sub_url_keeps_both_streams_and_serves_the_sub_stream() {
    if !porchlight_base::tools::external("ffprobe") || !simulator_available() {
        return;
    }
    let port = free_port();
    let _cam = camera_sim(port, None);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("data");
    ok(
        &dir,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "owner",
            "--password-stdin",
        ],
        &format!("{ALICE_PW}\n"),
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "porch",
            "--url",
            &format!("rtsp://127.0.0.1:{port}/main"),
            "--sub-url",
            &format!("rtsp://127.0.0.1:{port}/sub"),
        ],
        "",
    );
    let mut child = porchlight(&dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rtsp-listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _hub = Kill(child);
    let _web = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let rtsp = second
        .strip_prefix("RTSP restream at rtsp://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("second line {second:?}"))
        .to_owned();

    wait_connected(&dir, &["porch"], Duration::from_secs(30));
    // Both streams reported, each with its own rates (the sub-stream is
    // a quarter of the pixels at a quarter of the bit rate).
    let db = dir.join("porchlight.db");
    let t0 = Instant::now();
    let (main, sub) = loop {
        let (main, sub) = statuses(&db, "porch");
        let good = |r: &Option<Row>| r.is_some_and(|(c, fps, rate)| c && fps > 5.0 && rate > 0.0);
        if good(&main) && good(&sub) {
            break (main.unwrap(), sub.unwrap());
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "both streams should be reported connected with rates: main {main:?}, sub {sub:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        main.2 > sub.2,
        "the main stream (2 Mbit/s) outweighs the sub-stream (500 kbit/s): {main:?} {sub:?}"
    );

    // Subscribers get each stream's own pictures, signed in with an RTSP
    // token (RTSP never takes an account password).
    let token: serde_json::Value = serde_json::from_str(&ok(
        &dir,
        &[
            "user",
            "rtsp-token",
            "alice",
            "--label",
            "ffprobe",
            "--json",
        ],
        "",
    ))
    .unwrap();
    let user = format!("alice:{}", token["secret"].as_str().unwrap());
    assert_eq!(
        probe_size(&format!("rtsp://{user}@{rtsp}/porch/sub")),
        Ok((640, 360)),
        "the sub-stream subscriber"
    );
    assert_eq!(
        probe_size(&format!("rtsp://{user}@{rtsp}/porch")),
        Ok((1280, 720)),
        "the main stream is unchanged"
    );

    // Only the main stream is recorded.
    let t0 = Instant::now();
    let streams = loop {
        let s = recorded_streams(&db);
        if !s.is_empty() || t0.elapsed() > Duration::from_secs(30) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(!streams.is_empty(), "the camera records");
    assert!(streams.iter().all(|s| s == "main"), "{streams:?}");
}

/// `porchlight demo` registers each demo camera's 320x180 sub-stream as
/// its `sub_url`; the hub connects to both streams of both cameras and
/// restreams the sub-stream at its own size.
#[test]
fn the_demo_cameras_have_sub_streams() {
    if !porchlight_base::tools::external("ffprobe") {
        return;
    }
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("demo");
    let mut child = porchlight(&dir)
        .args([
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--rtsp-listen",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _hub = Kill(child);
    let _web = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    let rtsp = second
        .strip_prefix("RTSP restream at rtsp://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("second line {second:?}"))
        .to_owned();
    // The RTSP token the demo made for this run, from the line naming the
    // demo cameras (RTSP never takes an account password).
    let mut token = None;
    for l in lines.by_ref() {
        let l = l.unwrap();
        if let Some((_, rest)) = l.split_once("rtsp://demo-owner:") {
            token = rest.split_once('@').map(|(t, _)| t.to_owned());
            break;
        }
    }
    let token = token.expect("the demo prints its RTSP token");
    // Keep reading stdout so the demo never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let db = dir.join("porchlight.db");
    for name in ["front-door", "driveway"] {
        let t0 = Instant::now();
        loop {
            let (main, sub) = statuses(&db, name);
            if main.is_some_and(|r| r.0) && sub.is_some_and(|r| r.0 && r.1 > 0.0) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(40),
                "{name}: both streams should connect: main {main:?}, sub {sub:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let owner = format!("demo-owner:{token}@{rtsp}");
    assert_eq!(
        probe_size(&format!("rtsp://{owner}/front-door/sub")),
        Ok((320, 180))
    );
    assert_eq!(
        probe_size(&format!("rtsp://{owner}/front-door")),
        Ok((640, 360))
    );
}
