//! Continuation records through the real [`StreamWriter`]: with a small
//! `record_bytes`, a GOP is written as several records (segment format
//! version 3), and everything downstream — the keyless scan, the index
//! row, export to MP4, start-up recovery after a crash — sees the same
//! frames and sample bytes as were pushed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use porchlight_media::segment::{self, SegmentReader};
use porchlight_media::{index, Codec, FrameInfo, VideoSampleEntry};
use porchlight_recorder::writer::{Frame, StreamWriter, WriterOptions};
use porchlight_recorder::{export, recovery, RECORDINGS_DIR};
use porchlight_store::{Camera, NewCamera, RecordingRow, Store};
use porchlight_vault::keys::MemberKey;

const RECORD_BYTES: usize = 16 << 10;
/// 25 frames of 3600 ticks: one-second GOPs.
const GOP_FRAMES: usize = 25;
const TICKS: i64 = 3600;

fn entry() -> VideoSampleEntry {
    VideoSampleEntry {
        codec: Codec::H264,
        width: 320,
        height: 240,
        config: vec![1, 0x4d, 0x40, 0x1f, 0xff, 0xe0, 0x00],
        rfc6381: "avc1.4d401f".into(),
    }
}

/// Deterministic bytes, different for every frame (so a sample read from
/// the wrong offset or record shows).
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// Frame `n` of the test stream: a key frame every [`GOP_FRAMES`] frames,
/// 40 000 bytes (over `RECORD_BYTES`: a record of its own), other frames
/// 5 000–7 000 bytes (two or three to a record).
fn frame_data(n: usize) -> (bool, Vec<u8>) {
    let key = n.is_multiple_of(GOP_FRAMES);
    let len = if key {
        40_000
    } else {
        5_000 + (n * 397) % 2_000
    };
    (key, bytes(len, n as u64 + 1))
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Store,
    rec_dir: PathBuf,
    camera: Camera,
    key: Arc<MemberKey>,
    t0: jiff::Timestamp,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let t0: jiff::Timestamp = "2026-11-20T10:00:00Z".parse().unwrap();
    let camera = store
        .create_camera(
            &NewCamera {
                name: "porch".into(),
                main_url: "rtsp://127.0.0.1:1/porch".into(),
                sub_url: None,
                username: None,
                password: None,
                retain_max_age_secs: None,
                retain_max_bytes: None,
            },
            t0,
        )
        .await
        .unwrap();
    let rec_dir = dir.path().join(RECORDINGS_DIR);
    std::fs::create_dir_all(&rec_dir).unwrap();
    Setup {
        _dir: dir,
        store,
        rec_dir,
        camera,
        key: Arc::new(MemberKey::generate()),
        t0,
    }
}

async fn writer(s: &Setup, segment_target: Duration) -> StreamWriter {
    StreamWriter::new(
        s.store.clone(),
        &s.rec_dir,
        s.camera.id,
        "main",
        &entry(),
        vec![s.key.recipient()],
        WriterOptions {
            segment_target,
            record_bytes: RECORD_BYTES,
            ..WriterOptions::default()
        },
    )
    .await
    .unwrap()
}

/// Pushes frames `0..n` (40 ms apart on the wall clock); returns what was
/// pushed.
async fn push(s: &Setup, w: &mut StreamWriter, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut pushed = Vec::new();
    for i in 0..n {
        let (key, data) = frame_data(i);
        w.push(
            Frame {
                pts_90k: 1_000_000 + i as i64 * TICKS,
                key,
                data: data.clone().into(),
            },
            s.t0 + jiff::SignedDuration::from_millis(40 * i as i64),
        )
        .await
        .unwrap();
        pushed.push((key, data));
    }
    pushed
}

async fn rows(s: &Setup) -> Vec<RecordingRow> {
    s.store
        .recordings_between(
            s.camera.id,
            "main",
            s.t0 - jiff::SignedDuration::from_hours(1),
            s.t0 + jiff::SignedDuration::from_hours(1),
        )
        .await
        .unwrap()
}

/// The MP4 export of the whole hour around the test: its sample bytes
/// (everything after the MP4 header), in order.
async fn exported_samples(s: &Setup) -> Vec<u8> {
    let mut e = export::plan(
        &s.store,
        &s.rec_dir,
        &s.camera,
        s.t0 - jiff::SignedDuration::from_hours(1),
        s.t0 + jiff::SignedDuration::from_hours(1),
        s.key.clone(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    e.plan
        .write_to(&mut out, &mut e.source, &mut |_, _| {})
        .unwrap();
    assert_eq!(out.len() as u64, e.plan.len());
    out.split_off(e.plan.header_len() as usize)
}

/// Checks one closed recording's file: it scans without a key, its frames
/// are the row's index, it starts at a key frame, every record holds at
/// most `RECORD_BYTES` of samples unless it is one larger frame, and a
/// record starts at every key frame. Returns (records, GOPs).
fn check_file(rec_dir: &Path, row: &RecordingRow, key: &MemberKey) -> (usize, usize) {
    let path = rec_dir.join(&row.file_name);
    let scan = segment::scan_file(&path).unwrap();
    assert_eq!(scan.problem, None, "{}", row.file_name);
    assert_eq!(scan.version, 3);
    assert_eq!(scan.valid_len as i64, row.file_bytes);
    assert_eq!(Some(&scan.digest_of_valid[..]), row.sha256.as_deref());
    let frames = index::decode(row.frame_index.as_deref().unwrap()).unwrap();
    assert_eq!(frames, scan.frames);
    assert_eq!(frames.len() as i64, row.frames);
    assert!(frames[0].key, "a segment starts at a key frame");
    for r in &scan.records {
        let fs = &scan.frames[r.frames.clone()];
        assert!(
            r.payload_len as usize <= RECORD_BYTES || fs.len() == 1,
            "record {} holds {} bytes in {} frames",
            r.seq,
            r.payload_len,
            fs.len()
        );
    }
    let starts: Vec<usize> = scan.records.iter().map(|r| r.frames.start).collect();
    let keys: Vec<usize> = (0..frames.len()).filter(|&i| frames[i].key).collect();
    assert!(
        keys.iter().all(|k| starts.contains(k)),
        "{keys:?} {starts:?}"
    );
    SegmentReader::open(std::fs::File::open(&path).unwrap(), key)
        .unwrap()
        .verify_all()
        .unwrap();
    (scan.records.len(), keys.len())
}

fn infos(pushed: &[(bool, Vec<u8>)]) -> Vec<(bool, u32)> {
    pushed.iter().map(|(k, d)| (*k, d.len() as u32)).collect()
}

fn row_infos(frames: &[FrameInfo]) -> Vec<(bool, u32)> {
    frames.iter().map(|f| (f.key, f.bytes)).collect()
}

#[tokio::test]
async fn small_records_split_gops_and_export_the_same_samples() {
    let s = setup().await;
    // Segments of 2 s: six GOPs make several files, each rotated at a key
    // frame, each of several records per GOP.
    let mut w = writer(&s, Duration::from_secs(2)).await;
    let pushed = push(&s, &mut w, 6 * GOP_FRAMES + 3).await;
    let cap = w.record_buffer_capacity();
    // The buffer settles near max(record_bytes, largest frame), not a GOP
    // (about 190 KB here).
    assert!(
        (40_000..=64 << 10).contains(&cap),
        "record buffer capacity {cap}"
    );
    w.finish().await.unwrap();

    let rows = rows(&s).await;
    assert!(rows.len() >= 3, "{} recordings", rows.len());
    assert!(rows.iter().all(|r| !r.open));
    let mut all = Vec::new();
    for row in &rows {
        let (records, gops) = check_file(&s.rec_dir, row, &s.key);
        assert!(
            records > 2 * gops,
            "{}: {records} records for {gops} GOPs",
            row.file_name
        );
        all.extend(index::decode(row.frame_index.as_deref().unwrap()).unwrap());
    }
    // Every frame but the held-back last one, in order.
    assert_eq!(row_infos(&all), infos(&pushed[..pushed.len() - 1]));
    assert!(all.iter().all(|f| f.duration_90k == TICKS as u32));

    // Export: the MP4's samples are the bytes pushed.
    let want: Vec<u8> = pushed[..pushed.len() - 1]
        .iter()
        .flat_map(|(_, d)| d.clone())
        .collect();
    let got = exported_samples(&s).await;
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the exported samples differ from the pushed ones"
    );
}

/// A `kill -9` mid-GOP, after continuation records were written: recovery
/// keeps every complete record, so more frames than the last GOP boundary.
#[tokio::test]
async fn crash_mid_gop_keeps_the_continuation_records() {
    let s = setup().await;
    let mut w = writer(&s, Duration::from_secs(60)).await;
    // Two whole GOPs, then 15 frames of the third.
    let pushed = push(&s, &mut w, 2 * GOP_FRAMES + 15).await;
    // The crash: the writer is gone without `finish`; its row is open.
    drop(w);
    let open = rows(&s).await;
    assert_eq!(open.len(), 1);
    assert!(open[0].open);
    let path = s.rec_dir.join(&open[0].file_name);
    let before = segment::scan_file(&path).unwrap();
    let last = before.records.last().unwrap();
    assert!(
        !before.frames[last.frames.start].key,
        "the last record on disk is a continuation record"
    );

    let report = recovery::recover(&s.store, &s.rec_dir).await.unwrap();
    assert_eq!(report.recovered, 1);
    let rows = rows(&s).await;
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].open);
    check_file(&s.rec_dir, &rows[0], &s.key);
    let frames = index::decode(rows[0].frame_index.as_deref().unwrap()).unwrap();
    let n = frames.len();
    assert_eq!(report.recovered_frames, n as u64);
    // More than the last GOP boundary (50), and the frames pushed, in
    // order.
    assert!(n > 2 * GOP_FRAMES, "recovered {n} frames");
    assert!(n < pushed.len());
    assert_eq!(row_infos(&frames), infos(&pushed[..n]));
    // What was lost: the record buffer (at most RECORD_BYTES) and the
    // held-back frame.
    let lost: usize = pushed[n..pushed.len() - 1]
        .iter()
        .map(|(_, d)| d.len())
        .sum();
    assert!(
        lost <= RECORD_BYTES,
        "lost {lost} bytes besides the held-back frame"
    );

    let want: Vec<u8> = pushed[..n].iter().flat_map(|(_, d)| d.clone()).collect();
    let got = exported_samples(&s).await;
    assert!(
        got == want,
        "the exported samples differ from the pushed ones"
    );
}
