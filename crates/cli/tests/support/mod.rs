//! Helpers shared by the end-to-end tests that drive the real `porchlight`
//! binary against GStreamer camera simulators (../shared/tools/rtsp_cam.py)
//! and judge the results with ffprobe/ffmpeg: `recorder.rs`, `restream.rs`
//! and `recorder_stress.rs`. Not every test file uses every helper, hence
//! `#[allow(dead_code)]` on their `mod support;` lines.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod garage;

/// The password of the test users.
pub const PW: &str = "a long household passphrase";
/// `PORCHLIGHT_RECORDER_SEGMENT_SECONDS` (the smallest the config allows).
pub const SEGMENT_SECONDS: i64 = 5;

// ---------------------------------------------------------------------------
// Processes

/// A child killed (SIGKILL) and reaped when dropped, also when a test panics.
pub struct Kill(pub Child);
impl Kill {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn shared_tools() -> PathBuf {
    std::env::var_os("PORCHLIGHT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
        .join("tools")
}

/// Can the GStreamer camera simulator run here? Skips (false, with a
/// note) or, under `PORCHLIGHT_REQUIRE_TOOLS=1`, panics when it cannot.
pub fn simulator_available() -> bool {
    let ok = shared_tools().join("rtsp_cam.py").exists()
        && Command::new("/usr/bin/python3")
            .args(["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("the RTSP camera simulator (../shared/tools/rtsp_cam.py with GStreamer) is required; scripts/install-test-deps installs GStreamer");
        }
        eprintln!("SKIPPED: the RTSP camera simulator is not available");
    }
    ok
}

/// Starts rtsp_cam.py on `port` (with Digest credentials when `auth` is
/// given, its stderr to `stderr`) and returns once it printed its banner.
fn spawn_sim(port: u16, auth: Option<(&str, &str)>, stderr: Stdio) -> Kill {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(shared_tools().join("rtsp_cam.py"))
        .arg(port.to_string());
    if let Some((u, p)) = auth {
        cmd.args([u, p]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start rtsp_cam.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sim = Kill(child);
    assert!(line.contains("RTSP camera sim"), "simulator said {line:?}");
    sim
}

/// Starts rtsp_cam.py on `port` (its stderr discarded), with Digest
/// credentials when `auth` is given.
pub fn camera_sim(port: u16, auth: Option<(&str, &str)>) -> Kill {
    spawn_sim(port, auth, Stdio::null())
}

/// Starts rtsp_cam.py on `port`, its stderr appended to `log`, and returns
/// once it accepts connections (the script prints its banner even when it
/// could not bind).
pub fn camera_sim_logged(port: u16, log: &Path) -> Kill {
    let err = File::options().create(true).append(true).open(log).unwrap();
    let sim = spawn_sim(port, None, err.into());
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the simulator does not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    sim
}

/// The `porchlight` binary on `dir` with the test knobs (cheap Argon2,
/// short segments, frequent flushes, a 1 MiB free-space floor).
pub fn porchlight(dir: &Path) -> Command {
    porchlight_with(dir, &[])
}

/// [`porchlight`] with further environment variables.
pub fn porchlight_with(dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_porchlight"));
    c.arg("--data-dir").arg(dir);
    c.env("PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB", "64")
        .env("PORCHLIGHT_ACCOUNTS_ARGON2_T", "1")
        .env(
            "PORCHLIGHT_RECORDER_SEGMENT_SECONDS",
            SEGMENT_SECONDS.to_string(),
        )
        .env("PORCHLIGHT_RECORDER_FLUSH_INTERVAL_SECONDS", "1")
        .env("PORCHLIGHT_RECORDER_MIN_FREE_MIB", "1")
        // Hubs under test run side by side: no fixed neighborhood port.
        .env("PORCHLIGHT_NEIGHBORHOOD_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `porchlight ARGS` with `stdin`: (exit code or -1, stdout, stderr).
/// A panic in porchlight fails the test.
pub fn run(dir: &Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    run_env(dir, &[], args, stdin)
}

/// [`run`] with extra environment variables.
pub fn run_env(
    dir: &Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    let mut child = porchlight_with(dir, env)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!e.contains("panicked"), "porchlight panicked: {e}");
    (out.status.code().unwrap_or(-1), o, e)
}

/// [`run`] that must succeed; returns stdout.
pub fn ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let (code, o, e) = run(dir, args, stdin);
    assert_eq!(code, 0, "porchlight {args:?} failed:\n{o}\n{e}");
    o
}

/// `porchlight serve` on `dir` (stderr discarded); returns it and its URL
/// (without the trailing slash) once it has printed its address.
pub fn serve(dir: &Path) -> (Kill, String) {
    serve_with(dir, &[])
}

/// [`serve`] with further environment variables (e.g. another segment
/// length).
pub fn serve_with(dir: &Path, env: &[(&str, &str)]) -> (Kill, String) {
    let mut child = porchlight_with(dir, env)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("running at"), "{line}");
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    (Kill(child), url)
}

// ---------------------------------------------------------------------------
// Cameras

/// `porchlight camera list --json`.
pub fn cameras(dir: &Path) -> Vec<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&ok(dir, &["camera", "list", "--json"], ""))
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// One camera of [`cameras`]; panics when there is none by that name.
pub fn camera(dir: &Path, name: &str) -> serde_json::Value {
    cameras(dir)
        .into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no camera {name}"))
}

/// Polls every 500 ms until all `names` are connected; fails after `within`.
pub fn wait_connected(dir: &Path, names: &[&str], within: Duration) {
    let t0 = Instant::now();
    loop {
        let cams = cameras(dir);
        let all = names.iter().all(|n| {
            cams.iter()
                .any(|c| c["name"] == *n && c["connected"] == true)
        });
        if all {
            return;
        }
        assert!(
            t0.elapsed() < within,
            "cameras {names:?} not connected after {within:?}: {cams:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

// ---------------------------------------------------------------------------
// Exports, judged by ffprobe and ffmpeg

/// `porchlight export` as alice (password [`PW`]); must succeed.
pub fn export(dir: &Path, camera: &str, from: &str, to: &str, out: &Path) {
    let (code, stdout, stderr) = run(
        dir,
        &[
            "export",
            "--camera",
            camera,
            "--from",
            from,
            "--to",
            to,
            "--output",
            out.to_str().unwrap(),
            "--user",
            "alice",
            "--password-stdin",
            "--quiet",
        ],
        &format!("{PW}\n"),
    );
    assert_eq!(code, 0, "export of {camera} failed:\n{stdout}\n{stderr}");
}

pub fn ffprobe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,nb_frames:format=duration",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// ffmpeg decodes the whole file without a single error message.
pub fn decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "decode errors in {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `sql` (with `binds` as text parameters) on the hub's database at
/// `db`, opened read-only so a running hub is not disturbed, and returns
/// the rows.
#[allow(dead_code)]
pub fn db_rows(db: &Path, sql: &str, binds: &[&str]) -> Vec<sqlx::sqlite::SqliteRow> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::{ConnectOptions as _, Connection as _};
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("open {} read-only: {e}", db.display()));
        let mut q = sqlx::query(sql);
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q
            .fetch_all(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        conn.close().await.unwrap();
        rows
    })
}

/// `ffprobe` on an RTSP URL over TCP: (success, first stream's codec_name,
/// width and height as JSON, stderr).
#[allow(dead_code)]
pub fn probe_rtsp(url: &str) -> (bool, serde_json::Value, String) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-rw_timeout",
            "15000000",
        ])
        .args([
            "-show_entries",
            "stream=codec_name,width,height",
            "-of",
            "json",
        ])
        .arg(url)
        .output()
        .expect("run ffprobe");
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json["streams"][0].clone(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
