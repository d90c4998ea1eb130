//! Who may watch over RTSP, end to end with the real binary, the GStreamer
//! camera simulator (../shared/tools/rtsp_cam.py) and ffprobe/ffmpeg as the
//! clients: the account password is refused (401: RTSP cannot do a second
//! factor), a token from `porchlight user rtsp-token` plays, a camera
//! outside the token's scope or the user's grants is 403, and a viewer is
//! cut off within 5 s when their token is revoked, their grant withdrawn or
//! their account disabled — each sign-in, refusal, PLAY and end in the
//! audit log. Needs `cargo build -p porchlight` (the test harness builds
//! it) and skips when ffprobe or the simulator is missing.

#[allow(dead_code)]
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{
    camera_sim, db_rows, free_port, ok, porchlight, probe_rtsp, run, simulator_available,
    wait_connected, Kill, PW,
};

/// `porchlight serve` with its RTSP restream on a free port; returns it and
/// the restream's `HOST:PORT`.
fn serve_with_rtsp(dir: &Path) -> (Kill, String) {
    let mut child = porchlight(dir)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--rtsp-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("running at"), "{first}");
    let second = lines.next().unwrap().unwrap();
    let rtsp = second
        .strip_prefix("RTSP restream at rtsp://")
        .and_then(|s| s.strip_suffix('/'))
        .unwrap_or_else(|| panic!("second line {second:?}"))
        .to_owned();
    // Keep reading stdout so the hub never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Kill(child), rtsp)
}

/// `porchlight user rtsp-token NAME --label LABEL [--camera C]… --json`:
/// (id, secret).
fn new_token(dir: &Path, user: &str, label: &str, cameras: &[&str]) -> (i64, String) {
    let mut args = vec!["user", "rtsp-token", user, "--label", label, "--json"];
    for c in cameras {
        args.extend(["--camera", c]);
    }
    let j: serde_json::Value = serde_json::from_str(&ok(dir, &args, "")).unwrap();
    (
        j["id"].as_i64().unwrap(),
        j["secret"].as_str().unwrap().to_owned(),
    )
}

/// ffmpeg watching `url` until the stream ends.
fn watcher(url: &str) -> Kill {
    Kill(
        Command::new("ffmpeg")
            .args([
                "-nostdin",
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                url,
            ])
            .args(["-c", "copy", "-f", "null", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// (actor, action, target, detail) of the audit entries whose action is
/// one of `actions`, oldest first.
fn audit(dir: &Path, actions: &[&str]) -> Vec<(String, String, String, String)> {
    use sqlx::Row as _;
    db_rows(
        &dir.join("porchlight.db"),
        "SELECT actor, action, target, detail FROM audit_log ORDER BY seq",
        &[],
    )
    .iter()
    .map(|r| {
        (
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<String, _>(3),
        )
    })
    .filter(|e| actions.contains(&e.1.as_str()))
    .collect()
}

/// Waits until the audit log holds `n` `live.restream` entries (the
/// watcher's PLAY went through), at most 20 s.
fn wait_playing(dir: &Path, n: usize, w: &mut Kill) {
    let t0 = Instant::now();
    while audit(dir, &["live.restream"]).len() < n {
        if let Ok(Some(st)) = w.0.try_wait() {
            panic!("the viewer stopped before playing: {st}");
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no PLAY");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A little streaming before the cut.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        w.0.try_wait().unwrap().is_none(),
        "the viewer should still be watching"
    );
}

/// Panics unless `child` ends within 5 s (from now).
fn ends_within_5s(child: &mut Child, what: &str) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: the RTSP viewer was still watching 5 s later");
}

#[test]
fn rtsp_takes_tokens_not_passwords_and_cuts_viewers_off_when_access_ends() {
    if !porchlight_base::tools::external("ffprobe") || !simulator_available() {
        return;
    }
    let sim_port = free_port();
    let _sim = camera_sim(sim_port, None);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path();
    // A password a URL carries as it is (the test must not depend on how
    // ffmpeg decodes one).
    let alice_pw = "alice-passphrase-2026";
    ok(
        dir,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "owner",
            "--password-stdin",
        ],
        &format!("{alice_pw}\n"),
    );
    ok(
        dir,
        &["user", "add", "mia", "--role", "member", "--password-stdin"],
        &format!("{PW}\n"),
    );
    ok(
        dir,
        &[
            "camera",
            "add",
            "porch",
            "--url",
            &format!("rtsp://127.0.0.1:{sim_port}/sub"),
            "--no-detect",
        ],
        "",
    );
    let closed = free_port();
    ok(
        dir,
        &[
            "camera",
            "add",
            "yard",
            "--url",
            &format!("rtsp://127.0.0.1:{closed}/x"),
            "--no-detect",
        ],
        "",
    );
    ok(dir, &["camera", "grant", "porch", "mia"], "");
    let (_hub, rtsp) = serve_with_rtsp(dir);
    wait_connected(dir, &["porch"], Duration::from_secs(30));

    // The account password is not an RTSP credential, even the owner's.
    let (good, _, err) = probe_rtsp(&format!("rtsp://alice:{alice_pw}@{rtsp}/porch"));
    assert!(
        !good && err.contains("401"),
        "the password must be refused: {err}"
    );

    // A token plays.
    let (alice_id, alice) = new_token(dir, "alice", "laptop VLC", &[]);
    let (good, stream, err) = probe_rtsp(&format!("rtsp://alice:{alice}@{rtsp}/porch"));
    assert!(good, "ffprobe with a token failed: {err}");
    assert_eq!(stream["codec_name"], "h264", "{stream}");
    assert_eq!(stream["width"], 640);
    // Someone else's token under alice's name is refused.
    let (mia_id, mia) = new_token(dir, "mia", "kitchen tablet", &["porch"]);
    let (good, _, err) = probe_rtsp(&format!("rtsp://alice:{mia}@{rtsp}/porch"));
    assert!(!good && err.contains("401"), "{err}");
    // A member's token shows only what the member may see.
    let (good, _, err) = probe_rtsp(&format!("rtsp://mia:{mia}@{rtsp}/yard"));
    assert!(!good && err.contains("403"), "{err}");
    let (code, _, err) = run(
        dir,
        &[
            "user",
            "rtsp-token",
            "mia",
            "--label",
            "x",
            "--camera",
            "yard",
        ],
        "",
    );
    assert_ne!(code, 0);
    assert!(err.contains("may not see a camera named `yard`"), "{err}");
    // Listed, never with the secret.
    let list = ok(dir, &["user", "rtsp-token", "alice", "--list"], "");
    assert!(
        list.contains("laptop VLC") && !list.contains(&alice),
        "{list}"
    );

    // Revoking the token cuts an open stream within 5 s, and the token no
    // longer opens one.
    let mut w = watcher(&format!("rtsp://alice:{alice}@{rtsp}/porch"));
    wait_playing(dir, 2, &mut w);
    ok(
        dir,
        &[
            "user",
            "rtsp-token",
            "alice",
            "--revoke",
            &alice_id.to_string(),
        ],
        "",
    );
    ends_within_5s(&mut w.0, "token revoked");
    let (good, _, err) = probe_rtsp(&format!("rtsp://alice:{alice}@{rtsp}/porch"));
    assert!(
        !good && err.contains("401"),
        "a revoked token must be refused: {err}"
    );

    // Withdrawing the member's grant cuts their stream.
    let mut w = watcher(&format!("rtsp://mia:{mia}@{rtsp}/porch"));
    wait_playing(dir, 3, &mut w);
    ok(dir, &["camera", "revoke", "porch", "mia"], "");
    ends_within_5s(&mut w.0, "grant withdrawn");
    let (good, _, err) = probe_rtsp(&format!("rtsp://mia:{mia}@{rtsp}/porch"));
    assert!(!good && err.contains("403"), "{err}");

    // Disabling the member cuts their stream.
    ok(dir, &["camera", "grant", "porch", "mia"], "");
    let mut w = watcher(&format!("rtsp://mia:{mia}@{rtsp}/porch"));
    wait_playing(dir, 4, &mut w);
    ok(dir, &["user", "disable", "mia"], "");
    ends_within_5s(&mut w.0, "user disabled");
    let (good, _, err) = probe_rtsp(&format!("rtsp://mia:{mia}@{rtsp}/porch"));
    assert!(!good && err.contains("401"), "{err}");

    // The audit log tells the story.
    let log = audit(
        dir,
        &[
            "rtsp.sign_in",
            "rtsp.sign_in_failed",
            "rtsp.sign_in_refused",
            "rtsp.token_create",
            "rtsp.token_revoke",
            "camera.denied",
            "live.restream",
            "live.restream_end",
            "live.cut",
        ],
    );
    let count =
        |action: &str, actor: &str| log.iter().filter(|e| e.1 == action && e.0 == actor).count();
    // The password attempt, mia's token under alice's name, the revoked token.
    assert_eq!(count("rtsp.sign_in_failed", "alice"), 3, "{log:#?}");
    assert_eq!(
        count("rtsp.sign_in_refused", "mia"),
        1,
        "disabled: {log:#?}"
    );
    assert_eq!(
        count("camera.denied", "mia"),
        2,
        "yard, then porch after the revoke: {log:#?}"
    );
    assert_eq!(count("live.restream", "alice"), 2, "{log:#?}");
    assert_eq!(count("live.restream", "mia"), 2, "{log:#?}");
    let cuts: Vec<&str> = log
        .iter()
        .filter(|e| e.1 == "live.cut")
        .map(|e| e.3.as_str())
        .collect();
    assert_eq!(cuts.len(), 3, "{log:#?}");
    assert!(
        cuts[0].contains(&format!("\"token\":{alice_id}")) && cuts[0].contains("revoked"),
        "{cuts:?}"
    );
    assert!(cuts[1].contains("may no longer watch"), "{cuts:?}");
    assert!(cuts[2].contains("disabled"), "{cuts:?}");
    // ffprobe's stream ended by itself (TEARDOWN or leaving), and said so.
    assert!(count("live.restream_end", "alice") >= 1, "{log:#?}");
    assert_eq!(count("rtsp.token_create", "cli"), 2, "{log:#?}");
    assert_eq!(count("rtsp.token_revoke", "cli"), 1, "{log:#?}");
    let _ = mia_id;
}
