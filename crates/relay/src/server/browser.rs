//! The browsers' port: read the SNI, pick the hub, forward raw bytes.
//!
//! Invariants:
//! * TLS is never terminated here: the relay reads the ClientHello's
//!   records to find the SNI (bounded in size and time), then forwards
//!   those same bytes and everything after them unchanged.
//! * Nothing reaches a hub unless the name is one of its names
//!   (`<hub-id>.<domain>`, `*.<hub-id>.<domain>`), the hub is connected,
//!   and it is under its connection limit; otherwise the connection is
//!   closed with nothing forwarded and the reason logged.
//! * Each forwarded connection starts with a PROXY v2 header naming the
//!   browser's address; both directions draw on the hub's byte bucket.
//! * Logged per connection: hub-id, client address, duration, bytes each
//!   way. No content.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::FuturesAsyncReadCompatExt;

use super::State;
use crate::error::RelayError;
use crate::limits::TokenBucket;
use crate::names::{classify, Name};
use crate::sni;
use crate::wire::proxy;

/// The ClientHello must arrive within this.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
) -> Result<(), RelayError> {
    let local = listener
        .local_addr()
        .map_err(RelayError::io("the browsers' port"))?;
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accepting a browser connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let st = state.clone();
        state.spawn(async move {
            match forward(st, tcp, peer, local).await {
                Ok(()) => {}
                Err(reason) => {
                    tracing::info!(client = %peer, "refused a browser connection: {reason}")
                }
            }
        });
    }
}

/// Serves one browser connection; `Err` is a refusal (nothing forwarded).
async fn forward(
    state: Arc<State>,
    mut tcp: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<(), String> {
    let _ = tcp.set_nodelay(true);
    let started = Instant::now();
    let peeked = tokio::time::timeout(HELLO_TIMEOUT, sni::read_client_hello(&mut tcp))
        .await
        .map_err(|_| format!("no ClientHello within {} s", HELLO_TIMEOUT.as_secs()))??;
    let name = peeked
        .sni
        .ok_or("the ClientHello has no server name (SNI), so there is no hub to route to")?;
    let hub = match classify(&name, &state.domain) {
        Some(Name::Hub(id)) | Some(Name::Lan(id)) => id,
        Some(_) | None => return Err(format!("`{name}` is not a hub name of this relay")),
    };
    if !state.hub_active(&hub) {
        return Err(format!("hub {hub} is not enrolled here or was revoked"));
    }
    let (opener, conns, bucket) = {
        let links = state.links.lock().unwrap_or_else(|p| p.into_inner());
        let link = links
            .get(&hub)
            .ok_or_else(|| format!("hub {hub} is not connected"))?;
        (link.opener.clone(), link.conns.clone(), link.bucket.clone())
    };
    let _permit = conns.try_acquire_owned().map_err(|_| {
        format!(
            "hub {hub} already has {} connections open, its limit",
            state.limits.max_connections_per_hub
        )
    })?;
    let stream = opener.open().await.map_err(|e| format!("hub {hub}: {e}"))?;
    let mut up = stream.compat();
    let mut head = proxy::encode(peer, local);
    head.extend_from_slice(&peeked.bytes);
    bucket.take(peeked.bytes.len()).await;
    up.write_all(&head)
        .await
        .map_err(|e| format!("hub {hub}: writing into the tunnel: {e}"))?;

    let (br, bw) = tokio::io::split(tcp);
    let (hr, hw) = tokio::io::split(up);
    let (to_hub, to_browser) = tokio::join!(pump(br, hw, &bucket), pump(hr, bw, &bucket),);
    tracing::info!(
        hub = %hub,
        client = %peer,
        secs = started.elapsed().as_secs_f64(),
        bytes_to_hub = to_hub + peeked.bytes.len() as u64,
        bytes_to_client = to_browser,
        "connection closed"
    );
    Ok(())
}

/// Copies until EOF or error, paying the bucket for every read, then
/// shuts the writer down so the other side sees the end. Returns the byte
/// count.
async fn pump<R, W>(mut r: R, mut w: W, bucket: &TokenBucket) -> u64
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        bucket.take(n).await;
        if w.write_all(&buf[..n]).await.is_err() || w.flush().await.is_err() {
            break;
        }
        total += n as u64;
    }
    let _ = w.shutdown().await;
    total
}
