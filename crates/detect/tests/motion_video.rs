//! Motion detection end to end on synthetic video with known truth:
//! scenes drawn into I420 pictures (the demo's front-door background and
//! drawing primitives), encoded to H.264 with the demo's OpenH264 encoder
//! (640x360, 15 fps, key frame every 30 frames, 500 kbit/s), decoded with
//! [`VideoDecoder`], analysed at 5 fps (every third frame) on the
//! 320-column luma plane.

use porchlight_demo::encode::{sample_entry, EncodedFrame, H264Encoder, FPS};
use porchlight_demo::render::{self, rgb, Image, HEIGHT, WIDTH};
use porchlight_demo::Scene;
use porchlight_detect::{
    DecodeError, MotionChange, MotionConfig, MotionDetector, MotionResult, MotionTracker,
    TrackerConfig, VideoDecoder, Zone, ZoneKind,
};
use porchlight_media::VideoSampleEntry;

const FRAME_US: i64 = 1_000_000 / FPS as i64;
/// Analyse every third frame: 5 fps.
const EVERY: usize = 3;

/// Deterministic noise of ±`amp` levels on the luma plane of frame `i`.
fn add_noise(img: &mut Image, i: usize, amp: u8) {
    if amp == 0 {
        return;
    }
    let mut s = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let span = 2 * u64::from(amp) + 1;
    for p in &mut img.y {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let v = i32::from(*p) + (s % span) as i32 - i32::from(amp);
        *p = v.clamp(16, 235) as u8;
    }
}

/// Scales the luma plane around black (16) by `gain`.
fn light(img: &mut Image, gain: f64) {
    for p in &mut img.y {
        *p = (16.0 + (f64::from(*p) - 16.0) * gain)
            .round()
            .clamp(16.0, 235.0) as u8;
    }
}

/// Jacket colour: luma 127, at least 40 levels from the wall and the door
/// it passes in front of.
const JACKET: (u8, u8, u8) = (40, 160, 200);

/// A standing figure (jacket, jeans, head) with its feet at (x, 340); its
/// box is `figure_box(x)`.
fn figure(img: &mut Image, x: i32) {
    img.rect(x - 12, 280, x + 12, 340, rgb(40, 50, 90));
    img.rect(x - 22, 210, x + 22, 286, rgb(JACKET.0, JACKET.1, JACKET.2));
    img.ellipse(x, 190, 16, 18, rgb(10, 10, 10));
}

/// The figure's box in pixels: (x0, y0, x1, y1).
fn figure_box(x: i32) -> (i32, i32, i32, i32) {
    (x - 22, 172, x + 22, 340)
}

struct Video {
    /// `None`: the encoder's rate control skipped the frame (it does with
    /// heavy noise), as a camera drops one.
    frames: Vec<Option<EncodedFrame>>,
    entry: VideoSampleEntry,
}

/// Encodes `n` frames drawn by `draw(frame index, picture)` onto the
/// front-door background.
fn encode(n: usize, mut draw: impl FnMut(usize, &mut Image)) -> Video {
    let bg = render::background(Scene::FrontDoor);
    let mut enc = H264Encoder::new(WIDTH, HEIGHT).unwrap();
    let mut frames = Vec::with_capacity(n);
    let mut entry = None;
    for i in 0..n {
        let mut img = bg.clone();
        draw(i, &mut img);
        let f = enc.encode(&img).unwrap();
        if let Some(EncodedFrame {
            sps: Some(sps),
            pps: Some(pps),
            ..
        }) = &f
        {
            entry.get_or_insert_with(|| sample_entry(sps, pps, WIDTH as u16, HEIGHT as u16));
        }
        frames.push(f);
    }
    let kept = frames.iter().flatten().count();
    assert!(
        kept * 10 >= n * 8,
        "the encoder kept only {kept} of {n} frames"
    );
    Video {
        frames,
        entry: entry.expect("the first frame carries SPS and PPS"),
    }
}

/// Decodes every frame and analyses every third one: (frame index, time,
/// result) per analysed frame.
fn analyse(video: &Video, cfg: MotionConfig) -> Vec<(usize, i64, MotionResult)> {
    let mut dec = VideoDecoder::new();
    let mut det = MotionDetector::new(cfg).unwrap();
    let mut out = Vec::new();
    for (i, f) in video.frames.iter().enumerate() {
        let Some(f) = f else { continue };
        let frame = dec
            .decode(&f.data, &video.entry)
            .unwrap_or_else(|e| panic!("frame {i}: {e}"))
            .unwrap_or_else(|| panic!("frame {i}: no picture"));
        assert_eq!((frame.width, frame.height), (WIDTH as u32, HEIGHT as u32));
        if i % EVERY == 0 {
            let t = i as i64 * FRAME_US;
            let r = det.analyse_frame(&frame, t);
            out.push((i, t, r));
        }
    }
    out
}

fn porch_zone() -> Zone {
    // The right half of the porch floor and step, from x = 320.
    Zone {
        name: "porch".into(),
        polygon: vec![[0.5, 0.75], [1.0, 0.75], [1.0, 1.0], [0.5, 1.0]],
        kind: ZoneKind::Include,
        labels: None,
    }
}

/// Where the walking figure's feet are at frame `i`: off picture (x =
/// -60) until frame 45 (3 s), then 100 px/s to the right.
fn walker_x(i: usize) -> i32 {
    const START: usize = 45;
    if i < START {
        -60
    } else {
        -60 + ((i - START) as i64 * 100 / i64::from(FPS)) as i32
    }
}

#[test]
fn a_figure_walking_into_a_zone() {
    let n = 150; // 10 s: the figure walks from x = -60 to about 640.
    let video = encode(n, |i, img| {
        figure(img, walker_x(i));
        add_noise(img, i, 2);
    });
    let cfg = MotionConfig {
        zones: vec![porch_zone()],
        ..MotionConfig::default()
    };
    let results = analyse(&video, cfg);

    // Truth: the first analysed frame where at least min_area (0.2 %) of
    // the picture is the figure.
    let visible = |i: usize| {
        let (x0, y0, x1, y1) = figure_box(walker_x(i));
        let w = (x1.min(WIDTH as i32) - x0.max(0)).max(0);
        (w * (y1 - y0)) as f32 / (WIDTH * HEIGHT) as f32
    };
    let truth = results
        .iter()
        .position(|(i, _, _)| visible(*i) >= 0.002)
        .unwrap();
    let first = results
        .iter()
        .position(|(_, _, r)| r.motion)
        .expect("motion is detected");
    assert!(
        first.abs_diff(truth) <= 2,
        "motion starts at analysed frame {first}, truth {truth}"
    );
    for (i, _, r) in &results[..truth.saturating_sub(2)] {
        assert!(
            !r.motion && !r.global_change,
            "frame {i} before the figure: {r:?}"
        );
    }

    let mut tracker = MotionTracker::new(TrackerConfig::default());
    let mut on_at = None;
    let mut in_zone_seen = false;
    for (i, t, r) in &results {
        if let Some(MotionChange::On { since_us }) = tracker.update(r, *t) {
            on_at = Some(since_us);
        }
        assert!(!r.global_change, "frame {i}: {r:?}");
        let (x0, _, x1, _) = figure_box(walker_x(*i));
        let fully_in = x0 >= 0 && x1 <= WIDTH as i32;
        if !fully_in {
            continue;
        }
        // The regions are on the figure and together their box follows it.
        assert!(!r.regions.is_empty(), "frame {i}: no region: {r:?}");
        let mut bbox = [1f32, 1.0, 0.0, 0.0];
        for reg in &r.regions {
            bbox = [
                bbox[0].min(reg.bbox[0]),
                bbox[1].min(reg.bbox[1]),
                bbox[2].max(reg.bbox[2]),
                bbox[3].max(reg.bbox[3]),
            ];
        }
        let reg = &r.regions[0];
        let cx = (bbox[0] + bbox[2]) / 2.0 * WIDTH as f32;
        let want_cx = walker_x(*i) as f32;
        assert!(
            (cx - want_cx).abs() < 25.0,
            "frame {i}: region centred at x {cx}, figure at {want_cx}: {reg:?}"
        );
        let (y0, y1) = (bbox[1] * HEIGHT as f32, bbox[3] * HEIGHT as f32);
        assert!(
            (y0 - 172.0).abs() < 20.0 && (y1 - 340.0).abs() < 20.0,
            "frame {i}: rows {y0}..{y1}: {r:?}"
        );
        // Zone membership: named once the figure stands well inside the
        // zone (x ≥ 320 + 22), never while it is well outside.
        let named = r
            .regions
            .iter()
            .any(|reg| reg.zones.iter().any(|z| z == "porch"));
        let _ = reg;
        if x0 >= 340 {
            assert!(
                named,
                "frame {i}: figure at {x0}.. in the porch zone: {reg:?}"
            );
            in_zone_seen = true;
        }
        if x1 <= 300 {
            assert!(
                !named,
                "frame {i}: figure at ..{x1} outside the zone: {reg:?}"
            );
        }
    }
    assert!(in_zone_seen);
    let on_at = on_at.expect("the tracker turned ON");
    let truth_t = results[truth].1;
    assert!(
        (on_at - truth_t).abs() <= 2 * EVERY as i64 * FRAME_US,
        "ON since {on_at} µs, truth {truth_t} µs"
    );
}

fn assert_quiet(results: &[(usize, i64, MotionResult)], what: &str) {
    let mut tracker = MotionTracker::new(TrackerConfig::default());
    for (i, t, r) in results {
        assert!(
            !r.motion && r.regions.is_empty(),
            "{what}, frame {i}: {r:?}"
        );
        assert_eq!(tracker.update(r, *t), None, "{what}, frame {i}");
    }
}

#[test]
fn lights_switched_on_are_not_motion() {
    // 4 s dim, then the whole picture 40 % brighter.
    let video = encode(120, |i, img| {
        light(img, if i < 60 { 0.7 } else { 0.98 });
        add_noise(img, i, 2);
    });
    let results = analyse(&video, MotionConfig::default());
    assert_quiet(&results, "lights on");
    let globals: Vec<usize> = results
        .iter()
        .filter(|(_, _, r)| r.global_change)
        .map(|(i, _, _)| *i)
        .collect();
    assert!(
        !globals.is_empty(),
        "the switch is reported as a global change"
    );
    assert!(
        globals
            .iter()
            .all(|&i| (60..60 + 2 * FPS as usize).contains(&i)),
        "global change only in the 2 s after the switch: {globals:?}"
    );
}

#[test]
fn sensor_noise_is_not_motion() {
    let video = encode(150, |i, img| add_noise(img, i, 8));
    assert_quiet(&analyse(&video, MotionConfig::default()), "noise ±8");
}

#[test]
fn motion_inside_a_mask_is_ignored() {
    // The figure paces in front of the window (x 60..210); a mask covers
    // the left third of the picture.
    let pace = |i: usize| 80 + ((i as i32 * 7) % 110);
    let mask = Zone {
        name: "street".into(),
        polygon: vec![[0.0, 0.0], [0.375, 0.0], [0.375, 1.0], [0.0, 1.0]],
        kind: ZoneKind::Mask,
        labels: None,
    };
    let video = encode(120, |i, img| {
        if i >= 20 {
            figure(img, pace(i));
        }
        add_noise(img, i, 2);
    });
    let masked = analyse(
        &video,
        MotionConfig {
            zones: vec![mask],
            ..MotionConfig::default()
        },
    );
    assert_quiet(&masked, "masked");
    // Without the mask the same video has motion (the test can fail).
    let unmasked = analyse(&video, MotionConfig::default());
    assert!(unmasked.iter().filter(|(_, _, r)| r.motion).count() > 20);
}

#[test]
fn slow_brightening_over_a_minute_is_not_motion() {
    // 60 s from 0.7 to 1.0 (43 % brighter), encoded at 5 fps to keep the
    // test short (analysis runs at 5 fps either way).
    let n = 300;
    let bg = render::background(Scene::FrontDoor);
    let mut enc = H264Encoder::new(WIDTH, HEIGHT).unwrap();
    let mut dec = VideoDecoder::new();
    let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
    let mut tracker = MotionTracker::new(TrackerConfig::default());
    let mut entry = None;
    for i in 0..n {
        let mut img = bg.clone();
        light(&mut img, 0.7 + 0.3 * i as f64 / n as f64);
        add_noise(&mut img, i, 3);
        let Some(f) = enc.encode(&img).unwrap() else {
            continue;
        };
        if let (None, Some(sps), Some(pps)) = (&entry, &f.sps, &f.pps) {
            entry = Some(sample_entry(sps, pps, WIDTH as u16, HEIGHT as u16));
        }
        let frame = dec
            .decode(&f.data, entry.as_ref().unwrap())
            .unwrap()
            .unwrap();
        let t = i as i64 * 200_000;
        let r = det.analyse(&frame.luma_scaled(320), t);
        assert!(
            !r.motion && !r.global_change,
            "frame {i} ({} s): {r:?}",
            t / 1_000_000
        );
        assert_eq!(tracker.update(&r, t), None);
    }
}

#[test]
fn a_corrupt_frame_is_an_error_then_the_next_key_frame_recovers() {
    let video = encode(62, |i, img| {
        figure(img, 100 + 3 * i as i32);
        add_noise(img, i, 2);
    });
    let frames: Vec<&EncodedFrame> = video.frames.iter().map(|f| f.as_ref().unwrap()).collect();
    assert!(frames[0].key && frames[30].key && !frames[10].key);
    let mut dec = VideoDecoder::new();
    for (i, f) in frames.into_iter().enumerate() {
        let r = match i {
            // A NAL unit whose length runs past the end of the frame.
            10 => {
                let mut bad = f.data.clone();
                bad[3] = bad[3].wrapping_add(40);
                bad[2] = bad[2].wrapping_add(1);
                dec.decode(&bad, &video.entry)
            }
            // Slice data replaced by garbage.
            40 => {
                let mut bad = f.data.clone();
                let mut s = 12345u32;
                for b in bad.iter_mut().skip(8) {
                    s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    *b = (s >> 16) as u8;
                }
                dec.decode(&bad, &video.entry)
            }
            _ => dec.decode(&f.data, &video.entry),
        };
        match i {
            10 => assert!(
                matches!(r, Err(DecodeError::Malformed(_))),
                "frame {i}: {r:?}"
            ),
            40 => assert!(
                matches!(r, Err(DecodeError::Corrupt(_) | DecodeError::Malformed(_))),
                "frame {i}: {r:?}"
            ),
            11..=29 | 41..=59 => {
                assert!(
                    matches!(r, Ok(None)),
                    "frame {i}: waits for a key frame: {r:?}"
                );
                assert!(dec.waiting_for_key_frame());
            }
            _ => {
                let frame = r.unwrap_or_else(|e| panic!("frame {i}: {e}")).unwrap();
                assert!(!dec.waiting_for_key_frame());
                // The decoded picture shows the figure where it was drawn.
                let x = 100 + 3 * i;
                let luma = |x0: usize, x1: usize| {
                    render::mean_luma(&frame.y, frame.y_stride, x0, 220, x1, 260)
                };
                let on = luma(x - 15, x + 15);
                let want = f64::from(rgb(JACKET.0, JACKET.1, JACKET.2).0);
                assert!(
                    (on - want).abs() < 10.0,
                    "frame {i}: jacket luma {on}, want {want}"
                );
            }
        }
    }
}

#[test]
fn parameter_sets_from_the_sample_entry_alone_suffice() {
    // Strip in-band SPS/PPS from the key frame: the decoder must feed them
    // from the avcC record.
    let video = encode(3, |i, img| figure(img, 200 + i as i32));
    let mut dec = VideoDecoder::new();
    let mut last = None;
    for (i, f) in video.frames.iter().enumerate() {
        let f = f.as_ref().unwrap();
        let mut stripped = Vec::new();
        let mut rest = &f.data[..];
        while rest.len() >= 4 {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let nal = &rest[4..4 + len];
            if !matches!(nal[0] & 0x1f, 7 | 8) {
                stripped.extend_from_slice(&rest[..4 + len]);
            }
            rest = &rest[4 + len..];
        }
        assert!(stripped.len() < f.data.len() || i > 0);
        let frame = dec.decode(&stripped, &video.entry).unwrap();
        assert!(frame.is_some(), "frame {i}");
        last = frame;
    }
    // A JPEG snapshot of the last picture.
    let jpeg = last.unwrap().to_jpeg(75, 320).unwrap();
    assert_eq!(&jpeg[..3], &[0xff, 0xd8, 0xff]);
}

/// The demo's front-door camera itself (with its slowly changing light,
/// sensor noise and clock overlay, the clock masked), its first 42 s at
/// 5 fps: quiet until the visitor walks in at 5 s, motion while they come,
/// leave the parcel and go (until 32 s), quiet again once the parcel has
/// been absorbed (34–42 s; what the loop does after 42 s is not assumed).
#[test]
fn the_demo_front_door_loop() {
    let loop_start = 1_800_000_000_000 - 1_800_000_000_000 % render::LOOP_MS;
    let clock = Zone {
        name: "clock".into(),
        polygon: vec![[0.0, 0.0], [0.42, 0.0], [0.42, 0.1], [0.0, 0.1]],
        kind: ZoneKind::Mask,
        labels: None,
    };
    let step = Zone {
        name: "step".into(),
        polygon: vec![[0.5, 0.7], [0.85, 0.7], [0.85, 0.9], [0.5, 0.9]],
        kind: ZoneKind::Include,
        labels: None,
    };
    let mut det = MotionDetector::new(MotionConfig {
        zones: vec![clock, step],
        ..MotionConfig::default()
    })
    .unwrap();
    let bg = render::background(Scene::FrontDoor);
    let mut img = bg.clone();
    let mut enc = H264Encoder::new(WIDTH, HEIGHT).unwrap();
    let mut dec = VideoDecoder::new();
    let mut entry = None;
    let mut tracker = MotionTracker::new(TrackerConfig::default());
    let mut on_since = None;
    let mut motion_at = Vec::new();
    let mut step_named = false;
    for i in 0..210i64 {
        let ms = i * 200;
        render::render_onto(&mut img, &bg, Scene::FrontDoor, loop_start + ms, 0);
        let Some(f) = enc.encode(&img).unwrap() else {
            continue;
        };
        if let (None, Some(sps), Some(pps)) = (&entry, &f.sps, &f.pps) {
            entry = Some(sample_entry(sps, pps, WIDTH as u16, HEIGHT as u16));
        }
        let frame = dec
            .decode(&f.data, entry.as_ref().unwrap())
            .unwrap()
            .unwrap();
        let r = det.analyse(&frame.luma_scaled(320), ms * 1000);
        assert!(!r.global_change, "{ms} ms: {r:?}");
        if let Some(MotionChange::On { since_us }) = tracker.update(&r, ms * 1000) {
            on_since.get_or_insert(since_us);
        }
        if r.motion {
            motion_at.push(ms);
        }
        // Putting the parcel down on the step (17–19.5 s).
        if (17_000..19_500).contains(&ms) {
            step_named |= r
                .regions
                .iter()
                .any(|g| g.zones.iter().any(|z| z == "step"));
        }
    }
    eprintln!("motion at (ms): {motion_at:?}");
    let first = *motion_at.first().expect("motion");
    // The visitor's jacket enters the picture at about 5.05 s.
    assert!(
        (4_600..=5_600).contains(&first),
        "first motion at {first} ms"
    );
    let on = on_since.expect("motion ON") / 1000;
    assert!((4_600..=5_600).contains(&on), "ON since {on} ms");
    let during = motion_at
        .iter()
        .filter(|&&ms| (6_000..30_000).contains(&ms))
        .count();
    assert!(
        during >= 110,
        "motion in only {during} of 120 frames while the visitor is there"
    );
    assert!(
        step_named,
        "the parcel going down on the step names the step zone"
    );
    let quiet: Vec<_> = motion_at
        .iter()
        .filter(|&&ms| !(4_600..34_000).contains(&ms))
        .collect();
    assert!(
        quiet.is_empty(),
        "motion before the visitor or after the parcel settled: {quiet:?}"
    );
}
