//! The key bundle: what a member needs, besides the password, to open the
//! copies after the hub is gone.
//!
//! It holds, for every member with a household key, exactly what the hub's
//! own database holds: the public recipient and the private key wrapped by
//! the password and by the recovery code (Argon2id, design/keys.md). No
//! key is ever in clear, and nothing here lets anyone sign in anywhere.
//! Members are listed by a salted SHA-256 of their user name, not the
//! name: the destination learns how many members there are, not who.
//!
//! Someone holding the bundle can try passwords offline, exactly as with a
//! stolen hub's database; Argon2id's cost per guess is the defence, as
//! there.

use base64::Engine as _;
use porchlight_store::Store;
use porchlight_vault::keys::{self, MemberKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{BackupError, Result};

const FORMAT: &str = "porchlight-backup-keys/1";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The bundle as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyBundle {
    pub format: String,
    /// Hex; salts the member names' hashes.
    pub salt: String,
    pub members: Vec<BundleMember>,
}

/// One member's wrapped key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BundleMember {
    /// Hex SHA-256 of the salt and the user name.
    pub who: String,
    /// `age1…`
    pub recipient: String,
    /// Base64 of the password-wrapped key blob.
    pub by_password: String,
    /// Base64 of the recovery-code-wrapped key blob.
    pub by_recovery: String,
}

/// What the member restoring gives.
#[derive(Debug, Clone)]
pub enum Secret {
    Password(zeroize::Zeroizing<String>),
    RecoveryCode(zeroize::Zeroizing<String>),
}

fn who(salt: &[u8], username: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"porchlight-backup-member\0");
    h.update(salt);
    h.update(username.to_lowercase().as_bytes());
    hex::encode(h.finalize())
}

/// The current bundle of the hub whose store this is, and a digest of its
/// content that does not depend on the random salt (so the uploader sends
/// a new bundle only when a wrapped key changed).
pub async fn current(store: &Store) -> Result<(KeyBundle, [u8; 32])> {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let mut users = store.list_users().await?;
    users.sort_by(|a, b| a.username.cmp(&b.username));
    let mut digest = blake3::Hasher::new();
    digest.update(FORMAT.as_bytes());
    let mut members = Vec::new();
    for u in users {
        let Some(k) = u.keys else { continue };
        for part in [
            u.username.as_bytes(),
            k.recipient.as_bytes(),
            k.by_password.as_slice(),
            k.by_recovery.as_slice(),
        ] {
            digest.update(&(part.len() as u64).to_le_bytes());
            digest.update(part);
        }
        members.push(BundleMember {
            who: who(&salt, &u.username),
            recipient: k.recipient,
            by_password: B64.encode(&k.by_password),
            by_recovery: B64.encode(&k.by_recovery),
        });
    }
    Ok((
        KeyBundle {
            format: FORMAT.into(),
            salt: hex::encode(salt),
            members,
        },
        *digest.finalize().as_bytes(),
    ))
}

impl KeyBundle {
    /// Parses a stored bundle.
    pub fn parse(bytes: &[u8]) -> Result<KeyBundle> {
        let b: KeyBundle = serde_json::from_slice(bytes)
            .map_err(|e| BackupError::Damaged(format!("not a key bundle: {e}")))?;
        if b.format != FORMAT {
            return Err(BackupError::Damaged(format!(
                "a key bundle of format `{}` (this build reads {FORMAT})",
                b.format
            )));
        }
        Ok(b)
    }

    /// The bundle as stored.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Every member's public recipient (what new copies are sealed to).
    pub fn recipients(&self) -> Vec<age::x25519::Recipient> {
        self.members
            .iter()
            .filter_map(|m| m.recipient.parse().ok())
            .collect()
    }

    /// Whether `username` is a member of this bundle.
    pub fn has(&self, username: &str) -> bool {
        self.member(username).is_some()
    }

    /// `username`'s entry, if the bundle lists them.
    pub fn member(&self, username: &str) -> Option<&BundleMember> {
        let salt = hex::decode(&self.salt).ok()?;
        let w = who(&salt, username);
        self.members.iter().find(|m| m.who == w)
    }

    /// `username`'s household key, unwrapped with `secret` (Argon2id: about
    /// a second). The key must match the recipient listed with it.
    pub fn unlock(&self, username: &str, secret: &Secret) -> Result<MemberKey> {
        let m = self.member(username).ok_or_else(|| {
            BackupError::Unlock(format!("`{username}` has no household key in this backup"))
        })?;
        let decode = |s: &str| {
            B64.decode(s)
                .map_err(|e| BackupError::Damaged(format!("the key bundle: {e}")))
        };
        let key = match secret {
            Secret::Password(p) => keys::unwrap_with_password(&decode(&m.by_password)?, p),
            Secret::RecoveryCode(c) => {
                keys::unwrap_with_recovery_code(&decode(&m.by_recovery)?, c.trim())
            }
        }
        .map_err(|e| match e {
            keys::KeyError::WrongSecret => BackupError::Unlock(match secret {
                Secret::Password(_) => format!("wrong password for `{username}`"),
                Secret::RecoveryCode(_) => format!("wrong recovery code for `{username}`"),
            }),
            other => BackupError::Damaged(format!("`{username}`'s wrapped key: {other}")),
        })?;
        if key.recipient_string() != m.recipient {
            return Err(BackupError::Damaged(format!(
                "`{username}`'s wrapped key does not match the public key listed with it"
            )));
        }
        Ok(key)
    }
}
