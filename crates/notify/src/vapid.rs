//! The hub's VAPID key (RFC 8292): created once, kept in the data folder,
//! and used to sign a short-lived JWT for every push request.
//!
//! **Where the key lives, and why a file.** The private key sits in
//! `vapid.key` (PKCS#8 PEM, mode 0600) next to `porchlight.db`, in the data
//! folder the store already restricts to its owner. A file rather than a
//! store row because:
//!
//! * it is a server credential, not household data: the database is
//!   opened by the CLI, inspected with `sqlite3` when debugging, and copied
//!   around in support requests — a file with its own 0600 mode keeps the
//!   secret out of all of that;
//! * it is the standard PEM an operator can read with `openssl ec`, and
//!   rotating it is "delete the file" (every browser then has to subscribe
//!   again, because a subscription is bound to the key it was made with —
//!   the settings page re-subscribes on its next visit);
//! * creation is atomic without a transaction: the new key is written to a
//!   temporary file, fsynced, then hard-linked to the final name, which
//!   fails if another process got there first — two processes starting on
//!   one folder end up using the same key.
//!
//! The public key goes to browsers as `applicationServerKey`: the
//! uncompressed SEC1 point, base64url without padding.

use std::io::Write;
use std::path::{Path, PathBuf};

use porchlight_pushguard::send::Vapid;

use crate::NotifyError;

/// File name of the private key inside the data folder.
pub const KEY_FILE: &str = "vapid.key";

/// The hub's key; signing and the public key are
/// `porchlight_pushguard::send::Vapid`'s.
pub(crate) struct VapidKey(Vapid);

fn key_err(path: &Path, message: impl ToString) -> NotifyError {
    NotifyError::Key {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

impl VapidKey {
    /// Loads `data_dir/vapid.key`, creating it on first use.
    pub(crate) fn load_or_create(data_dir: &Path) -> Result<VapidKey, NotifyError> {
        let path = data_dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(data_dir, &path)?,
            Err(e) => return Err(key_err(&path, e)),
        };
        let key = Vapid::from_pem(&pem).map_err(|e| {
            key_err(
                &path,
                format!("not a P-256 private key in PEM ({e}); delete it to make a new one (browsers will have to subscribe again)"),
            )
        })?;
        Ok(VapidKey(key))
    }

    pub(crate) fn public_b64(&self) -> &str {
        self.0.public_b64()
    }

    pub(crate) fn vapid(&self) -> &Vapid {
        &self.0
    }
}

/// Writes a new key to `path` (or reads the one another process wrote
/// first); its PEM.
fn create(data_dir: &Path, path: &PathBuf) -> Result<String, NotifyError> {
    std::fs::create_dir_all(data_dir).map_err(|e| key_err(path, e))?;
    let pem = Vapid::generate_pem().map_err(|e| key_err(path, e))?;
    let tmp = data_dir.join(format!(".{KEY_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(pem.as_bytes())?;
        f.sync_all()?;
        Ok(())
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(key_err(path, e));
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(dir) = std::fs::File::open(data_dir) {
                let _ = dir.sync_all();
            }
            tracing::info!(
                "created the hub's Web Push (VAPID) key in {}",
                path.display()
            );
            Ok(pem)
        }
        // Another process created it meanwhile: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path).map_err(|e| key_err(path, e))
        }
        Err(e) => Err(key_err(path, e)),
    }
}
