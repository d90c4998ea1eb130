//! Issue 17, end to end with the real binary against a real S3 server
//! (Garage, one per test binary: support/garage.rs) and a folder.
//!
//! 1. **The burglar test.** The demo's front door sees a person; the hub
//!    copies the footage while it happens to S3 (with a write-only key) and
//!    to a folder; 10 s after the event starts the hub is killed (-9) and
//!    its whole data folder deleted. On the same machine, with no hub
//!    folder, the owner's password alone restores an MP4 that ffprobe
//!    accepts, that covers the event's start, and in which the object
//!    detector finds a person; a second owner's recovery code does the same
//!    from the folder. Nothing stored anywhere holds a byte string of the
//!    video, an MP4 or JPEG header, a camera or user name or a label. Bad
//!    input: a wrong password and an unknown user are refused by name; an
//!    altered part and a missing part are named and the rest restores.
//! 2. **Outage, restart, no deletes.** A doorbell event while the bucket
//!    is unreachable for 60 s (HAProxy, the S3 endpoint the hub uses, is
//!    stopped), with the hub killed and restarted in the middle: after the
//!    bucket returns, the queue drains and the restored MP4 is byte for
//!    byte the hub's own export of the same range. HAProxy refuses and
//!    logs every DELETE: there is none.

#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::garage::{self, Garage};
use support::{free_port, ok, porchlight_with, run_env, Kill, PW};

fn tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "{name} is needed (PORCHLIGHT_REQUIRE_TOOLS=1)"
        );
        eprintln!("SKIPPED: no {name}");
    }
    found
}

/// The S3 environment for a key, against `endpoint`.
fn s3_env(endpoint: &str, key: (&str, &str)) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", garage::REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", key.0.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", key.1.to_owned()),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `porchlight backup VERB --from URL --user USER HOW EXTRA…` (HOW:
/// `--password-stdin` or `--recovery-code-stdin`, the secret on stdin) on
/// a machine with no hub folder, `dir`.
#[allow(clippy::too_many_arguments)]
fn from_backup(
    dir: &Path,
    env: &[(&str, &str)],
    verb: &str,
    url: &str,
    user: &str,
    how: &str,
    extra: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    let mut args = vec!["backup", verb, "--from", url, "--user", user, how];
    args.extend_from_slice(extra);
    run_env(dir, env, &args, stdin)
}

/// Every object at a destination: (name, bytes).
fn all_objects(url: &str, opts: &porchlight_backup::DestOptions) -> Vec<(String, Vec<u8>)> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let d = porchlight_backup::Destination::open(url, opts).unwrap();
        let mut out = Vec::new();
        for l in d.list("").await.unwrap() {
            let b = d.get(&l.name).await.unwrap();
            out.push((l.name, b.to_vec()));
        }
        out
    })
}

fn rw_opts(g: &Garage) -> porchlight_backup::DestOptions {
    porchlight_backup::DestOptions {
        endpoint: Some(g.endpoint.clone()),
        region: Some(garage::REGION.into()),
        access_key_id: Some(garage::RW_KEY.0.into()),
        secret_access_key: Some(garage::RW_KEY.1.into()),
    }
}

fn ffprobe_duration(path: &Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe refuses {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("ffprobe duration of {}: {e}", path.display()))
}

/// "… , <start> to <end>, …" from `backup restore`'s summary line.
fn restored_range(stderr: &str) -> (jiff::Timestamp, jiff::Timestamp) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Restored "))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    let words: Vec<&str> = line.split([' ', ',']).collect();
    let to = words.iter().position(|w| *w == "to").unwrap();
    (
        words[to - 1].parse().unwrap(),
        words[to + 1].parse().unwrap(),
    )
}

/// Byte windows of the video samples in `mp4` (inside `mdat`), to look
/// for at a destination.
fn video_needles(mp4: &[u8]) -> Vec<Vec<u8>> {
    let at = mp4
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    let body = &mp4[at + 4..];
    (1..=24)
        .map(|i| {
            let o = body.len() * i / 26;
            body[o..o + 24].to_vec()
        })
        .collect()
}

fn find_hits(objects: &[(String, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut hits = Vec::new();
    for (name, bytes) in objects {
        for (what, n) in needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                hits.push(format!("{name} holds {what}"));
            }
        }
    }
    hits
}

/// Every file under `dir`: (path relative to it, bytes).
fn folder_objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The parts of each segment in a folder destination, in order.
fn folder_parts(nas: &Path) -> Vec<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(nas.join("s")) else {
        return out;
    };
    for d in dirs {
        let mut parts: Vec<PathBuf> = std::fs::read_dir(d.unwrap().path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        parts.sort();
        out.push(parts);
    }
    out
}

#[test]
fn the_burglar_takes_the_hub_and_the_footage_survives() {
    if !tool("ffprobe") || !tool("ffmpeg") {
        return;
    }
    let Some(g) = garage::garage() else { return };
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("demo");
    let nas = folder.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    let prefix = format!("porchlight-backup-test-{}", std::process::id());
    let hub_env = s3_env(&g.endpoint, garage::WO_KEY);
    let log = folder.path().join("hub.log");
    let mut child = porchlight_with(
        &dir,
        &[
            ("PORCHLIGHT_MQTT_URL", "mqtt://127.0.0.1:1883"),
            ("PORCHLIGHT_MQTT_BASE_TOPIC", &prefix),
        ],
    )
    .args([
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--rtsp-listen",
        "127.0.0.1:0",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).unwrap())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let hub = Kill(child);
    let _web = lines.next().unwrap().unwrap();
    std::thread::spawn(move || for _ in lines {});

    // A second owner, whose recovery code will do the restoring from the
    // folder.
    let out = ok(
        &dir,
        &[
            "user",
            "add",
            "keeper",
            "--role",
            "owner",
            "--password-stdin",
        ],
        &format!("{PW}\n"),
    );
    let code = out
        .lines()
        .skip_while(|l| !l.contains("Key recovery code for `keeper`"))
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("Key recovery code"))
        .unwrap_or_else(|| panic!("no recovery code in: {out}"))
        .to_owned();

    // The hub's key writes only: it cannot read or list the bucket.
    let s3_url = format!("s3://{}/burglar-{}", garage::BUCKET, std::process::id());
    let env = env_refs(&hub_env);
    let (c, o, e) = run_env(
        &dir,
        &env,
        &["backup", "add", &s3_url, "--name", "offsite"],
        "",
    );
    assert_eq!(c, 0, "backup add s3: {o}{e}");
    let nas_url = format!("file://{}", nas.display());
    ok(&dir, &["backup", "add", &nas_url, "--name", "nas"], "");
    let added = jiff::Timestamp::now();
    let listed = ok(&dir, &["backup", "list", "--json"], "");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");

    // A person at the front door, starting well after both owners' keys
    // seal the footage (a recipient change ends the running segment).
    let t0 = Instant::now();
    let event = loop {
        let out = ok(
            &dir,
            &[
                "events",
                "list",
                "--camera",
                "front-door",
                "--kind",
                "person",
                "--json",
                "--user",
                "demo-owner",
                "--password-stdin",
            ],
            "porchlight-demo\n",
        );
        let events: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let fresh = events.into_iter().find(|e| {
            e["start"]
                .as_str()
                .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                .is_some_and(|s| s > added + jiff::SignedDuration::from_secs(15))
        });
        if let Some(e) = fresh {
            break e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(330),
            "no person at the front door within 330 s; the hub said:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let event_id = event["id"].as_i64().unwrap();
    let start: jiff::Timestamp = event["start"].as_str().unwrap().parse().unwrap();
    // 10 s after it starts, the burglar pulls the plug and the disk.
    let kill_at = start + jiff::SignedDuration::from_secs(10);
    while jiff::Timestamp::now() < kill_at {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = ok(&dir, &["backup", "status", "--json"], "");
    drop(hub);
    std::fs::remove_dir_all(&dir).unwrap();
    eprintln!("event {event_id} started {start}; the hub is gone. Backup status then: {status}");

    // A fresh machine: no hub folder.
    let fresh = folder.path().join("fresh");
    let rw_env = s3_env(&g.endpoint, garage::RW_KEY);
    let rw = env_refs(&rw_env);
    let (c, o, e) = from_backup(
        &fresh,
        &rw,
        "events",
        &s3_url,
        "demo-owner",
        "--password-stdin",
        &["--json"],
        "porchlight-demo\n",
    );
    assert_eq!(c, 0, "backup events: {o}{e}");
    let stored: Vec<serde_json::Value> = serde_json::from_str(&o).unwrap();
    let copy = stored
        .iter()
        .find(|x| x["id"] == event_id)
        .unwrap_or_else(|| panic!("event {event_id} is not in the backup: {o}"));
    assert_eq!(copy["kind"], "person", "{copy}");
    assert_eq!(copy["camera"], "front-door", "{copy}");

    let s3_mp4 = folder.path().join("s3.mp4");
    let (c, o, e) = from_backup(
        &fresh,
        &rw,
        "restore",
        &s3_url,
        "demo-owner",
        "--password-stdin",
        &[
            "--event",
            &event_id.to_string(),
            "--output",
            s3_mp4.to_str().unwrap(),
            "--quiet",
        ],
        "porchlight-demo\n",
    );
    assert_eq!(c, 0, "backup restore from S3: {o}{e}");
    assert!(!e.contains("warning:"), "a clean restore: {e}");
    let (from, to) = restored_range(&e);
    assert!(
        from <= start && to >= start + jiff::SignedDuration::from_secs(5),
        "the MP4 ({from} to {to}) covers the event's start ({start}) and what followed it"
    );
    let dur = ffprobe_duration(&s3_mp4);
    assert!(dur >= 12.0, "{dur} s restored");
    assert!(
        !fresh.join(porchlight_store::DB_FILE).exists(),
        "no hub was made"
    );

    // A person is in the footage (the detector, on frames after the start).
    let offset = start.duration_since(from).as_secs_f64();
    let mut seen = Vec::new();
    for dt in [0.5, 1.5, 2.5, 3.5, 5.0, 7.0] {
        let frame = folder.path().join(format!("frame-{dt}.jpg"));
        let st = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-ss",
                &format!("{:.2}", offset + dt),
                "-i",
            ])
            .arg(&s3_mp4)
            .args(["-frames:v", "1"])
            .arg(&frame)
            .status()
            .unwrap();
        if !st.success() || !frame.exists() {
            continue;
        }
        let found = ok(&fresh, &["detect", frame.to_str().unwrap(), "--json"], "");
        let found: Vec<serde_json::Value> = serde_json::from_str(&found).unwrap();
        seen.push(format!("{dt}: {found:?}"));
        if found.iter().any(|d| d["label"] == "person") {
            seen.clear();
            break;
        }
    }
    assert!(
        seen.is_empty(),
        "no person found in the restored frames: {seen:?}"
    );

    // The recovery code alone, from the folder.
    let nas_mp4 = folder.path().join("nas.mp4");
    let (c, o, e) = from_backup(
        &fresh,
        &[],
        "restore",
        &nas_url,
        "keeper",
        "--recovery-code-stdin",
        &[
            "--event",
            &event_id.to_string(),
            "--output",
            nas_mp4.to_str().unwrap(),
            "--quiet",
        ],
        &format!("{code}\n"),
    );
    assert_eq!(c, 0, "backup restore from the folder: {o}{e}");
    let (nfrom, _) = restored_range(&e);
    assert!(nfrom <= start);
    assert!(ffprobe_duration(&nas_mp4) >= 12.0);

    // Nothing readable anywhere it was stored.
    let mp4 = std::fs::read(&s3_mp4).unwrap();
    let mut needles: Vec<(String, Vec<u8>)> = video_needles(&mp4)
        .into_iter()
        .enumerate()
        .map(|(i, n)| (format!("video bytes #{i}"), n))
        .collect();
    needles.push(("an MP4 header".into(), mp4[4..12].to_vec()));
    needles.push((
        "a JPEG header".into(),
        vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F'],
    ));
    for word in [
        "front-door",
        "driveway",
        "person",
        "package",
        "demo-owner",
        "keeper",
    ] {
        needles.push((format!("`{word}`"), word.as_bytes().to_vec()));
    }
    // The needles are real: every one is found in the restored MP4 itself.
    let video_only: Vec<(String, Vec<u8>)> = needles[..25].to_vec();
    assert_eq!(
        find_hits(&[("the MP4".into(), mp4.clone())], &video_only).len(),
        video_only.len()
    );
    let s3_objects = all_objects(&s3_url, &rw_opts(g));
    let nas_objects = folder_objects(&nas);
    assert!(
        s3_objects.len() > 3 && nas_objects.len() > 3,
        "{} objects in S3, {} in the folder",
        s3_objects.len(),
        nas_objects.len()
    );
    let mut hits = find_hits(&s3_objects, &needles);
    hits.extend(find_hits(&nas_objects, &needles));
    assert!(hits.is_empty(), "plaintext at a destination: {hits:?}");
    for (name, _) in s3_objects.iter().chain(&nas_objects) {
        for word in ["front", "door", "person", "driveway"] {
            assert!(!name.contains(word), "an object name says {word}: {name}");
        }
    }

    // Bad input. A wrong password, an unknown member: refused by name.
    let (c, _, e) = from_backup(
        &fresh,
        &[],
        "events",
        &nas_url,
        "demo-owner",
        "--password-stdin",
        &[],
        "not the password\n",
    );
    assert_ne!(c, 0);
    assert!(e.contains("wrong password for `demo-owner`"), "{e}");
    let (c, _, e) = from_backup(
        &fresh,
        &[],
        "events",
        &nas_url,
        "nobody",
        "--password-stdin",
        &[],
        "x\n",
    );
    assert_ne!(c, 0);
    assert!(e.contains("`nobody` has no household key"), "{e}");
    let (c, _, e) = from_backup(
        &fresh,
        &[],
        "events",
        "file:///no/such/disk",
        "keeper",
        "--password-stdin",
        &[],
        "x\n",
    );
    assert_ne!(c, 0);
    assert!(e.contains("does not exist (is the disk mounted?)"), "{e}");

    // An altered part: a byte flipped in the middle of the last part of
    // every segment sent in three parts or more. Each affected segment is
    // named and restored up to it.
    let altered = folder.path().join("nas-altered");
    copy_dir(&nas, &altered);
    let mut flipped = BTreeSet::new();
    for parts in folder_parts(&altered) {
        if let Some(p) = parts.last().filter(|_| parts.len() >= 3) {
            let mut b = std::fs::read(p).unwrap();
            let i = b.len() / 2;
            b[i] ^= 0x40;
            std::fs::write(p, b).unwrap();
            flipped.insert(p.strip_prefix(&altered).unwrap().display().to_string());
        }
    }
    assert!(
        !flipped.is_empty(),
        "segments were sent in three parts or more"
    );
    let out_altered = folder.path().join("altered.mp4");
    let (c, o, e) = from_backup(
        &fresh,
        &[],
        "restore",
        &format!("file://{}", altered.display()),
        "keeper",
        "--password-stdin",
        &[
            "--event",
            &event_id.to_string(),
            "--output",
            out_altered.to_str().unwrap(),
            "--quiet",
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(c, 0, "an altered part still restores the rest: {o}{e}");
    let named: Vec<&str> = e
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("was altered"))
        .collect();
    assert!(!named.is_empty(), "the alteration is reported: {e}");
    assert!(
        named
            .iter()
            .all(|l| flipped.iter().any(|f| l.contains(f.as_str()))),
        "each warning names an altered object: {named:?} vs {flipped:?}"
    );
    assert!(ffprobe_duration(&out_altered) > 0.0);

    // A missing part in the middle of a segment.
    let gappy = folder.path().join("nas-gap");
    copy_dir(&nas, &gappy);
    let mut removed = 0;
    for parts in folder_parts(&gappy) {
        if parts.len() >= 3 {
            std::fs::remove_file(&parts[1]).unwrap();
            removed += 1;
        }
    }
    assert!(removed > 0, "some segment has three parts or more");
    let out_gap = folder.path().join("gap.mp4");
    let (c, o, e) = from_backup(
        &fresh,
        &[],
        "restore",
        &format!("file://{}", gappy.display()),
        "keeper",
        "--password-stdin",
        &[
            "--event",
            &event_id.to_string(),
            "--output",
            out_gap.to_str().unwrap(),
            "--quiet",
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(c, 0, "a missing part still restores the rest: {o}{e}");
    assert!(
        e.lines()
            .any(|l| l.starts_with("warning:") && l.contains("are missing at the destination")),
        "the gap is reported: {e}"
    );
    assert!(ffprobe_duration(&out_gap) > 0.0);
}

// ---------------------------------------------------------------------------
// 2. Outage, restart, no deletes

/// HAProxy in front of Garage's S3 port: refuses (403) and logs every
/// DELETE, logs every request; stoppable to make the bucket unreachable.
struct Proxy {
    port: u16,
    config: PathBuf,
    log: PathBuf,
    proc: Option<Kill>,
}

impl Proxy {
    fn new(dir: &Path, backend: u16) -> Proxy {
        let port = free_port();
        let config = dir.join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                "global\n  log stdout format raw local0\ndefaults\n  mode http\n  log global\n  option httplog\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\nfrontend s3\n  bind 127.0.0.1:{port}\n  http-request deny deny_status 403 if METH_DELETE\n  default_backend garage\nbackend garage\n  server g 127.0.0.1:{backend}\n"
            ),
        )
        .unwrap();
        let mut p = Proxy {
            port,
            config,
            log: dir.join("haproxy.log"),
            proc: None,
        };
        p.start();
        p
    }

    fn start(&mut self) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&self.config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "haproxy did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.proc = Some(Kill(child));
    }

    fn stop(&mut self) {
        self.proc = None;
    }
}

fn doorbell(url: &str, camera: &str) -> i64 {
    let agent = ureq::agent();
    let signin: serde_json::Value = agent
        .post(&format!("{url}/api/v1/sessions"))
        // A member (owners must sign in with two factors).
        .send_json(serde_json::json!({ "username": "bob", "password": PW }))
        .unwrap()
        .into_json()
        .unwrap();
    let bearer = format!("Bearer {}", signin["token"].as_str().unwrap());
    let made: serde_json::Value = agent
        .post(&format!("{url}/api/v1/events"))
        .set("Authorization", &bearer)
        .send_json(serde_json::json!({ "camera": camera, "kind": "doorbell" }))
        .unwrap()
        .into_json()
        .unwrap();
    made["id"].as_i64().unwrap()
}

#[test]
fn an_outage_and_a_restart_lose_nothing_and_nothing_is_deleted() {
    if !tool("ffprobe") || !support::simulator_available() {
        return;
    }
    if Command::new("haproxy").arg("-v").output().is_err() {
        assert!(
            std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "haproxy is needed (PORCHLIGHT_REQUIRE_TOOLS=1)"
        );
        return;
    }
    let Some(g) = garage::garage() else { return };
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("hub");
    let mut proxy = Proxy::new(folder.path(), g.s3_port);
    let cam_port = free_port();
    let _sim = support::camera_sim(cam_port, None);
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
        &["user", "add", "bob", "--role", "member", "--password-stdin"],
        &format!("{PW}\n"),
    );
    ok(
        &dir,
        &[
            "camera",
            "add",
            "porch",
            "--url",
            &format!("rtsp://127.0.0.1:{cam_port}/main"),
        ],
        "",
    );
    ok(&dir, &["camera", "grant", "porch", "bob"], "");
    let s3_url = format!("s3://{}/outage-{}", garage::BUCKET, std::process::id());
    let via_proxy = format!("http://127.0.0.1:{}", proxy.port);
    let hub_env = s3_env(&via_proxy, garage::WO_KEY);
    let (c, o, e) = run_env(
        &dir,
        &env_refs(&hub_env),
        &["backup", "add", &s3_url, "--name", "offsite"],
        "",
    );
    assert_eq!(c, 0, "backup add: {o}{e}");
    // A second destination, a folder the hub may delete old copies from.
    let nas = folder.path().join("nas");
    std::fs::create_dir_all(&nas).unwrap();
    ok(
        &dir,
        &[
            "backup",
            "add",
            &format!("file://{}", nas.display()),
            "--name",
            "nas",
            "--allow-delete",
            "--retain-days",
            "1",
        ],
        "",
    );
    // A third, with a size limit (about 107 KB, one segment or two of the
    // event's): the oldest copies go.
    let small = folder.path().join("small");
    std::fs::create_dir_all(&small).unwrap();
    ok(
        &dir,
        &[
            "backup",
            "add",
            &format!("file://{}", small.display()),
            "--name",
            "small",
            "--allow-delete",
            "--retain-gib",
            "0.0001",
        ],
        "",
    );
    let (hub, url) = support::serve(&dir);
    support::wait_connected(&dir, &["porch"], Duration::from_secs(30));
    // Some footage before the event (its pre-roll).
    std::thread::sleep(Duration::from_secs(12));

    // The bucket goes away; the doorbell rings.
    proxy.stop();
    let id = doorbell(&url, "porch");
    let t_event = Instant::now();
    // 30 s into the outage the hub is killed and started again.
    std::thread::sleep(Duration::from_secs(30));
    drop(hub);
    let (hub, _url) = support::serve(&dir);
    let status = ok(&dir, &["backup", "status", "--json"], "");
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert!(
        status[0]["queued_segments"].as_i64().unwrap() > 0,
        "footage waits for the bucket: {status}"
    );
    while t_event.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let errors_seen = status[0]["last_error"].as_str().map(str::to_owned);
    assert!(
        errors_seen.is_some(),
        "the outage shows in `backup status`: {status}"
    );
    proxy.start();

    // Everything queued goes up once the bucket is back.
    let t0 = Instant::now();
    let status = loop {
        let s = ok(&dir, &["backup", "status", "--json"], "");
        let s: serde_json::Value = serde_json::from_str(&s).unwrap();
        let drained = s.as_array().unwrap().iter().all(|d| {
            d["queued_segments"] == 0 && d["queued_events"] == 0 && d["last_error"].is_null()
        });
        if drained {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "the queue did not drain after the bucket came back: {s}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("drained: {status}");

    // The restore equals the hub's own export of the same range.
    let fresh = folder.path().join("fresh");
    let rw_env = s3_env(&g.endpoint, garage::RW_KEY);
    let restored = folder.path().join("restored.mp4");
    let (c, o, e) = from_backup(
        &fresh,
        &env_refs(&rw_env),
        "restore",
        &s3_url,
        "alice",
        "--password-stdin",
        &[
            "--event",
            &id.to_string(),
            "--output",
            restored.to_str().unwrap(),
            "--quiet",
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(c, 0, "restore after the outage: {o}{e}");
    assert!(!e.contains("warning:"), "nothing lost: {e}");
    let row = ok(&dir, &["events", "list", "--json"], "");
    let row: Vec<serde_json::Value> = serde_json::from_str(&row).unwrap();
    let row = row.iter().find(|r| r["id"] == id).unwrap();
    let start: jiff::Timestamp = row["start"].as_str().unwrap().parse().unwrap();
    let end: jiff::Timestamp = row["end"].as_str().unwrap().parse().unwrap();
    let ten = jiff::SignedDuration::from_secs(10);
    let exported = folder.path().join("exported.mp4");
    ok(
        &dir,
        &[
            "export",
            "--camera",
            "porch",
            "--from",
            &(start - ten).to_string(),
            "--to",
            &(end + ten).to_string(),
            "--output",
            exported.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
            "--quiet",
        ],
        &format!("{PW}\n"),
    );
    let (a, b) = (
        std::fs::read(&restored).unwrap(),
        std::fs::read(&exported).unwrap(),
    );
    assert!(ffprobe_duration(&restored) >= 15.0);
    assert!(
        a == b,
        "the restored MP4 ({} bytes) is the hub's export ({} bytes)",
        a.len(),
        b.len()
    );

    // Retention where deleting is allowed: the folder's copies, made to
    // look three days old, go at the hub's next start; the key bundle
    // stays. (The bucket, where it is not allowed, keeps everything.)
    let files = |sub: &str| {
        let d = nas.join(sub);
        if d.exists() {
            folder_objects(&d).len()
        } else {
            0
        }
    };
    assert!(
        files("s") > 0 && files("d") > 0 && files("e") > 0,
        "the folder got the copies"
    );
    // What the size-limited folder held before that start.
    let limit = (0.0001 * (1u64 << 30) as f64) as usize;
    let sizes = |sub: &str| {
        let d = small.join(sub);
        if d.exists() {
            folder_objects(&d)
                .iter()
                .map(|(_, b)| b.len())
                .sum::<usize>()
        } else {
            0
        }
    };
    // Everything sent there (the limit applies at each hub start).
    let before = status
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "small")
        .unwrap()["uploaded_bytes"]
        .as_u64()
        .unwrap() as usize;
    let st = Command::new("find")
        .arg(&nas)
        .args([
            "-type",
            "f",
            "-exec",
            "touch",
            "-d",
            "3 days ago",
            "{}",
            "+",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    drop(hub);
    let (hub, _url) = support::serve(&dir);
    let t0 = Instant::now();
    while files("s") + files("d") + files("e") > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "old copies are still in the folder: {} parts, {} descriptions, {} events",
            files("s"),
            files("d"),
            files("e")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(files("k") > 0, "the key bundle stays");
    // The size limit (applied at each start: the hub restarted twice since
    // the event): the oldest copies went until the rest fit.
    let t0 = Instant::now();
    while sizes("s") > limit {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{} bytes of footage in the folder limited to {limit}",
            sizes("s")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "size limit: {before} bytes sent, {} kept (limit {limit})",
        sizes("s")
    );
    assert!(
        before > limit,
        "the event's footage ({before} bytes) is over the limit, so the test means something"
    );
    assert!(sizes("s") > 0, "the newest copies stay");
    assert!(small.join("k").exists(), "the key bundle stays");
    drop(hub);

    // The hub never asked to delete anything.
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(log.contains("PUT /"), "the proxy saw the uploads: {log}");
    assert!(!log.contains("DELETE"), "the hub tried to delete: {log}");
}

/// An object over the multipart threshold (an outage's backlog, continuous
/// mode) goes up in parts and comes back whole, on the real S3 server and
/// in a folder.
#[test]
fn large_objects_go_up_in_parts_and_come_back_whole() {
    let Some(g) = garage::garage() else { return };
    let len = porchlight_backup::dest::MULTIPART_OVER + 3 * porchlight_backup::dest::PART_SIZE / 2;
    let mut data = vec![0u8; len];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let folder = tempfile::tempdir().unwrap();
    let nas = format!("file://{}", folder.path().display());
    let s3 = format!("s3://{}/multipart-{}", garage::BUCKET, std::process::id());
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (url, opts) in [(nas, Default::default()), (s3, rw_opts(g))] {
        rt.block_on(async {
            let d = porchlight_backup::Destination::open(&url, &opts).unwrap();
            d.put("s/big/000000000000-000000000001", data.clone().into())
                .await
                .unwrap();
            let back = d.get("s/big/000000000000-000000000001").await.unwrap();
            assert!(
                back.len() == data.len() && back[..] == data[..],
                "{url}: round trip"
            );
            let listed = d.list("s/big/").await.unwrap();
            assert_eq!(listed.len(), 1, "{url}: {listed:?}");
            assert_eq!(listed[0].size, len as u64);
        });
    }
}
