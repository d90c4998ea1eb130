//! The hub's TLS certificate: where it is kept, what is in it, when to
//! renew it, and the resolver that lets a running server swap it.
//!
//! Files (in the data folder): `remote/tls-cert.pem` (the chain as the CA
//! sent it, leaf first) and `remote/tls-key.pem` (the private key, PKCS#8,
//! mode 0600). The key is generated on the hub by [`crate::acme`] and never
//! leaves it: it is not in the ACME order (only a CSR signed with it is),
//! and nothing sends it to the relay.
//!
//! Invariants: the chain and key are written key first, then chain, each
//! atomically; [`StoredCert::load`] checks that the leaf's public key is
//! the key's (a torn pair is an error naming both files, never served).
//! [`CertResolver`] always hands out one consistent [`CertifiedKey`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwapOption;
use jiff::Timestamp;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::files;

/// The chain file, relative to the data folder.
pub const CERT_FILE: &str = "remote/tls-cert.pem";
/// The key file, relative to the data folder.
pub const KEY_FILE: &str = "remote/tls-key.pem";

/// What `remote status` shows about a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// The DNS names in the leaf (subjectAltName).
    pub names: Vec<String>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo, lowercase hex.
    pub spki_sha256: String,
    /// The leaf's serial number, hex.
    pub serial: String,
}

impl CertInfo {
    /// When to renew: two thirds of the way through the lifetime.
    pub fn renew_at(&self) -> Timestamp {
        let life = self.not_after.as_microsecond() - self.not_before.as_microsecond();
        Timestamp::from_microsecond(self.not_before.as_microsecond() + life * 2 / 3)
            .unwrap_or(self.not_before)
    }

    /// Parses the leaf certificate (DER).
    pub fn from_der(der: &[u8]) -> anyhow::Result<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| anyhow::anyhow!("the certificate cannot be parsed: {e}"))?;
        let v = cert.validity();
        let ts = |t: &x509_parser::time::ASN1Time| {
            Timestamp::from_second(t.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
        };
        let mut names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for n in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                    names.push(d.to_string());
                }
            }
        }
        Ok(CertInfo {
            names,
            not_before: ts(&v.not_before),
            not_after: ts(&v.not_after),
            spki_sha256: hex(&Sha256::digest(cert.public_key().raw)),
            serial: cert.raw_serial_as_string().replace(':', ""),
        })
    }
}

/// SHA-256 of a leaf certificate's SubjectPublicKeyInfo (DER in, digest out).
pub fn spki_sha256(cert_der: &[u8]) -> anyhow::Result<[u8; 32]> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| anyhow::anyhow!("the certificate cannot be parsed: {e}"))?;
    Ok(Sha256::digest(cert.public_key().raw).into())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A certificate chain and its key, as stored.
#[derive(Clone)]
pub struct StoredCert {
    pub chain_pem: String,
    pub key_pem: String,
    pub info: CertInfo,
    /// SHA-256 of the private key's public half (SPKI), to compare with
    /// what a server presents.
    pub key_spki_sha256: [u8; 32],
}

impl std::fmt::Debug for StoredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCert")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl StoredCert {
    /// Builds one from PEM text, checking that the key matches the leaf.
    pub fn from_pem(chain_pem: String, key_pem: String) -> anyhow::Result<StoredCert> {
        let chain = parse_chain(&chain_pem)?;
        let leaf = chain.first().context("the certificate chain is empty")?;
        let info = CertInfo::from_der(leaf)?;
        let key = rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| anyhow::anyhow!("the TLS private key cannot be read: {e}"))?;
        let key_spki_sha256: [u8; 32] =
            Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)).into();
        if hex(&key_spki_sha256) != info.spki_sha256 {
            anyhow::bail!("the TLS private key does not belong to the certificate");
        }
        Ok(StoredCert {
            chain_pem,
            key_pem,
            info,
            key_spki_sha256,
        })
    }

    /// Loads the stored pair; `None` when there is no certificate yet.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<StoredCert>> {
        let (cert_path, key_path) = paths(data_dir);
        let chain_pem = match std::fs::read_to_string(&cert_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => anyhow::bail!("cannot read {}: {e}", cert_path.display()),
        };
        let key_pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("cannot read {}", key_path.display()))?;
        StoredCert::from_pem(chain_pem, key_pem)
            .with_context(|| format!("{} / {}", cert_path.display(), key_path.display()))
            .map(Some)
    }

    /// Stores the pair: the key (0600) first, then the chain.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let (cert_path, key_path) = paths(data_dir);
        files::write_private(&key_path, self.key_pem.as_bytes())?;
        files::write_public(&cert_path, self.chain_pem.as_bytes())
    }

    /// The pair as rustls wants it for serving (ring provider).
    pub fn certified_key(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        let chain = parse_chain(&self.chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("the TLS private key cannot be read: {e}"))?;
        let signer = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| anyhow::anyhow!("the TLS private key cannot be used: {e}"))?;
        Ok(Arc::new(CertifiedKey::new(chain, signer)))
    }
}

use rustls::pki_types::pem::PemObject as _;

fn parse_chain(pem: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let chain = chain.map_err(|e| anyhow::anyhow!("the certificate chain is not PEM: {e}"))?;
    if chain.is_empty() {
        anyhow::bail!("the certificate file holds no certificate");
    }
    Ok(chain)
}

/// `(chain, key)` paths in `data_dir`.
pub fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE))
}

/// Removes the stored pair (remote disable).
pub fn remove(data_dir: &Path) -> anyhow::Result<()> {
    let (c, k) = paths(data_dir);
    files::remove_if_exists(&c)?;
    files::remove_if_exists(&k)
}

/// Hands the current certificate to every TLS handshake; [`Self::set`]
/// swaps it (renewal) without restarting anything. Before the first
/// certificate it has none and handshakes fail.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: ArcSwapOption<CertifiedKey>,
}

impl CertResolver {
    pub fn new() -> Arc<CertResolver> {
        Arc::new(CertResolver::default())
    }

    /// Serve `key` from the next handshake on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        self.current.store(Some(key));
    }

    /// Whether a certificate is loaded.
    pub fn has_cert(&self) -> bool {
        self.current.load().is_some()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// A rustls server config (ALPN `http/1.1`, see [`crate::https`]) over
/// `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Arc<rustls::ServerConfig> {
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default TLS versions")
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(cfg)
}

/// Installs ring as the process-wide rustls provider (once; later calls
/// and an already installed provider are fine). `serve` calls it at start.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn renewal_is_two_thirds_through_the_lifetime() {
        let info = CertInfo {
            names: vec![],
            not_before: Timestamp::from_second(1_000).unwrap(),
            not_after: Timestamp::from_second(1_900).unwrap(),
            spki_sha256: String::new(),
            serial: String::new(),
        };
        assert_eq!(info.renew_at(), Timestamp::from_second(1_600).unwrap());
    }

    #[test]
    fn a_pair_round_trips_and_a_mismatched_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&["a.example", "*.a.example"]);
        let s = StoredCert::from_pem(cert.clone(), key).unwrap();
        assert_eq!(s.info.names, ["a.example", "*.a.example"]);
        s.save(dir.path()).unwrap();
        let back = StoredCert::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.info, s.info);
        back.certified_key().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let m = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, 0o600);
        }
        let (_, other_key) = self_signed(&["b.example"]);
        let e = StoredCert::from_pem(cert, other_key)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not belong"), "{e}");
    }
}
