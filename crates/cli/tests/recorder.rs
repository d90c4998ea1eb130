//! The recorder end to end against real parts: GStreamer's RTSP server as
//! the cameras (../shared/tools/rtsp_cam.py, including Digest auth and
//! H.265), the real `porchlight` binary, ffprobe/ffmpeg to judge the MP4s,
//! and `kill -9` for crashes. Slow (about a minute), so it is one test that
//! walks the whole story once.

#[allow(dead_code)]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{
    camera_sim, cameras, db_rows, decodes_cleanly, export, ffprobe, free_port, ok, run, serve,
    simulator_available, wait_connected, PW,
};

fn audit_actions(dir: &Path) -> Vec<String> {
    use sqlx::Row as _;
    db_rows(
        &dir.join("porchlight.db"),
        "SELECT action FROM audit_log ORDER BY seq",
        &[],
    )
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect()
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn records_real_cameras_exports_and_survives_kill_9() {
    if !porchlight_base::tools::external("ffprobe") || !simulator_available() {
        return;
    }
    let plain_port = free_port();
    let auth_port = free_port();
    let _plain = camera_sim(plain_port, None);
    let _auth = camera_sim(auth_port, Some(("cam", "secret")));
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("data");
    let out = tempfile::tempdir().unwrap();

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
        &format!("{PW}\n"),
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "front",
            "--url",
            &format!("rtsp://127.0.0.1:{plain_port}/main"),
        ],
        "",
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "digest",
            "--url",
            &format!("rtsp://127.0.0.1:{auth_port}/sub"),
            "--username",
            "cam",
            "--password-stdin",
        ],
        "secret\n",
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "hevc",
            "--url",
            &format!("rtsp://127.0.0.1:{auth_port}/h265"),
            "--username",
            "cam",
            "--password-stdin",
        ],
        "secret\n",
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "wrongpw",
            "--url",
            &format!("rtsp://127.0.0.1:{auth_port}/sub"),
            "--username",
            "cam",
            "--password-stdin",
        ],
        "nope\n",
    );
    // A bad URL is refused with the reason.
    let (code, _, e) = run(
        &dir,
        &["camera", "add", "x", "--url", "http://example/"],
        "",
    );
    assert_ne!(code, 0);
    assert!(e.contains("not an RTSP URL"), "{e}");

    // A member granted only `front` (before recording starts, so its
    // recordings are encrypted to them too).
    ok(
        &dir,
        &["user", "add", "bob", "--role", "member", "--password-stdin"],
        &format!("{PW}\n"),
    );
    ok(&dir, &["camera", "grant", "front", "bob"], "");
    let (hub, url) = serve(&dir);
    wait_connected(&dir, &["front", "digest", "hevc"], Duration::from_secs(40));
    std::thread::sleep(Duration::from_secs(14));
    let cams = cameras(&dir);
    let wrong = cams.iter().find(|c| c["name"] == "wrongpw").unwrap();
    assert_eq!(wrong["connected"], false);
    assert!(
        wrong["last_error"].as_str().is_some_and(|e| !e.is_empty()),
        "{wrong}"
    );
    let front = cams.iter().find(|c| c["name"] == "front").unwrap();
    assert!(front["fps"].as_f64().unwrap() > 10.0, "{front}");
    assert!(front["recorded_bytes"].as_i64().unwrap() > 0, "{front}");

    // Export the last 10 s of each camera; judge with ffprobe and ffmpeg.
    let f1 = out.path().join("front.mp4");
    export(&dir, "front", "-10s", "now", &f1);
    let p = ffprobe(&f1);
    assert_eq!(p["streams"][0]["codec_name"], "h264");
    assert_eq!(p["streams"][0]["width"], 1280);
    let dur: f64 = p["format"]["duration"].as_str().unwrap().parse().unwrap();
    // Start widened to a key frame (GOP 2 s); end short of now by the GOP
    // still in memory (2 s) plus the rotation lag.
    assert!((6.0..=12.5).contains(&dur), "duration {dur}");
    decodes_cleanly(&f1);

    let f2 = out.path().join("hevc.mp4");
    export(&dir, "hevc", "-8s", "now", &f2);
    assert_eq!(ffprobe(&f2)["streams"][0]["codec_name"], "hevc");
    decodes_cleanly(&f2);
    // --encrypt-to: the stock age CLI decrypts the export.
    if porchlight_base::tools::external("age") {
        let key = out.path().join("key.txt");
        let kg = Command::new("age-keygen")
            .arg("-o")
            .arg(&key)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&kg.stderr);
        let recipient = stderr.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(recipient.starts_with("age1"), "{stderr}");
        let enc = out.path().join("front.mp4.age");
        let (code, o, e) = run(
            &dir,
            &[
                "export",
                "--camera",
                "front",
                "--from",
                "-6s",
                "--to",
                "now",
                "--output",
                enc.to_str().unwrap(),
                "--user",
                "alice",
                "--password-stdin",
                "--quiet",
                "--encrypt-to",
                &recipient,
            ],
            &format!("{PW}\n"),
        );
        assert_eq!(code, 0, "{o}{e}");
        assert!(
            !std::fs::read(&enc)
                .unwrap()
                .windows(4)
                .any(|w| w == b"mdat"),
            "the file is encrypted"
        );
        let dec = out.path().join("front-decrypted.mp4");
        let st = Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&key)
            .arg("-o")
            .arg(&dec)
            .arg(&enc)
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(ffprobe(&dec)["streams"][0]["codec_name"], "h264");
    }
    let f3 = out.path().join("digest.mp4");
    export(&dir, "digest", "-8s", "now", &f3);
    assert_eq!(ffprobe(&f3)["streams"][0]["width"], 640);

    // No plaintext video on disk: windows of the exported samples must not
    // appear in any file of the data folder.
    let mp4 = std::fs::read(&f1).unwrap();
    let mdat = mp4.windows(4).position(|w| w == b"mdat").unwrap() + 4;
    let mut files = Vec::new();
    all_files(&dir, &mut files);
    let disk: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for k in 1..=16 {
        let at = mdat + (mp4.len() - mdat - 64) * k / 17;
        let needle = &mp4[at..at + 48];
        for (f, bytes) in files.iter().zip(&disk) {
            assert!(
                !bytes.windows(48).any(|w| w == needle),
                "plaintext sample bytes found in {}",
                f.display()
            );
        }
    }

    // Playback over HTTP as the member: Range requests, ETag, audit, and
    // refusal for a camera without a grant.
    let agent = ureq::agent();
    let signin: serde_json::Value = agent
        .post(&format!("{url}/api/v1/sessions"))
        .send_json(serde_json::json!({ "username": "bob", "password": PW }))
        .unwrap()
        .into_json()
        .unwrap();
    let bearer = format!("Bearer {}", signin["token"].as_str().unwrap());
    let listed: serde_json::Value = agent
        .get(&format!("{url}/api/v1/cameras"))
        .set("Authorization", &bearer)
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["front"], "a member sees only granted cameras");
    let denied = agent
        .get(&format!("{url}/api/v1/cameras/digest/view.mp4?from=-8s"))
        .set("Authorization", &bearer)
        .call();
    assert!(
        matches!(denied, Err(ureq::Error::Status(403, _))),
        "{denied:?}"
    );
    let view = format!("{url}/api/v1/cameras/front/view.mp4?from=-8s&to=-1s");
    let view = view
        .replace(
            "-8s",
            &jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(8))
                .unwrap()
                .to_string(),
        )
        .replace(
            "to=-1s",
            &format!(
                "to={}",
                jiff::Timestamp::now()
                    .checked_sub(jiff::SignedDuration::from_secs(1))
                    .unwrap()
            ),
        );
    let whole = agent
        .get(&view)
        .set("Authorization", &bearer)
        .call()
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert!(whole
        .header("content-type")
        .unwrap()
        .starts_with("video/mp4"));
    let etag = whole.header("etag").unwrap().to_owned();
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut whole.into_reader(), &mut body).unwrap();
    let part = agent
        .get(&view)
        .set("Authorization", &bearer)
        .set("Range", "bytes=100-1099")
        .call()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.header("etag").unwrap(),
        etag,
        "the same plan serves every range"
    );
    assert_eq!(
        part.header("content-range").unwrap(),
        format!("bytes 100-1099/{}", body.len())
    );
    let mut piece = Vec::new();
    std::io::Read::read_to_end(&mut part.into_reader(), &mut piece).unwrap();
    assert_eq!(piece, &body[100..1100]);
    let f5 = out.path().join("http.mp4");
    std::fs::write(&f5, &body).unwrap();
    assert_eq!(ffprobe(&f5)["streams"][0]["codec_name"], "h264");
    decodes_cleanly(&f5);
    let audit = ok(&dir, &["check"], "");
    assert!(audit.contains("ok   audit chain"), "{audit}");
    let actions = audit_actions(&dir);
    let count = |a: &str| actions.iter().filter(|x| x.as_str() == a).count();
    assert_eq!(
        count("recording.playback"),
        1,
        "one playback, audited once for all its Range requests"
    );
    assert_eq!(count("camera.denied"), 1);
    assert!(count("recording.export") >= 3);

    // Crash: kill -9 while recording, restart, check, export across it.
    drop(hub);
    let killed_at = jiff::Timestamp::now();
    let (code, o, e) = run(&dir, &["check"], "");
    // Open segments are expected before recovery runs; the hub repairs them.
    let _ = (code, o, e);
    let (hub, _) = serve(&dir);
    wait_connected(&dir, &["front"], Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(8));
    let report = ok(&dir, &["check"], "");
    assert!(report.contains("recordings"), "{report}");
    let f4 = out.path().join("across.mp4");
    let from = killed_at
        .checked_sub(jiff::SignedDuration::from_secs(8))
        .unwrap()
        .to_string();
    export(&dir, "front", &from, "now", &f4);
    decodes_cleanly(&f4);
    drop(hub);
}
