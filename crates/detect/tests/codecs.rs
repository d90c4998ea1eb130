//! H.265 and H.264 with B-frames: decoded with libavcodec in a build with
//! `--features ffmpeg`, refused with a clear status otherwise (and always
//! by OpenH264).
//!
//! The clips are made at test time with the `ffmpeg` CLI
//! (`scripts/install-test-deps` installs it): a white 64x80 box sliding
//! right at 140 px/s, from off picture, over a still textured background;
//! 640x360, 15 fps, 5 s, a key frame every 30 frames; libx264 with two
//! B-frames between P-frames, or libx265 (B-frames by default), muxed to
//! MP4. `ffprobe` lists the packets in decoding order with their
//! presentation times; they are cut out of the MP4 file as they are
//! (length-prefixed NAL units, what the recorder hands to detection), and
//! the avcC/hvcC record is taken from the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use porchlight_detect::decode::{self, B_FRAMES_NEED_FFMPEG, H265_NEEDS_FFMPEG};
use porchlight_detect::{Backend, DecodeError, VideoDecoder};
#[cfg(feature = "ffmpeg")]
use porchlight_detect::{Decoded, MotionConfig, MotionDetector};
use porchlight_media::{Codec, VideoSampleEntry};

const W: i64 = 640;
const H: i64 = 360;
const FPS: i64 = 15;
const SECONDS: i64 = 5;
/// The box: `BOX_W` x `BOX_H` at row `BOX_Y`, left edge at
/// `-80 + 140 t` (t in seconds).
const BOX_W: i64 = 64;
const BOX_H: i64 = 80;
const BOX_Y: i64 = 140;

#[cfg(feature = "ffmpeg")]
fn box_x(t_us: i64) -> f64 {
    -80.0 + 140.0 * t_us as f64 / 1e6
}

struct Unit {
    t_us: i64,
    key: bool,
    data: Vec<u8>,
}

struct Clip {
    units: Vec<Unit>,
    entry: VideoSampleEntry,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run {:?} ({e}): the ffmpeg CLI makes these tests' video; scripts/install-test-deps installs it",
            cmd.get_program()
        )
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Encodes the sliding box with `codec_args` and reads it back.
fn make_clip(name: &str, codec: Codec, codec_args: &[&str]) -> Clip {
    // Tests run in parallel and several make the same clip: one folder each.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = TempDir(std::env::temp_dir().join(format!(
        "porchlight-codecs-{}-{name}-{n}",
        std::process::id()
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    let mp4 = dir.0.join("clip.mp4");
    let graph = format!(
        "color=c=gray:s={W}x{H}:r={FPS}:d={SECONDS},format=yuv420p,\
         geq=lum='110+50*sin(X/9)*sin(Y/7)':cb=128:cr=128[bg];\
         color=c=white:s={BOX_W}x{BOX_H}:r={FPS}[box];\
         [bg][box]overlay=x='-80+140*t':y={BOX_Y}:shortest=1,format=yuv420p[v]"
    );
    run(Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-filter_complex",
        ])
        .arg(&graph)
        .args(["-map", "[v]", "-g", "30"])
        .args(codec_args)
        .arg(&mp4));
    read_clip(&mp4, codec)
}

fn read_clip(mp4: &Path, codec: Codec) -> Clip {
    let json = run(Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["packet=pts_time,size,pos,flags", "-of", "json"])
        .arg(mp4));
    let file = std::fs::read(mp4).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let num = |p: &serde_json::Value, k: &str| -> f64 {
        match &p[k] {
            serde_json::Value::String(s) => s.parse().unwrap(),
            n => n.as_f64().unwrap(),
        }
    };
    let units: Vec<Unit> = v["packets"]
        .as_array()
        .expect("ffprobe lists packets")
        .iter()
        .map(|p| {
            let (pos, size) = (num(p, "pos") as usize, num(p, "size") as usize);
            Unit {
                t_us: (num(p, "pts_time") * 1e6).round() as i64,
                key: p["flags"].as_str().unwrap().starts_with('K'),
                data: file[pos..pos + size].to_vec(),
            }
        })
        .collect();
    assert_eq!(units.len() as i64, FPS * SECONDS, "frames in the clip");
    let tag: &[u8] = match codec {
        Codec::H264 => b"avcC",
        Codec::H265 => b"hvcC",
    };
    let at = file
        .windows(4)
        .position(|w| w == tag)
        .expect("the MP4 has a codec configuration box");
    let size = u32::from_be_bytes(file[at - 4..at].try_into().unwrap()) as usize;
    let entry = VideoSampleEntry {
        codec,
        width: W as u16,
        height: H as u16,
        config: file[at + 4..at - 4 + size].to_vec(),
        rfc6381: String::new(),
    };
    Clip { units, entry }
}

fn h264_with_b_frames() -> Clip {
    let clip = make_clip(
        "h264b",
        Codec::H264,
        &["-c:v", "libx264", "-bf", "2", "-x264-params", "b-adapt=0"],
    );
    // The test means something only if the clip has B slices and the
    // packets are out of display order.
    let b = clip
        .units
        .iter()
        .filter(|u| decode::h264_has_b_slice(&decode::split_nal_units(&u.data).unwrap()))
        .count();
    assert!(b >= 30, "only {b} access units with B slices");
    assert!(clip.units.windows(2).any(|w| w[1].t_us < w[0].t_us));
    clip
}

fn h265() -> Clip {
    let clip = make_clip(
        "h265",
        Codec::H265,
        &[
            "-c:v",
            "libx265",
            "-x265-params",
            "log-level=error:bframes=2",
        ],
    );
    assert!(clip.units.windows(2).any(|w| w[1].t_us < w[0].t_us));
    clip
}

#[test]
fn openh264_refuses_b_frames_with_a_clear_status() {
    let clip = h264_with_b_frames();
    let mut dec = VideoDecoder::with_backend(Backend::OpenH264).unwrap();
    let mut refused = 0;
    let mut pictures = 0;
    for u in &clip.units {
        match dec.decode_at(&u.data, &clip.entry, u.t_us) {
            Ok(Some(_)) => pictures += 1,
            Ok(None) => {}
            Err(DecodeError::Unsupported(why)) => {
                assert_eq!(why, B_FRAMES_NEED_FFMPEG);
                refused += 1;
            }
            Err(e) => panic!("at {} µs: {e}", u.t_us),
        }
    }
    // The key frames decode (an I-frame alone is fine); every access unit
    // with B slices is refused, none decoded.
    let b = clip
        .units
        .iter()
        .filter(|u| decode::h264_has_b_slice(&decode::split_nal_units(&u.data).unwrap()))
        .count();
    assert_eq!(refused, b);
    assert!(
        pictures <= clip.units.iter().filter(|u| u.key).count() * 2,
        "{pictures}"
    );
}

#[test]
fn openh264_refuses_h265_with_a_clear_status() {
    let clip = h265();
    let mut dec = VideoDecoder::with_backend(Backend::OpenH264).unwrap();
    for u in &clip.units {
        let e = dec.decode_at(&u.data, &clip.entry, u.t_us).unwrap_err();
        assert_eq!(e, DecodeError::Unsupported(H265_NEEDS_FFMPEG));
    }
}

/// The build without the feature: the default decoder says what to do
/// with an H.265 stream, the same each time, and the ffmpeg backend is
/// not there.
#[cfg(not(feature = "ffmpeg"))]
#[test]
fn without_the_feature_h265_gets_a_clear_status() {
    let clip = h265();
    let mut dec = VideoDecoder::new();
    assert_eq!(dec.backend(), Backend::OpenH264);
    for u in &clip.units {
        let e = dec.decode_at(&u.data, &clip.entry, u.t_us).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported video: H.265 needs a build with --features ffmpeg; add an H.264 sub-stream"
        );
    }
    assert!(!Backend::Ffmpeg.available());
    assert!(matches!(
        VideoDecoder::with_backend(Backend::Ffmpeg),
        Err(DecodeError::Unsupported(_))
    ));
}

/// Decodes every access unit (and what the decoder holds at the end).
#[cfg(feature = "ffmpeg")]
fn decode_all(clip: &Clip) -> Vec<Decoded> {
    let mut dec = VideoDecoder::new();
    assert_eq!(dec.backend(), Backend::Ffmpeg);
    let mut out = Vec::new();
    for u in &clip.units {
        if let Some(d) = dec
            .decode_at(&u.data, &clip.entry, u.t_us)
            .unwrap_or_else(|e| panic!("at {} µs: {e}", u.t_us))
        {
            out.push(d);
        }
    }
    out.extend(dec.flush());
    out
}

/// Mean luma of the rectangle `[x0, x1) x [y0, y1)` (clipped).
#[cfg(feature = "ffmpeg")]
fn mean_luma(f: &porchlight_detect::Frame, x0: i64, y0: i64, x1: i64, y1: i64) -> f64 {
    let (x0, x1) = (x0.clamp(0, W) as usize, x1.clamp(0, W) as usize);
    let (y0, y1) = (y0.clamp(0, H) as usize, y1.clamp(0, H) as usize);
    let mut sum = 0u64;
    for y in y0..y1 {
        sum += f.y[y * f.y_stride + x0..y * f.y_stride + x1]
            .iter()
            .map(|&p| u64::from(p))
            .sum::<u64>();
    }
    sum as f64 / ((x1 - x0) * (y1 - y0)).max(1) as f64
}

/// Every picture comes out once, in display order, showing the box where
/// it was at its timestamp; motion detection on them finds the box there.
#[cfg(feature = "ffmpeg")]
fn check_sliding_box(clip: &Clip) {
    let pics = decode_all(clip);
    let mut want: Vec<i64> = clip.units.iter().map(|u| u.t_us).collect();
    want.sort();
    let got: Vec<i64> = pics.iter().map(|d| d.t_us).collect();
    assert_eq!(got, want, "pictures in display order, each once");

    let mut det = MotionDetector::new(MotionConfig::default()).unwrap();
    let mut checked = 0;
    for d in &pics {
        let f = &d.frame;
        assert_eq!((f.width, f.height), (W as u32, H as u32));
        let x = box_x(d.t_us).round() as i64;
        // The picture itself: white (Y 235) inside the box.
        if x >= 0 && x + BOX_W <= W {
            let inside = mean_luma(f, x + 4, BOX_Y + 4, x + BOX_W - 4, BOX_Y + BOX_H - 4);
            assert!(
                inside > 225.0,
                "at {} µs the box at x {x} has luma {inside}",
                d.t_us
            );
        }
        let r = det.analyse_frame(f, d.t_us);
        assert!(!r.global_change, "at {} µs: {r:?}", d.t_us);
        // Motion: once the box is fully in, for a second of learning
        // behind it, the regions together are on the box.
        if x < 0 || x + BOX_W > W || d.t_us < 1_000_000 {
            continue;
        }
        assert!(
            r.motion,
            "at {} µs no motion with the box at x {x}: {r:?}",
            d.t_us
        );
        // A region stands on the box: it holds the box's centre and is not
        // much bigger than the box (a trail where the background is still
        // being learnt may come with it; a ghost of where the box was may
        // be another region, which this does not judge).
        let (cx, cy) = (
            (x + BOX_W / 2) as f32 / W as f32,
            (BOX_Y + BOX_H / 2) as f32 / H as f32,
        );
        let on_box = r
            .regions
            .iter()
            .find(|g| g.bbox[0] <= cx && cx <= g.bbox[2] && g.bbox[1] <= cy && cy <= g.bbox[3]);
        let Some(g) = on_box else {
            panic!(
                "at {} µs no region holds the box's centre (x {x}): {r:?}",
                d.t_us
            );
        };
        let (bw, bh) = (
            (g.bbox[2] - g.bbox[0]) * W as f32,
            (g.bbox[3] - g.bbox[1]) * H as f32,
        );
        assert!(
            bw < (BOX_W + 130) as f32 && bh < (BOX_H + 40) as f32,
            "at {} µs the region on the box is {bw:.0}x{bh:.0}: {r:?}",
            d.t_us
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} pictures checked");
}

#[cfg(feature = "ffmpeg")]
#[test]
fn h264_with_b_frames_is_decoded_in_display_order_and_motion_found() {
    check_sliding_box(&h264_with_b_frames());
}

#[cfg(feature = "ffmpeg")]
#[test]
fn h265_is_decoded_in_display_order_and_motion_found() {
    check_sliding_box(&h265());
}

/// Garbage in an H.265 P/B-frame: an error, nothing until the next key
/// frame, then pictures again; a lone key frame gives its still.
#[cfg(feature = "ffmpeg")]
#[test]
fn h265_corruption_waits_for_the_next_key_frame() {
    let clip = h265();
    let keys: Vec<usize> = (0..clip.units.len())
        .filter(|&i| clip.units[i].key)
        .collect();
    assert!(keys.len() >= 2, "key frames at {keys:?}");
    let bad_at = keys[1] - 5;
    let mut dec = VideoDecoder::new();
    let mut errors = 0;
    let mut after_bad = Vec::new();
    for (i, u) in clip.units.iter().enumerate() {
        let r = if i == bad_at {
            let mut bad = u.data.clone();
            let mut s = 12345u32;
            for b in bad.iter_mut().skip(8) {
                s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                *b = (s >> 16) as u8;
            }
            dec.decode_at(&bad, &clip.entry, u.t_us)
        } else {
            dec.decode_at(&u.data, &clip.entry, u.t_us)
        };
        match r {
            Err(DecodeError::Corrupt(_) | DecodeError::Malformed(_)) if i == bad_at => errors += 1,
            Err(e) => panic!("access unit {i}: {e}"),
            Ok(pic) if i > bad_at => {
                after_bad.push((i, pic.is_some(), dec.waiting_for_key_frame()))
            }
            Ok(_) => {}
        }
    }
    assert_eq!(errors, 1, "the garbage is reported");
    for (i, pic, waiting) in &after_bad {
        if *i < keys[1] {
            assert!(
                !pic && *waiting,
                "access unit {i} before the next key frame"
            );
        }
    }
    assert!(after_bad.iter().filter(|(_, pic, _)| *pic).count() >= 20);

    let still = VideoDecoder::new()
        .decode_still(&clip.units[keys[1]].data, &clip.entry)
        .unwrap();
    let x = box_x(clip.units[keys[1]].t_us).round() as i64;
    assert!(mean_luma(&still, x + 4, BOX_Y + 4, x + BOX_W - 4, BOX_Y + BOX_H - 4) > 225.0);
}
