//! What `porchlight serve` runs for remote access (issue 15,
//! design/remote.md), when `porchlight remote enable` has been run on the
//! data folder: the HTTPS listener on `web.https_listen`, the tunnel to
//! the relay (its browser connections served by the same TLS server), the
//! certificate renewal loop (TXT records through the tunnel), the relay
//! integrity check — and what it does when that check fails (audit entry,
//! push to the owners).
//!
//! Invariants: nothing here runs while remote access is off (no listener,
//! no outbound connection); the HTTPS listener is bound before the hub
//! prints its address lines, so the printed port is the bound one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use porchlight_remote::acme::BoxFuture;
use porchlight_remote::settings::IntegrityReport;
use porchlight_remote::{relay, Remote, TlsServer, TxtPublisher};
use porchlight_vault::{Actor, Vault};

/// When the first integrity check runs after start.
const FIRST_CHECK: Duration = Duration::from_secs(3);
/// How often the integrity check runs after that.
const CHECK_EVERY: Duration = Duration::from_secs(15 * 60);

/// Remote access, bound and ready to run.
pub struct Bound {
    pub remote: Arc<Remote>,
    pub listener: tokio::net::TcpListener,
    pub addr: SocketAddr,
}

impl Bound {
    /// Loads the remote settings from `data_dir` and binds `want`;
    /// `None` when remote access is off.
    pub async fn bind(
        data_dir: &std::path::Path,
        want: SocketAddr,
    ) -> anyhow::Result<Option<Bound>> {
        let Some(remote) = Remote::load(data_dir).context("remote access")? else {
            return Ok(None);
        };
        let listener = tokio::net::TcpListener::bind(want)
            .await
            .with_context(|| format!("cannot listen for HTTPS on {want} (web.https_listen)"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("cannot read the address bound for {want}"))?;
        Ok(Some(Bound {
            remote,
            listener,
            addr,
        }))
    }

    /// `https://lan.<hub-id>.<domain>:PORT`.
    pub fn lan_base(&self) -> String {
        format!("https://{}:{}", self.remote.lan_name(), self.addr.port())
    }
}

/// The running parts; [`Running::stop`] ends them.
pub struct Running {
    remote: Arc<Remote>,
    tls: TlsServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tunnel: Option<Arc<porchlight_relay::client::Tunnel>>,
}

impl Running {
    pub async fn stop(self, grace: Duration) {
        for t in &self.tasks {
            t.abort();
        }
        drop(self.tunnel);
        self.remote.stopped();
        if tokio::time::timeout(grace, self.tls.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                "HTTPS connections still open after {} s; stopping anyway",
                grace.as_secs()
            );
        }
    }
}

/// Starts serving `router` over HTTPS and the background loops.
pub fn start(
    bound: Bound,
    router: axum::Router,
    vault: Arc<Vault>,
    notifier: Option<porchlight_notify::Notifier>,
) -> Running {
    let Bound {
        remote,
        listener,
        addr,
    } = bound;
    let tls = TlsServer::new(remote.server_config(), router);
    let mut tasks = vec![tokio::spawn(tls.handle().run_listener(listener))];
    let (txt, tunnel): (Arc<dyn TxtPublisher>, _) =
        match relay::start(&remote, relay::lan_addr(addr)) {
            Ok((tunnel, mut incoming)) => {
                tasks.push(relay::spawn_status_watch(remote.clone(), &tunnel));
                let serve = tls.handle();
                tasks.push(tokio::spawn(async move {
                    // Each browser connection the relay forwards: raw TLS,
                    // the client's address from the PROXY header.
                    while let Some(c) = incoming.recv().await {
                        serve.spawn_conn(c.stream, c.client_addr);
                    }
                }));
                let txt: Arc<dyn TxtPublisher> = Arc::new(relay::RelayTxt {
                    tunnel: tunnel.clone(),
                    name: remote.acme_txt_name(),
                });
                (txt, Some(tunnel))
            }
            Err(e) => {
                tracing::error!("remote access: no tunnel to the relay: {e:#}");
                let txt: Arc<dyn TxtPublisher> = Arc::new(NoRelay);
                (txt, None)
            }
        };
    tasks.push(remote.spawn_renewal(
        txt,
        porchlight_base::clock::system(),
        porchlight_remote::RenewOptions::default(),
    ));
    let hub = remote.hub_name().to_owned();
    let on_mismatch: porchlight_remote::runtime::OnMismatch =
        Arc::new(move |r: IntegrityReport| -> BoxFuture<'static, ()> {
            let vault = vault.clone();
            let notifier = notifier.clone();
            let hub = hub.clone();
            Box::pin(async move { raise_alarm(&vault, notifier.as_ref(), &hub, &r).await })
        });
    tasks.push(remote.spawn_integrity(FIRST_CHECK, CHECK_EVERY, on_mismatch));
    Running {
        remote,
        tls,
        tasks,
        tunnel,
    }
}

/// How often [`watch`] looks at the settings without being woken.
const LOOK_EVERY: Duration = Duration::from_secs(3);

/// Starts serving `bound` and hands the hub's names to the Host guard and
/// the LAN redirect, so requests naming them are answered exactly while it
/// runs (at start-up and when turned on later alike).
fn go_live(
    bound: Bound,
    router: &axum::Router,
    vault: &Arc<Vault>,
    notifier: &Option<porchlight_notify::Notifier>,
    live: &porchlight_web::remote::RemoteLive,
) -> anyhow::Result<Running> {
    live.set_hosts(&bound.remote.names())
        .map_err(|e| anyhow::anyhow!("remote access: {e}"))?;
    live.set_redirect(Some(bound.lan_base()));
    tracing::info!(
        "remote access is on: https://{}/ from anywhere, {}/ at home",
        bound.remote.hub_name(),
        bound.lan_base()
    );
    Ok(start(
        bound,
        router.clone(),
        vault.clone(),
        notifier.clone(),
    ))
}

/// Keeps remote access in step with the data folder's settings while the
/// hub runs (`initial`: bound at start-up, when it was on then): started when they appear (the settings page's form, which
/// wakes this at once, or `porchlight remote enable` in another process),
/// stopped when they go (`porchlight remote disable`). The hub's names and
/// the LAN redirect follow ([`porchlight_web::remote::RemoteLive`]), so the
/// Host guard answers to them exactly while remote access runs. Returns
/// what runs when `stop` fires, for the caller's graceful stop.
#[allow(clippy::too_many_arguments)]
pub async fn watch(
    data_dir: std::path::PathBuf,
    https_listen: SocketAddr,
    initial: Option<Bound>,
    router: axum::Router,
    vault: Arc<Vault>,
    notifier: Option<porchlight_notify::Notifier>,
    live: Arc<porchlight_web::remote::RemoteLive>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    grace: Duration,
) -> Option<Running> {
    live.watch();
    let mut last_error = String::new();
    let mut running = match initial.map(|b| go_live(b, &router, &vault, &notifier, &live)) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            tracing::error!("{e:#}");
            None
        }
        None => None,
    };
    loop {
        tokio::select! {
            _ = &mut stop => return running,
            _ = live.changed().notified() => {}
            _ = tokio::time::sleep(LOOK_EVERY) => {}
        }
        let on = match porchlight_remote::RemoteSettings::load(&data_dir) {
            Ok(s) => s.is_some(),
            Err(e) => {
                let e = format!("{e:#}");
                if e != last_error {
                    tracing::warn!("remote access: cannot read the settings: {e}");
                    last_error = e;
                }
                continue;
            }
        };
        match (on, running.is_some()) {
            (true, false) => match Bound::bind(&data_dir, https_listen).await {
                Ok(Some(bound)) => {
                    last_error.clear();
                    match go_live(bound, &router, &vault, &notifier, &live) {
                        Ok(r) => running = Some(r),
                        Err(e) => tracing::error!("{e:#}"),
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    let e = format!("{e:#}");
                    if e != last_error {
                        tracing::error!("remote access is on but cannot start: {e}");
                        last_error = e;
                    }
                }
            },
            (false, true) => {
                if let Some(r) = running.take() {
                    r.stop(grace).await;
                }
                live.set_redirect(None);
                let _ = live.set_hosts(&[]);
                tracing::info!("remote access is off: HTTPS and the tunnel stopped");
            }
            _ => {}
        }
    }
}

/// The integrity check found someone else's key: audit it and tell the
/// owners on their devices.
async fn raise_alarm(
    vault: &Vault,
    notifier: Option<&porchlight_notify::Notifier>,
    hub: &str,
    r: &IntegrityReport,
) {
    let actor = Actor {
        name: "hub".into(),
        client: "-".into(),
    };
    let detail = serde_json::json!({
        "detail": r.detail,
        "presented_spki_sha256": r.presented_spki_sha256,
    });
    if let Err(e) = vault
        .audit(&actor, "remote.integrity_mismatch", hub, detail)
        .await
    {
        tracing::error!("cannot write the integrity warning to the audit log: {e}");
    }
    let Some(n) = notifier else { return };
    let owners: Vec<i64> = match vault.store().list_users().await {
        Ok(users) => users
            .into_iter()
            .filter(|u| u.role == porchlight_store::Role::Owner && !u.disabled)
            .map(|u| u.id)
            .collect(),
        Err(e) => {
            tracing::error!("cannot list the owners to warn them: {e}");
            return;
        }
    };
    let notice = porchlight_notify::Notice {
        title: "Remote access warning".into(),
        body: "The relay showed a certificate for this hub that is not the hub's own. Someone may be reading remote connections. See Settings.".into(),
        kind: "security".into(),
        camera_id: None,
        camera_name: None,
        event_id: None,
        labels: Vec::new(),
        alarm_mode: None,
        url: "/settings#remote".into(),
        at: r.at,
    };
    n.notify_users(&owners, &notice).await;
}

/// The TXT publisher when the tunnel could not be started.
struct NoRelay;

impl TxtPublisher for NoRelay {
    fn set_txt(&self, name: &str, _values: Vec<String>) -> BoxFuture<'_, anyhow::Result<()>> {
        let name = name.to_owned();
        Box::pin(async move {
            anyhow::bail!("cannot publish {name}: the hub has no tunnel to its relay")
        })
    }

    fn clear_txt(&self, _name: &str) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}
