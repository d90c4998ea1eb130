//! Client certificates (mutual TLS) against a PRIVATE Mosquitto started by
//! this test: a TLS listener on a free port with `require_certificate
//! true`, its CA, server certificate and client certificates made here with
//! `rcgen` (the machine's broker is not touched).
//!
//! - the right client certificate: the hub connects and a sensor message
//!   sent through the broker reaches the store;
//! - no client certificate, or one from another CA: never connected, and
//!   the link's `last_error` says why; the alarm keeps running;
//! - unreadable, non-PEM or mismatched certificate and key files: a clear
//!   error from `AlarmOptions::from_config` naming the setting.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use porchlight_alarm::{Alarm, AlarmHandle, AlarmOptions};
use porchlight_config::{Config, MqttConfig};
use porchlight_store::{NewSensor, Store};

/// A certificate authority: its certificate and key.
struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A client certificate signed by `ca`, written as `{name}.pem` and
/// `{name}.key` in `dir`.
fn client(dir: &Path, ca: &Ca, name: &str) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, name);
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, &ca.cert, &ca.key).unwrap();
    let (c, k) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// A Mosquitto of our own; killed (by its handle) when dropped.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The CA the broker trusts for servers and clients.
    ca: Ca,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn path(&self, f: &str) -> PathBuf {
        self.dir.path().join(f)
    }

    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_owned();
        let ca = ca("Porchlight mTLS test CA");
        let srv_key = rcgen::KeyPair::generate().unwrap();
        let srv = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
            .unwrap()
            .signed_by(&srv_key, &ca.cert, &ca.key)
            .unwrap();
        std::fs::write(p.join("ca.pem"), ca.cert.pem()).unwrap();
        std::fs::write(p.join("server.pem"), srv.pem()).unwrap();
        std::fs::write(p.join("server.key"), srv_key.serialize_pem()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "listener {port} 127.0.0.1\n\
             cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             require_certificate true\nallow_anonymous true\npersistence false\n",
            d = p.display()
        );
        std::fs::write(p.join("mosquitto.conf"), conf).unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(p.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("mosquitto.log")).unwrap())
            .spawn()
            .expect("mosquitto starts");
        let b = Broker {
            child,
            port,
            dir,
            ca,
        };
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the private broker did not start: {}",
                std::fs::read_to_string(p.join("mosquitto.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    /// Publishes with mosquitto_pub, itself presenting `cert`/`key`.
    fn publish(&self, cert: &Path, key: &Path, topic: &str, payload: &str) {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(self.path("ca.pem"))
            .arg("--cert")
            .arg(cert)
            .arg("--key")
            .arg(key)
            .args(["-q", "1", "-t", topic, "-m", payload])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "mosquitto_pub to the private broker failed");
    }

    fn config(&self, client: Option<(&Path, &Path)>) -> Config {
        Config {
            mqtt: MqttConfig {
                url: Some(format!("mqtts://127.0.0.1:{}", self.port)),
                ca_file: Some(self.path("ca.pem")),
                client_cert_file: client.map(|c| c.0.to_owned()),
                client_key_file: client.map(|c| c.1.to_owned()),
                ..MqttConfig::default()
            },
            ..Config::default()
        }
    }
}

async fn hub(store: &Store, config: &Config) -> AlarmHandle {
    let mut opts = AlarmOptions::from_config(config).unwrap();
    opts.poll_interval = Duration::from_millis(100);
    opts.backoff_max = Duration::from_millis(500);
    Alarm::start(store.clone(), porchlight_base::clock::system(), opts)
        .await
        .unwrap()
}

/// Waits for the link's first error; asserts it never connected.
async fn first_error(alarm: &AlarmHandle) -> String {
    let t0 = Instant::now();
    loop {
        let l = alarm.link();
        assert!(
            !l.connected,
            "connected although the broker should refuse: {l:?}"
        );
        if let Some(e) = l.last_error {
            return e;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no error reported: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_is_required_and_checked() {
    if !porchlight_base::tools::external("mosquitto") {
        return;
    }
    let broker = Broker::start();
    let data = tempfile::tempdir().unwrap();
    let store = Store::open(data.path()).await.unwrap();
    store
        .add_sensor(
            &NewSensor {
                name: "door".into(),
                kind: "contact".into(),
                topic: "z2m/door".into(),
                camera_id: None,
                modes: None,
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let good = client(data.path(), &broker.ca, "hub");
    let other_ca = ca("Somebody else's CA");
    let stranger = client(data.path(), &other_ca, "stranger");
    // mosquitto_pub plays the door sensor with a certificate of its own.
    let device = client(data.path(), &broker.ca, "zigbee2mqtt");

    // The right certificate: connected, and a device's message arrives.
    let alarm = hub(&store, &broker.config(Some((&good.0, &good.1)))).await;
    let t0 = Instant::now();
    while !alarm.link().connected {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never connected with the right client certificate: {:?}",
            alarm.link()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "connected with a client certificate after {:?}",
        t0.elapsed()
    );
    let t0 = Instant::now();
    loop {
        broker.publish(
            &device.0,
            &device.1,
            "z2m/door",
            r#"{"contact":false,"battery":71}"#,
        );
        let s = store.sensor_by_name("door").await.unwrap().unwrap();
        if s.active == Some(true) {
            assert_eq!(s.battery, Some(71.0));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the sensor message never arrived: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alarm.shutdown().await;

    // No certificate: refused, and the status says a certificate is needed.
    let alarm = hub(&store, &broker.config(None)).await;
    let e = first_error(&alarm).await;
    println!("without a client certificate: {e}");
    assert!(
        e.contains("requires a client certificate") && e.contains("mqtt.client_cert_file"),
        "unclear error without a client certificate: {e}"
    );
    assert_eq!(alarm.state(), "disarmed", "the alarm itself still runs");
    alarm.shutdown().await;

    // A certificate from a CA the broker does not trust.
    let alarm = hub(&store, &broker.config(Some((&stranger.0, &stranger.1)))).await;
    let e = first_error(&alarm).await;
    println!("with another CA's certificate: {e}");
    assert!(
        e.contains("refused our client certificate"),
        "unclear error with another CA's certificate: {e}"
    );
    alarm.shutdown().await;
    let log = std::fs::read_to_string(broker.path("mosquitto.log")).unwrap_or_default();
    println!("broker log:\n{log}");
}

#[tokio::test]
async fn unreadable_or_mismatched_client_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca1 = ca("CA one");
    let (cert, key) = client(d, &ca1, "hub");
    let (_, other_key) = client(d, &ca1, "other");
    std::fs::write(d.join("ca.pem"), ca1.cert.pem()).unwrap();
    let config = |cert: &Path, key: &Path| {
        let mut c = Config::default();
        c.mqtt.url = Some("mqtts://127.0.0.1:1".into());
        c.mqtt.ca_file = Some(d.join("ca.pem"));
        c.mqtt.client_cert_file = Some(cert.to_owned());
        c.mqtt.client_key_file = Some(key.to_owned());
        c
    };
    // The right pair is accepted, and Debug never shows the key.
    let o = AlarmOptions::from_config(&config(&cert, &key)).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let body = key_pem.lines().nth(1).unwrap();
    assert!(
        !format!("{o:?}").contains(body),
        "Debug shows the private key"
    );

    let missing = d.join("missing.pem");
    let e = AlarmOptions::from_config(&config(&missing, &key))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mqtt.client_cert_file") && e.contains("missing.pem"),
        "{e}"
    );
    let e = AlarmOptions::from_config(&config(&cert, &missing))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mqtt.client_key_file") && e.contains("missing.pem"),
        "{e}"
    );
    let junk = d.join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let e = AlarmOptions::from_config(&config(&junk, &key))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mqtt.client_cert_file") && e.contains("no PEM certificate"),
        "{e}"
    );
    // The certificate given as the key (and the key as the certificate).
    let e = AlarmOptions::from_config(&config(&cert, &cert))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("mqtt.client_key_file") && e.contains("no PEM private key"),
        "{e}"
    );
    let e = AlarmOptions::from_config(&config(&key, &key))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mqtt.client_cert_file"), "{e}");
    // Another certificate's key.
    let e = AlarmOptions::from_config(&config(&cert, &other_key))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("does not belong to the certificate")
            && e.contains("other.key")
            && e.contains("hub.pem"),
        "{e}"
    );
}
