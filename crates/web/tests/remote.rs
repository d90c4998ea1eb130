//! The web layer's part of remote access (issue 15): requests that came
//! over the hub's own TLS get `Secure` cookies; with an HTTPS name set,
//! plain HTTP from another machine is redirected to it (308, same path),
//! while loopback and TLS requests are served. The settings page shows the
//! remote status from the data folder.

#[allow(dead_code)]
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use porchlight_config::Config;
use porchlight_store::Store;
use porchlight_vault::accounts::Vault;
use support::Resp;
use tower::ServiceExt as _;

async fn app(dir: &std::path::Path) -> porchlight_web::App {
    let store = Store::open(dir).await.unwrap();
    let vault = Arc::new(Vault::new(store, support::clock(), support::policy()));
    porchlight_web::App::new(vault, Arc::new(Config::default()))
}

async fn get(router: &Router, path: &str, peer: &str, tls: bool) -> Resp {
    let mut req = Request::get(path).body(Body::empty()).unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    if tls {
        req.extensions_mut().insert(porchlight_remote::OverTls);
    }
    Resp::read(router.clone().oneshot(req).await.unwrap()).await
}

#[tokio::test]
async fn cookies_are_secure_over_the_hubs_tls_and_not_over_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let router = app(dir.path()).await.router();
    let r = get(&router, "/setup", "127.0.0.1:5000", true).await;
    let csrf = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pl_csrf="))
        .expect("a CSRF cookie");
    assert!(csrf.contains("; Secure"), "{csrf}");
    let r = get(&router, "/setup", "127.0.0.1:5000", false).await;
    let csrf = r
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("pl_csrf="))
        .expect("a CSRF cookie");
    assert!(!csrf.contains("Secure"), "{csrf}");
}

#[tokio::test]
async fn plain_http_from_the_lan_is_redirected_to_the_hubs_https_name() {
    let dir = tempfile::tempdir().unwrap();
    let base = "https://lan.abcdefghijklmnopqrstuvwxyz.relay.test:8443";
    let router = app(dir.path())
        .await
        .with_https_redirect(base.into())
        .router();
    for peer in [
        "192.168.1.50:40000",
        "[fd00::5]:40000",
        "[::ffff:10.0.0.7]:1",
    ] {
        let r = get(&router, "/timeline?camera=porch&at=5", peer, false).await;
        assert_eq!(r.status, StatusCode::PERMANENT_REDIRECT, "{peer}");
        assert_eq!(r.location(), format!("{base}/timeline?camera=porch&at=5"));
    }
    // Loopback (the CLI, scripts) and requests over the hub's TLS: served.
    for (peer, tls) in [
        ("127.0.0.1:40000", false),
        ("[::1]:40000", false),
        ("[::ffff:127.0.0.1]:1", false),
        ("192.168.1.50:40000", true),
    ] {
        let r = get(&router, "/setup", peer, tls).await;
        assert_eq!(r.status, StatusCode::OK, "{peer} tls={tls}");
    }
    // Without the HTTPS name nothing is redirected.
    let plain = app(dir.path()).await.router();
    let r = get(&plain, "/setup", "192.168.1.50:40000", false).await;
    assert_eq!(r.status, StatusCode::OK);
}
