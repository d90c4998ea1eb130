//! Tests of the virtual MP4 (`mp4`) and fragmented MP4 (`fmp4`) builders:
//! real H.264 / H.265 clips encoded by ffmpeg, checked by ffprobe / ffmpeg
//! decodes against the original stream, plus an independent moov reader,
//! invalid inputs and a property test.

mod support;

use std::path::Path;
use std::time::Instant;

use porchlight_media::fmp4;
use porchlight_media::mp4::{FramePos, Mp4Error, Mp4Plan, SampleSource};
use porchlight_media::{Codec, FrameInfo, VideoSampleEntry};
use proptest::prelude::*;
use support::{Fixture, MemSource, PatternSource};

fn created() -> jiff::Timestamp {
    "2025-06-01T12:00:00Z".parse().unwrap()
}

/// Writes the plan to `path` with `write_to`, checking the progress
/// reports; returns the bytes.
fn write_file(plan: &Mp4Plan, src: &mut dyn SampleSource, path: &Path) -> Vec<u8> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut last = None;
    let mut calls = 0;
    plan.write_to(&mut file, src, &mut |done, total| {
        assert_eq!(total, plan.len());
        if let Some(prev) = last {
            assert!(done >= prev, "progress went backwards");
        } else {
            assert_eq!(done, 0, "first progress report is 0");
        }
        last = Some(done);
        calls += 1;
    })
    .unwrap();
    drop(file);
    assert_eq!(last, Some(plan.len()), "last progress report is the total");
    assert!(calls >= 2);
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len() as u64, plan.len(), "write_to wrote len() bytes");
    bytes
}

fn stream_json(v: &serde_json::Value) -> &serde_json::Value {
    let streams = v["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), 1, "one stream: {v}");
    &streams[0]
}

fn duration_of(v: &serde_json::Value) -> f64 {
    v["format"]["duration"]
        .as_str()
        .expect("format.duration")
        .parse()
        .unwrap()
}

/// Top-level box order: ftyp, moov, mdat (moov before mdat).
fn assert_progressive(bytes: &[u8]) {
    let boxes = support::top_level_boxes(bytes, bytes.len() as u64);
    let names: Vec<String> = boxes.iter().map(|b| b.name()).collect();
    assert_eq!(names, ["ftyp", "moov", "mdat"]);
    assert!(boxes[1].offset < boxes[2].offset, "moov before mdat");
}

/// Builds the whole clip (scattered over sources), writes it and checks it
/// with ffprobe and against the original stream's decoded pictures.
fn check_full_clip(fx: &Fixture, codec_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (frames, mut src) = fx.scattered(0..fx.frames.len());
    assert_eq!(frames.len(), 150, "6 s at 25 fps");
    let plan = Mp4Plan::new(&fx.entry, frames, created()).unwrap();
    assert_eq!(plan.duration_90k(), 150 * 3600);
    assert_eq!(plan.frame_count(), 150);
    let path = dir.path().join("out.mp4");
    let bytes = write_file(&plan, &mut src, &path);
    assert_progressive(&bytes);

    let probe = support::ffprobe(&path);
    let s = stream_json(&probe);
    assert_eq!(s["codec_name"], codec_name, "{probe}");
    assert_eq!(s["width"], 320);
    assert_eq!(s["height"], 240);
    assert_eq!(s["nb_frames"], "150");
    let d = duration_of(&probe);
    assert!((d - 6.0).abs() <= 0.05, "duration {d}");

    assert_eq!(support::ffmpeg_errors(&path), "", "decode errors");
    assert_eq!(support::decoded_frames(&path), 150);
    let want = support::framemd5(&fx.annexb);
    assert_eq!(want.len(), 150);
    assert_eq!(support::framemd5(&path), want, "decoded pictures differ");
}

#[test]
fn h264_full_clip_probes_and_decodes() {
    let Some(fx) = support::h264() else { return };
    assert!(
        fx.entry.rfc6381.starts_with("avc1.4d"),
        "{}",
        fx.entry.rfc6381
    );
    check_full_clip(fx, "h264");
}

#[test]
fn h265_full_clip_probes_and_decodes() {
    let Some(fx) = support::h265() else { return };
    assert!(
        fx.entry.rfc6381.starts_with("hvc1.1."),
        "{}",
        fx.entry.rfc6381
    );
    check_full_clip(fx, "hevc");
}

#[test]
fn sub_range_from_a_middle_key_frame() {
    let Some(fx) = support::h264() else { return };
    assert!(fx.frames[50].0.key, "frame 50 starts a GOP");
    let dir = tempfile::tempdir().unwrap();
    let (frames, mut src) = fx.scattered(50..100);
    let plan = Mp4Plan::new(&fx.entry, frames, created()).unwrap();
    let path = dir.path().join("part.mp4");
    let bytes = write_file(&plan, &mut src, &path);
    assert_progressive(&bytes);

    let probe = support::ffprobe(&path);
    let s = stream_json(&probe);
    assert_eq!(s["codec_name"], "h264");
    assert_eq!(s["nb_frames"], "50");
    let d = duration_of(&probe);
    assert!((d - 2.0).abs() <= 0.05, "duration {d}");
    assert_eq!(support::ffmpeg_errors(&path), "");
    let want = support::framemd5(&fx.annexb);
    assert_eq!(support::framemd5(&path), want[50..100].to_vec());
}

#[test]
fn moov_describes_every_sample_where_it_lies() {
    let Some(fx) = support::h264() else { return };
    for (name, (frames, mut src)) in [
        ("contiguous", fx.contiguous(0..150)),
        ("scattered", fx.scattered(0..150)),
    ] {
        let plan = Mp4Plan::new(&fx.entry, frames.clone(), created()).unwrap();
        let mut bytes = vec![0u8; plan.len() as usize];
        assert_eq!(plan.read_at(0, &mut bytes, &mut src).unwrap(), bytes.len());
        let moov = support::parse_moov(&bytes, plan.len());
        assert_eq!(moov.timescale, 90_000);
        assert_eq!(moov.duration, 150 * 3600);
        assert!(!moov.co64);
        assert_eq!(&moov.sample_entry, b"avc1");
        assert_eq!((moov.width, moov.height), (320, 240));
        assert_eq!(moov.config, fx.entry.config);
        assert_eq!(moov.samples.len(), 150);
        for (i, (s, (info, data))) in moov.samples.iter().zip(&fx.frames).enumerate() {
            assert_eq!(s.size, info.bytes, "{name} sample {i}");
            assert_eq!(s.duration, 3600);
            assert_eq!(s.key, i % 25 == 0, "{name} sample {i} key");
            let at = s.offset as usize;
            assert_eq!(
                &bytes[at..at + data.len()],
                &data[..],
                "{name} sample {i} data"
            );
        }
        if name == "contiguous" {
            // One source, no gaps: one chunk, one read for all sample data.
            let mut src = fx.contiguous(0..150).1;
            let mut all = vec![0u8; plan.len() as usize];
            plan.read_at(0, &mut all, &mut src).unwrap();
            assert_eq!(src.reads, 1, "one chunk");
        }
    }
}

#[test]
fn read_at_matches_write_to() {
    let Some(fx) = support::h264() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (frames, mut src) = fx.scattered(0..150);
    let plan = Mp4Plan::new(&fx.entry, frames, created()).unwrap();
    let whole = write_file(&plan, &mut src, &dir.path().join("w.mp4"));
    let len = plan.len();
    let mut rng = support::Rng(0x5eed_1234);

    // The whole file in random-sized pieces, front to back.
    let mut pieced = Vec::with_capacity(whole.len());
    let mut at = 0u64;
    while at < len {
        let mut buf = vec![0u8; 1 + rng.below(20_000) as usize];
        let n = plan.read_at(at, &mut buf, &mut src).unwrap();
        assert_eq!(n as u64, std::cmp::min(buf.len() as u64, len - at));
        pieced.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    assert!(pieced == whole, "pieced read differs from write_to");

    // Random ranges anywhere, including ones crossing the header/data
    // boundary and running off the end.
    let header = plan.header_len();
    for i in 0..2000 {
        let off = match i % 4 {
            0 => header.saturating_sub(rng.below(64)),
            1 => len.saturating_sub(rng.below(64)),
            _ => rng.below(len),
        };
        let mut buf = vec![0u8; rng.below(70_000) as usize];
        let n = plan.read_at(off, &mut buf, &mut src).unwrap();
        let expect = std::cmp::min(buf.len() as u64, len.saturating_sub(off)) as usize;
        assert_eq!(n, expect, "read {} at {off}", buf.len());
        assert!(
            buf[..n] == whole[off as usize..off as usize + n],
            "bytes at {off}"
        );
    }

    let mut buf = [0u8; 16];
    assert_eq!(plan.read_at(len, &mut buf, &mut src).unwrap(), 0, "at len");
    assert_eq!(
        plan.read_at(len + 1, &mut buf, &mut src).unwrap(),
        0,
        "past len"
    );
    assert_eq!(plan.read_at(u64::MAX, &mut buf, &mut src).unwrap(), 0);
    assert_eq!(plan.read_at(0, &mut [], &mut src).unwrap(), 0, "empty buf");
}

#[test]
fn source_errors_are_returned() {
    let Some(fx) = support::h264() else { return };
    let (frames, _) = fx.scattered(0..50);
    let plan = Mp4Plan::new(&fx.entry, frames, created()).unwrap();
    let mut empty = MemSource::default();
    // Header bytes need no source.
    let mut head = vec![0u8; plan.header_len() as usize];
    assert_eq!(plan.read_at(0, &mut head, &mut empty).unwrap(), head.len());
    let mut buf = [0u8; 10];
    assert!(plan
        .read_at(plan.header_len(), &mut buf, &mut empty)
        .is_err());
    assert!(plan
        .write_to(&mut std::io::sink(), &mut empty, &mut |_, _| {})
        .is_err());
}

#[test]
fn etag_and_content_type() {
    let Some(fx) = support::h264() else { return };
    let (frames, _) = fx.scattered(0..150);
    let a = Mp4Plan::new(&fx.entry, frames.clone(), created()).unwrap();
    let b = Mp4Plan::new(&fx.entry, frames.clone(), created()).unwrap();
    assert_eq!(a.etag(), b.etag(), "stable for the same inputs");
    assert!(a.etag().starts_with('"') && a.etag().ends_with('"'));
    let later = Mp4Plan::new(
        &fx.entry,
        frames.clone(),
        "2025-06-02T00:00:00Z".parse().unwrap(),
    );
    assert_ne!(a.etag(), later.unwrap().etag(), "creation time matters");
    let mut moved = frames.clone();
    for f in moved.iter_mut().filter(|f| f.source == frames[100].source) {
        f.source += 1000; // same layout, other data
    }
    let moved = Mp4Plan::new(&fx.entry, moved, created()).unwrap();
    assert_eq!(moved.len(), a.len());
    assert_ne!(a.etag(), moved.etag(), "sample origin matters");
    let shorter = Mp4Plan::new(&fx.entry, frames[..149].to_vec(), created()).unwrap();
    assert_ne!(a.etag(), shorter.etag());
    fn shareable<T: Send + Sync + Clone>(_: &T) {}
    shareable(&a); // one plan may serve many concurrent range requests
    assert_eq!(
        a.content_type(),
        format!("video/mp4; codecs=\"{}\"", fx.entry.rfc6381)
    );
}

fn fmp4_clip(fx: &Fixture, codec_name: &str) {
    let init = fmp4::init_segment(&fx.entry).unwrap();
    assert_eq!(
        init,
        fmp4::init_segment(&fx.entry).unwrap(),
        "deterministic"
    );
    let mut file = init.clone();
    let mut gop: Vec<(FrameInfo, &[u8])> = Vec::new();
    let mut sequence = 1;
    let mut decode_time = 0u64;
    let mut segments = 0;
    let mut flush = |gop: &mut Vec<(FrameInfo, &[u8])>, file: &mut Vec<u8>| {
        let seg = fmp4::media_segment(sequence, decode_time, gop).unwrap();
        let boxes = support::top_level_boxes(&seg, seg.len() as u64);
        assert_eq!(
            boxes.iter().map(|b| b.name()).collect::<Vec<_>>(),
            ["moof", "mdat"]
        );
        file.extend_from_slice(&seg);
        sequence += 1;
        decode_time += gop.iter().map(|f| u64::from(f.0.duration_90k)).sum::<u64>();
        gop.clear();
        segments += 1;
    };
    for (info, data) in &fx.frames {
        if info.key && !gop.is_empty() {
            flush(&mut gop, &mut file);
        }
        gop.push((*info, data));
    }
    flush(&mut gop, &mut file);
    assert_eq!(segments, 6);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    let probe = support::ffprobe(&path);
    let s = stream_json(&probe);
    assert_eq!(s["codec_name"], codec_name, "{probe}");
    assert_eq!(s["width"], 320);
    assert_eq!(s["height"], 240);
    // ffprobe gives no nb_frames for fragmented files (no stsz to count);
    // the decoded frame count below checks the same thing.
    if let Some(n) = s.get("nb_frames") {
        assert_eq!(n, "150", "{probe}");
    }
    let d = duration_of(&probe);
    assert!((d - 6.0).abs() <= 0.05, "duration {d}");
    assert_eq!(support::decoded_frames(&path), 150);
    assert_eq!(support::ffmpeg_errors(&path), "", "decode errors");
    assert_eq!(support::framemd5(&path), support::framemd5(&fx.annexb));
}

#[test]
fn fmp4_h264_segments_probe_and_decode() {
    let Some(fx) = support::h264() else { return };
    fmp4_clip(fx, "h264");
}

#[test]
fn fmp4_h265_segments_probe_and_decode() {
    let Some(fx) = support::h265() else { return };
    fmp4_clip(fx, "hevc");
}

fn test_entry() -> VideoSampleEntry {
    VideoSampleEntry {
        codec: Codec::H264,
        width: 320,
        height: 240,
        config: vec![1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0x00],
        rfc6381: "avc1.4d401f".into(),
    }
}

fn frame(bytes: u32, key: bool, source: u64, offset: u64) -> FramePos {
    FramePos {
        info: FrameInfo {
            duration_90k: 3600,
            bytes,
            key,
        },
        source,
        offset,
    }
}

#[test]
fn fmp4_media_segment_layout() {
    let data: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
    let frames: Vec<(FrameInfo, &[u8])> = data
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                FrameInfo {
                    duration_90k: 3000 + i as u32,
                    bytes: d.len() as u32,
                    key: i == 0,
                },
                &d[..],
            )
        })
        .collect();
    let seg = fmp4::media_segment(7, 1 << 40, &frames).unwrap();
    let tops = support::top_level_boxes(&seg, seg.len() as u64);
    let moof = tops[0];
    let mfhd = support::child(&seg, &moof, b"mfhd");
    assert_eq!(
        &seg[mfhd.offset as usize + 12..mfhd.offset as usize + 16],
        &7u32.to_be_bytes()
    );
    let traf = support::child(&seg, &moof, b"traf");
    let names: Vec<String> = support::children(&seg, &traf, 0)
        .iter()
        .map(|b| b.name())
        .collect();
    assert_eq!(names, ["tfhd", "tfdt", "trun"], "tfdt right after tfhd");
    let tfhd = support::child(&seg, &traf, b"tfhd");
    let t = tfhd.offset as usize + 8;
    assert_eq!(&seg[t..t + 4], &[0, 2, 0, 0], "default-base-is-moof");
    let tfdt = support::child(&seg, &traf, b"tfdt");
    let t = tfdt.offset as usize + 8;
    assert_eq!(seg[t], 1, "tfdt version 1");
    assert_eq!(&seg[t + 4..t + 12], &(1u64 << 40).to_be_bytes());
    let trun = support::child(&seg, &traf, b"trun");
    let t = trun.offset as usize + 8;
    assert_eq!(&seg[t + 4..t + 8], &3u32.to_be_bytes(), "sample_count");
    let data_offset = i32::from_be_bytes(seg[t + 8..t + 12].try_into().unwrap()) as usize;
    assert_eq!(
        data_offset,
        tops[1].offset as usize + 8,
        "first sample right after mdat header"
    );
    let mut at = data_offset;
    for (i, d) in data.iter().enumerate() {
        let e = t + 12 + 12 * i;
        let dur = u32::from_be_bytes(seg[e..e + 4].try_into().unwrap());
        let size = u32::from_be_bytes(seg[e + 4..e + 8].try_into().unwrap());
        let flags = u32::from_be_bytes(seg[e + 8..e + 12].try_into().unwrap());
        assert_eq!(dur, 3000 + i as u32);
        assert_eq!(size as usize, d.len());
        assert_eq!(flags & 0x0001_0000 == 0, i == 0, "non-sync flag");
        assert_eq!(&seg[at..at + d.len()], &d[..]);
        at += d.len();
    }
    assert_eq!(at, seg.len());

    // Invalid inputs.
    assert_eq!(fmp4::media_segment(1, 0, &[]), Err(Mp4Error::NoFrames));
    let bad = [(
        FrameInfo {
            duration_90k: 1,
            bytes: 5,
            key: true,
        },
        &data[0][..],
    )];
    assert!(matches!(
        fmp4::media_segment(1, 0, &bad),
        Err(Mp4Error::InvalidFrame { index: 0, .. })
    ));
    let empty = [(
        FrameInfo {
            duration_90k: 1,
            bytes: 0,
            key: true,
        },
        &[][..],
    )];
    assert!(matches!(
        fmp4::media_segment(1, 0, &empty),
        Err(Mp4Error::InvalidFrame { index: 0, .. })
    ));
    let mut e = test_entry();
    e.width = 0;
    assert!(matches!(
        fmp4::init_segment(&e),
        Err(Mp4Error::InvalidSampleEntry(_))
    ));
    e = test_entry();
    e.config.clear();
    assert!(matches!(
        fmp4::init_segment(&e),
        Err(Mp4Error::InvalidSampleEntry(_))
    ));
    let init = fmp4::init_segment(&test_entry()).unwrap();
    let tops = support::top_level_boxes(&init, init.len() as u64);
    let moov = tops[1];
    assert_eq!(
        support::children(&init, &moov, 0)
            .iter()
            .map(|b| b.name())
            .collect::<Vec<_>>(),
        ["mvhd", "trak", "mvex"]
    );
}

#[test]
fn invalid_inputs_are_errors() {
    let e = test_entry();
    let ok = vec![frame(10, true, 0, 0), frame(10, false, 0, 10)];
    assert!(Mp4Plan::new(&e, ok.clone(), created()).is_ok());

    let err = |e: &VideoSampleEntry, f: Vec<FramePos>| Mp4Plan::new(e, f, created()).unwrap_err();
    assert_eq!(err(&e, vec![]), Mp4Error::NoFrames);
    assert_eq!(
        err(&e, vec![frame(10, false, 0, 0), frame(10, true, 0, 10)]),
        Mp4Error::FirstFrameNotKey
    );
    let mut bad = e.clone();
    bad.config.clear();
    assert!(
        matches!(err(&bad, ok.clone()), Mp4Error::InvalidSampleEntry(m) if m.contains("empty"))
    );
    let mut bad = e.clone();
    bad.config = vec![0, 0, 0, 1, 0x67]; // Annex B, not avcC
    assert!(matches!(
        err(&bad, ok.clone()),
        Mp4Error::InvalidSampleEntry(_)
    ));
    let mut bad = e.clone();
    bad.width = 0;
    assert!(
        matches!(err(&bad, ok.clone()), Mp4Error::InvalidSampleEntry(m) if m.contains("0x240"))
    );
    let mut bad = e.clone();
    bad.height = 0;
    assert!(matches!(
        err(&bad, ok.clone()),
        Mp4Error::InvalidSampleEntry(_)
    ));
    let mut bad = e.clone();
    bad.rfc6381 = "hvc1.1.6.L93.B0".into(); // wrong codec
    assert!(matches!(
        err(&bad, ok.clone()),
        Mp4Error::InvalidSampleEntry(_)
    ));
    let mut bad = e.clone();
    bad.rfc6381 = "avc1.4d401f\"; x=\"".into(); // would break the header
    assert!(matches!(
        err(&bad, ok.clone()),
        Mp4Error::InvalidSampleEntry(_)
    ));
    assert_eq!(
        err(&e, vec![frame(10, true, 0, 0), frame(0, false, 0, 10)]),
        Mp4Error::InvalidFrame {
            index: 1,
            reason: "frame has no data (0 bytes)".into()
        }
    );
    assert!(matches!(
        err(&e, vec![frame(10, true, 0, u64::MAX - 5)]),
        Mp4Error::InvalidFrame { index: 0, .. }
    ));
    // Messages are readable.
    assert_eq!(
        Mp4Error::FirstFrameNotKey.to_string(),
        "the first frame is not a key frame; a file must start at a key frame"
    );
}

#[test]
fn large_files_use_co64_and_a_64_bit_mdat() {
    let e = test_entry();
    // Three ~4 GiB frames in three sources: chunks 2 and 3 start past 4 GiB.
    let frames = vec![
        frame(u32::MAX, true, 1, 0),
        frame(u32::MAX, false, 2, 0),
        frame(u32::MAX, true, 3, 5),
    ];
    let plan = Mp4Plan::new(&e, frames, created()).unwrap();
    let h = plan.header_len();
    assert_eq!(plan.len(), h + 3 * u64::from(u32::MAX));
    let mut head = vec![0u8; h as usize];
    plan.read_at(0, &mut head, &mut PatternSource).unwrap();
    let tops = support::top_level_boxes(&head, plan.len());
    assert_eq!(&tops[2].fourcc, b"mdat");
    assert_eq!(tops[2].header, 16, "64-bit mdat size");
    let moov = support::parse_moov(&head, plan.len());
    assert!(moov.co64);
    let offsets: Vec<u64> = moov.samples.iter().map(|s| s.offset).collect();
    assert_eq!(
        offsets,
        [h, h + u64::from(u32::MAX), h + 2 * u64::from(u32::MAX)]
    );
    // The tail of the file comes from source 3 at its offset.
    let mut tail = [0u8; 32];
    let n = plan
        .read_at(plan.len() - 20, &mut tail, &mut PatternSource)
        .unwrap();
    assert_eq!(n, 20);
    let src_end = 5 + u64::from(u32::MAX);
    for (i, b) in tail[..20].iter().enumerate() {
        assert_eq!(*b, support::pattern_byte(3, src_end - 20 + i as u64));
    }

    // One contiguous 12 GiB chunk: the mdat is large but one stco entry
    // at a small offset suffices.
    let frames = vec![
        frame(u32::MAX, true, 1, 0),
        frame(u32::MAX, false, 1, u64::from(u32::MAX)),
        frame(u32::MAX, false, 1, 2 * u64::from(u32::MAX)),
    ];
    let plan = Mp4Plan::new(&e, frames, created()).unwrap();
    let mut head = vec![0u8; plan.header_len() as usize];
    plan.read_at(0, &mut head, &mut PatternSource).unwrap();
    let moov = support::parse_moov(&head, plan.len());
    assert!(!moov.co64);
    assert_eq!(
        moov.samples[2].offset,
        plan.header_len() + 2 * u64::from(u32::MAX)
    );
}

#[test]
fn plan_for_one_hour_at_25_fps() {
    // 90 000 frames, a key frame every second, one source per minute.
    let e = test_entry();
    let mut frames = Vec::with_capacity(90_000);
    let mut offset = 0;
    for i in 0..90_000u64 {
        if i % 1500 == 0 {
            offset = 0;
        }
        let key = i % 25 == 0;
        let bytes = if key {
            60_000
        } else {
            8_000 + (i % 7) as u32 * 100
        };
        frames.push(frame(bytes, key, i / 1500, offset));
        offset += u64::from(bytes);
    }
    let t = Instant::now();
    let plan = Mp4Plan::new(&e, frames, created()).unwrap();
    let took = t.elapsed();
    println!(
        "plan for 1 h at 25 fps: {took:?}; {} bytes of header, {:.1} GiB file",
        plan.header_len(),
        plan.len() as f64 / f64::from(1u32 << 30)
    );
    assert_eq!(plan.duration_90k(), 3600 * 90_000);
    let mut head = vec![0u8; plan.header_len() as usize];
    plan.read_at(0, &mut head, &mut PatternSource).unwrap();
    let moov = support::parse_moov(&head, plan.len());
    assert_eq!(moov.samples.len(), 90_000);
}

// ---------------------------------------------------------------------------
// Property test: arbitrary inputs never panic, and valid ones give a file
// whose boxes and sample table describe exactly the frames given.

#[derive(Clone, Debug)]
struct ArbFrame {
    duration: u32,
    bytes: u32,
    key: bool,
    source: u64,
    /// `None`: right after the previous frame of the same source.
    offset: Option<u64>,
}

fn arb_frame() -> impl Strategy<Value = ArbFrame> {
    (
        prop_oneof![Just(3600u32), Just(0u32), any::<u32>()],
        prop_oneof![
            6 => 1u32..3000,
            1 => Just(0u32),
            1 => (u32::MAX - 100)..=u32::MAX,
        ],
        any::<bool>(),
        0u64..3,
        prop_oneof![
            3 => Just(None),
            1 => (0u64..10_000).prop_map(Some),
            1 => any::<u64>().prop_map(Some),
        ],
    )
        .prop_map(|(duration, bytes, key, source, offset)| ArbFrame {
            duration,
            bytes,
            key,
            source,
            offset,
        })
}

fn arb_entry() -> impl Strategy<Value = VideoSampleEntry> {
    (
        any::<bool>(),
        prop_oneof![4 => 1u16..=4096, 1 => Just(0u16)],
        prop_oneof![4 => 1u16..=4096, 1 => Just(0u16)],
        prop_oneof![
            6 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut v| {
                if let Some(b) = v.first_mut() {
                    *b = 1;
                }
                v
            }),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
        ],
        prop_oneof![
            6 => Just(None),
            1 => "[a-z0-9.\" ]{0,12}".prop_map(Some),
        ],
    )
        .prop_map(|(h265, width, height, config, rfc)| {
            let codec = if h265 { Codec::H265 } else { Codec::H264 };
            let rfc6381 = rfc.unwrap_or_else(|| {
                match codec {
                    Codec::H264 => "avc1.640028",
                    Codec::H265 => "hvc1.1.6.L93.B0",
                }
                .into()
            });
            VideoSampleEntry {
                codec,
                width,
                height,
                config,
                rfc6381,
            }
        })
}

fn expect_valid(e: &VideoSampleEntry, frames: &[FramePos]) -> bool {
    let tag = e.rfc6381.split('.').next().unwrap();
    let tag_ok = match e.codec {
        Codec::H264 => tag == "avc1" || tag == "avc3",
        Codec::H265 => tag == "hvc1" || tag == "hev1",
    };
    e.width > 0
        && e.height > 0
        && e.config.first() == Some(&1)
        && tag_ok
        && e.rfc6381
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        && frames.first().is_some_and(|f| f.info.key)
        && frames
            .iter()
            .all(|f| f.info.bytes > 0 && f.offset.checked_add(u64::from(f.info.bytes)).is_some())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_inputs_never_panic(
        entry in arb_entry(),
        arb in proptest::collection::vec(arb_frame(), 0..40),
        reads in proptest::collection::vec((any::<u64>(), 0usize..5000), 0..8),
    ) {
        let mut next: std::collections::HashMap<u64, u64> = Default::default();
        let frames: Vec<FramePos> = arb
            .iter()
            .map(|a| {
                let end = next.entry(a.source).or_insert(0);
                let offset = a.offset.unwrap_or(*end);
                *end = offset.saturating_add(u64::from(a.bytes));
                FramePos {
                    info: FrameInfo { duration_90k: a.duration, bytes: a.bytes, key: a.key },
                    source: a.source,
                    offset,
                }
            })
            .collect();
        let valid = expect_valid(&entry, &frames);
        let plan = match Mp4Plan::new(&entry, frames.clone(), created()) {
            Ok(p) => p,
            Err(e) => {
                prop_assert!(!valid, "valid input rejected: {e}");
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        prop_assert!(valid, "invalid input accepted");
        let data: u64 = frames.iter().map(|f| u64::from(f.info.bytes)).sum();
        prop_assert_eq!(plan.len(), plan.header_len() + data);
        prop_assert_eq!(
            plan.duration_90k(),
            frames.iter().map(|f| u64::from(f.info.duration_90k)).sum::<u64>()
        );
        prop_assert_eq!(plan.frame_count() as usize, frames.len());

        let mut src = PatternSource;
        let mut head = vec![0u8; plan.header_len() as usize];
        prop_assert_eq!(plan.read_at(0, &mut head, &mut src).unwrap(), head.len());
        let tops = support::top_level_boxes(&head, plan.len());
        let names: Vec<String> = tops.iter().map(|b| b.name()).collect();
        prop_assert_eq!(names, ["ftyp", "moov", "mdat"]);
        prop_assert_eq!(tops[2].offset + tops[2].header, plan.header_len());

        let moov = support::parse_moov(&head, plan.len());
        prop_assert_eq!(moov.samples.len(), frames.len());
        prop_assert_eq!(moov.duration, plan.duration_90k());
        let mut at = plan.header_len();
        let mut any_high = false;
        for (s, f) in moov.samples.iter().zip(&frames) {
            prop_assert_eq!(s.offset, at);
            prop_assert_eq!(s.size, f.info.bytes);
            prop_assert_eq!(s.duration, f.info.duration_90k);
            prop_assert_eq!(s.key, f.info.key);
            any_high |= at > u64::from(u32::MAX);
            at += u64::from(f.info.bytes);
            // The sample's first and last bytes come from its source.
            let n = std::cmp::min(f.info.bytes, 16) as usize;
            let mut buf = [0u8; 16];
            prop_assert_eq!(plan.read_at(s.offset, &mut buf[..n], &mut src).unwrap(), n);
            for (i, b) in buf[..n].iter().enumerate() {
                prop_assert_eq!(*b, support::pattern_byte(f.source, f.offset + i as u64));
            }
            let last_at = s.offset + u64::from(f.info.bytes) - 1;
            prop_assert_eq!(plan.read_at(last_at, &mut buf[..1], &mut src).unwrap(), 1);
            prop_assert_eq!(
                buf[0],
                support::pattern_byte(f.source, f.offset + u64::from(f.info.bytes) - 1)
            );
        }
        if !any_high {
            prop_assert!(!moov.co64, "co64 only when needed");
        }

        for (off, n) in reads {
            let off = off % (plan.len() + 100);
            let mut buf = vec![0u8; n];
            let got = plan.read_at(off, &mut buf, &mut src).unwrap();
            prop_assert_eq!(got as u64, std::cmp::min(n as u64, plan.len().saturating_sub(off)));
        }
        let again = Mp4Plan::new(&entry, frames, created()).unwrap();
        prop_assert_eq!(again.etag(), plan.etag());
    }
}
