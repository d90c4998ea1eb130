//! # porchlight-alarm
//!
//! The household alarm: door/window contacts, motion sensors, sirens,
//! keypads and doorbells spoken to over MQTT in Zigbee2MQTT's payloads, the
//! alarm state machine ([`machine`]), and Home Assistant MQTT discovery
//! ([`ha`]). Read design/alarm.md first.
//!
//! It also hears external triggers on `<base>/<camera>/trigger`
//! ([`trigger`]) and hands them to the hub's event path
//! ([`AlarmClient::triggers`]).
//!
//! The hub runs it with [`Alarm::start`]; the CLI (which may run while a
//! hub does, or while none does) never talks to MQTT: it queues requests in
//! the store ([`porchlight_store::Store::push_alarm_request`]), which a
//! running hub performs within [`AlarmOptions::poll_interval`].
//!
//! ```no_run
//! # async fn demo(store: porchlight_store::Store) -> Result<(), porchlight_alarm::AlarmError> {
//! let config = porchlight_config::Config::default();
//! let opts = porchlight_alarm::AlarmOptions::from_config(&config)?;
//! let alarm = porchlight_alarm::Alarm::start(store, porchlight_base::clock::system(), opts).await?;
//! // … serve …
//! alarm.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod ha;
pub mod machine;
mod mqtt;
pub mod trigger;
pub mod zigbee;

pub use mqtt::MqttPublisher;
pub use trigger::TriggerRequest;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use jiff::Timestamp;
use porchlight_base::clock::SharedClock;
use porchlight_store::{
    AlarmLink, AlarmStateRow, NewAuditEntry, NewEvent, Sensor, SensorTelemetry, Store, StoreError,
};
use serde_json::json;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use machine::{Delays, Effect, Kind, Machine, Mode, Modes, Phase};

/// Errors starting the alarm.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("invalid MQTT URL `{0}`: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")]
    BadUrl(String),
    #[error("{0}")]
    Config(String),
    #[error("MQTT TLS: {0}")]
    Tls(String),
    #[error("{key}: cannot read {path}: {message}")]
    File {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("invalid environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// The environment variable naming the broker (`mqtt://HOST[:PORT]`);
/// unset or empty: MQTT off.
pub const MQTT_URL_ENV: &str = "PORCHLIGHT_MQTT_URL";

/// The MQTT topic names this hub uses.
#[derive(Debug, Clone)]
pub struct Topics {
    /// Root of the hub's own topics (default `porchlight`).
    pub base: String,
    /// Home Assistant's discovery prefix (default `homeassistant`).
    pub discovery_prefix: String,
    /// Node id in discovery topics and unique ids (default `porchlight`).
    pub node_id: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            base: "porchlight".into(),
            discovery_prefix: "homeassistant".into(),
            node_id: "porchlight".into(),
        }
    }
}

impl Topics {
    /// `online`/`offline` (retained; `offline` is the last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }
    /// The alarm's state, retained: Home Assistant's state names.
    pub fn alarm_state(&self) -> String {
        format!("{}/alarm/state", self.base)
    }
    /// Commands: `ARM_HOME`, `ARM_AWAY`, `DISARM`.
    pub fn alarm_set(&self) -> String {
        format!("{}/alarm/set", self.base)
    }
    /// Transitions as JSON (not retained): `{from,to,by,cause,at}`.
    pub fn alarm_event(&self) -> String {
        format!("{}/alarm/event", self.base)
    }
    pub fn camera_label(&self, camera: &str, label: &str) -> String {
        format!("{}/{camera}/{label}", self.base)
    }
    /// JPEG bytes of a camera's latest snapshot (published by detection).
    pub fn camera_snapshot(&self, camera: &str) -> String {
        format!("{}/{camera}/snapshot", self.base)
    }
    pub fn doorbell(&self, sensor: &str) -> String {
        format!("{}/doorbell/{sensor}", self.base)
    }
    /// External triggers for a camera (see [`trigger`]), subscribed to.
    pub fn camera_trigger(&self, camera: &str) -> String {
        format!("{}/{camera}/trigger", self.base)
    }
    /// The subscription for every camera's trigger topic.
    pub fn triggers_filter(&self) -> String {
        format!("{}/+/trigger", self.base)
    }
    /// The camera a trigger topic names, if `topic` is one.
    pub fn trigger_camera<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let cam = topic
            .strip_prefix(self.base.as_str())?
            .strip_prefix('/')?
            .strip_suffix("/trigger")?;
        (!cam.is_empty() && !cam.contains('/')).then_some(cam)
    }
}

/// How the alarm runs.
#[derive(Debug, Clone)]
pub struct AlarmOptions {
    /// `mqtt://HOST[:PORT]`; None: no MQTT (the state machine and CLI
    /// requests still work; sensors and sirens do not).
    pub mqtt_url: Option<String>,
    pub client_id: String,
    /// Broker credentials (`username` without `password`: empty password).
    pub username: Option<String>,
    pub password: Option<String>,
    /// PEM of a private CA for `mqtts://`; None: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// A client certificate and its key for `mqtts://` brokers that
    /// require one (mutual TLS); checked by [`ClientAuth::check`].
    pub client_auth: Option<ClientAuth>,
    pub topics: Topics,
    /// Delays used when an arm request names none.
    pub delays: Delays,
    /// How often the store is polled for CLI requests and sensor changes.
    pub poll_interval: Duration,
    /// Longest wait between reconnection attempts.
    pub backoff_max: Duration,
    pub keep_alive: Duration,
}

impl Default for AlarmOptions {
    fn default() -> Self {
        AlarmOptions {
            mqtt_url: None,
            client_id: format!("porchlight-{}", std::process::id()),
            username: None,
            password: None,
            ca_pem: None,
            client_auth: None,
            topics: Topics::default(),
            delays: Delays::default(),
            poll_interval: Duration::from_secs(1),
            backoff_max: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
        }
    }
}

impl AlarmOptions {
    /// From the configuration (`[mqtt]` and `[alarm]`, environment
    /// overrides already applied): reads `mqtt.password_file` (unless
    /// `PORCHLIGHT_MQTT_PASSWORD` gave the password), `mqtt.ca_file`, and
    /// `mqtt.client_cert_file` with `mqtt.client_key_file` (checked to be
    /// a certificate and the key that belongs to it).
    pub fn from_config(c: &porchlight_config::Config) -> Result<AlarmOptions, AlarmError> {
        let m = &c.mqtt;
        let read = |key: &'static str, p: &std::path::Path| {
            std::fs::read(p).map_err(|e| AlarmError::File {
                key,
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        let password = match (&m.password, &m.password_file) {
            (Some(p), _) => Some(p.0.clone()),
            (None, Some(f)) => {
                let bytes = read("mqtt.password_file", f)?;
                let text = String::from_utf8(bytes).map_err(|_| AlarmError::File {
                    key: "mqtt.password_file",
                    path: f.display().to_string(),
                    message: "not UTF-8 text".into(),
                })?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => None,
        };
        let ca_pem = match &m.ca_file {
            Some(f) => {
                let pem = read("mqtt.ca_file", f)?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(AlarmError::File {
                        key: "mqtt.ca_file",
                        path: f.display().to_string(),
                        message: "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
                    });
                }
                Some(pem)
            }
            None => None,
        };
        let client_auth = match (&m.client_cert_file, &m.client_key_file) {
            (Some(cert), Some(key)) => {
                let a = ClientAuth {
                    cert_pem: read("mqtt.client_cert_file", cert)?,
                    key_pem: read("mqtt.client_key_file", key)?,
                };
                a.check().map_err(|e| match e {
                    ClientAuthError::Cert(message) => AlarmError::File {
                        key: "mqtt.client_cert_file",
                        path: cert.display().to_string(),
                        message,
                    },
                    ClientAuthError::Key(message) => AlarmError::File {
                        key: "mqtt.client_key_file",
                        path: key.display().to_string(),
                        message,
                    },
                    ClientAuthError::Mismatch => AlarmError::Tls(format!(
                        "the key in mqtt.client_key_file ({}) does not belong to the certificate in mqtt.client_cert_file ({})",
                        key.display(),
                        cert.display()
                    )),
                })?;
                Some(a)
            }
            (None, None) => None,
            // The configuration's own check refuses one without the other.
            _ => return Err(AlarmError::Config(
                "mqtt.client_cert_file and mqtt.client_key_file go together: set both or neither"
                    .into(),
            )),
        };
        let mut o = AlarmOptions {
            mqtt_url: m.url.clone().filter(|s| !s.trim().is_empty()),
            username: m.username.clone(),
            password,
            ca_pem,
            client_auth,
            topics: Topics {
                base: m.base_topic.trim_end_matches('/').to_owned(),
                discovery_prefix: m.discovery_prefix.trim_end_matches('/').to_owned(),
                ..Topics::default()
            },
            delays: Delays {
                exit_ms: c.alarm.exit_delay_seconds.millis,
                entry_ms: c.alarm.entry_delay_seconds.millis,
                siren_ms: c.alarm.siren_seconds.millis,
            },
            ..Default::default()
        };
        if let Some(id) = &m.client_id {
            o.client_id = id.clone();
        }
        if let Some(u) = &o.mqtt_url {
            mqtt::parse_url(u)?;
        }
        Ok(o)
    }

    /// [`AlarmOptions::from_config`] with the built-in defaults and the
    /// process environment only (`PORCHLIGHT_MQTT_*`,
    /// `PORCHLIGHT_ALARM_*_SECONDS`; no config file).
    pub fn from_env() -> Result<AlarmOptions, AlarmError> {
        let c = porchlight_config::load_from_process_env(None)
            .map_err(|e| AlarmError::Config(e.to_string()))?;
        AlarmOptions::from_config(&c)
    }
}

/// A client certificate (chain, PEM) and its private key (PEM: PKCS#8,
/// SEC1 or PKCS#1) for mutual TLS. `Debug` never shows the key.
#[derive(Clone)]
pub struct ClientAuth {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("(hidden)"))
            .finish()
    }
}

/// What is wrong with a [`ClientAuth`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// The certificate file: no certificate, or unreadable.
    #[error("{0}")]
    Cert(String),
    /// The key file: no key, or of a kind that cannot sign.
    #[error("{0}")]
    Key(String),
    /// Both read, but the key is not the certificate's.
    #[error("the private key does not belong to the client certificate")]
    Mismatch,
}

impl ClientAuth {
    /// Parses both files and checks that the key belongs to the first
    /// certificate (it signs a test message the certificate's public key
    /// verifies), so a mix-up is reported at start, not as a broker's
    /// terse handshake failure.
    pub fn check(&self) -> Result<(), ClientAuthError> {
        mqtt::client_auth(self).map(|_| ())
    }
}

/// What an arm or disarm did.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// The state afterwards.
    pub state: String,
    /// Sensors bypassed because they were open at arming.
    pub bypassed: Vec<String>,
    pub error: Option<String>,
}

/// A command to the running alarm.
#[derive(Debug, Clone)]
pub enum Command {
    Arm { mode: Mode, delays: Option<Delays> },
    Disarm,
}

/// The MQTT link as the alarm sees it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LinkStatus {
    pub enabled: bool,
    pub connected: bool,
    pub last_error: Option<String>,
    /// Connections made since start (a reconnect makes it 2, …).
    pub connects: u64,
}

/// Sent for every event row the alarm inserts (doorbell presses, alarm
/// transitions — one row per camera —, sensor events), so that others (the
/// detection pipeline) can attach a snapshot of that moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventNotice {
    /// The event row's id.
    pub id: i64,
    pub camera_id: Option<i64>,
    /// The event's kind (`doorbell`, `alarm`, …).
    pub kind: String,
    pub at: Timestamp,
}

/// A cheap, cloneable view of the running alarm: its state, link, commands,
/// MQTT publisher and event notices (for the web app and the detection
/// pipeline). It stays usable after shutdown; commands then answer "the
/// alarm has stopped".
#[derive(Clone)]
pub struct AlarmClient {
    commands: mpsc::Sender<(Command, String, oneshot::Sender<Outcome>)>,
    state: watch::Receiver<Machine>,
    link: watch::Receiver<LinkStatus>,
    publisher: Option<MqttPublisher>,
    notices: broadcast::Sender<EventNotice>,
    triggers: broadcast::Sender<TriggerRequest>,
}

/// The running alarm. Dropping it without [`AlarmHandle::shutdown`] aborts
/// the task. Derefs to [`AlarmClient`]; [`AlarmHandle::client`] gives a
/// clone that others may keep.
pub struct AlarmHandle {
    client: AlarmClient,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::ops::Deref for AlarmHandle {
    type Target = AlarmClient;
    fn deref(&self) -> &AlarmClient {
        &self.client
    }
}

impl AlarmHandle {
    /// A clone of the client side, to hand to the web app or others.
    pub fn client(&self) -> AlarmClient {
        self.client.clone()
    }

    /// Stops: publishes `offline`, disconnects, saves the state.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for AlarmHandle {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl AlarmClient {
    /// A publisher on the alarm's broker connection; None when no broker
    /// is configured. Publishes queue while the broker is away.
    pub fn mqtt(&self) -> Option<MqttPublisher> {
        self.publisher.clone()
    }

    /// Every event row the alarm inserts from now on. A receiver that lags
    /// more than 256 notices behind loses the oldest ones
    /// (`RecvError::Lagged`).
    pub fn event_notices(&self) -> broadcast::Receiver<EventNotice> {
        self.notices.subscribe()
    }

    /// Every checked trigger heard on `<base>/<camera>/trigger` from now
    /// on (see [`trigger`]), for the event path to record. With no
    /// receiver, triggers are logged and dropped. Same lag rule as
    /// [`AlarmClient::event_notices`].
    pub fn triggers(&self) -> broadcast::Receiver<TriggerRequest> {
        self.triggers.subscribe()
    }

    /// The machine as of now.
    pub fn machine(&self) -> Machine {
        self.state.borrow().clone()
    }

    /// The state's name (`armed_away`, …).
    pub fn state(&self) -> String {
        self.state.borrow().state_name()
    }

    /// A receiver that sees every state change.
    pub fn watch(&self) -> watch::Receiver<Machine> {
        self.state.clone()
    }

    pub fn link(&self) -> LinkStatus {
        self.link.borrow().clone()
    }

    pub fn watch_link(&self) -> watch::Receiver<LinkStatus> {
        self.link.clone()
    }

    /// Arms or disarms on behalf of `by` (a signed-in user's name, `cli`, …).
    pub async fn command(&self, cmd: Command, by: &str) -> Outcome {
        let (tx, rx) = oneshot::channel();
        let failed = |e: &str| Outcome {
            ok: false,
            state: self.state(),
            bypassed: Vec::new(),
            error: Some(e.into()),
        };
        if self.commands.send((cmd, by.to_owned(), tx)).await.is_err() {
            return failed("the alarm has stopped");
        }
        rx.await.unwrap_or_else(|_| failed("the alarm has stopped"))
    }
}

/// Entry point.
pub struct Alarm;

impl Alarm {
    /// Loads the persisted state (resuming exit/entry delays and the siren
    /// where they were), connects to the broker if one is configured, and
    /// runs until [`AlarmHandle::shutdown`].
    pub async fn start(
        store: Store,
        clock: SharedClock,
        options: AlarmOptions,
    ) -> Result<AlarmHandle, AlarmError> {
        let now = clock.now();
        let row = store.alarm_state().await?;
        let machine = match serde_json::from_value::<Machine>(row.snapshot.clone()) {
            Ok(m) => m,
            Err(_) if row.state == "disarmed" => Machine::disarmed(now),
            Err(e) => {
                // Never silently disarm a hub that was armed.
                tracing::error!(state = %row.state, "alarm: unreadable saved state ({e}); arming away");
                let mut m = Machine::disarmed(now);
                let _ = m.arm(
                    Mode::Away,
                    Delays {
                        exit_ms: 0,
                        ..options.delays
                    },
                    &[],
                    "system",
                    now,
                );
                m
            }
        };
        let mqtt = match &options.mqtt_url {
            Some(u) => Some(mqtt::parse_url(u)?),
            None => None,
        };
        let (state_tx, state_rx) = watch::channel(machine.clone());
        let (link_tx, link_rx) = watch::channel(LinkStatus {
            enabled: mqtt.is_some(),
            ..Default::default()
        });
        let (inbound_tx, inbound_rx) = mpsc::channel(1024);
        let link = match mqtt {
            Some((host, port, tls)) => Some(mqtt::spawn(
                host,
                port,
                tls,
                &options,
                inbound_tx.clone(),
                link_tx.clone(),
            )?),
            None => None,
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(16);
        let (stop_tx, stop_rx) = oneshot::channel();
        let (notices, _) = broadcast::channel(256);
        let (triggers, _) = broadcast::channel(256);
        let publisher = link.as_ref().map(|l| l.publisher());
        let mut core = Core {
            notices: notices.clone(),
            triggers: triggers.clone(),
            store,
            clock,
            topics: options.topics.clone(),
            defaults: options.delays,
            machine,
            sensors: Vec::new(),
            by_topic: HashMap::new(),
            cameras: Vec::new(),
            discovery: BTreeSet::new(),
            subscribed: BTreeSet::new(),
            link,
            link_status: link_rx.clone(),
            state_tx,
            link_saved: None,
            last_heartbeat: None,
            unknown: BTreeSet::new(),
        };
        core.reload().await;
        // Timers that ran out while the hub was off.
        let fx = core.machine.tick(core.clock.now());
        core.apply(fx).await;
        core.save().await;
        let task = tokio::spawn(core.run(options.poll_interval, inbound_rx, cmd_rx, stop_rx));
        Ok(AlarmHandle {
            client: AlarmClient {
                commands: cmd_tx,
                state: state_rx,
                link: link_rx,
                publisher,
                notices,
                triggers,
            },
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// From the MQTT task to the core.
#[derive(Debug)]
pub(crate) enum Inbound {
    Connected,
    /// Topic, payload, and the retain flag (set only on a stored message
    /// the broker replays on subscription).
    Publish(String, Vec<u8>, bool),
}

struct Core {
    notices: broadcast::Sender<EventNotice>,
    triggers: broadcast::Sender<TriggerRequest>,
    store: Store,
    clock: SharedClock,
    topics: Topics,
    defaults: Delays,
    machine: Machine,
    sensors: Vec<Sensor>,
    /// topic → (index into sensors, is the availability topic)
    by_topic: HashMap<String, (usize, bool)>,
    cameras: Vec<(i64, String)>,
    discovery: BTreeSet<String>,
    subscribed: BTreeSet<String>,
    link: Option<mqtt::Link>,
    link_status: watch::Receiver<LinkStatus>,
    state_tx: watch::Sender<Machine>,
    link_saved: Option<LinkStatus>,
    last_heartbeat: Option<std::time::Instant>,
    /// Topics heard that no sensor uses (logged once each).
    unknown: BTreeSet<String>,
}

impl Core {
    async fn run(
        mut self,
        poll: Duration,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<(Command, String, oneshot::Sender<Outcome>)>,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut ticker = tokio::time::interval(poll);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wait = self.machine.next_deadline().map(|d| {
                let ms = d.duration_since(self.clock.now()).as_millis().max(0) as u64;
                Duration::from_millis(ms)
            });
            let timer = async {
                match wait {
                    Some(w) => tokio::time::sleep(w).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                Some(msg) = inbound.recv() => self.inbound(msg).await,
                Some((cmd, by, reply)) = commands.recv() => {
                    let out = self.command(cmd, &by).await;
                    let _ = reply.send(out);
                }
                _ = ticker.tick() => self.poll().await,
                _ = timer => {}
            }
            let fx = self.machine.tick(self.clock.now());
            if !fx.is_empty() {
                self.apply(fx).await;
                self.save().await;
            }
        }
        self.save().await;
        if let Some(link) = self.link.take() {
            link.publish(&self.topics.status(), true, b"offline".to_vec());
            link.close().await;
        }
        let mut l = self.link_status.borrow().clone();
        l.connected = false;
        let _ = self
            .store
            .put_alarm_link(&AlarmLink {
                connected: false,
                last_error: l.last_error,
                // No heartbeat: the CLI sees at once that no hub runs.
                updated: Timestamp::UNIX_EPOCH,
            })
            .await;
    }

    /// Re-reads sensors and cameras; subscribes to new topics and updates
    /// the discovery configs when they changed.
    async fn reload(&mut self) {
        match self.store.sensors().await {
            Ok(s) => {
                if s.iter()
                    .map(|x| (&x.name, &x.topic, &x.kind, x.camera_id))
                    .ne(self
                        .sensors
                        .iter()
                        .map(|x| (&x.name, &x.topic, &x.kind, x.camera_id)))
                {
                    self.by_topic.clear();
                    for (i, x) in s.iter().enumerate() {
                        self.by_topic.insert(x.topic.clone(), (i, false));
                        self.by_topic
                            .insert(format!("{}/availability", x.topic), (i, true));
                    }
                }
                // Keep the in-memory view of what is open from the store.
                self.sensors = s;
            }
            Err(e) => tracing::warn!("alarm: cannot read sensors: {e}"),
        }
        match self.store.cameras().await {
            Ok(c) => self.cameras = c.into_iter().map(|c| (c.id, c.name)).collect(),
            Err(e) => tracing::warn!("alarm: cannot read cameras: {e}"),
        }
        self.sync_mqtt(false);
    }

    /// Subscriptions and discovery; `fresh`: a new connection, so
    /// everything is (re)sent.
    fn sync_mqtt(&mut self, fresh: bool) {
        let Some(link) = &self.link else { return };
        if fresh {
            self.subscribed.clear();
            self.discovery.clear();
        }
        if !link.connected() {
            return;
        }
        let mut want = BTreeSet::new();
        for s in &self.sensors {
            // The device's whole level (`zigbee2mqtt/+`), so messages from
            // devices nobody added are seen and logged, not silently lost.
            match s.topic.rsplit_once('/') {
                Some((parent, _)) if !parent.is_empty() => want.insert(format!("{parent}/+")),
                _ => want.insert(s.topic.clone()),
            };
            want.insert(format!("{}/availability", s.topic));
        }
        want.insert(self.topics.alarm_set());
        want.insert(self.topics.triggers_filter());
        for t in want.difference(&self.subscribed.clone()) {
            if link.subscribe(t) {
                self.subscribed.insert(t.clone());
            }
        }
        for t in self.subscribed.clone().difference(&want) {
            link.unsubscribe(t);
            self.subscribed.remove(t);
        }
        let cams: Vec<String> = self.cameras.iter().map(|c| c.1.clone()).collect();
        let bells: Vec<String> = self
            .sensors
            .iter()
            .filter(|s| s.kind == "doorbell")
            .map(|s| s.name.clone())
            .collect();
        let configs = ha::configs(&self.topics, &cams, &bells);
        let topics: BTreeSet<String> = configs.iter().map(|c| c.0.clone()).collect();
        for (t, v) in configs {
            if !self.discovery.contains(&t) {
                link.publish(&t, true, v.to_string().into_bytes());
                // The binary sensors start OFF (detection fills them later).
                if let Some(state) = v.get("state_topic").and_then(|s| s.as_str()) {
                    if t.contains("/binary_sensor/") {
                        link.publish(state, true, b"OFF".to_vec());
                    }
                }
            }
        }
        for gone in self.discovery.difference(&topics) {
            link.publish(gone, true, Vec::new());
        }
        self.discovery = topics;
        if fresh {
            // After the subscriptions: the broker handles one client's
            // packets in order, so whoever sees `online` knows the hub
            // already listens.
            link.publish(
                &self.topics.alarm_state(),
                true,
                self.machine.state_name().into_bytes(),
            );
            link.publish(&self.topics.status(), true, b"online".to_vec());
        }
    }

    async fn poll(&mut self) {
        self.reload().await;
        match self.store.pending_alarm_requests().await {
            Ok(reqs) => {
                for r in reqs {
                    let cmd = match r.action.as_str() {
                        "arm_home" | "arm_away" => {
                            let mut d = self.defaults;
                            let o = &r.options;
                            let get = |k: &str, into: &mut u64| {
                                if let Some(v) = o.get(k).and_then(|v| v.as_u64()) {
                                    *into = v;
                                }
                            };
                            get("exit_ms", &mut d.exit_ms);
                            get("entry_ms", &mut d.entry_ms);
                            get("siren_ms", &mut d.siren_ms);
                            Some(Command::Arm {
                                mode: if r.action == "arm_home" {
                                    Mode::Home
                                } else {
                                    Mode::Away
                                },
                                delays: Some(d),
                            })
                        }
                        "disarm" => Some(Command::Disarm),
                        _ => None,
                    };
                    let out = match cmd {
                        Some(c) => self.command(c, &r.actor.clone()).await,
                        None => Outcome {
                            ok: false,
                            state: self.machine.state_name(),
                            bypassed: Vec::new(),
                            error: Some(format!("unknown action `{}`", r.action)),
                        },
                    };
                    let v = serde_json::to_value(&out).unwrap_or_default();
                    if let Err(e) = self
                        .store
                        .finish_alarm_request(r.id, &v, self.clock.now())
                        .await
                    {
                        tracing::warn!("alarm: cannot record a request's outcome: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("alarm: cannot read requests: {e}"),
        }
        // The link status, on change and as a heartbeat every 2 s (the CLI
        // tells "no hub running" by its age).
        let l = self.link_status.borrow().clone();
        let due = self
            .last_heartbeat
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(2));
        if due || self.link_saved.as_ref() != Some(&l) {
            let row = AlarmLink {
                connected: l.connected,
                last_error: l.last_error.clone(),
                updated: self.clock.now(),
            };
            if self.store.put_alarm_link(&row).await.is_ok() {
                self.link_saved = Some(l);
                self.last_heartbeat = Some(std::time::Instant::now());
            }
        }
    }

    async fn command(&mut self, cmd: Command, by: &str) -> Outcome {
        let now = self.clock.now();
        let res = match cmd {
            Command::Arm { mode, delays } => {
                let open: Vec<(String, Modes)> = self
                    .sensors
                    .iter()
                    .filter(|s| s.active == Some(true))
                    .filter_map(|s| {
                        Kind::parse(&s.kind)
                            .map(|k| (s.name.clone(), Modes::effective(k, s.modes.as_deref())))
                    })
                    .collect();
                self.machine
                    .arm(mode, delays.unwrap_or(self.defaults), &open, by, now)
                    .map_err(|e| e.to_string())
            }
            Command::Disarm => Ok(self.machine.disarm(by, now)),
        };
        match res {
            Ok(fx) => {
                let bypassed = fx
                    .iter()
                    .find_map(|e| match e {
                        Effect::Bypassed(b) => Some(b.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                self.apply(fx).await;
                self.save().await;
                Outcome {
                    ok: true,
                    state: self.machine.state_name(),
                    bypassed,
                    error: None,
                }
            }
            Err(e) => {
                tracing::warn!("alarm: {by} asked for something refused: {e}");
                Outcome {
                    ok: false,
                    state: self.machine.state_name(),
                    bypassed: Vec::new(),
                    error: Some(e),
                }
            }
        }
    }

    async fn save(&mut self) {
        let row = AlarmStateRow {
            state: self.machine.state_name(),
            snapshot: serde_json::to_value(&self.machine).unwrap_or_default(),
            updated: self.clock.now(),
        };
        if let Err(e) = self.store.put_alarm_state(&row).await {
            tracing::error!("alarm: cannot save the alarm state: {e}");
        }
        self.state_tx.send_replace(self.machine.clone());
    }

    fn sirens(&self) -> Vec<String> {
        self.sensors
            .iter()
            .filter(|s| s.kind == "siren")
            .map(|s| format!("{}/set", s.topic))
            .collect()
    }

    /// Carries out the machine's effects: sirens first (latency matters),
    /// then the retained state, then audit and timeline events.
    async fn apply(&mut self, fx: Vec<Effect>) {
        if let Some(link) = &self.link {
            for e in &fx {
                let payload = match e {
                    Effect::SirenOn(d) => {
                        json!({"warning": {"mode": "burglar", "duration": (d.as_millis() as u64).div_ceil(1000).max(1)}})
                    }
                    Effect::SirenOff => json!({"warning": {"mode": "stop"}}),
                    _ => continue,
                };
                for t in self.sirens() {
                    link.publish(&t, false, payload.to_string().into_bytes());
                }
            }
            if fx.iter().any(|e| matches!(e, Effect::Changed { .. })) {
                link.publish(
                    &self.topics.alarm_state(),
                    true,
                    self.machine.state_name().into_bytes(),
                );
            }
        }
        let now = self.clock.now();
        for e in fx {
            match e {
                Effect::Changed {
                    from,
                    to,
                    action,
                    by,
                    cause,
                } => {
                    tracing::info!(%from, %to, %by, cause = ?cause, "alarm: {action}");
                    let detail = json!({"from": from, "to": to, "by": by, "cause": cause});
                    if let Some(link) = &self.link {
                        let mut ev = detail.clone();
                        ev["at"] = json!(now.to_string());
                        link.publish(
                            &self.topics.alarm_event(),
                            false,
                            ev.to_string().into_bytes(),
                        );
                    }
                    self.audit(&by, action, &to, detail.clone()).await;
                    let alert = matches!(to.as_str(), "pending" | "triggered");
                    let cams: Vec<Option<i64>> = if self.cameras.is_empty() {
                        vec![None]
                    } else {
                        self.cameras.iter().map(|c| Some(c.0)).collect()
                    };
                    for camera_id in cams {
                        let ev = NewEvent {
                            camera_id,
                            kind: "alarm".into(),
                            source: "alarm".into(),
                            alert,
                            start: Some(now),
                            detail: detail.clone(),
                            ..Default::default()
                        };
                        self.record_event(&ev, now, "the event").await;
                    }
                }
                Effect::Bypassed(names) => {
                    tracing::warn!(
                        "alarm: armed with {} open; bypassed until disarmed",
                        names.join(", ")
                    );
                    self.audit("system", "alarm.bypass", "alarm", json!({"sensors": names}))
                        .await;
                }
                Effect::SirenOn(d) => {
                    self.audit(
                        "system",
                        "alarm.siren_on",
                        "alarm",
                        json!({"seconds": d.as_secs(), "sirens": self.sirens()}),
                    )
                    .await
                }
                Effect::SirenOff => {
                    self.audit("system", "alarm.siren_off", "alarm", json!({}))
                        .await
                }
            }
        }
    }

    /// Inserts an event row and tells [`AlarmHandle::event_notices`].
    async fn record_event(&self, ev: &NewEvent, now: Timestamp, what: &str) {
        // Sealed to the owners (the alarm's transitions) or the doorbell
        // camera's recipients: only the index is in clear.
        match porchlight_vault::details::insert_event(&self.store, ev, now).await {
            Ok(id) => {
                // No receiver is fine.
                let _ = self.notices.send(EventNotice {
                    id,
                    camera_id: ev.camera_id,
                    kind: ev.kind.clone(),
                    at: now,
                });
            }
            Err(e) => tracing::warn!("alarm: cannot record {what}: {e}"),
        }
    }

    async fn audit(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let e = NewAuditEntry {
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            client: String::new(),
        };
        if let Err(err) = self.store.append_audit(&e, self.clock.now()).await {
            tracing::error!("alarm: cannot write the audit log: {err}");
        }
    }

    async fn inbound(&mut self, msg: Inbound) {
        match msg {
            Inbound::Connected => {
                // A (re)connection: the broker forgot our subscriptions.
                self.sync_mqtt(true);
            }
            Inbound::Publish(topic, payload, retained) => {
                self.publish(topic, payload, retained).await
            }
        }
    }

    /// A message on `<base>/<camera>/trigger`: checked, then handed to the
    /// event path. A retained one is an old message the broker replays on
    /// every (re)subscription, never "something happened now": ignored.
    fn external_trigger(&self, camera: &str, topic: &str, payload: &[u8], retained: bool) {
        if retained {
            tracing::warn!(%topic, "alarm: ignoring a retained trigger on {topic} (publish triggers without the retain flag)");
            return;
        }
        if !self.cameras.iter().any(|c| c.1 == camera) {
            tracing::warn!(%topic, "alarm: ignoring a trigger on {topic}: there is no camera `{camera}`");
            return;
        }
        match trigger::parse(camera, topic, payload) {
            Ok(r) => {
                tracing::info!(%topic, kind = %r.kind, "alarm: trigger `{}` for camera `{camera}`", r.kind);
                if self.triggers.send(r).is_err() {
                    tracing::warn!(%topic, "alarm: trigger on {topic} dropped: this process does not record events");
                }
            }
            Err(e) => tracing::warn!(%topic, "alarm: ignoring a trigger on {topic}: {e}"),
        }
    }

    async fn publish(&mut self, topic: String, payload: Vec<u8>, retained: bool) {
        let now = self.clock.now();
        if let Some(camera) = self.topics.trigger_camera(&topic) {
            self.external_trigger(camera, &topic, &payload, retained);
            return;
        }
        if topic == self.topics.alarm_set() {
            let text = String::from_utf8_lossy(&payload).trim().to_owned();
            let cmd = match text.as_str() {
                "ARM_HOME" => Command::Arm {
                    mode: Mode::Home,
                    delays: None,
                },
                "ARM_AWAY" => Command::Arm {
                    mode: Mode::Away,
                    delays: None,
                },
                "DISARM" => Command::Disarm,
                _ => {
                    tracing::warn!("alarm: ignoring unknown command `{text}` on {topic}");
                    return;
                }
            };
            self.command(cmd, "home-assistant").await;
            return;
        }
        let Some(&(i, availability)) = self.by_topic.get(&topic) else {
            // Once per topic at `warn` (a neighbour's lamp reports often).
            if self.unknown.len() < 1000 && self.unknown.insert(topic.clone()) {
                tracing::warn!(%topic, "alarm: message on {topic}, which no sensor uses; ignored (further ones logged at debug)");
            } else {
                tracing::debug!(%topic, "alarm: message on a topic no sensor uses; ignored");
            }
            return;
        };
        let sensor = self.sensors[i].clone();
        let Some(kind) = Kind::parse(&sensor.kind) else {
            return;
        };
        if availability {
            match zigbee::parse_availability(&payload) {
                Ok(up) => {
                    if up != sensor.available.unwrap_or(!up) {
                        tracing::info!(sensor = %sensor.name, "alarm: sensor {}", if up { "online" } else { "offline" });
                    }
                    self.sensors[i].available = Some(up);
                    let t = SensorTelemetry {
                        available: Some(up),
                        ..Default::default()
                    };
                    let _ = self.store.put_sensor_telemetry(sensor.id, &t, now).await;
                }
                Err(e) => {
                    tracing::warn!(sensor = %sensor.name, "alarm: ignoring availability message from `{}`: {e}", sensor.name)
                }
            }
            return;
        }
        let r = match zigbee::parse_state(kind, &payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(sensor = %sensor.name, "alarm: ignoring a message from `{}`: {e}", sensor.name);
                return;
            }
        };
        // Trip first, record after: the siren's latency matters more.
        if r.active == Some(true) {
            let counts_in = Modes::effective(kind, sensor.modes.as_deref());
            let fx = self.machine.sensor_active(&sensor.name, counts_in, now);
            if !fx.is_empty() {
                self.apply(fx).await;
                self.save().await;
            }
        }
        if let Some(a) = r.active {
            self.sensors[i].active = Some(a);
        }
        let t = SensorTelemetry {
            active: r.active,
            battery: r.battery,
            linkquality: r.linkquality,
            available: None,
        };
        if let Err(e) = self.store.put_sensor_telemetry(sensor.id, &t, now).await {
            tracing::warn!("alarm: cannot record `{}`: {e}", sensor.name);
        }
        if let Some(action) = r.action {
            match kind {
                Kind::Doorbell => self.doorbell(&sensor, &action, now).await,
                Kind::Keypad => {
                    self.keypad(&sensor, &action, r.action_code.as_deref())
                        .await
                }
                _ => {}
            }
        }
    }

    async fn doorbell(&mut self, sensor: &Sensor, action: &str, now: Timestamp) {
        tracing::info!(sensor = %sensor.name, "alarm: doorbell `{}` pressed ({action})", sensor.name);
        let ev = NewEvent {
            camera_id: sensor.camera_id,
            kind: "doorbell".into(),
            source: "mqtt".into(),
            alert: true,
            start: Some(now),
            detail: json!({"sensor": sensor.name, "action": action}),
            ..Default::default()
        };
        self.record_event(&ev, now, "the doorbell press").await;
        if let Some(link) = &self.link {
            link.publish(
                &self.topics.doorbell(&sensor.name),
                false,
                json!({"event_type": "press", "action": action})
                    .to_string()
                    .into_bytes(),
            );
        }
    }

    async fn keypad(&mut self, sensor: &Sensor, action: &str, code: Option<&str>) {
        let cmd = match action {
            "disarm" => Command::Disarm,
            "arm_all_zones" | "arm_away" => Command::Arm {
                mode: Mode::Away,
                delays: None,
            },
            "arm_day_zones" | "arm_night_zones" | "arm_home" => Command::Arm {
                mode: Mode::Home,
                delays: None,
            },
            other => {
                tracing::info!(sensor = %sensor.name, "alarm: keypad action `{other}` ignored");
                return;
            }
        };
        let phc = match self.store.alarm_pin_hash().await {
            Ok(Some(p)) => p,
            Ok(None) => {
                tracing::warn!(sensor = %sensor.name, "alarm: keypad `{}` used but no PIN is set (porchlight alarm set-pin)", sensor.name);
                return;
            }
            Err(e) => {
                tracing::error!("alarm: cannot read the PIN: {e}");
                return;
            }
        };
        let typed = code.unwrap_or_default().to_owned();
        let ok = !typed.is_empty()
            && tokio::task::spawn_blocking(move || {
                porchlight_vault::password::verify(&typed, &phc)
            })
            .await
            .unwrap_or(false);
        let by = format!("keypad:{}", sensor.name);
        if !ok {
            tracing::warn!(sensor = %sensor.name, "alarm: wrong PIN on keypad `{}`", sensor.name);
            self.audit(
                &by,
                "alarm.pin_rejected",
                "alarm",
                json!({"action": action}),
            )
            .await;
            return;
        }
        self.command(cmd, &by).await;
    }
}
