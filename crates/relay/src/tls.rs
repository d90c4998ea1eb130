//! TLS for the control connection: the relay's long-term key and its
//! self-signed certificate, the server config, and the hub's client config
//! that pins the relay by the SHA-256 of its SubjectPublicKeyInfo.
//!
//! Invariants:
//! * Only the relay's private key is stored (`relay-key.pem`, mode 0600);
//!   the certificate is made anew from it at each start. The fingerprint is
//!   of the SPKI, so it never changes while the key stays.
//! * The control connection is TLS 1.3 only (the exporter used for channel
//!   binding is then well defined) and uses the ring provider explicitly;
//!   [`install_default_provider`] also makes ring the process default once,
//!   because two compiled-in providers and no default make rustls panic.
//! * The hub's verifier accepts exactly one key: any other certificate,
//!   however well signed, is refused with the fingerprint it carried.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::RelayError;
use crate::token::fingerprint_text;

/// File holding the relay's control key in the relay's data folder.
pub const KEY_FILE: &str = "relay-key.pem";

/// Makes ring rustls's process-wide default provider, once. Harmless if a
/// default is already installed (by us or by another part of the program).
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// ring, with AES-128-GCM preferred for the tunnel: every forwarded byte is
/// encrypted once more into it (design/remote.md, "Cost"), and on CPUs with
/// AES instructions AES-128 does that with fewer rounds than AES-256 at a
/// security level TLS treats as standard (its saving is not measured on its
/// own: bench/RESULTS.md). The other suites stay, after it.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    Arc::new(p)
}

/// The relay's control identity.
pub struct RelayIdentity {
    key: rcgen::KeyPair,
    /// SHA-256 of the SPKI.
    pub fingerprint: [u8; 32],
}

impl RelayIdentity {
    /// Loads the key from `dir`, creating the folder and a new key the
    /// first time.
    pub fn load_or_create(dir: &Path) -> Result<RelayIdentity, RelayError> {
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(pem) => rcgen::KeyPair::from_pem(&pem).map_err(|e| {
                RelayError::Tls(format!(
                    "the relay key {} is unreadable: {e}",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate()
                    .map_err(|e| RelayError::Tls(format!("cannot make a relay key: {e}")))?;
                crate::store::write_private(&path, key.serialize_pem().as_bytes())?;
                key
            }
            Err(e) => {
                return Err(RelayError::storage(format!(
                    "cannot read the relay key {}",
                    path.display()
                ))(e))
            }
        };
        let fingerprint = Sha256::digest(key.public_key_der()).into();
        Ok(RelayIdentity { key, fingerprint })
    }

    /// The fingerprint as written in tokens.
    pub fn fingerprint_text(&self) -> String {
        fingerprint_text(&self.fingerprint)
    }

    /// A rustls server config presenting a fresh self-signed certificate
    /// for this key.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, RelayError> {
        let tls = |e: &dyn std::fmt::Display| RelayError::Tls(format!("relay certificate: {e}"));
        let params = rcgen::CertificateParams::new(vec!["porchlight-relay".to_owned()])
            .map_err(|e| tls(&e))?;
        let cert = params.self_signed(&self.key).map_err(|e| tls(&e))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls(&e))?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .map_err(|e| tls(&e))
    }
}

/// The hub's client config: TLS 1.3, the relay pinned by `fingerprint`.
pub fn pinned_client_config(fingerprint: [u8; 32]) -> Result<rustls::ClientConfig, RelayError> {
    let provider = provider();
    let verifier = Arc::new(PinnedRelay {
        fingerprint,
        provider: provider.clone(),
    });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| RelayError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// SHA-256 of a certificate's SPKI.
pub fn spki_fingerprint(cert: &CertificateDer<'_>) -> Result<[u8; 32], String> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| format!("the relay's certificate does not parse: {e}"))?;
    Ok(Sha256::digest(ee.subject_public_key_info().as_ref()).into())
}

#[derive(Debug)]
struct PinnedRelay {
    fingerprint: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedRelay {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = spki_fingerprint(end_entity).map_err(rustls::Error::General)?;
        if got != self.fingerprint {
            return Err(rustls::Error::General(
                RelayError::WrongRelayKey {
                    expected: fingerprint_text(&self.fingerprint),
                    got: fingerprint_text(&got),
                }
                .to_string(),
            ));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "the relay control connection is TLS 1.3 only".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
