//! The relay server: three listeners over one shared state.
//!
//! * [`control`] — hubs dial in (TLS 1.3 with the relay's key), prove their
//!   Ed25519 key, and keep a yamux tunnel;
//! * [`browser`] — browsers connect to the TLS port; the SNI picks the hub,
//!   and the raw bytes go through that hub's tunnel behind a PROXY v2
//!   header;
//! * [`dns`] — the authoritative DNS server for the relay's domain.
//!
//! ```no_run
//! # async fn f() -> Result<(), porchlight_relay::RelayError> {
//! use porchlight_relay::server::{Relay, RelayConfig};
//! let cfg = RelayConfig::new("relay.example.net", "relay-data".into(), "203.0.113.5".parse().unwrap());
//! Relay::bind(cfg).await?.run().await
//! # }
//! ```
//!
//! Invariants:
//! * At most one live tunnel per hub-id: a new authenticated connection
//!   replaces the old one (the old one is closed).
//! * Everything the server spawns stops when [`Relay::run`]'s future is
//!   dropped (a cancellation token guards it), so dropping the task is a
//!   clean kill: ports are free to bind again at once.
//! * Logs carry hub-ids, client addresses, times and byte counts only.

pub mod browser;
pub mod control;
pub mod dns;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::error::RelayError;
use crate::limits::{Limits, TokenBucket};
use crate::mux::Opener;
use crate::names::normalize_domain;
use crate::store::{RelayStore, Settings};
use crate::tls::RelayIdentity;
use crate::token::EnrolmentToken;

/// What `porchlight relay serve` is given.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The relay's domain (hubs are `<hub-id>.<domain>`).
    pub domain: String,
    /// The relay's data folder (its key, invites, enrolled hubs).
    pub data_dir: PathBuf,
    /// Where browsers connect (TLS, passed through).
    pub tls_listen: SocketAddr,
    /// Where hubs connect.
    pub control_listen: SocketAddr,
    /// Where the DNS server listens (UDP and TCP); `None`: no DNS.
    pub dns_listen: Option<SocketAddr>,
    /// The address hub names resolve to (this relay's public address).
    pub public_ip: IpAddr,
    pub limits: Limits,
}

impl RelayConfig {
    /// Defaults: TLS on 0.0.0.0:443, control on 0.0.0.0:7443, DNS on
    /// 0.0.0.0:53.
    pub fn new(domain: &str, data_dir: PathBuf, public_ip: IpAddr) -> RelayConfig {
        RelayConfig {
            domain: domain.to_owned(),
            data_dir,
            tls_listen: ([0, 0, 0, 0], 443).into(),
            control_listen: ([0, 0, 0, 0], 7443).into(),
            dns_listen: Some(([0, 0, 0, 0], 53).into()),
            public_ip,
            limits: Limits::default(),
        }
    }
}

/// A hub's live tunnel.
pub(crate) struct HubLink {
    pub conn_id: u64,
    pub opener: Opener,
    pub conns: Arc<Semaphore>,
    pub bucket: Arc<TokenBucket>,
    pub close: CancellationToken,
}

/// What the DNS server publishes for a hub, set through its tunnel.
#[derive(Default, Clone)]
pub(crate) struct HubDns {
    pub lan: Option<IpAddr>,
    pub txt: Vec<String>,
}

pub(crate) struct State {
    pub domain: String,
    pub public_ip: IpAddr,
    pub limits: Limits,
    pub store: RelayStore,
    pub fingerprint: [u8; 32],
    pub tls: tokio_rustls::TlsAcceptor,
    pub links: Mutex<HashMap<String, HubLink>>,
    pub dns: Mutex<HashMap<String, HubDns>>,
    pub shutdown: CancellationToken,
    next_id: AtomicU64,
}

impl State {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Spawns `fut`, cancelled when the server stops.
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// Whether `hub_id` is enrolled and not revoked.
    pub fn hub_active(&self, hub_id: &str) -> bool {
        matches!(self.store.hub(hub_id), Ok(Some(r)) if r.revoked.is_none())
    }
}

/// Makes a single-use enrolment invite valid for `valid` in the relay
/// folder `data_dir` and returns its token. The domain (and, unless
/// `relay_addr` is given, the control address hint) come from the last
/// `relay serve` on the folder.
pub fn invite(
    data_dir: &std::path::Path,
    valid: jiff::SignedDuration,
    relay_addr: Option<String>,
) -> Result<(EnrolmentToken, jiff::Timestamp), RelayError> {
    if valid <= jiff::SignedDuration::ZERO {
        return Err(RelayError::Refused(
            "the invite's validity must be positive".into(),
        ));
    }
    let store = RelayStore::open(data_dir)?;
    let settings = store.settings()?.ok_or_else(|| {
        RelayError::Refused(format!(
            "{} has no relay settings yet: run `porchlight relay serve --domain D` on it once first",
            data_dir.display()
        ))
    })?;
    let identity = RelayIdentity::load_or_create(data_dir)?;
    let secret = store.create_invite(valid)?;
    let token = EnrolmentToken {
        relay_fingerprint: identity.fingerprint,
        secret,
        domain: settings.domain,
        relay_addr: relay_addr.or(settings.control_addr),
    };
    // Parse our own output: a hint the token format cannot carry is an
    // error now, not at the household's end.
    token.to_string().parse::<EnrolmentToken>()?;
    let expires = jiff::Timestamp::now()
        .checked_add(valid)
        .map_err(|e| RelayError::Refused(format!("invalid validity: {e}")))?;
    Ok((token, expires))
}

/// A bound relay, ready to run.
pub struct Relay {
    state: Arc<State>,
    tls: TcpListener,
    control: TcpListener,
    dns_udp: Option<UdpSocket>,
    dns_tcp: Option<TcpListener>,
}

impl Relay {
    /// Opens the data folder (making the relay key the first time) and
    /// binds every port, so that a port in use is reported before anything
    /// runs.
    pub async fn bind(cfg: RelayConfig) -> Result<Relay, RelayError> {
        crate::tls::install_default_provider();
        let domain = normalize_domain(&cfg.domain)
            .map_err(|e| RelayError::Refused(format!("--domain: {e}")))?;
        let store = RelayStore::open(&cfg.data_dir)?;
        let identity = RelayIdentity::load_or_create(&cfg.data_dir)?;

        let tls = tokio_rustls::TlsAcceptor::from(Arc::new(identity.server_config()?));
        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(RelayError::io(format!(
                    "cannot listen for {what} on {addr}"
                )))
        };
        let tls_l = bind("browsers (--tls-listen)", cfg.tls_listen).await?;
        let control = bind("hubs (--control-listen)", cfg.control_listen).await?;
        let (dns_udp, dns_tcp) = match cfg.dns_listen {
            Some(addr) => {
                // The same port over TCP (large answers, and resolvers that
                // insist). An ephemeral UDP port means the same number over
                // TCP, which something else may hold: then another pair is
                // tried (a fixed port is not, its error is the answer).
                let mut tries = 0;
                loop {
                    let udp = UdpSocket::bind(addr).await.map_err(RelayError::io(format!(
                        "cannot listen for DNS (--dns-listen) on UDP {addr}"
                    )))?;
                    let got = udp.local_addr().map_err(RelayError::io("DNS socket"))?;
                    match TcpListener::bind(got).await {
                        Ok(tcp) => break (Some(udp), Some(tcp)),
                        Err(e)
                            if addr.port() == 0
                                && e.kind() == std::io::ErrorKind::AddrInUse
                                && tries < 32 =>
                        {
                            tries += 1;
                        }
                        Err(e) => {
                            return Err(RelayError::io(format!(
                                "cannot listen for DNS over TCP (--dns-listen) on {got}"
                            ))(e))
                        }
                    }
                }
            }
            None => (None, None),
        };
        // Only now that every port is ours: a relay that failed to start
        // must not change what `relay invite` prints.
        let control_port = control
            .local_addr()
            .map_err(RelayError::io("the hubs' port"))?
            .port();
        let control_addr = (!cfg.public_ip.is_unspecified())
            .then(|| SocketAddr::new(cfg.public_ip, control_port).to_string());
        store.save_settings(&Settings {
            domain: domain.clone(),
            control_addr,
        })?;
        let state = Arc::new(State {
            domain,
            public_ip: cfg.public_ip,
            limits: cfg.limits,
            store,
            fingerprint: identity.fingerprint,
            tls,
            links: Mutex::new(HashMap::new()),
            dns: Mutex::new(HashMap::new()),
            shutdown: CancellationToken::new(),
            next_id: AtomicU64::new(1),
        });
        Ok(Relay {
            state,
            tls: tls_l,
            control,
            dns_udp,
            dns_tcp,
        })
    }

    /// The browser port's address.
    pub fn tls_addr(&self) -> SocketAddr {
        self.tls
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The hubs' port's address.
    pub fn control_addr(&self) -> SocketAddr {
        self.control
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The DNS address (UDP and TCP), if DNS is on.
    pub fn dns_addr(&self) -> Option<SocketAddr> {
        self.dns_udp.as_ref().and_then(|s| s.local_addr().ok())
    }

    /// SHA-256 of the control key's SPKI (what tokens carry).
    pub fn fingerprint(&self) -> [u8; 32] {
        self.state.fingerprint
    }

    /// The normalized domain.
    pub fn domain(&self) -> &str {
        &self.state.domain
    }

    /// Serves until the future is dropped (or a listener fails).
    pub async fn run(self) -> Result<(), RelayError> {
        let state = self.state;
        let _stop_all = state.shutdown.clone().drop_guard();
        tracing::info!(
            domain = %state.domain,
            tls = %self.tls.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            control = %self.control.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            fingerprint = %crate::token::fingerprint_text(&state.fingerprint),
            "relay running"
        );
        let mut dns_server = None;
        if let (Some(udp), Some(tcp)) = (self.dns_udp, self.dns_tcp) {
            let mut server = hickory_server::ServerFuture::new(dns::Handler::new(state.clone()));
            server.register_socket(udp);
            server.register_listener(tcp, std::time::Duration::from_secs(5));
            dns_server = Some(server);
        }
        let dns = async {
            match dns_server.as_mut() {
                Some(s) => s
                    .block_until_done()
                    .await
                    .map_err(|e| RelayError::Protocol(format!("the DNS server stopped: {e}"))),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = control::accept_loop(state.clone(), self.control) => r,
            r = browser::accept_loop(state.clone(), self.tls) => r,
            r = dns => r,
        }
    }
}
