//! The alarm against the machine's real Mosquitto on 127.0.0.1:1883: each
//! test runs a hub in-process (`Alarm::start` on a temporary store) under
//! its own topic prefix, and plays the Zigbee2MQTT devices and Home
//! Assistant with a second MQTT client.
//!
//! `broker_restart_reconnects_and_resubscribes` stops and restarts the
//! broker; it takes the write side of a lock every other test holds for
//! reading, and a guard restarts the broker even if the test fails.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use porchlight_alarm::{Alarm, AlarmHandle, AlarmOptions, Command, Delays, Mode, Topics};
use porchlight_store::{
    EventFilter, EventRow, NewCamera, NewSensor, NewUser, Role, Store, UserKeys,
};
use porchlight_vault::keys::MemberKey;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

const BROKER: &str = "mqtt://127.0.0.1:1883";

static BROKER_LOCK: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// Everything the alarm logs, for tests that check what was logged.
static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| Capture)
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "pltest-{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A message seen by the probe.
#[derive(Debug, Clone)]
struct Msg {
    topic: String,
    payload: String,
    retain: bool,
    at: Instant,
    wall: jiff::Timestamp,
}

/// A plain MQTT client: the devices, Home Assistant, and our eyes.
struct Probe {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Msg>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Probe {
    async fn new(subs: &[String]) -> Probe {
        let mut o = MqttOptions::new(unique("probe"), "127.0.0.1", 1883);
        o.set_keep_alive(Duration::from_secs(5));
        let (client, mut ev) = AsyncClient::new(o, 256);
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let c2 = client.clone();
        let subs2 = subs.to_vec();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for s in &subs2 {
                            let _ = c2.try_subscribe(s.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(Msg {
                            topic: p.topic.clone(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            at: Instant::now(),
                            wall: jiff::Timestamp::now(),
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        for _ in subs {
            tokio::time::timeout(Duration::from_secs(5), ready_rx.recv())
                .await
                .expect("probe subscribed");
        }
        Probe { client, rx, task }
    }

    async fn send(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// The next message on `topic` (others are dropped), within `within`.
    async fn next_on(&mut self, topic: &str, within: Duration) -> Option<Msg> {
        let end = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(end, self.rx.recv()).await {
                Ok(Some(m)) if m.topic == topic => return Some(m),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Waits for `topic` to carry `payload`.
    async fn wait_for(&mut self, topic: &str, payload: &str, within: Duration) -> Msg {
        let end = tokio::time::Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            match self.next_on(topic, left).await {
                Some(m) if m.payload == payload => return m,
                Some(_) => continue,
                None => panic!("no `{payload}` on {topic} within {within:?}"),
            }
        }
    }
}

/// A hub in-process on its own data folder and topic prefix.
struct Hub {
    _dir: tempfile::TempDir,
    dir_path: std::path::PathBuf,
    store: Store,
    alarm: Option<AlarmHandle>,
    prefix: String,
    topics: Topics,
    delays: Delays,
    /// The owner's key: the alarm's events are sealed to the owners.
    owner: MemberKey,
}

impl Hub {
    /// Events of `camera_id` of `kind`, opened with the owner's key.
    async fn events_of(&self, camera_id: i64, kind: &str, limit: i64) -> Vec<EventRow> {
        let f = EventFilter {
            cameras: Some(vec![camera_id]),
            limit,
            ..Default::default()
        };
        porchlight_vault::details::events(&self.store, &f, Some(kind), Some(&self.owner))
            .await
            .unwrap()
            .events
            .into_iter()
            .map(|e| e.expect("the owner opens every event"))
            .collect()
    }

    async fn new(tag: &str, delays: Delays) -> Hub {
        let dir = tempfile::tempdir().unwrap();
        let dir_path = dir.path().to_owned();
        let store = Store::open(&dir_path).await.unwrap();
        let owner = MemberKey::generate();
        store
            .create_user(
                NewUser {
                    username: "owner",
                    role: Role::Owner,
                    password_hash: "unused",
                    keys: Some(UserKeys {
                        recipient: owner.recipient_string(),
                        by_password: Vec::new(),
                        by_recovery: Vec::new(),
                    }),
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
        let prefix = unique(tag);
        let topics = Topics {
            base: format!("{prefix}/porchlight"),
            discovery_prefix: format!("{prefix}/homeassistant"),
            node_id: "porchlight".into(),
        };
        Hub {
            _dir: dir,
            dir_path,
            store,
            alarm: None,
            prefix,
            topics,
            delays,
            owner,
        }
    }

    fn dev(&self, name: &str) -> String {
        format!("{}/zigbee2mqtt/{name}", self.prefix)
    }

    async fn sensor(&self, name: &str, kind: &str, camera: Option<i64>) {
        self.sensor_in(name, kind, camera, None).await
    }

    /// A sensor with its own choice of modes (`home,away`, …).
    async fn sensor_in(&self, name: &str, kind: &str, camera: Option<i64>, modes: Option<&str>) {
        self.store
            .add_sensor(
                &NewSensor {
                    name: name.into(),
                    kind: kind.into(),
                    topic: self.dev(name),
                    camera_id: camera,
                    modes: modes.map(str::to_owned),
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
    }

    /// Starts the alarm and waits until it listens (its retained `online`).
    async fn start(&mut self) {
        let mut probe = Probe::new(&[self.topics.status()]).await;
        let opts = AlarmOptions {
            mqtt_url: Some(BROKER.into()),
            client_id: unique("hub"),
            topics: self.topics.clone(),
            delays: self.delays,
            poll_interval: Duration::from_millis(100),
            backoff_max: Duration::from_secs(2),
            ..Default::default()
        };
        let alarm = Alarm::start(self.store.clone(), porchlight_base::clock::system(), opts)
            .await
            .unwrap();
        // The retained `online` from an earlier start may come first; wait
        // for this connection's.
        let connects_before = 0;
        let t0 = Instant::now();
        while alarm.link().connects == connects_before {
            assert!(t0.elapsed() < Duration::from_secs(5), "hub never connected");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        probe
            .wait_for(&self.topics.status(), "online", Duration::from_secs(5))
            .await;
        // The `online` published after this connection's subscriptions.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.alarm = Some(alarm);
    }

    fn alarm(&self) -> &AlarmHandle {
        self.alarm.as_ref().unwrap()
    }

    async fn stop(&mut self) {
        if let Some(a) = self.alarm.take() {
            a.shutdown().await;
        }
    }

    async fn wait_state(&self, want: &str, within: Duration) {
        let t0 = Instant::now();
        loop {
            let s = self.alarm().state();
            if s == want {
                return;
            }
            assert!(
                t0.elapsed() < within,
                "state `{s}`, wanted `{want}` within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn audit_actions(&self) -> Vec<String> {
        self.store
            .audit_entries(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}

/// Removes every retained message this test left under its prefix, so
/// the shared broker does not collect them.
fn clear_retained(prefix: &str) {
    let _ = std::process::Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "--remove-retained", "-W", "1", "-t"])
        .arg(format!("{prefix}/#"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(a) = self.alarm.take() {
            drop(a);
        }
        clear_retained(&self.prefix);
    }
}

fn quick(entry_ms: u64) -> Delays {
    Delays {
        exit_ms: 0,
        entry_ms,
        siren_ms: 60_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_delay_runs_out_and_the_siren_sounds() {
    let _g = BROKER_LOCK.read().await;
    let entry = 300;
    let mut hub = Hub::new("trigger", quick(entry)).await;
    let cam = hub
        .store
        .create_camera(
            &NewCamera {
                name: "porch".into(),
                main_url: "rtsp://127.0.0.1:1/x".into(),
                ..Default::default()
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    hub.sensor("front_door", "contact", None).await;
    hub.sensor("siren", "siren", None).await;
    hub.start().await;
    let siren_set = format!("{}/set", hub.dev("siren"));
    let mut probe = Probe::new(&[siren_set.clone(), hub.topics.alarm_state()]).await;

    let out = hub
        .alarm()
        .command(
            Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "alex",
        )
        .await;
    assert!(out.ok, "{out:?}");
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    probe
        .wait_for(
            &hub.topics.alarm_state(),
            "armed_away",
            Duration::from_secs(2),
        )
        .await;

    let opened = Instant::now();
    probe
        .send(
            &hub.dev("front_door"),
            r#"{"contact":false,"battery":91,"linkquality":140}"#,
        )
        .await;
    hub.wait_state("pending", Duration::from_secs(2)).await;
    let deadline = hub.alarm().machine().deadline.expect("an entry deadline");
    let m = probe
        .next_on(&siren_set, Duration::from_secs(5))
        .await
        .expect("the siren command");
    let after_delay =
        m.at.duration_since(opened)
            .saturating_sub(Duration::from_millis(entry));
    println!(
        "contact opened → siren /set after {:?} (entry delay {entry} ms; {:?} after the delay ended, incl. the broker round trip)",
        m.at.duration_since(opened),
        after_delay
    );
    println!(
        "entry delay ended → siren /set received by another client: {:?}",
        m.wall.duration_since(deadline)
    );
    assert!(m.at.duration_since(opened) >= Duration::from_millis(entry));
    let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
    assert_eq!(v["warning"]["mode"], "burglar");
    assert_eq!(v["warning"]["duration"], 60);
    hub.wait_state("triggered", Duration::from_secs(1)).await;
    probe
        .wait_for(
            &hub.topics.alarm_state(),
            "triggered",
            Duration::from_secs(2),
        )
        .await;

    // Telemetry recorded.
    let s = hub
        .store
        .sensor_by_name("front_door")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (s.active, s.battery, s.linkquality),
        (Some(true), Some(91.0), Some(140))
    );

    // Disarm from Home Assistant's command topic stops the siren.
    probe.send(&hub.topics.alarm_set(), "DISARM").await;
    let stop = probe
        .next_on(&siren_set, Duration::from_secs(3))
        .await
        .expect("siren stop");
    assert!(stop.payload.contains("stop"), "{}", stop.payload);
    hub.wait_state("disarmed", Duration::from_secs(2)).await;

    let actions = hub.audit_actions().await;
    for a in [
        "alarm.arm",
        "alarm.pending",
        "alarm.trigger",
        "alarm.siren_on",
        "alarm.disarm",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from {actions:?}"
        );
    }
    let events = hub.events_of(cam.id, "alarm", 100).await;
    let tos: Vec<String> = events
        .iter()
        .map(|e| e.detail["to"].as_str().unwrap_or_default().to_owned())
        .collect();
    for t in ["armed_away", "pending", "triggered", "disarmed"] {
        assert!(
            tos.iter().any(|x| x == t),
            "{t} missing from the timeline: {tos:?}"
        );
    }
    let disarm = events
        .iter()
        .find(|e| e.detail["to"] == "disarmed")
        .unwrap();
    assert_eq!(disarm.detail["by"], "home-assistant");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disarm_within_the_entry_delay_never_triggers() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new("disarm", quick(800)).await;
    hub.sensor("front_door", "contact", None).await;
    hub.sensor("siren", "siren", None).await;
    hub.sensor("keypad", "keypad", None).await;
    let kdf = porchlight_vault::keys::KdfParams {
        m_cost_kib: 8,
        t_cost: 1,
        p_cost: 1,
    };
    let phc = porchlight_vault::password::hash("4321", &kdf);
    hub.store.set_alarm_pin_hash(Some(&phc)).await.unwrap();
    hub.start().await;
    let siren_set = format!("{}/set", hub.dev("siren"));
    let mut probe = Probe::new(std::slice::from_ref(&siren_set)).await;
    hub.alarm()
        .command(
            Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "alex",
        )
        .await;
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    probe
        .send(&hub.dev("front_door"), r#"{"contact":false}"#)
        .await;
    hub.wait_state("pending", Duration::from_secs(2)).await;
    // A wrong PIN does nothing; the right one disarms.
    probe
        .send(
            &hub.dev("keypad"),
            r#"{"action":"disarm","action_code":"0000"}"#,
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.alarm().state(), "pending");
    probe
        .send(
            &hub.dev("keypad"),
            r#"{"action":"disarm","action_code":"4321"}"#,
        )
        .await;
    hub.wait_state("disarmed", Duration::from_millis(700)).await;
    assert!(
        probe
            .next_on(&siren_set, Duration::from_millis(1500))
            .await
            .is_none(),
        "the siren must not sound"
    );
    assert_eq!(hub.alarm().state(), "disarmed");
    let actions = hub.audit_actions().await;
    assert!(
        actions.iter().any(|a| a == "alarm.pin_rejected"),
        "{actions:?}"
    );
    assert!(!actions.iter().any(|a| a == "alarm.trigger"), "{actions:?}");
    let who = hub
        .store
        .audit_entries(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "alarm.disarm")
        .unwrap()
        .actor;
    assert_eq!(who, "keypad:keypad");
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arming_with_a_window_open_bypasses_it_with_a_warning() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new("bypass", quick(0)).await;
    hub.sensor("window", "contact", None).await;
    hub.sensor("back_door", "contact", None).await;
    hub.start().await;
    let probe = Probe::new(&[]).await;
    probe.send(&hub.dev("window"), r#"{"contact":false}"#).await;
    let t0 = Instant::now();
    while hub
        .store
        .sensor_by_name("window")
        .await
        .unwrap()
        .unwrap()
        .active
        != Some(true)
    {
        assert!(t0.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Through the CLI's path: a request in the store.
    let id = hub
        .store
        .push_alarm_request(
            "arm_home",
            "cli",
            &serde_json::json!({"exit_ms": 0}),
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    let t0 = Instant::now();
    let outcome = loop {
        if let Some(o) = hub
            .store
            .alarm_request(id)
            .await
            .unwrap()
            .and_then(|r| r.outcome)
        {
            break o;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the hub never took the request"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(outcome["state"], "armed_home");
    assert_eq!(outcome["bypassed"], serde_json::json!(["window"]));
    assert!(hub
        .audit_actions()
        .await
        .iter()
        .any(|a| a == "alarm.bypass"));
    // The bypassed window does nothing; the back door triggers at once.
    probe.send(&hub.dev("window"), r#"{"contact":true}"#).await;
    probe.send(&hub.dev("window"), r#"{"contact":false}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hub.alarm().state(), "armed_home");
    probe
        .send(&hub.dev("back_door"), r#"{"contact":false}"#)
        .await;
    hub.wait_state("triggered", Duration::from_secs(2)).await;
    hub.stop().await;
}

/// Waits until the hub has recorded `name` as `active` (so it has handled
/// the device's message).
async fn wait_active(hub: &Hub, name: &str, active: bool) {
    let t0 = Instant::now();
    while hub
        .store
        .sensor_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .active
        != Some(active)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the hub never recorded `{name}` as active={active}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_sensor_modes_decide_what_counts_at_home() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new("modes", quick(0)).await;
    // Chosen to count at home too (a hall sensor nobody walks past at night).
    hub.sensor_in("hall", "motion", None, Some("home,away"))
        .await;
    // The kind's default: motion counts only when away.
    hub.sensor("landing", "motion", None).await;
    // A garage door chosen to count only when away.
    hub.sensor_in("garage", "contact", None, Some("away")).await;
    hub.start().await;
    let probe = Probe::new(&[]).await;
    let out = hub
        .alarm()
        .command(
            Command::Arm {
                mode: Mode::Home,
                delays: None,
            },
            "alex",
        )
        .await;
    assert!(out.ok, "{out:?}");
    hub.wait_state("armed_home", Duration::from_secs(2)).await;
    probe
        .send(&hub.dev("landing"), r#"{"occupancy":true}"#)
        .await;
    probe.send(&hub.dev("garage"), r#"{"contact":false}"#).await;
    wait_active(&hub, "landing", true).await;
    wait_active(&hub, "garage", true).await;
    assert_eq!(hub.alarm().state(), "armed_home");
    probe.send(&hub.dev("hall"), r#"{"occupancy":true}"#).await;
    hub.wait_state("triggered", Duration::from_secs(2)).await;
    assert_eq!(hub.alarm().machine().cause.as_deref(), Some("hall"));

    // Changed while the hub runs: the landing now counts at home, the
    // hall no longer does; the hub re-reads sensors on its poll.
    hub.alarm().command(Command::Disarm, "alex").await;
    hub.store
        .set_sensor_modes("landing", Some("home"))
        .await
        .unwrap();
    hub.store
        .set_sensor_modes("hall", Some("none"))
        .await
        .unwrap();
    for name in ["hall", "landing", "garage"] {
        let (key, v) = if name == "garage" {
            ("contact", "true")
        } else {
            ("occupancy", "false")
        };
        probe
            .send(&hub.dev(name), &format!(r#"{{"{key}":{v}}}"#))
            .await;
        wait_active(&hub, name, false).await;
    }
    // Several polls (100 ms each) so the hub has the new choices.
    tokio::time::sleep(Duration::from_millis(500)).await;
    hub.alarm()
        .command(
            Command::Arm {
                mode: Mode::Home,
                delays: None,
            },
            "alex",
        )
        .await;
    hub.wait_state("armed_home", Duration::from_secs(2)).await;
    probe.send(&hub.dev("hall"), r#"{"occupancy":true}"#).await;
    wait_active(&hub, "hall", true).await;
    assert_eq!(hub.alarm().state(), "armed_home");
    probe
        .send(&hub.dev("landing"), r#"{"occupancy":true}"#)
        .await;
    hub.wait_state("triggered", Duration::from_secs(2)).await;
    assert_eq!(hub.alarm().machine().cause.as_deref(), Some("landing"));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doorbell_press_records_an_event_on_its_camera() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new("bell", quick(0)).await;
    let cam = hub
        .store
        .create_camera(
            &NewCamera {
                name: "front".into(),
                main_url: "rtsp://127.0.0.1:1/x".into(),
                ..Default::default()
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    hub.sensor("bell", "doorbell", Some(cam.id)).await;
    hub.start().await;
    let mut notices = hub.alarm().event_notices();
    let ha_event = hub.topics.doorbell("bell");
    let mut probe = Probe::new(std::slice::from_ref(&ha_event)).await;
    probe
        .send(&hub.dev("bell"), r#"{"action":"single","battery":77}"#)
        .await;
    let m = probe
        .next_on(&ha_event, Duration::from_secs(2))
        .await
        .expect("HA event");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&m.payload).unwrap()["event_type"],
        "press"
    );
    let events = hub.events_of(cam.id, "doorbell", 10).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].detail["sensor"], "bell");
    assert_eq!(
        events[0].snapshot, None,
        "no snapshots until detection exists"
    );
    // The pipeline hears of the row.
    let n = tokio::time::timeout(Duration::from_secs(2), notices.recv())
        .await
        .expect("a notice")
        .unwrap();
    assert_eq!(n.id, events[0].id);
    assert_eq!(n.camera_id, Some(cam.id));
    assert_eq!(n.kind, "doorbell");
    // …and can publish on the hub's connection.
    let publisher = hub.alarm().mqtt().expect("a broker is configured");
    assert!(publisher.connected());
    let snap = hub.topics.camera_snapshot("front");
    let mut p2 = Probe::new(std::slice::from_ref(&snap)).await;
    publisher.publish(&snap, false, vec![0xff, 0xd8, 0xff]);
    let m = p2
        .next_on(&snap, Duration::from_secs(2))
        .await
        .expect("snapshot");
    // The probe keeps payloads as lossy text: the bytes arrived unchanged.
    assert_eq!(m.payload, String::from_utf8_lossy(&[0xff, 0xd8, 0xff]));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_and_unknown_devices_are_ignored() {
    let _g = BROKER_LOCK.read().await;
    capture_logs();
    let mut hub = Hub::new("garbage", quick(0)).await;
    hub.sensor("door", "contact", None).await;
    hub.sensor("hall", "motion", None).await;
    hub.sensor("bell", "doorbell", None).await;
    hub.start().await;
    let probe = Probe::new(&[]).await;
    hub.alarm()
        .command(
            Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "alex",
        )
        .await;
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    for (dev, payload) in [
        ("door", "{not json"),
        ("door", ""),
        ("door", "[false]"),
        ("door", r#"{"contact":"open"}"#),
        ("door", r#"{"contact":0}"#),
        ("door", r#"{"contact":false,"battery":"low"}"#),
        ("hall", r#"{"occupancy":"yes"}"#),
        ("hall", "\u{0}\u{1}\u{2}"),
        ("bell", r#"{"action":42}"#),
        ("door/availability", "sideways"),
        ("nobody_knows_me", r#"{"contact":false}"#),
    ] {
        probe.send(&hub.dev(dev), payload).await;
    }
    probe
        .send(&format!("{}/alarm/set", hub.topics.base), "OPEN_SESAME")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(hub.alarm().state(), "armed_away");
    let door = hub.store.sensor_by_name("door").await.unwrap().unwrap();
    assert_eq!(door.active, None, "nothing recorded from garbage");
    let log = logs();
    for want in [
        "ignoring a message from `door`: not valid JSON",
        "ignoring a message from `door`: not a JSON object",
        "ignoring a message from `door`: `contact` should be true or false",
        "ignoring a message from `door`: `battery` should be a number",
        "ignoring a message from `hall`: `occupancy` should be true or false",
        "ignoring a message from `bell`: `action` should be a string",
        "ignoring availability message from `door`",
        "ignoring unknown command `OPEN_SESAME`",
    ] {
        assert!(log.contains(want), "`{want}` not logged:\n{log}");
    }
    assert!(
        log.contains(&format!("{}/zigbee2mqtt/nobody_knows_me", hub.prefix))
            && log.contains("no sensor uses"),
        "the unknown device is not logged:\n{log}"
    );
    // Availability is recorded; the hub is still alive and listening.
    probe
        .send(&format!("{}/availability", hub.dev("door")), "offline")
        .await;
    probe.send(&hub.dev("door"), r#"{"contact":false}"#).await;
    hub.wait_state("triggered", Duration::from_secs(2)).await;
    let door = hub.store.sensor_by_name("door").await.unwrap().unwrap();
    assert_eq!(door.available, Some(false));
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_restarted_while_armed_stays_armed_and_resumes_timers() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new(
        "restart",
        Delays {
            exit_ms: 1_000,
            entry_ms: 60_000,
            siren_ms: 60_000,
        },
    )
    .await;
    hub.sensor("door", "contact", None).await;
    hub.start().await;
    hub.alarm()
        .command(
            Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "alex",
        )
        .await;
    assert_eq!(hub.alarm().state(), "arming");
    // "Power cut" during the exit delay: the state is in the store.
    hub.stop().await;
    drop(hub.store.clone());
    let store = Store::open(&hub.dir_path).await.unwrap();
    assert_eq!(store.alarm_state().await.unwrap().state, "arming");
    hub.store = store;
    tokio::time::sleep(Duration::from_millis(300)).await;
    hub.start().await;
    assert_eq!(hub.alarm().state(), "arming", "the exit delay resumes");
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    hub.stop().await;
    hub.start().await;
    assert_eq!(hub.alarm().state(), "armed_away");
    // And the armed hub still reacts.
    let probe = Probe::new(&[]).await;
    probe.send(&hub.dev("door"), r#"{"contact":false}"#).await;
    hub.wait_state("pending", Duration::from_secs(2)).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_discovery_is_retained_and_valid() {
    let _g = BROKER_LOCK.read().await;
    let mut hub = Hub::new("ha", quick(0)).await;
    for name in ["porch", "yard"] {
        hub.store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: "rtsp://127.0.0.1:1/x".into(),
                    ..Default::default()
                },
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
    }
    hub.sensor("bell", "doorbell", None).await;
    hub.start().await;
    // A new subscriber gets them as retained messages.
    let disc = format!("{}/#", hub.topics.discovery_prefix);
    let mut probe = Probe::new(&[disc, hub.topics.alarm_state()]).await;
    let mut got = std::collections::BTreeMap::new();
    let end = tokio::time::Instant::now() + Duration::from_secs(3);
    while got.len() < 14 {
        match tokio::time::timeout_at(end, probe.rx.recv()).await {
            Ok(Some(m)) if m.topic.ends_with("/config") => {
                assert!(m.retain, "{} not retained", m.topic);
                let v: serde_json::Value = serde_json::from_str(&m.payload)
                    .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", m.topic));
                got.insert(m.topic.clone(), v);
            }
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let d = &hub.topics.discovery_prefix;
    let panel = &got[&format!("{d}/alarm_control_panel/porchlight/config")];
    for k in [
        "name",
        "unique_id",
        "state_topic",
        "command_topic",
        "availability_topic",
    ] {
        assert!(panel[k].is_string(), "alarm panel lacks {k}: {panel}");
    }
    assert_eq!(panel["command_topic"], hub.topics.alarm_set());
    assert_eq!(panel["state_topic"], hub.topics.alarm_state());
    assert_eq!(panel["payload_disarm"], "DISARM");
    assert!(panel["device"]["identifiers"].is_array());
    assert_eq!(panel["device"]["manufacturer"], "Porchlight");
    for cam in ["porch", "yard"] {
        for label in ["motion", "person", "vehicle", "animal", "parcel"] {
            let c = &got[&format!("{d}/binary_sensor/porchlight/{cam}_{label}/config")];
            assert_eq!(
                c["state_topic"],
                format!("{}/{cam}/{label}", hub.topics.base)
            );
            assert_eq!(c["payload_on"], "ON");
            assert!(c["unique_id"].is_string() && c["device"]["name"].is_string());
        }
    }
    let bell = &got[&format!("{d}/event/porchlight/bell_doorbell/config")];
    assert_eq!(bell["event_types"], serde_json::json!(["press"]));
    assert_eq!(bell["device_class"], "doorbell");
    for cam in ["porch", "yard"] {
        let img = &got[&format!("{d}/image/porchlight/{cam}_snapshot/config")];
        assert_eq!(
            img["image_topic"],
            format!("{}/{cam}/snapshot", hub.topics.base)
        );
        assert_eq!(img["content_type"], "image/jpeg");
        assert_eq!(img["unique_id"], format!("porchlight_{cam}_snapshot"));
        assert_eq!(img["availability_topic"], hub.topics.status());
        assert!(img["name"].is_string() && img["device"]["identifiers"].is_array());
    }
    for (topic, v) in &got {
        assert!(v.is_object(), "{topic}: not a JSON object");
        for k in ["name", "unique_id", "availability_topic", "device"] {
            assert!(!v[k].is_null(), "{topic} lacks {k}: {v}");
        }
    }
    assert_eq!(got.len(), 14, "{:?}", got.keys().collect::<Vec<_>>());

    // Home Assistant arms and disarms.
    probe.send(&hub.topics.alarm_set(), "ARM_AWAY").await;
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    probe.send(&hub.topics.alarm_set(), "DISARM").await;
    hub.wait_state("disarmed", Duration::from_secs(2)).await;
    probe
        .wait_for(
            &hub.topics.alarm_state(),
            "disarmed",
            Duration::from_secs(2),
        )
        .await;
    hub.stop().await;
}

/// Restarts the machine's Mosquitto when dropped if it is not accepting
/// connections, so a failing test never leaves the broker down.
struct BrokerGuard;

fn broker_up() -> bool {
    std::net::TcpStream::connect_timeout(
        &"127.0.0.1:1883".parse().unwrap(),
        Duration::from_millis(200),
    )
    .is_ok()
}

fn start_broker() {
    let _ = std::process::Command::new("mosquitto")
        .args(["-d", "-c", "/etc/mosquitto/mosquitto.conf"])
        .status();
    let t0 = Instant::now();
    while !broker_up() && t0.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for BrokerGuard {
    fn drop(&mut self) {
        if !broker_up() {
            start_broker();
        }
    }
}

/// Stops the broker by the pid in its pid file (never by name).
fn stop_broker() {
    let pid = std::fs::read_to_string("/run/mosquitto/mosquitto.pid")
        .expect("the broker's pid file")
        .trim()
        .to_owned();
    assert!(pid.chars().all(|c| c.is_ascii_digit()) && !pid.is_empty());
    let st = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(st.success());
    let t0 = Instant::now();
    while broker_up() {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the broker did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its pid file goes when it exits; wait so the restart does not race it.
    let t0 = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && t0.elapsed() < Duration::from_secs(5)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_reconnects_and_resubscribes() {
    let _g = BROKER_LOCK.write().await;
    let _guard = BrokerGuard;
    let mut hub = Hub::new("reconnect", quick(0)).await;
    hub.sensor("door", "contact", None).await;
    hub.start().await;
    hub.alarm()
        .command(
            Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "alex",
        )
        .await;
    hub.wait_state("armed_away", Duration::from_secs(2)).await;
    let before = hub.alarm().link().connects;

    let down = Instant::now();
    tokio::task::spawn_blocking(stop_broker).await.unwrap();
    let t0 = Instant::now();
    while hub.alarm().link().connected {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the loss was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(hub.alarm().link().last_error.is_some());
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::spawn_blocking(start_broker).await.unwrap();
    println!("broker down for {:?}", down.elapsed());
    let t0 = Instant::now();
    while hub.alarm().link().connects == before {
        assert!(t0.elapsed() < Duration::from_secs(15), "no reconnection");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "hub reconnected {:?} after the broker came back",
        t0.elapsed()
    );
    assert_eq!(hub.alarm().state(), "armed_away", "state intact");
    // Resubscribed: a sensor message is heard again.
    let mut probe = Probe::new(&[hub.topics.status()]).await;
    probe
        .wait_for(&hub.topics.status(), "online", Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    probe.send(&hub.dev("door"), r#"{"contact":false}"#).await;
    hub.wait_state("triggered", Duration::from_secs(3)).await;
    hub.stop().await;
}
