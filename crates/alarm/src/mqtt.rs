//! The broker connection: rumqttc's event loop, polled by one task, with
//! reconnection and exponential backoff (rumqttc has none of its own),
//! `porchlight/status` as the retained last will, and a `Connected` message
//! to the core on every ConnAck so it resubscribes. `mqtts://` brokers are
//! spoken to over TLS (rustls, see [`tls_config`]), with optional user name
//! and password and an optional client certificate (mutual TLS); a refused
//! login or certificate shows as a `last_error` that says so
//! ([`explain`]) and is retried with backoff, never a crash.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use tokio::sync::{mpsc, watch};

use crate::{AlarmError, AlarmOptions, ClientAuth, ClientAuthError, Inbound, LinkStatus};

/// `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (TLS, 8883) →
/// (host, port, tls).
pub(crate) fn parse_url(url: &str) -> Result<(String, u16, bool), AlarmError> {
    let bad = || AlarmError::BadUrl(url.to_owned());
    let (rest, tls) = match url.trim().strip_prefix("mqtts://") {
        Some(r) => (r, true),
        None => (url.trim().strip_prefix("mqtt://").ok_or_else(bad)?, false),
    };
    let default_port = if tls { 8883 } else { 1883 };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('@') || rest.contains('/') {
        return Err(bad());
    }
    match rest.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Ok((h.to_owned(), p.parse().map_err(|_| bad())?, tls)),
        Some(_) => Err(bad()),
        None => Ok((rest.to_owned(), default_port, tls)),
    }
}

/// A cheap, cloneable handle for publishing on the hub's broker connection
/// (see [`crate::AlarmHandle::mqtt`]). Shares the alarm's one connection,
/// its reconnection and its last will.
#[derive(Clone)]
pub struct MqttPublisher {
    client: AsyncClient,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for MqttPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttPublisher")
            .field("connected", &self.connected())
            .finish()
    }
}

impl MqttPublisher {
    /// Whether the broker is connected right now.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Queues a publish (QoS 1). Never blocks: while the broker is away the
    /// request waits in rumqttc's queue (1024 requests) and goes out after
    /// the reconnection; when that queue is full it is dropped and logged.
    pub fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
        {
            tracing::warn!(%topic, "alarm: cannot queue an MQTT message: {e}");
        }
    }
}

/// The core's side of the connection.
pub(crate) struct Link {
    client: AsyncClient,
    publisher: MqttPublisher,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    pub fn connected(&self) -> bool {
        self.publisher.connected()
    }

    pub fn publisher(&self) -> MqttPublisher {
        self.publisher.clone()
    }

    /// See [`MqttPublisher::publish`].
    pub fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        self.publisher.publish(topic, retain, payload)
    }

    pub fn subscribe(&self, topic: &str) -> bool {
        match self.client.try_subscribe(topic, QoS::AtLeastOnce) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%topic, "alarm: cannot subscribe: {e}");
                false
            }
        }
    }

    pub fn unsubscribe(&self, topic: &str) {
        let _ = self.client.try_unsubscribe(topic);
    }

    /// Disconnects cleanly (after queued publishes) and ends the task.
    pub async fn close(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

type ClientCert = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

use rumqttc::tokio_rustls::rustls;

/// Reads a [`ClientAuth`]'s PEM and checks that the key belongs to the
/// first certificate: the key signs a message and the certificate's
/// public key must verify it (with any algorithm webpki knows).
pub(crate) fn client_auth(a: &ClientAuth) -> Result<ClientCert, ClientAuthError> {
    let certs = rustls_pemfile::certs(&mut &a.cert_pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientAuthError::Cert(format!("not a readable PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(ClientAuthError::Cert(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    let key = rustls_pemfile::private_key(&mut &a.key_pem[..])
        .map_err(|e| ClientAuthError::Key(format!("not a readable PEM file: {e}")))?
        .ok_or_else(|| {
            ClientAuthError::Key(
                "no PEM private key (-----BEGIN PRIVATE KEY-----, EC PRIVATE KEY or RSA PRIVATE KEY) in it"
                    .into(),
            )
        })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        ClientAuthError::Key(format!(
            "a private key of a kind that cannot be used (ECDSA P-256/P-384, Ed25519 or RSA): {e}"
        ))
    })?;
    use rustls::SignatureScheme as S;
    let signer = signing
        .choose_scheme(&[
            S::ECDSA_NISTP256_SHA256,
            S::ECDSA_NISTP384_SHA384,
            S::ED25519,
            S::RSA_PKCS1_SHA256,
            S::RSA_PSS_SHA256,
        ])
        .ok_or_else(|| ClientAuthError::Key("a private key that cannot sign for TLS".into()))?;
    const PROBE: &[u8] = b"porchlight: does this key belong to this certificate?";
    let sig = signer
        .sign(PROBE)
        .map_err(|e| ClientAuthError::Key(format!("the private key cannot sign: {e}")))?;
    let ee = webpki::EndEntityCert::try_from(&certs[0]).map_err(|e| {
        ClientAuthError::Cert(format!("the first certificate cannot be read: {e:?}"))
    })?;
    if !webpki::ALL_VERIFICATION_ALGS
        .iter()
        .any(|alg| ee.verify_signature(*alg, PROBE, &sig).is_ok())
    {
        return Err(ClientAuthError::Mismatch);
    }
    Ok((certs, key))
}

/// rumqttc's TLS settings: the configured CA (PEM) or the system's roots,
/// and the client certificate when one is configured.
///
/// rumqttc 0.24 speaks TLS through tokio-rustls 0.25 / rustls 0.22, whose
/// `ClientConfig::builder()` picks the `ring` provider itself; rustls 0.22
/// has no process-wide default provider to install, so nothing needs
/// installing, and `ring` is the only provider compiled in.
fn tls_config(
    ca_pem: Option<&[u8]>,
    client: Option<&ClientAuth>,
) -> Result<TlsConfiguration, AlarmError> {
    use rustls::{ClientConfig, RootCertStore};
    let mut roots = RootCertStore::empty();
    match ca_pem {
        Some(ca) => {
            let certs = rustls_pemfile::certs(&mut &ca[..])
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    AlarmError::Tls(format!("mqtt.ca_file: not a readable PEM file: {e}"))
                })?;
            let (_, _) = roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(AlarmError::Tls(
                    "mqtt.ca_file: no usable CA certificate in it".into(),
                ));
            }
        }
        None => {
            let certs = rustls_native_certs::load_native_certs().map_err(|e| {
                AlarmError::Tls(format!(
                    "cannot read the system's trusted certificates: {e}"
                ))
            })?;
            let (_, _) = roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(AlarmError::Tls(
                    "the system has no trusted certificates; set mqtt.ca_file".into(),
                ));
            }
        }
    }
    let builder = ClientConfig::builder().with_root_certificates(roots);
    let c = match client {
        Some(a) => {
            let (certs, key) =
                client_auth(a).map_err(|e| AlarmError::Tls(format!("client certificate: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| AlarmError::Tls(format!("client certificate: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConfiguration::Rustls(Arc::new(c)))
}

/// The link's `last_error` for a failed connection: rumqttc's text, with
/// what it means when the cause is known (credentials, client
/// certificates). `tls_setup` says the connection used TLS and had not
/// been accepted yet (no CONNACK).
fn explain(e: &rumqttc::ConnectionError, has_client_cert: bool, tls_setup: bool) -> String {
    if refused_credentials(e) {
        return format!("the broker refused the connection: not authorised (check mqtt.username and the password): {e}");
    }
    let text = e.to_string();
    let lower = text.to_ascii_lowercase();
    // A broker that requires a client certificate and gets none may close
    // the connection before its "certificate required" alert is read (in
    // TLS 1.3 the client's handshake is over when it sends its last
    // message; the alert comes after, and a reset can overtake it).
    // The same race hides the "unknown CA" or "bad certificate" alert when
    // the broker rejects the certificate we did send.
    let dropped_in_setup = tls_setup
        && matches!(e, rumqttc::ConnectionError::Io(io) if matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::BrokenPipe
        ));
    if dropped_in_setup && has_client_cert {
        return format!("the broker closed the connection during TLS set-up, after we sent our client certificate; it most likely refused our client certificate (is it signed by a CA the broker trusts, and not expired?): {text}");
    }
    if dropped_in_setup {
        return format!("the broker closed the connection during TLS set-up; if it requires a client certificate, set mqtt.client_cert_file and mqtt.client_key_file: {text}");
    }
    if lower.contains("certificaterequired") || lower.contains("certificate required") {
        return if has_client_cert {
            format!("the broker asked for a client certificate and did not accept ours: {text}")
        } else {
            format!("the broker requires a client certificate (set mqtt.client_cert_file and mqtt.client_key_file): {text}")
        };
    }
    if has_client_cert
        && [
            "unknownca",
            "unknown ca",
            "badcertificate",
            "bad certificate",
            "decrypterror",
            "decrypt error",
            "accessdenied",
        ]
        .iter()
        .any(|k| lower.contains(k))
    {
        return format!("the broker refused our client certificate (is it signed by a CA the broker trusts, and not expired?): {text}");
    }
    text
}

/// Whether a connection error means the broker refused our credentials.
fn refused_credentials(e: &rumqttc::ConnectionError) -> bool {
    matches!(
        e,
        rumqttc::ConnectionError::ConnectionRefused(
            rumqttc::ConnectReturnCode::NotAuthorized
                | rumqttc::ConnectReturnCode::BadUserNamePassword
        )
    )
}

pub(crate) fn spawn(
    host: String,
    port: u16,
    tls: bool,
    o: &AlarmOptions,
    inbound: mpsc::Sender<Inbound>,
    status: watch::Sender<LinkStatus>,
) -> Result<Link, AlarmError> {
    let mut opts = MqttOptions::new(o.client_id.clone(), host, port);
    if tls {
        opts.set_transport(Transport::tls_with_config(tls_config(
            o.ca_pem.as_deref(),
            o.client_auth.as_ref(),
        )?));
    }
    if let Some(user) = &o.username {
        opts.set_credentials(user.clone(), o.password.clone().unwrap_or_default());
    }
    opts.set_keep_alive(o.keep_alive);
    opts.set_clean_session(true);
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    opts.set_last_will(LastWill::new(
        o.topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut events) = AsyncClient::new(opts, 1024);
    let connected = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let backoff_max = o.backoff_max;
    let has_client_cert = tls && o.client_auth.is_some();
    let task = {
        let connected = connected.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let first = Duration::from_millis(100);
            let mut backoff = first;
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        backoff = first;
                        connected.store(true, Ordering::SeqCst);
                        status.send_modify(|s| {
                            s.connected = true;
                            s.connects += 1;
                        });
                        tracing::info!("alarm: connected to the MQTT broker");
                        if inbound.send(Inbound::Connected).await.is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if inbound
                            .send(Inbound::Publish(
                                p.topic.clone(),
                                p.payload.to_vec(),
                                p.retain,
                            ))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                        if stop.load(Ordering::SeqCst) {
                            // Let the DISCONNECT go out, then end.
                            let _ = tokio::time::timeout(Duration::from_millis(200), events.poll())
                                .await;
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let was = connected.swap(false, Ordering::SeqCst);
                        let msg = explain(&e, has_client_cert, tls && !was);
                        if was {
                            tracing::warn!("alarm: lost the MQTT broker: {msg}; reconnecting");
                        } else {
                            tracing::debug!(
                                "alarm: MQTT broker unreachable: {msg}; retrying in {backoff:?}"
                            );
                        }
                        status.send_modify(|s| {
                            s.connected = false;
                            s.last_error = Some(msg);
                        });
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(backoff_max);
                    }
                }
            }
        })
    };
    Ok(Link {
        publisher: MqttPublisher {
            client: client.clone(),
            connected,
        },
        client,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883, false)
        );
        assert_eq!(
            parse_url("mqtt://broker").unwrap(),
            ("broker".into(), 1883, false)
        );
        assert_eq!(
            parse_url("mqtts://broker").unwrap(),
            ("broker".into(), 8883, true)
        );
        assert_eq!(
            parse_url("mqtts://localhost:9883").unwrap(),
            ("localhost".into(), 9883, true)
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://:1883").is_err());
        assert!(parse_url("mqtt://x:notaport").is_err());
    }

    #[test]
    fn a_tls_connection_dropped_before_connack_suggests_a_client_certificate() {
        let reset = || {
            rumqttc::ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
        };
        let hint = "if it requires a client certificate, set mqtt.client_cert_file";
        assert!(explain(&reset(), false, true).contains(hint));
        // Not without TLS, not once connected, not when we sent a certificate.
        assert!(!explain(&reset(), false, false).contains("certificate"));
        assert!(!explain(&reset(), true, true).contains(hint));
        // When we did send one, the drop is most likely its refusal.
        assert!(explain(&reset(), true, true).contains("refused our client certificate"));
        assert!(!explain(&reset(), true, false).contains("certificate"));
        // Any other I/O error is rumqttc's text alone.
        let refused = rumqttc::ConnectionError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        ));
        assert!(!explain(&refused, false, true).contains("certificate"));
    }
}
