//! Serving the web app over TLS: from a TCP listener (`web.https_listen`,
//! the LAN) and from connections the relay forwards through the tunnel,
//! with one rustls config (the hub's certificate, hot-swapped on renewal)
//! and one axum router.
//!
//! Invariants:
//! * Every request served here carries the [`OverTls`] extension (so the
//!   web layer marks cookies `Secure` and never redirects it) and a
//!   `ConnectInfo<SocketAddr>` with the client's address: the TCP peer on
//!   the LAN, the PROXY-header address for tunnelled connections — so the
//!   audit log shows the real client either way.
//! * HTTP/1.1 only (ALPN `http/1.1`, with upgrades for the live view's
//!   WebSocket): every request has a `Host` header, on which the web
//!   layer's same-origin checks rest (HTTP/2 carries the authority
//!   elsewhere and needs extended CONNECT for WebSockets — a later step).
//! * A TLS handshake gets [`HANDSHAKE_TIMEOUT`]; a client that stalls is
//!   dropped. After [`TlsServer::shutdown`] no new connection is accepted
//!   and open ones are asked to finish (HTTP graceful shutdown).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

/// Request extension: this request came over TLS terminated by the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverTls;

/// How long a client gets to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A cheap handle that serves one connection at a time; clone it freely.
#[derive(Clone)]
pub struct TlsServe {
    acceptor: TlsAcceptor,
    router: Router,
    stop: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
}

/// Owns the stop signal and waits for open connections at shutdown.
pub struct TlsServer {
    handle: TlsServe,
    stop_tx: watch::Sender<bool>,
    alive_rx: mpsc::Receiver<()>,
}

impl TlsServer {
    pub fn new(config: Arc<rustls::ServerConfig>, router: Router) -> TlsServer {
        let (stop_tx, stop) = watch::channel(false);
        let (alive, alive_rx) = mpsc::channel(1);
        TlsServer {
            handle: TlsServe {
                acceptor: TlsAcceptor::from(config),
                router,
                stop,
                alive,
            },
            stop_tx,
            alive_rx,
        }
    }

    pub fn handle(&self) -> TlsServe {
        self.handle.clone()
    }

    /// Stops accepting, asks open connections to finish, and waits for
    /// them (the caller bounds the wait).
    pub async fn shutdown(self) {
        let TlsServer {
            handle,
            stop_tx,
            mut alive_rx,
        } = self;
        let _ = stop_tx.send(true);
        drop(handle);
        // Every connection task holds an `alive` sender: `None` once all
        // are done.
        let _ = alive_rx.recv().await;
    }
}

impl TlsServe {
    /// Accepts on `listener` until shutdown, serving each connection.
    pub async fn run_listener(self, listener: tokio::net::TcpListener) {
        let mut stop = self.stop.clone();
        loop {
            tokio::select! {
                _ = stopped(&mut stop) => return,
                accepted = listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        self.spawn_conn(tcp, peer);
                    }
                    Err(e) => {
                        tracing::warn!("HTTPS accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
            }
        }
    }

    /// Serves one connection whose first byte is the client's TLS
    /// ClientHello, `peer` being the client's address.
    pub fn spawn_conn<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let me = self.clone();
        tokio::spawn(async move {
            let _alive = me.alive.clone();
            let tls =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, me.acceptor.accept(stream)).await {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let svc = me.router.clone().map_request(
                move |mut req: axum::http::Request<hyper::body::Incoming>| {
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req.extensions_mut().insert(OverTls);
                    req
                },
            );
            let svc = hyper_util::service::TowerToHyperService::new(svc);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), svc)
                .with_upgrades();
            tokio::pin!(conn);
            let mut stop = me.stop.clone();
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, "HTTPS connection ended: {e}");
                    }
                }
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
