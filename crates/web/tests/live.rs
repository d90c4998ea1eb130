//! The live view is re-authorized while it runs: a member watching a
//! camera over the real WebSocket (the hub served on a loopback port, a
//! tungstenite client) is cut off within 5 s — a close frame with code 1008
//! and a reason, and a `live.cut` audit entry — when the owner withdraws
//! the grant, when the session is revoked from another device, when it
//! signs out, when the account is disabled (what `porchlight user disable`
//! calls), when the session expires, and when the camera is paused for
//! privacy. A viewer whose access holds keeps watching.

#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use porchlight_recorder::LiveHub;
use porchlight_store::Role;
use porchlight_vault::Actor;
use support::Hub;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub with an owner (`olive`), a member (`mia`) granted camera `porch`,
/// served on a loopback port with a live hub (no frames: the camera is
/// quiet, which is all a re-check needs).
struct Live {
    hub: Hub,
    addr: SocketAddr,
    owner: String,
    member: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn live() -> Live {
    let hub = Hub::builder().build().await;
    let owner = hub.user("olive", Role::Owner).await;
    let member = hub.user("mia", Role::Member).await;
    hub.camera("porch").await;
    let r = hub
        .call("PUT", "/api/v1/cameras/porch/grants/mia", &owner, None)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let app = porchlight_web::App::new(
        hub.vault.clone(),
        Arc::new(porchlight_config::Config::default()),
    )
    .with_live(Arc::new(LiveHub::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(porchlight_web::serve(app, listener, async move {
        let _ = stopped.await;
    }));
    Live {
        hub,
        addr,
        owner,
        member,
        _stop: stop,
    }
}

impl Live {
    /// Opens the live view of `camera` as the holder of `token`.
    async fn watch(&self, camera: &str, token: &str) -> Ws {
        let mut req = format!("ws://{}/api/v1/cameras/{camera}/live", self.addr)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .unwrap_or_else(|e| panic!("the live view of {camera} did not open: {e}"));
        assert_eq!(resp.status(), 101);
        ws
    }

    async fn session_id(&self, token: &str) -> i64 {
        self.hub.get("/api/v1/me", token).await.json()["session"]["id"]
            .as_i64()
            .unwrap()
    }

    /// The reasons of the `live.cut` entries, oldest first.
    async fn cuts(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .hub
            .audit_log()
            .await
            .into_iter()
            .filter(|e| e.action == "live.cut")
            .map(|e| {
                (
                    e.actor,
                    e.detail["reason"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.reverse();
        v
    }
}

/// Waits (at most 5 s) for the server to close `ws`; returns the close
/// frame's code and reason. Panics when it stays open.
async fn closed_within_5s(ws: &mut Ws, what: &str) -> (CloseCode, String) {
    let next = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(Some(f)))) => return (f.code, f.reason.to_string()),
                Some(Ok(Message::Close(None))) | None => {
                    panic!("{what}: closed without a reason")
                }
                Some(Err(e)) => panic!("{what}: the connection failed instead of closing: {e}"),
                Some(Ok(_)) => continue,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), next)
        .await
        .unwrap_or_else(|_| panic!("{what}: the live view was still open 5 s later"))
}

/// Still open after `d`: no close and no error.
async fn still_open(ws: &mut Ws, d: Duration) {
    if let Ok(m) = tokio::time::timeout(d, ws.next()).await {
        panic!("the live view should still be open, got {m:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdrawing_the_grant_closes_the_members_live_view() {
    let l = live().await;
    let mut ws = l.watch("porch", &l.member).await;
    let mut owners = l.watch("porch", &l.owner).await;
    // Longer than a re-check: access that holds keeps the view open.
    still_open(&mut ws, Duration::from_millis(2500)).await;

    let r = l
        .hub
        .call("DELETE", "/api/v1/cameras/porch/grants/mia", &l.owner, None)
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let (code, reason) = closed_within_5s(&mut ws, "grant withdrawn").await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("no longer have access"), "{reason}");
    // The owner's view of the same camera is untouched.
    still_open(&mut owners, Duration::from_millis(500)).await;
    assert_eq!(
        l.cuts().await,
        [("mia".to_owned(), reason)],
        "one live.cut entry, by the member"
    );
    // Opening it again is refused.
    let mut req = format!("ws://{}/api/v1/cameras/porch/live", l.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {}", l.member).parse().unwrap(),
    );
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_session_from_another_device_closes_the_live_view() {
    let l = live().await;
    let mut ws = l.watch("porch", &l.member).await;
    let other = l.hub.token("mia").await;
    let id = l.session_id(&l.member).await;
    let r = l
        .hub
        .call("DELETE", &format!("/api/v1/me/sessions/{id}"), &other, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (code, reason) = closed_within_5s(&mut ws, "session revoked").await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("session ended"), "{reason}");
    assert_eq!(l.cuts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_closes_the_live_view() {
    let l = live().await;
    let mut ws = l.watch("porch", &l.member).await;
    let r = l
        .hub
        .call("DELETE", "/api/v1/sessions/current", &l.member, None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    let (code, reason) = closed_within_5s(&mut ws, "signed out").await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("session ended"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_the_user_closes_the_live_view() {
    let l = live().await;
    let mut ws = l.watch("porch", &l.member).await;
    // What `porchlight user disable mia` does.
    l.hub
        .vault
        .set_disabled("mia", true, &Actor::cli())
        .await
        .unwrap();
    let (code, reason) = closed_within_5s(&mut ws, "user disabled").await;
    assert_eq!(code, CloseCode::Policy);
    assert!(reason.contains("disabled"), "{reason}");
    assert_eq!(l.cuts().await, [("mia".to_owned(), reason)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_and_privacy_mode_close_the_live_view() {
    let l = live().await;
    let mut ws = l.watch("porch", &l.member).await;
    // Past the absolute session limit (30 days).
    l.hub.clock.advance(Duration::from_secs(31 * 86400));
    let (_, reason) = closed_within_5s(&mut ws, "session expired").await;
    assert!(reason.contains("session ended"), "{reason}");

    let owner = l.hub.token("olive").await;
    let mut ws = l.watch("porch", &owner).await;
    let cam = l.hub.store.camera_by_name("porch").await.unwrap().unwrap();
    l.hub
        .store
        .set_camera_privacy(cam.id, true, l.hub.vault.now())
        .await
        .unwrap();
    let (_, reason) = closed_within_5s(&mut ws, "privacy on").await;
    assert!(reason.contains("paused for privacy"), "{reason}");
}
