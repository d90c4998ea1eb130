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
//! on a thread of its own, paced in real time. Frames are published as
//! [`LiveFrame`]s on a broadcast channel, exactly like frames from a real
//! camera; the CLI serves that channel on the hub's RTSP server at
//! `demo/NAME` with random credentials, and points camera rows at it, so
//! the recorder records the demo through the same RTSP path as any
//! camera.
//!
//! Invariants: the picture is a pure function of the time
//! ([`render::render`]); the first frame a camera publishes is a key frame
//! with its SPS and PPS; a slow or absent consumer never slows the camera
//! down (the broadcast channel drops the oldest frames).
//!
//! Not here: audio, H.265, sub-streams, serving RTSP (the restream crate).

pub mod encode;
pub mod render;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porchlight_media::VideoSampleEntry;
pub use porchlight_recorder::LiveFrame;
use tokio::sync::broadcast;

/// Frames buffered per camera for slow consumers (4 s).
const CHANNEL_CAPACITY: usize = 60;

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
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (frames, stop) = (frames.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("demo-{}", scene.name()))
                .spawn(move || run(scene, &frames, &stop))?
        };
        Ok(DemoCamera {
            scene,
            frames,
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

    /// The frames, for the RTSP server to subscribe to.
    pub fn frames(&self) -> broadcast::Sender<Arc<LiveFrame>> {
        self.frames.clone()
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

/// The camera thread: render, encode, publish, in real time.
fn run(scene: Scene, frames: &broadcast::Sender<Arc<LiveFrame>>, stop: &AtomicBool) {
    let frame_time = Duration::from_secs(1) / encode::FPS;
    let ticks_per_frame = i64::from(porchlight_media::TIMESCALE / encode::FPS);
    let (w, h) = (render::WIDTH, render::HEIGHT);
    let bg = render::background(scene);
    let mut img = bg.clone();
    let mut encoder: Option<encode::H264Encoder> = None;
    let mut entry: Option<Arc<VideoSampleEntry>> = None;
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
        let enc = match &mut encoder {
            Some(e) => e,
            None => match encode::H264Encoder::new(w, h) {
                Ok(e) => encoder.insert(e),
                Err(e) => {
                    tracing::error!(camera = scene.name(), "cannot start the H.264 encoder: {e}");
                    std::thread::sleep(Duration::from_secs(5));
                    continue;
                }
            },
        };
        let frame = match enc.encode(&img) {
            Ok(Some(f)) => f,
            Ok(None) => {
                n += 1;
                continue;
            }
            Err(e) => {
                tracing::warn!(
                    camera = scene.name(),
                    "encoding failed, restarting the encoder: {e}"
                );
                encoder = None;
                entry = None;
                continue;
            }
        };
        if let (Some(sps), Some(pps)) = (&frame.sps, &frame.pps) {
            let e = encode::sample_entry(sps, pps, w as u16, h as u16);
            if entry.as_deref() != Some(&e) {
                entry = Some(Arc::new(e));
            }
        }
        if let Some(e) = &entry {
            // An error only means nobody is listening right now.
            let _ = frames.send(Arc::new(LiveFrame {
                pts_90k: n as i64 * ticks_per_frame,
                key: frame.key,
                data: frame.data.into(),
                entry: e.clone(),
                arrival: wall,
            }));
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
        // Paced in real time: 35 frames take about 2.3 s.
        assert!(
            t0.elapsed() > Duration::from_millis(1800),
            "{:?}",
            t0.elapsed()
        );
        drop(cam);
    }
}
