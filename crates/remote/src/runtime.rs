//! A hub's remote access while it runs: the certificate in use (and its
//! renewal), the integrity check, and the report that `remote status`
//! and the settings page read.
//!
//! Invariants:
//! * The resolver serves the newest stored certificate: a renewal is
//!   stored first, then swapped in — so a restart serves what a running
//!   hub served.
//! * Renewal starts at two thirds of the certificate's lifetime (or at
//!   once when there is none), and a failure is retried with doubling
//!   delays from `retry_min` to `retry_max`; the error is in the report
//!   until a success clears it. The old certificate keeps being served
//!   meanwhile.
//! * Every change of state is written to `remote/status.json` at once.
//! * A mismatch raises the alarm (the `on_mismatch` callback: audit entry
//!   and push) when it is new: the previous check was not a mismatch, or
//!   another key is now presented.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use jiff::Timestamp;
use porchlight_base::clock::SharedClock;
use serde::{Deserialize, Serialize};

use crate::acme::{self, BoxFuture, TxtPublisher};
use crate::certs::{self, CertInfo, CertResolver, StoredCert};
use crate::identity::{self, HubIdentity};
use crate::integrity;
use crate::settings::{
    self, IntegrityOutcome, IntegrityReport, RemoteSettings, RuntimeReport, TunnelReport,
};

/// Timing of the renewal loop.
#[derive(Debug, Clone, Copy)]
pub struct RenewOptions {
    /// How often the loop looks at the clock while waiting.
    pub tick: Duration,
    /// First retry delay after a failure; doubles per failure.
    pub retry_min: Duration,
    /// Cap of the retry delay.
    pub retry_max: Duration,
}

impl Default for RenewOptions {
    fn default() -> Self {
        RenewOptions {
            tick: Duration::from_secs(600),
            retry_min: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
        }
    }
}

/// Called when the integrity check finds another key.
pub type OnMismatch = Arc<dyn Fn(IntegrityReport) -> BoxFuture<'static, ()> + Send + Sync>;

/// The running remote-access state of one hub.
pub struct Remote {
    data_dir: PathBuf,
    identity: HubIdentity,
    settings: RemoteSettings,
    token_forgotten: std::sync::atomic::AtomicBool,
    hub_name: String,
    resolver: Arc<CertResolver>,
    cert: ArcSwapOption<StoredCert>,
    report: Mutex<RuntimeReport>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("hub_name", &self.hub_name)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// The hub's remote access as configured in `data_dir`; `None` when
    /// `porchlight remote enable` was never run (or was undone). Loads the
    /// stored certificate if there is one.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<Arc<Remote>>> {
        let Some(settings) = RemoteSettings::load(data_dir)? else {
            return Ok(None);
        };
        let identity = HubIdentity::load_or_create(data_dir)?;
        let hub_name = settings.hub_name(identity.hub_id());
        let resolver = CertResolver::new();
        let cert = ArcSwapOption::empty();
        if let Some(c) = StoredCert::load(data_dir)? {
            resolver.set(c.certified_key()?);
            cert.store(Some(Arc::new(c)));
        }
        let mut report = RuntimeReport::load(data_dir).unwrap_or_default();
        report.tunnel = None;
        Ok(Some(Arc::new(Remote {
            data_dir: data_dir.to_owned(),
            identity,
            settings,
            token_forgotten: Default::default(),
            hub_name,
            resolver,
            cert,
            report: Mutex::new(report),
        })))
    }

    pub fn identity(&self) -> &HubIdentity {
        &self.identity
    }

    pub fn settings(&self) -> &RemoteSettings {
        &self.settings
    }

    /// Removes the (spent) enrolment token from the stored settings. Once.
    pub fn forget_token(&self) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        if self.settings.enrolment_token.is_none()
            || self.token_forgotten.swap(true, Ordering::SeqCst)
        {
            return Ok(());
        }
        if let Some(mut s) = RemoteSettings::load(&self.data_dir)? {
            s.enrolment_token = None;
            s.save(&self.data_dir)?;
        }
        Ok(())
    }

    /// `_acme-challenge.<hub-id>.<domain>`: where the DNS-01 records go.
    pub fn acme_txt_name(&self) -> String {
        format!("_acme-challenge.{}", self.hub_name)
    }

    /// `<hub-id>.<domain>`: the name through the relay.
    pub fn hub_name(&self) -> &str {
        &self.hub_name
    }

    /// `lan.<hub-id>.<domain>`: the name of the hub's LAN address.
    pub fn lan_name(&self) -> String {
        format!("lan.{}", self.hub_name)
    }

    /// Every name this hub answers to, for the Host allow-list.
    pub fn names(&self) -> Vec<String> {
        vec![self.hub_name.clone(), self.lan_name()]
    }

    pub fn resolver(&self) -> Arc<CertResolver> {
        self.resolver.clone()
    }

    /// The rustls config every HTTPS connection uses.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        certs::server_config(self.resolver.clone())
    }

    /// The certificate in use.
    pub fn certificate(&self) -> Option<CertInfo> {
        self.cert.load().as_ref().map(|c| c.info.clone())
    }

    /// A copy of the current report.
    pub fn report(&self) -> RuntimeReport {
        self.report.lock().unwrap().clone()
    }

    fn update(&self, f: impl FnOnce(&mut RuntimeReport)) {
        let snapshot = {
            let mut r = self.report.lock().unwrap();
            f(&mut r);
            r.updated = Some(Timestamp::now());
            r.clone()
        };
        if let Err(e) = snapshot.save(&self.data_dir) {
            tracing::warn!("cannot write the remote status: {e:#}");
        }
    }

    /// Records that the hub stopped (no tunnel any more).
    pub fn stopped(&self) {
        self.update(|r| r.tunnel = None);
    }

    /// Records the tunnel's state.
    pub fn set_tunnel(&self, t: TunnelReport) {
        self.update(|r| r.tunnel = Some(t));
    }

    /// Gets a new certificate now, stores it and serves it.
    pub async fn obtain_certificate(&self, txt: &dyn TxtPublisher) -> anyhow::Result<CertInfo> {
        let got = acme::issue(&self.data_dir, &self.settings.acme, &self.hub_name, txt).await;
        let got = got.and_then(|c| {
            c.save(&self.data_dir)?;
            self.resolver.set(c.certified_key()?);
            Ok(c)
        });
        match got {
            Ok(c) => {
                let info = c.info.clone();
                self.cert.store(Some(Arc::new(c)));
                self.update(|r| {
                    r.certificate_error = None;
                    r.last_renewal = Some(Timestamp::now());
                    r.next_renewal = Some(info.renew_at());
                });
                tracing::info!(
                    "certificate for {} until {} (renewal from {})",
                    self.hub_name,
                    info.not_after,
                    info.renew_at()
                );
                Ok(info)
            }
            Err(e) => {
                let msg = format!("{e:#}");
                self.update(|r| r.certificate_error = Some(msg));
                Err(e)
            }
        }
    }

    /// Keeps the certificate fresh until the task is dropped: obtains one
    /// at once when there is none, renews at two thirds of its lifetime,
    /// retries failures with backoff.
    pub fn spawn_renewal(
        self: &Arc<Self>,
        txt: Arc<dyn TxtPublisher>,
        clock: SharedClock,
        opts: RenewOptions,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut failures: u32 = 0;
            loop {
                let due = me.certificate().map(|c| c.renew_at());
                if let Some(d) = due {
                    me.update(|r| r.next_renewal = Some(d));
                }
                let now = clock.now();
                if due.is_none_or(|d| now >= d) {
                    match me.obtain_certificate(txt.as_ref()).await {
                        Ok(_) => failures = 0,
                        Err(e) => {
                            let wait = opts
                                .retry_min
                                .saturating_mul(1u32 << failures.min(16))
                                .min(opts.retry_max);
                            failures = failures.saturating_add(1);
                            tracing::warn!(
                                "cannot get a certificate for {} (attempt {failures}; next in {} s): {e:#}",
                                me.hub_name,
                                wait.as_secs()
                            );
                            tokio::time::sleep(wait).await;
                        }
                    }
                    continue;
                }
                let left = due
                    .map(|d| d.duration_since(now))
                    .and_then(|s| Duration::try_from(s).ok())
                    .unwrap_or(opts.tick);
                tokio::time::sleep(left.min(opts.tick)).await;
            }
        })
    }

    /// Where the integrity check connects.
    pub fn integrity_target(&self) -> String {
        self.settings
            .public_tls
            .clone()
            .unwrap_or_else(|| format!("{}:443", self.hub_name))
    }

    /// Runs one integrity check now and records it. Returns the report and
    /// whether it is a new alarm.
    pub async fn check_integrity(&self) -> (IntegrityReport, bool) {
        let report = match self.cert.load_full() {
            None => IntegrityReport {
                at: Timestamp::now(),
                outcome: IntegrityOutcome::Unreachable,
                detail: "no certificate yet: nothing to compare with".into(),
                presented_spki_sha256: None,
            },
            Some(c) => {
                integrity::check(&self.integrity_target(), &self.hub_name, c.key_spki_sha256).await
            }
        };
        let mut new_alarm = false;
        self.update(|r| {
            if report.outcome == IntegrityOutcome::Mismatch {
                let prev = r.integrity.as_ref();
                new_alarm = prev.is_none_or(|p| {
                    p.outcome != IntegrityOutcome::Mismatch
                        || p.presented_spki_sha256 != report.presented_spki_sha256
                });
                r.last_mismatch = Some(report.clone());
            }
            r.integrity = Some(report.clone());
        });
        (report, new_alarm)
    }

    /// Checks after `first`, then every `every`, calling `on_mismatch` for
    /// each new alarm.
    pub fn spawn_integrity(
        self: &Arc<Self>,
        first: Duration,
        every: Duration,
        on_mismatch: OnMismatch,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(first).await;
            loop {
                let (report, alarm) = me.check_integrity().await;
                match report.outcome {
                    IntegrityOutcome::Ok => tracing::debug!("integrity check: {}", report.detail),
                    IntegrityOutcome::Unreachable => {
                        tracing::info!("integrity check not possible: {}", report.detail)
                    }
                    IntegrityOutcome::Mismatch => {
                        tracing::error!("RELAY INTEGRITY: {}", report.detail)
                    }
                }
                if alarm {
                    on_mismatch(report).await;
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// Everything `remote status` shows, read from the data folder (works
/// whether or not the hub is running).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoteStatus {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hub_id: Option<String>,
    /// `<hub-id>.<domain>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `lan.<hub-id>.<domain>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lan_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acme_directory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertInfo>,
    /// What the running hub last reported.
    pub report: RuntimeReport,
    /// A warning for the owners, in words, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl RemoteStatus {
    pub fn read(data_dir: &Path) -> anyhow::Result<RemoteStatus> {
        let Some(s) = RemoteSettings::load(data_dir)? else {
            return Ok(RemoteStatus {
                enabled: false,
                hub_id: None,
                name: None,
                lan_name: None,
                relay: None,
                acme_directory: None,
                certificate: None,
                report: RuntimeReport::default(),
                warning: None,
            });
        };
        let id = HubIdentity::load(data_dir)?;
        let hub_id = id.as_ref().map(|i| i.hub_id().to_owned());
        let name = hub_id.as_ref().map(|h| s.hub_name(h));
        let certificate = StoredCert::load(data_dir)?.map(|c| c.info);
        let report = RuntimeReport::load(data_dir)?;
        let warning = report.last_mismatch.as_ref().map(|m| {
            format!(
                "Relay integrity check failed at {}: {}",
                m.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                m.detail
            )
        });
        Ok(RemoteStatus {
            enabled: true,
            lan_name: name.as_ref().map(|n| format!("lan.{n}")),
            hub_id,
            name,
            relay: Some(s.relay.clone()),
            acme_directory: Some(s.acme.directory.clone()),
            certificate,
            report,
            warning,
        })
    }
}

/// Turns remote access off and forgets the hub's identity, certificate,
/// ACME account and status (a later `enable` makes a new name).
pub fn disable(data_dir: &Path) -> anyhow::Result<()> {
    settings::remove(data_dir)?;
    certs::remove(data_dir)?;
    identity::remove(data_dir)?;
    crate::files::remove_if_exists(&data_dir.join(acme::ACCOUNT_FILE))
}
