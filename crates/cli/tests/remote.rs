//! `porchlight remote enable` and `porchlight serve` with remote access on
//! (issue 15), driven as an administrator would, against a real relay
//! (porchlight-relay's server, run in this test process on loopback) and a
//! real test ACME CA (Debian's Pebble, validating DNS-01 for real by asking
//! the relay's authoritative DNS). Both are started once for this binary.
//!
//! * `remote enable` enrols with a single-use token and obtains the
//!   certificate through the relay; the hub is then reached through the
//!   relay's TLS port by a client that trusts only Pebble's root;
//! * the hub serves the web app over HTTPS at `lan.<hub-id>.relay.test`
//!   with a certificate a client trusting only Pebble's root accepts, and
//!   its cookies are `Secure` there; plain HTTP on loopback keeps working;
//! * `remote status --json` shows the name, the certificate (expiry, key
//!   fingerprint) and the integrity check's verdict;
//! * a "malicious relay" that terminates TLS for the hub's name with
//!   another certificate is reported: a warning in `remote status`, an
//!   audit entry;
//! * `remote disable` forgets it all, and `serve` then serves no HTTPS;
//! * Chromium with the CA's root in its trust store (an NSS database in a
//!   temporary HOME) sees `window.isSecureContext` at
//!   `https://lan.<hub-id>.relay.test:PORT`; without it, it refuses.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use porchlight_remote::testing::Pebble;
use porchlight_remote::HubIdentity;

const BIN: &str = env!("CARGO_BIN_EXE_porchlight");
const DOMAIN: &str = "relay.test";

/// The relay and the CA every test here uses.
struct Fixture {
    pebble: Pebble,
    relay_dir: tempfile::TempDir,
    /// The relay's control port (hubs) and TLS port (browsers).
    control: SocketAddr,
    tls: SocketAddr,
}

fn fixture() -> Option<&'static Fixture> {
    if !porchlight_base::tools::external("pebble") {
        return None;
    }
    static F: OnceLock<Fixture> = OnceLock::new();
    Some(F.get_or_init(|| {
        let relay_dir = tempfile::tempdir().unwrap();
        let dir = relay_dir.path().to_path_buf();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                use porchlight_relay::server::{Relay, RelayConfig};
                let cfg = RelayConfig {
                    tls_listen: "127.0.0.1:0".parse().unwrap(),
                    control_listen: "127.0.0.1:0".parse().unwrap(),
                    dns_listen: Some("127.0.0.1:0".parse().unwrap()),
                    ..RelayConfig::new(DOMAIN, dir, "127.0.0.1".parse().unwrap())
                };
                let r = Relay::bind(cfg).await.expect("the relay binds");
                tx.send((r.control_addr(), r.tls_addr(), r.dns_addr().unwrap()))
                    .unwrap();
                r.run().await.expect("the relay runs");
            })
        });
        let (control, tls, dns) = rx.recv().unwrap();
        let pebble = Pebble::start(Duration::from_secs(3600), Some(dns)).expect("pebble starts");
        Fixture {
            pebble,
            relay_dir,
            control,
            tls,
        }
    }))
}

fn invite(f: &Fixture) -> String {
    porchlight_relay::server::invite(
        f.relay_dir.path(),
        jiff::SignedDuration::from_hours(1),
        None,
    )
    .unwrap()
    .0
    .to_string()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn porchlight(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PORCHLIGHT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.env("PORCHLIGHT_ACCOUNTS_ARGON2_M_KIB", "8")
        .env("PORCHLIGHT_ACCOUNTS_ARGON2_T", "1")
        .env("PORCHLIGHT_NEIGHBORHOOD_ENABLED", "false")
        .arg("--data-dir")
        .arg(dir);
    cmd
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let o = porchlight(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr,
    )
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `porchlight remote enable` on `dir` with a fresh token, the integrity
/// check aimed at `public_tls`. Returns the hub's name.
fn enable(f: &Fixture, dir: &Path, public_tls: SocketAddr) -> String {
    let token = invite(f);
    let (code, out, err) = run(
        dir,
        &[
            "remote",
            "enable",
            "--relay",
            &f.control.to_string(),
            "--token",
            &token,
            "--acme-directory",
            &f.pebble.directory,
            "--acme-ca-file",
            f.pebble.api_ca_file.to_str().unwrap(),
            "--public-tls",
            &public_tls.to_string(),
        ],
    );
    assert_eq!(code, 0, "remote enable failed:\n{out}\n{err}");
    let id = HubIdentity::load(dir).unwrap().expect("an identity");
    let name = format!("{}.{DOMAIN}", id.hub_id());
    assert!(out.contains(&format!("this hub is {name}")), "{out}");
    assert!(out.contains("Certificate for"), "{out}");
    // The token is spent and not kept.
    assert!(!std::fs::read_to_string(dir.join("remote/settings.json"))
        .unwrap()
        .contains(&token));
    // A second enrolment with it is refused, by name.
    let other = dir.with_file_name("other");
    let (code, _, err) = run(
        &other,
        &[
            "remote",
            "enable",
            "--relay",
            &f.control.to_string(),
            "--token",
            &token,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("relay"), "{err}");
    name
}

struct Hub {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Arc<std::sync::Mutex<String>>,
}

impl Hub {
    fn start(dir: &Path, args: &[&str]) -> Hub {
        let mut child = porchlight(dir)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--rtsp-listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Hub {
            child,
            lines,
            stderr,
        }
    }

    fn line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no line ({e}); stderr:\n{}", self.stderr.lock().unwrap()))
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status(dir: &Path) -> serde_json::Value {
    let (code, out, err) = run(dir, &["remote", "status", "--json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn wait_status(
    dir: &Path,
    what: &str,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(dir);
        if f(&s) {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} never happened: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn serve_speaks_https_at_the_hubs_name_with_secure_cookies_and_passes_its_integrity_check() {
    let Some(f) = fixture() else { return };
    let p = &f.pebble;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let https = free_addr();
    let name = enable(f, &dir, f.tls);
    let lan = format!("lan.{name}");

    let hub = Hub::start(&dir, &["--https-listen", &https.to_string()]);
    let first = hub.line();
    let http = first
        .strip_prefix("Porchlight is running at ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    let _rtsp = hub.line();
    let third = hub.line();
    assert_eq!(
        third,
        format!(
            "HTTPS at https://{lan}:{}/ (listening on {https})",
            https.port()
        )
    );

    let root = rt().block_on(p.root_pem()).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(&lan, https)
        .resolve(&name, f.tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    rt().block_on(async {
        // At home (the LAN listener) and away (through the relay).
        for (host, port) in [(&lan, https.port()), (&name, f.tls.port())] {
            let r = client
                .get(format!("https://{host}:{port}/setup"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("https://{host}: {e:?}"));
            assert_eq!(r.status(), 200, "{host}");
            let csrf: Vec<_> = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .filter(|c| c.starts_with("pl_csrf="))
                .collect();
            assert!(csrf.len() == 1 && csrf[0].contains("; Secure"), "{csrf:?}");
        }
        // A client that does not trust Pebble's root refuses the hub.
        let stranger = reqwest::Client::builder()
            .use_rustls_tls()
            .resolve(&lan, https)
            .build()
            .unwrap();
        assert!(stranger
            .get(format!("https://{lan}:{}/setup", https.port()))
            .send()
            .await
            .is_err());
        // Plain HTTP from loopback (the CLI, scripts) is still served.
        let r = reqwest::get(format!("{http}setup")).await.unwrap();
        assert_eq!(r.status(), 200);
    });

    // A real browser that trusts the CA: a secure context at the LAN name
    // (service workers, push, microphone); one that does not: refused.
    if porchlight_base::tools::external("chromium") && porchlight_base::tools::external("certutil")
    {
        let url = format!("https://{lan}:{}/setup", https.port());
        let (href, secure, sw) = chromium_looks_at(&url, Some(&root));
        assert_eq!((href.as_str(), secure, sw), (url.as_str(), true, true));
        let (href, secure, _) = chromium_looks_at(&url, None);
        assert!(
            !secure || href != url,
            "an untrusted certificate must not give {url} a secure context ({href})"
        );
    }

    // The integrity check through the relay passes; the tunnel is up.
    let s = wait_status(&dir, "an integrity check", |s| {
        s["report"]["integrity"]["outcome"].is_string()
    });
    assert_eq!(s["report"]["tunnel"]["connected"], true, "{s:#}");
    assert_eq!(s["enabled"], true);
    assert_eq!(s["name"], name.as_str());
    assert_eq!(s["report"]["integrity"]["outcome"], "ok", "{s:#}");
    assert!(s.get("warning").is_none(), "{s:#}");
    let cert = &s["certificate"];
    assert_eq!(
        cert["names"],
        serde_json::json!([name, format!("*.{name}")])
    );
    assert_eq!(
        s["report"]["integrity"]["presented_spki_sha256"],
        cert["spki_sha256"]
    );
    let (code, text, _) = run(&dir, &["remote", "status"]);
    assert_eq!(code, 0);
    assert!(text.contains(&format!("Name:        {name}")), "{text}");
    assert!(text.contains("Certificate: valid until"), "{text}");
    drop(hub);

    // Disabled: forgotten, and serve no longer speaks HTTPS.
    let (code, out, err) = run(&dir, &["remote", "disable"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&name), "{out}");
    assert_eq!(status(&dir)["enabled"], false);
    assert!(!dir.join("remote/tls-key.pem").exists());
    assert!(!dir.join("remote/hub-identity.pem").exists());
    let hub = Hub::start(&dir, &["--https-listen", &https.to_string()]);
    // The address and RTSP lines (and any note after them), but no HTTPS
    // line.
    let mut printed = vec![hub.line(), hub.line()];
    while let Ok(l) = hub.lines.recv_timeout(Duration::from_millis(1000)) {
        printed.push(l);
    }
    assert!(
        !printed.iter().any(|l| l.starts_with("HTTPS")),
        "no HTTPS line once disabled: {printed:?}"
    );
    assert!(std::net::TcpStream::connect(https).is_err());
}

/// A TLS server that answers for the hub's name with a certificate of its
/// own (what a relay that obtained one itself would do).
async fn malicious_relay(name: &str) -> SocketAddr {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let stored =
        porchlight_remote::certs::StoredCert::from_pem(cert.pem(), key.serialize_pem()).unwrap();
    let resolver = porchlight_remote::certs::CertResolver::new();
    resolver.set(stored.certified_key().unwrap());
    let server = porchlight_remote::TlsServer::new(
        porchlight_remote::certs::server_config(resolver),
        axum::Router::new(),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(server.handle().run_listener(l));
    std::mem::forget(server);
    addr
}

#[test]
fn a_relay_that_terminates_tls_with_another_certificate_is_reported_and_audited() {
    let Some(f) = fixture() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // The malicious relay runs on its own runtime thread for the test's life.
    let (tx, rx) = mpsc::channel();
    let id_dir = dir.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            std::fs::create_dir_all(&id_dir).unwrap();
            let id = HubIdentity::load_or_create(&id_dir).unwrap();
            let addr = malicious_relay(&format!("{}.{DOMAIN}", id.hub_id())).await;
            tx.send(addr).unwrap();
            std::future::pending::<()>().await
        })
    });
    let evil = rx.recv().unwrap();
    let name = enable(f, &dir, evil);
    let hub = Hub::start(&dir, &["--https-listen", "127.0.0.1:0"]);
    hub.line();
    hub.line();
    assert!(hub.line().starts_with("HTTPS at "));

    let s = wait_status(&dir, "an integrity check", |s| {
        s["report"]["integrity"]["outcome"].is_string()
    });
    assert_eq!(s["report"]["integrity"]["outcome"], "mismatch", "{s:#}");
    let warning = s["warning"]
        .as_str()
        .unwrap_or_else(|| panic!("no warning: {s:#}"));
    assert!(
        warning.contains("not this hub's") && warning.contains(&name),
        "{warning}"
    );
    let (_, text, _) = run(&dir, &["remote", "status"]);
    assert!(text.contains("WARNING:"), "{text}");

    // Audited, by the hub, naming the key it was shown.
    let presented = s["report"]["integrity"]["presented_spki_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<(String, String, String)> = rt().block_on(async {
            use sqlx::{ConnectOptions as _, Connection as _};
            let mut c = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(dir.join("porchlight.db"))
                .connect()
                .await
                .unwrap();
            let r = sqlx::query_as(
                "SELECT actor, target, detail FROM audit_log WHERE action = 'remote.integrity_mismatch'",
            )
            .fetch_all(&mut c)
            .await
            .unwrap();
            c.close().await.unwrap();
            r
        });
        if let Some((actor, target, detail)) = rows.first() {
            assert_eq!(rows.len(), 1, "one alarm, not one per check");
            assert_eq!(actor, "hub");
            assert_eq!(target, &name);
            assert!(detail.contains(&presented), "{detail}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no audit entry");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(hub);
}

/// What Chromium (headless, Debian's) says about `url`: the page's final
/// location, `window.isSecureContext` and whether service workers are
/// available. Names under `relay.test` resolve to 127.0.0.1
/// (`--host-resolver-rules`); `trust_root` is added to the NSS database of
/// a temporary HOME (certutil), as a household's device would have its CA
/// in its trust store.
fn chromium_looks_at(url: &str, trust_root: Option<&str>) -> (String, bool, bool) {
    let home = tempfile::tempdir().unwrap();
    if let Some(root) = trust_root {
        let db = home.path().join(".pki/nssdb");
        std::fs::create_dir_all(&db).unwrap();
        let db_arg = format!("sql:{}", db.display());
        let pem = home.path().join("root.pem");
        std::fs::write(&pem, root).unwrap();
        let ok = Command::new("certutil")
            .args(["-d", &db_arg, "-N", "--empty-password"])
            .status()
            .unwrap();
        assert!(ok.success());
        let ok = Command::new("certutil")
            .args([
                "-d",
                &db_arg,
                "-A",
                "-t",
                "C,,",
                "-n",
                "pebble-test-root",
                "-i",
            ])
            .arg(&pem)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let profile = home.path().join("profile");
    let mut chromium = Command::new(std::env::var("CHROMIUM").unwrap_or("chromium".into()))
        .env("HOME", home.path())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--remote-debugging-port=0",
            "--host-resolver-rules=MAP *.relay.test 127.0.0.1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let result = rt().block_on(async {
        let port_file = profile.join("DevToolsActivePort");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.parse::<u16>().ok()))
            {
                break p;
            }
            assert!(std::time::Instant::now() < deadline, "chromium gave no DevTools port");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut last = (String::new(), false, false);
        while std::time::Instant::now() < deadline {
            let targets: serde_json::Value = match reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => serde_json::Value::Null,
            };
            let ws = targets
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned));
            if let Some(ws) = ws {
                let v = cdp_eval(
                    &ws,
                    "JSON.stringify([location.href, window.isSecureContext, 'serviceWorker' in navigator, document.readyState])",
                )
                .await;
                if let Some(v) = v.and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok()) {
                    last = (
                        v[0].as_str().unwrap_or("").to_owned(),
                        v[1].as_bool().unwrap_or(false),
                        v[2].as_bool().unwrap_or(false),
                    );
                    if v[3] == "complete" && !last.0.starts_with("about:") {
                        return last;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        last
    });
    let _ = chromium.kill();
    let _ = chromium.wait();
    result
}

/// `Runtime.evaluate` over the DevTools protocol; the string result.
async fn cdp_eval(ws: &str, expression: &str) -> Option<String> {
    use futures_util::{SinkExt as _, StreamExt as _};
    let (mut sock, _) = tokio_tungstenite::connect_async(ws).await.ok()?;
    let msg = serde_json::json!({
        "id": 1,
        "method": "Runtime.evaluate",
        "params": { "expression": expression, "returnByValue": true },
    });
    sock.send(tokio_tungstenite::tungstenite::Message::text(
        msg.to_string(),
    ))
    .await
    .ok()?;
    while let Some(Ok(m)) = sock.next().await {
        let Ok(text) = m.to_text() else { continue };
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        if v["id"] == 1 {
            return v["result"]["result"]["value"].as_str().map(str::to_owned);
        }
    }
    None
}
