//! The hub side through a real relay (porchlight-relay's server, in this
//! process on loopback) and a real test CA (Pebble, whose DNS-01 checks
//! ask the relay's authoritative DNS — nothing else serves the TXT
//! records):
//!
//! * the hub enrols with a single-use token (spent afterwards: removed
//!   from its settings), publishes its DNS-01 records through the tunnel
//!   and gets its certificate;
//! * a client that trusts only Pebble's root reaches the hub at
//!   `https://<hub-id>.relay.test` through the relay's TLS port, TLS ending
//!   at the hub, which sees the client's address from the PROXY header;
//!   and at `https://lan.<hub-id>.relay.test` straight on the LAN listener;
//! * the integrity check through the relay finds the hub's own key.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::{Extension, Router};
use porchlight_relay::server::{invite, Relay, RelayConfig};
use porchlight_remote::settings::IntegrityOutcome;
use porchlight_remote::testing::Pebble;
use porchlight_remote::{relay, HubIdentity, OverTls, Remote, RemoteSettings, TlsServer};

const DOMAIN: &str = "relay.test";

async fn whoami(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    tls: Option<Extension<OverTls>>,
) -> String {
    format!("{peer} tls={}", tls.is_some())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_gets_its_certificate_through_the_relay_and_is_reached_through_it() {
    if !porchlight_base::tools::external("pebble") {
        return;
    }
    porchlight_remote::certs::install_default_provider();
    let relay_dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig {
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        control_listen: "127.0.0.1:0".parse().unwrap(),
        dns_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..RelayConfig::new(
            DOMAIN,
            relay_dir.path().to_path_buf(),
            "127.0.0.1".parse().unwrap(),
        )
    };
    let relay_server = Relay::bind(cfg).await.expect("relay binds");
    let (relay_tls, relay_control, relay_dns) = (
        relay_server.tls_addr(),
        relay_server.control_addr(),
        relay_server.dns_addr().unwrap(),
    );
    tokio::spawn(async move { relay_server.run().await.expect("relay runs") });
    let (token, _) = invite(relay_dir.path(), jiff::SignedDuration::from_hours(1), None).unwrap();

    // Pebble validates DNS-01 by asking the relay's DNS.
    let pebble = tokio::task::spawn_blocking(move || {
        Pebble::start(Duration::from_secs(3600), Some(relay_dns)).expect("pebble starts")
    })
    .await
    .unwrap();

    let hub_dir = tempfile::tempdir().unwrap();
    let id = HubIdentity::load_or_create(hub_dir.path()).unwrap();
    RemoteSettings {
        relay: relay_control.to_string(),
        relay_fingerprint: token.fingerprint_text(),
        domain: token.domain.clone(),
        enrolment_token: Some(token.to_string()),
        acme: pebble.acme_options(),
        public_tls: Some(relay_tls.to_string()),
    }
    .save(hub_dir.path())
    .unwrap();
    let remote = Remote::load(hub_dir.path()).unwrap().unwrap();
    let name = format!("{}.{DOMAIN}", id.hub_id());
    assert_eq!(remote.hub_name(), name);

    // The hub: its LAN listener and the tunnel, one TLS server.
    let lan = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lan_addr = lan.local_addr().unwrap();
    let router = Router::new().route("/", get(whoami));
    let server = TlsServer::new(remote.server_config(), router);
    tokio::spawn(server.handle().run_listener(lan));
    let (tunnel, mut incoming) = relay::start(&remote, Some(lan_addr)).unwrap();
    let _watch = relay::spawn_status_watch(remote.clone(), &tunnel);
    let serve = server.handle();
    tokio::spawn(async move {
        while let Some(c) = incoming.recv().await {
            serve.spawn_conn(c.stream, c.client_addr);
        }
    });

    let txt = relay::RelayTxt {
        tunnel: tunnel.clone(),
        name: remote.acme_txt_name(),
    };
    let info = remote
        .obtain_certificate(&txt)
        .await
        .expect("a certificate validated through the relay's DNS");
    assert_eq!(info.names, [name.clone(), format!("*.{name}")]);
    assert!(remote.report().tunnel.is_some_and(|t| t.connected));
    // The token is spent: it no longer sits in the hub's settings.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while RemoteSettings::load(hub_dir.path())
        .unwrap()
        .unwrap()
        .enrolment_token
        .is_some()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the spent token stays in the settings"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let root = pebble.root_pem().await.unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root.as_bytes()).unwrap())
        .resolve(&name, relay_tls)
        .resolve(&format!("lan.{name}"), lan_addr)
        .build()
        .unwrap();
    // Away: through the relay, TLS ending at the hub with its certificate.
    let away = client
        .get(format!("https://{name}:{}/", relay_tls.port()))
        .send()
        .await
        .expect("the hub through the relay")
        .text()
        .await
        .unwrap();
    assert!(
        away.starts_with("127.0.0.1:") && away.ends_with("tls=true"),
        "{away}"
    );
    // The address is the client's (PROXY header), not the relay's tunnel.
    let client_port: u16 = away
        .trim_start_matches("127.0.0.1:")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(client_port, relay_tls.port());
    // At home: the LAN name, straight to the hub.
    let home = client
        .get(format!("https://lan.{name}:{}/", lan_addr.port()))
        .send()
        .await
        .expect("the hub on the LAN")
        .text()
        .await
        .unwrap();
    assert!(home.ends_with("tls=true"), "{home}");

    // The integrity check through the relay: the hub's own key.
    let (r, alarm) = remote.check_integrity().await;
    assert_eq!(r.outcome, IntegrityOutcome::Ok, "{r:?}");
    assert!(!alarm);
    assert_eq!(
        r.presented_spki_sha256.as_deref(),
        Some(info.spki_sha256.as_str())
    );
}
