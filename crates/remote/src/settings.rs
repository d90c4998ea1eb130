//! What `porchlight remote enable` stores, and what a running hub reports
//! about its remote access for `remote status` and the settings page.
//!
//! Files (data folder): `remote/settings.json` (mode 0600: it may hold the
//! unspent enrolment token) and `remote/status.json` (written by the
//! running hub on every change; read by `remote status`, which may run in
//! another process). No SQLite migration is needed: these are a handful
//! of values owned by one writer each.
//!
//! Invariants: a hub has remote access enabled exactly when
//! `remote/settings.json` exists; `remote disable` removes it together
//! with the identity, the certificate and the status.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::acme::AcmeOptions;
use crate::files;

/// The settings file, relative to the data folder.
pub const SETTINGS_FILE: &str = "remote/settings.json";
/// The status file, relative to the data folder.
pub const STATUS_FILE: &str = "remote/status.json";

/// Remote access settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSettings {
    /// `host:port` of the relay's control port.
    pub relay: String,
    /// SHA-256 of the relay's control-certificate SPKI, lowercase hex
    /// (from the enrolment token).
    pub relay_fingerprint: String,
    /// The relay's domain: the hub is `<hub-id>.<domain>`.
    pub domain: String,
    /// The enrolment token, until the relay has enrolled this hub.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enrolment_token: Option<String>,
    /// The ACME CA.
    pub acme: AcmeOptions,
    /// Where the integrity check connects to reach this hub's public name
    /// through the relay (`host:port`); `None`: `<hub-id>.<domain>:443`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_tls: Option<String>,
}

impl RemoteSettings {
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<RemoteSettings>> {
        files::read_json(&data_dir.join(SETTINGS_FILE))
    }

    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        files::write_private(
            &data_dir.join(SETTINGS_FILE),
            &serde_json::to_vec_pretty(self)?,
        )
    }

    /// `<hub-id>.<domain>`.
    pub fn hub_name(&self, hub_id: &str) -> String {
        format!("{hub_id}.{}", self.domain)
    }
}

/// Removes the settings and status (remote disable).
pub fn remove(data_dir: &Path) -> anyhow::Result<()> {
    files::remove_if_exists(&data_dir.join(SETTINGS_FILE))?;
    files::remove_if_exists(&data_dir.join(STATUS_FILE))
}

/// The tunnel's state as last seen by the running hub.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelReport {
    pub connected: bool,
    pub since: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// One integrity check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrityReport {
    pub at: Timestamp,
    /// `ok`: the hub's own key; `mismatch`: another key (the warning);
    /// `unreachable`: could not check (relay down, no certificate yet…).
    pub outcome: IntegrityOutcome,
    /// What was found, in words.
    pub detail: String,
    /// SHA-256 of the presented certificate's SPKI, hex, when one was seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presented_spki_sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrityOutcome {
    Ok,
    Mismatch,
    Unreachable,
}

/// What the running hub reports (`remote/status.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeReport {
    pub updated: Option<Timestamp>,
    pub tunnel: Option<TunnelReport>,
    /// The last certificate attempt's error, cleared by a success.
    pub certificate_error: Option<String>,
    pub last_renewal: Option<Timestamp>,
    pub next_renewal: Option<Timestamp>,
    pub integrity: Option<IntegrityReport>,
    /// The latest check that found someone else's key; kept (and shown as
    /// a warning) even after later checks pass, so an intermittent attack
    /// is not forgotten.
    pub last_mismatch: Option<IntegrityReport>,
}

impl RuntimeReport {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(STATUS_FILE)
    }

    pub fn load(data_dir: &Path) -> anyhow::Result<RuntimeReport> {
        Ok(files::read_json(&Self::path(data_dir))?.unwrap_or_default())
    }

    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        files::write_public(&Self::path(data_dir), &serde_json::to_vec_pretty(self)?)
    }
}
