//! # porchlight-events
//!
//! The event path of the hub: what the cameras see and what sensors and
//! the API report becomes **events** — rows in the store with an encrypted
//! snapshot, MQTT messages for Home Assistant, and notices for Web Push.
//!
//! ```text
//!  recorder LiveHub ──frames──▶ worker thread per camera (worker.rs)
//!   (sub-stream if any)          decode → motion (5 fps) → detector on
//!                                moving parts → activity + parcel trackers
//!                                        │ actions (+ JPEGs when needed)
//!                                        ▼
//!                               async side (this file): store rows,
//!                               age-encrypted snapshots, MQTT, notices
//! ```
//!
//! Invariants:
//! - Nothing leaves the hub but what the household configured: MQTT goes
//!   to the household's broker; notices carry no picture.
//! - Snapshots are written only encrypted to the recipients of the camera
//!   (`porchlight_vault::snapshot`); with nobody to encrypt to, there is no
//!   snapshot rather than a plaintext one.
//! - The analysis never slows the recorder: frames reach the worker through
//!   a bounded queue and are dropped (the decoder resynchronises at the next
//!   key frame) when it falls behind.
//! - Events left open by a crash or stop are closed at start-up.
//!
//! MQTT topics (prefix `porchlight/`, documented in `design/detection.md`):
//! `<camera>/motion` `ON`/`OFF` (retained), `<camera>/<label>` `ON`/`OFF`
//! (retained, person/vehicle/animal/parcel), `<camera>/events` (JSON, one
//! message per new/updated/ended event), `<camera>/snapshot` (JPEG, only
//! when enabled: it is a picture in the clear on the broker).

#![forbid(unsafe_code)]

pub mod activity;
pub mod parcel;
pub mod settings;
mod worker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use porchlight_base::clock::SharedClock;
use porchlight_detect::Detector;
use porchlight_recorder::LiveHub;
use porchlight_store::{NewEvent, Store};
use porchlight_vault::{details, snapshot};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

pub use activity::{Action, ActivityOptions, ActivityTracker, Object, Observation};
pub use parcel::{ParcelAction, ParcelOptions, ParcelTracker};
pub use settings::{CameraDetection, SettingsError};

use worker::{Input, Latest, Output, Pictures, Worker};

/// Somewhere to publish MQTT messages (the alarm's broker link, or a test
/// double). Must not block.
pub trait Publish: Send + Sync {
    fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>);
}

/// An event as it is announced to other parts of the hub (notifications).
#[derive(Debug, Clone, Serialize)]
pub struct EventChange {
    /// `new`, `update` or `end`.
    #[serde(rename = "type")]
    pub change: &'static str,
    pub id: i64,
    pub camera: Option<String>,
    pub camera_id: Option<i64>,
    pub kind: String,
    pub alert: bool,
    pub labels: Vec<String>,
    pub zones: Vec<String>,
    pub score: Option<f32>,
    pub start: jiff::Timestamp,
    pub end: Option<jiff::Timestamp>,
}

/// Settings of the event path.
#[derive(Clone)]
pub struct EventsOptions {
    /// The hub's data directory (snapshots go under `snapshots/`).
    pub data_dir: PathBuf,
    /// How often the camera list is re-read.
    pub poll: Duration,
    /// Publish snapshots as JPEG on `porchlight/<camera>/snapshot`.
    pub mqtt_snapshots: bool,
    /// MQTT topic prefix.
    pub prefix: String,
}

impl EventsOptions {
    pub fn new(data_dir: PathBuf) -> EventsOptions {
        EventsOptions {
            data_dir,
            poll: Duration::from_secs(3),
            mqtt_snapshots: false,
            prefix: "porchlight".into(),
        }
    }
}

/// Why an event could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Store(#[from] porchlight_store::StoreError),
    #[error(transparent)]
    Seal(#[from] details::SealError),
    #[error("no camera named {0:?}")]
    NoCamera(String),
    #[error("{0}")]
    Invalid(String),
}

/// Where the object detector comes from.
pub enum DetectorSource {
    /// No model: motion only.
    None,
    /// A model already loaded (tests, benches, `porchlight detect`).
    Loaded(Arc<Detector>),
    /// Loaded (on a blocking thread) when the first camera with object
    /// detection on starts watching, and kept from then on. A load that
    /// fails is logged once and leaves detection at motion only. The
    /// vendored model costs tens of MiB once optimised, which a hub that
    /// only records should not carry.
    Lazy(fn() -> Result<Detector, porchlight_detect::DetectError>),
}

impl From<Option<Arc<Detector>>> for DetectorSource {
    fn from(d: Option<Arc<Detector>>) -> Self {
        match d {
            Some(d) => DetectorSource::Loaded(d),
            None => DetectorSource::None,
        }
    }
}

impl From<Arc<Detector>> for DetectorSource {
    fn from(d: Arc<Detector>) -> Self {
        DetectorSource::Loaded(d)
    }
}

/// The detector, loaded at most once.
struct DetectorCell {
    load: Option<fn() -> Result<Detector, porchlight_detect::DetectError>>,
    cell: tokio::sync::OnceCell<Option<Arc<Detector>>>,
}

impl DetectorCell {
    fn new(src: DetectorSource) -> DetectorCell {
        match src {
            DetectorSource::None => DetectorCell {
                load: None,
                cell: tokio::sync::OnceCell::new_with(Some(None)),
            },
            DetectorSource::Loaded(d) => DetectorCell {
                load: None,
                cell: tokio::sync::OnceCell::new_with(Some(Some(d))),
            },
            DetectorSource::Lazy(f) => DetectorCell {
                load: Some(f),
                cell: tokio::sync::OnceCell::new(),
            },
        }
    }

    /// The detector, loading it on first call when it is lazy.
    async fn get(&self) -> Option<Arc<Detector>> {
        self.cell
            .get_or_init(|| async {
                let load = self.load?;
                tracing::info!("loading the object detector");
                match tokio::task::spawn_blocking(load).await {
                    Ok(Ok(d)) => Some(Arc::new(d)),
                    Ok(Err(e)) => {
                        tracing::warn!("object detection is off (motion only): {e}");
                        None
                    }
                    Err(e) => {
                        tracing::warn!("object detection is off (motion only): {e}");
                        None
                    }
                }
            })
            .await
            .clone()
    }

    /// Whether the model has been loaded (for tests and status).
    fn is_loaded(&self) -> bool {
        matches!(self.cell.get(), Some(Some(_)))
    }
}

struct Shared {
    store: Store,
    clock: SharedClock,
    live: Arc<LiveHub>,
    detector: DetectorCell,
    mqtt: Option<Arc<dyn Publish>>,
    opts: EventsOptions,
    changes: broadcast::Sender<EventChange>,
    latest: Mutex<HashMap<i64, Arc<Mutex<Latest>>>>,
}

/// The running event path.
pub struct Events {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// A cheap handle for triggers from the API or MQTT.
#[derive(Clone)]
pub struct EventsHandle {
    shared: Arc<Shared>,
}

impl Events {
    /// Starts watching every enabled camera whose settings allow it.
    /// `detector` is the object model: already loaded, none (motion only),
    /// or loaded on first need ([`DetectorSource::Lazy`]).
    pub async fn start(
        store: Store,
        clock: SharedClock,
        live: Arc<LiveHub>,
        detector: impl Into<DetectorSource>,
        mqtt: Option<Arc<dyn Publish>>,
        opts: EventsOptions,
    ) -> Events {
        match store.end_open_events("detection", clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("closed {n} detection event(s) left open by the last run"),
            Err(e) => tracing::warn!("closing interrupted events: {e}"),
        }
        let (changes, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            store,
            clock,
            live,
            detector: DetectorCell::new(detector.into()),
            mqtt,
            opts,
            changes,
            latest: Mutex::new(HashMap::new()),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(shared.clone(), stop_rx));
        Events {
            shared,
            stop,
            task: Some(task),
        }
    }

    pub fn handle(&self) -> EventsHandle {
        EventsHandle {
            shared: self.shared.clone(),
        }
    }

    /// Whether the object detector is in memory (a lazy one loads when the
    /// first camera with object detection on starts).
    pub fn detector_loaded(&self) -> bool {
        self.shared.detector.is_loaded()
    }

    /// Every new, updated and ended event.
    pub fn subscribe(&self) -> broadcast::Receiver<EventChange> {
        self.shared.changes.subscribe()
    }

    /// Stops every camera's analysis (closing open events).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// An event reported from outside detection (doorbell, API, MQTT).
#[derive(Debug, Clone, Default)]
pub struct Trigger {
    pub camera: Option<String>,
    pub kind: String,
    /// `api`, `mqtt`, …
    pub source: String,
    pub alert: bool,
    pub detail: serde_json::Value,
}

impl EventsHandle {
    pub fn subscribe(&self) -> broadcast::Receiver<EventChange> {
        self.shared.changes.subscribe()
    }

    /// Records an event from outside and attaches a snapshot of that moment
    /// when the camera has a recent picture.
    pub async fn trigger(&self, t: Trigger) -> Result<i64, EventsError> {
        let kind = t.kind.trim();
        if kind.is_empty()
            || kind.len() > 40
            || !kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(EventsError::Invalid(format!(
                "event kind {:?}: use 1–40 lower-case letters, digits, '_' or '-' (e.g. doorbell)",
                t.kind
            )));
        }
        let s = &self.shared;
        let camera = match &t.camera {
            Some(name) => Some(
                s.store
                    .camera_by_name(name)
                    .await?
                    .ok_or_else(|| EventsError::NoCamera(name.clone()))?,
            ),
            None => None,
        };
        let now = s.clock.now();
        let id = details::insert_event(
            &s.store,
            &NewEvent {
                camera_id: camera.as_ref().map(|c| c.id),
                kind: kind.to_owned(),
                source: t.source.clone(),
                alert: t.alert,
                start: Some(now),
                end: Some(now),
                detail: t.detail.clone(),
                ..Default::default()
            },
            now,
        )
        .await?;
        if let Some(cam) = &camera {
            self.attach_snapshot(id, cam.id).await;
        }
        s.announce(EventChange {
            change: "new",
            id,
            camera: camera.as_ref().map(|c| c.name.clone()),
            camera_id: camera.as_ref().map(|c| c.id),
            kind: kind.to_owned(),
            alert: t.alert,
            labels: Vec::new(),
            zones: Vec::new(),
            score: None,
            start: now,
            end: Some(now),
        });
        Ok(id)
    }

    /// Attaches a snapshot of the camera's latest picture (if it is at most
    /// 5 s old) to an existing event — e.g. one the alarm recorded for a
    /// doorbell press. Returns whether one was attached.
    pub async fn attach_snapshot(&self, event_id: i64, camera_id: i64) -> bool {
        let s = &self.shared;
        let latest = s.latest.lock().unwrap().get(&camera_id).cloned();
        let Some(latest) = latest else { return false };
        let frame = latest.lock().unwrap().frame.clone();
        let Some((t_us, frame)) = frame else {
            return false;
        };
        if s.clock.now().as_microsecond() - t_us > 5_000_000 {
            return false;
        }
        let pics = tokio::task::spawn_blocking(move || worker::pictures(&frame))
            .await
            .ok()
            .flatten();
        match pics {
            Some(p) => write_snapshot(s, camera_id, event_id, &p).await,
            None => false,
        }
    }
}

/// Writes an event's snapshot and thumbnail, encrypted to the camera's
/// recipients, and records it on the event.
async fn write_snapshot(s: &Shared, camera_id: i64, event_id: i64, p: &Pictures) -> bool {
    let recipients: Vec<age::x25519::Recipient> = match s.store.camera_recipients(camera_id).await {
        Ok(r) => r.iter().filter_map(|r| r.parse().ok()).collect(),
        Err(e) => {
            tracing::warn!("snapshot: cannot read recipients: {e}");
            return false;
        }
    };
    if recipients.is_empty() {
        tracing::debug!(camera_id, "no one to encrypt the snapshot to; none kept");
        return false;
    }
    let dir = s.opts.data_dir.clone();
    let full = snapshot::relative_path(camera_id, event_id, snapshot::Kind::Full);
    let thumb = snapshot::relative_path(camera_id, event_id, snapshot::Kind::Thumb);
    let (f, t) = (p.full.clone(), p.thumb.clone());
    let (full2, dir2) = (full.clone(), dir.clone());
    let written = tokio::task::spawn_blocking(move || {
        snapshot::write(&dir2, &full2, &f, &recipients)?;
        snapshot::write(&dir2, &thumb, &t, &recipients)
    })
    .await;
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!("snapshot of event {event_id}: {e}");
            return false;
        }
        Err(e) => {
            tracing::warn!("snapshot of event {event_id}: {e}");
            return false;
        }
    }
    if let Err(e) = s
        .store
        .set_event_snapshot(event_id, &full.to_string_lossy())
        .await
    {
        tracing::warn!("snapshot of event {event_id}: {e}");
        return false;
    }
    true
}

type Running = (
    porchlight_store::Camera,
    CameraDetection,
    watch::Sender<bool>,
    JoinHandle<()>,
);

async fn supervise(s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut running: HashMap<i64, Running> = HashMap::new();
    let mut tick = tokio::time::interval(s.opts.poll);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let cams = match s.store.cameras().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("events: reading cameras: {e}");
                continue;
            }
        };
        // Two reads for all cameras, not two per camera, every poll.
        let detections = match s.store.camera_detections().await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("events: reading detection settings: {e}");
                continue;
            }
        };
        let policies = s.store.camera_policies().await;
        if let Err(e) = &policies {
            tracing::warn!("events: reading the cameras' policies: {e}; detecting");
        }
        let mut wanted: HashMap<i64, (porchlight_store::Camera, CameraDetection)> = HashMap::new();
        for c in cams.into_iter().filter(|c| c.enabled) {
            let settings = match detections.get(&c.id).cloned().flatten() {
                Some(v) => match CameraDetection::from_json(&v) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::warn!(camera = %c.name, "{e}; using the defaults");
                        CameraDetection::default()
                    }
                },
                None => CameraDetection::default(),
            };
            // The alarm mode's camera policy and the privacy switch (a
            // camera added since the cameras were read: detect).
            let detect = match &policies {
                Ok(p) => p.get(&c.id).is_none_or(|p| p.detect && !p.privacy),
                Err(_) => true,
            };
            if settings.enabled && detect {
                wanted.insert(c.id, (c, settings));
            }
        }
        let stale: Vec<i64> = running
            .iter()
            .filter(|(id, (cam, set, _, h))| {
                wanted.get(id).is_none_or(|(c, d)| c != cam || d != set) || h.is_finished()
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            if let Some((_, _, stop, h)) = running.remove(&id) {
                let _ = stop.send(true);
                let _ = h.await;
            }
        }
        for (id, (cam, set)) in wanted {
            if running.contains_key(&id) {
                continue;
            }
            let (tx, rx) = watch::channel(false);
            let h = tokio::spawn(watch_camera(s.clone(), cam.clone(), set.clone(), rx));
            running.insert(id, (cam, set, tx, h));
        }
    }
    for (_, (_, _, stop, h)) in running {
        let _ = stop.send(true);
        let _ = h.await;
    }
}

/// Per-camera state on the async side.
struct CameraState {
    camera: porchlight_store::Camera,
    settings: CameraDetection,
    open: Option<OpenEvent>,
    /// The last event with a person, for "package taken by".
    last_person_event: Option<(i64, i64)>,
}

struct OpenEvent {
    id: i64,
    start_us: i64,
    kind: String,
    alert: bool,
    labels: Vec<String>,
    zones: Vec<String>,
    score: Option<f32>,
    objects: Vec<serde_json::Value>,
}

async fn watch_camera(
    s: Arc<Shared>,
    cam: porchlight_store::Camera,
    settings: CameraDetection,
    mut stop: watch::Receiver<bool>,
) {
    let subscribe = |settings: &CameraDetection| match settings.stream.as_str() {
        "main" => s.live.subscribe(cam.id),
        "sub" => s.live.subscribe_sub(cam.id),
        _ => s.live.subscribe_detect(cam.id),
    };
    let mut frames = subscribe(&settings);
    let latest = s.latest.lock().unwrap().entry(cam.id).or_default().clone();
    let (in_tx, in_rx) = std::sync::mpsc::sync_channel::<Input>(30);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Output>();
    // The model is loaded when the first camera that wants objects starts
    // (a hub that only records, or detects motion only, never pays its
    // memory).
    let detector = if settings.objects {
        s.detector.get().await
    } else {
        None
    };
    let with_detector = detector.is_some();
    let worker = Worker {
        camera: cam.name.clone(),
        settings: settings.clone(),
        detector,
        latest,
    };
    let thread = std::thread::Builder::new()
        .name(format!("detect-{}", cam.name))
        .spawn(move || worker.run(in_rx, out_tx));
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(camera = %cam.name, "cannot start detection: {e}");
            return;
        }
    };
    tracing::info!(camera = %cam.name, detector = with_detector, "detection on");
    let mut st = CameraState {
        camera: cam.clone(),
        settings,
        open: None,
        last_person_event: None,
    };
    let mut resync = true;
    let mut clock = FrameClock::default();
    let mut in_tx = Some(in_tx);
    loop {
        tokio::select! {
            f = frames.recv(), if in_tx.is_some() => match f {
                Ok(f) => {
                    if resync && !f.key {
                        continue;
                    }
                    let input = Input {
                        t_us: clock.time_of(f.pts_90k, f.arrival.as_microsecond()),
                        data: f.data.clone(),
                        entry: f.entry.clone(),
                        resync,
                    };
                    resync = false;
                    if let Err(std::sync::mpsc::TrySendError::Full(_)) = in_tx.as_ref().unwrap().try_send(input) {
                        resync = true; // the worker is behind: skip to the next key frame
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => resync = true,
                Err(broadcast::error::RecvError::Closed) => {
                    frames = subscribe(&st.settings);
                    resync = true;
                }
            },
            out = out_rx.recv() => match out {
                Some(out) => handle_output(&s, &mut st, out).await,
                None => break,
            },
            _ = stop.changed() => {
                in_tx = None; // the worker finishes and closes its output
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    tracing::info!(camera = %cam.name, "detection off");
}

/// Wall-clock times of frames from their camera timestamps. A frame's
/// arrival time includes whatever queueing delayed it (network, a busy
/// machine, frames delivered in a burst); its presentation time does not.
/// So a frame's time is its presentation time plus the smallest
/// (arrival − presentation) offset seen on this stream — the least delayed
/// frame's — which keeps frame spacing exact and follows the wall clock.
/// A jump in presentation time (a reconnect) starts over.
#[derive(Default)]
struct FrameClock {
    offset_us: Option<i64>,
    last_pts_us: i64,
}

impl FrameClock {
    fn time_of(&mut self, pts_90k: i64, arrival_us: i64) -> i64 {
        let pts_us = pts_90k.saturating_mul(100) / 9;
        let jump = (pts_us - self.last_pts_us).abs() > 10_000_000;
        self.last_pts_us = pts_us;
        let offset = arrival_us - pts_us;
        let o = match self.offset_us {
            Some(o) if !jump => o.min(offset),
            _ => offset,
        };
        // Never run ahead of the wall clock, and never lag it by a lot.
        let o = o.max(offset - 2_000_000);
        self.offset_us = Some(o);
        pts_us + o
    }
}

fn micros_ts(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

async fn handle_output(s: &Shared, st: &mut CameraState, out: Output) {
    let name = st.camera.name.clone();
    let cam_id = st.camera.id;
    let topic = |leaf: &str| format!("{}/{}/{}", s.opts.prefix, name, leaf);
    let publish = |t: String, retain: bool, p: Vec<u8>| {
        if let Some(m) = &s.mqtt {
            m.publish(&t, retain, p);
        }
    };
    let now = s.clock.now();
    for a in &out.actions {
        match a {
            Action::MotionOn { .. } => publish(topic("motion"), true, b"ON".to_vec()),
            Action::MotionOff { .. } => publish(topic("motion"), true, b"OFF".to_vec()),
            Action::LabelOn { label, .. } => publish(topic(label.as_str()), true, b"ON".to_vec()),
            Action::LabelOff { label, .. } => publish(topic(label.as_str()), true, b"OFF".to_vec()),
            Action::Open {
                start_us,
                kind,
                alert,
                zones,
            } => {
                let detail = serde_json::json!({
                    "labels": [], "preroll_s": st.settings.preroll_s, "postroll_s": st.settings.postroll_s
                });
                match details::insert_event(
                    &s.store,
                    &NewEvent {
                        camera_id: Some(cam_id),
                        kind: kind.clone(),
                        source: "detection".into(),
                        alert: *alert,
                        start: Some(micros_ts(*start_us)),
                        zones: zones.clone(),
                        detail,
                        ..Default::default()
                    },
                    now,
                )
                .await
                {
                    Ok(id) => {
                        st.open = Some(OpenEvent {
                            id,
                            start_us: *start_us,
                            kind: kind.clone(),
                            alert: *alert,
                            labels: Vec::new(),
                            zones: zones.clone(),
                            score: None,
                            objects: Vec::new(),
                        });
                        announce(s, st, "new");
                    }
                    Err(e) => tracing::warn!(camera = %name, "cannot record an event: {e}"),
                }
            }
            Action::Update {
                kind,
                alert,
                zones,
                score,
                labels,
            } => {
                let Some(open) = st.open.as_mut() else {
                    continue;
                };
                open.kind = kind.clone();
                open.alert = *alert;
                open.zones = zones.clone();
                open.score = *score;
                open.labels = labels.clone();
                for o in &out.objects {
                    if open.objects.len() < 20 {
                        open.objects.push(serde_json::json!({
                            "label": o.label.as_str(), "class": o.class, "score": o.score, "bbox": o.bbox,
                        }));
                    }
                }
                if labels.iter().any(|l| l == "person") {
                    st.last_person_event = Some((open.id, out.t_us));
                }
                let detail = serde_json::json!({
                    "labels": open.labels, "objects": open.objects,
                    "preroll_s": st.settings.preroll_s, "postroll_s": st.settings.postroll_s,
                });
                // The whole current state, sealed again to the recipients
                // of now (nobody on the hub can read the old details).
                let u = NewEvent {
                    camera_id: Some(cam_id),
                    kind: kind.clone(),
                    source: "detection".into(),
                    alert: *alert,
                    score: score.map(|s| s as f64),
                    zones: zones.clone(),
                    detail,
                    ..Default::default()
                };
                let id = open.id;
                if let Err(e) = details::update_event(&s.store, id, &u).await {
                    tracing::warn!(camera = %name, "cannot update event {id}: {e}");
                }
                announce(s, st, "update");
            }
            Action::Snapshot => {
                if let (Some(open), Some(p)) = (&st.open, &out.pictures) {
                    let id = open.id;
                    write_snapshot(s, cam_id, id, p).await;
                    if s.opts.mqtt_snapshots {
                        publish(topic("snapshot"), false, p.full.clone());
                    }
                }
            }
            Action::Close { end_us } => {
                if let Some(open) = st.open.take() {
                    let end = micros_ts((*end_us).max(open.start_us));
                    if let Err(e) = s.store.end_event(open.id, end).await {
                        tracing::warn!(camera = %name, "cannot end event {}: {e}", open.id);
                    }
                    s.announce(change_of(st, &open, "end", Some(end)));
                }
            }
        }
    }
    for p in &out.parcels {
        let (kind, t_us, detail) = match p {
            ParcelAction::Delivered {
                bbox, score, t_us, ..
            } => (
                "package_delivered",
                *t_us,
                serde_json::json!({"labels": ["parcel"], "bbox": bbox, "score": score}),
            ),
            ParcelAction::Taken {
                bbox,
                t_us,
                delivered_us,
                person_seen_us,
                ..
            } => {
                let person_event = st
                    .last_person_event
                    .filter(|(_, at)| {
                        person_seen_us.is_some_and(|p| (p - at).abs() < 120_000_000)
                            || t_us - at < 60_000_000
                    })
                    .map(|(id, _)| id);
                (
                    "package_taken",
                    *t_us,
                    serde_json::json!({
                        "labels": ["parcel"], "bbox": bbox,
                        "delivered_at": micros_ts(*delivered_us),
                        "person_seen_at": person_seen_us.map(micros_ts),
                        "person_event": person_event,
                    }),
                )
            }
        };
        let at = micros_ts(t_us);
        let score = match p {
            ParcelAction::Delivered { score, .. } => Some(*score as f64),
            _ => None,
        };
        let ev = NewEvent {
            camera_id: Some(cam_id),
            kind: kind.into(),
            source: "detection".into(),
            alert: st
                .settings
                .alert_labels
                .iter()
                .any(|l| l == "parcel" || l == "package"),
            start: Some(at),
            end: Some(at),
            score,
            detail,
            ..Default::default()
        };
        match details::insert_event(&s.store, &ev, now).await {
            Ok(id) => {
                if let Some(p) = &out.pictures {
                    write_snapshot(s, cam_id, id, p).await;
                }
                let change = EventChange {
                    change: "new",
                    id,
                    camera: Some(name.clone()),
                    camera_id: Some(cam_id),
                    kind: kind.into(),
                    alert: ev.alert,
                    labels: vec!["parcel".into()],
                    zones: Vec::new(),
                    score: score.map(|s| s as f32),
                    start: at,
                    end: Some(at),
                };
                s.announce(change);
            }
            Err(e) => tracing::warn!(camera = %name, "cannot record {kind}: {e}"),
        }
    }
}

fn change_of(
    st: &CameraState,
    open: &OpenEvent,
    change: &'static str,
    end: Option<jiff::Timestamp>,
) -> EventChange {
    EventChange {
        change,
        id: open.id,
        camera: Some(st.camera.name.clone()),
        camera_id: Some(st.camera.id),
        kind: open.kind.clone(),
        alert: open.alert,
        labels: open.labels.clone(),
        zones: open.zones.clone(),
        score: open.score,
        start: micros_ts(open.start_us),
        end,
    }
}

impl Shared {
    /// Tells the rest of the hub (notifications) and MQTT
    /// (`<prefix>/<camera>/events`, one JSON shape for every source) about
    /// a new, updated or ended event.
    fn announce(&self, c: EventChange) {
        if let (Some(m), Some(cam)) = (&self.mqtt, &c.camera) {
            m.publish(
                &format!("{}/{}/events", self.opts.prefix, cam),
                false,
                serde_json::to_vec(&c).unwrap_or_default(),
            );
        }
        let _ = self.changes.send(c);
    }
}

/// Announces the camera's open event.
fn announce(s: &Shared, st: &CameraState, change: &'static str) {
    if let Some(open) = &st.open {
        s.announce(change_of(st, open, change, None));
    }
}
