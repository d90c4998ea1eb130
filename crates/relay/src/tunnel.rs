//! The engine behind [`crate::client::Tunnel`]: connect, prove the hub's
//! key, run the multiplexed connection, reconnect with backoff.
//!
//! Invariants:
//! * At most one connection to the relay at a time; the [`Opener`] of the
//!   live one (if any) sits in [`Shared`], and control requests fail at
//!   once with `NotConnected` when there is none.
//! * The status is published through a watch channel: `connected` is true
//!   exactly while an authenticated connection's driver runs.
//! * A silent relay is noticed: a `Ping` every [`PING_EVERY`] that is not
//!   answered within [`REQUEST_TIMEOUT`] ends the connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::{Signer, SigningKey};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::client::{Incoming, TunnelConfig, TunnelStatus, TunnelStream, BACKOFF_MAX, BACKOFF_MIN};
use crate::error::RelayError;
use crate::mux::{self, Opener};
use crate::wire::{self, Challenge, Hello, Request, Response, Verdict};

/// Connect + TLS + authentication must finish within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A control request's answer must come within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the hub checks that the relay still answers.
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// A forwarded connection's PROXY header must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Shared {
    status: watch::Sender<TunnelStatus>,
    lan_addr: Mutex<Option<SocketAddr>>,
    opener: Mutex<Option<Opener>>,
}

impl Shared {
    pub(crate) fn new(
        cfg: &TunnelConfig,
        key: &SigningKey,
    ) -> (Arc<Shared>, watch::Receiver<TunnelStatus>) {
        let hub_id = crate::names::hub_id(&key.verifying_key());
        let domain = cfg
            .enrolment_token
            .as_deref()
            .and_then(|t| t.parse::<crate::token::EnrolmentToken>().ok())
            .map(|t| t.domain);
        let status = TunnelStatus {
            hub_name: domain.as_ref().map(|d| format!("{hub_id}.{d}")),
            hub_id,
            connected: false,
            since: jiff::Timestamp::now(),
            enrolled: false,
            last_error: None,
            domain,
            failures: 0,
        };
        let (tx, rx) = watch::channel(status);
        (
            Arc::new(Shared {
                status: tx,
                lan_addr: Mutex::new(cfg.lan_addr),
                opener: Mutex::new(None),
            }),
            rx,
        )
    }

    fn opener(&self) -> Result<Opener, RelayError> {
        self.opener
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .filter(|o| !o.is_closed())
            .ok_or_else(|| RelayError::NotConnected(self.status.borrow().last_error.clone()))
    }

    /// Sends one control request over the live connection.
    pub(crate) async fn request(&self, req: &Request) -> Result<(), RelayError> {
        let opener = self.opener()?;
        request_on(&opener, req).await
    }

    pub(crate) async fn set_acme_txt(&self, values: Vec<String>) -> Result<(), RelayError> {
        let (id, domain) = {
            let s = self.status.borrow();
            (s.hub_id.clone(), s.domain.clone())
        };
        let domain = domain.ok_or(RelayError::NotConnected(None))?;
        let name = format!("_acme-challenge.{id}.{domain}");
        self.request(&Request::SetTxt { name, values }).await
    }

    pub(crate) async fn set_lan_addr(&self, addr: Option<SocketAddr>) -> Result<(), RelayError> {
        *self.lan_addr.lock().unwrap_or_else(|p| p.into_inner()) = addr;
        self.request(&Request::SetLan {
            addr: addr.map(|a| a.ip()),
        })
        .await
    }
}

async fn request_on(opener: &Opener, req: &Request) -> Result<(), RelayError> {
    let work = async {
        let stream = opener
            .open()
            .await
            .map_err(|e| RelayError::NotConnected(Some(e)))?;
        let mut stream = stream.compat();
        wire::write_frame(&mut stream, req).await?;
        match wire::read_frame::<_, Response>(&mut stream, "relay's answer").await? {
            Response::Ok => Ok(()),
            Response::Refused { reason } => Err(RelayError::Refused(reason)),
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, work)
        .await
        .map_err(|_| RelayError::Timeout("waiting for the relay to answer a request".into()))?
}

/// The reconnect loop; runs until the task is aborted.
pub(crate) async fn run(
    shared: Arc<Shared>,
    mut cfg: TunnelConfig,
    key: SigningKey,
    tx: mpsc::Sender<Incoming>,
) {
    crate::tls::install_default_provider();
    let mut delay = BACKOFF_MIN;
    loop {
        match connect(&shared, &cfg, &key).await {
            Ok((conn, welcome_domain)) => {
                delay = BACKOFF_MIN;
                // The key is enrolled now; the token is spent and need not
                // travel again.
                cfg.enrolment_token = None;
                let (opener, open_rx) = mux::opener();
                *shared.opener.lock().unwrap_or_else(|p| p.into_inner()) = Some(opener.clone());
                shared.status.send_modify(|s| {
                    s.connected = true;
                    s.enrolled = true;
                    s.since = jiff::Timestamp::now();
                    s.last_error = None;
                    s.failures = 0;
                    s.hub_name = Some(format!("{}.{welcome_domain}", s.hub_id));
                    s.domain = Some(welcome_domain);
                });
                tracing::info!(relay = %cfg.relay, "tunnel to the relay is up");
                let tx2 = tx.clone();
                let driver = mux::drive(conn, open_rx, move |s| deliver(s, tx2.clone()));
                let pinger = async {
                    loop {
                        tokio::time::sleep(PING_EVERY).await;
                        if let Err(e) = request_on(&opener, &Request::Ping).await {
                            return format!("the relay stopped answering: {e}");
                        }
                    }
                };
                let reason = tokio::select! {
                    r = driver => r,
                    r = pinger => r,
                };
                *shared.opener.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::warn!(relay = %cfg.relay, "tunnel to the relay is down: {reason}");
                shared.status.send_modify(|s| {
                    s.connected = false;
                    s.since = jiff::Timestamp::now();
                    s.last_error = Some(reason);
                });
            }
            Err(e) => {
                tracing::warn!(relay = %cfg.relay, "cannot connect to the relay: {e}");
                shared.status.send_modify(|s| {
                    s.failures = s.failures.saturating_add(1);
                    s.last_error = Some(e.to_string());
                });
                let wait = jittered(delay);
                delay = (delay * 2).min(BACKOFF_MAX);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `d` plus up to half of it again, at random.
fn jittered(d: Duration) -> Duration {
    let extra = rand::random::<f64>() * 0.5;
    d + d.mul_f64(extra)
}

type Conn =
    yamux::Connection<tokio_util::compat::Compat<tokio_rustls::client::TlsStream<TcpStream>>>;

/// One connection attempt up to an authenticated, enrolled tunnel.
async fn connect(
    shared: &Shared,
    cfg: &TunnelConfig,
    key: &SigningKey,
) -> Result<(Conn, String), RelayError> {
    let attempt = async {
        if cfg.relay.is_empty() {
            return Err(RelayError::Protocol(
                "no relay address: give the relay's host:port".into(),
            ));
        }
        let tcp = TcpStream::connect(&cfg.relay)
            .await
            .map_err(RelayError::io(format!(
                "cannot connect to the relay at {}",
                cfg.relay
            )))?;
        let _ = tcp.set_nodelay(true);
        let tls_cfg = Arc::new(crate::tls::pinned_client_config(cfg.relay_fingerprint)?);
        let name = rustls::pki_types::ServerName::try_from("porchlight-relay")
            .map_err(|e| RelayError::Tls(e.to_string()))?;
        let mut tls = tokio_rustls::TlsConnector::from(tls_cfg)
            .connect(name, tcp)
            .await
            .map_err(|e| {
                RelayError::Tls(format!("handshake with the relay at {}: {e}", cfg.relay))
            })?;
        let challenge: Challenge = wire::read_frame(&mut tls, "relay's challenge").await?;
        if challenge.version != wire::VERSION {
            return Err(RelayError::Protocol(format!(
                "the relay speaks protocol version {}, this hub {}",
                challenge.version,
                wire::VERSION
            )));
        }
        let nonce = wire::hex32(&challenge.nonce, "relay's nonce")?;
        let exporter: [u8; 32] = tls
            .get_ref()
            .1
            .export_keying_material([0u8; 32], wire::EXPORTER_LABEL, None)
            .map_err(|e| RelayError::Tls(format!("TLS exporter: {e}")))?;
        let public = key.verifying_key();
        let signature = key.sign(&wire::signed_message(&nonce, &exporter, public.as_bytes()));
        let lan_addr = *shared.lan_addr.lock().unwrap_or_else(|p| p.into_inner());
        let hello = Hello {
            version: wire::VERSION,
            public_key: wire::hex(public.as_bytes()),
            signature: wire::hex(&signature.to_bytes()),
            token: cfg.enrolment_token.clone(),
            lan_addr,
        };
        wire::write_frame(&mut tls, &hello).await?;
        match wire::read_frame::<_, Verdict>(&mut tls, "relay's verdict").await? {
            Verdict::Welcome {
                hub_id,
                domain,
                enrolled_now,
            } => {
                let ours = crate::names::hub_id(&public);
                if hub_id != ours {
                    return Err(RelayError::Protocol(format!(
                        "the relay calls this hub {hub_id}, but its key makes it {ours}"
                    )));
                }
                if enrolled_now {
                    tracing::info!(%hub_id, %domain, "enrolled at the relay");
                }
                let conn =
                    yamux::Connection::new(tls.compat(), mux::config(1024), yamux::Mode::Client);
                Ok((conn, domain))
            }
            Verdict::Refused { reason } => Err(RelayError::Refused(reason)),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| RelayError::Timeout(format!("connecting to the relay at {}", cfg.relay)))?
}

/// A relay-opened stream: read its PROXY header, then hand it over.
fn deliver(stream: yamux::Stream, tx: mpsc::Sender<Incoming>) {
    tokio::spawn(async move {
        let mut stream = stream.compat();
        let client_addr =
            match tokio::time::timeout(HEADER_TIMEOUT, wire::proxy::read(&mut stream)).await {
                Ok(Ok(a)) => a,
                Ok(Err(e)) => {
                    tracing::warn!("dropping a forwarded connection: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!("dropping a forwarded connection: no PROXY header in time");
                    return;
                }
            };
        let incoming = Incoming {
            client_addr,
            stream: TunnelStream { inner: stream },
        };
        if tx.send(incoming).await.is_err() {
            tracing::debug!("a forwarded connection arrived after the receiver was dropped");
        }
    });
}
