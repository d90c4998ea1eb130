//! The per-camera analysis thread: decodes every frame it is given (a
//! decoder cannot skip frames between key frames), analyses a few per
//! second for motion (every frame while something moves), asks the object detector about the moving parts
//! (and about parcels it is watching), and hands the trackers' actions —
//! with a snapshot when one is wanted — to the async side, which does all
//! I/O.
//!
//! The decoder is this build's default ([`porchlight_detect::Backend`]):
//! OpenH264, or libavcodec in a build with `--features ffmpeg`. A stream
//! the build cannot decode (H.265, or B-frames with OpenH264) pauses
//! detection for that camera with one warning saying what to do, until the
//! camera's stream changes. Pictures are analysed at the time they are
//! shown: with B-frames that is not the order they arrive in.
//!
//! Decoding, motion and inference are CPU work that must not stall the
//! async runtime, so each camera gets a plain thread fed by a bounded
//! channel. When the thread falls behind, the channel fills, frames are
//! dropped by the feeder, and the decoder resynchronises at the next key
//! frame: analysis degrades, the recorder never waits.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use porchlight_detect::{
    DecodeError, Decoded, DetectOptions, Detector, Frame, MotionDetector, VideoDecoder,
};
use porchlight_media::VideoSampleEntry;

use crate::activity::{Action, ActivityTracker, NBox, Object, Observation};
use crate::parcel::{grow, ParcelAction, ParcelTracker};
use crate::settings::CameraDetection;

/// A frame for the worker.
pub(crate) struct Input {
    pub t_us: i64,
    pub data: bytes::Bytes,
    pub entry: Arc<VideoSampleEntry>,
    /// Frames were lost before this one: wait for a key frame.
    pub resync: bool,
}

/// JPEGs of a moment: the full snapshot and its thumbnail.
#[derive(Clone)]
pub(crate) struct Pictures {
    pub full: Vec<u8>,
    pub thumb: Vec<u8>,
}

/// What the worker found on one analysed frame.
pub(crate) struct Output {
    pub t_us: i64,
    pub actions: Vec<Action>,
    pub parcels: Vec<ParcelAction>,
    /// Present when an action needs a picture of this frame.
    pub pictures: Option<Pictures>,
    /// Objects recognised on this frame (for the event detail).
    pub objects: Vec<Object>,
}

/// The latest decoded picture, for snapshots on demand (doorbell, API).
#[derive(Default)]
pub(crate) struct Latest {
    pub frame: Option<(i64, Arc<Frame>)>,
}

pub(crate) const SNAPSHOT_WIDTH: u32 = 1280;
pub(crate) const THUMB_WIDTH: u32 = 320;

pub(crate) fn pictures(frame: &Frame) -> Option<Pictures> {
    let full = frame
        .to_jpeg(85, SNAPSHOT_WIDTH)
        .map_err(|e| tracing::warn!("snapshot: {e}"))
        .ok()?;
    let thumb = frame
        .to_jpeg(75, THUMB_WIDTH)
        .map_err(|e| tracing::warn!("thumbnail: {e}"))
        .ok()?;
    Some(Pictures { full, thumb })
}

pub(crate) struct Worker {
    pub camera: String,
    pub settings: CameraDetection,
    pub detector: Option<Arc<Detector>>,
    pub latest: Arc<Mutex<Latest>>,
}

/// The widest picture `stream = "auto"` decodes (sub-streams are 640 to
/// 1280 wide; a wider one is a main stream).
const MAX_AUTO_WIDTH: u32 = 1280;

/// Least time between two detector runs on motion (per camera).
const DETECT_INTERVAL_US: i64 = 400_000;

impl Worker {
    /// Runs until `input` is closed; sends results on `output`.
    pub fn run(
        self,
        input: std::sync::mpsc::Receiver<Input>,
        output: tokio::sync::mpsc::UnboundedSender<Output>,
    ) {
        let mut decoder = VideoDecoder::new();
        tracing::debug!(camera = %self.camera, backend = decoder.backend().name(), "decoder");
        // The codec configuration of a stream this build cannot decode:
        // said once, its frames skipped until the stream changes.
        let mut refused: Option<Vec<u8>> = None;
        let mut motion = match MotionDetector::new(self.settings.motion.clone()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(camera = %self.camera, "detection off: {e}");
                return;
            }
        };
        let mut activity = ActivityTracker::new(self.settings.activity());
        let has_include = self
            .settings
            .motion
            .zones
            .iter()
            .any(|z| z.kind == porchlight_detect::ZoneKind::Include);
        let mut parcels = ParcelTracker::new(Default::default());
        // How each resting parcel looked when it was delivered.
        let mut patches: std::collections::HashMap<u64, Vec<f32>> = Default::default();
        let period_us = (1_000_000.0 / self.settings.fps) as i64;
        let mut next_us = i64::MIN;
        let mut last_detect_us = 0i64;
        let mut decode_errors = 0u32;
        let opts = DetectOptions {
            threshold: self.settings.threshold.min(self.settings.parcel_threshold),
            tiling: false,
            ..DetectOptions::default()
        };
        let mut last_t = 0;
        let mut too_big_warned = false;
        while let Ok(inp) = input.recv() {
            last_t = last_t.max(inp.t_us);
            // `auto` means the sub-stream: a camera without one would have
            // its full-size main stream decoded, every frame — several
            // times the cost of recording it. Refuse, and say how to fix.
            if self.settings.stream == "auto" && u32::from(inp.entry.width) > MAX_AUTO_WIDTH {
                if !too_big_warned {
                    tracing::warn!(
                        camera = %self.camera,
                        "detection is paused: the camera sends {}x{} and has no sub-stream; add one (camera add/edit --sub-url) or set its detection stream to \"main\" to decode the full picture anyway",
                        inp.entry.width,
                        inp.entry.height
                    );
                    too_big_warned = true;
                }
                continue;
            }
            if let Some(config) = &refused {
                if *config == inp.entry.config {
                    continue;
                }
                refused = None;
            }
            if inp.resync {
                decoder = VideoDecoder::new();
            }
            // The picture shown next, with its own time (with B-frames,
            // an earlier one than this input's).
            let Decoded { t_us, frame } = match decoder.decode_at(&inp.data, &inp.entry, inp.t_us) {
                Ok(Some(d)) => {
                    // For bench/event_latency.sh's stage timings.
                    tracing::trace!(camera = %self.camera, t_us = d.t_us, "decoded");
                    d
                }
                Ok(None) => continue,
                Err(DecodeError::Unsupported(why)) => {
                    tracing::warn!(
                        camera = %self.camera,
                        decoder = decoder.backend().name(),
                        "detection is paused: {why}"
                    );
                    refused = Some(inp.entry.config.clone());
                    decoder = VideoDecoder::new();
                    continue;
                }
                Err(e) => {
                    decode_errors += 1;
                    if decode_errors.is_power_of_two() {
                        tracing::warn!(camera = %self.camera, errors = decode_errors, "cannot decode: {e}");
                    }
                    continue;
                }
            };
            if t_us < next_us {
                continue;
            }
            next_us = t_us
                .max(next_us.saturating_add(period_us))
                .min(t_us + period_us);
            let frame = Arc::new(frame);
            self.latest.lock().unwrap().frame = Some((t_us, frame.clone()));

            let started = Instant::now();
            let luma = frame.luma_scaled(self.settings.motion.analysis_width);
            let m = motion.analyse(&luma, t_us);
            // With include zones, only motion inside one of them counts.
            let counted: Vec<&porchlight_detect::motion::Region> = m
                .regions
                .iter()
                .filter(|r| !has_include || !r.zones.is_empty())
                .collect();
            if !m.regions.is_empty() {
                tracing::debug!(camera = %self.camera, t_us, regions = ?m.regions, "motion");
                // Something moves somewhere: analyse every frame until it
                // stops, so events start on the frame they should (motion
                // costs well under a millisecond; the decoding is paid
                // anyway).
                next_us = t_us;
            }
            let mut obs = Observation {
                t_us,
                motion: !counted.is_empty(),
                zones: dedup(counted.iter().flat_map(|r| r.zones.iter().cloned())),
                moved_area: counted.iter().map(|r| r.area).sum(),
                objects: None,
            };

            // Where the detector looks: the moving parts (at most every
            // DETECT_INTERVAL), and parcels being watched.
            let mut looks: Vec<NBox> = Vec::new();
            if self.settings.objects && obs.motion && t_us - last_detect_us >= DETECT_INTERVAL_US {
                if let Some(u) = union(counted.iter().map(|r| corners_to_nbox(r.bbox))) {
                    looks.push(grow(&u, 1.3, 0.35));
                }
            }
            if self.settings.parcels && self.settings.objects {
                looks.extend(parcels.due_checks(t_us));
            }
            // Motion ON does not wait for the object detector (100–300 ms
            // on one core): when this frame opens an event, say so now,
            // and drop the same ON from what `observe` returns below.
            let early_on = obs.motion && !activity.is_active() && !looks.is_empty();
            if early_on {
                let out = Output {
                    t_us,
                    actions: vec![Action::MotionOn { t_us }],
                    parcels: Vec::new(),
                    pictures: None,
                    objects: Vec::new(),
                };
                if output.send(out).is_err() {
                    return;
                }
            }
            let mut objects = Vec::new();
            if let (Some(det), false) = (&self.detector, looks.is_empty()) {
                last_detect_us = t_us;
                for look in merge_looks(looks.clone()) {
                    objects.extend(self.detect_in(det, &frame, look, &opts, &motion));
                }
                objects = dedup_objects(objects);
                tracing::debug!(camera = %self.camera, t_us, ?looks, ?objects, "detected");
                obs.objects = Some(objects.clone());
            }
            let mut actions = activity.observe(&obs);
            if early_on {
                actions.retain(|a| !matches!(a, Action::MotionOn { .. }));
            }
            let parcel_actions = if self.settings.parcels {
                let presence: Vec<(u64, bool)> = parcels
                    .resting_parcels()
                    .into_iter()
                    .filter_map(|(id, b)| {
                        let then = patches.get(&id)?;
                        let d = patch_difference(then, &patch(&frame, &b)?);
                        // Clearly the same, clearly not, or can't tell.
                        if d < 0.06 {
                            Some((id, true))
                        } else if d > 0.15 {
                            Some((id, false))
                        } else {
                            None
                        }
                    })
                    .collect();
                let looked: &[NBox] = if obs.objects.is_some() { &looks } else { &[] };
                let acts = parcels.observe_with(t_us, looked, &objects, &presence);
                for a in &acts {
                    match a {
                        ParcelAction::Delivered { id, bbox, .. } => {
                            if let Some(p) = patch(&frame, bbox) {
                                patches.insert(*id, p);
                            }
                        }
                        ParcelAction::Taken { id, .. } => {
                            patches.remove(id);
                        }
                    }
                }
                acts
            } else {
                Vec::new()
            };
            let wants_picture =
                actions.iter().any(|a| matches!(a, Action::Snapshot)) || !parcel_actions.is_empty();
            let pictures = if wants_picture {
                pictures(&frame)
            } else {
                None
            };
            tracing::trace!(camera = %self.camera, us = started.elapsed().as_micros() as u64, "analysed");
            if actions.is_empty() && parcel_actions.is_empty() && !m.global_change {
                continue;
            }
            let out = Output {
                t_us,
                actions,
                parcels: parcel_actions,
                pictures,
                objects,
            };
            if output.send(out).is_err() {
                return;
            }
        }
        let actions = activity.finish(last_t);
        if !actions.is_empty() {
            let _ = output.send(Output {
                t_us: last_t,
                actions,
                parcels: Vec::new(),
                pictures: None,
                objects: Vec::new(),
            });
        }
    }

    /// Runs the detector on the part `look` of `frame` and maps what it
    /// finds back to the frame, with the zones each object stands in.
    fn detect_in(
        &self,
        det: &Detector,
        frame: &Frame,
        look: NBox,
        opts: &DetectOptions,
        motion: &MotionDetector,
    ) -> Vec<Object> {
        let (x, y, w, h) = frame.pixel_rect(
            [look[0], look[1], look[0] + look[2], look[1] + look[3]],
            0.0,
        );
        let crop = match frame.crop_rgb(x, y, w, h) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(camera = %self.camera, "crop: {e}");
                return Vec::new();
            }
        };
        let found = match det.detect(&crop, opts) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(camera = %self.camera, "detector: {e}");
                return Vec::new();
            }
        };
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        found
            .into_iter()
            .filter_map(|d| {
                let label = d.label?;
                let min = if label == porchlight_detect::Label::Parcel {
                    self.settings.parcel_threshold
                } else {
                    self.settings.threshold
                };
                if d.score < min {
                    return None;
                }
                let (bx, by, bw, bh) = d.bbox;
                let bbox = [
                    (x + bx) as f32 / fw,
                    (y + by) as f32 / fh,
                    bw as f32 / fw,
                    bh as f32 / fh,
                ];
                // Where it stands: the bottom centre of its box.
                let zones = zones_at(
                    motion,
                    bbox[0] + bbox[2] / 2.0,
                    (bbox[1] + bbox[3]).min(0.999),
                );
                Some(Object {
                    label,
                    class: d.class,
                    score: d.score,
                    bbox,
                    zones,
                })
            })
            .collect()
    }
}

/// The include zones a point lies in.
fn zones_at(motion: &MotionDetector, x: f32, y: f32) -> Vec<String> {
    motion
        .config()
        .zones
        .iter()
        .filter(|z| z.kind == porchlight_detect::ZoneKind::Include && z.contains(x, y))
        .map(|z| z.name.clone())
        .collect()
}

/// Samples a 16x16 grid of luma inside the box (its middle 70 %),
/// divided by its mean so a change of light is not a change of look.
fn patch(frame: &Frame, b: &NBox) -> Option<Vec<f32>> {
    const N: usize = 16;
    let (w, h) = (frame.width as f32, frame.height as f32);
    let (x0, y0) = ((b[0] + 0.15 * b[2]) * w, (b[1] + 0.15 * b[3]) * h);
    let (bw, bh) = (0.7 * b[2] * w, 0.7 * b[3] * h);
    if bw < 4.0 || bh < 4.0 {
        return None;
    }
    let mut v = Vec::with_capacity(N * N);
    for j in 0..N {
        for i in 0..N {
            let x = (x0 + bw * (i as f32 + 0.5) / N as f32) as usize;
            let y = (y0 + bh * (j as f32 + 0.5) / N as f32) as usize;
            v.push(*frame.y.get(y * frame.y_stride + x)? as f32);
        }
    }
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    if mean < 1.0 {
        return None;
    }
    v.iter_mut().for_each(|p| *p /= mean);
    Some(v)
}

/// Mean absolute difference of two patches (0: identical).
fn patch_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len().max(1) as f32
}

/// `[x0, y0, x1, y1]` (motion regions) to `[x, y, w, h]`.
fn corners_to_nbox(b: [f32; 4]) -> NBox {
    [b[0], b[1], (b[2] - b[0]).max(0.0), (b[3] - b[1]).max(0.0)]
}

fn dedup(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v.dedup();
    v
}

fn union(mut boxes: impl Iterator<Item = NBox>) -> Option<NBox> {
    let first = boxes.next()?;
    let (mut x0, mut y0, mut x1, mut y1) =
        (first[0], first[1], first[0] + first[2], first[1] + first[3]);
    for b in boxes {
        x0 = x0.min(b[0]);
        y0 = y0.min(b[1]);
        x1 = x1.max(b[0] + b[2]);
        y1 = y1.max(b[1] + b[3]);
    }
    Some([x0, y0, x1 - x0, y1 - y0])
}

/// Looks that mostly overlap are run once, on their union.
fn merge_looks(looks: Vec<NBox>) -> Vec<NBox> {
    let mut out: Vec<NBox> = Vec::new();
    'next: for l in looks {
        for o in &mut out {
            if crate::parcel::covered(&l, o) > 0.8 {
                continue 'next;
            }
            if crate::parcel::covered(o, &l) > 0.8 {
                *o = l;
                continue 'next;
            }
        }
        out.push(l);
    }
    out
}

/// The same object found by two looks: keep the better-scored one.
fn dedup_objects(mut objs: Vec<Object>) -> Vec<Object> {
    objs.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut out: Vec<Object> = Vec::new();
    for o in objs {
        if !out
            .iter()
            .any(|k| k.label == o.label && crate::parcel::iou(&k.bbox, &o.bbox) > 0.5)
        {
            out.push(o);
        }
    }
    out
}
