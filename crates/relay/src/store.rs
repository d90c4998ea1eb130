//! The relay's data folder: plain files, so `porchlight relay invite` (its
//! own process) and a running `relay serve` share it without a database or
//! locks.
//!
//! ```text
//! relay-key.pem              the control key (0600), see tls.rs
//! relay.json                 the domain and control address `serve` last ran with
//! invites/<sha256>.json      an unused invite: created, expires
//! invites/used/<sha256>.json a spent invite, with the hub it enrolled
//! hubs/<hub-id>.json         an enrolled hub: public key, when, revoked?
//! ```
//!
//! Invariants:
//! * An invite's secret is never stored, only its SHA-256 (the secret has
//!   128 random bits, so a fast hash is enough against guessing).
//! * Spending an invite is one `rename` from `invites/` to `invites/used/`:
//!   of two hubs racing with the same token, exactly one wins.
//! * No hub's private key, and no content, is ever written here.

use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::RelayError;
use crate::names::is_hub_id;
use crate::token::{EnrolmentToken, SECRET_LEN};
use crate::wire::hex;

#[derive(Debug, Serialize, Deserialize)]
struct InviteFile {
    created: Timestamp,
    expires: Timestamp,
    #[serde(default)]
    used_by: Option<String>,
    #[serde(default)]
    used_at: Option<Timestamp>,
}

/// An enrolled hub as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HubRecord {
    pub hub_id: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    pub enrolled: Timestamp,
    #[serde(default)]
    pub revoked: Option<Timestamp>,
}

/// What `relay serve` last ran with, for `relay invite` to put in tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub domain: String,
    /// `host:port` hubs should dial, if known (from --public-ip).
    #[serde(default)]
    pub control_addr: Option<String>,
}

/// The relay's data folder.
#[derive(Debug, Clone)]
pub struct RelayStore {
    dir: PathBuf,
}

impl RelayStore {
    /// Opens `dir`, creating it and its subfolders.
    pub fn open(dir: &Path) -> Result<RelayStore, RelayError> {
        for d in [
            dir.to_path_buf(),
            dir.join("invites/used"),
            dir.join("hubs"),
        ] {
            std::fs::create_dir_all(&d).map_err(RelayError::storage(format!(
                "cannot create the relay folder {}",
                d.display()
            )))?;
        }
        Ok(RelayStore {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records the settings `relay serve` runs with.
    pub fn save_settings(&self, s: &Settings) -> Result<(), RelayError> {
        write_json(&self.dir.join("relay.json"), s)
    }

    /// The settings of the last `relay serve` on this folder, if any.
    pub fn settings(&self) -> Result<Option<Settings>, RelayError> {
        read_json(&self.dir.join("relay.json"))
    }

    /// Makes a new single-use invite valid for `valid`; returns its secret.
    pub fn create_invite(&self, valid: SignedDuration) -> Result<[u8; SECRET_LEN], RelayError> {
        let secret: [u8; SECRET_LEN] = porchlight_base::secret::random_bytes();
        let now = Timestamp::now();
        let expires = now
            .checked_add(valid)
            .map_err(|e| RelayError::Protocol(format!("invalid expiry: {e}")))?;
        let file = InviteFile {
            created: now,
            expires,
            used_by: None,
            used_at: None,
        };
        write_json(&self.invite_path(&secret, false), &file)?;
        Ok(secret)
    }

    fn invite_path(&self, secret: &[u8], used: bool) -> PathBuf {
        let name = format!("{}.json", hex(&Sha256::digest(secret)));
        if used {
            self.dir.join("invites/used").join(name)
        } else {
            self.dir.join("invites").join(name)
        }
    }

    /// Spends the invite in `token` for `hub_id`. Each refusal says which
    /// of wrong, used or expired it is.
    pub fn spend_invite(&self, token: &EnrolmentToken, hub_id: &str) -> Result<(), String> {
        let open = self.invite_path(&token.secret, false);
        let used = self.invite_path(&token.secret, true);
        let file: InviteFile = match read_json(&open) {
            Ok(Some(f)) => f,
            Ok(None) if used.exists() => {
                return Err("this enrolment token was already used; ask the relay's operator for a new one (`porchlight relay invite`)".into())
            }
            Ok(None) => {
                return Err("unknown enrolment token: no invite of this relay has this secret (mistyped, or made for another relay)".into())
            }
            Err(e) => return Err(format!("cannot read the invite: {e}")),
        };
        let now = Timestamp::now();
        if file.expires <= now {
            return Err(format!(
                "this enrolment token expired at {}; ask the relay's operator for a new one",
                file.expires
                    .round(jiff::Unit::Second)
                    .unwrap_or(file.expires)
            ));
        }
        match std::fs::rename(&open, &used) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err("this enrolment token was already used (by a hub that connected at the same moment)".into())
            }
            Err(e) => return Err(format!("cannot spend the invite: {e}")),
        }
        let spent = InviteFile {
            used_by: Some(hub_id.to_owned()),
            used_at: Some(now),
            ..file
        };
        // The rename already decided; this only records who for the operator.
        let _ = write_json(&used, &spent);
        Ok(())
    }

    /// The stored record of `hub_id`, if enrolled.
    pub fn hub(&self, hub_id: &str) -> Result<Option<HubRecord>, RelayError> {
        if !is_hub_id(hub_id) {
            return Ok(None);
        }
        read_json(&self.dir.join("hubs").join(format!("{hub_id}.json")))
    }

    /// Records an enrolled hub.
    pub fn add_hub(&self, key: &VerifyingKey) -> Result<HubRecord, RelayError> {
        let rec = HubRecord {
            hub_id: crate::names::hub_id(key),
            public_key: hex(key.as_bytes()),
            enrolled: Timestamp::now(),
            revoked: None,
        };
        write_json(
            &self.dir.join("hubs").join(format!("{}.json", rec.hub_id)),
            &rec,
        )?;
        Ok(rec)
    }

    /// Marks `hub_id` revoked: its key is refused from its next connection
    /// on, and its names stop resolving.
    pub fn revoke_hub(&self, hub_id: &str) -> Result<HubRecord, RelayError> {
        let mut rec = self.hub(hub_id)?.ok_or_else(|| {
            RelayError::Refused(format!("no hub `{hub_id}` is enrolled at this relay"))
        })?;
        rec.revoked = Some(Timestamp::now());
        write_json(&self.dir.join("hubs").join(format!("{hub_id}.json")), &rec)?;
        Ok(rec)
    }

    /// All enrolled hubs, sorted by id.
    pub fn hubs(&self) -> Result<Vec<HubRecord>, RelayError> {
        let dir = self.dir.join("hubs");
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&dir).map_err(RelayError::storage(format!(
            "cannot list {}",
            dir.display()
        )))?;
        for e in rd.flatten() {
            if let Some(r) = read_json::<HubRecord>(&e.path())? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.hub_id.cmp(&b.hub_id));
        Ok(out)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, RelayError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| RelayError::Storage {
                what: format!("{} is damaged", path.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RelayError::storage(format!(
            "cannot read {}",
            path.display()
        ))(e)),
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), RelayError> {
    let body = serde_json::to_vec_pretty(v).map_err(|e| RelayError::Protocol(e.to_string()))?;
    write_atomic(path, &body, false)
}

/// Writes a file readable by its owner only (the relay's key).
pub(crate) fn write_private(path: &Path, body: &[u8]) -> Result<(), RelayError> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(RelayError::storage(format!(
            "cannot create the relay folder {}",
            d.display()
        )))?;
    }
    write_atomic(path, body, true)
}

/// Write to a temporary file, fsync, rename over: readers see the old or
/// the new file, never half of one.
fn write_atomic(path: &Path, body: &[u8], private: bool) -> Result<(), RelayError> {
    use std::io::Write;
    let err = |what: &str| RelayError::storage(format!("cannot {what} {}", path.display()));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).map_err(err("write"))?;
    f.write_all(body).map_err(err("write"))?;
    f.sync_all().map_err(err("write"))?;
    std::fs::rename(&tmp, path).map_err(err("write"))
}
