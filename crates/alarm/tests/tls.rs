//! The broker link over TLS with a user name and password, against a
//! PRIVATE Mosquitto started by this test (its own port, config, CA and
//! password file in a temporary folder; the machine's broker is not
//! touched). The CA and server certificate are made here with `rcgen`.
//!
//! - right credentials: the hub connects over TLS and a sensor message
//!   sent through the broker reaches the store;
//! - wrong password: the link reports a clear "not authorised" error and
//!   keeps retrying; nothing crashes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use porchlight_alarm::{Alarm, AlarmHandle, AlarmOptions};
use porchlight_config::{Config, MqttConfig};
use porchlight_store::{NewSensor, Store};

/// A Mosquitto of our own; killed (by its handle) when dropped.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const USER: &str = "hub";
const PASSWORD: &str = "correct horse battery staple";

impl Broker {
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().to_owned();
        let p = p.as_path();
        // A private CA and a server certificate for 127.0.0.1 it signed.
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Porchlight test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let srv_key = rcgen::KeyPair::generate().unwrap();
        let srv_params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
                .unwrap();
        let srv = srv_params.signed_by(&srv_key, &ca, &ca_key).unwrap();
        std::fs::write(p.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(p.join("server.pem"), srv.pem()).unwrap();
        std::fs::write(p.join("server.key"), srv_key.serialize_pem()).unwrap();
        let st = Command::new("mosquitto_passwd")
            .arg("-c")
            .arg("-b")
            .arg(p.join("passwd"))
            .args([USER, PASSWORD])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd runs");
        assert!(st.success(), "mosquitto_passwd failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = format!(
            "listener {port} 127.0.0.1\n\
             cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             allow_anonymous false\npassword_file {d}/passwd\npersistence false\n",
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
        let b = Broker { child, port, dir };
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

    /// Publishes with the mosquitto_pub client over TLS.
    fn publish(&self, topic: &str, payload: &str) {
        let st = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--cafile")
            .arg(self.ca())
            .args([
                "-u", USER, "-P", PASSWORD, "-q", "1", "-t", topic, "-m", payload,
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "mosquitto_pub to the private broker failed");
    }
}

fn write_password(dir: &Path, pw: &str) -> PathBuf {
    let f = dir.join(format!("pw-{}", pw.len()));
    std::fs::write(&f, format!("{pw}\n")).unwrap();
    f
}

async fn hub(store: &Store, broker: &Broker, password_file: PathBuf) -> AlarmHandle {
    let config = Config {
        mqtt: MqttConfig {
            url: Some(format!("mqtts://127.0.0.1:{}", broker.port)),
            username: Some(USER.into()),
            password_file: Some(password_file),
            ca_file: Some(broker.ca()),
            ..MqttConfig::default()
        },
        ..Config::default()
    };
    let mut opts = AlarmOptions::from_config(&config).unwrap();
    opts.poll_interval = Duration::from_millis(100);
    opts.backoff_max = Duration::from_millis(500);
    Alarm::start(store.clone(), porchlight_base::clock::system(), opts)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_credentials_connects_and_wrong_password_is_reported() {
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

    // Right password, from a file, over TLS with the private CA.
    let good = write_password(data.path(), PASSWORD);
    let alarm = hub(&store, &broker, good).await;
    let t0 = Instant::now();
    while !alarm.link().connected {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "never connected over TLS: {:?}",
            alarm.link()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(alarm.mqtt().is_some_and(|p| p.connected()));
    // The subscription follows the ConnAck; send until the store has it.
    let t0 = Instant::now();
    loop {
        broker.publish("z2m/door", r#"{"contact":false,"battery":64}"#);
        let s = store.sensor_by_name("door").await.unwrap().unwrap();
        if s.active == Some(true) {
            assert_eq!(s.battery, Some(64.0));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the sensor message never arrived: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    alarm.shutdown().await;

    // Wrong password: a clear error, retried, no crash.
    let bad = write_password(data.path(), "not the password");
    let alarm = hub(&store, &broker, bad).await;
    let t0 = Instant::now();
    loop {
        let l = alarm.link();
        assert!(!l.connected, "connected with a wrong password");
        if let Some(e) = &l.last_error {
            assert!(e.contains("not authorised"), "unclear error: {e}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no error reported: {l:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alarm.state(), "disarmed", "the alarm itself still runs");
    alarm.shutdown().await;
}

#[tokio::test]
async fn unreadable_password_or_ca_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.mqtt.url = Some("mqtts://127.0.0.1:1".into());
    c.mqtt.username = Some("u".into());
    c.mqtt.password_file = Some(dir.path().join("missing"));
    let e = AlarmOptions::from_config(&c).unwrap_err().to_string();
    assert!(
        e.contains("mqtt.password_file") && e.contains("missing"),
        "{e}"
    );
    c.mqtt.password_file = None;
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    c.mqtt.ca_file = Some(not_pem);
    let e = AlarmOptions::from_config(&c).unwrap_err().to_string();
    assert!(e.contains("mqtt.ca_file") && e.contains("PEM"), "{e}");
}
