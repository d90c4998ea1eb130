//! The control port: hubs connect, authenticate, enrol on first contact,
//! and keep their tunnel; their control requests (TXT records, LAN
//! address, ping) arrive on streams they open.
//!
//! Invariants:
//! * A hub is admitted only after its signature over the relay's fresh
//!   nonce and this TLS session's exporter verifies with the key it
//!   presents, and that key is enrolled (not revoked) or is being enrolled
//!   now with a valid, unused, unexpired invite of this relay.
//! * A hub may change only its own records: the TXT name it names must be
//!   `_acme-challenge.<its own hub-id>.<domain>`, else the request is
//!   refused and nothing changes.
//! * Every refusal is sent to the hub as a sentence before closing, and
//!   logged with the client address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use super::{HubLink, State};
use crate::error::RelayError;
use crate::limits::TokenBucket;
use crate::mux;
use crate::names::hub_id;
use crate::token::EnrolmentToken;
use crate::wire::{self, Challenge, Hello, Request, Response, Verdict};

/// TLS handshake and authentication must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TXT values a hub may publish at once (a wildcard and a base name
/// need two).
const MAX_TXT_VALUES: usize = 8;
/// Longest TXT value (a DNS-01 value is 43 characters).
const MAX_TXT_LEN: usize = 255;

/// How often a running tunnel checks that its hub is still enrolled.
const REVOCATION_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

pub(crate) async fn accept_loop(
    state: Arc<State>,
    listener: TcpListener,
) -> Result<(), RelayError> {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accepting a hub connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let st = state.clone();
        state.spawn(async move {
            if let Err(e) = serve_hub(st, tcp, peer).await {
                tracing::info!(client = %peer, "hub connection ended: {e}");
            }
        });
    }
}

async fn serve_hub(state: Arc<State>, tcp: TcpStream, peer: SocketAddr) -> Result<(), RelayError> {
    let _ = tcp.set_nodelay(true);
    let handshake = async {
        let mut tls = state
            .tls
            .accept(tcp)
            .await
            .map_err(|e| RelayError::Tls(format!("handshake with {peer}: {e}")))?;
        let nonce: [u8; 32] = porchlight_base::secret::random_bytes();
        wire::write_frame(
            &mut tls,
            &Challenge {
                version: wire::VERSION,
                nonce: wire::hex(&nonce),
            },
        )
        .await?;
        let hello: Hello = wire::read_frame(&mut tls, "hub's hello").await?;
        let exporter: [u8; 32] = tls
            .get_ref()
            .1
            .export_keying_material([0u8; 32], wire::EXPORTER_LABEL, None)
            .map_err(|e| RelayError::Tls(format!("TLS exporter: {e}")))?;
        let verdict = admit(&state, &hello, &nonce, &exporter);
        let reply = match &verdict {
            Ok((id, enrolled_now, _)) => Verdict::Welcome {
                hub_id: id.clone(),
                domain: state.domain.clone(),
                enrolled_now: *enrolled_now,
            },
            Err(reason) => Verdict::Refused {
                reason: reason.clone(),
            },
        };
        wire::write_frame(&mut tls, &reply).await?;
        match verdict {
            Ok((id, enrolled_now, lan)) => Ok((tls, id, enrolled_now, lan)),
            Err(reason) => Err(RelayError::Refused(reason)),
        }
    };
    let (tls, id, enrolled_now, lan) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .map_err(|_| RelayError::Timeout(format!("waiting for {peer} to authenticate")))??;

    tracing::info!(hub = %id, client = %peer, enrolled_now, "hub connected");
    state
        .dns
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(id.clone())
        .or_default()
        .lan = lan;

    let conn = yamux::Connection::new(
        tls.compat(),
        mux::config(state.limits.max_connections_per_hub + 16),
        yamux::Mode::Server,
    );
    let (opener, open_rx) = mux::opener();
    let conn_id = state.next_id();
    let close = state.shutdown.child_token();
    let link = HubLink {
        conn_id,
        opener: opener.clone(),
        conns: Arc::new(tokio::sync::Semaphore::new(
            state.limits.max_connections_per_hub,
        )),
        bucket: Arc::new(TokenBucket::new(state.limits.bytes_per_second_per_hub)),
        close: close.clone(),
    };
    if let Some(old) = state
        .links
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), link)
    {
        tracing::info!(hub = %id, "a new tunnel replaces the hub's previous one");
        old.close.cancel();
    }
    // The opener lives in the map; this task keeps none, so removing the
    // link from the map ends the driver.
    drop(opener);

    let st = state.clone();
    let hub = id.clone();
    let driver = mux::drive(conn, open_rx, move |s| {
        let st2 = st.clone();
        let hub = hub.clone();
        st.spawn(async move {
            if let Err(e) = handle_request(&st2, &hub, s).await {
                tracing::info!(hub = %hub, "control request failed: {e}");
            }
        });
    });
    // A revocation (`porchlight relay revoke`, from another process) ends
    // the running tunnel too, and with it every browser connection in it.
    let revoked = {
        let st = state.clone();
        let hub = id.clone();
        async move {
            while st.hub_active(&hub) {
                tokio::time::sleep(REVOCATION_CHECK).await;
            }
        }
    };
    let reason = tokio::select! {
        r = driver => r,
        _ = close.cancelled() => "replaced by a newer tunnel or stopped".to_owned(),
        _ = revoked => "revoked by the relay's operator".to_owned(),
    };
    let mut links = state.links.lock().unwrap_or_else(|p| p.into_inner());
    if links.get(&id).is_some_and(|l| l.conn_id == conn_id) {
        links.remove(&id);
    }
    drop(links);
    tracing::info!(hub = %id, client = %peer, "hub disconnected: {reason}");
    Ok(())
}

/// Checks the hello: `(hub-id, enrolled now?, LAN address)` or a refusal
/// in words.
fn admit(
    state: &State,
    hello: &Hello,
    nonce: &[u8; 32],
    exporter: &[u8; 32],
) -> Result<(String, bool, Option<std::net::IpAddr>), String> {
    if hello.version != wire::VERSION {
        return Err(format!(
            "this relay speaks protocol version {}, the hub {}; update one of them",
            wire::VERSION,
            hello.version
        ));
    }
    let pk = wire::hex32(&hello.public_key, "public key").map_err(|e| e.to_string())?;
    let key = VerifyingKey::from_bytes(&pk)
        .map_err(|_| "the hub's public key is not a valid Ed25519 key".to_owned())?;
    let sig = wire::hex64(&hello.signature, "signature").map_err(|e| e.to_string())?;
    key.verify(
        &wire::signed_message(nonce, exporter, &pk),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| {
        "the hub's signature does not verify: it does not hold the key it presents".to_owned()
    })?;
    let id = hub_id(&key);
    let lan = hello.lan_addr.map(|a| a.ip());
    match state.store.hub(&id) {
        Ok(Some(rec)) => {
            if let Some(when) = rec.revoked {
                return Err(format!(
                    "hub {id} was revoked by the relay's operator at {when}; enrol again with a new token"
                ));
            }
            if rec.public_key != wire::hex(&pk) {
                return Err(format!("hub {id} is enrolled with another key"));
            }
            Ok((id, false, lan))
        }
        Ok(None) => {
            let Some(text) = hello.token.as_deref() else {
                return Err(format!(
                    "hub {id} is not enrolled at this relay: enrol it with a token from `porchlight relay invite`"
                ));
            };
            let token: EnrolmentToken = text
                .parse()
                .map_err(|e: crate::token::TokenError| e.to_string())?;
            if token.relay_fingerprint != state.fingerprint {
                return Err("this enrolment token was made by another relay (its fingerprint is not this relay's)".into());
            }
            if token.domain != state.domain {
                return Err(format!(
                    "this enrolment token is for the domain {}, this relay serves {}",
                    token.domain, state.domain
                ));
            }
            state.store.spend_invite(&token, &id)?;
            state
                .store
                .add_hub(&key)
                .map_err(|e| format!("cannot record the enrolment: {e}"))?;
            Ok((id, true, lan))
        }
        Err(e) => Err(format!("the relay cannot read its records: {e}")),
    }
}

/// One hub-opened stream: one request, one response.
async fn handle_request(state: &State, hub: &str, stream: yamux::Stream) -> Result<(), RelayError> {
    let mut s = stream.compat();
    let req: Request =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, wire::read_frame(&mut s, "hub's request"))
            .await
            .map_err(|_| RelayError::Timeout("waiting for a control request".into()))??;
    let answer = match apply(state, hub, req) {
        Ok(()) => Response::Ok,
        Err(reason) => {
            tracing::info!(hub = %hub, "control request refused: {reason}");
            Response::Refused { reason }
        }
    };
    wire::write_frame(&mut s, &answer).await
}

fn apply(state: &State, hub: &str, req: Request) -> Result<(), String> {
    match req {
        Request::Ping => Ok(()),
        Request::SetLan { addr } => {
            state
                .dns
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(hub.to_owned())
                .or_default()
                .lan = addr;
            tracing::info!(hub = %hub, "LAN address {}", if addr.is_some() { "reported" } else { "cleared" });
            Ok(())
        }
        Request::SetTxt { name, values } => {
            let own = format!("_acme-challenge.{hub}.{}", state.domain);
            let asked = name.trim_end_matches('.').to_ascii_lowercase();
            if asked != own {
                return Err(format!(
                    "hub {hub} may set TXT records only for {own}, not for {name}"
                ));
            }
            if values.len() > MAX_TXT_VALUES {
                return Err(format!("at most {MAX_TXT_VALUES} TXT values at once"));
            }
            if let Some(v) = values
                .iter()
                .find(|v| v.len() > MAX_TXT_LEN || !v.bytes().all(|b| b.is_ascii_graphic()))
            {
                return Err(format!(
                    "TXT value {:?} is not printable ASCII of at most {MAX_TXT_LEN} characters",
                    v.chars().take(40).collect::<String>()
                ));
            }
            let n = values.len();
            let mut dns = state.dns.lock().unwrap_or_else(|p| p.into_inner());
            dns.entry(hub.to_owned()).or_default().txt = values;
            tracing::info!(hub = %hub, values = n, "ACME TXT records set");
            Ok(())
        }
    }
}
