//! The pieces bench/relay.sh runs as separate processes, so that each one's
//! CPU and memory can be read from /proc:
//!
//! * `relay DIR DOMAIN TLS CONTROL` — the relay, the same library code
//!   `porchlight relay serve` runs (built alone, without the hub's crates);
//! * `invite DIR` — prints an enrolment token;
//! * `hub TOKEN CONTROL DIRECT CERT_OUT` — a hub: the real tunnel client,
//!   plus a direct port (for HAProxy and the no-relay baseline) that takes
//!   an optional PROXY v2 header; terminates TLS with a self-signed
//!   certificate written to CERT_OUT; prints its name;
//! * `viewers ADDR SNI CERT N SECS KBPS` — N TLS clients each pulling a
//!   stream paced at KBPS for SECS, plus one probe measuring the round trip
//!   of a 32-byte echo every 20 ms; prints one JSON line.
//!
//! Loopback only; every loop is bounded by the given duration.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use porchlight_relay::client::{Tunnel, TunnelConfig};
use porchlight_relay::server::{invite, Relay, RelayConfig};
use porchlight_relay::EnrolmentToken;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn main() -> Res<()> {
    // The relay as `porchlight relay serve` runs it: one thread
    // (RELAY_BENCH_THREADS=multi for tokio's multi-thread runtime). The
    // hub and the viewers are other processes on the multi-thread one.
    let one_thread = std::env::args().nth(1).as_deref() == Some("relay")
        && std::env::var("RELAY_BENCH_THREADS").as_deref() != Ok("multi");
    let rt = if one_thread {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    rt.block_on(async_main())
}

async fn async_main() -> Res<()> {
    porchlight_relay::tls::install_default_provider();
    let a: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> Res<&str> {
        a.get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing argument {i}; see the module doc").into())
    };
    match arg(0)? {
        "relay" => {
            let mut cfg = RelayConfig::new(arg(2)?, arg(1)?.into(), "127.0.0.1".parse()?);
            cfg.tls_listen = arg(3)?.parse()?;
            cfg.control_listen = arg(4)?.parse()?;
            cfg.dns_listen = None;
            cfg.limits.bytes_per_second_per_hub = 10_000_000_000 / 8;
            cfg.limits.max_connections_per_hub = 1000;
            Relay::bind(cfg).await?.run().await?;
        }
        "invite" => {
            let (t, _) = invite(arg(1)?.as_ref(), jiff::SignedDuration::from_hours(1), None)?;
            println!("{t}");
        }
        "hub" => hub(arg(1)?, arg(2)?, arg(3)?.parse()?, arg(4)?).await?,
        "viewers" => {
            viewers(
                arg(1)?.parse()?,
                arg(2)?,
                arg(3)?,
                arg(4)?.parse()?,
                arg(5)?.parse()?,
                arg(6)?.parse()?,
            )
            .await?
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    Ok(())
}

async fn hub(token: &str, control: &str, direct: SocketAddr, cert_out: &str) -> Res<()> {
    let token: EnrolmentToken = token.parse()?;
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let id = porchlight_relay::hub_id(&key.verifying_key());
    let name = format!("{id}.{}", token.domain);
    let ck = rcgen::generate_simple_self_signed(vec![name.clone()])?;
    std::fs::write(cert_out, ck.cert.pem())?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key_der)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

    let (tunnel, mut incoming) =
        Tunnel::start(TunnelConfig::from_token(&token, control.into(), None), key);
    tunnel.wait_connected(Duration::from_secs(10)).await?;
    println!("{name}");

    let direct_l = TcpListener::bind(direct).await?;
    let acc2 = acceptor.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = direct_l.accept().await {
            let acc = acc2.clone();
            tokio::spawn(async move {
                let mut sig = [0u8; 12];
                if tcp.peek(&mut sig).await.ok() == Some(12)
                    && sig == porchlight_relay::proxy::SIGNATURE
                    && porchlight_relay::proxy::read(&mut tcp).await.is_err()
                {
                    return;
                }
                if let Ok(s) = acc.accept(tcp).await {
                    serve(s).await;
                }
            });
        }
    });
    while let Some(c) = incoming.recv().await {
        let acc = acceptor.clone();
        tokio::spawn(async move {
            if let Ok(s) = acc.accept(c.stream).await {
                serve(s).await;
            }
        });
    }
    drop(tunnel);
    Ok(())
}

/// `S <kbps> <secs>\n`: a paced stream; `E\n`: echo 32-byte messages.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while s.read_exact(&mut b).await.is_ok() && b[0] != b'\n' && line.len() < 64 {
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    let parts: Vec<&str> = line.split(' ').collect();
    match parts.as_slice() {
        ["S", kbps, secs] => {
            let (Ok(kbps), Ok(secs)) = (kbps.parse::<u64>(), secs.parse::<u64>()) else {
                return;
            };
            let chunk = vec![0x5au8; 8192];
            // Chunks of 8 KiB at the rate: one every 8192*8/kbps ms.
            let every = Duration::from_secs_f64(8192.0 * 8.0 / (kbps as f64 * 1000.0));
            let mut tick = tokio::time::interval(every);
            let end = Instant::now() + Duration::from_secs(secs);
            while Instant::now() < end {
                tick.tick().await;
                if s.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            let _ = s.shutdown().await;
        }
        ["E"] => {
            let mut m = [0u8; 32];
            while s.read_exact(&mut m).await.is_ok() {
                if s.write_all(&m).await.is_err() || s.flush().await.is_err() {
                    return;
                }
            }
        }
        _ => {}
    }
}

async fn connect(
    to: SocketAddr,
    sni: &str,
    cfg: Arc<rustls::ClientConfig>,
) -> Res<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(to).await?;
    tcp.set_nodelay(true)?;
    Ok(tokio_rustls::TlsConnector::from(cfg)
        .connect(ServerName::try_from(sni.to_owned())?, tcp)
        .await?)
}

async fn viewers(to: SocketAddr, sni: &str, cert: &str, n: usize, secs: u64, kbps: u64) -> Res<()> {
    let pem = std::fs::read(cert)?;
    let der = pem_to_der(&pem).ok_or("the certificate file is not PEM")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(der))?;
    let cfg = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let mut tasks = Vec::new();
    for _ in 0..n {
        let cfg = cfg.clone();
        let sni = sni.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut s = connect(to, &sni, cfg).await.ok()?;
            s.write_all(format!("S {kbps} {secs}\n").as_bytes())
                .await
                .ok()?;
            let mut total = 0u64;
            let mut buf = vec![0u8; 65536];
            let deadline = Instant::now() + Duration::from_secs(secs + 5);
            while Instant::now() < deadline {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(k)) => total += k as u64,
                }
            }
            Some(total)
        }));
    }
    // The probe: one echo connection, a 32-byte message every 20 ms.
    let mut rtts = Vec::new();
    if let Ok(mut p) = connect(to, sni, cfg.clone()).await {
        p.write_all(b"E\n").await?;
        let end = Instant::now() + Duration::from_secs(secs);
        let mut m = [7u8; 32];
        while Instant::now() < end {
            let t = Instant::now();
            p.write_all(&m).await?;
            p.flush().await?;
            p.read_exact(&mut m).await?;
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut bytes = 0u64;
    let mut ok = 0usize;
    for t in tasks {
        if let Ok(Some(b)) = t.await {
            bytes += b;
            if b > 0 {
                ok += 1;
            }
        }
    }
    rtts.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let pct = |q: f64| {
        if rtts.is_empty() {
            f64::NAN
        } else {
            rtts[((rtts.len() - 1) as f64 * q).round() as usize]
        }
    };
    println!(
        "{{\"viewers_ok\":{ok},\"bytes\":{bytes},\"mbit_per_s\":{:.3},\"rtt_p50_us\":{:.1},\"rtt_p99_us\":{:.1},\"probes\":{}}}",
        bytes as f64 * 8.0 / 1e6 / secs as f64,
        pct(0.5),
        pct(0.99),
        rtts.len()
    );
    Ok(())
}

fn pem_to_der(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    data_encoding::BASE64.decode(b64.as_bytes()).ok()
}
