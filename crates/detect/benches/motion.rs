//! What detection costs per camera (issue 5's benchmark; not a test):
//!
//! - `decode_640x360`: decoding one frame of a 640x360 15 fps H.264
//!   stream (the demo's front door with its visitor walking in, encoded by
//!   the demo's OpenH264 encoder: baseline, key frame every 30 frames,
//!   500 kbit/s), cycling over one GOP, with OpenH264;
//! - `decode_640x360_ffmpeg`: the same with libavcodec (only in a build
//!   with `--features ffmpeg`: `bench/detection.sh --ffmpeg`);
//! - `luma_scaled_320`: the 320-column box-filtered luma plane of a frame;
//! - `motion_analyse_320x180`: one analysed frame of motion detection on it
//!   (default settings, one include zone and one mask);
//! - `object_inference_300x300`: one call of the object detector on a
//!   300x300 crop (no tiling; skipped when the model is not found).
//!
//! `bench/detection.sh` runs it and prints the table with cameras per core.

use criterion::{criterion_group, criterion_main, Criterion};
use porchlight_demo::encode::{sample_entry, H264Encoder, FPS};
use porchlight_demo::render::{self, HEIGHT, LOOP_MS, WIDTH};
use porchlight_demo::Scene;
use porchlight_detect::{
    Backend, DetectOptions, Detector, Frame, LumaPlane, MotionConfig, MotionDetector, VideoDecoder,
    Zone, ZoneKind,
};
use std::hint::black_box;

/// One GOP (30 frames, 2 s) of the front door from loop time 6 s, when
/// the visitor walks in: (access units, sample entry, decoded frames).
fn stream() -> (Vec<Vec<u8>>, porchlight_media::VideoSampleEntry, Vec<Frame>) {
    let t0 = 1_800_000_000_000 - 1_800_000_000_000 % LOOP_MS + 6_000;
    let bg = render::background(Scene::FrontDoor);
    let mut img = bg.clone();
    let mut enc = H264Encoder::new(WIDTH, HEIGHT).expect("encoder");
    let mut units = Vec::new();
    let mut entry = None;
    let mut i = 0;
    while units.len() < 30 {
        render::render_onto(
            &mut img,
            &bg,
            Scene::FrontDoor,
            t0 + i * 1000 / i64::from(FPS),
            0,
        );
        i += 1;
        let Some(f) = enc.encode(&img).expect("encode") else {
            continue;
        };
        if let (None, Some(sps), Some(pps)) = (&entry, &f.sps, &f.pps) {
            entry = Some(sample_entry(sps, pps, WIDTH as u16, HEIGHT as u16));
        }
        units.push(f.data);
    }
    let entry = entry.expect("parameter sets");
    let mut dec = VideoDecoder::with_backend(Backend::OpenH264).expect("OpenH264");
    let frames = units
        .iter()
        .map(|u| dec.decode(u, &entry).expect("decode").expect("a picture"))
        .collect();
    (units, entry, frames)
}

fn bench(c: &mut Criterion) {
    let (units, entry, frames) = stream();

    for (name, backend) in [
        ("decode_640x360", Backend::OpenH264),
        ("decode_640x360_ffmpeg", Backend::Ffmpeg),
    ] {
        let Ok(mut dec) = VideoDecoder::with_backend(backend) else {
            eprintln!(
                "{name} skipped: no {} backend in this build",
                backend.name()
            );
            continue;
        };
        let mut i = 0;
        c.bench_function(name, |b| {
            b.iter(|| {
                let f = dec.decode(&units[i % units.len()], &entry).expect("decode");
                i += 1;
                black_box(f)
            })
        });
    }

    let mut j = 0;
    c.bench_function("luma_scaled_320", |b| {
        b.iter(|| {
            j += 1;
            black_box(frames[j % frames.len()].luma_scaled(320))
        })
    });

    let planes: Vec<LumaPlane> = frames.iter().map(|f| f.luma_scaled(320)).collect();
    let cfg = MotionConfig {
        zones: vec![
            Zone {
                name: "porch".into(),
                polygon: vec![[0.5, 0.7], [1.0, 0.7], [1.0, 1.0], [0.5, 1.0]],
                kind: ZoneKind::Include,
                labels: None,
            },
            Zone {
                name: "clock".into(),
                polygon: vec![[0.0, 0.0], [0.45, 0.0], [0.45, 0.1], [0.0, 0.1]],
                kind: ZoneKind::Mask,
                labels: None,
            },
        ],
        ..MotionConfig::default()
    };
    let mut det = MotionDetector::new(cfg).expect("config");
    let mut t = 0i64;
    // Past the initial learning second.
    for p in planes.iter().take(10) {
        t += 200_000;
        det.analyse(p, t);
    }
    let mut k = 0;
    c.bench_function("motion_analyse_320x180", |b| {
        b.iter(|| {
            k += 1;
            t += 200_000;
            black_box(det.analyse(&planes[k % planes.len()], t))
        })
    });

    match Detector::load_default() {
        Ok(detector) => {
            let crop = frames[20].crop_rgb(170, 30, 300, 300).expect("crop");
            let opts = DetectOptions {
                tiling: false,
                ..DetectOptions::default()
            };
            let mut g = c.benchmark_group("object");
            g.sample_size(20);
            g.bench_function("object_inference_300x300", |b| {
                b.iter(|| black_box(detector.detect(&crop, &opts).expect("inference")))
            });
            g.finish();
        }
        Err(e) => eprintln!("object_inference_300x300 skipped: {e}"),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
