//! The hub's side of the relay: one outbound tunnel that the relay uses to
//! hand the hub raw browser connections, and that the hub uses for small
//! control requests (its ACME DNS-01 TXT records, its LAN address).
//!
//! ```no_run
//! # async fn f(key: ed25519_dalek::SigningKey) -> Result<(), porchlight_relay::RelayError> {
//! use porchlight_relay::client::{EnrolmentToken, Tunnel, TunnelConfig};
//! let token: EnrolmentToken = "plr1_…".parse()?;
//! let cfg = TunnelConfig::from_token(&token, "relay.example.net:7443".into(), None);
//! let (tunnel, mut incoming) = Tunnel::start(cfg, key);
//! while let Some(conn) = incoming.recv().await {
//!     // conn.stream carries the browser's TLS bytes: terminate TLS here,
//!     // with the hub's own certificate, and treat conn.client_addr as
//!     // the peer address.
//! }
//! # Ok(()) }
//! ```
//!
//! Invariants:
//! * The hub identifies itself only with its Ed25519 key, passed in as an
//!   [`ed25519_dalek::SigningKey`]; this module never stores it. The key
//!   signs a domain-separated message bound to the relay's nonce and to the
//!   TLS session (an exporter value), so a signature cannot be replayed on
//!   another connection or relayed by a man in the middle.
//! * The relay is authenticated by its pinned SPKI fingerprint and nothing
//!   else (no CA, no name check): a relay with another key is refused
//!   before the hub sends anything.
//! * Every [`Incoming::stream`] starts at the first byte the browser sent,
//!   the PROXY v2 header already consumed; the bytes are TLS the relay could
//!   not read. The client address in [`Incoming::client_addr`] is the
//!   relay's word for it (the relay is trusted for that, not for content).
//! * No database access here: persisting the key, the token and the
//!   enrolled state is the caller's job (porchlight-remote).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};

pub use crate::error::RelayError;
pub use crate::names::hub_id;
pub use crate::token::{EnrolmentToken, TokenError};

/// How to reach and recognise the relay.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// `host:port` of the relay's control port.
    pub relay: String,
    /// SHA-256 of the relay control certificate's SubjectPublicKeyInfo,
    /// from the enrolment token.
    pub relay_fingerprint: [u8; 32],
    /// The enrolment token's text. Needed only until the relay has
    /// enrolled this hub's key (see [`TunnelStatus::enrolled`]); sending it
    /// again afterwards is harmless (a known key is accepted on its own and
    /// the token is not looked at).
    pub enrolment_token: Option<String>,
    /// The hub's LAN address, published as `lan.<hub-id>.<domain>` (the
    /// port is not published: DNS carries addresses only).
    pub lan_addr: Option<SocketAddr>,
}

impl TunnelConfig {
    /// A config for the first connection: fingerprint and token from
    /// `token`, the control address given (or, if empty, the token's own
    /// hint).
    pub fn from_token(token: &EnrolmentToken, relay: String, lan_addr: Option<SocketAddr>) -> Self {
        let relay = if relay.is_empty() {
            token.relay_addr.clone().unwrap_or_default()
        } else {
            relay
        };
        TunnelConfig {
            relay,
            relay_fingerprint: token.relay_fingerprint,
            enrolment_token: Some(token.to_string()),
            lan_addr,
        }
    }
}

/// One browser connection the relay forwarded, as raw bytes.
#[derive(Debug)]
pub struct Incoming {
    /// The browser's address as the relay saw it (PROXY v2 header).
    pub client_addr: SocketAddr,
    /// The browser's TLS bytes, both ways. Shutting down the write side
    /// closes the browser's connection at the relay.
    pub stream: TunnelStream,
}

/// A stream inside the tunnel: `AsyncRead + AsyncWrite + Unpin + Send`.
pub struct TunnelStream {
    pub(crate) inner: tokio_util::compat::Compat<yamux::Stream>,
}

impl std::fmt::Debug for TunnelStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunnelStream").finish_non_exhaustive()
    }
}

impl AsyncRead for TunnelStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunnelStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The tunnel's state, for `remote status` and the settings page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelStatus {
    /// This hub's id (from its key; known before any connection).
    pub hub_id: String,
    /// Connected and authenticated right now.
    pub connected: bool,
    /// When the current state (connected or not) began.
    pub since: Timestamp,
    /// The relay has enrolled this hub's key at some point (so the token is
    /// spent and no longer needed).
    pub enrolled: bool,
    /// The last error, kept until the next successful connection.
    pub last_error: Option<String>,
    /// The relay's domain (from the relay once connected, else the token).
    pub domain: Option<String>,
    /// `<hub-id>.<domain>`, once the domain is known.
    pub hub_name: Option<String>,
    /// Connection attempts that failed since the last success.
    pub failures: u32,
}

/// Reconnect delays: exponential from [`BACKOFF_MIN`] to [`BACKOFF_MAX`],
/// each with up to 50% random jitter added (so hubs behind a relay that
/// restarts do not all return in the same instant).
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// The cap on the reconnect delay (before jitter). Small on purpose: a
/// refused TCP connection every few seconds costs a relay nothing, and a
/// restarted relay has its hubs back within [`BACKOFF_MAX`] × 1.5.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The running tunnel. Dropping it closes the connection and stops
/// reconnecting.
pub struct Tunnel {
    pub(crate) shared: Arc<crate::tunnel::Shared>,
    status: watch::Receiver<TunnelStatus>,
    task: tokio::task::JoinHandle<()>,
}

impl Tunnel {
    /// Starts connecting (in the background, on the current tokio runtime)
    /// and keeps the tunnel up: reconnects after any failure with capped,
    /// jittered exponential backoff. Browser connections arrive on the
    /// receiver; if the receiver is dropped, new ones are refused.
    ///
    /// Panics if called outside a tokio runtime.
    pub fn start(cfg: TunnelConfig, key: SigningKey) -> (Tunnel, mpsc::Receiver<Incoming>) {
        let (tx, rx) = mpsc::channel(64);
        let (shared, status) = crate::tunnel::Shared::new(&cfg, &key);
        let task = tokio::spawn(crate::tunnel::run(shared.clone(), cfg, key, tx));
        (
            Tunnel {
                shared,
                status,
                task,
            },
            rx,
        )
    }

    /// Publishes `values` as the TXT records of
    /// `_acme-challenge.<hub-id>.<domain>`, replacing any earlier ones.
    /// Returns once the relay's DNS answers with them.
    pub async fn set_acme_txt(&self, values: Vec<String>) -> Result<(), RelayError> {
        self.shared.set_acme_txt(values).await
    }

    /// Removes this hub's `_acme-challenge` TXT records.
    pub async fn clear_acme_txt(&self) -> Result<(), RelayError> {
        self.shared.set_acme_txt(Vec::new()).await
    }

    /// Reports a new LAN address for `lan.<hub-id>.<domain>`. It is
    /// remembered and sent at every reconnect, even when this call fails
    /// with `NotConnected`.
    pub async fn set_lan_addr(&self, addr: Option<SocketAddr>) -> Result<(), RelayError> {
        self.shared.set_lan_addr(addr).await
    }

    /// Asks the relay to set the TXT records of any `name`. The relay
    /// accepts only this hub's own `_acme-challenge` name; this exists so
    /// tests can show that it refuses every other name.
    #[doc(hidden)]
    pub async fn set_txt_for_name(
        &self,
        name: &str,
        values: Vec<String>,
    ) -> Result<(), RelayError> {
        self.shared
            .request(&crate::wire::Request::SetTxt {
                name: name.to_owned(),
                values,
            })
            .await
    }

    /// The current state.
    pub fn status(&self) -> TunnelStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every change of [`Self::status`].
    pub fn watch_status(&self) -> watch::Receiver<TunnelStatus> {
        self.status.clone()
    }

    /// Waits until the tunnel is connected, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), RelayError> {
        let mut rx = self.status.clone();
        let outcome = match tokio::time::timeout(timeout, rx.wait_for(|s| s.connected)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(RelayError::NotConnected(Some("the tunnel stopped".into()))),
            Err(_) => Err(RelayError::NotConnected(self.status().last_error)),
        };
        outcome
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.task.abort();
    }
}
