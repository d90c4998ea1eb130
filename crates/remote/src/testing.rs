//! Test support: Debian's `pebble` (a test ACME CA) and
//! `pebble-challtestsrv` (its mock DNS), started once per test binary.
//!
//! Pebble validates for real: `PEBBLE_VA_ALWAYS_VALID` is removed from its
//! environment, so an order succeeds only when the DNS server given to
//! `-dnsserver` answers the `_acme-challenge` TXT query with the right
//! value. `PEBBLE_VA_NOSLEEP=1` only skips its artificial delays.
//!
//! Pebble needs a TLS certificate for its own API: [`Pebble::start`] makes
//! a throwaway CA with rcgen, writes `api-ca.pem` (what `--acme-ca-file`
//! takes) and a leaf for 127.0.0.1. The CA that signs *issued*
//! certificates is Pebble's own, new at every start: [`Pebble::root_pem`].
//!
//! Invariants: the processes die with the test binary (PR_SET_PDEATHSIG,
//! set from a thread that lives as long as the process), listen on
//! loopback only, on ports chosen free at start.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::acme::{AcmeOptions, BoxFuture, TxtPublisher};

/// A running Pebble (and, unless another DNS server was given, its
/// challenge test server as the DNS it validates against).
#[derive(Debug)]
pub struct Pebble {
    /// The ACME directory URL.
    pub directory: String,
    /// PEM of the CA that signs Pebble's API certificate.
    pub api_ca_file: PathBuf,
    /// Pebble's management API (`/roots/0`).
    pub management: SocketAddr,
    /// The mock DNS's management API, when it runs.
    pub challtestsrv: Option<SocketAddr>,
    /// The DNS server Pebble asks.
    pub dns: SocketAddr,
    _dir: tempfile::TempDir,
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

fn free_udp_tcp_port() -> SocketAddr {
    // The DNS listens on UDP and TCP: take a port free on both.
    loop {
        let t = free_port();
        if std::net::UdpSocket::bind(t).is_ok() {
            return t;
        }
    }
}

impl Pebble {
    /// Starts Pebble with certificates valid `validity` and, when `dns` is
    /// `None`, a challenge test server as its DNS.
    pub fn start(validity: Duration, dns: Option<SocketAddr>) -> anyhow::Result<Pebble> {
        let dir = tempfile::tempdir()?;
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Porchlight test: Pebble API CA");
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])?
            .signed_by(&leaf_key, &issuer)?;
        let api_ca_file = dir.path().join("api-ca.pem");
        std::fs::write(&api_ca_file, ca_cert.pem())?;
        std::fs::write(dir.path().join("api.pem"), leaf.pem())?;
        std::fs::write(dir.path().join("api.key"), leaf_key.serialize_pem())?;

        let acme = free_port();
        let management = free_port();
        let (dns, challtestsrv) = match dns {
            Some(d) => (d, None),
            None => (free_udp_tcp_port(), Some(free_port())),
        };
        let config = serde_json::json!({ "pebble": {
            "listenAddress": acme.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.path().join("api.pem"),
            "privateKey": dir.path().join("api.key"),
            "httpPort": 5002,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "certificateValidityPeriod": validity.as_secs(),
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, serde_json::to_vec(&config)?)?;

        let mut cmds = Vec::new();
        if let Some(m) = challtestsrv {
            let mut c = Command::new("pebble-challtestsrv");
            c.args(["-dns01", &dns.to_string(), "-management", &m.to_string()])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
            cmds.push(c);
        }
        let mut p = Command::new("pebble");
        p.arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string()])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .env_remove("PEBBLE_VA_ALWAYS_VALID");
        cmds.push(p);
        spawn_tied_to_process(cmds, dir.path().join("log"))?;

        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in [Some(acme), Some(management), challtestsrv]
            .into_iter()
            .flatten()
        {
            while std::net::TcpStream::connect(addr).is_err() {
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(dir.path().join("log")).unwrap_or_default();
                    anyhow::bail!("pebble did not start listening on {addr}; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(Pebble {
            directory: format!("https://{acme}/dir"),
            api_ca_file,
            management,
            challtestsrv,
            dns,
            _dir: dir,
        })
    }

    /// Options that make the hub use this Pebble.
    pub fn acme_options(&self) -> AcmeOptions {
        AcmeOptions {
            directory: self.directory.clone(),
            ca_file: Some(self.api_ca_file.clone()),
            wait: Duration::from_secs(60),
        }
    }

    /// PEM of the root that signs the certificates Pebble issues.
    pub async fn root_pem(&self) -> anyhow::Result<String> {
        let pem = std::fs::read(&self.api_ca_file)?;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(c?)?;
        }
        let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(self.management).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(name, tcp)
            .await?;
        let body = http(tls, "GET", "/roots/0", "127.0.0.1", None).await?;
        Ok(body)
    }

    /// A TXT publisher writing to the challenge test server.
    pub fn txt_publisher(&self) -> ChallTestSrv {
        ChallTestSrv {
            management: self.challtestsrv.expect("this Pebble runs no challtestsrv"),
            fail_next: std::sync::atomic::AtomicU32::new(0),
        }
    }
}

use rustls::pki_types::pem::PemObject as _;

/// Publishes TXT records through `pebble-challtestsrv`'s management API.
#[derive(Debug)]
pub struct ChallTestSrv {
    management: SocketAddr,
    /// Refuse this many `set_txt` calls first (to test retries).
    pub fail_next: std::sync::atomic::AtomicU32,
}

impl ChallTestSrv {
    async fn post(&self, path: &str, body: serde_json::Value) -> anyhow::Result<()> {
        let tcp = tokio::net::TcpStream::connect(self.management).await?;
        http(
            tcp,
            "POST",
            path,
            &self.management.to_string(),
            Some(body.to_string()),
        )
        .await?;
        Ok(())
    }
}

impl TxtPublisher for ChallTestSrv {
    fn set_txt(&self, name: &str, values: Vec<String>) -> BoxFuture<'_, anyhow::Result<()>> {
        let host = format!("{name}.");
        Box::pin(async move {
            use std::sync::atomic::Ordering;
            if self
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                anyhow::bail!("test: the DNS refuses this TXT record");
            }
            self.post("/clear-txt", serde_json::json!({ "host": host }))
                .await?;
            for v in values {
                self.post("/set-txt", serde_json::json!({ "host": host, "value": v }))
                    .await?;
            }
            Ok(())
        })
    }

    fn clear_txt(&self, name: &str) -> BoxFuture<'_, anyhow::Result<()>> {
        let host = format!("{name}.");
        Box::pin(async move {
            self.post("/clear-txt", serde_json::json!({ "host": host }))
                .await
        })
    }
}

/// One HTTP/1.1 request with `Connection: close`; the body on 2xx.
async fn http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    method: &str,
    path: &str,
    host: &str,
    body: Option<String>,
) -> anyhow::Result<String> {
    let body = body.unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    // TLS peers may close without close_notify; keep what arrived.
    let _ = s.read_to_end(&mut out).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").context("no HTTP response")?;
    let status = head.split(' ').nth(1).unwrap_or("");
    if !status.starts_with('2') {
        anyhow::bail!("{method} {path}: HTTP {status}: {rest}");
    }
    Ok(rest.to_owned())
}

/// Spawns `cmds` from a thread that never ends, each with
/// PR_SET_PDEATHSIG = SIGKILL (the signal fires when the spawning
/// *thread* exits, hence the thread), output appended to `log`.
fn spawn_tied_to_process(cmds: Vec<Command>, log: PathBuf) -> anyhow::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut res = Ok(());
        let mut children = Vec::new();
        for mut c in cmds {
            let out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log);
            let (o, e) = match out.and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
                Err(_) => (Stdio::null(), Stdio::null()),
            };
            c.stdout(o).stderr(e).stdin(Stdio::null());
            #[cfg(target_os = "linux")]
            unsafe {
                use std::os::unix::process::CommandExt;
                c.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            match c.spawn() {
                Ok(ch) => children.push(ch),
                Err(e) => {
                    res = Err(anyhow::anyhow!("cannot start {:?}: {e}", c.get_program()));
                    break;
                }
            }
        }
        let failed = res.is_err();
        let _ = tx.send(res);
        if failed {
            for mut c in children {
                let _ = c.kill();
            }
            return;
        }
        loop {
            std::thread::park();
        }
    });
    rx.recv().context("the process-spawning thread died")?
}
