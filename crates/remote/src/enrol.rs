//! Turning remote access on: enrolment with the relay and the first
//! certificate, the one sequence behind both `porchlight remote enable` and
//! the settings page's form (issue 15).
//!
//! The order is what makes a failure leave nothing half-done:
//!
//! 1. the token is parsed and the relay address settled (the token's, or
//!    the one given) — a malformed token changes nothing;
//! 2. the settings are written (with the token, mode 0600) and one tunnel
//!    is opened, authenticated by the hub's key and the token; **a refusal
//!    removes the settings again**: remote access stays off;
//! 3. the spent token is forgotten, and the certificate is obtained by
//!    DNS-01 through that tunnel. A failure here leaves remote access on
//!    (the relay knows the hub) and says so: the running hub keeps trying.
//!
//! Invariant: at most one enrolment per data folder — an enabled folder is
//! refused with what to do (`remote disable` first).

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::certs::CertInfo;
use crate::{relay, AcmeOptions, HubIdentity, Remote, RemoteSettings};

/// What to enrol with.
#[derive(Debug, Clone, Default)]
pub struct EnrolRequest {
    /// The relay's control port, `host:port`; `None`: the token's.
    pub relay: Option<String>,
    /// The single-use token from the relay's operator.
    pub token: String,
    /// The ACME CA (default: Let's Encrypt).
    pub acme: AcmeOptions,
    /// Where the hub's public name is reached, for the integrity check.
    pub public_tls: Option<String>,
}

/// What enrolment did.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// `<hub-id>.<domain>`.
    pub name: String,
    /// The relay's control address used.
    pub relay: String,
    /// The first certificate.
    pub certificate: CertInfo,
}

/// Why enrolment stopped, and whether remote access is on anyway.
#[derive(Debug)]
pub enum EnrolError {
    /// Nothing changed (bad token, already on, relay refused or absent).
    Refused(anyhow::Error),
    /// Enrolled (the hub has its name), but no certificate yet; a running
    /// hub keeps trying.
    NoCertificate { name: String, error: anyhow::Error },
}

impl std::fmt::Display for EnrolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrolError::Refused(e) => write!(f, "{e:#}"),
            EnrolError::NoCertificate { name, error } => write!(
                f,
                "remote access is on, but the certificate for {name} could not be obtained (the running hub keeps trying): {error:#}"
            ),
        }
    }
}

impl std::error::Error for EnrolError {}

/// How long enrolment waits for the relay to accept the tunnel.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// Enrols `data_dir`'s hub with a relay and obtains its first certificate
/// (the module docs say what a failure leaves behind).
pub async fn enrol(data_dir: &Path, req: EnrolRequest) -> Result<Enrolled, EnrolError> {
    let refused = EnrolError::Refused;
    let token: porchlight_relay::EnrolmentToken = req
        .token
        .trim()
        .parse()
        .map_err(|e| refused(anyhow::Error::from(e)))?;
    let relay_addr = match (req.relay.filter(|r| !r.trim().is_empty()), &token.relay_addr) {
        (Some(r), _) => r.trim().to_owned(),
        (None, Some(r)) => r.clone(),
        (None, None) => {
            return Err(refused(anyhow::anyhow!(
                "the enrolment token names no relay address: give the relay's HOST:PORT (ask the relay's operator)"
            )))
        }
    };
    if let Some(ca) = &req.acme.ca_file {
        std::fs::metadata(ca)
            .with_context(|| format!("the ACME CA file {}", ca.display()))
            .map_err(refused)?;
    }
    if RemoteSettings::load(data_dir).map_err(refused)?.is_some() {
        return Err(refused(anyhow::anyhow!(
            "remote access is already on for this hub; turn it off first (`porchlight remote disable`) to enrol again"
        )));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))
        .map_err(refused)?;
    let id = HubIdentity::load_or_create(data_dir).map_err(refused)?;
    let mut acme = req.acme;
    acme.ca_file = acme.ca_file.map(|p| std::path::absolute(&p).unwrap_or(p));
    let settings = RemoteSettings {
        relay: relay_addr.clone(),
        relay_fingerprint: token.fingerprint_text(),
        domain: token.domain.clone(),
        enrolment_token: Some(req.token.trim().to_owned()),
        acme,
        public_tls: req.public_tls,
    };
    let name = settings.hub_name(id.hub_id());
    settings.save(data_dir).map_err(refused)?;
    let undo = |e: anyhow::Error| {
        let _ = crate::settings::remove(data_dir);
        refused(e.context(format!(
            "cannot enrol with the relay at {relay_addr}; remote access stays off"
        )))
    };
    let remote = Remote::load(data_dir)
        .and_then(|r| r.context("the settings just written"))
        .map_err(undo)?;

    // One tunnel, authenticated by the hub's key and (this first time) the
    // token. It ends when this function returns; a running hub opens its own.
    let (tunnel, _incoming) = relay::start(&remote, None).map_err(undo)?;
    first_connection(&tunnel).await.map_err(undo)?;
    remote.forget_token().map_err(refused)?;
    let txt = relay::RelayTxt {
        tunnel: tunnel.clone(),
        name: remote.acme_txt_name(),
    };
    let certificate =
        remote
            .obtain_certificate(&txt)
            .await
            .map_err(|error| EnrolError::NoCertificate {
                name: name.clone(),
                error,
            })?;
    Ok(Enrolled {
        name,
        relay: relay_addr,
        certificate,
    })
}

/// Waits for the tunnel's first connection; the first failure (a refused
/// token, a wrong relay key, nothing listening) ends the wait with the
/// tunnel's own error — enrolment should not sit in backoff.
async fn first_connection(tunnel: &porchlight_relay::client::Tunnel) -> anyhow::Result<()> {
    let mut rx = tunnel.watch_status();
    let waited = tokio::time::timeout(
        CONNECT_WAIT,
        rx.wait_for(|s| s.connected || (s.failures > 0 && s.last_error.is_some())),
    )
    .await;
    match waited {
        Ok(Ok(s)) if s.connected => Ok(()),
        Ok(Ok(s)) => Err(anyhow::anyhow!(s.last_error.clone().unwrap_or_default())),
        Ok(Err(_)) => Err(anyhow::anyhow!("the tunnel stopped")),
        Err(_) => Err(anyhow::anyhow!(
            "no answer from the relay within {} s",
            CONNECT_WAIT.as_secs()
        )),
    }
}
