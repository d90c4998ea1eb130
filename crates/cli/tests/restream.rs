//! The RTSP restream and the demo cameras end to end, with the real
//! binary and real tools: `porchlight demo` renders and encodes its two
//! cameras, serves them on its own RTSP server, and the recorder records
//! them through that server (retina → writer); ffprobe and ffmpeg watch
//! the restream of those cameras and of an external GStreamer camera
//! (../shared/tools/rtsp_cam.py, H.265); an export of the demo recording
//! plays. Slow (about half a minute), so it is one test.

#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::{
    camera_sim, cameras, db_rows, free_port, ok, porchlight, probe_rtsp, simulator_available,
    wait_connected, Kill,
};

fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        s.push_str(&format!(" (exit {})", out.status));
    }
    s
}

/// (actor, camera) of every `live.restream` audit entry.
fn restream_audit(db: &Path) -> Vec<(String, String)> {
    use sqlx::Row as _;
    db_rows(
        db,
        "SELECT actor, target FROM audit_log WHERE action = 'live.restream' ORDER BY seq",
        &[],
    )
    .iter()
    .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
    .collect()
}

/// Starts the demo; returns it, its web and RTSP addresses, and its
/// further stdout lines.
fn demo(dir: &Path) -> (Kill, String, String, mpsc::Receiver<String>) {
    let mut child = porchlight(dir)
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
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let kill = Kill(child);
    let next = || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the demo prints its addresses")
    };
    let first = next();
    let web = first
        .strip_prefix("Porchlight is running at http://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("first line {first:?}"))
        .to_owned();
    let second = next();
    let rtsp = second
        .strip_prefix("RTSP restream at rtsp://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("second line {second:?}"))
        .to_owned();
    assert!(!rtsp.ends_with(":0"), "the bound port is printed: {rtsp}");
    (kill, web, rtsp, rx)
}

#[test]
fn demo_cameras_record_through_the_restream_and_play_in_ffmpeg() {
    if !porchlight_base::tools::external("ffprobe") || !simulator_available() {
        return;
    }
    let t_start = Instant::now();
    let sim_port = free_port();
    let _sim = camera_sim(sim_port, None);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("demo");
    let out = tempfile::tempdir().unwrap();

    let (_hub, web, rtsp, lines) = demo(&dir);
    let mut text = Vec::new();
    loop {
        let l = lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("no line naming the demo cameras ({e}): {text:#?}"));
        let last = l.starts_with("Demo cameras: front-door and driveway");
        text.push(l);
        if last {
            break;
        }
    }
    assert!(
        text.iter()
            .any(|l| l.contains("demo-owner") && l.contains("porchlight-demo")),
        "{text:#?}"
    );
    // The RTSP token the demo made for this run (RTSP takes no passwords).
    let token = text
        .last()
        .and_then(|l| l.split_once("rtsp://demo-owner:"))
        .and_then(|(_, rest)| rest.split_once('@'))
        .map(|(t, _)| t.to_owned())
        .unwrap_or_else(|| panic!("no RTSP token in {text:#?}"));
    assert!(web.starts_with("127.0.0.1:"), "{web}");

    // An external camera, restreamed too.
    ok(
        &dir,
        &[
            "camera",
            "add",
            "hevc",
            "--url",
            &format!("rtsp://127.0.0.1:{sim_port}/h265"),
        ],
        "",
    );

    // The demo cameras record through the real RTSP path.
    wait_connected(&dir, &["front-door", "driveway"], Duration::from_secs(20));
    let connected_at = Instant::now();
    let cams = cameras(&dir);
    for name in ["front-door", "driveway"] {
        let c = cams.iter().find(|c| c["name"] == name).unwrap();
        let url = c["url"].as_str().unwrap();
        assert_eq!(url, format!("rtsp://{rtsp}/demo/{name}"));
    }

    // The restream, as a viewer sees it.
    let owner = format!("rtsp://demo-owner:{token}@{rtsp}");
    let (good, stream, err) = probe_rtsp(&format!("{owner}/front-door"));
    assert!(good, "ffprobe failed: {err}");
    assert_eq!(stream["codec_name"], "h264", "{stream}");
    assert_eq!(stream["width"], 640);
    assert_eq!(stream["height"], 360);
    let (good, _, err) = probe_rtsp(&format!("rtsp://{rtsp}/front-door"));
    assert!(!good, "no credentials must fail");
    assert!(err.contains("401"), "{err}");
    let (good, _, err) = probe_rtsp(&format!("rtsp://demo-owner:wrong@{rtsp}/front-door"));
    assert!(!good, "a wrong password must fail");
    assert!(err.contains("401"), "{err}");
    let (good, _, err) = probe_rtsp(&format!(
        "rtsp://demo-owner:porchlight-demo@{rtsp}/front-door"
    ));
    assert!(!good, "the account password is no RTSP credential");
    assert!(err.contains("401"), "{err}");
    let (code, _, err) = support::run(
        &dir,
        &["user", "rtsp-token", "demo-neighbor", "--label", "x"],
        "",
    );
    assert!(
        code != 0 && err.contains("only owners and members watch cameras"),
        "a neighbor gets no RTSP token: {err}"
    );

    // Three seconds copied to an MP4 decode without an error.
    let clip = out.path().join("live.mp4");
    let o = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i"])
        .arg(format!("{owner}/driveway"))
        .args(["-t", "3", "-c", "copy", "-y"])
        .arg(&clip)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(decode_errors(&clip), "");

    // The external H.265 camera, restreamed.
    wait_connected(&dir, &["hevc"], Duration::from_secs(20));
    let (good, stream, err) = probe_rtsp(&format!("{owner}/hevc"));
    assert!(good, "ffprobe of the restreamed camera failed: {err}");
    assert_eq!(stream["codec_name"], "hevc", "{stream}");
    assert_eq!(stream["width"], 640);

    // Each PLAY by a hub user is one audit entry; refused ones are none.
    let audit = restream_audit(&dir.join("porchlight.db"));
    let owner_entry = |cam: &str| ("demo-owner".to_owned(), cam.to_owned());
    assert_eq!(
        audit,
        [
            owner_entry("front-door"),
            owner_entry("driveway"),
            owner_entry("hevc")
        ],
        "{audit:?}"
    );

    // What the recorder stored from the demo plays: export the last 10 s.
    let recorded_for = connected_at.elapsed();
    if recorded_for < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_secs(12) - recorded_for);
    }
    let mp4 = out.path().join("front-door.mp4");
    let mp4s = mp4.to_str().unwrap();
    ok(
        &dir,
        &[
            "export",
            "--camera",
            "front-door",
            "--from",
            "-10s",
            "--to",
            "now",
            "--output",
            mp4s,
            "--user",
            "demo-owner",
            "--password-stdin",
            "--quiet",
        ],
        "porchlight-demo\n",
    );
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width:format=duration",
            "-of",
            "json",
        ])
        .arg(&mp4)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["streams"][0]["codec_name"], "h264");
    assert_eq!(p["streams"][0]["width"], 640);
    let dur: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    assert!(dur > 5.0, "exported {dur} s");
    assert_eq!(decode_errors(&mp4), "");
    eprintln!("restream test took {:?}", t_start.elapsed());
}
