//! ACME DNS-01 against a real test CA: Debian's Pebble, validating through
//! `pebble-challtestsrv`'s DNS (started once for this test binary).
//! Validation is real (no PEBBLE_VA_ALWAYS_VALID): a wrong TXT value fails.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use porchlight_base::clock::{Clock as _, ManualClock, SharedClock};
use porchlight_remote::acme::{self, BoxFuture, TxtPublisher};
use porchlight_remote::settings::IntegrityOutcome;
use porchlight_remote::testing::Pebble;
use porchlight_remote::{HubIdentity, Remote, RemoteSettings, RenewOptions, TlsServer};

const DOMAIN: &str = "relay.test";

fn pebble() -> Option<&'static Pebble> {
    if !porchlight_base::tools::external("pebble")
        || !porchlight_base::tools::external("pebble-challtestsrv")
    {
        return None;
    }
    static P: OnceLock<Pebble> = OnceLock::new();
    // 1 hour certificates: renewal is driven by an injected clock.
    Some(P.get_or_init(|| Pebble::start(Duration::from_secs(3600), None).expect("pebble starts")))
}

fn settings(p: &Pebble) -> RemoteSettings {
    RemoteSettings {
        relay: "127.0.0.1:1".into(),
        relay_fingerprint: String::new(),
        domain: DOMAIN.into(),
        enrolment_token: None,
        acme: p.acme_options(),
        public_tls: None,
    }
}

/// Checks `chain_pem` against `root_pem` for `name`, as a browser would.
fn verify(chain_pem: &str, root_pem: &str, name: &str) -> Result<(), String> {
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    )
    .build()
    .unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    v.verify_server_cert(
        &chain[0],
        &chain[1..],
        &ServerName::try_from(name.to_owned()).unwrap(),
        &[],
        UnixTime::now(),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn issues_a_certificate_for_the_hub_and_its_wildcard_validated_through_dns() {
    let Some(p) = pebble() else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = HubIdentity::load_or_create(dir.path()).unwrap();
    let name = format!("{}.{DOMAIN}", id.hub_id());
    let cert = acme::issue(dir.path(), &p.acme_options(), &name, &p.txt_publisher())
        .await
        .expect("pebble issues");
    assert_eq!(cert.info.names, [name.clone(), format!("*.{name}")]);
    let root = p.root_pem().await.unwrap();
    for n in [name.clone(), format!("lan.{name}")] {
        verify(&cert.chain_pem, &root, &n).unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    assert!(verify(&cert.chain_pem, &root, "other.relay.test").is_err());
    // The ACME account is kept, private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(dir.path().join(acme::ACCOUNT_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
}

/// Publishes wrong values: the CA must refuse (validation is real).
struct WrongTxt(porchlight_remote::testing::ChallTestSrv);

impl TxtPublisher for WrongTxt {
    fn set_txt(&self, name: &str, values: Vec<String>) -> BoxFuture<'_, anyhow::Result<()>> {
        let wrong = values.iter().map(|v| format!("x{v}")).collect();
        self.0.set_txt(name, wrong)
    }
    fn clear_txt(&self, name: &str) -> BoxFuture<'_, anyhow::Result<()>> {
        self.0.clear_txt(name)
    }
}

#[tokio::test]
async fn a_wrong_txt_record_is_refused_by_the_ca_and_the_error_names_the_record() {
    let Some(p) = pebble() else { return };
    let dir = tempfile::tempdir().unwrap();
    let name = format!("wrongtxt.{DOMAIN}");
    let e = acme::issue(
        dir.path(),
        &p.acme_options(),
        &name,
        &WrongTxt(p.txt_publisher()),
    )
    .await
    .expect_err("the CA must not validate a wrong TXT value");
    let e = format!("{e:#}");
    eprintln!("error shown: {e}");
    assert!(
        e.contains(&format!(
            "could not validate the DNS-01 TXT record at _acme-challenge.{name}"
        )),
        "{e}"
    );
    assert!(std::fs::metadata(dir.path().join("remote/tls-cert.pem")).is_err());
}

#[tokio::test]
async fn an_untrusted_ca_and_an_unreachable_ca_are_named() {
    let Some(p) = pebble() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut opts = p.acme_options();
    opts.ca_file = None; // Pebble's API certificate is not in the system roots.
    let e = acme::issue(dir.path(), &opts, "x.relay.test", &p.txt_publisher())
        .await
        .expect_err("untrusted");
    let e = format!("{e:#}");
    eprintln!("error shown: {e}");
    assert!(
        e.contains(&p.directory) && e.contains("--acme-ca-file"),
        "{e}"
    );

    let opts = acme::AcmeOptions {
        directory: "https://127.0.0.1:1/dir".into(),
        ..p.acme_options()
    };
    let e = acme::issue(dir.path(), &opts, "x.relay.test", &p.txt_publisher())
        .await
        .expect_err("unreachable");
    let e = format!("{e:#}");
    eprintln!("error shown: {e}");
    assert!(e.contains("https://127.0.0.1:1/dir"), "{e}");
}

#[tokio::test]
async fn renews_at_two_thirds_of_the_lifetime_retries_and_serves_the_new_certificate() {
    let Some(p) = pebble() else { return };
    porchlight_remote::certs::install_default_provider();
    let dir = tempfile::tempdir().unwrap();
    let id = HubIdentity::load_or_create(dir.path()).unwrap();
    let mut s = settings(p);
    // The integrity check goes to our own HTTPS server below.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    s.public_tls = Some(listener.local_addr().unwrap().to_string());
    s.save(dir.path()).unwrap();
    let remote = Remote::load(dir.path()).unwrap().unwrap();
    assert_eq!(remote.hub_name(), format!("{}.{DOMAIN}", id.hub_id()));
    let tls = TlsServer::new(remote.server_config(), axum::Router::new());
    tokio::spawn(tls.handle().run_listener(listener));

    let manual = Arc::new(ManualClock::at_unix(jiff::Timestamp::now().as_second()));
    let clock: SharedClock = manual.clone();
    let txt = Arc::new(p.txt_publisher());
    // The first attempt fails (the DNS refuses): it must be retried.
    txt.fail_next.store(1, std::sync::atomic::Ordering::SeqCst);
    let opts = RenewOptions {
        tick: Duration::from_millis(100),
        retry_min: Duration::from_millis(200),
        retry_max: Duration::from_secs(2),
    };
    let task = remote.spawn_renewal(txt.clone(), clock, opts);

    let first = wait_for(|| remote.certificate()).await;
    let report = remote.report();
    assert!(report.certificate_error.is_none(), "{report:?}");
    assert!(report.last_renewal.is_some());
    let (r, _) = remote.check_integrity().await;
    assert_eq!(r.outcome, IntegrityOutcome::Ok, "{r:?}");
    let first_key = r.presented_spki_sha256.clone().unwrap();
    assert_eq!(first_key, first.spki_sha256);

    // Not yet due: nothing happens.
    manual.set(
        first
            .renew_at()
            .checked_sub(jiff::SignedDuration::from_secs(60))
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(remote.certificate().unwrap().serial, first.serial);

    // Two thirds of the lifetime: renewed, stored, and served.
    manual.set(first.renew_at());
    let second = wait_for(|| remote.certificate().filter(|c| c.serial != first.serial)).await;
    assert!(second.not_after > first.not_after || second.not_before >= first.not_before);
    assert_ne!(
        second.spki_sha256, first.spki_sha256,
        "a renewal makes a new key"
    );
    let stored = porchlight_remote::certs::StoredCert::load(dir.path())
        .unwrap()
        .unwrap();
    assert_eq!(stored.info.serial, second.serial);
    let (r, _) = remote.check_integrity().await;
    assert_eq!(r.outcome, IntegrityOutcome::Ok, "{r:?}");
    assert_eq!(r.presented_spki_sha256.unwrap(), second.spki_sha256);
    assert!(manual.now() >= first.renew_at());
    task.abort();
}

async fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
