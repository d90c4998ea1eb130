//! A real S3 server for the backup tests: Garage 2.x, one node on
//! loopback, started once per test binary (the first test that asks) and
//! stopped when the binary exits.
//!
//! Set-up as a household would do it: one node, `replication_factor = 1`,
//! `layout assign` + `layout apply` before the first write, one bucket,
//! and two keys imported with fixed test credentials — one that may read
//! and write, and a write-only one (no read, no list) like the hub's
//! recommended key (design/backup.md).
//!
//! The server runs under `sh`, reading its standard input: when the test
//! binary exits, for any reason, the pipe closes and the shell stops the
//! server. Nothing is left behind.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::free_port;

pub const REGION: &str = "garage";
pub const BUCKET: &str = "porchlight-test";
/// Reads and writes the bucket.
pub const RW_KEY: (&str, &str) = (
    "GK0123456789abcdef01234567",
    "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
);
/// Writes only: no read, no list (the hub's recommended key).
pub const WO_KEY: (&str, &str) = (
    "GKfedcba9876543210fedcba98",
    "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
);

pub struct Garage {
    /// `http://127.0.0.1:PORT`, the S3 API.
    pub endpoint: String,
    pub s3_port: u16,
    pub dir: PathBuf,
    /// Held open for the life of the test binary; its end stops the server.
    _stdin: Mutex<ChildStdin>,
    /// The shell that runs it (it outlives the test binary only as long as
    /// `garage` takes to stop).
    _shell: Mutex<std::process::Child>,
}

/// The `garage` program: on PATH, or where `cargo install` puts it.
pub fn program() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("garage"))
            .find(|f| f.is_file())
    });
    on_path.or_else(|| {
        let f = PathBuf::from(std::env::var_os("HOME")?).join(".cargo/bin/garage");
        f.is_file().then_some(f)
    })
}

static GARAGE: OnceLock<Option<Garage>> = OnceLock::new();

/// The suite's Garage, started on first use; None (test skipped) when the
/// program is missing, unless PORCHLIGHT_REQUIRE_TOOLS=1.
pub fn garage() -> Option<&'static Garage> {
    GARAGE
        .get_or_init(|| {
            let Some(bin) = program() else {
                assert!(
                    std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() != Ok("1"),
                    "garage is needed (scripts/install-test-deps installs it; PORCHLIGHT_REQUIRE_TOOLS=1)"
                );
                eprintln!("SKIPPED: no `garage` program");
                return None;
            };
            Some(start(&bin))
        })
        .as_ref()
}

fn start(bin: &PathBuf) -> Garage {
    let dir = std::env::temp_dir().join(format!("porchlight-garage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (s3_port, rpc_port, admin_port) = (free_port(), free_port(), free_port());
    let config = dir.join("garage.toml");
    std::fs::write(
        &config,
        format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "4f6a2c1e9b8d7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "porchlight-test-admin-token"
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("garage.log")).unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -c "$1" server & p=$!; cat >/dev/null; kill $p; wait $p; rm -rf "$2""#)
        .arg(bin)
        .arg(&config)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let cli = |args: &[&str]| -> String {
        let out = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "garage {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Up when `status` (which asks the running server over RPC) answers.
    let t0 = Instant::now();
    loop {
        let out = Command::new(bin)
            .arg("-c")
            .arg(&config)
            .arg("status")
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "garage did not start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("garage.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let node_id = cli(&["node", "id", "-q"]).trim().to_owned();
    let short = node_id.split('@').next().unwrap();
    cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &short[..16]]);
    cli(&["layout", "apply", "--version", "1"]);
    cli(&["bucket", "create", BUCKET]);
    cli(&[
        "key",
        "import",
        "--yes",
        "-n",
        "porchlight-rw",
        RW_KEY.0,
        RW_KEY.1,
    ]);
    cli(&[
        "key",
        "import",
        "--yes",
        "-n",
        "porchlight-wo",
        WO_KEY.0,
        WO_KEY.1,
    ]);
    cli(&[
        "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", RW_KEY.0,
    ]);
    cli(&["bucket", "allow", "--write", BUCKET, "--key", WO_KEY.0]);
    // Ready when the bucket answers S3 requests (the layout settles).
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "garage's S3 port");
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("garage: S3 at http://127.0.0.1:{s3_port}, bucket {BUCKET}");
    let mut stdin = stdin;
    let _ = stdin.flush();
    Garage {
        endpoint: format!("http://127.0.0.1:{s3_port}"),
        s3_port,
        dir,
        _stdin: Mutex::new(stdin),
        _shell: Mutex::new(child),
    }
}
