//! The hub's long-term identity: one Ed25519 key in the data folder, and
//! the hub-id derived from it.
//!
//! The key lives in `remote/hub-identity.pem` (PKCS#8, file mode 0600,
//! created on first use and never rewritten). The hub-id is the first 26
//! lowercase base32 characters (130 bits) of SHA-256 of the 32-byte public
//! key — the same function as `porchlight_relay::client::hub_id`, so the
//! relay and the hub always agree on the name `<hub-id>.<domain>`.
//!
//! What a stolen data folder gives an attacker with this key: they can
//! authenticate to the relay as this hub (take over its tunnel, and so
//! receive the browser connections meant for it — though without the TLS
//! key too, browsers refuse them) and ask the relay to publish DNS-01 TXT
//! records for the hub's name, which is enough to obtain a publicly
//! trusted certificate for `<hub-id>.<domain>` from an ACME CA. The data
//! folder also holds the certificate's own private key (`remote/tls-key.pem`),
//! so together they can impersonate the hub to browsers until the owner
//! runs `porchlight remote disable` and enables again (a new key is a new
//! hub-id, a new name). They do NOT get video: recordings are sealed to the
//! household's age keys, which are wrapped by passwords (design/keys.md).
//!
//! Invariants: the key file is written once, atomically (temp file, fsync,
//! rename) with mode 0600 from the start; an existing key is never
//! replaced except by [`remove`] (remote disable).

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::files;

/// Length of a hub-id in characters (130 bits of base32).
pub use porchlight_relay::names::HUB_ID_LEN;

/// The key file, relative to the data folder.
pub const KEY_FILE: &str = "remote/hub-identity.pem";

/// The hub's Ed25519 signing key and its derived id.
#[derive(Clone)]
pub struct HubIdentity {
    key: SigningKey,
    hub_id: String,
}

impl std::fmt::Debug for HubIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubIdentity")
            .field("hub_id", &self.hub_id)
            .finish_non_exhaustive()
    }
}

impl HubIdentity {
    /// The signing key (for the relay tunnel).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The hub-id: 26 lowercase base32 characters.
    pub fn hub_id(&self) -> &str {
        &self.hub_id
    }

    /// Loads the key from `data_dir`, creating it (mode 0600) if there is
    /// none yet.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<HubIdentity> {
        let path = key_path(data_dir);
        if let Some(id) = Self::load(data_dir)? {
            return Ok(id);
        }
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| anyhow::anyhow!("cannot encode the hub's identity key: {e}"))?;
        files::write_private(&path, pem.as_bytes())?;
        Ok(Self::from_key(key))
    }

    /// Loads the key if it exists.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<HubIdentity>> {
        let path = key_path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "cannot read the hub's identity key {}: {e}",
                    path.display()
                ))
            }
        };
        let key = SigningKey::from_pkcs8_pem(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not an Ed25519 PKCS#8 key ({e}); remove it with `porchlight remote disable` to make a new identity",
                path.display()
            )
        })?;
        Ok(Some(Self::from_key(key)))
    }

    fn from_key(key: SigningKey) -> HubIdentity {
        let hub_id = hub_id(&key.verifying_key());
        HubIdentity { key, hub_id }
    }
}

/// Where the key lives.
pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

/// Removes the identity key (remote disable). Missing is fine.
pub fn remove(data_dir: &Path) -> anyhow::Result<()> {
    files::remove_if_exists(&key_path(data_dir))
}

/// The hub-id of a public key: the first 26 characters of the lowercase
/// RFC 4648 base32 encoding of SHA-256(public key bytes) — the relay's own
/// function, so both sides always derive the same name.
pub use porchlight_relay::client::hub_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_created_once_private_and_gives_a_stable_id() {
        let dir = tempfile::tempdir().unwrap();
        let a = HubIdentity::load_or_create(dir.path()).unwrap();
        let b = HubIdentity::load_or_create(dir.path()).unwrap();
        assert_eq!(a.hub_id(), b.hub_id());
        assert_eq!(a.hub_id().len(), HUB_ID_LEN);
        assert!(a
            .hub_id()
            .bytes()
            .all(|c| c.is_ascii_lowercase() || (b'2'..=b'7').contains(&c)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn hub_id_is_base32_of_sha256() {
        use sha2::{Digest, Sha256};
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let digest = Sha256::digest(key.verifying_key().as_bytes());
        let full = data_encoding::BASE32_NOPAD
            .encode(&digest)
            .to_ascii_lowercase();
        assert_eq!(hub_id(&key.verifying_key()), full[..26]);
    }

    #[test]
    fn a_damaged_key_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("remote")).unwrap();
        std::fs::write(key_path(dir.path()), "not a key").unwrap();
        let e = HubIdentity::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("hub-identity.pem") && e.contains("Ed25519"),
            "{e}"
        );
    }
}
