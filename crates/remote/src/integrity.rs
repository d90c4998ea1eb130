//! The relay integrity check: the hub connects to its own public name
//! through the relay, as any browser would, and checks that the TLS
//! server at the other end holds the hub's own key.
//!
//! Why: the relay is the DNS authority for its domain, so a dishonest
//! relay could obtain a certificate for a hub's name and terminate TLS
//! itself (reading everything). Browsers would accept that certificate.
//! The hub cannot stop the issuance, but it can notice the certificate
//! being used on its path.
//!
//! Invariants:
//! * The verdict rests on the server *proving* a key in the handshake: the
//!   presented leaf is captured, and the handshake signature is checked
//!   against it with rustls' own signature verification. So a relay that
//!   merely replays the hub's (public) certificate without the key fails
//!   the handshake and is reported too.
//! * [`IntegrityOutcome::Mismatch`] means "a server answering for this
//!   hub's name proved a key that is not the hub's": that, and only that,
//!   raises the warning. A relay that cannot be reached is
//!   [`IntegrityOutcome::Unreachable`] (shown, not alarmed).
//! * No chain or name validation: a certificate issued to someone else is
//!   exactly what we look for, trusted or not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::certs::{hex, spki_sha256};
use crate::settings::{IntegrityOutcome, IntegrityReport};

/// How long one check may take (connect plus handshake).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects to `target` (`host:port`) with SNI `server_name` and compares
/// the key the server proves with `own_spki_sha256`.
pub async fn check(target: &str, server_name: &str, own_spki_sha256: [u8; 32]) -> IntegrityReport {
    let at = Timestamp::now();
    match tokio::time::timeout(CHECK_TIMEOUT, presented_key(target, server_name)).await {
        Err(_) => IntegrityReport {
            at,
            outcome: IntegrityOutcome::Unreachable,
            detail: format!(
                "no TLS answer from {target} for {server_name} within {} s",
                CHECK_TIMEOUT.as_secs()
            ),
            presented_spki_sha256: None,
        },
        Ok(Seen::Proved(spki)) if spki == own_spki_sha256 => IntegrityReport {
            at,
            outcome: IntegrityOutcome::Ok,
            detail: format!("{server_name} through {target} presents this hub's own key"),
            presented_spki_sha256: Some(hex(&spki)),
        },
        Ok(Seen::Proved(spki)) => IntegrityReport {
            at,
            outcome: IntegrityOutcome::Mismatch,
            detail: format!(
                "{server_name} through {target} is answered with a certificate whose key is not this hub's (SPKI SHA-256 {}): someone on the path (the relay?) terminates TLS for this hub's name",
                hex(&spki)
            ),
            presented_spki_sha256: Some(hex(&spki)),
        },
        Ok(Seen::Unproved(spki, why)) => IntegrityReport {
            at,
            outcome: IntegrityOutcome::Mismatch,
            detail: format!(
                "{server_name} through {target} presented a certificate (SPKI SHA-256 {}) but the handshake did not prove its key: {why}",
                hex(&spki)
            ),
            presented_spki_sha256: Some(hex(&spki)),
        },
        Ok(Seen::Nothing(why)) => IntegrityReport {
            at,
            outcome: IntegrityOutcome::Unreachable,
            detail: format!("cannot check {server_name} through {target}: {why}"),
            presented_spki_sha256: None,
        },
    }
}

enum Seen {
    /// The server proved the key with this SPKI hash.
    Proved([u8; 32]),
    /// A certificate was shown but the handshake failed afterwards.
    Unproved([u8; 32], String),
    /// No certificate seen.
    Nothing(String),
}

async fn presented_key(target: &str, server_name: &str) -> Seen {
    let name = match ServerName::try_from(server_name.to_owned()) {
        Ok(n) => n,
        Err(e) => return Seen::Nothing(format!("`{server_name}` is not a valid name: {e}")),
    };
    let tcp = match tokio::net::TcpStream::connect(target).await {
        Ok(t) => t,
        Err(e) => return Seen::Nothing(format!("cannot connect: {e}")),
    };
    let provider = rustls::crypto::ring::default_provider();
    let capture = Arc::new(Capture {
        leaf: Mutex::new(None),
        algs: provider.signature_verification_algorithms,
    });
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(capture.clone())
        .with_no_client_auth();
    let res = TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await;
    let leaf = capture.leaf.lock().unwrap().take();
    match (res, leaf) {
        (Ok(_), Some(der)) => match spki_sha256(&der) {
            Ok(s) => Seen::Proved(s),
            Err(e) => Seen::Nothing(format!("the presented certificate: {e}")),
        },
        (Err(e), Some(der)) => match spki_sha256(&der) {
            Ok(s) => Seen::Unproved(s, e.to_string()),
            Err(e) => Seen::Nothing(format!("the presented certificate: {e}")),
        },
        (Ok(_), None) => Seen::Nothing("the handshake showed no certificate".into()),
        (Err(e), None) => Seen::Nothing(format!("TLS handshake failed: {e}")),
    }
}

/// Accepts any certificate (recording the leaf) but verifies the handshake
/// signatures for real.
#[derive(Debug)]
struct Capture {
    leaf: Mutex<Option<Vec<u8>>>,
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Capture {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap() = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
