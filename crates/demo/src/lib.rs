//! # porchlight-demo
//!
//! Two synthetic cameras for `porchlight demo`, so the whole media path —
//! RTSP, recording, export, live view — can be tried without a camera:
//!
//! * **front-door** — a porch with a door and a step; a visitor walks up,
//!   puts a parcel on the step and walks away; the parcel stays until the
//!   loop restarts (every 60 s).
//! * **driveway** — a car drives in, parks in front of the garage, and
//!   later drives out again (every 60 s).
//!
//! Each camera renders 640x360 pictures at 15 fps straight into I420
//! buffers ([`render`]), with a slowly changing light level, mild sensor
//! noise and a clock in the corner, and encodes them with OpenH264
//! ([`encode`]: baseline profile, a key frame every 2 s, about 500 kbit/s)
//! on a thread of its own, paced in real time. Like a real camera it also
//! has a sub-stream: the same picture scaled down to 320x180 (2x2 box
//! filter), encoded at about [`SUB_BITRATE`]. Frames are published as
//! [`LiveFrame`]s on two broadcast channels, exactly like frames from a
//! real camera; the CLI serves them on the hub's RTSP server at
//! `demo/NAME` and `demo/NAME/sub` with random credentials, and points the
//! camera rows' `main_url` and `sub_url` at them, so the recorder ingests
//! the demo through the same RTSP path as any camera.
//!
//! Invariants: the picture is a pure function of the time
//! ([`render::render`]); main and sub frame `n` show the same picture and
//! carry the same timestamp; the first frame each stream publishes is a
//! key frame with its SPS and PPS; a slow or absent consumer never slows
//! the camera down (the broadcast channel drops the oldest frames).
//!
//! Not here: audio, H.265, serving RTSP (the restream crate).

#![forbid(unsafe_code)]

pub mod encode;
pub mod render;
pub mod sprites;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porchlight_media::VideoSampleEntry;
pub use porchlight_recorder::LiveFrame;
use tokio::sync::broadcast;

/// Frames buffered per camera stream for slow consumers (4 s).
const CHANNEL_CAPACITY: usize = 60;
/// Size of the sub-stream's pictures: half the main stream's.
pub const SUB_WIDTH: usize = render::WIDTH / 2;
pub const SUB_HEIGHT: usize = render::HEIGHT / 2;
/// Target bit rate of the sub-stream.
pub const SUB_BITRATE: u32 = 150_000;

/// The demo scenes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scene {
    FrontDoor,
    Driveway,
}

impl Scene {
    pub const ALL: [Scene; 2] = [Scene::FrontDoor, Scene::Driveway];

    /// The camera name (`front-door`, `driveway`).
    pub fn name(self) -> &'static str {
        match self {
            Scene::FrontDoor => "front-door",
            Scene::Driveway => "driveway",
        }
    }
}

/// A running demo camera. Dropping it stops its thread.
pub struct DemoCamera {
    scene: Scene,
    frames: broadcast::Sender<Arc<LiveFrame>>,
    sub_frames: broadcast::Sender<Arc<LiveFrame>>,
    username: String,
    password: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DemoCamera {
    /// Starts rendering and encoding `scene` on a thread of its own, with
    /// fresh random credentials.
    pub fn start(scene: Scene) -> std::io::Result<DemoCamera> {
        let (frames, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (sub_frames, _) = broadcast::channel(CHANNEL_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (frames, sub_frames, stop) = (frames.clone(), sub_frames.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("demo-{}", scene.name()))
                .spawn(move || run(scene, frames, sub_frames, &stop))?
        };
        Ok(DemoCamera {
            scene,
            frames,
            sub_frames,
            username: "demo".into(),
            password: porchlight_base::secret::url_token(18),
            stop,
            thread: Some(thread),
        })
    }

    pub fn scene(&self) -> Scene {
        self.scene
    }

    /// The path the CLI serves it at: `demo/front-door`.
    pub fn path(&self) -> String {
        format!("demo/{}", self.scene.name())
    }

    /// The path the CLI serves its sub-stream at: `demo/front-door/sub`.
    pub fn sub_path(&self) -> String {
        format!("demo/{}/sub", self.scene.name())
    }

    /// The frames, for the RTSP server to subscribe to.
    pub fn frames(&self) -> broadcast::Sender<Arc<LiveFrame>> {
        self.frames.clone()
    }

    /// The sub-stream's frames (320x180).
    pub fn sub_frames(&self) -> broadcast::Sender<Arc<LiveFrame>> {
        self.sub_frames.clone()
    }

    /// The credentials a client must present (random per start).
    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Uses these credentials instead of the random ones (so camera rows
    /// written by an earlier run keep working).
    pub fn set_credentials(&mut self, username: &str, password: &str) {
        self.username = username.to_owned();
        self.password = password.to_owned();
    }
}

impl Drop for DemoCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One encoded stream of a demo camera: its encoder (started lazily and
/// restarted after an error), its parameters and its channel.
struct Lane {
    width: usize,
    height: usize,
    bitrate: u32,
    encoder: Option<encode::H264Encoder>,
    entry: Option<Arc<VideoSampleEntry>>,
    tx: broadcast::Sender<Arc<LiveFrame>>,
}

impl Lane {
    fn new(
        width: usize,
        height: usize,
        bitrate: u32,
        tx: broadcast::Sender<Arc<LiveFrame>>,
    ) -> Lane {
        Lane {
            width,
            height,
            bitrate,
            encoder: None,
            entry: None,
            tx,
        }
    }

    /// Encodes `img` and publishes it as frame `n`. Encoder trouble is
    /// logged and the encoder restarted; it never stops the camera.
    fn encode_and_publish(
        &mut self,
        scene: Scene,
        img: &render::Image,
        n: u64,
        wall: jiff::Timestamp,
    ) {
        let ticks_per_frame = i64::from(porchlight_media::TIMESCALE / encode::FPS);
        let enc = match &mut self.encoder {
            Some(e) => e,
            None => {
                match encode::H264Encoder::with_bitrate(self.width, self.height, self.bitrate) {
                    Ok(e) => self.encoder.insert(e),
                    Err(e) => {
                        tracing::error!(
                            camera = scene.name(),
                            "cannot start the H.264 encoder: {e}"
                        );
                        return;
                    }
                }
            }
        };
        let frame = match enc.encode(img) {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(
                    camera = scene.name(),
                    "encoding failed, restarting the encoder: {e}"
                );
                self.encoder = None;
                self.entry = None;
                return;
            }
        };
        if let (Some(sps), Some(pps)) = (&frame.sps, &frame.pps) {
            let e = encode::sample_entry(sps, pps, self.width as u16, self.height as u16);
            if self.entry.as_deref() != Some(&e) {
                self.entry = Some(Arc::new(e));
            }
        }
        if let Some(e) = &self.entry {
            // An error only means nobody is listening right now.
            let _ = self.tx.send(Arc::new(LiveFrame {
                pts_90k: n as i64 * ticks_per_frame,
                key: frame.key,
                data: frame.data.into(),
                entry: e.clone(),
                arrival: wall,
            }));
        }
    }
}

/// The camera thread: render, encode, publish, in real time.
fn run(
    scene: Scene,
    frames: broadcast::Sender<Arc<LiveFrame>>,
    sub_frames: broadcast::Sender<Arc<LiveFrame>>,
    stop: &AtomicBool,
) {
    let frame_time = Duration::from_secs(1) / encode::FPS;
    let bg = render::background(scene);
    let mut img = bg.clone();
    let mut small = render::Image::new(SUB_WIDTH, SUB_HEIGHT);
    let mut main = Lane::new(render::WIDTH, render::HEIGHT, encode::BITRATE, frames);
    let mut sub = Lane::new(SUB_WIDTH, SUB_HEIGHT, SUB_BITRATE, sub_frames);
    let tz = jiff::tz::TimeZone::system();
    let start = Instant::now();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let due = start + frame_time * n as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_secs(1) {
            // Far behind (a busy machine): skip ahead rather than rush.
            n = (now - start).as_nanos() as u64 / frame_time.as_nanos() as u64;
        }
        let wall = jiff::Timestamp::now();
        let offset = tz.to_offset(wall).seconds();
        render::render_onto(&mut img, &bg, scene, wall.as_millisecond(), offset);
        main.encode_and_publish(scene, &img, n, wall);
        img.downscale_half_into(&mut small);
        sub.encode_and_publish(scene, &small, n, wall);
        if main.encoder.is_none() {
            // The encoder could not start: do not spin.
            std::thread::sleep(Duration::from_secs(5));
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_camera_publishes_frames_in_real_time() {
        let cam = DemoCamera::start(Scene::Driveway).unwrap();
        let mut rx = cam.frames().subscribe();
        let mut sub_rx = cam.sub_frames().subscribe();
        assert_eq!(cam.sub_path(), "demo/driveway/sub");
        assert_eq!(cam.path(), "demo/driveway");
        assert!(cam.password().len() >= 20);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t0 = Instant::now();
        let frames: Vec<Arc<LiveFrame>> = rt.block_on(async {
            let mut v = Vec::new();
            while v.len() < 35 {
                v.push(rx.recv().await.unwrap());
            }
            v
        });
        let first_key = frames.iter().position(|f| f.key);
        assert!(first_key.is_some(), "a key frame every 30 frames");
        let f = &frames[0];
        assert_eq!((f.entry.width, f.entry.height), (640, 360));
        for w in frames.windows(2) {
            assert_eq!(w[1].pts_90k - w[0].pts_90k, 6000, "15 fps in 90 kHz ticks");
        }
        // The sub-stream: the same timeline at a quarter of the pixels.
        let sub: Vec<Arc<LiveFrame>> = rt.block_on(async {
            let mut v = Vec::new();
            while v.len() < 10 {
                v.push(sub_rx.recv().await.unwrap());
            }
            v
        });
        assert_eq!((sub[0].entry.width, sub[0].entry.height), (320, 180));
        assert!(
            sub[0].pts_90k <= frames[9].pts_90k,
            "both streams start together"
        );
        for w in sub.windows(2) {
            assert_eq!(w[1].pts_90k - w[0].pts_90k, 6000);
        }
        // Paced in real time: 35 frames take about 2.3 s.
        assert!(
            t0.elapsed() > Duration::from_millis(1800),
            "{:?}",
            t0.elapsed()
        );
        drop(cam);
    }
}
