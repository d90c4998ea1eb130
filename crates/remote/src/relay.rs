//! The hub's link to its relay: the tunnel (`porchlight_relay::client`,
//! built by the relay's crate) started from the stored settings, the
//! tunnel as the [`TxtPublisher`] for ACME, its state mirrored into the
//! hub's report, and the LAN address it reports.
//!
//! Invariants: the tunnel authenticates with the hub's identity key and
//! pins the relay by the fingerprint from the enrolment token; the token
//! is sent until the relay has enrolled the hub, then removed from the
//! settings file (it is single-use and spent). Only TXT records for this
//! hub's own `_acme-challenge` name are ever asked for.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context as _;
use porchlight_relay::client::{Incoming, Tunnel, TunnelConfig};
use tokio::sync::mpsc;

use crate::acme::{BoxFuture, TxtPublisher};
use crate::runtime::Remote;
use crate::settings::TunnelReport;

/// Starts the tunnel for `remote` (connecting in the background),
/// reporting `lan_addr` for `lan.<hub-id>.<domain>`.
pub fn start(
    remote: &Remote,
    lan_addr: Option<SocketAddr>,
) -> anyhow::Result<(Arc<Tunnel>, mpsc::Receiver<Incoming>)> {
    let s = remote.settings();
    let fingerprint = porchlight_relay::token::parse_fingerprint(&s.relay_fingerprint)
        .context("the relay fingerprint in remote/settings.json is damaged; run `porchlight remote enable` again")?;
    let cfg = TunnelConfig {
        relay: s.relay.clone(),
        relay_fingerprint: fingerprint,
        enrolment_token: s.enrolment_token.clone(),
        lan_addr,
    };
    let (t, rx) = Tunnel::start(cfg, remote.identity().signing_key().clone());
    Ok((Arc::new(t), rx))
}

/// Mirrors the tunnel's state into `remote`'s report until the tunnel
/// ends, and forgets the enrolment token once the relay has enrolled us.
pub fn spawn_status_watch(remote: Arc<Remote>, tunnel: &Tunnel) -> tokio::task::JoinHandle<()> {
    let mut rx = tunnel.watch_status();
    tokio::spawn(async move {
        loop {
            let st = rx.borrow_and_update().clone();
            remote.set_tunnel(TunnelReport {
                connected: st.connected,
                since: Some(st.since),
                last_error: st.last_error.clone(),
            });
            if st.enrolled {
                if let Err(e) = remote.forget_token() {
                    tracing::warn!("cannot remove the spent enrolment token: {e:#}");
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
}

/// The tunnel as the ACME TXT publisher.
pub struct RelayTxt {
    pub tunnel: Arc<Tunnel>,
    /// `_acme-challenge.<hub-id>.<domain>`: the only name asked for.
    pub name: String,
}

impl TxtPublisher for RelayTxt {
    fn set_txt(&self, name: &str, values: Vec<String>) -> BoxFuture<'_, anyhow::Result<()>> {
        let ok = name == self.name;
        let name = name.to_owned();
        Box::pin(async move {
            anyhow::ensure!(ok, "the relay publishes only {}, not {name}", self.name);
            self.tunnel
                .wait_connected(std::time::Duration::from_secs(30))
                .await
                .context("cannot reach the relay to publish the DNS-01 records")?;
            self.tunnel
                .set_acme_txt(values)
                .await
                .with_context(|| format!("the relay did not publish {name}"))
        })
    }

    fn clear_txt(&self, _name: &str) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move { Ok(self.tunnel.clear_acme_txt().await?) })
    }
}

/// The address to report as the hub's LAN address, from the address the
/// HTTPS listener is bound to: itself when it is a specific address; for
/// `0.0.0.0` / `[::]` the address of the interface the system would route
/// outside traffic through (a UDP `connect` only looks the route up — no
/// packet is sent); `None` when there is none.
pub fn lan_addr(bound: SocketAddr) -> Option<SocketAddr> {
    if !bound.ip().is_unspecified() {
        return Some(bound);
    }
    let (any, probe): (IpAddr, SocketAddr) = if bound.is_ipv4() {
        ([0, 0, 0, 0].into(), "192.0.2.1:9".parse().expect("valid"))
    } else {
        (
            "::".parse().expect("valid"),
            "[2001:db8::1]:9".parse().expect("valid"),
        )
    };
    let sock = std::net::UdpSocket::bind((any, 0)).ok()?;
    sock.connect(probe).ok()?;
    let ip = sock.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(SocketAddr::new(ip, bound.port()))
}
