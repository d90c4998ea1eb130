//! The relay integrity check against real TLS servers on loopback: the
//! hub's own server (its key → ok), a "malicious relay" that terminates
//! TLS with another certificate for the hub's name (→ mismatch), one that
//! replays the hub's certificate without its key (→ mismatch), and nothing
//! listening (→ unreachable, not an alarm).

use std::sync::Arc;

use porchlight_remote::certs::{CertResolver, StoredCert};
use porchlight_remote::settings::IntegrityOutcome;
use porchlight_remote::{integrity, TlsServer};

const NAME: &str = "abcdefghijklmnopqrstuvwxyz.relay.test";

fn self_signed(names: &[&str]) -> StoredCert {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
    StoredCert::from_pem(cert.pem(), key.serialize_pem()).unwrap()
}

/// A TLS server presenting `key` (any router), returning its address.
async fn tls_server(key: Arc<rustls::sign::CertifiedKey>) -> String {
    let resolver = CertResolver::new();
    resolver.set(key);
    let server = TlsServer::new(
        porchlight_remote::certs::server_config(resolver),
        axum::Router::new(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(server.handle().run_listener(listener));
    std::mem::forget(server); // keep it serving for the test's life
    addr
}

#[tokio::test]
async fn own_key_passes_another_key_is_a_mismatch_and_a_replayed_certificate_too() {
    let own = self_signed(&[NAME, &format!("*.{NAME}")]);
    let honest = tls_server(own.certified_key().unwrap()).await;
    let r = integrity::check(&honest, NAME, own.key_spki_sha256).await;
    assert_eq!(r.outcome, IntegrityOutcome::Ok, "{r:?}");

    // A relay that got its own certificate for the hub's name.
    let evil = self_signed(&[NAME]);
    let malicious = tls_server(evil.certified_key().unwrap()).await;
    let r = integrity::check(&malicious, NAME, own.key_spki_sha256).await;
    assert_eq!(r.outcome, IntegrityOutcome::Mismatch, "{r:?}");
    assert_eq!(
        r.presented_spki_sha256.as_deref(),
        Some(evil.info.spki_sha256.as_str())
    );
    assert!(r.detail.contains("not this hub's"), "{}", r.detail);

    // A relay that shows the hub's own (public) certificate but signs with
    // its own key: the handshake proves nothing, which is reported.
    let own_chain = own.certified_key().unwrap().cert.clone();
    let evil_signer = evil.certified_key().unwrap().key.clone();
    let replay = tls_server(Arc::new(rustls::sign::CertifiedKey::new(
        own_chain,
        evil_signer,
    )))
    .await;
    let r = integrity::check(&replay, NAME, own.key_spki_sha256).await;
    assert_eq!(r.outcome, IntegrityOutcome::Mismatch, "{r:?}");

    // Nothing there: cannot check, no alarm.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = gone.local_addr().unwrap().to_string();
    drop(gone);
    let r = integrity::check(&addr, NAME, own.key_spki_sha256).await;
    assert_eq!(r.outcome, IntegrityOutcome::Unreachable, "{r:?}");
}
