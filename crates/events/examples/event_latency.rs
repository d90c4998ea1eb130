//! Event-to-MQTT latency benchmark (issue 5; run by `bench/event_latency.sh`).
//!
//! Measures, over many motion onsets, the time from the first frame that
//! shows motion to the moment an MQTT client holds the
//! `<prefix>/<camera>/motion` `ON` message — through the real path: a
//! synthetic camera renders and encodes 640x360 H.264 at 15 fps in real
//! time, the hub's RTSP server serves it, the recorder receives it over
//! RTSP (retina), the event path decodes and analyses it (default
//! detection settings, the vendored object detector), publishes through a
//! rumqttc client (QoS 1, as the alarm's broker link does) to the broker at
//! 127.0.0.1:1883, and a separate client — its own thread and runtime, as
//! another process would be — receives it.
//!
//! Each camera shows its empty porch (with sensor noise); every `period`
//! seconds a person appears in it (the first frame with the figure is the
//! onset: its capture time is the truth) and walks for 1.2 s, then is
//! gone; the scene then stays still until motion is OFF again. Cameras are
//! staggered, and each onset is shifted by 0–2 frames so it falls on every
//! position of the 5 fps analysis grid.
//!
//! Where the time goes comes from the pipeline itself: the recorder's
//! arrival time of the onset frame (a subscriber to the live hub), and the
//! worker's trace events `decoded`, `motion` and `analysed` (caught by a
//! tracing layer, timestamped when emitted), and the publish call.
//!
//! The peer (camera 0 only, unless `--no-peer`): `ffmpeg` receives the
//! same RTSP stream, decodes every frame and prints each frame's mean luma
//! over the patch where the figure appears (`crop,showinfo`); the first
//! frame whose mean jumps is its "detection". That is the floor of
//! transport + decoding with no analysis at all.
//!
//! Not a test: nothing is asserted; it prints a Markdown table.
//!
//! ```text
//! cargo run --release -p porchlight-events --example event_latency -- \
//!     [--cameras 4] [--trials 100] [--period 8] [--no-objects] [--no-peer] [--tsv FILE]
//! ```

use std::collections::HashMap;
use std::io::BufRead;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use porchlight_base::clock;
use porchlight_demo::encode::{sample_entry, H264Encoder, FPS};
use porchlight_demo::render::{self, Image};
use porchlight_demo::{sprites, Scene};
use porchlight_events::{Events, EventsOptions, Publish};
use porchlight_recorder::{LiveFrame, Recorder, RecorderOptions};
use porchlight_store::{NewCamera, Role, Store};
use porchlight_vault::keys::KdfParams;
use porchlight_vault::{Actor, Policy, Vault};
use tokio::sync::broadcast;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

const BROKER: &str = "127.0.0.1:1883";
const W: usize = 640;
const H: usize = 360;
/// How long the figure stays (frames): 1.2 s.
const VISIBLE_FRAMES: u32 = 18;
/// The figure walks this many pixels per frame (45 px/s).
const STEP_PX: i32 = 3;
/// Where the figure appears (its left edge).
const FIGURE_X: i32 = 260;
const FRAME_US: i64 = 1_000_000 / FPS as i64;

struct Args {
    cameras: usize,
    trials: usize,
    period_s: f64,
    objects: bool,
    peer: bool,
    tsv: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        cameras: 4,
        trials: 100,
        period_s: 8.0,
        objects: true,
        peer: true,
        tsv: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--cameras" => {
                let v = value("--cameras")?;
                a.cameras = v.parse().map_err(|_| format!("--cameras {v:?}: not a whole number"))?;
                if !(1..=16).contains(&a.cameras) {
                    return Err(format!("--cameras {}: use 1 to 16", a.cameras));
                }
            }
            "--trials" => {
                let v = value("--trials")?;
                a.trials = v.parse().map_err(|_| format!("--trials {v:?}: not a whole number"))?;
                if !(1..=5000).contains(&a.trials) {
                    return Err(format!("--trials {}: use 1 to 5000", a.trials));
                }
            }
            "--period" => {
                let v = value("--period")?;
                a.period_s = v.parse().map_err(|_| format!("--period {v:?}: not a number of seconds"))?;
                // Motion must be OFF again before the next onset: 1.2 s of
                // walking + the default 5 s post-roll + some slack.
                if !(a.period_s.is_finite() && (7.0..=120.0).contains(&a.period_s)) {
                    return Err(format!("--period {v}: use 7 to 120 s (motion must be OFF again before the next onset: 1.2 s of walking + the 5 s post-roll)"));
                }
            }
            "--no-objects" => a.objects = false,
            "--no-peer" => a.peer = false,
            "--tsv" => a.tsv = Some(value("--tsv")?.into()),
            "-h" | "--help" => {
                return Err("usage: event_latency [--cameras N] [--trials N] [--period SECONDS] [--no-objects] [--no-peer] [--tsv FILE]".into())
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(a)
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// A hash of a frame's last NAL unit (the slice), to recognise the same
/// frame after the RTSP round trip (parameter sets may be added or dropped
/// in front of it).
fn slice_hash(data: &[u8]) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut last = None;
    let mut i = 0usize;
    while i + 4 <= data.len() {
        let n = u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as usize;
        let end = (i + 4).checked_add(n)?;
        if end > data.len() {
            return None;
        }
        last = Some(&data[i + 4..end]);
        i = end;
    }
    let mut h = std::hash::DefaultHasher::new();
    last?.hash(&mut h);
    Some(h.finish())
}

/// One motion onset as the camera made it.
#[derive(Clone)]
struct Onset {
    cam: usize,
    cycle: u32,
    /// Wall-clock capture time of the first frame showing the figure
    /// (rendered, about to be encoded), µs since the epoch.
    capture_us: i64,
    slice: Option<u64>,
}

/// What everybody records, with wall-clock times in µs.
#[derive(Default)]
struct Log {
    onsets: Vec<Onset>,
    /// (camera, onset index) → the recorder's arrival time of the onset frame.
    arrival: HashMap<(usize, usize), i64>,
    /// camera name → (stage, frame t_us, when, extra)
    trace: HashMap<String, Vec<(Stage, i64, i64, u64)>>,
    /// camera name → when `motion ON` was handed to the MQTT client.
    published: HashMap<String, Vec<i64>>,
    /// camera name → when the listening client had `motion ON`.
    received: HashMap<String, Vec<i64>>,
    /// When ffmpeg printed a frame whose patch mean jumped.
    peer: Vec<i64>,
}

type Shared = Arc<Mutex<Log>>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Decoded,
    Motion,
    Analysed,
}

/// Catches the worker's trace events (target `porchlight_events::worker`).
struct Probe(Shared);

#[derive(Default)]
struct Fields {
    message: Option<String>,
    camera: Option<String>,
    t_us: Option<i64>,
    us: u64,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "camera" => self.camera = Some(format!("{value:?}")),
            _ => {}
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_owned()),
            "camera" => self.camera = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        if field.name() == "t_us" {
            self.t_us = Some(value);
        }
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "us" => self.us = value,
            "t_us" => self.t_us = Some(value as i64),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Probe {
    fn on_event(&self, ev: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let at = now_us();
        let mut f = Fields::default();
        ev.record(&mut f);
        let stage = match f.message.as_deref() {
            Some("decoded") => Stage::Decoded,
            Some("motion") => Stage::Motion,
            Some("analysed") => Stage::Analysed,
            _ => return,
        };
        // `analysed` carries no frame time: it belongs to the frame of the
        // camera's previous `motion` event (one thread per camera).
        if let Some(cam) = f.camera {
            let t = f.t_us.unwrap_or(i64::MIN);
            self.0
                .lock()
                .unwrap()
                .trace
                .entry(cam)
                .or_default()
                .push((stage, t, at, f.us));
        }
    }
}

/// A synthetic camera: the empty porch with noise, and a person who
/// appears every `period` frames once armed.
struct SimCam {
    frames: broadcast::Sender<Arc<LiveFrame>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Adds pseudo-random noise of ±`amp` to the luma plane (sensor noise).
fn add_noise(img: &mut Image, seed: u64, amp: i32) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for p in img.y.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let d = (x % (2 * amp as u64 + 1)) as i32 - amp;
        *p = (*p as i32 + d).clamp(16, 235) as u8;
    }
}

/// The frame (within a cycle) at which the figure appears: 0–2, so onsets
/// fall on every position of the 5 fps (every third frame) analysis grid.
fn jitter(cam: usize, cycle: u32) -> u32 {
    let x = (cam as u64 * 7919 + u64::from(cycle) * 104_729).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((x >> 33) % 3) as u32
}

fn figure_y() -> i32 {
    340 - sprites::visitor().height as i32
}

impl SimCam {
    /// `armed` says from which frame on onsets happen (set once the hub is
    /// ready); `phase` staggers the cameras.
    fn start(
        cam: usize,
        cycles: u32,
        period: u32,
        phase: u32,
        go: Arc<AtomicBool>,
        log: Shared,
    ) -> SimCam {
        let (frames, _) = broadcast::channel(64);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (tx, stop) = (frames.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("sim-cam{cam}"))
                .spawn(move || {
                    let bg = render::background(Scene::FrontDoor);
                    let mut enc = H264Encoder::new(W, H).expect("the OpenH264 encoder starts");
                    let mut entry = None;
                    let t0 = Instant::now();
                    let period_d = Duration::from_secs(1) / FPS;
                    let mut n: u32 = 0;
                    let mut base: Option<u32> = None;
                    let mut recorded_cycle: Option<u32> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let due = t0 + period_d * n;
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                        if base.is_none() && go.load(Ordering::Relaxed) {
                            base = Some(n + FPS + phase);
                        }
                        let mut img = bg.clone();
                        // Is the figure in this frame?
                        let mut shown = None;
                        if let Some(b) = base.filter(|b| n >= *b) {
                            let k = n - b;
                            let (cycle, within) = (k / period, k % period);
                            let start = jitter(cam, cycle);
                            if cycle < cycles && within >= start && within < start + VISIBLE_FRAMES
                            {
                                let s = sprites::visitor();
                                let x = FIGURE_X + STEP_PX * (within - start) as i32;
                                sprites::blit(&mut img, s, x, figure_y());
                                shown = Some(cycle);
                            }
                        }
                        add_noise(&mut img, u64::from(n) + 1000 * cam as u64, 2);
                        let capture_us = now_us();
                        if let Some(f) = enc.encode(&img).expect("encoding a frame") {
                            if let (Some(sps), Some(pps)) = (&f.sps, &f.pps) {
                                entry = Some(Arc::new(sample_entry(sps, pps, W as u16, H as u16)));
                            }
                            if let Some(e) = &entry {
                                if let Some(cycle) = shown.filter(|c| recorded_cycle != Some(*c)) {
                                    recorded_cycle = Some(cycle);
                                    log.lock().unwrap().onsets.push(Onset {
                                        cam,
                                        cycle,
                                        capture_us,
                                        slice: slice_hash(&f.data),
                                    });
                                }
                                let _ = tx.send(Arc::new(LiveFrame {
                                    pts_90k: i64::from(n) * 90_000 / i64::from(FPS),
                                    key: f.key,
                                    data: f.data.into(),
                                    entry: e.clone(),
                                    arrival: jiff::Timestamp::now(),
                                }));
                            }
                        }
                        n += 1;
                    }
                })
                .expect("a thread for the camera")
        };
        SimCam {
            frames,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SimCam {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The hub's MQTT link: QoS 1 `try_publish`, like
/// `porchlight_alarm::MqttPublisher`; records when `motion ON` is handed over.
struct HubMqtt {
    client: rumqttc::AsyncClient,
    log: Shared,
}

impl Publish for HubMqtt {
    fn publish(&self, topic: &str, retain: bool, payload: Vec<u8>) {
        if payload == b"ON" && topic.ends_with("/motion") {
            let cam = topic.rsplit('/').nth(1).unwrap_or("").to_owned();
            self.log
                .lock()
                .unwrap()
                .published
                .entry(cam)
                .or_default()
                .push(now_us());
        }
        if let Err(e) = self
            .client
            .try_publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload)
        {
            eprintln!("warning: cannot queue an MQTT message on {topic}: {e}");
        }
    }
}

/// The hub's client, driven on the main runtime; returns once connected.
async fn hub_client(id: &str) -> Result<rumqttc::AsyncClient, String> {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", 1883);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = rumqttc::AsyncClient::new(o, 1024);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("warning: hub MQTT connection: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), ready_rx)
        .await
        .map_err(|_| format!("no answer from the MQTT broker at {BROKER} within 5 s"))?
        .map_err(|_| "the hub's MQTT client stopped".to_string())?;
    Ok(client)
}

/// The listening client, on its own thread and runtime (like another
/// process); returns once its subscription is acknowledged. Sending on (or
/// dropping) the returned sender stops it.
fn listener(
    id: String,
    filter: String,
    log: Shared,
) -> Result<
    (
        std::thread::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    ),
    String,
> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let t = std::thread::Builder::new()
        .name("mqtt-listener".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", 1883);
                o.set_keep_alive(Duration::from_secs(5));
                let (client, mut ev) = rumqttc::AsyncClient::new(o, 100);
                loop {
                    let polled = tokio::select! {
                        p = ev.poll() => p,
                        _ = &mut stop_rx => break,
                    };
                    match polled {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            let at = now_us();
                            if &p.payload[..] == b"ON" {
                                let cam = p.topic.rsplit('/').nth(1).unwrap_or("").to_owned();
                                log.lock()
                                    .unwrap()
                                    .received
                                    .entry(cam)
                                    .or_default()
                                    .push(at);
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            let _ = client
                                .subscribe(filter.clone(), rumqttc::QoS::AtLeastOnce)
                                .await;
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            let _ = ready_tx.send(());
                        }
                        Ok(_) => {}
                        Err(e) => {
                            eprintln!("warning: listener MQTT connection: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                }
                let _ = client.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_millis(500), ev.poll()).await;
            });
        })
        .map_err(|e| format!("cannot start the listener thread: {e}"))?;
    ready_rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
        format!("the listening MQTT client got no subscription from {BROKER} within 5 s")
    })?;
    Ok((t, stop_tx))
}

/// The ffmpeg peer: decodes the RTSP stream and prints each frame's mean
/// luma over the figure's patch; a reader thread timestamps the jumps.
struct Peer {
    child: std::process::Child,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The patch where the figure appears (even x, y, w, h for 4:2:0).
fn patch_rect() -> (i32, i32, i32, i32) {
    let s = sprites::visitor();
    let x = (FIGURE_X - 10) & !1;
    let y = (figure_y() - 4).max(0) & !1;
    let w = ((s.width as i32 + 20) & !1).min(W as i32 - x);
    let h = ((s.height as i32 + 8) & !1).min(H as i32 - y);
    (x, y, w, h)
}

/// How much the figure changes the patch's mean luma (on the raw picture).
fn patch_shift() -> f64 {
    let bg = render::background(Scene::FrontDoor);
    let mut fig = bg.clone();
    sprites::blit(&mut fig, sprites::visitor(), FIGURE_X, figure_y());
    let (x, y, w, h) = patch_rect();
    let mean = |img: &Image| {
        let mut sum = 0u64;
        for r in y..y + h {
            for c in x..x + w {
                sum += u64::from(img.y[r as usize * W + c as usize]);
            }
        }
        sum as f64 / f64::from(w * h)
    };
    (mean(&fig) - mean(&bg)).abs()
}

fn start_peer(url: &str, threshold: f64, log: Shared) -> Result<Peer, String> {
    let (x, y, w, h) = patch_rect();
    let mut child = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info"])
        .args(["-rtsp_transport", "tcp", "-fflags", "nobuffer", "-flags", "low_delay", "-threads", "1"])
        .args(["-i", url, "-an", "-vf", &format!("crop={w}:{h}:{x}:{y},showinfo"), "-f", "null", "-"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg for the peer measurement: {e} (install ffmpeg, or pass --no-peer)"))?;
    let stderr = child.stderr.take().expect("piped");
    let reader = std::thread::Builder::new()
        .name("ffmpeg-peer".into())
        .spawn(move || {
            let mut prev: Option<f64> = None;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let at = now_us();
                let Some(i) = line.find(" mean:[") else {
                    continue;
                };
                let Some(y) = line[i + 7..]
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.trim_end_matches(']').parse::<f64>().ok())
                else {
                    continue;
                };
                if prev.is_some_and(|p| (y - p).abs() >= threshold) {
                    log.lock().unwrap().peer.push(at);
                }
                prev = Some(y);
            }
        })
        .map_err(|e| format!("cannot start the peer's reader: {e}"))?;
    Ok(Peer {
        child,
        reader: Some(reader),
    })
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// One onset's measurements, µs after the onset frame's capture.
#[derive(Default, Clone)]
struct Trial {
    cam: usize,
    cycle: u32,
    capture_us: i64,
    arrival: Option<i64>,
    decoded: Option<i64>,
    motion: Option<i64>,
    analysed: Option<i64>,
    /// The worker's own measure of the analysis (motion + detector + JPEG).
    analysis_work: Option<i64>,
    published: Option<i64>,
    received: Option<i64>,
    /// Received, after the analysed frame's pipeline timestamp (what the
    /// event's start is; the scenes test's figure).
    received_after_frame_ts: Option<i64>,
    /// Frames between the onset and the frame motion was decided on.
    frames_waited: Option<i64>,
    /// Pipeline timestamp of the onset frame minus its capture time.
    clock_offset: Option<i64>,
    peer: Option<i64>,
}

fn analyse(log: &Log, names: &[String], period_us: i64) -> Vec<Trial> {
    let mut out = Vec::new();
    for (idx, o) in log.onsets.iter().enumerate() {
        let name = &names[o.cam];
        let t0 = o.capture_us;
        let window = t0..t0 + period_us - 1_000_000;
        let first_after = |v: Option<&Vec<i64>>| {
            v.and_then(|v| v.iter().copied().find(|t| window.contains(t)))
                .map(|t| t - t0)
        };
        let mut tr = Trial {
            cam: o.cam,
            cycle: o.cycle,
            capture_us: t0,
            ..Default::default()
        };
        tr.arrival = log.arrival.get(&(o.cam, idx)).map(|a| a - t0);
        tr.published = first_after(log.published.get(name));
        tr.received = first_after(log.received.get(name));
        let trace: &[(Stage, i64, i64, u64)] = log.trace.get(name).map(|v| &v[..]).unwrap_or(&[]);
        // The onset frame's pipeline timestamp: the first decoded frame
        // stamped after the previous frame's capture.
        let onset_ts = trace
            .iter()
            .filter(|(s, t, _, _)| *s == Stage::Decoded && *t > t0 - FRAME_US / 2)
            .map(|(_, t, _, _)| *t)
            .min();
        tr.clock_offset = onset_ts.map(|t| t - t0);
        let motion_at = trace.iter().position(|(s, t, at, _)| {
            *s == Stage::Motion && *t > t0 - FRAME_US / 2 && window.contains(at)
        });
        if let Some(mi) = motion_at {
            let (_, ts, at, _) = trace[mi];
            tr.motion = Some(at - t0);
            tr.decoded = trace[..mi]
                .iter()
                .rev()
                .find(|(s, t, _, _)| *s == Stage::Decoded && *t == ts)
                .map(|x| x.2 - t0);
            if let Some(a) = trace[mi..]
                .iter()
                .find(|(s, _, _, _)| *s == Stage::Analysed)
            {
                tr.analysed = Some(a.2 - t0);
                tr.analysis_work = Some(a.3 as i64);
            }
            tr.frames_waited = onset_ts.map(|o| ((ts - o) as f64 / FRAME_US as f64).round() as i64);
            tr.received_after_frame_ts = tr.received.map(|r| r + t0 - ts);
        }
        if o.cam == 0 {
            tr.peer = log
                .peer
                .iter()
                .copied()
                .find(|t| window.contains(t))
                .map(|t| t - t0);
        }
        out.push(tr);
    }
    out
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[i64], p: f64) -> i64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(us: i64) -> String {
    format!("{:.0}", us as f64 / 1000.0)
}

fn row(what: &str, vals: impl Iterator<Item = Option<i64>>, of: usize) -> String {
    let mut v: Vec<i64> = vals.flatten().collect();
    if v.is_empty() {
        return format!("| {what} | – | – | – | – | 0 of {of} |");
    }
    v.sort_unstable();
    format!(
        "| {what} | {} | {} | {} | {} | {} of {of} |",
        ms(pct(&v, 50.0)),
        ms(pct(&v, 90.0)),
        ms(pct(&v, 99.0)),
        ms(*v.last().unwrap()),
        v.len()
    )
}

fn diff(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a? - b?)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("event_latency: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("event_latency: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("event_latency: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if std::net::TcpStream::connect_timeout(&BROKER.parse().unwrap(), Duration::from_secs(1))
        .is_err()
    {
        return Err(format!("no MQTT broker at {BROKER} (start Mosquitto)"));
    }
    let log: Shared = Arc::default();
    tracing_subscriber::registry()
        .with(
            Probe(log.clone()).with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("porchlight_events::worker", tracing::Level::TRACE),
            ),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                ),
        )
        .init();
    let load_start = loadavg();
    let started = jiff::Timestamp::now();

    let detector = if args.objects {
        let d = tokio::task::spawn_blocking(porchlight_detect::Detector::load_default)
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("the object detector: {e} (or pass --no-objects)"))?;
        Some(Arc::new(d))
    } else {
        None
    };

    let dir = tempfile::tempdir().map_err(|e| format!("a temporary directory: {e}"))?;
    let store = Store::open(dir.path()).await.map_err(|e| e.to_string())?;
    let clock = clock::system();
    // An owner, so recordings and snapshots have someone to be encrypted to.
    let vault = Vault::new(
        store.clone(),
        clock.clone(),
        Policy {
            kdf: KdfParams::insecure_for_tests(),
            require_totp_for_owners: false,
            ..Policy::default()
        },
    );
    vault
        .create_user("owner", Role::Owner, "correct horse battery", &Actor::cli())
        .await
        .map_err(|e| e.to_string())?;

    // The cameras.
    let period = (args.period_s * f64::from(FPS)).round() as u32;
    let cycles = args.trials.div_ceil(args.cameras) as u32;
    let go = Arc::new(AtomicBool::new(false));
    let names: Vec<String> = (0..args.cameras).map(|i| format!("cam{i}")).collect();
    let cams: Vec<SimCam> = (0..args.cameras)
        .map(|i| {
            SimCam::start(
                i,
                cycles,
                period,
                (period * i as u32 / args.cameras as u32) / 3 * 3,
                go.clone(),
                log.clone(),
            )
        })
        .collect();

    let rtsp = porchlight_restream::RtspServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .map_err(|e| format!("the RTSP server: {e}"))?;
    let addr = rtsp.local_addr();
    for (name, cam) in names.iter().zip(&cams) {
        rtsp.sources().add(
            &format!("bench/{name}"),
            porchlight_restream::Source {
                frames: cam.frames.clone(),
                credentials: None,
            },
        );
    }
    let (stop_rtsp, rtsp_stopped) = tokio::sync::oneshot::channel::<()>();
    let rtsp_task = tokio::spawn(rtsp.serve(None, async move {
        let _ = rtsp_stopped.await;
    }));
    let mut ids = Vec::new();
    for name in &names {
        let c = store
            .create_camera(
                &NewCamera {
                    name: name.clone(),
                    main_url: format!("rtsp://{addr}/bench/{name}"),
                    ..Default::default()
                },
                clock.now(),
            )
            .await
            .map_err(|e| e.to_string())?;
        ids.push(c.id);
    }
    let (recorder, _) = Recorder::start(store.clone(), clock.clone(), RecorderOptions::default())
        .await
        .map_err(|e| format!("the recorder: {e}"))?;

    // When each onset frame reached the hub.
    let mut taps = Vec::new();
    for (ci, id) in ids.iter().enumerate() {
        let mut rx = recorder.live().subscribe(*id);
        let log = log.clone();
        taps.push(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(f) => {
                        let Some(h) = slice_hash(&f.data) else {
                            continue;
                        };
                        let mut l = log.lock().unwrap();
                        let found = l
                            .onsets
                            .iter()
                            .rposition(|o| o.cam == ci && o.slice == Some(h));
                        if let Some(i) = found {
                            l.arrival
                                .entry((ci, i))
                                .or_insert(f.arrival.as_microsecond());
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }));
    }

    // MQTT.
    let prefix = format!("porchlight-bench-{}", std::process::id());
    let (listen, stop_listener) = listener(
        format!("{prefix}-listener"),
        format!("{prefix}/+/motion"),
        log.clone(),
    )?;
    let hub = hub_client(&format!("{prefix}-hub")).await?;
    let mut opts = EventsOptions::new(dir.path().to_path_buf());
    opts.poll = Duration::from_millis(300);
    opts.prefix = prefix.clone();
    let events = Events::start(
        store.clone(),
        clock.clone(),
        recorder.live(),
        detector,
        Some(Arc::new(HubMqtt {
            client: hub.clone(),
            log: log.clone(),
        }) as Arc<dyn Publish>),
        opts,
    )
    .await;

    let shift = patch_shift();
    let peer = if args.peer {
        Some(start_peer(
            &format!("rtsp://{addr}/bench/{}", names[0]),
            (shift / 2.0).max(1.5),
            log.clone(),
        )?)
    } else {
        None
    };

    // Ready when every camera's frames are being decoded; then the motion
    // detector's 1 s settle passes before the first onset (the cameras
    // start a second after `go`, plus their phase).
    let ready_by = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = {
            let l = log.lock().unwrap();
            names.iter().all(|n| {
                l.trace
                    .get(n)
                    .is_some_and(|v| v.iter().any(|x| x.0 == Stage::Decoded))
            })
        };
        if ready {
            break;
        }
        if Instant::now() > ready_by {
            return Err("the event path decoded nothing from some camera within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    go.store(true, Ordering::Relaxed);
    let total_s = 1.0 + args.period_s * f64::from(cycles) + 1.0;
    eprintln!(
        "event_latency: {} camera(s), {} onset(s) each, every {:.1} s: about {:.0} s{}",
        args.cameras,
        cycles,
        args.period_s,
        total_s,
        if args.peer {
            format!(
                "; peer: ffmpeg on {} (patch mean jump ≥ {:.1})",
                names[0],
                (shift / 2.0).max(1.5)
            )
        } else {
            String::new()
        }
    );
    let until = Instant::now() + Duration::from_secs_f64(total_s);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Stop everything; clear the retained topics this run left on the broker.
    drop(peer);
    events.shutdown().await;
    recorder.shutdown().await;
    let _ = stop_rtsp.send(());
    let _ = rtsp_task.await;
    for t in taps {
        t.abort();
    }
    drop(cams);
    for name in &names {
        for leaf in ["motion", "person", "vehicle", "animal", "parcel"] {
            let _ = hub
                .publish(
                    format!("{prefix}/{name}/{leaf}"),
                    rumqttc::QoS::AtLeastOnce,
                    true,
                    Vec::<u8>::new(),
                )
                .await;
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = hub.disconnect().await;
    let _ = stop_listener.send(());
    let _ = listen.join();
    let load_end = loadavg();

    let log = log.lock().unwrap();
    let trials = analyse(&log, &names, (args.period_s * 1e6) as i64);
    report(&args, &trials, started, &load_start, &load_end, shift);
    if let Some(path) = &args.tsv {
        write_tsv(path, &trials).map_err(|e| format!("writing {}: {e}", path.display()))?;
        eprintln!("event_latency: per-onset figures in {}", path.display());
    }
    Ok(())
}

fn report(
    args: &Args,
    trials: &[Trial],
    started: jiff::Timestamp,
    load_start: &str,
    load_end: &str,
    shift: f64,
) {
    let n = trials.len();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("?").trim().to_owned())
        })
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    println!(
        "Run of {} on {cores} × {cpu}; load average {load_start} at start, {load_end} at end. \
         {} camera(s) at {W}x{H} {FPS} fps (H.264 baseline, OpenH264, 500 kbit/s), {n} motion onsets, \
         default detection settings{}; MQTT QoS 1 through {BROKER}. Times in ms after the capture of the first frame showing the figure; \
         each row is its own distribution (p50/p90/p99/max, nearest rank).\n",
        started.strftime("%Y-%m-%d %H:%M UTC"),
        args.cameras,
        if args.objects { " with the object detector" } else { ", no object detector (--no-objects)" },
    );
    println!("| stage reached | p50 | p90 | p99 | max | onsets |");
    println!("|---|--:|--:|--:|--:|--:|");
    println!(
        "{}",
        row(
            "onset frame received by the hub (RTSP)",
            trials.iter().map(|t| t.arrival),
            n
        )
    );
    println!(
        "{}",
        row(
            "first analysed frame with the figure decoded",
            trials.iter().map(|t| t.decoded),
            n
        )
    );
    println!(
        "{}",
        row("motion decided on it", trials.iter().map(|t| t.motion), n)
    );
    println!(
        "{}",
        row(
            "its analysis done (object detector, snapshot JPEG)",
            trials.iter().map(|t| t.analysed),
            n
        )
    );
    println!(
        "{}",
        row(
            "motion ON handed to the MQTT client",
            trials.iter().map(|t| t.published),
            n
        )
    );
    println!(
        "{}",
        row(
            "**motion ON received by a subscriber**",
            trials.iter().map(|t| t.received),
            n
        )
    );
    println!(
        "{}",
        row(
            "received, after the analysed frame's timestamp (the event start)",
            trials.iter().map(|t| t.received_after_frame_ts),
            n
        )
    );
    println!();
    println!("Where the time goes (per onset, the step between two stages):\n");
    println!("| step | p50 | p90 | p99 | max | onsets |");
    println!("|---|--:|--:|--:|--:|--:|");
    println!(
        "{}",
        row(
            "camera encode + RTSP to the hub",
            trials.iter().map(|t| t.arrival),
            n
        )
    );
    println!(
        "{}",
        row(
            "wait for the analysed frame (5 fps grid), queue, decode",
            trials.iter().map(|t| diff(t.decoded, t.arrival)),
            n
        )
    );
    println!(
        "{}",
        row(
            "luma plane + motion analysis",
            trials.iter().map(|t| diff(t.motion, t.decoded)),
            n
        )
    );
    println!(
        "{}",
        row(
            "object detector + snapshot JPEG (before the hand-off)",
            trials.iter().map(|t| diff(t.analysed, t.motion)),
            n
        )
    );
    println!(
        "{}",
        row(
            "hand-off to the async side, publish call",
            trials.iter().map(|t| diff(t.published, t.analysed)),
            n
        )
    );
    println!(
        "{}",
        row(
            "MQTT: client → Mosquitto → subscriber",
            trials.iter().map(|t| diff(t.received, t.published)),
            n
        )
    );
    println!(
        "{}",
        row(
            "(the worker's own clock: motion + detector + JPEG)",
            trials.iter().map(|t| t.analysis_work),
            n
        )
    );
    if args.peer {
        let cam0: Vec<&Trial> = trials.iter().filter(|t| t.cam == 0).collect();
        let m = cam0.len();
        println!();
        println!("Peer on the same onsets of cam0 (same run, same RTSP server):\n");
        println!("| cam0 onsets | p50 | p90 | p99 | max | onsets |");
        println!("|---|--:|--:|--:|--:|--:|");
        println!(
            "{}",
            row(
                "ffmpeg: RTSP + decode + patch-mean jump printed",
                cam0.iter().map(|t| t.peer),
                m
            )
        );
        println!(
            "{}",
            row(
                "hub: onset frame received (RTSP)",
                cam0.iter().map(|t| t.arrival),
                m
            )
        );
        println!(
            "{}",
            row("hub: motion decided", cam0.iter().map(|t| t.motion), m)
        );
        println!(
            "{}",
            row(
                "hub: motion ON received over MQTT",
                cam0.iter().map(|t| t.received),
                m
            )
        );
    }
    println!();
    let mut waited = [0usize; 4];
    for t in trials {
        if let Some(k) = t.frames_waited {
            waited[(k.clamp(0, 3)) as usize] += 1;
        }
    }
    let rec: Vec<i64> = trials.iter().filter_map(|t| t.received).collect();
    let within = rec.iter().filter(|&&r| r <= 500_000).count();
    println!(
        "* **{within} of {n}** onsets had motion ON at the subscriber within 500 ms of the onset frame's capture (target ≤ 500 ms); {} had none within {:.0} s.",
        n - rec.len(),
        args.period_s - 1.0
    );
    println!(
        "* Motion was decided on the onset frame itself in {} onsets, one frame later in {}, two in {}, three or more in {} (the 5 fps grid: every third frame is analysed until something moves).",
        waited[0], waited[1], waited[2], waited[3]
    );
    let mut off: Vec<i64> = trials.iter().filter_map(|t| t.clock_offset).collect();
    if !off.is_empty() {
        off.sort_unstable();
        println!(
            "* The pipeline's frame timestamp (FrameClock) of the onset frame was {:.1} ms after its capture (median; range {:.1}–{:.1} ms).",
            pct(&off, 50.0) as f64 / 1000.0,
            off[0] as f64 / 1000.0,
            off[off.len() - 1] as f64 / 1000.0
        );
    }
    if args.peer {
        println!("* The peer's detector: ffmpeg's `showinfo` mean luma of the {:?} patch (x, y, w, h) where the figure appears; the figure shifts it by {shift:.1}.", patch_rect());
    }
}

fn write_tsv(path: &std::path::Path, trials: &[Trial]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "cam\tcycle\tcapture_us\tarrival\tdecoded\tmotion\tanalysed\tanalysis_work\tpublished\treceived\treceived_after_frame_ts\tframes_waited\tclock_offset\tpeer")?;
    let o = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for t in trials {
        writeln!(
            f,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            t.cam,
            t.cycle,
            t.capture_us,
            o(t.arrival),
            o(t.decoded),
            o(t.motion),
            o(t.analysed),
            o(t.analysis_work),
            o(t.published),
            o(t.received),
            o(t.received_after_frame_ts),
            o(t.frames_waited),
            o(t.clock_offset),
            o(t.peer)
        )?;
    }
    f.flush()
}
