//! End-to-end tests of the relay and the hub's tunnel client over real TCP
//! on loopback (ephemeral ports): enrolment and its refusals, SNI
//! passthrough into a test hub that terminates TLS itself, the PROXY
//! header, that the relay never sees plaintext, DNS answers, restart and
//! reconnect, and the per-hub connection cap. Nothing of the relay is
//! mocked; the "hub" is the real client plus a TLS server of the test's.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use porchlight_relay::client::{Incoming, Tunnel, TunnelConfig, TunnelStatus};
use porchlight_relay::limits::Limits;
use porchlight_relay::server::{invite, Relay, RelayConfig};
use porchlight_relay::{hub_id, EnrolmentToken};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

const DOMAIN: &str = "relay.test";
const PUBLIC_IP: &str = "203.0.113.5";
const WAIT: Duration = Duration::from_secs(10);

struct RunningRelay {
    task: JoinHandle<()>,
    tls: SocketAddr,
    control: SocketAddr,
    dns: SocketAddr,
    fingerprint: [u8; 32],
}

async fn start_relay_at(dir: &Path, control: SocketAddr, limits: Limits) -> RunningRelay {
    let cfg = RelayConfig {
        tls_listen: "127.0.0.1:0".parse().unwrap(),
        control_listen: control,
        dns_listen: Some("127.0.0.1:0".parse().unwrap()),
        limits,
        ..RelayConfig::new(DOMAIN, dir.to_path_buf(), PUBLIC_IP.parse().unwrap())
    };
    let relay = Relay::bind(cfg).await.expect("relay binds");
    let r = RunningRelay {
        tls: relay.tls_addr(),
        control: relay.control_addr(),
        dns: relay.dns_addr().unwrap(),
        fingerprint: relay.fingerprint(),
        task: tokio::spawn(async move {
            relay.run().await.expect("relay runs");
        }),
    };
    r
}

async fn start_relay(dir: &Path) -> RunningRelay {
    start_relay_at(dir, "127.0.0.1:0".parse().unwrap(), Limits::default()).await
}

fn new_key(seed: u8) -> SigningKey {
    let mut b: [u8; 32] = rand::random();
    b[0] = seed;
    SigningKey::from_bytes(&b)
}

fn token(dir: &Path) -> String {
    invite(dir, jiff::SignedDuration::from_hours(24), None)
        .unwrap()
        .0
        .to_string()
}

fn cfg(relay: &RunningRelay, token: Option<String>) -> TunnelConfig {
    TunnelConfig {
        relay: relay.control.to_string(),
        relay_fingerprint: relay.fingerprint,
        enrolment_token: token,
        lan_addr: Some("192.168.1.20:8443".parse().unwrap()),
    }
}

/// Waits until the tunnel reports an error and returns it.
async fn first_error(t: &Tunnel) -> String {
    let mut rx = t.watch_status();
    let s: TunnelStatus = tokio::time::timeout(WAIT, rx.wait_for(|s| s.last_error.is_some()))
        .await
        .expect("an error within 10 s")
        .unwrap()
        .clone();
    assert!(!s.connected);
    s.last_error.unwrap()
}

#[tokio::test]
async fn enrol_with_token_then_reconnect_with_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let key = new_key(1);
    let tok = token(dir.path());

    let (t, _rx) = Tunnel::start(cfg(&relay, Some(tok.clone())), key.clone());
    t.wait_connected(WAIT).await.expect("enrols and connects");
    let s = t.status();
    assert!(s.enrolled);
    assert_eq!(s.hub_id, hub_id(&key.verifying_key()));
    assert_eq!(
        s.hub_name.as_deref(),
        Some(format!("{}.{DOMAIN}", s.hub_id).as_str())
    );
    drop(t);

    // The key alone is enough from now on.
    let (t, _rx) = Tunnel::start(cfg(&relay, None), key.clone());
    t.wait_connected(WAIT)
        .await
        .expect("reconnects with the key alone");
    drop(t);

    // The relay's folder holds the hub's public key only.
    let rec = std::fs::read_to_string(dir.path().join(format!("hubs/{}.json", s.hub_id))).unwrap();
    assert!(rec.contains(&data_encoding::HEXLOWER.encode(key.verifying_key().as_bytes())));
    assert!(!rec.contains(&data_encoding::HEXLOWER.encode(key.as_bytes())));

    // The same token for another key: spent.
    let (t, _rx) = Tunnel::start(cfg(&relay, Some(tok)), new_key(2));
    let e = first_error(&t).await;
    assert!(e.contains("already used"), "{e}");
}

/// `relay revoke` (the store's `revoke_hub`, from another process) ends a
/// running tunnel within seconds, and the hub's reconnection is refused
/// with the reason.
#[tokio::test]
async fn revoking_a_hub_ends_its_running_tunnel_and_refuses_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let key = new_key(11);
    let (t, _rx) = Tunnel::start(cfg(&relay, Some(token(dir.path()))), key.clone());
    t.wait_connected(WAIT).await.expect("enrols and connects");
    let id = hub_id(&key.verifying_key());
    porchlight_relay::store::RelayStore::open(dir.path())
        .unwrap()
        .revoke_hub(&id)
        .unwrap();
    // The running tunnel is cut, and the hub's next attempt is refused
    // with the reason (bounded wait: the check runs every second, the
    // hub's first retry follows at once).
    let mut rx = t.watch_status();
    let s: TunnelStatus = tokio::time::timeout(
        Duration::from_secs(15),
        rx.wait_for(|s| {
            !s.connected
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("revoked"))
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("no refusal naming the revocation: {:?}", t.status()))
    .unwrap()
    .clone();
    assert!(s
        .last_error
        .unwrap()
        .contains("revoked by the relay's operator"));
}

#[tokio::test]
async fn wrong_expired_missing_and_foreign_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;

    // No token, unknown key.
    let (t, _rx) = Tunnel::start(cfg(&relay, None), new_key(3));
    let e = first_error(&t).await;
    assert!(e.contains("not enrolled at this relay"), "{e}");

    // Right relay, secret it never issued.
    let mut wrong: EnrolmentToken = token(dir.path()).parse().unwrap();
    wrong.secret = rand::random();
    let (t, _rx) = Tunnel::start(cfg(&relay, Some(wrong.to_string())), new_key(4));
    let e = first_error(&t).await;
    assert!(e.contains("unknown enrolment token"), "{e}");

    // Expired.
    let short = invite(dir.path(), jiff::SignedDuration::from_millis(1), None)
        .unwrap()
        .0;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (t, _rx) = Tunnel::start(cfg(&relay, Some(short.to_string())), new_key(5));
    let e = first_error(&t).await;
    assert!(e.contains("expired"), "{e}");

    // A token that names another relay's key.
    let mut foreign: EnrolmentToken = token(dir.path()).parse().unwrap();
    foreign.relay_fingerprint = [7; 32];
    let (t, _rx) = Tunnel::start(cfg(&relay, Some(foreign.to_string())), new_key(6));
    let e = first_error(&t).await;
    assert!(e.contains("another relay"), "{e}");

    // A malformed token: the relay names the broken part.
    let (t, _rx) = Tunnel::start(cfg(&relay, Some("plr1_nonsense_x_y".into())), new_key(7));
    let e = first_error(&t).await;
    assert!(e.contains("fingerprint"), "{e}");

    // The hub pinned another key than the relay's: it refuses the relay.
    let mut c = cfg(&relay, Some(token(dir.path())));
    c.relay_fingerprint = [9; 32];
    let (t, _rx) = Tunnel::start(c, new_key(8));
    let e = first_error(&t).await;
    assert!(e.contains("does not match the fingerprint"), "{e}");

    // None of these enrolled anything.
    assert_eq!(
        std::fs::read_dir(dir.path().join("hubs")).unwrap().count(),
        0
    );
}

/// A test hub: terminates TLS on each forwarded connection with its own
/// certificate, reads one line, answers with a marker, and reports what
/// it saw.
struct TestHub {
    seen: mpsc::UnboundedReceiver<(SocketAddr, String)>,
    held: Arc<Mutex<Vec<tokio_rustls::server::TlsStream<porchlight_relay::client::TunnelStream>>>>,
    cert: CertificateDer<'static>,
}

fn hub_tls(names: Vec<String>) -> (Arc<rustls::ServerConfig>, CertificateDer<'static>) {
    let ck = rcgen::generate_simple_self_signed(names).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    (Arc::new(cfg), cert)
}

fn serve_test_hub(id: &str, mut incoming: mpsc::Receiver<Incoming>, hold: bool) -> TestHub {
    let (cfg, cert) = hub_tls(vec![format!("{id}.{DOMAIN}"), format!("*.{id}.{DOMAIN}")]);
    let (tx, seen) = mpsc::unbounded_channel();
    let held = Arc::new(Mutex::new(Vec::new()));
    let held2 = held.clone();
    tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        while let Some(conn) = incoming.recv().await {
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            let held = held2.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(conn.stream).await else {
                    return;
                };
                let mut buf = vec![0u8; 256];
                let n = tls.read(&mut buf).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&buf[..n]).into_owned();
                let _ = tls.write_all(b"HUB-SAYS-SECRET-REPLY-MARKER\n").await;
                let _ = tls.flush().await;
                let _ = tx.send((conn.client_addr, line));
                if hold {
                    held.lock().unwrap().push(tls);
                }
            });
        }
    });
    TestHub { seen, held, cert }
}

fn client_config(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// A byte tap in front of the relay's browser port: records everything
/// both ways, and the local address of its upstream connection (the
/// client address the relay sees).
struct Tap {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
    upstream_locals: Arc<Mutex<Vec<SocketAddr>>>,
}

async fn tap(target: SocketAddr) -> Tap {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let bytes = Arc::new(Mutex::new(Vec::new()));
    let locals = Arc::new(Mutex::new(Vec::new()));
    let (b2, l2) = (bytes.clone(), locals.clone());
    tokio::spawn(async move {
        while let Ok((down, _)) = l.accept().await {
            let up = TcpStream::connect(target).await.unwrap();
            l2.lock().unwrap().push(up.local_addr().unwrap());
            let (mut dr, mut dw) = down.into_split();
            let (mut ur, mut uw) = up.into_split();
            let (b3, b4) = (b2.clone(), b2.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = dr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    b3.lock().unwrap().extend_from_slice(&buf[..n]);
                    if uw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = uw.shutdown().await;
            });
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = ur.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    b4.lock().unwrap().extend_from_slice(&buf[..n]);
                    if dw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = dw.shutdown().await;
            });
        }
    });
    Tap {
        addr,
        bytes,
        upstream_locals: locals,
    }
}

/// Connects as a browser would: TLS with `sni` (None: an IP, so no SNI).
async fn browse(
    to: SocketAddr,
    sni: Option<&str>,
    root: &CertificateDer<'static>,
    msg: &str,
) -> Result<(String, tokio_rustls::client::TlsStream<TcpStream>), String> {
    let tcp = TcpStream::connect(to).await.map_err(|e| e.to_string())?;
    let name = match sni {
        Some(n) => ServerName::try_from(n.to_owned()).unwrap(),
        None => ServerName::IpAddress(to.ip().into()),
    };
    let connector = tokio_rustls::TlsConnector::from(client_config(root));
    let mut tls = tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    tls.write_all(msg.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    tls.flush().await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(WAIT, tls.read(&mut buf))
        .await
        .map_err(|_| "no reply".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), tls))
}

async fn connected_hub(dir: &Path, relay: &RunningRelay, hold: bool) -> (Tunnel, TestHub, String) {
    let key = new_key(10);
    let id = hub_id(&key.verifying_key());
    let (t, rx) = Tunnel::start(cfg(relay, Some(token(dir))), key);
    t.wait_connected(WAIT).await.unwrap();
    (t, serve_test_hub(&id, rx, hold), id)
}

#[tokio::test]
async fn browser_tls_reaches_the_hub_and_the_relay_sees_only_ciphertext() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let (_t, mut hub, id) = connected_hub(dir.path(), &relay, false).await;
    let tap = tap(relay.tls).await;

    let secret = "BROWSER-SAYS-SECRET-COOKIE-MARKER";
    for name in [format!("{id}.{DOMAIN}"), format!("www.{id}.{DOMAIN}")] {
        let (reply, _tls) = browse(tap.addr, Some(&name), &hub.cert, secret)
            .await
            .expect("the browser's TLS reaches the hub");
        assert_eq!(reply, "HUB-SAYS-SECRET-REPLY-MARKER\n");
        let (client_addr, line) = tokio::time::timeout(WAIT, hub.seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(line, secret);
        // The PROXY header carried the address the relay saw (the tap's
        // upstream socket), not the relay's own or the tunnel's.
        assert_eq!(
            Some(client_addr),
            tap.upstream_locals.lock().unwrap().last().copied()
        );
    }

    let seen = tap.bytes.lock().unwrap().clone();
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // The tap did capture the session: the ClientHello's SNI is in clear.
    assert!(
        contains(&seen, id.as_bytes()),
        "the tap saw {} bytes",
        seen.len()
    );
    // ...but neither side's plaintext.
    assert!(!contains(&seen, secret.as_bytes()));
    assert!(!contains(&seen, b"SECRET-REPLY-MARKER"));
    assert!(!contains(&seen, b"MARKER"));
}

#[tokio::test]
async fn no_sni_unknown_name_and_offline_hub_are_refused_with_nothing_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let (_t, mut hub, id) = connected_hub(dir.path(), &relay, false).await;
    let offline = hub_id(&new_key(11).verifying_key());
    let cases = [
        None,
        Some("example.com".to_owned()),
        Some(format!("nothub.{DOMAIN}")),
        Some(format!("_acme-challenge.{id}.{DOMAIN}")),
        Some(format!("{offline}.{DOMAIN}")),
    ];
    for sni in cases {
        let r = browse(relay.tls, sni.as_deref(), &hub.cert, "hello").await;
        assert!(r.is_err(), "{sni:?} was served");
    }
    // Plain HTTP on the TLS port.
    let mut s = TcpStream::connect(relay.tls).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert_eq!(n, 0, "the relay answered plain HTTP");

    // Nothing reached the hub.
    let got = tokio::time::timeout(Duration::from_millis(500), hub.seen.recv()).await;
    assert!(got.is_err(), "a refused connection was forwarded: {got:?}");
    // And the right name still works.
    let (reply, _) = browse(relay.tls, Some(&format!("{id}.{DOMAIN}")), &hub.cert, "ok")
        .await
        .unwrap();
    assert_eq!(reply, "HUB-SAYS-SECRET-REPLY-MARKER\n");
}

async fn dns_query(
    server: SocketAddr,
    name: &str,
    ty: hickory_client::proto::rr::RecordType,
) -> hickory_client::proto::xfer::DnsResponse {
    use hickory_client::client::{Client, ClientHandle};
    use hickory_client::proto::rr::{DNSClass, Name};
    use hickory_client::proto::runtime::TokioRuntimeProvider;
    use hickory_client::proto::udp::UdpClientStream;
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::default()).build();
    let (mut client, bg) = Client::connect(stream).await.unwrap();
    tokio::spawn(bg);
    client
        .query(Name::from_str(name).unwrap(), DNSClass::IN, ty)
        .await
        .unwrap()
}

fn ips(r: &hickory_client::proto::xfer::DnsResponse) -> Vec<IpAddr> {
    use hickory_client::proto::rr::RData;
    r.answers()
        .iter()
        .filter_map(|a| match a.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

fn txts(r: &hickory_client::proto::xfer::DnsResponse) -> Vec<String> {
    use hickory_client::proto::rr::RData;
    r.answers()
        .iter()
        .filter_map(|a| match a.data() {
            RData::TXT(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn dns_answers_for_hub_names_and_only_a_hubs_own_txt() {
    use hickory_client::proto::op::ResponseCode;
    use hickory_client::proto::rr::RecordType;
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let key_a = new_key(20);
    let key_b = new_key(21);
    let (a, b) = (
        hub_id(&key_a.verifying_key()),
        hub_id(&key_b.verifying_key()),
    );
    let (ta, _ra) = Tunnel::start(cfg(&relay, Some(token(dir.path()))), key_a);
    let (tb, _rb) = Tunnel::start(cfg(&relay, Some(token(dir.path()))), key_b);
    ta.wait_connected(WAIT).await.unwrap();
    tb.wait_connected(WAIT).await.unwrap();
    let dns = relay.dns;
    let public: IpAddr = PUBLIC_IP.parse().unwrap();

    let r = dns_query(dns, &format!("{a}.{DOMAIN}."), RecordType::A).await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(r.authoritative());
    assert_eq!(ips(&r), vec![public]);
    let r = dns_query(dns, &format!("www.{a}.{DOMAIN}."), RecordType::A).await;
    assert_eq!(ips(&r), vec![public]);
    let r = dns_query(dns, &format!("lan.{a}.{DOMAIN}."), RecordType::A).await;
    assert_eq!(ips(&r), vec!["192.168.1.20".parse::<IpAddr>().unwrap()]);

    // TXT: set by the hub itself, visible at once; cleared again.
    ta.set_acme_txt(vec!["token-value-a".into(), "second".into()])
        .await
        .unwrap();
    let r = dns_query(
        dns,
        &format!("_acme-challenge.{a}.{DOMAIN}."),
        RecordType::TXT,
    )
    .await;
    let mut got = txts(&r);
    got.sort();
    assert_eq!(got, vec!["second".to_owned(), "token-value-a".to_owned()]);

    // Hub A asking for hub B's name: refused, and B's records unchanged.
    let e = ta
        .set_txt_for_name(
            &format!("_acme-challenge.{b}.{DOMAIN}"),
            vec!["evil".into()],
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("may set TXT records only for"),
        "{e}"
    );
    let r = dns_query(
        dns,
        &format!("_acme-challenge.{b}.{DOMAIN}."),
        RecordType::TXT,
    )
    .await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert!(txts(&r).is_empty(), "{:?}", txts(&r));

    ta.clear_acme_txt().await.unwrap();
    let r = dns_query(
        dns,
        &format!("_acme-challenge.{a}.{DOMAIN}."),
        RecordType::TXT,
    )
    .await;
    assert!(txts(&r).is_empty());

    // Unknown hubs do not exist; other zones are not ours.
    let unknown = hub_id(&new_key(22).verifying_key());
    let r = dns_query(dns, &format!("{unknown}.{DOMAIN}."), RecordType::A).await;
    assert_eq!(r.response_code(), ResponseCode::NXDomain);
    let r = dns_query(dns, "example.com.", RecordType::A).await;
    assert_eq!(r.response_code(), ResponseCode::Refused);
    let r = dns_query(dns, &format!("{DOMAIN}."), RecordType::SOA).await;
    assert_eq!(r.response_code(), ResponseCode::NoError);
    assert_eq!(r.answers().len(), 1);
}

#[tokio::test]
async fn the_hub_reconnects_after_the_relay_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start_relay(dir.path()).await;
    let key = new_key(30);
    let (t, rx) = Tunnel::start(cfg(&relay, Some(token(dir.path()))), key.clone());
    t.wait_connected(WAIT).await.unwrap();
    let mut hub = serve_test_hub(&hub_id(&key.verifying_key()), rx, false);

    // Kill: drop the server task, everything it spawned goes with it.
    relay.task.abort();
    let mut st = t.watch_status();
    tokio::time::timeout(WAIT, st.wait_for(|s| !s.connected))
        .await
        .expect("the hub notices the relay is gone")
        .unwrap();

    // Let a few reconnect attempts fail, then start it again on the same
    // control port and folder.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = start_relay_at(dir.path(), relay.control, Limits::default()).await;
    assert_eq!(
        again.fingerprint, relay.fingerprint,
        "the relay key survives a restart"
    );
    t.wait_connected(WAIT)
        .await
        .expect("reconnected within 10 s");

    let id = hub_id(&key.verifying_key());
    let (reply, _) = browse(
        again.tls,
        Some(&format!("{id}.{DOMAIN}")),
        &hub.cert,
        "after",
    )
    .await
    .unwrap();
    assert_eq!(reply, "HUB-SAYS-SECRET-REPLY-MARKER\n");
    assert_eq!(hub.seen.recv().await.unwrap().1, "after");
}

#[tokio::test]
async fn the_per_hub_connection_cap_refuses_the_excess() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_connections_per_hub: 2,
        ..Limits::default()
    };
    let relay = start_relay_at(dir.path(), "127.0.0.1:0".parse().unwrap(), limits).await;
    let (_t, mut hub, id) = connected_hub(dir.path(), &relay, true).await;
    let name = format!("{id}.{DOMAIN}");

    let (_, c1) = browse(relay.tls, Some(&name), &hub.cert, "one")
        .await
        .unwrap();
    let (_, c2) = browse(relay.tls, Some(&name), &hub.cert, "two")
        .await
        .unwrap();
    // Refused: closed at once, not left waiting for a free slot.
    let third = browse(relay.tls, Some(&name), &hub.cert, "three").await;
    match third {
        Ok(_) => panic!("a third connection got through"),
        Err(e) => assert!(!e.contains("timed out"), "the third connection hung: {e}"),
    }
    for _ in 0..2 {
        hub.seen.recv().await.unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(300), hub.seen.recv())
            .await
            .is_err(),
        "the third connection was forwarded"
    );

    // Closing one makes room again.
    drop(c1);
    hub.held.lock().unwrap().clear();
    let mut ok = false;
    for _ in 0..50 {
        if browse(relay.tls, Some(&name), &hub.cert, "four")
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "no room after a connection closed");
    drop(c2);
}
